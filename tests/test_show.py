"""`signpipe show`: contact sheets from any artifact and its siblings in the results layout."""

import argparse
import shutil

import cv2
import h5py
import numpy as np
import pytest

from signpipe.datasets import write_manifest
from signpipe.decode import decode_shard
from signpipe.hands import DETECTED, INTERPOLATED, crop_shard
from signpipe.pose import extract_shard
from signpipe.shards import ShardWriter, read_index
from signpipe.show import (
    CELL, EXTRAPOLATED_COLOUR, HAND_COLOURS, HEADER, LABEL, across_classes, contact_sheet, register, sample_sheets,
    sheet_size, siblings,
)
from signpipe.synth import make_corpus


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """results/demo/{frames,keypoints,hands}/0.h5 of a tiny synthetic corpus (frames stored 64 x 48)."""
    root = tmp_path_factory.mktemp("show")
    make_corpus(root / "corpus", num_classes=2, signers=3, repeats=1, frames=12, width=96, height=72, progress=False)
    ds = root / "results" / "demo"
    manifest = write_manifest({"adapter": "synthetic", "num_shards": 1}, ds / "manifest.csv", ds / "missing.csv",
                              corpus_dir=root / "corpus")
    decode_shard(ds / "manifest.csv", 0, ds / "frames" / "0.h5", ds / "failures.csv", short_side=48, progress=False)
    extract_shard(ds / "manifest.csv", ds / "frames" / "0.h5", ds / "keypoints" / "0.h5", ds / "quality.csv",
                  {"backend": "sidecar"}, progress=False)
    crop_shard(ds / "frames" / "0.h5", ds / "keypoints" / "0.h5", ds / "hands" / "0.h5", crop_size=32, progress=False)
    return ds, manifest


def test_sheet_from_any_sibling_draws_frames_keypoints_and_crops(results, tmp_path):
    ds, manifest = results
    with h5py.File(ds / "hands" / "0.h5") as f:  # the video with the most detected hands
        index = read_index(f)
        detected = [(f["box_source"][r.start:r.start + r.length] == DETECTED).sum() for r in index.itertuples()]
        row = index.iloc[int(np.argmax(detected))]
        times = np.linspace(0, row["length"] - 1, 4).round().astype(int)
        source = f["box_source"][row["start"] + times]
    assert list(siblings(ds / "keypoints" / "0.h5")) == ["frames", "keypoints", "hands"]
    out = contact_sheet(ds / "keypoints" / "0.h5", row["video_id"], tmp_path / "sheet.png", frames=4)
    image = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    expected = (4 * CELL, HEADER + 180 + LABEL + 2 * (CELL + LABEL))  # 64 x 48 frames drawn 240 x 180
    assert (image.shape[1], image.shape[0]) == sheet_size(4, (64, 48), crops=True) == expected
    frame_row = image[HEADER:HEADER + 180]
    assert frame_row.std() > 20 and image[HEADER + 200:].std() > 20  # pictures, not blanks
    for hand in range(2):
        if (source[:, hand] == DETECTED).any():  # its keypoints and box drawn in its colour
            assert (np.abs(frame_row.astype(int) - HAND_COLOURS[hand]).sum(axis=-1) < 30).sum() > 20
        # Each crop is outlined by how its box was found: the hand's colour when detected, red when extrapolated.
        top = HEADER + 180 + LABEL + hand * (CELL + LABEL)
        for column, how in enumerate(source[:, hand]):
            expected = HAND_COLOURS[hand] if how in (DETECTED, INTERPOLATED) else EXTRAPOLATED_COLOUR
            np.testing.assert_allclose(image[top + CELL // 2, column * CELL], expected, atol=12)
    assert (source == DETECTED).any()


def test_sheet_of_a_lone_keypoints_file(results, tmp_path):
    ds, manifest = results
    lone = tmp_path / "kp.h5"
    shutil.copy(ds / "keypoints" / "0.h5", lone)
    assert list(siblings(lone)) == ["keypoints"]
    video = manifest["video_id"][1]
    out = contact_sheet(lone, video, tmp_path / "lone.png", frames=100)  # more than the video has: every frame
    image = cv2.imread(str(out))
    with h5py.File(lone) as f:
        length = int(read_index(f).set_index("video_id").loc[video, "length"])
    assert image.shape[1] == length * CELL
    assert HEADER + LABEL + CELL // 2 < image.shape[0] < HEADER + LABEL + 2 * CELL  # one row: no frames, no crops


def test_unknown_video_lists_the_files_ids(results, tmp_path):
    ds, manifest = results
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["show", str(ds / "hands" / "0.h5"), "nope", "--out", str(tmp_path / "x.png")])
    first = manifest["video_id"][0]
    with pytest.raises(ValueError, match=rf"hands/0.h5: no video 'nope'; it holds {len(manifest)} videos: {first}"):
        args.func(args)
    assert not (tmp_path / "x.png").exists()
    args = parser.parse_args(["show", str(ds / "frames" / "0.h5"), manifest["video_id"][2], "--frames", "2",
                              "--out", str(tmp_path / "two.png")])
    args.func(args)
    assert cv2.imread(str(tmp_path / "two.png")).shape[1] == 2 * CELL
    h5py.File(tmp_path / "other.h5", "w").close()
    with pytest.raises(ValueError, match="not a signpipe frames, keypoints or hands shard"):
        contact_sheet(tmp_path / "other.h5", "x")


def test_sample_sheets_of_the_test_split(results, tmp_path):
    ds, manifest = results
    written = sample_sheets([ds / "hands" / "0.h5"], tmp_path / "sheets", count=5)
    test_ids = sorted(manifest.loc[manifest["split"] == "test", "video_id"])
    assert sorted(p.stem for p in written) == test_ids[:5] and all(p.stat().st_size > 1000 for p in written)


def keypoints_shard(path, videos):
    """A keypoints shard of (video_id, split[, label]) tuples, 3 frames each (label 0 unless given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    xy = np.random.default_rng(0).uniform(10, 90, (3, 133, 2)).astype(np.float32)
    with ShardWriter(path, "keypoints", 1, {"xy": (np.float32, (133, 2)), "score": (np.float32, (133,))}) as w:
        for video_id, split, *label in videos:
            w.add(video_id, label[0] if label else 0, split, xy=xy, score=np.ones((3, 133), np.float32))
    return path


def test_sample_sheets_pick_test_videos_from_any_shard(tmp_path):
    shards = [keypoints_shard(tmp_path / "kp" / "0.h5", [("t1", "train"), ("v1", "val")]),
              keypoints_shard(tmp_path / "kp" / "1.h5", [("z9", "test"), ("t2", "train")]),
              keypoints_shard(tmp_path / "kp" / "2.h5", [("a3", "test"), ("b4", "test")])]
    written = sample_sheets(shards, tmp_path / "sheets", count=2)
    assert written == [tmp_path / "sheets" / "a3.png", tmp_path / "sheets" / "b4.png"]
    assert sorted(p.name for p in (tmp_path / "sheets").iterdir()) == ["a3.png", "b4.png"]
    assert [p.stem for p in sample_sheets(shards, tmp_path / "all", count=5)] == ["a3", "b4", "z9"]


def test_sample_sheets_spread_over_classes(tmp_path):
    """Ten classes with two test videos each (ids sorted by class): four sheets show four classes
    spread over the labels, not the first two classes' repeats; with more sheets than classes,
    second videos fill in."""
    videos = [(f"c{label}_{k}", "test", label) for label in range(10) for k in range(2)]
    shards = [keypoints_shard(tmp_path / "kp" / "0.h5", videos[:10]), keypoints_shard(tmp_path / "kp" / "1.h5", videos[10:])]
    written = sample_sheets(shards, tmp_path / "sheets", count=4)
    assert [p.stem for p in written] == ["c0_0", "c3_0", "c6_0", "c9_0"]
    assert across_classes([("a", 0), ("b", 0), ("c", 1)], 3) == ["a", "b", "c"]


def test_sample_sheets_without_test_videos_say_why(tmp_path, caplog):
    shards = [keypoints_shard(tmp_path / "kp" / "0.h5", [("t1", "train")]),
              keypoints_shard(tmp_path / "kp" / "1.h5", [("v1", "val"), ("t2", "train")])]
    written = sample_sheets(shards, tmp_path / "sheets")
    assert written == [tmp_path / "sheets" / "no_test_videos.png"]
    assert cv2.imread(str(written[0])).std() > 5  # a picture with the reason written on it
    assert "no test videos in 2 shards (they hold train 2, val 1)" in caplog.text


def test_sheets_refuse_ids_that_leave_the_folder(tmp_path):
    shard = keypoints_shard(tmp_path / "kp" / "0.h5", [("../escaped", "test")])
    with pytest.raises(ValueError, match=r"video_id '../escaped' contains '/': refusing to build a path in .*sheets"):
        sample_sheets([shard], tmp_path / "sheets" / "demo")
    assert not list(tmp_path.rglob("escaped*"))


def test_a_keypoints_shard_without_xy_is_one_line(tmp_path, capsys):
    """Issue #25 item 11: not a KeyError traceback, but the file and what it lacks."""
    from signpipe.cli import main

    path = tmp_path / "keypoints" / "0.h5"
    with ShardWriter(path, "keypoints", 1, {"score": (np.float32, (133,))}) as w:
        w.add("v", 0, "test", score=np.ones((3, 133), np.float32))
    assert main(["show", str(path), "v", "--out", str(tmp_path / "v.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"signpipe show: error: {path}: a keypoints shard without xy") and err.count("\n") == 1
    assert not (tmp_path / "v.png").exists()
