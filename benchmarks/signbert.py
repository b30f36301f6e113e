"""SignBERT on the synthetic corpus (CPU): pre-training and fine-tuning throughput, peak memory,
the feasibility PCK of §4.3, and test accuracy with and without pre-training (the question of
the paper's Table 4).

    python benchmarks/signbert.py [--classes 10 --signers 6 --repeats 3 ...]

Builds the corpus and its hands shards in a temporary folder (synth -> manifest -> decode ->
sidecar pose -> hands), pre-trains on its train split, fine-tunes from the pre-trained encoder
and from scratch with the same schedule, once per seed, and prints one JSON line last (test
accuracies are means over the seeds).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from pathlib import Path
from statistics import mean

import pandas as pd
import torch

from signpipe.datasets import write_manifest
from signpipe.decode import decode_shard
from signpipe.finetune import finetune
from signpipe.hands import crop_shard
from signpipe.pose import extract_shard
from signpipe.pretrain import pretrain
from signpipe.synth import make_corpus

PRETRAIN_EPOCHS, PRETRAIN_LR, PRETRAIN_LR_STEP = 240, 1e-3, 180
"""The pre-training schedule: the paper's lr, but this corpus has 15 batches of 8 per epoch, so
the paper's 20-epoch step (thousands of batches on its four corpora) would decay the learning
rate after 300 steps, long before the reconstruction converges; here the decay comes after
2,700 steps (epoch 180) of 3,600."""


def hands_shards(root: Path, args: argparse.Namespace) -> list[Path]:
    """The synthetic corpus through the data stages; returns its hands shards."""
    make_corpus(root / "corpus", num_classes=args.classes, signers=args.signers, repeats=args.repeats,
                frames=args.frames, width=160, height=120, progress=False)
    write_manifest({"adapter": "synthetic", "num_shards": args.shards}, root / "manifest.csv", root / "missing.csv",
                   corpus_dir=root / "corpus")
    paths = []
    for shard in range(args.shards):
        frames, keypoints, hands = (root / f"{stage}{shard}.h5" for stage in ("frames", "keypoints", "hands"))
        decode_shard(root / "manifest.csv", shard, frames, root / "failures.csv", short_side=120, progress=False)
        extract_shard(root / "manifest.csv", frames, keypoints, root / "quality.csv", {"backend": "sidecar"},
                      progress=False)
        crop_shard(frames, keypoints, hands, crop_size=args.crop, progress=False)
        paths.append(hands)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--signers", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=PRETRAIN_EPOCHS)
    parser.add_argument("--pretrain-lr", type=float, default=PRETRAIN_LR)
    parser.add_argument("--lr-step", type=int, default=PRETRAIN_LR_STEP,
                        help="pre-training epochs before the x0.1 decay (paper: 20 epochs of four large corpora)")
    parser.add_argument("--finetune-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--finetune-seeds", type=int, default=3,
                        help="fine-tune both ways with seeds 0..N-1 and report mean test accuracy (30 test videos "
                             "make one run's gap noise)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    arch = {"hidden": args.hidden, "layers": args.layers, "heads": 4, "feedforward": 2 * args.hidden,
            "gcn_channels": 32}
    common = {"batch_size": args.batch_size, "device": "cpu", "seed": 0, "num_frames": 32}
    with tempfile.TemporaryDirectory(prefix="signpipe-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        shards = hands_shards(root, args)
        data_s = time.perf_counter() - started
        measured = pretrain(shards, root / "pretrain" / "signbert.pt",
                            {**common, "epochs": args.pretrain_epochs, "lr": args.pretrain_lr, "lr_step": args.lr_step,
                             "model": arch})
        pretrain_log = pd.read_csv(root / "pretrain" / "log.csv")
        tuning = {**common, "epochs": args.finetune_epochs, "lr_step": args.finetune_epochs, "signbert": arch}
        runs: dict[str, list[dict[str, float]]] = {"pretrained": [], "scratch": []}
        for seed in range(args.finetune_seeds):
            for start, encoder in (("pretrained", root / "pretrain" / "signbert.pt"), ("scratch", None)):
                out = root / f"{start}-{seed}"
                runs[start].append(finetune("signbert", shards, out, args.classes, {**tuning, "seed": seed},
                                            pretrained=encoder))
                runs[start][-1]["samples_per_s"] = float(pd.read_csv(out / "log.csv")["samples_per_s"].mean())
        videos = len(pd.read_csv(root / "manifest.csv"))
    print(json.dumps({
        "videos": videos, "classes": args.classes, "crop": args.crop, "model": arch,
        "pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs, "data_s": round(data_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "pretrain_samples_per_s": round(float(pretrain_log["samples_per_s"].mean()), 2),
        "finetune_samples_per_s": round(mean(r["samples_per_s"] for r in runs["pretrained"] + runs["scratch"]), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pck20_input": round(measured["pck20_input"], 4), "pck20_output": round(measured["pck20_output"], 4),
        "auc_input": round(measured["auc_input"], 4), "auc_output": round(measured["auc_output"], 4),
        "pck20_input_masked": round(measured["pck20_input_masked"], 4),
        "pck20_output_masked": round(measured["pck20_output_masked"], 4),
        **{f"acc_{start}": round(mean(r["test_acc"] for r in runs[start]), 4) for start in runs},
        **{f"val_acc_{start}": round(mean(r["val_acc"] for r in runs[start]), 4) for start in runs},
        "finetune_seeds": args.finetune_seeds,
        **{f"acc_{start}_per_seed": [round(r["test_acc"], 4) for r in runs[start]] for start in runs},
    }))


if __name__ == "__main__":
    main()
