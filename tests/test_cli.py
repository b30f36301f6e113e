import h5py
import numpy as np
import pytest

from signpipe.cli import main
from signpipe.shards import VLEN_BYTES, ShardWriter


@pytest.fixture
def shard(tmp_path):
    path = tmp_path / "0.h5"
    arrays = {"xy": (np.float32, (133, 2)), "jpeg": (VLEN_BYTES, ())}
    xy = np.arange(4 * 133 * 2, dtype=np.float32).reshape(4, 133, 2)
    xy[1, 0, 0] = np.nan
    with ShardWriter(path, "keypoints", 1, arrays, config={"backend": "sidecar"}) as w:
        w.add("a", 0, "train", xy=xy[:3], jpeg=[b"x" * 10, b"y" * 20, b"z" * 30])
        w.add("b", 1, "test", xy=xy[3:], jpeg=[b"w" * 40])
    return path


def test_inspect_reports_tree_attrs_and_stats(shard, capsys):
    assert main(["inspect", str(shard)]) == 0
    out = capsys.readouterr().out
    assert "@schema: signpipe/keypoints/1" in out
    assert '@config: {"backend": "sidecar"}' in out
    assert "videos: 2 (test 1, train 1), frames 4" in out
    assert "/xy (4, 133, 2) float32" in out and "non-finite 1" in out
    assert "/jpeg (4,) vlen bytes" in out and "bytes/row min 10 mean 25 max 40" in out
    assert "/index (2,) table(video_id, start, length, label, split)" in out


def test_inspect_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.h5")]) == 1
    assert "nope.h5" in capsys.readouterr().err


def test_help_explains_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "inspect" in out and "synth" in out and "snakemake --cores all" in out


def test_inspect_reports_part_detection_of_keypoints(tmp_path, capsys):
    path = tmp_path / "kp.h5"
    score = np.zeros((4, 133), np.float32)
    score[:, :11] = 0.9
    score[:1, 112:133] = 0.9
    arrays = {"score": (np.float32, (133,))}
    with ShardWriter(path, "keypoints", 1, arrays) as w:
        w.add("a", 0, "train", score=score)
    assert main(["inspect", str(path)]) == 0
    assert "body 1.00, face 0.00, left_hand 0.00, right_hand 0.25" in capsys.readouterr().out


@pytest.fixture
def not_hdf5(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not an HDF5 file\n")
    return path


@pytest.fixture
def bad_index(tmp_path):
    """An HDF5 file whose /index is a plain array, not the index table."""
    path = tmp_path / "odd.h5"
    with h5py.File(path, "w") as f:
        f.attrs["schema"] = "signpipe/keypoints/1"
        f["index"] = np.arange(3)
    return path


@pytest.mark.parametrize("command", [["inspect"], ["show"]])
def test_non_hdf5_file_is_named_without_a_traceback(not_hdf5, capsys, command):
    argv = [*command, str(not_hdf5)] + (["a"] if command == ["show"] else [])
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert f"{not_hdf5}: not an HDF5 file" in captured.err and "Traceback" not in captured.err + captured.out


@pytest.mark.parametrize("command", [["inspect"], ["show"]])
def test_index_that_is_not_a_table_is_named(bad_index, capsys, command):
    argv = [*command, str(bad_index)] + (["a"] if command == ["show"] else [])
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"{bad_index}: /index is an array of shape (3,) and dtype int64, not a signpipe index table" in err


def test_truncated_hdf5_is_named(shard, tmp_path, capsys):
    cut = tmp_path / "cut.h5"
    cut.write_bytes(shard.read_bytes()[:4096])
    assert main(["inspect", str(cut)]) == 1
    assert f"{cut}: cannot open the HDF5 file (" in capsys.readouterr().err


def test_inspect_reports_scalars_and_all_nan_arrays(tmp_path, capsys):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["scalar"] = 1.5
        f["nan"] = np.full(3, np.nan)
        f.attrs["config"] = "not json"
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "/scalar () float64" in out and "scalar" in out and "all 3 values non-finite" in out
    assert "@config: not json" in out
