"""Which fusion rule to use, decided on the validation split: each rule of ``fusion.weights``
fitted on k-1 folds of a finished run's val videos and scored on the held-out fold.

Prints one JSON line last: {"val_cv_top1", "test_top1", "combos", "folds", "val_videos"}.
- val_cv_top1: per rule (calibrated, equal, val), the k-fold cross-validated per-instance top-1
  (%) on val, averaged over the combos: what the choice of the default rests on.
- test_top1: per rule, the test top-1 (%) with the rule fitted on the whole val split, averaged
  over the combos: what the table shows; reported, never used to choose.
- combos: per combo (``a+b``), per rule {"val_cv", "test"}, and "best_member_test".
Folds: the val videos sorted by (label, video id), the i-th in fold i mod k, so each fold holds
about one video per class and repeat. The combos are ``fusion.combos`` of the repository's
config.yaml whose models the run has (--combos a+b,c+d to name others).
Run: python benchmarks/fusion.py [--results results] [--dataset demo] [--folds 3] [--smoke]
(--smoke: three generated models on 10 classes, seconds, the same code path and keys).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

from signpipe.fusion import RULES, aligned, find_predictions, fit_rule, fused_probabilities
from signpipe.predictions import SplitPredictions, read_predictions, write_predictions

REPO = Path(__file__).resolve().parents[1]


def folds_of(labels: np.ndarray, video_ids: list[str], folds: int) -> np.ndarray:
    """Fold (N,) of each val video: sorted by (label, id), the i-th goes to fold i mod ``folds``."""
    order = sorted(range(len(labels)), key=lambda i: (int(labels[i]), video_ids[i]))
    fold = np.empty(len(labels), np.int64)
    fold[order] = np.arange(len(labels)) % folds
    return fold


def top1(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(100 * (probabilities.argmax(axis=1) == labels).mean())


def compare(models: dict, combos: list[list[str]], folds: int) -> dict:
    """The JSON result for ``models`` (name -> split -> SplitPredictions) and ``combos``."""
    val, val_labels, val_ids = aligned(models, "val")
    test, test_labels, _ = aligned(models, "test")
    fold = folds_of(val_labels, val_ids, folds)
    per_combo = {}
    for combo in combos:
        row = {"best_member_test": round(max(top1(fused_probabilities([test[m]], (1.0,)), test_labels)
                                             for m in combo), 2)}
        for rule in RULES:
            right = 0
            for k in range(folds):
                fit, held = fold != k, fold == k
                name, weights = fit_rule(rule, [val[m][fit] for m in combo], val_labels[fit])
                right += int((fused_probabilities([val[m][held] for m in combo], weights, name).argmax(axis=1)
                              == val_labels[held]).sum())
            name, weights = fit_rule(rule, [val[m] for m in combo], val_labels)
            row[rule] = {"val_cv": round(100 * right / len(val_labels), 2),
                         "test": round(top1(fused_probabilities([test[m] for m in combo], weights, name), test_labels), 2)}
        per_combo["+".join(combo)] = row
    def mean(key: str, rule: str) -> float:
        return round(float(np.mean([row[rule][key] for row in per_combo.values()])), 2)

    return {"val_cv_top1": {rule: mean("val_cv", rule) for rule in RULES},
            "test_top1": {rule: mean("test", rule) for rule in RULES},
            "combos": per_combo, "folds": folds, "val_videos": len(val_labels)}


def generated_run(root: Path, classes: int = 10, per_split: int = 60) -> Path:
    """A models folder of three generated models: a flat (underconfident) good one, a sharp
    near-chance one and a middling one, as the demo's SignBERT, HMA and ST-GCN."""
    rng = np.random.default_rng(0)
    labels = {split: rng.integers(0, classes, per_split) for split in ("val", "test")}
    for name, right, scale in (("signbert", 0.6, 1.2), ("hma", 0.1, 5.0), ("stgcn", 0.45, 2.0)):
        splits = {}
        for split, y in labels.items():
            guess = np.where(rng.random(per_split) < right, y, rng.integers(0, classes, per_split))
            logits = scale * np.eye(classes)[guess] + rng.normal(0, 0.3, (per_split, classes))
            splits[split] = SplitPredictions(logits, y, [f"{split}{i:03d}" for i in range(per_split)])
        write_predictions(root / name / "predictions.h5", splits, name, classes)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "results", help="a finished run's results folder")
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--combos", default=None, help="a+b,c+d (default: fusion.combos of config.yaml)")
    parser.add_argument("--smoke", action="store_true", help="generated predictions, seconds (numbers mean nothing)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = generated_run(Path(tmp)) if args.smoke else args.results / args.dataset / "models"
        if not args.smoke and not list(folder.glob("*/predictions.h5")):
            print(f"{folder}: no <model>/predictions.h5 (run the pipeline first)", file=sys.stderr)
            sys.exit(77)  # skipped: what it measures is absent
        models = {name: read_predictions(path)[0] for name, path in find_predictions(folder).items()}
        if args.combos:
            combos = [combo.split("+") for combo in args.combos.split(",")]
        elif args.smoke:
            combos = [["signbert", "hma"], ["signbert", "stgcn"], ["signbert", "stgcn", "hma"]]
        else:
            combos = yaml.safe_load((REPO / "config.yaml").read_text())["fusion"]["combos"]
        combos = [combo for combo in combos if all(m in models for m in combo)]
        print(json.dumps(compare(models, combos, args.folds)))


if __name__ == "__main__":
    main()
