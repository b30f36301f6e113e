"""Does each model of the demo learn? Per-epoch training and validation accuracy, seconds per epoch.

Trains models through ``signpipe.finetune.finetune`` with the demo's settings (config.yaml: each
model's block and epochs, the stage's batch size) on the shards of a finished demo run, and
prints one row per epoch, then one JSON line last:
{model: {"epochs", "train_acc", "val_acc", "best_val_acc", "seconds_per_epoch"}, ...} (the last
epoch's accuracies, the best validation accuracy over the epochs, the median epoch time). Only
the train and validation splits are reported: the test split is never used to choose settings.

Run: python benchmarks/demo_learning.py --results results [--models rgb3d hma] [--shards 4]
[--epochs N] [--set rgb3d.subtract_mean=false] [--threads 1]
``--set model.key=value`` (value in JSON/YAML) overrides a key of a model's block, e.g. to compare
one change at a time. ``--smoke``: the small generated corpus of benchmarks/train_loop.py --smoke, its
first shard, one epoch per model (about 20 s); same code path and JSON keys.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from signpipe.finetune import finetune, num_classes
from signpipe.models import MODELS, model_spec

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_loop import demo_blocks, make_shards  # noqa: E402  (a sibling script, not a package)

REPO = Path(__file__).resolve().parents[1]


def demo_settings(name: str) -> dict:
    """The finetune stage's keys the demo gives model ``name``: batch size, epochs, its block."""
    stage = yaml.safe_load((REPO / "config.yaml").read_text())["finetune"]
    block = demo_blocks()[name]
    epochs = (stage.get(name) or {}).get("epochs", stage["epochs"])
    return {"epochs": epochs, "batch_size": stage["batch_size"], "device": "cpu", "seed": 0, name: block}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "results", help="a demo run's results folder")
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--models", nargs="+", default=["rgb3d", "glenet", "hma"], choices=list(MODELS))
    parser.add_argument("--shards", type=int, default=None, help="the first N shards per stage (default: all)")
    parser.add_argument("--epochs", type=int, default=None, help="instead of the demo's (per phase)")
    parser.add_argument("--set", action="append", default=[], metavar="MODEL.KEY=VALUE")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    result: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.smoke:
            shards, classes = {stage: paths[:1] for stage, paths in make_shards(root, signers=3, repeats=1, frames=16).items()}, 8
        else:
            folder = args.results / args.dataset
            shards = {stage: sorted((folder / stage).glob("*.h5"))[:args.shards] for stage in ("frames", "hands")}
            classes = num_classes(folder / "manifest.csv")
        for name in args.models:
            cfg = demo_settings(name)
            if args.epochs or args.smoke:
                cfg["epochs"] = 1 if args.smoke else args.epochs
                cfg[name].pop("epochs", None)
            for item in args.set:
                key, value = item.split("=", 1)
                model, key = key.split(".", 1)
                if model == name:
                    cfg[name][key] = yaml.safe_load(value)
            spec = model_spec(name)
            finetune(name, {stage: shards[stage] for stage in spec.stages}, root / "runs" / name, classes, cfg,
                     threads=args.threads)
            log = pd.read_csv(root / "runs" / name / "log.csv")
            columns = [c for c in ("phase", "epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds")
                       if c in log]
            print(name, json.dumps({k: v for k, v in cfg[name].items()}), flush=True)
            print(log[columns].round(3).to_string(index=False), flush=True)
            result[name] = {"epochs": len(log), "train_acc": round(float(log["train_acc"].iloc[-1]), 3),
                            "val_acc": round(float(log["val_acc"].iloc[-1]), 3),
                            "best_val_acc": round(float(log["val_acc"].max()), 3),
                            "seconds_per_epoch": round(float(statistics.median(log["seconds"])), 2)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
