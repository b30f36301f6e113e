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
