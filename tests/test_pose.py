"""The pose stage around any backend: shard layout, clip windows, threads, quality, provenance."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import repo_env
from signpipe.datasets import write_manifest
from signpipe.decode import decode_shard
from signpipe.keypoints.quality import detection_rates
from signpipe.pose import Keypoints, collect_quality, extract_shard, fit_length, make_backend
from signpipe.pose.sidecar import read_sidecar
from signpipe.shards import read_index, read_video
from signpipe.synth import make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny synthetic corpus decoded into one frames shard, plus its manifest."""
    root = tmp_path_factory.mktemp("pose")
    make_corpus(root / "corpus", num_classes=3, signers=3, repeats=1, frames=12, width=96, height=72,
                progress=False)
    cfg = {"adapter": "synthetic", "num_shards": 1}
    manifest = write_manifest(cfg, root / "manifest.csv", root / "missing.csv", corpus_dir=root / "corpus")
    # One clip cut to a window, as a dataset with frame_start/frame_end would have it.
    manifest.loc[0, ["frame_start", "frame_end"]] = [2, 7]
    manifest.to_csv(root / "manifest.csv", index=False)
    decode_shard(root / "manifest.csv", 0, root / "frames.h5", root / "failures.csv", short_side=48,
                 progress=False)
    return root, manifest


def test_sidecar_shard_matches_the_files(corpus, tmp_path):
    root, manifest = corpus
    quality = extract_shard(root / "manifest.csv", root / "frames.h5", tmp_path / "kp.h5", tmp_path / "q.csv",
                            {"backend": "sidecar"}, threads=1, progress=False)
    with h5py.File(tmp_path / "kp.h5") as f, h5py.File(root / "frames.h5") as frames:
        index, frame_index = read_index(f), read_index(frames)
        assert index[["video_id", "length", "label", "split"]].equals(
            frame_index[["video_id", "length", "label", "split"]])  # frame t <-> keypoints t
        assert f.attrs["schema"] == "signpipe/keypoints/1" and f.attrs["pose_backend"] == "sidecar"
        for row in index.itertuples():
            expect = read_sidecar(manifest.set_index("video_id").loc[row.video_id, "keypoints"])
            m = manifest.set_index("video_id").loc[row.video_id]
            window = slice(m.frame_start, None if m.frame_end < 0 else m.frame_end)
            np.testing.assert_array_equal(read_video(f, "xy", row._asdict()), expect.xy[window])
            np.testing.assert_array_equal(read_video(f, "score", row._asdict()), expect.score[window])
        first = index.set_index("video_id").loc[manifest.loc[0, "video_id"]]
        assert first["length"] == 5  # the cut clip
    table = pd.read_csv(tmp_path / "q.csv", dtype={"video_id": str}, keep_default_na=False)
    assert table.equals(quality.astype(table.dtypes.to_dict())) and len(table) == len(manifest)
    assert (table["rate_body"] == 1).all() and (table["multi_person_frames"] == 0).all()


def test_threads_give_the_same_shard(corpus, tmp_path):
    root, _ = corpus
    for threads in (1, 2):
        extract_shard(root / "manifest.csv", root / "frames.h5", tmp_path / f"{threads}.h5", tmp_path / f"{threads}.csv",
                      {"backend": "sidecar"}, threads=threads, progress=False)
    with h5py.File(tmp_path / "1.h5") as one, h5py.File(tmp_path / "2.h5") as two:
        np.testing.assert_array_equal(one["xy"][:], two["xy"][:])
        assert read_index(one).equals(read_index(two))
        provenance = {k: v for k, v in one.attrs.items() if k.startswith("pose_")}
        assert provenance and provenance == {k: v for k, v in two.attrs.items() if k.startswith("pose_")}


def test_collect_quality_concatenates_shards(tmp_path):
    a = pd.DataFrame({"video_id": ["07", "b"], "frames": [3, 4], "rate_body": [1.0, 0.5], "rate_face": [1, 1],
                      "rate_left_hand": [0, 1], "rate_right_hand": [1, 0], "multi_person_frames": [0, 2]})
    a.iloc[:1].to_csv(tmp_path / "0.csv", index=False)
    a.iloc[1:].to_csv(tmp_path / "1.csv", index=False)
    table = collect_quality([tmp_path / "1.csv", tmp_path / "0.csv"], tmp_path / "all.csv")
    assert table["video_id"].tolist() == ["07", "b"]


def test_fit_length_pads_with_undetected_frames():
    kp = Keypoints(np.ones((3, 133, 2), np.float32), np.ones((3, 133), np.float32), np.ones(3, np.int64))
    padded = fit_length(kp, 5, "v")
    assert padded.score[3:].sum() == 0 and padded.score[:3].sum() == 3 * 133
    assert len(fit_length(kp, 2, "v").xy) == 2


def test_detection_rates_per_part():
    score = np.zeros((4, 133), np.float32)
    score[:, :11] = 0.9  # upper body in every frame
    score[:2, 91:112] = 0.8  # left hand in half the frames
    score[0, 112:120] = 0.9  # a few right-hand points: less than half the hand
    assert detection_rates(score) == {"body": 1.0, "face": 0.0, "left_hand": 0.5, "right_hand": 0.0}


def test_a_bad_backend_config_names_the_key_with_worker_processes(corpus, tmp_path):
    root, _ = corpus
    with pytest.raises(ValueError, match="pose.mmpose_json.dir"):
        extract_shard(root / "manifest.csv", root / "frames.h5", tmp_path / "kp.h5", tmp_path / "q.csv",
                      {"backend": "mmpose-json"}, threads=2, progress=False)
    assert not (tmp_path / "kp.h5").exists()


def test_unknown_backend_names_the_key():
    with pytest.raises(ValueError, match="pose.backend: unknown backend 'openpifpaf'"):
        make_backend({"backend": "openpifpaf"})


@pytest.mark.parametrize("threads", [1, 2])
def test_a_video_that_fails_is_a_quality_row_not_a_failed_shard(corpus, tmp_path, threads):
    """One broken sidecar file: its video keeps its frames with undetected keypoints and says why in quality.csv."""
    root, manifest = corpus
    broken = manifest.copy()
    bad = broken.loc[1, "video_id"]
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    broken.loc[1, "keypoints"] = str(tmp_path / "broken.npz")
    broken.to_csv(tmp_path / "manifest.csv", index=False)
    quality = extract_shard(tmp_path / "manifest.csv", root / "frames.h5", tmp_path / "kp.h5", tmp_path / "q.csv",
                            {"backend": "sidecar"}, threads=threads, progress=False)
    table = pd.read_csv(tmp_path / "q.csv", dtype={"video_id": str}, keep_default_na=False).set_index("video_id")
    assert len(table) == len(quality) == len(manifest)
    assert table.loc[bad, "error"].startswith("BadZipFile: ") and table.loc[bad, "rate_body"] == 0
    assert (table.drop(bad)["error"] == "").all() and (table.drop(bad)["rate_body"] == 1).all()
    with h5py.File(tmp_path / "kp.h5") as f, h5py.File(root / "frames.h5") as frames:
        index = read_index(f).set_index("video_id")
        assert index["length"].equals(read_index(frames).set_index("video_id")["length"])  # frame t <-> keypoints t
        assert not read_video(f, "score", index.loc[bad]).any()


JOB = """
import sys
from signpipe.pose import extract_shard

if __name__ == "__main__":
    extract_shard(*sys.argv[1:5], {"backend": "sidecar"}, threads=2, progress=False)
"""


def _children(pid: int) -> list[int]:
    """Live (not zombie) pool workers whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; parent-death signals are Linux's")
def test_pose_workers_die_with_a_killed_job(corpus, tmp_path):
    """kill -9 of a pose job must not leave its worker processes (MediaPipe: ~600 MB each) running."""
    root, manifest = corpus
    os.mkfifo(tmp_path / "blocks.npz")  # reading it waits for a writer: the workers are busy until killed
    manifest.assign(keypoints=str(tmp_path / "blocks.npz")).to_csv(tmp_path / "manifest.csv", index=False)
    (tmp_path / "job.py").write_text(JOB)
    job = subprocess.Popen([sys.executable, str(tmp_path / "job.py"), str(tmp_path / "manifest.csv"),
                            str(root / "frames.h5"), str(tmp_path / "kp.h5"), str(tmp_path / "q.csv")], env=repo_env())
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while len(workers) < 2 and time.monotonic() < deadline and job.poll() is None:
            time.sleep(0.2)
            workers = _children(job.pid)
        assert len(workers) == 2, f"the job did not start its 2 workers (exit code {job.poll()})"
        time.sleep(1)  # let them reach the blocking read
        job.kill()
        job.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], "pose workers outlived their killed job"
    finally:
        job.kill()
        job.wait()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
