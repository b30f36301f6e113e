"""signpipe cost: a finished run's benchmark records scaled to another corpus."""

import numpy as np
import pandas as pd
import pytest

from signpipe.cli import main
from signpipe.cost import forecast, read_run
from signpipe.decode import FRAME_ARRAYS
from signpipe.shards import ShardWriter

RECORD = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n{s}\t0:00:01\t1\t1\t1\t1\t0\t0\t50\t{cpu}\n"


@pytest.fixture
def results(tmp_path):
    """A run of 10 videos x 10 frames: two decode jobs (8 + 4 CPU s), one finetune (30 s), the demo's synth."""
    root = tmp_path / "results"
    for rule, name, s, cpu in [("decode", "d/0", 10, 8), ("decode", "d/1", 5, 4), ("finetune", "d/m", 30, 50),
                               ("synth", "d", 99, 99), ("tables", None, 1, 1)]:
        path = root / "benchmarks" / (f"{rule}/{name}.tsv" if name else f"{rule}.tsv")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(RECORD.format(s=s, cpu=cpu))
    with ShardWriter(root / "d" / "frames" / "0.h5", "frames", 1, FRAME_ARRAYS) as writer:
        for k in range(10):
            writer.add(f"v{k}", 0, "train", jpeg=[b"x"] * 10, height=np.ones(10, np.int32), width=np.ones(10, np.int32))
    return root


def test_forecast_scales_frames_and_videos(results):
    run = read_run(results)
    assert (run.videos, run.frames) == (10, 100) and "synth" not in set(run.records["rule"])
    table, assumptions = forecast(run, videos=40, frames_per_video=20, nodes=2, cores=4)
    rows = table.set_index("rule")
    assert rows.loc["decode", "cpu_hours"] == pytest.approx(12 * 8 / 3600)  # 800 frames / 100: x8
    assert rows.loc["finetune", "cpu_hours"] == pytest.approx(50 * 4 / 3600)  # 40 videos / 10: x4
    assert rows.loc["decode", "wall_hours"] == pytest.approx(12 * 8 / 3600 / 8)  # 2 nodes x 4 cores
    assert rows.loc["total", "cpu_hours"] == pytest.approx(rows.drop("total")["cpu_hours"].sum())
    assert any("40 videos x 20.0 frames" in line for line in assumptions)
    gpu, _ = forecast(run, videos=40, frames_per_video=20, nodes=1, cores=4, gpus=2, gpu_speedup=10)
    assert gpu.set_index("rule").loc["finetune", "gpu_hours"] == pytest.approx(30 * 4 / 10 / 3600)


def test_cost_command_writes_table_and_chart(results, tmp_path, capsys):
    assert main(["cost", str(results), "--videos", "21083", "--out", str(tmp_path / "wlasl")]) == 0
    out = capsys.readouterr().out
    assert "# measured run: 10 videos" in out and "decode" in out and "total" in out
    assert set(pd.read_csv(tmp_path / "wlasl.csv")["rule"]) >= {"decode", "finetune", "total"}
    assert (tmp_path / "wlasl.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["cost", str(tmp_path / "nothing"), "--videos", "5"]) == 1


def test_training_scales_with_epochs_and_model_size(results, capsys):
    """The run's epochs (rows of log.csv) are printed, and --epochs / --size rescale training only."""
    log = results / "d" / "models" / "m" / "log.csv"
    log.parent.mkdir(parents=True)
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5]}).to_csv(log, index=False)
    run = read_run(results)
    assert run.training.set_index("job").loc["d/m", "epochs"] == 2
    base, lines = forecast(run, videos=40, frames_per_video=20, nodes=1, cores=4)
    assert any("d/m: run 2 epochs, ? weights -> forecast 2 epochs, x1" in line for line in lines)
    scaled, lines = forecast(run, videos=40, frames_per_video=20, nodes=1, cores=4, epochs=20, sizes={"m": 3})
    ratio = (scaled.set_index("rule")["cpu_hours"] / base.set_index("rule")["cpu_hours"]).round(6)
    assert ratio["finetune"] == 30 and ratio["decode"] == 1 and ratio["tables"] == 1
    assert any("d/m: run 2 epochs, ? weights -> forecast 20 epochs, x3" in line for line in lines)
    assert main(["cost", str(results), "--videos", "40", "--epochs", "20", "--size", "m=3",
                 "--out", str(results / "c")]) == 0
    assert "TRAINING IS SCALED FROM THIS RUN'S EPOCHS AND MODEL SIZES" in capsys.readouterr().out


def test_keypoint_only_runs_are_counted_from_keypoints_shards(results):
    """A run of keypoint datasets has no frames shards: its keypoints shards give videos and frames."""
    (results / "d" / "frames" / "0.h5").rename(results / "d" / "frames" / "gone")
    with pytest.raises(ValueError, match="no frames or keypoints shards"):
        read_run(results)
    with ShardWriter(results / "d" / "keypoints" / "0.h5", "keypoints", 1,
                     {"xy": (np.float32, (133, 2)), "score": (np.float32, (133,))}) as writer:
        for k in range(4):
            writer.add(f"v{k}", 0, "train", xy=np.zeros((5, 133, 2), np.float32), score=np.ones((5, 133), np.float32))
    run = read_run(results)
    assert (run.videos, run.frames) == (4, 20)


@pytest.mark.parametrize("args, message", [
    (["--nodes", "0"], "--nodes must be >= 1, got 0"),
    (["--videos", "-5"], "--videos must be > 0, got -5"),
    (["--cores", "0"], "--cores must be >= 1, got 0"),
    (["--gpu-speedup", "0"], "--gpu-speedup must be > 0, got 0"),
    (["--frames-per-video", "-1"], "--frames-per-video must be > 0, got -1"),
    (["--size", "m"], "--size 'm': expected MODEL=FACTOR"),
    (["--size", "nope=2"], "--size nope: not a training job of this run (have m;"),
])
def test_bad_arguments_are_one_line_errors(results, tmp_path, capsys, args, message):
    videos = [] if "--videos" in args else ["--videos", "40"]
    assert main(["cost", str(results), *videos, "--out", str(tmp_path / "c"), *args]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "c.csv").exists()


def test_a_malformed_benchmark_record_names_its_file(results, capsys):
    bad = results / "benchmarks" / "decode" / "d" / "2.tsv"
    bad.write_text("seconds\tcpu\n1\t2\n")
    assert main(["cost", str(results), "--videos", "40"]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: not a Snakemake benchmark record (no 's', 'cpu_time' column)" in err and len(err.splitlines()) == 1
    bad.write_text("s\tcpu_time\nfast\t2\n")
    with pytest.raises(ValueError, match="s and cpu_time must be seconds >= 0, got 'fast'"):
        read_run(results)
