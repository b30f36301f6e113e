"""``signpipe cost``: what a corpus of N videos will cost, forecast from a finished run's records.

Every rule writes Snakemake's ``benchmark:`` record (``results/benchmarks/<rule>/...tsv``: wall
seconds ``s`` and ``cpu_time``). This scales a finished run (the demo's, or a pilot on a slice of
your corpus) to N videos before 1,500 jobs are submitted:

- stages that work per frame (decode, pose, hands) scale with the frames: N x frames per video
  over the run's frames;
- training (pretrain, finetune) scales with the videos (same epochs and model sizes as the run);
- the rest (manifests, fusion, tables) with the videos too.

Wall time assumes K nodes of C cores (and G GPUs each for training) kept busy: a stage's CPU
time over the cores it can use, training time over the GPUs (at the measured speed times
``--gpu-speedup`` when the run trained on CPU). The assumptions are printed with the table.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import pandas as pd

from signpipe.shards import read_index, write_csv

PER_FRAME = ("decode", "pose", "hands")
TRAINING = ("pretrain", "finetune")
SKIPPED = ("synth",)
"""Rules of the demo only (drawing the synthetic corpus): no real corpus runs them."""


@dataclass(frozen=True)
class Measured:
    """One finished run: its records per rule and how much data it processed."""

    records: pd.DataFrame
    """One row per job: rule, s (wall seconds), cpu_time (seconds)."""
    videos: int
    frames: int
    pose_backends: tuple[str, ...] = ()


def read_run(results: str | os.PathLike) -> Measured:
    """The benchmark records under ``results/benchmarks`` and the videos and frames of the run's
    frames shards (``results/<ds>/frames/*.h5``)."""
    results = Path(results)
    rows = []
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        table = pd.read_csv(path, sep="\t")
        if len(table):
            rule = Path(path.relative_to(results / "benchmarks").parts[0]).stem
            if rule in SKIPPED:
                continue
            rows.append({"rule": rule, "s": float(table["s"].iloc[-1]), "cpu_time": float(table["cpu_time"].iloc[-1])})
    if not rows:
        raise ValueError(f"{results}/benchmarks: no benchmark records; run the workflow (e.g. `make demo`) first")
    videos = frames = 0
    for shard in results.glob("*/frames/*.h5"):
        with h5py.File(shard, "r") as f:
            index = read_index(f)
        videos, frames = videos + len(index), frames + int(index["length"].sum())
    if not videos:
        raise ValueError(f"{results}: no frames shards (<ds>/frames/*.h5) to count the run's videos and frames")
    backends = set()
    for shard in results.glob("*/keypoints/*.h5"):
        with h5py.File(shard, "r") as f:
            backends.add(str(f.attrs.get("pose_backend", "?")))
    return Measured(pd.DataFrame(rows), videos, frames, tuple(sorted(backends)))


def forecast(run: Measured, videos: int, frames_per_video: float | None = None, nodes: int = 1,
             cores: int = 32, gpus: int = 0, gpu_speedup: float = 1.0) -> tuple[pd.DataFrame, list[str]]:
    """Per rule: jobs, CPU-hours, GPU-hours and wall hours for ``videos`` videos; and the
    assumptions behind them, as sentences."""
    frames_per_video = frames_per_video or run.frames / run.videos
    by_frames = videos * frames_per_video / run.frames
    by_videos = videos / run.videos
    rows = []
    for rule, records in run.records.groupby("rule", sort=False):
        scale = by_frames if rule in PER_FRAME else by_videos
        cpu_s = max(records["cpu_time"].sum(), records["s"].sum() * 0.5) * scale
        wall_s = records["s"].sum() * scale
        if rule in TRAINING and gpus:
            gpu_h = wall_s / gpu_speedup / 3600
            wall_h = gpu_h / min(nodes * gpus, len(records))
            rows.append({"rule": rule, "cpu_hours": 0.0, "gpu_hours": gpu_h, "wall_hours": wall_h})
        else:
            rows.append({"rule": rule, "cpu_hours": cpu_s / 3600, "gpu_hours": 0.0,
                         "wall_hours": cpu_s / 3600 / (nodes * cores)})
    table = pd.DataFrame(rows).sort_values("wall_hours", ascending=False, ignore_index=True)
    total = table[["cpu_hours", "gpu_hours", "wall_hours"]].sum()
    table = pd.concat([table, pd.DataFrame([{"rule": "total", **total.to_dict()}])], ignore_index=True)
    assumptions = [
        f"measured run: {run.videos} videos, {run.frames} frames ({run.frames / run.videos:.1f} per video), "
        f"{len(run.records)} jobs",
        f"forecast: {videos} videos x {frames_per_video:.1f} frames; {', '.join(PER_FRAME)} scale with frames "
        f"(x{by_frames:.1f}), everything else with videos (x{by_videos:.1f}), same epochs and model sizes",
        f"{nodes} node(s) x {cores} cores" + (f" x {gpus} GPU(s)" if gpus else ", training on CPU")
        + "; every stage keeps all of them busy (wall = work / resources; queueing not counted)",
    ]
    if run.pose_backends:
        assumptions.append(f"pose ran with {', '.join(run.pose_backends)}" + (
            ": keypoints shipped with the data cost almost nothing; a detector (mediapipe, ~16 frames/s per "
            "process here) costs far more, so forecast from a pilot run with your backend"
            if "sidecar" in run.pose_backends else ""))
    if gpus:
        assumptions.append(f"training ran at the measured speed / {gpu_speedup:g} on a GPU "
                           "(measure a pilot run on your GPUs for a real number)")
    return table, assumptions


def plot(table: pd.DataFrame, path: str | os.PathLike, title: str) -> Path:
    """A bar chart of each rule's CPU-, GPU- and wall-hours (log scale)."""
    from matplotlib.figure import Figure

    from signpipe.figures import save_figure

    rules = table[table["rule"] != "total"]
    fig = Figure(figsize=(9, 0.5 * len(rules) + 1.6))
    ax = fig.add_subplot()
    y = range(len(rules))
    for offset, column, colour in ((-0.27, "cpu_hours", "tab:blue"), (0, "gpu_hours", "tab:green"),
                                   (0.27, "wall_hours", "tab:orange")):
        ax.barh([k + offset for k in y], rules[column].where(rules[column] > 0), height=0.27, color=colour,
                label=column.replace("_", " "))  # no bar where a rule has none
    ax.set_yticks(list(y), rules["rule"])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("hours")
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def _format(table: pd.DataFrame) -> str:
    lines = [f"{'rule':<16}{'CPU h':>10}{'GPU h':>10}{'wall h':>10}"]
    for row in table.itertuples():
        lines.append(f"{row.rule:<16}{row.cpu_hours:>10.2f}{row.gpu_hours:>10.2f}{row.wall_hours:>10.2f}")
    return "\n".join(lines)


def _cost(args: argparse.Namespace) -> None:
    run = read_run(args.results)
    table, assumptions = forecast(run, args.videos, args.frames_per_video, args.nodes, args.cores, args.gpus,
                                  args.gpu_speedup)
    print("\n".join(f"# {line}" for line in assumptions))
    print(_format(table))
    out = Path(args.out or Path(args.results) / "cost")
    write_csv(table, out.with_suffix(".csv"))
    plot(table, out.with_suffix(".png"), f"{args.videos} videos on {args.nodes} node(s)")
    print(f"written: {out.with_suffix('.csv')}, {out.with_suffix('.png')}")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``signpipe cost`` to the command line."""
    cost = sub.add_parser(
        "cost", help="forecast CPU/GPU hours and wall time for N videos from a finished run's benchmark records",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    cost.add_argument("results", help="results folder of a finished run (e.g. results after `make demo`)")
    cost.add_argument("--videos", type=int, required=True, help="videos of the corpus to forecast (WLASL2000: 21083)")
    cost.add_argument("--frames-per-video", type=float, help="mean frames per video (default: the run's)")
    cost.add_argument("--nodes", type=int, default=1)
    cost.add_argument("--cores", type=int, default=32, help="CPU cores per node")
    cost.add_argument("--gpus", type=int, default=0, help="GPUs per node for the training rules (0: train on CPU)")
    cost.add_argument("--gpu-speedup", type=float, default=10.0,
                      help="GPU speed over the run's CPU training when the run had no GPU (an assumption)")
    cost.add_argument("--out", help="path stem of the table (.csv) and chart (.png); default RESULTS/cost")
    cost.set_defaults(func=_cost)

