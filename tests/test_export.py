"""``signpipe export keypoints``: a keypoints shard out to .pose / pyskl / .npz and back through the readers."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from signpipe.cli import main
from signpipe.decode import INDEX_EXTRA as FRAME_INDEX_EXTRA
from signpipe.keypoints.export import export_keypoints
from signpipe.keypoints.sources import KeypointSequence, read_sequences
from signpipe.pose import KEYPOINT_ARRAYS, SCHEMA_VERSION
from signpipe.shards import ShardWriter

VIDEOS = {"v1": (9, 2, "train"), "v2": (4, 0, "test"), "v3": (1, 5, "train")}
"""video_id -> (frames, label, split)."""


def _keypoints(frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(5, 600, (frames, 133, 2)).astype(np.float32)
    score = rng.uniform(0.05, 1, (frames, 133)).astype(np.float32)
    missing = rng.random((frames, 133)) < 0.2
    missing[:, 91:112] |= rng.random((frames, 1)) < 0.5  # whole hands missing in some frames
    xy[missing], score[missing] = 0.0, 0.0
    return xy, score


def write_shard(path: Path, frame_info: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A keypoints shard of VIDEOS; ``frame_info`` adds fps and frame size to /index as an import does."""
    arrays = {}
    with ShardWriter(path, "keypoints", SCHEMA_VERSION, KEYPOINT_ARRAYS,
                     index_extra=FRAME_INDEX_EXTRA if frame_info else ()) as writer:
        for seed, (video_id, (frames, label, split)) in enumerate(VIDEOS.items()):
            xy, score = arrays[video_id] = _keypoints(frames, seed)
            extra = {"fps": 30.0, "src_width": 640, "src_height": 480} if frame_info else {}
            writer.add(video_id, label, split, extra=extra, xy=xy, score=score)
    return arrays


def _same(sequence: KeypointSequence, xy: np.ndarray, score: np.ndarray) -> None:
    assert isinstance(sequence, KeypointSequence), sequence
    np.testing.assert_allclose(sequence.xy, xy, rtol=1e-6, atol=1e-4)
    np.testing.assert_allclose(sequence.score, score, rtol=1e-6)


@pytest.mark.parametrize("frame_info", [True, False])
def test_pose_round_trip(tmp_path, frame_info):
    arrays = write_shard(tmp_path / "keypoints" / "0.h5", frame_info)
    files = export_keypoints(tmp_path / "keypoints" / "0.h5", "pose", tmp_path / "out")
    assert sorted(f.name for f in files) == ["v1.pose", "v2.pose", "v3.pose"]
    rows = [{"video_id": v, "path": str(tmp_path / "out" / f"{v}.pose")} for v in VIDEOS]
    for video_id, sequence in read_sequences("pose", rows, {}):
        _same(sequence, *arrays[video_id])
        xy, score = arrays[video_id]
        extent = tuple(int(np.ceil(v)) for v in xy[score > 0].max(axis=0))
        assert sequence.size == ((640, 480) if frame_info else extent)
        assert sequence.fps == (30.0 if frame_info else None)


@pytest.mark.parametrize("frame_info", [True, False])
def test_npz_round_trip(tmp_path, frame_info):
    arrays = write_shard(tmp_path / "0.h5", frame_info)
    export_keypoints(tmp_path / "0.h5", "npz", tmp_path / "out")
    rows = [{"video_id": v, "path": str(tmp_path / "out" / f"{v}.npz")} for v in VIDEOS]
    for video_id, sequence in read_sequences("arrays", rows, {"layout": "coco-wholebody-133"}):
        _same(sequence, *arrays[video_id])
        assert sequence.fps == (30.0 if frame_info else None)
    with np.load(tmp_path / "out" / "v1.npz") as data:
        assert sorted(data.files) == (["fps", "height", "keypoints", "width"] if frame_info else ["keypoints"])


def test_pyskl_round_trip_keeps_splits_and_labels(tmp_path):
    arrays = write_shard(tmp_path / "0.h5", frame_info=True)
    out = tmp_path / "skeleton.pkl"
    assert main(["export", "keypoints", str(tmp_path / "0.h5"), "--format", "pyskl", str(out)]) == 0
    with open(out, "rb") as f:
        data = pickle.load(f)
    assert data["split"] == {"train": ["v1", "v3"], "test": ["v2"]}
    assert {a["frame_dir"]: a["label"] for a in data["annotations"]} == {v: label for v, (_, label, _) in VIDEOS.items()}
    assert data["annotations"][0]["keypoint"].shape == (1, 9, 133, 2)
    rows = [{"video_id": v, "path": str(out)} for v in VIDEOS]
    for video_id, sequence in read_sequences("pyskl", rows, {"trust_pickle": True}):
        _same(sequence, *arrays[video_id])
        assert sequence.size == (640, 480)


def test_frame_size_and_fps_from_the_frames_shard_beside(tmp_path):
    frames = tmp_path / "ds" / "frames" / "0.h5"
    with ShardWriter(frames, "frames", 1, {"height": (np.int64, ())}, index_extra=FRAME_INDEX_EXTRA) as writer:
        for video_id, (count, label, split) in VIDEOS.items():
            writer.add(video_id, label, split, extra={"fps": 25.0, "src_width": 1280, "src_height": 720},
                       height=np.full(count, 720))
    write_shard(tmp_path / "ds" / "keypoints" / "0.h5", frame_info=False)
    export_keypoints(tmp_path / "ds" / "keypoints" / "0.h5", "npz", tmp_path / "out")
    with np.load(tmp_path / "out" / "v2.npz") as data:
        assert (float(data["fps"]), int(data["width"]), int(data["height"])) == (25.0, 1280, 720)


def test_not_a_keypoints_shard_and_unknown_format(tmp_path, capsys):
    frames = tmp_path / "frames.h5"
    with ShardWriter(frames, "frames", 1, {"height": (np.int64, ())}) as writer:
        writer.add("v", 0, "train", height=np.zeros(2))
    assert main(["export", "keypoints", str(frames), "--format", "npz", str(tmp_path / "out")]) == 1
    assert "not a keypoints shard" in capsys.readouterr().err
    with pytest.raises(ValueError, match="export format"):
        export_keypoints(frames, "csv", tmp_path / "out")


@pytest.mark.parametrize("fmt", ["pyskl", "npz", "pose"])
def test_export_never_writes_onto_its_input_or_existing_files_without_force(tmp_path, capsys, fmt):
    """Issue #25 item 7: one rule for every format, checked before anything is written."""
    shard = tmp_path / "k2.h5"
    write_shard(shard, frame_info=True)
    before = shard.read_bytes()
    for extra in ([], ["--force"]):
        assert main(["export", "keypoints", str(shard), "--format", fmt, str(shard), *extra]) == 1
        err = capsys.readouterr().err
        assert "error: export: " in err and str(shard) in err and "Traceback" not in err
        assert shard.read_bytes() == before  # the shard is never replaced, even with --force
    out = tmp_path / ("skeleton.pkl" if fmt == "pyskl" else "out")
    first = export_keypoints(shard, fmt, out)
    stamp = [p.stat().st_mtime_ns for p in first]
    assert main(["export", "keypoints", str(shard), "--format", fmt, str(out)]) == 1
    assert "exist(s) already; pass --force to overwrite" in capsys.readouterr().err
    assert [p.stat().st_mtime_ns for p in first] == stamp
    assert main(["export", "keypoints", str(shard), "--format", fmt, str(out), "--force"]) == 0
    assert (out.read_bytes() if fmt == "pyskl" else None) == (first[0].read_bytes() if fmt == "pyskl" else None)


def test_export_of_a_corrupt_shard_is_one_line(tmp_path, capsys):
    shard = tmp_path / "0.h5"
    write_shard(shard, frame_info=True)
    shard.write_bytes(shard.read_bytes()[:2000])
    assert main(["export", "keypoints", str(shard), "--format", "npz", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"signpipe export: error: {shard}: not a readable HDF5 file") and err.count("\n") == 1
