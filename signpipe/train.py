"""The training loop every signpipe model shares (SignBERT pre-training and fine-tuning, baselines).

One function, :func:`fit`, runs a model for some epochs and owns what every run needs:
device choice (CUDA when present, else CPU), mixed precision on CUDA (``amp``: fp16 or bf16),
deterministic algorithms (``deterministic``), DistributedDataParallel when started by ``torchrun``
(no code change: the ``RANK``/``WORLD_SIZE`` variables decide; ``batch_size`` is per rank, each
rank draws its own masks and dropout, BatchNorm becomes SyncBatchNorm on GPUs and the logged
training metrics are the mean over every rank's samples; each rank evaluates its share of the
batches with rank 0's weights, :func:`predict`), seeding, progress (``signpipe.logs.track``), a CSV log with a PNG of its curves, and a checkpoint
written at the end of every epoch under a temporary name, so a killed job leaves the previous checkpoint or
the new one, never a broken file. Started again, it resumes from the checkpoint and ends where
an uninterrupted run would have ended (the data order and dropout are seeded per epoch).
The paper defaults (SignBERT §4: Adam, lr 1e-3 decayed x0.1 every 20 epochs, weight decay
1e-4) are the defaults of :class:`TrainConfig`.
"""

from __future__ import annotations

import ast
import datetime
import hashlib
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from signpipe.logs import track
from signpipe.settings import from_config
from signpipe.figures import save_figure
from signpipe.shards import atomic_path, write_csv

log = logging.getLogger(__name__)


CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"
CURVES = "curves.png"

Batch = Mapping[str, Any]
Step = Callable[[nn.Module, Batch], tuple[Tensor, dict[str, Tensor | float]]]
"""``step(model, batch) -> (loss, metrics)``: one training step's forward pass and loss; metrics
as 0-d tensors on the device are read once per epoch (a float is a wait for the GPU per step)."""
Evaluate = Callable[[nn.Module], dict[str, float]]
"""``evaluate(model) -> metrics`` after each epoch (e.g. validation accuracy), on every rank:
under torchrun :func:`predict` gives each rank its share of the batches and every rank the whole
result, so the metrics are those of one process evaluating rank 0's weights."""


OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("step", "plateau", "cosine")
AMP = {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}
"""``amp`` setting -> autocast dtype (None: float32 throughout)."""


@dataclass
class TrainConfig:
    """Optimisation settings; defaults are SignBERT's (§4 of the paper). A model's spec gives
    its own paper's defaults over these (``signpipe.models.ModelSpec.defaults``)."""

    epochs: int = 60
    batch_size: int = 32
    optimizer: str = "adam"
    """adam | sgd (with ``momentum``)."""
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "step"
    """step: x ``lr_gamma`` every ``lr_step`` epochs; plateau: x ``lr_gamma`` after ``patience``
    epochs without a lower validation loss (training loss without val videos); cosine: to 0 over ``epochs``."""
    lr_step: int = 20
    """Epochs between learning-rate decays (schedule step)."""
    lr_gamma: float = 0.1
    patience: int = 10
    """Epochs without improvement before a plateau decay."""
    seed: int = 0
    device: str = "auto"
    amp: str = "fp16"
    """Mixed precision on CUDA: fp16 (autocast + gradient scaling), bf16 (autocast, no scaling;
    Ampere or newer) or off. CPU runs are float32 whatever it says."""
    deterministic: bool = True
    """Deterministic algorithms (warn where an op has none) and no cuDNN autotuning: the same
    settings give the same numbers on one machine. False lets cuDNN pick the fastest kernels."""
    num_workers: int | None = None
    """DataLoader worker processes; None: the job's threads - 1 on CUDA (the loader must keep up
    with the GPU), 0 on CPU (the loader and the model share the job's cores)."""
    grad_clip: float | None = None


def train_config(cfg: Mapping[str, Any] | None) -> TrainConfig:
    """The ``TrainConfig`` keys of a settings block (others ignored; missing or null ones default);
    an unknown optimizer or schedule names its key."""
    training = from_config(TrainConfig, cfg)
    if isinstance(training.amp, bool):  # YAML reads `amp: off` as false
        training.amp = "fp16" if training.amp else "off"
    for key, known in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("amp", tuple(AMP))):
        if getattr(training, key) not in known:
            raise ValueError(f"{key}: {getattr(training, key)!r} unknown; known: {', '.join(known)}")
    return training


def make_optimizer(parameters: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or SGD with momentum, with ``cfg``'s lr and weight decay."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)


def make_schedule(optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> Any:
    """The lr schedule of ``cfg.schedule``, stepped once per epoch (plateau: on the validation loss)."""
    if cfg.schedule == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=cfg.lr_gamma, patience=cfg.patience)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step, gamma=cfg.lr_gamma)


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (this process's GPU under torchrun) when present, else CPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda was asked for but no CUDA device is visible")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def use_threads(threads: int | None) -> None:
    """Let torch use ``threads`` CPU threads (a job's share of the machine); None leaves its
    default, every core, which oversubscribes a machine shared with other jobs."""
    if threads:
        torch.set_num_threads(int(threads))


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp`` (:class:`TrainConfig`'s key) on ``device``; None (float32) on
    CPU or with ``amp: off``."""
    return AMP[amp] if device.type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to ``dtype`` on ``device`` (:func:`autocast_dtype`); None: float32, autocast off."""
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def set_determinism(deterministic: bool) -> None:
    """Deterministic algorithms (warn_only: an op without one warns, it does not stop the run) and
    cuDNN without autotuning, or the fastest kernels (``cudnn.benchmark``) when False. Ops that stay
    non-deterministic on CUDA even so are listed in docs/training.md (GPUs)."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it to be repeatable
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of an epoch's dropout and masking: the same stream when resumed, another per rank
    (the same masks on every rank would waste all but one)."""
    return (seed * 100003 + epoch + rank * 1000003) % 2**32


def sync_batchnorm(model: nn.Module, device: torch.device, world: int) -> nn.Module:
    """BatchNorm layers as SyncBatchNorm under data-parallel GPU training, so their statistics span
    every rank's samples as on one GPU (GLE-Net's and HMA's per-GPU batches are a few clips). CPU
    (gloo) keeps BatchNorm: SyncBatchNorm runs on GPUs only. Checkpoint keys stay the same."""
    if world > 1 and device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return model


def distributed() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) for a plain run."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def loader_workers(num_workers: int | None, device: torch.device | str) -> int:
    """``num_workers``, or when None the job's torch threads - 1 on CUDA and 0 on CPU."""
    if num_workers is not None:
        return int(num_workers)
    return max(torch.get_num_threads() - 1, 0) if torch.device(device).type == "cuda" else 0


DIST_TIMEOUT = datetime.timedelta(hours=3)
"""How long a rank waits in a collective: every rank evaluates its share, but the others still
wait while rank 0 writes the checkpoint, log and curves, or draws a model's figures."""


def _init_distributed(device: torch.device, world: int) -> None:
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=DIST_TIMEOUT)
        if device.type == "cuda":
            torch.cuda.set_device(device)


def to_device(batch: Batch, device: torch.device) -> dict[str, Any]:
    """Move the tensors of a batch to ``device``; other values (video ids) stay as they are."""
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


def _code_text(path: Path) -> str:
    """A Python file's syntax tree without docstrings, comments or line numbers: what it does."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [child for child in body if not (isinstance(child, ast.Expr) and isinstance(
                child.value, ast.Constant) and isinstance(child.value.value, str))] or [ast.Pass()]
    return ast.dump(tree)


def code_digest(modules: Iterable[str]) -> str:
    """SHA-256 of the code of ``modules`` (dotted names; a package counts all its files): weights
    trained by other code, such as a changed model, must not be resumed, while an edited
    docstring or comment, or a change to a stage that does not define the run, is no reason to
    retrain."""
    digest = hashlib.sha256()
    for module in sorted(set(modules)):
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            raise ValueError(f"code_digest: no module {module!r}")
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if spec.submodule_search_locations else [origin]
        for path in files:
            digest.update(f"{module}:{path.relative_to(origin.parent)}\0{_code_text(path)}\0".encode())
    return digest.hexdigest()


RUN_CODE = ("signpipe.train", "signpipe.data", "signpipe.handmodel", "signpipe.keypoints")
"""The modules every training run depends on; a stage adds its own and its model's."""


def input_fingerprint(paths: Iterable[str | os.PathLike], settings: Mapping[str, Any],
                      code: Iterable[str] = ()) -> str:
    """A digest of input files (path, size, modification time), settings and the code that
    defines the run (:func:`code_digest` of :data:`RUN_CODE` and the stage's and model's ``code``).

    A checkpoint resumes only the run that wrote it: after a kill the inputs are the same, but
    after re-extracted keypoints, another model size or a code change the stale weights must
    not be reused.
    """
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(code_digest([*RUN_CODE, *code]).encode())
    for path in sorted(map(str, paths)):
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> None:
    """torch.save under a temporary name, then rename: a kill leaves the old file or the new one."""
    with atomic_path(path, ".pt") as tmp:
        torch.save(dict(state), tmp)


def plot_curves(history: pd.DataFrame, path: str | os.PathLike, title: str = "") -> None:
    """Write :func:`curves_figure` of ``history`` as a PNG."""
    save_figure(curves_figure(history, title), path)


def curves_figure(history: pd.DataFrame, title: str = "") -> Any:
    """A figure with one panel for losses (the total and every named term) and one for the other
    metrics (accuracies, PCK and AUC in %), against the epoch (integer ticks); terms are named as
    the papers do (:data:`CURVE_NAMES`), legends sit below the panels, and phases (a ``phase``
    column) are shaded and named. A pre-training log (``pck20_output``) gets a title line saying
    whether the reconstruction ended above its masked input."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    history = history.reset_index(drop=True)
    x = np.arange(1, len(history) + 1)
    numeric = [c for c in history.columns if c not in SKIPPED_COLUMNS and pd.api.types.is_numeric_dtype(history[c])]
    losses = [c for c in numeric if "loss" in c]
    others = [c for c in numeric if c not in losses]
    percent = [c for c in others if history[c].dropna().between(0, 1).all()]
    fig = Figure(figsize=(11, 4.8))
    axes = fig.subplots(1, 2)
    units = ("value (fractions in %)" if percent != others else
             "PCK / AUC (%)" if any(c.startswith(("pck", "auc")) for c in others) else "accuracy (%)")
    for ax, columns, label in ((axes[0], losses, "loss (per sample)"), (axes[1], others, units)):
        for column in columns:
            values = history[column] * (100 if column in percent else 1)
            ax.plot(x, values, marker="o", ms=4, label=CURVE_NAMES.get(column, column))
        if columns is others and others and percent == others:
            ax.set_ylim(-3, 103)
        _shade_phases(ax, history, x)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(0.5, len(history) + 0.5)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if columns:
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    lines = [title] if title else []
    if {"pck20_output", "pck20_input"} <= set(history.columns) and len(history):
        out, given = history["pck20_output"].iloc[-1] * 100, history["pck20_input"].iloc[-1] * 100
        lines.append(f"last epoch: reconstruction PCK@20 {out:.1f}% vs masked input {given:.1f}%, "
                     + ("above the input (as the paper's Tables 1-2)" if out > given
                        else "below the input: the decoder has not yet learned to reconstruct"))
    fig.suptitle("\n".join(lines), fontsize=10)
    fig.tight_layout()
    return fig


def _shade_phases(ax: Any, history: pd.DataFrame, x: np.ndarray) -> None:
    """Shade every other phase of a ``phase`` column and name each phase at the top of ``ax``."""
    if "phase" not in history or history["phase"].nunique() < 2:
        return
    phases = history["phase"].to_numpy()
    starts = [0, *(np.flatnonzero(phases[1:] != phases[:-1]) + 1)]
    for k, start in enumerate(starts):
        stop = starts[k + 1] if k + 1 < len(starts) else len(phases)
        if k % 2:
            ax.axvspan(x[start] - 0.5, x[stop - 1] + 0.5, color="grey", alpha=0.12, lw=0)
        if k:
            ax.axvline(x[start] - 0.5, color="grey", ls="--", lw=1)
        ax.text((x[start] + x[stop - 1]) / 2, 0.98, f"phase: {phases[start]}", transform=ax.get_xaxis_transform(),
                ha="center", va="top", fontsize=8, color="dimgrey")


SKIPPED_COLUMNS = {"epoch", "lr", "samples", "seconds", "samples_per_s", "phase"}
"""log.csv columns that curves.png does not draw."""
CURVE_NAMES = {
    "train_loss": "$L$: training loss, total",
    "val_loss": "validation loss (cross-entropy; HMA: eq. 9)",
    "val_ce_loss": "validation cross-entropy",
    "rec_loss": "$L_{rec}$: reconstruction (eq. 6)",
    "reg_loss": "$L_{reg}$: hand-model regulariser",
    "ce_loss": "$L_{cla}$: cross-entropy (eq. 9)",
    "spa_loss": "$L_{spa}$: spatial consistency",
    "tem_loss": "$L_{tem}$: temporal consistency",
    "com_loss": "$L_{com}$: fused-stream cross-entropy",
    "global_loss": "$L_{global}$: global-stream cross-entropy",
    "local_loss": "$L_{local}$: local-stream cross-entropy",
    "mu_loss": r"$L_{\mu}$: mutual promotion",
    "train_acc": "training accuracy",
    "val_acc": "validation accuracy",
    "pck20_input": "PCK@20, masked input",
    "pck20_output": "PCK@20, reconstruction",
    "pck20_input_masked": "PCK@20, input, masked joints",
    "pck20_output_masked": "PCK@20, reconstruction, masked joints",
    "auc_input": "AUC 20-40 px, input",
    "auc_output": "AUC 20-40 px, reconstruction",
}
"""Legend text of each log.csv column curves.png draws: the loss terms as the papers name them
(SignBERT: L_rec, L_reg; HMA: L_cla, L_spa, L_tem, L_reg; GLE-Net: L_com, L_global, L_local, L_mu)."""


def fit(model: nn.Module, step: Step, train_set: Dataset, out_dir: str | os.PathLike,
        cfg: TrainConfig, evaluate: Evaluate | None = None, collate: Callable | None = None,
        title: str = "", progress: bool = True, fingerprint: str = "", phase: str | None = None,
        reuse_finished: bool = False) -> pd.DataFrame:
    """Train ``model`` on ``train_set`` for ``cfg.epochs`` epochs; resume from ``out_dir`` if a run stopped.

    Writes ``out_dir/checkpoint.pt`` (model, optimiser, schedule, scaler, history) after every
    epoch, ``log.csv`` and ``curves.png``. ``step`` computes the loss of a batch (already on the
    device); ``evaluate`` adds metrics after each epoch (its ``val_loss`` drives a plateau
    schedule). A dataset with ``set_epoch`` (e.g. ``signpipe.data.ShardDataset``) is told the
    epoch, so its random clips differ per epoch. ``phase`` names the rows of the log.

    An unfinished checkpoint is resumed only when it was written with the same ``fingerprint``
    (see :func:`input_fingerprint`) and settings, epochs included. A finished one is trained
    again (a forced rerun must retrain), unless ``reuse_finished``: then its weights and history
    are taken as they are (an earlier phase of a resumed run). Returns the history, one row per epoch.
    """
    out_dir = Path(out_dir)
    rank, world, local_rank = distributed()
    device = resolve_device(cfg.device, local_rank)
    _init_distributed(device, world)
    if world > 1:
        log.info("%s: rank %d of %d on %s", title, rank, world, device)
    set_determinism(cfg.deterministic)
    model = sync_batchnorm(model, device, world)
    model.to(device)
    optimizer = make_optimizer(model.parameters(), cfg)
    schedule = make_schedule(optimizer, cfg)
    amp = autocast_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)
    history: list[dict[str, Any]] = []
    start = 0
    state = load_run(out_dir, cfg, fingerprint, device)
    if state is not None and state["epoch"] >= cfg.epochs and not reuse_finished:
        if rank == 0:
            log.info("%s: a finished run of these settings; training it again", out_dir / CHECKPOINT)
        state = None
    if state is not None:
        restore_run(state, model, optimizer, schedule, scaler)
        history, start = state["history"], state["epoch"]
        if rank == 0 and start < cfg.epochs:
            log.info("%s: resuming after epoch %d of %d", out_dir / CHECKPOINT, start, cfg.epochs)
    trained = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if world > 1 else model
    sampler = DistributedSampler(train_set, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    workers = loader_workers(cfg.num_workers, device)
    loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, num_workers=workers,
                        collate_fn=collate, pin_memory=device.type == "cuda", drop_last=False,
                        persistent_workers=workers > 0)
    for epoch in range(start, cfg.epochs):
        torch.manual_seed(epoch_seed(cfg.seed, epoch, rank))  # dropout and masking: same stream when resumed
        np.random.seed(epoch_seed(cfg.seed, epoch, rank))
        sampler.set_epoch(epoch)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        row = _train_epoch(trained, step, loader, optimizer, scaler, device, amp, cfg, epoch, world,
                           rank == 0 and progress)
        row["lr"] = optimizer.param_groups[0]["lr"]
        share_rank0_state(model, world)
        if evaluate is not None:
            model.eval()
            with torch.no_grad():
                row.update(evaluate(model))
        if isinstance(schedule, torch.optim.lr_scheduler.ReduceLROnPlateau):
            schedule.step(row.get("val_loss", row["train_loss"]))  # the same on every rank
        else:
            schedule.step()
        if phase is not None:
            row["phase"] = phase
        history.append(row)
        if rank == 0:
            save_checkpoint(out_dir / CHECKPOINT, {
                "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                "scaler": scaler.state_dict(), "epoch": epoch + 1, "history": history,
                "run": run_identity(cfg, fingerprint)})
            write_log(pd.DataFrame(history), out_dir, title)
            log.info("epoch %d/%d: %s", epoch + 1, cfg.epochs,
                     ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch" and isinstance(v, float)))
        if world > 1:
            dist.barrier()
    if start >= cfg.epochs and rank == 0 and history:
        write_log(pd.DataFrame(history), out_dir, title)  # a reused run: its log may have been removed
    return pd.DataFrame(history)


def run_identity(cfg: TrainConfig, fingerprint: str) -> dict[str, Any]:
    """What a checkpoint must match to be resumed: the inputs' fingerprint and every setting but
    the worker count and the device (a run begun on CPU goes on on a GPU and back)."""
    return {"fingerprint": fingerprint, **{k: v for k, v in asdict(cfg).items() if k not in RESUME_FREE}}


RESUME_FREE = ("num_workers", "device")
"""Settings a run may change when it resumes."""


def restore_run(state: Mapping[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, schedule: Any,
                scaler: torch.amp.GradScaler) -> None:
    """Load a checkpoint's model, optimiser, schedule and gradient scaler, whatever device or
    precision wrote it: a CPU, bf16 or amp-off run saved an empty scaler state ({}), with which
    an fp16 scaler (a GPU run) starts at its initial scale; a disabled scaler ignores a saved one."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    if state["scaler"]:
        scaler.load_state_dict(state["scaler"])


def load_run(out_dir: str | os.PathLike, cfg: TrainConfig, fingerprint: str,
             device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """The checkpoint in ``out_dir`` when it belongs to this run (:func:`run_identity`), else None.

    Loaded with ``weights_only``: a checkpoint holds tensors and plain values only, so a planted
    file cannot run code.
    """
    path = Path(out_dir) / CHECKPOINT
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as error:  # a foreign or corrupt file is no reason to stop: train afresh
        log.warning("%s cannot be read as a signpipe checkpoint (%s); starting afresh", path, error)
        return None
    if state.get("run") != run_identity(cfg, fingerprint):
        log.warning("%s was written by a run with other inputs, settings or code; starting afresh", path)
        return None
    return state


def share_rank0_state(model: nn.Module, world: int) -> None:
    """Rank 0's weights and buffers on every rank (what its checkpoint saves). DDP keeps the
    weights equal, but each rank's last step updates BatchNorm's running statistics with its own
    batch; a sharded evaluation must see one model."""
    if world > 1:
        for tensor in model.state_dict().values():
            shared = tensor if tensor.is_contiguous() else tensor.contiguous()
            dist.broadcast(shared, 0)
            if shared is not tensor:
                tensor.copy_(shared)


def evaluation_ranks() -> tuple[int, int]:
    """(rank, world size) of a sharded evaluation: torchrun's once its process group is up (in
    :func:`fit`), else (0, 1), a process that evaluates everything itself."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shard_of(length: int, batch_size: int, rank: int, world: int) -> range:
    """The samples ``rank`` evaluates: a contiguous run of whole batches of ``batch_size``, the
    batches split as evenly as they go (a rank may get none). The batches are those of one process,
    so the logits are the same to the bit, and no sample is evaluated twice."""
    batches = math.ceil(length / batch_size)
    first, last = batches * rank // world, batches * (rank + 1) // world
    return range(first * batch_size, min(last * batch_size, length))


def gather_shards(part: Any) -> list[Any]:
    """Every rank's ``part`` in rank order, on every rank (``[part]`` without a process group)."""
    _, world = evaluation_ranks()
    if world == 1:
        return [part]
    parts: list[Any] = [None] * world
    dist.all_gather_object(parts, part)
    return parts


def eval_loader(dataset: Dataset, batch_size: int, device: torch.device, collate: Callable | None = None,
                num_workers: int | None = None) -> DataLoader:
    """This rank's :func:`shard_of` ``dataset`` in order, in batches of ``batch_size``, with the
    training loop's workers (:func:`loader_workers`, no more than the shard has batches to spare)."""
    rank, world = evaluation_ranks()
    shard = shard_of(len(dataset), batch_size, rank, world)
    batches = math.ceil(len(shard) / batch_size)
    workers = min(loader_workers(num_workers, device), max(batches - 1, 0))
    return DataLoader(dataset if world == 1 else Subset(dataset, shard), batch_size=batch_size, shuffle=False,
                      collate_fn=collate, num_workers=workers, pin_memory=device.type == "cuda")


def write_log(history: pd.DataFrame, out_dir: str | os.PathLike, title: str) -> None:
    """``log.csv`` and ``curves.png`` of a run's history in ``out_dir``."""
    write_csv(history, Path(out_dir) / LOG)
    plot_curves(history, Path(out_dir) / CURVES, title)


PROGRESS_EVERY = 50
"""Steps between the progress bar's loss readings: each reading waits for the GPU."""


def _train_epoch(model: nn.Module, step: Step, loader: Iterable[Batch], optimizer: torch.optim.Optimizer,
                 scaler: torch.amp.GradScaler, device: torch.device, amp: torch.dtype | None, cfg: TrainConfig,
                 epoch: int, world: int, progress: bool) -> dict[str, float]:
    """One epoch; returns its metrics weighted by samples, over every rank's samples.

    The loss and metrics are summed on the device and read once, at the end of the epoch, so a
    step does not wait for the GPU (the bar reads the loss every ``PROGRESS_EVERY`` steps); a
    non-finite loss stops the run there, before its checkpoint is written.
    """
    model.train()
    totals: dict[str, Tensor] = {}
    seen = 0
    started = time.perf_counter()
    bar = track(loader, disable=not progress, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", leave=False)
    for index, batch in enumerate(bar):
        batch = to_device(batch, device)
        with autocast(device, amp):
            loss, metrics = step(model, batch)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if cfg.grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        size = _batch_size(batch)
        seen += size
        for name, metric in {"train_loss": loss, **metrics}.items():
            value = metric.detach().float() if isinstance(metric, Tensor) else torch.tensor(float(metric))
            totals[name] = totals.get(name, 0.0) + value.to(device) * size
        if progress and index % PROGRESS_EVERY == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    names = list(totals)
    sums = torch.stack([totals[name].reshape(()) for name in names] + [torch.tensor(float(seen), device=device)]) \
        if names else torch.tensor([float(seen)], device=device)
    if world > 1:
        dist.all_reduce(sums)
    values = sums.double().cpu().tolist()  # the epoch's one read of the device
    count = max(values[-1], 1.0)
    row = {name: value / count for name, value in zip(names, values)}
    if not math.isfinite(row.get("train_loss", 0.0)):
        raise FloatingPointError(f"epoch {epoch + 1}: the loss became {row['train_loss']}; lower the learning rate")
    seconds = time.perf_counter() - started
    return {"epoch": epoch + 1, **row, "samples": int(values[-1]), "seconds": seconds,
            "samples_per_s": values[-1] / seconds if seconds > 0 else 0.0}


def _batch_size(batch: Batch) -> int:
    for value in batch.values():
        if isinstance(value, Tensor) and value.ndim:
            return len(value)
    return 1


@torch.no_grad()
def predict(model: nn.Module, dataset: Dataset, forward: Callable[[nn.Module, Batch], Tensor],
            batch_size: int = 64, device: str = "auto", collate: Callable | None = None,
            num_workers: int | None = None, amp: str = "off") -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Logits (N, C), labels (N,) and video ids of every sample, in dataset order; ``num_workers``
    and ``amp`` as in :class:`TrainConfig` (autocast on CUDA only).

    Under torchrun (a process group, as in :func:`fit`) every rank runs its :func:`shard_of` the
    batches and gets every rank's results: call it on all ranks, with the same weights."""
    target = resolve_device(device, distributed()[2])
    model.to(target).eval()
    dtype = autocast_dtype(amp, target)
    logits, labels, ids = [], [], []
    for batch in eval_loader(dataset, batch_size, target, collate, num_workers):
        batch = to_device(batch, target)
        with autocast(target, dtype):
            output = forward(model, batch)
        logits.append(output.float().cpu().numpy())
        labels.append(batch["label"].cpu().numpy())
        ids += list(batch["video_id"])
    parts = [part for part in gather_shards((logits, labels, ids)) if part[0]]
    if not parts:
        return np.zeros((0, 0), np.float32), np.zeros(0, np.int64), []
    return (np.concatenate([x for part in parts for x in part[0]]),
            np.concatenate([y for part in parts for y in part[1]]).astype(np.int64),
            [video for part in parts for video in part[2]])
