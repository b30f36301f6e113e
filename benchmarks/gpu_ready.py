"""What a first GPU run needs, measured on CPU (CUDA when present): DDP past step 2, resume across
devices, the GLE-Net attention's peak memory, GPU->CPU syncs per pre-training step, loader time.

Prints one JSON line last: {"ddp_steps_ok": {pretrain, hma, glenet, signbert, stgcn, rgb3d},
"resume_cpu_to_amp_ok", "glenet_attention_peak_mb_224", "syncs_per_pretrain_step", "syncs_per_finetune_step",
"loader_s_per_batch": {rgb3d, glenet, hma}, ...}.
- ddp_steps_ok: each stage on 2 torchrun ranks (gloo on CPU, NCCL on GPUs), batch 1, 2 epochs of
  a tiny synthetic corpus (>= 3 steps per rank), all in one torchrun launch: True when it
  finished (--smoke: stgcn only, the others null; about 9 minutes for all six on 2 busy CPU
  cores; tests/test_gpu_ready.py runs pretrain and hma this way).
- resume_cpu_to_amp_ok: a checkpoint written with AMP off (an empty GradScaler state) restored
  with an enabled fp16 scaler (``signpipe.train.restore_run``).
- glenet_attention_peak_mb_224: ``benchmarks/glenet.py``'s peak of one forward + backward of the
  global enhancement module at its 224-px pool2 shape (256, 8, 56, 56; --smoke: a small one).
- syncs_per_pretrain_step: calls that make the host wait for a GPU (``Tensor.item``, ``float``,
  ``int``, ``bool``, ``__index__``, ``tolist``, ``cpu``, ``numpy``, ``nonzero``, boolean-mask
  indexing), counted by wrapping those methods, inside ``signpipe.train.fit``'s steps of SignBERT
  pre-training (the loader's own work excluded), per step. Calls from ``torch.optim`` are not
  counted: the optimisers keep their step counts on the host even on a GPU.
- syncs_per_finetune_step: the same for the finetune stage's step (SignBERT fine-tuning: its loss
  terms and training accuracy, logged per epoch).
- loader_s_per_batch: seconds per training batch of each model's dataset through a DataLoader
  with the training loop's worker default (``signpipe.train.loader_workers``) at its paper batch
  size, on 320 x 240 synthetic videos of 40 frames (hands crops 224 px; --smoke: the tiny corpus, batch 2).
Run: python benchmarks/gpu_ready.py [--smoke] [--steps 20]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS.parent))  # signpipe from this checkout when run as a script
# signpipe is imported where it is used: the attention measure's fresh process imports this
# script again, and needs none of the corpus stages.

DDP_MODELS = ("pretrain", "hma", "glenet", "signbert", "stgcn", "rgb3d")
SMOKE_DDP_MODELS = ("stgcn",)
"""--smoke: the fastest finetune model (the launch and finetune code path); the others null.
tests/test_gpu_ready.py runs pretrain and hma on 2 ranks through :func:`ddp_steps_ok`."""
LOADER_MODELS = ("rgb3d", "glenet", "hma")
SIGNBERT = {"hidden": 16, "layers": 1, "heads": 2, "feedforward": 32, "gcn_channels": 8}
TINY = {
    "hma": {"arch": "resnet18", "width": 8, "size": 16, "num_frames": 4, "gcn_layers": [[8, 1], [16, 2]],
            "temporal_kernel": 3},
    "glenet": {"num_frames": 4, "size": 32},
    "rgb3d": {"num_frames": 4, "size": 32},
    "stgcn": {"subset": "27", "layers": [[16, 1], [16, 2]], "num_frames": 4},
    "signbert": {"num_frames": 4},
}
"""CPU-sized models for the DDP runs: every part of each, a fraction of its size."""


def make_shards(root: Path, crop_size: int, frames: int = 12, size: tuple[int, int] = (96, 72)) -> dict[str, list[Path]]:
    """Frames, keypoints and hands shards (2 each) of a synthetic corpus of 4 classes and 3 signers."""
    from signpipe.datasets import write_manifest
    from signpipe.decode import decode_shard
    from signpipe.hands import crop_shard
    from signpipe.pose import extract_shard
    from signpipe.synth import make_corpus

    make_corpus(root / "corpus", num_classes=4, signers=3, repeats=1, frames=frames, width=size[0],
                height=size[1], progress=False)
    write_manifest({"adapter": "synthetic", "num_shards": 2}, root / "manifest.csv", root / "missing.csv",
                   corpus_dir=root / "corpus")
    shards: dict[str, list[Path]] = {"frames": [], "keypoints": [], "hands": []}
    for shard in (0, 1):
        paths = {stage: root / f"{stage}{shard}.h5" for stage in shards}
        decode_shard(root / "manifest.csv", shard, paths["frames"], root / "failures.csv",
                     short_side=min(size), progress=False)
        extract_shard(root / "manifest.csv", paths["frames"], paths["keypoints"], root / "quality.csv",
                      {"backend": "sidecar"}, progress=False)
        crop_shard(paths["frames"], paths["keypoints"], paths["hands"], crop_size=crop_size, progress=False)
        for stage, path in paths.items():
            shards[stage].append(path)
    return shards


def ddp_models(shards: dict[str, list[str]], out: str, models: list[str]) -> None:
    """Each stage in turn on this torchrun rank (batch 1, 2 epochs); rank 0 writes out/ddp.json."""
    import torch.distributed as dist

    from signpipe.finetune import finetune
    from signpipe.models import model_spec
    from signpipe.pretrain import pretrain

    common = {"epochs": 2, "batch_size": 1, "device": "auto", "seed": 0}
    done = {}
    for name in models:
        try:
            if name == "pretrain":
                pretrain(shards["hands"], Path(out) / name / "signbert.pt", {**common, "num_frames": 4, "model": SIGNBERT})
            else:
                cfg = {**common, name: TINY.get(name, {})}
                if name == "signbert":
                    cfg["signbert"] = {**cfg["signbert"], "model": SIGNBERT}
                by_stage = {stage: shards[stage] for stage in model_spec(name).stages}
                finetune(name, by_stage, Path(out) / name, 4, cfg)
            done[name] = True
        except Exception as error:  # noqa: BLE001 - the benchmark records which stage failed and why
            print(f"rank {os.environ.get('RANK')}: {name} failed: {str(error).splitlines()[0][:300]}", flush=True)
            done[name] = False
        if dist.is_initialized():
            dist.barrier()
    if int(os.environ.get("RANK", 0)) == 0:
        Path(out, "ddp.json").write_text(json.dumps(done))


def ddp_steps_ok(shards: dict[str, list[Path]], out: Path, models: tuple[str, ...]) -> dict[str, bool]:
    """:func:`ddp_models` in one torchrun launch of 2 ranks: {stage: finished}; each stage's files
    are under ``out/<stage>/``."""
    from signpipe.launch import on_ranks

    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(BENCHMARKS), str(BENCHMARKS.parent), before or ""])
    try:
        on_ranks("gpu_ready:ddp_models", 2, {k: [str(p) for p in v] for k, v in shards.items()}, str(out),
                 list(models))
    except RuntimeError as error:
        print(error, flush=True)
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before
    path = out / "ddp.json"
    return json.loads(path.read_text()) if path.exists() else {name: False for name in models}


def resume_cpu_to_amp_ok(out: Path) -> bool:
    """A run saved with AMP off restored with an enabled fp16 gradient scaler."""
    from torch import nn

    from signpipe.train import CHECKPOINT, TrainConfig, fit, make_optimizer, make_schedule, restore_run

    data = [{"x": torch.randn(4), "label": i % 2} for i in range(8)]

    def step(model, batch):
        loss = nn.functional.cross_entropy(model(batch["x"]), batch["label"])
        return loss, {}

    cfg = TrainConfig(epochs=1, batch_size=4, device="cpu", amp="off")
    fit(nn.Linear(4, 2), step, data, out, cfg, progress=False)
    state = torch.load(out / CHECKPOINT, weights_only=True)
    model = nn.Linear(4, 2)
    optimizer = make_optimizer(model.parameters(), cfg)
    try:
        restore_run(state, model, optimizer, make_schedule(optimizer, cfg), torch.amp.GradScaler("cpu", enabled=True))
    except RuntimeError as error:
        print("resume:", error, flush=True)
        return False
    return True


SYNC_METHODS = ("item", "__float__", "__int__", "__bool__", "__index__", "tolist", "cpu", "numpy", "nonzero")


@contextlib.contextmanager
def counting_syncs(counts: collections.Counter):
    """Count calls of the Tensor methods that wait for a GPU into ``counts``. Boolean-mask indexing
    (a hidden nonzero) is not counted: patching ``Tensor.__getitem__`` leaves tensors looking like
    sequences to ``torch.tensor`` for the rest of the process, and a TorchFunctionMode turns off
    the fused attention path that the count is about."""
    originals = {name: getattr(torch.Tensor, name) for name in SYNC_METHODS}
    own = {name for name in originals if name in vars(torch.Tensor)}  # the others come from the C base class

    def wrap(name):
        original = originals[name]

        def counted(self, *args, **kwargs):
            if counts.get("_armed") and not sys._getframe(1).f_globals.get("__name__", "").startswith("torch.optim"):
                counts[name] += 1
            return original(self, *args, **kwargs)
        return counted

    try:
        for name in SYNC_METHODS:
            setattr(torch.Tensor, name, wrap(name))
        yield counts
    finally:
        for name, original in originals.items():
            if name in own:
                setattr(torch.Tensor, name, original)
            else:
                delattr(torch.Tensor, name)


def syncs_per_step(model: torch.nn.Module, step: Callable, items: list[dict], out: Path,
                   batch_size: int = 2) -> tuple[float, dict[str, int]]:
    """GPU waits per step of ``fit`` training ``model`` with ``step`` on ``items`` (one epoch;
    the loader's work is not counted), and the calls per method."""
    from signpipe.train import TrainConfig, fit

    counts: collections.Counter = collections.Counter()
    taken = [0]

    def counted_step(model, batch):
        counts["_armed"] = 1
        taken[0] += 1
        return step(model, batch)

    class Disarm(torch.utils.data.Dataset):  # the loader's work is not the step's
        def __len__(self):
            return len(items)

        def __getitem__(self, i):
            counts["_armed"] = 0
            return items[i]

    with counting_syncs(counts):
        fit(model, counted_step, Disarm(), out, TrainConfig(epochs=1, batch_size=batch_size, lr_step=10), progress=False)
    counts["_armed"] = 0
    per_site = {k: v for k, v in counts.items() if k != "_armed"}
    return sum(per_site.values()) / max(taken[0], 1), per_site


def syncs_per_pretrain_step(hands: list[Path], out: Path, steps: int) -> tuple[float, dict[str, int]]:
    """GPU waits per step of SignBERT pre-training in ``fit`` (the loader's work not counted)."""
    from signpipe import pretrain as stage
    from signpipe.models.signbert import HandTokens, SignBERT, SignBERTConfig

    objective = stage.PretrainObjective()
    data = HandTokens(hands, "train", 8, train=True)
    items = [data[i % len(data)] for i in range(2 * steps)]
    torch.manual_seed(0)
    return syncs_per_step(SignBERT(SignBERTConfig(**SIGNBERT)), lambda model, batch: stage.pretraining_loss(
        model, batch["pose"], objective, valid=batch["valid"]), items, out)


def syncs_per_finetune_step(hands: list[Path], out: Path, steps: int) -> tuple[float, dict[str, int]]:
    """GPU waits per step of the finetune stage's training step (SignBERT fine-tuning: its
    losses, their logging and the training accuracy) in ``fit``."""
    from signpipe.finetune import _weighted_step, cross_entropy, phase_settings
    from signpipe.models import model_spec

    spec = model_spec("signbert")
    settings = next(iter(phase_settings(spec, {"signbert": {"model": SIGNBERT}}).values()))
    data = spec.dataset({"hands": hands}, "train", True, settings)
    items = [data[i % len(data)] for i in range(2 * steps)]
    torch.manual_seed(0)
    step = _weighted_step(spec.losses or cross_entropy(spec), settings["loss_weights"])
    return syncs_per_step(spec.build(4, settings), step, items, out)  # make_shards' 4 classes


def loader_s_per_batch(shards: dict[str, list[Path]], model: str, batches: int, batch_size: int | None) -> float:
    """Seconds per batch of ``model``'s training dataset through the training loop's DataLoader."""
    from signpipe.finetune import phase_settings
    from signpipe.models import model_spec
    from signpipe.train import loader_workers, resolve_device

    spec = model_spec(model)
    settings = next(iter(phase_settings(spec, {}).values()))
    data = spec.dataset({stage: shards[stage] for stage in spec.stages}, "train", True, settings)
    size = batch_size or settings["batch_size"]
    workers = loader_workers(None, resolve_device())
    loader = torch.utils.data.DataLoader(data, batch_size=size, shuffle=True, num_workers=workers,
                                         drop_last=False, persistent_workers=workers > 0)
    seen, started = 0, None
    while seen < batches + 1:
        for _ in loader:
            if started is None:  # the first batch starts the workers
                started = time.perf_counter()
            seen += 1
            if seen == batches + 1:
                break
    return (time.perf_counter() - started) / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, the same code path and keys")
    parser.add_argument("--steps", type=int, default=20, help="pre-training steps counted for syncs")
    parser.add_argument("--loader-batches", type=int, default=4)
    parser.add_argument("--skip-ddp", action="store_true", help="leave out the 2-rank runs (minutes on CPU)")
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", 1)))
    from glenet import attention_peak_mb

    from signpipe.train import loader_workers

    steps = 3 if args.smoke else args.steps
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        tiny = make_shards(root / "tiny", crop_size=32)
        result = {
            "ddp_steps_ok": {} if args.skip_ddp else {name: None for name in DDP_MODELS} | ddp_steps_ok(
                tiny, root / "ddp", SMOKE_DDP_MODELS if args.smoke else DDP_MODELS),
            "resume_cpu_to_amp_ok": resume_cpu_to_amp_ok(root / "resume"),
        }
        shape = (32, 4, 14, 14) if args.smoke else (256, 8, 56, 56)
        result["glenet_attention_peak_mb_224"] = round(attention_peak_mb(shape, 2)["extra_mb"], 1)
        result["attention_shape"] = shape
        syncs, sites = syncs_per_pretrain_step(tiny["hands"], root / "syncs", steps)
        result["syncs_per_pretrain_step"] = round(syncs, 2)
        result["sync_calls"] = sites
        syncs, sites = syncs_per_finetune_step(tiny["hands"], root / "finetune_syncs", steps)
        result["syncs_per_finetune_step"] = round(syncs, 2)
        result["finetune_sync_calls"] = sites
        paper = tiny if args.smoke else make_shards(root / "paper", crop_size=224, frames=40, size=(320, 240))
        result["loader_s_per_batch"] = {
            model: round(loader_s_per_batch(paper, model, 1 if args.smoke else args.loader_batches,
                                            2 if args.smoke else None), 4) for model in LOADER_MODELS}
        device = "cuda" if torch.cuda.is_available() else "cpu"
        result["loader_workers"] = loader_workers(None, device)
        result["device"] = device
        result["smoke"] = args.smoke
    print(json.dumps(result))


if __name__ == "__main__":
    main()
