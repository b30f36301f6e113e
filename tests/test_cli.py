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
