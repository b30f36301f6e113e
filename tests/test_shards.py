import errno
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from conftest import repo_env
from signpipe.shards import VLEN_BYTES, ShardWriter, read_index, read_video, shard_of

ARRAYS = {"xy": (np.float32, (133, 2)), "jpeg": (VLEN_BYTES, ())}


def test_shard_of_is_stable_and_spread():
    assert shard_of("69241", 8) == shard_of("69241", 8)
    assert 0 <= shard_of("05237", 3) < 3
    counts = np.bincount([shard_of(f"v{i}", 4) for i in range(400)], minlength=4)
    assert counts.min() > 60  # crc32 spreads ids roughly evenly


def test_roundtrip_ragged_videos(tmp_path):
    out = tmp_path / "s.h5"
    a = np.random.default_rng(0).random((5, 133, 2), dtype=np.float32)
    b = np.random.default_rng(1).random((3, 133, 2), dtype=np.float32)
    with ShardWriter(out, "keypoints", 1, ARRAYS, config={"k": 1}, source="x.csv") as w:
        w.add("05237", 7, "train", xy=a, jpeg=[b"a" * (i + 1) for i in range(5)])
        w.add("v2", 1, "test", xy=b, jpeg=[b"\xff\xd8", b"", b"zz"])
        w.add("same", 2, "val", xy=b[:2], jpeg=[b"ab", b"cd"])  # equal-length rows stay rows
    with h5py.File(out) as f:
        index = read_index(f)
        assert index["video_id"].tolist() == ["05237", "v2", "same"]  # leading zero kept
        assert index["start"].tolist() == [0, 5, 8] and index["length"].tolist() == [5, 3, 2]
        assert f.attrs["schema"] == "signpipe/keypoints/1"
        np.testing.assert_array_equal(read_video(f, "xy", index.iloc[1]), b)
        assert bytes(read_video(f, "jpeg", index.iloc[1])[2]) == b"zz"
        assert [bytes(x) for x in read_video(f, "jpeg", index.iloc[2])] == [b"ab", b"cd"]
        assert f["xy"].chunks[0] >= 1 and f["xy"].maxshape[0] is None


def test_empty_shard_is_complete(tmp_path):
    out = tmp_path / "e.h5"
    with ShardWriter(out, "frames", 1, ARRAYS):
        pass
    with h5py.File(out) as f:
        assert len(read_index(f)) == 0 and f["xy"].shape == (0, 133, 2)


def test_failed_writer_leaves_no_file(tmp_path):
    out = tmp_path / "s.h5"
    with pytest.raises(RuntimeError):
        with ShardWriter(out, "frames", 1, ARRAYS) as w:
            w.add("a", 0, "train", xy=np.zeros((2, 133, 2), np.float32), jpeg=[b"1", b"2"])
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_add_rejects_mismatched_arrays(tmp_path):
    with ShardWriter(tmp_path / "s.h5", "frames", 1, ARRAYS) as w:
        with pytest.raises(ValueError, match="video a: arrays differ"):
            w.add("a", 0, "train", xy=np.zeros((2, 133, 2), np.float32), jpeg=[b"1"])
        with pytest.raises(ValueError, match="missing"):
            w.add("b", 0, "train", xy=np.zeros((2, 133, 2), np.float32))


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MB tmpfs to fill (mounting needs root; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mount.returncode:
        pytest.skip(f"cannot mount a small tmpfs to fill: {mount.stderr.strip()} (needs root)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_is_named_and_leaves_no_temp_file(small_disk):
    jpeg = [np.random.default_rng(0).bytes(100_000) for _ in range(30)]  # 3 MB of frames for a 2 MB disk
    with pytest.raises(OSError, match=rf"no space left on {small_disk} for video a of s.h5 \(\d MB needed, 1 MB free"
                       ) as failed:
        with ShardWriter(small_disk / "s.h5", "frames", 1, ARRAYS) as w:
            w.add("a", 0, "train", xy=np.zeros((30, 133, 2), np.float32), jpeg=jpeg)
    assert failed.value.errno == errno.ENOSPC
    assert list(small_disk.iterdir()) == []


WRITER = """
import sys, time
from signpipe.shards import ShardWriter, VLEN_BYTES
with ShardWriter(sys.argv[1], "frames", 1, {"jpeg": (VLEN_BYTES, ())}):
    print("writing", flush=True)
    time.sleep(60)
"""


def _writer(out):
    """A process in the middle of writing ``out``."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(out)], stdout=subprocess.PIPE, text=True,
                            env=repo_env())
    assert proc.stdout.readline() == "writing\n"
    return proc


def test_temp_files_of_killed_writers_are_removed_at_the_next_start(tmp_path):
    out = tmp_path / "s.h5"
    live = _writer(out)  # another writer of the same output, still running: its temp file stays
    try:
        killed = _writer(out)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        legacy_old, legacy_new = tmp_path / ".s.h5.abcd1234.h5.tmp", tmp_path / ".s.h5.efgh5678.h5.tmp"
        for legacy in (legacy_old, legacy_new):  # no pid in the name (older signpipe): judged by age
            legacy.write_bytes(b"")
        os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
        before = {p.name for p in tmp_path.glob(".s.h5.*.tmp")}
        assert len(before) == 4
        with ShardWriter(out, "frames", 1, ARRAYS):
            pass
        after = {p.name for p in tmp_path.glob(".s.h5.*.tmp")}
        assert len(after) == 2 and legacy_new.name in after and legacy_old.name not in after
        assert f".{live.pid}@" in "".join(after - {legacy_new.name})
    finally:
        live.kill()
        live.wait()
