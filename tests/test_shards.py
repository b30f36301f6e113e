import h5py
import numpy as np
import pytest

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
