"""``signpipe cost``: what a corpus of N videos will cost, forecast from a finished run's records.

Every rule writes Snakemake's ``benchmark:`` record (``results/benchmarks/<rule>/...tsv``: wall
seconds ``s`` and ``cpu_time``). This scales a finished run (the demo's, or a pilot on a slice of
your corpus) to N videos before 1,500 jobs are submitted:

- stages that work per frame (decode, pose, hands) scale with the frames: N x frames per video
  over the run's frames;
- training (pretrain, finetune) scales with the videos, with the epochs (``--epochs``: the
  run's epochs to yours, per job) and with the compute per sample (``--size MODEL=F``: how much
  more one sample costs in your model than in the run's, e.g. paper sizes over the demo's tiny
  ones). Without them the forecast keeps the run's epochs and model sizes, and says so: the
  demo's 2-epoch tiny models forecast a corpus trained the demo's way, not the papers';
- the rest (manifests, fusion, tables) with the videos too.

The run's videos and frames are counted from its frames shards, or, for a run of keypoint
datasets only, from its keypoints shards.

Wall time assumes K nodes of C cores (and G GPUs each for training) kept busy: a stage's CPU
time over the cores it can use, training time over the GPUs (at the measured speed times
``--gpu-speedup`` when the run trained on CPU). The assumptions are printed with the table.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from signpipe.shards import read_index, write_csv

PER_FRAME = ("decode", "pose", "hands")
TRAINING = ("pretrain", "finetune")
FIXED = ("sheets",)
"""Rules whose work does not grow with the corpus (contact sheets of four test videos)."""
SKIPPED = ("synth",)
"""Rules of the demo only (drawing the synthetic corpus): no real corpus runs them."""


@dataclass(frozen=True)
class Measured:
    """One finished run: its records per rule and how much data it processed."""

    records: pd.DataFrame
    """One row per job: rule, job (``<ds>/<model>`` for finetune, else ``<rule>/<record's path>``,
    e.g. ``pretrain/signbert``), s (wall seconds), cpu_time (seconds)."""
    videos: int
    frames: int
    pose_backends: tuple[str, ...] = ()
    training: pd.DataFrame | None = None
    """One row per training job: job, model, epochs (rows of its log.csv), params (numbers stored in
    its checkpoint's model state, buffers included; None when no checkpoint says)."""


RECORD_COLUMNS = ("s", "cpu_time")


def _record(path: Path) -> pd.Series:
    """The last row of one Snakemake benchmark TSV; a one-line error naming the file when it is not one."""
    try:
        table = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a Snakemake benchmark record ({type(err).__name__}); "
                         "delete it and rerun its rule") from None
    missing = [c for c in RECORD_COLUMNS if c not in table.columns]
    if missing or not len(table):
        raise ValueError(f"{path}: not a Snakemake benchmark record (" + (
            f"no {', '.join(map(repr, missing))} column" if missing else "no rows")
            + "); delete it and rerun its rule")
    row = table.iloc[-1]
    values = pd.to_numeric(row[list(RECORD_COLUMNS)], errors="coerce")
    if values.isna().any() or (values < 0).any():
        raise ValueError(f"{path}: s and cpu_time must be seconds >= 0, got {row['s']!r} and {row['cpu_time']!r}; "
                         "delete it and rerun its rule")
    return values


def _count(shards: list[Path]) -> tuple[int, int]:
    """Videos and frames of the index tables of these shards."""
    videos = frames = 0
    for shard in shards:
        with h5py.File(shard, "r") as f:
            index = read_index(f)
        videos, frames = videos + len(index), frames + int(index["length"].sum())
    return videos, frames


def _parameters(folder: Path) -> int | None:
    """Numbers in the model state of a training folder's checkpoint.pt (any phase; parameters and
    buffers), None if none is readable."""
    for checkpoint in sorted(folder.rglob("checkpoint.pt")):
        try:
            import torch

            state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["model"]
            return int(sum(t.numel() for t in state.values() if hasattr(t, "numel")))
        except Exception:  # an unreadable checkpoint only costs the forecast a column
            continue
    return None


def _training(results: Path, records: pd.DataFrame) -> pd.DataFrame:
    """Per training job of the records: its model, the epochs of its log.csv and its parameters."""
    rows = []
    for rule, job in records.loc[records["rule"].isin(TRAINING), ["rule", "job"]].itertuples(index=False):
        folder = results / "pretrain" if rule == "pretrain" else results / Path(job).parent / "models" / Path(job).name
        log = folder / "log.csv"
        epochs = len(pd.read_csv(log)) if log.is_file() else None
        rows.append({"job": job, "model": "pretrain" if rule == "pretrain" else Path(job).name,
                     "epochs": epochs, "params": _parameters(folder)})
    return pd.DataFrame(rows, columns=["job", "model", "epochs", "params"])


def read_run(results: str | os.PathLike) -> Measured:
    """The benchmark records under ``results/benchmarks``, the videos and frames of the run's
    frames shards (``results/<ds>/frames/*.h5``; a run of keypoint datasets only: its keypoints
    shards) and each training job's epochs and model size."""
    results = Path(results)
    rows = []
    for path in sorted((results / "benchmarks").rglob("*.tsv")):
        relative = path.relative_to(results / "benchmarks")
        rule = Path(relative.parts[0]).stem
        if rule in SKIPPED:
            continue
        record = _record(path)
        rest = "/".join(relative.with_suffix("").parts[1:])
        job = rest if rule == "finetune" else "/".join(filter(None, [rule, rest]))
        rows.append({"rule": rule, "job": job, "s": float(record["s"]), "cpu_time": float(record["cpu_time"])})
    if not rows:
        raise ValueError(f"{results}/benchmarks: no benchmark records; run the workflow (e.g. `make demo`) first")
    videos, frames = _count(sorted(results.glob("*/frames/*.h5")))
    if not videos:
        videos, frames = _count(sorted(results.glob("*/keypoints/*.h5")))
    if not videos or not frames:
        raise ValueError(f"{results}: no frames or keypoints shards (<ds>/frames/*.h5, <ds>/keypoints/*.h5) with "
                         "videos in them to count the run's videos and frames; point at a finished run's results")
    backends = set()
    for shard in results.glob("*/keypoints/*.h5"):
        with h5py.File(shard, "r") as f:
            backends.add(str(f.attrs.get("pose_backend", "?")))
    records = pd.DataFrame(rows)
    return Measured(records, videos, frames, tuple(sorted(backends)), _training(results, records))


def _check(name: str, value: float | None, minimum: float, strict: bool = False) -> None:
    if value is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value:g}")


def forecast(run: Measured, videos: int, frames_per_video: float | None = None, nodes: int = 1,
             cores: int = 32, gpus: int = 0, gpu_speedup: float = 1.0, epochs: int | None = None,
             sizes: Mapping[str, float] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Per rule: jobs, CPU-hours, GPU-hours and wall hours for ``videos`` videos; and the
    assumptions behind them, as sentences.

    epochs: the epochs of every training job of the forecast (None: each job's own, as run);
    sizes: model (``pretrain`` for pre-training) -> compute per sample relative to the run's model.
    """
    for name, value, minimum, strict in (
            ("--videos", videos, 0, True), ("--frames-per-video", frames_per_video, 0, True), ("--nodes", nodes, 1, False),
            ("--cores", cores, 1, False), ("--gpus", gpus, 0, False), ("--gpu-speedup", gpu_speedup, 0, True),
            ("--epochs", epochs, 1, False)):
        _check(name, value, minimum, strict)
    sizes = dict(sizes or {})
    for model, factor in sizes.items():
        _check(f"--size {model}", factor, 0, True)
    training = run.training if run.training is not None else pd.DataFrame(columns=["job", "model", "epochs", "params"])
    unknown = sorted(set(sizes) - set(training["model"]))
    if unknown:
        raise ValueError(f"--size {', '.join(unknown)}: not a training job of this run (have "
                         f"{', '.join(sorted(set(training['model']))) or 'none'}; pre-training is 'pretrain')")
    frames_per_video = frames_per_video or run.frames / run.videos
    by_frames = videos * frames_per_video / run.frames
    by_videos = videos / run.videos
    per_job = training.set_index("job") if len(training) else None
    rows = []
    for rule, records in run.records.groupby("rule", sort=False):
        scale = pd.Series(1.0 if rule in FIXED else by_frames if rule in PER_FRAME else by_videos,
                          index=records.index)
        if rule in TRAINING and per_job is not None:
            for i, job in records["job"].items():
                if job in per_job.index:
                    own = per_job.loc[job]
                    run_epochs = own["epochs"] if pd.notna(own["epochs"]) and own["epochs"] else None
                    scale[i] *= (epochs / run_epochs if epochs and run_epochs else 1) * sizes.get(own["model"], 1.0)
        cpu_s = (np.maximum(records["cpu_time"], records["s"] * 0.5) * scale).sum()
        wall_s = (records["s"] * scale).sum()
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
        f"(x{by_frames:.1f}), {', '.join(FIXED)} stay as measured, everything else scales with videos "
        f"(x{by_videos:.1f})",
        *training_lines(training, epochs, sizes),
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


def training_lines(training: pd.DataFrame, epochs: int | None, sizes: Mapping[str, float]) -> list[str]:
    """What the training forecast scales from, one line per training job: its model, the run's
    epochs and parameters, and the epochs and size factor of the forecast."""
    if not len(training):
        return []
    lines = ["TRAINING IS SCALED FROM THIS RUN'S EPOCHS AND MODEL SIZES" + (
        "" if epochs or sizes else " (unchanged: give --epochs and --size MODEL=F for another setting)") + ":"]
    for row in training.itertuples(index=False):
        run_epochs = "?" if pd.isna(row.epochs) else f"{int(row.epochs)}"
        params = "?" if pd.isna(row.params) else f"{int(row.params):,}"
        lines.append(f"  {row.job}: run {run_epochs} epochs, {params} weights -> forecast "
                     f"{epochs or run_epochs} epochs, x{sizes.get(row.model, 1.0):g} compute per sample")
    return lines


def plot(table: pd.DataFrame, path: str | os.PathLike, title: str, notes: Sequence[str] = ()) -> Path:
    """A bar chart of each rule's CPU-, GPU- and wall-hours (log scale), ``notes`` (what the
    training forecast scales from) printed under it."""
    from matplotlib.figure import Figure

    from signpipe.figures import save_figure

    rules = table[table["rule"] != "total"]
    notes_in = 0.2 * len(notes) + (0.3 if notes else 0)
    fig = Figure(figsize=(10, 0.5 * len(rules) + 1.8 + notes_in))
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
    ax.set_title(title, fontsize=10, fontweight="bold")
    if notes:
        fig.text(0.01, 0.01, "\n".join(notes), fontsize=9, family="monospace", va="bottom", color="darkred")
    fig.tight_layout(rect=(0, notes_in / fig.get_figheight(), 1, 1))
    return save_figure(fig, path)


def _format(table: pd.DataFrame) -> str:
    lines = [f"{'rule':<16}{'CPU h':>10}{'GPU h':>10}{'wall h':>10}"]
    for row in table.itertuples():
        lines.append(f"{row.rule:<16}{row.cpu_hours:>10.2f}{row.gpu_hours:>10.2f}{row.wall_hours:>10.2f}")
    return "\n".join(lines)


def _sizes(items: Sequence[str]) -> dict[str, float]:
    """``--size MODEL=F`` arguments -> {model: F}; a one-line error naming a malformed one."""
    sizes = {}
    for item in items:
        model, _, factor = item.partition("=")
        try:
            sizes[model.strip()] = float(factor)
        except ValueError:
            raise ValueError(f"--size {item!r}: expected MODEL=FACTOR, e.g. signbert=20") from None
    return sizes


def _cost(args: argparse.Namespace) -> None:
    run = read_run(args.results)
    table, assumptions = forecast(run, args.videos, args.frames_per_video, args.nodes, args.cores, args.gpus,
                                  args.gpu_speedup, args.epochs, _sizes(args.size))
    print("\n".join(f"# {line}" for line in assumptions))
    print(_format(table))
    out = Path(args.out or Path(args.results) / "cost")
    write_csv(table, out.with_suffix(".csv"))
    basis = (f"training at {args.epochs} epochs" if args.epochs else "training at THE RUN'S epochs") + (
        ", model sizes scaled" if args.size else " and model sizes")
    plot(table, out.with_suffix(".png"), f"{args.videos} videos on {args.nodes} node(s), {basis}",
         training_lines(run.training, args.epochs, _sizes(args.size)))
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
    cost.add_argument("--epochs", type=int,
                      help="epochs of every training job in the forecast (default: each job's own epochs in the run)")
    cost.add_argument("--size", action="append", default=[], metavar="MODEL=F",
                      help="compute per sample of MODEL relative to the run's (e.g. signbert=20 for paper sizes "
                           "over the demo's; pre-training: pretrain=F); repeat per model")
    cost.add_argument("--out", help="path stem of the table (.csv) and chart (.png); default RESULTS/cost")
    cost.set_defaults(func=_cost)
