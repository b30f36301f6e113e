"""What the finetune stage costs on top of the model's own arithmetic, for every registered model.

Prints one JSON line last: {model: {"stage_samples_per_s", "bare_samples_per_s", "ratio", "median_ratio",
"timed_epochs"}, ...}.
- stage: ``signpipe.finetune.finetune`` on a small generated corpus (synthetic signers, decoded,
  sidecar keypoints, hand crops): training samples/s per epoch as ``log.csv`` records it
  (loader, sampling, JPEG decoding, loss bookkeeping, forward, backward, optimiser step;
  validation is outside the epoch's clock).
- bare: the same model, built the same way, on the same batches already in memory as tensors:
  forward + loss + backward + optimiser step only.
- ratio = stage / bare; the goal is >= 0.9 (loader and bookkeeping under 10%). Both rates are
  the fastest epoch after the first (each stage run's first epoch and one bare pass warm up), as
  ``timeit`` takes the fastest repeat: interference (the VM, the kernel) only ever slows an
  epoch, so the fastest is what the code costs; on an idle 2-core VM epochs of the same code
  spread by +-20% (HMA's bare loop ran at 55-75 samples/s in one run). ``median_ratio`` is the
  ratio of the medians, for the record; ``timed_epochs`` how many stage epochs were timed.
- How many: ``--rounds`` stage runs per model, each with as many bare passes half before it and
  half after it as it has timed epochs, so a drift of the machine's speed falls on both sides
  (one run between one block of bare passes before and one after let the bare side catch a
  fast minute the stage never saw: SignBERT 0.84 and 0.91 on two idle runs). Each run has at
  least ``--epochs`` epochs and together at least ``--min-seconds`` of them, as ``timeit``'s
  autorange repeats a short statement: SignBERT's epoch lasts a fifth of a second, rgb3d's ten.
  Run it on an idle machine (another job on the cores moves either number by several times).
The models take the demo's CPU sizes (their blocks of config.yaml). Run: python benchmarks/train_loop.py
[--epochs 2] [--rounds 3] [--min-seconds 12] [--batch-size 8] [--repeats 3] [--models signbert stgcn rgb3d] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import yaml
from torch.utils.data import DataLoader

from signpipe.datasets import write_manifest
from signpipe.decode import decode_shard
from signpipe.finetune import cross_entropy, finetune, phase_settings, weighted_total
from signpipe.hands import crop_shard
from signpipe.models import MODELS, model_spec
from signpipe.pose import extract_shard
from signpipe.synth import make_corpus
from signpipe.train import make_optimizer, train_config

REPO = Path(__file__).resolve().parents[1]

def demo_blocks() -> dict[str, dict]:
    """Each model's block of the demo's config.yaml (its CPU sizes), without the demo's epochs;
    SignBERT's sizes are those of the demo's pre-trained encoder (``pretrain.model``)."""
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    blocks = {name: {k: v for k, v in (config["finetune"].get(name) or {}).items() if k != "epochs"} for name in MODELS}
    blocks["signbert"]["model"] = dict(config["pretrain"].get("model") or {})  # as signpipe.config.finetune_params
    return blocks


def make_shards(root: Path, shards: int = 2, signers: int = 6, repeats: int = 3,
                frames: int = 32) -> dict[str, list[Path]]:
    """Frames, keypoints and hands shards of a small synthetic corpus (8 classes, by default 6 signers
    and 3 repeats: 96 training videos, 12 batches of 8)."""
    make_corpus(root / "corpus", num_classes=8, signers=signers, repeats=repeats, frames=frames, width=160, height=120,
                progress=False)
    write_manifest({"adapter": "synthetic", "num_shards": shards}, root / "manifest.csv", root / "missing.csv",
                   corpus_dir=root / "corpus")
    out: dict[str, list[Path]] = {"frames": [], "keypoints": [], "hands": []}
    for shard in range(shards):
        paths = {stage: root / stage / f"{shard}.h5" for stage in out}
        decode_shard(root / "manifest.csv", shard, paths["frames"], root / "failures.csv", short_side=120, progress=False)
        extract_shard(root / "manifest.csv", paths["frames"], paths["keypoints"], root / "quality.csv",
                      {"backend": "sidecar"}, progress=False)
        crop_shard(paths["frames"], paths["keypoints"], paths["hands"], crop_size=112, progress=False)
        for stage, path in paths.items():
            out[stage].append(path)
    return out


def bare_loop(name: str, shards: dict[str, list[Path]], cfg: dict) -> tuple[Callable[[int], list[float]], int]:
    """The bare reference of model ``name``: forward + loss + backward + step on one epoch's batches
    held in memory, built once and warmed up by one pass (as the stage's first epoch warms up).
    Returns a function that times ``passes`` more passes (samples/s of each) and the epoch's samples."""
    spec = model_spec(name)
    settings = next(iter(phase_settings(spec, cfg).values()))  # the first phase's
    training = train_config(settings)
    data = spec.dataset({stage: shards[stage] for stage in spec.stages}, "train", True, settings)
    batches = list(DataLoader(data, batch_size=training.batch_size, shuffle=True))
    torch.manual_seed(0)
    model = spec.build(8, settings)
    optimizer = make_optimizer(model.parameters(), training)
    losses = spec.losses or cross_entropy(spec)
    model.train()

    def rates(passes: int) -> list[float]:
        out = []
        for _ in range(passes):
            started, seen = time.perf_counter(), 0
            for batch in batches:
                terms, _ = losses(model, batch)
                loss = weighted_total(terms, settings["loss_weights"])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                seen += len(batch["label"])
            out.append(seen / (time.perf_counter() - started))
        return out

    rates(1)
    return rates, len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=2,
                        help="at least this many epochs per stage run (its first warms up)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="stage runs per model, each between bare passes, so a drift of the machine falls on both")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats per signer and class: 3 gives 96 training videos, 12 batches of 8 an epoch")
    parser.add_argument("--min-seconds", type=float, default=12.0,
                        help="each side times at least this many seconds of epochs over the rounds: a model whose "
                             "epoch is short runs more epochs (as timeit's autorange), so its fastest epoch is not "
                             "the best of a few draws of a fifth of a second")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.epochs, args.rounds, args.min_seconds = 2, 1, 0.0
    result: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards = (make_shards(root, signers=3, repeats=1, frames=16) if args.smoke
                  else make_shards(root, repeats=args.repeats))
        blocks = demo_blocks()
        for name in args.models:
            spec = model_spec(name)
            cfg = {"epochs": args.epochs, "batch_size": args.batch_size, "device": "cpu", "seed": 0,
                   name: blocks[name]}
            bare, samples = bare_loop(name, shards, cfg)
            epoch_s = samples / bare(1)[0]
            cfg["epochs"] = max(args.epochs, math.ceil(args.min_seconds / args.rounds / epoch_s) + 1)
            timed = cfg["epochs"] - 1  # per round: as many bare passes as timed stage epochs, half before, half after
            bare_rates, stage_rates = [], []
            for round_ in range(args.rounds):
                bare_rates += bare((timed + 1) // 2)
                run = root / "runs" / f"{name}-{round_}"
                finetune(name, {stage: shards[stage] for stage in spec.stages}, run, 8, cfg)
                stage_rates += pd.read_csv(run / "log.csv")["samples_per_s"].iloc[1:].tolist()  # epoch 1 warms up
                bare_rates += bare(timed // 2)
            stage, fastest = max(stage_rates), max(bare_rates)
            result[name] = {"stage_samples_per_s": round(stage, 2), "bare_samples_per_s": round(fastest, 2),
                            "ratio": round(stage / fastest, 3),
                            "median_ratio": round(statistics.median(stage_rates) / statistics.median(bare_rates), 3),
                            "timed_epochs": len(stage_rates)}
            print(name, result[name], flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
