"""What the finetune stage costs on top of the model's own arithmetic, for every registered model.

Prints one JSON line last: {model: {"stage_samples_per_s", "bare_samples_per_s", "ratio", "median_ratio"}, ...}.
- stage: ``signpipe.finetune.finetune`` on a small generated corpus (synthetic signers, decoded,
  sidecar keypoints, hand crops): training samples/s per epoch as ``log.csv`` records it
  (loader, sampling, JPEG decoding, loss bookkeeping, forward, backward, optimiser step;
  validation is outside the epoch's clock).
- bare: the same model, built the same way, on the same batches already in memory as tensors:
  forward + loss + backward + optimiser step only.
- ratio = stage / bare; the goal is >= 0.9 (loader and bookkeeping under 10%). Both rates are
  the fastest epoch after the first (the stage's first epoch and one bare pass warm up), as
  ``timeit`` takes the fastest repeat: interference (the VM, the kernel, the epoch that starts
  cold after evaluation and the checkpoint) only ever slows an epoch, so the fastest is what the
  code costs, and on an idle 2-core VM epochs of the same code spread by +-20% (HMA's bare loop
  ran at 55-75 samples/s in one run). ``median_ratio`` is the ratio of the medians, for the record.
  The bare passes are timed half before the stage and half after it, so a drift of the machine's
  speed during the run falls on both. Run it on an idle machine (another job on the cores moves
  either number by several times).
The models take the demo's CPU sizes (their blocks of config.yaml). Run: python benchmarks/train_loop.py
[--epochs 6] [--batch-size 8] [--repeats 3] [--models signbert stgcn rgb3d] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
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


def bare_rates(name: str, shards: dict[str, list[Path]], cfg: dict, passes: int) -> list[float]:
    """Samples/s of forward + loss + backward + step on one epoch's batches held in memory, for each
    of ``passes`` passes after a warm-up pass."""
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
    rates = []
    for epoch in range(passes + 1):  # the first pass warms up, as the stage's first epoch does
        started, seen = time.perf_counter(), 0
        for batch in batches:
            terms, _ = losses(model, batch)
            loss = weighted_total(terms, settings["loss_weights"])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(batch["label"])
        rates.append(seen / (time.perf_counter() - started))
    return rates[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats per signer and class: 3 gives 96 training videos, 12 batches of 8 an epoch")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.epochs = 2
    result: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards = make_shards(root, signers=3, repeats=1, frames=16) if args.smoke else make_shards(root, repeats=args.repeats)
        blocks = demo_blocks()
        for name in args.models:
            cfg = {"epochs": args.epochs, "batch_size": args.batch_size, "device": "cpu", "seed": 0,
                   name: blocks[name]}
            spec = model_spec(name)
            passes = args.epochs - 1  # as many as the stage's timed epochs, half before it and half after
            before = bare_rates(name, shards, cfg, (passes + 1) // 2)
            finetune(name, {stage: shards[stage] for stage in spec.stages}, root / "runs" / name, 8, cfg)
            after = bare_rates(name, shards, cfg, passes // 2)
            log = pd.read_csv(root / "runs" / name / "log.csv")
            stage_rates = log["samples_per_s"].iloc[1:].tolist()  # epoch 1 warms up
            stage, bare = max(stage_rates), max(before + after)
            result[name] = {"stage_samples_per_s": round(stage, 2), "bare_samples_per_s": round(bare, 2),
                            "ratio": round(stage / bare, 3),
                            "median_ratio": round(statistics.median(stage_rates) / statistics.median(before + after), 3)}
            print(name, result[name], flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
