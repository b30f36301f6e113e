"""GLE-Net vs a plain one-stream pseudo-3D ResNet of the same depth, on the demo corpus (issue 14).

The demo generator's confusing class pairs differ only in the face, the non-manual features
GLE-Net exists for. Both models read the same frames shards with the same input pipeline and
train for the same number of epochs (GLE-Net: ``--epochs`` per phase, streams then joint; the
baseline: twice ``--epochs`` in one run), with the same optimiser, over ``--seeds`` seeds. Test
top-1 on all classes and on the confusing ones (``corpus/confusing.txt``) is reported per seed
and as the seed mean. The attention memory is measured apart, in a fresh process per setting:
forward and backward of the global enhancement module at the pool2 shape of ``--attention-shape``
(default the paper's: C 256, T 8, 56 x 56 for 32 frames of 224 px), with its keys and values
pooled by ``--attention-stride``.

    python benchmarks/glenet.py                                   # demo shards under results/demo
    python benchmarks/glenet.py --side 64 --width 16 --epochs 8 --optimizer adam --lr 1e-3 --schedule cosine

Prints one line per seed and setting, then one JSON line (last): baseline_top1, glenet_top1,
baseline_confusing_top1, glenet_confusing_top1 (seed means, %), samples_per_s (GLE-Net
training), the same top-1s on the validation signer (``*_val_*``), peak_rss_mb (this process), attention_peak_mb (the module at the given shape), and
the per-seed numbers and settings.
"""

from __future__ import annotations

import argparse
import glob
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _attention_worker(shape: tuple[int, int, int, int], stride: int, explicit: bool, queue) -> None:
    import torch

    from signpipe.models.glenet import GlobalEnhancement

    torch.set_num_threads(1)
    channels, t, h, w = shape
    torch.manual_seed(0)
    module = GlobalEnhancement(channels, stride)
    with torch.no_grad():
        module.beta.fill_(1.0)
    x = torch.randn(1, channels, t, h, w, requires_grad=True)
    before = rss_mb()
    started = time.perf_counter()
    if explicit:   # E materialised, as Eq. 2 reads
        e = module.enhancement_map(x)
        c = module._keys(x, module.value)                                  # (1, N_k, C)
        out = (e @ c).transpose(1, 2).reshape(x.shape) * module.beta + x
    else:
        out = module(x)
    out.square().mean().backward()
    queue.put({"extra_mb": rss_mb() - before, "seconds": time.perf_counter() - started})


def attention_peak_mb(shape: tuple[int, int, int, int], stride: int, explicit: bool = False) -> dict[str, float]:
    """Peak memory (MiB above the inputs) of one forward + backward of the module on one clip, in a fresh process."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_attention_worker, args=(shape, stride, explicit, queue))
    process.start()
    process.join()
    if process.exitcode != 0:
        return {"extra_mb": float("nan"), "seconds": float("nan"), "error": f"exit code {process.exitcode}"}
    return queue.get()


def test_top1(logits: np.ndarray, labels: np.ndarray, confusing: np.ndarray) -> tuple[float, float]:
    right = logits.argmax(1) == labels
    keep = np.isin(labels, confusing)
    return 100 * float(right.mean()), 100 * float(right[keep].mean())


def run_seed(seed: int, shards: list[str], classes: int, confusing: np.ndarray, args: argparse.Namespace,
             work: Path) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from signpipe.finetune import finetune, phase_settings
    from signpipe.models.glenet import SPEC, P3DResNet, settings
    from signpipe.predictions import read_predictions
    from signpipe.train import fit, predict, train_config

    block = {"depth": args.depth, "width": args.width, "short_side": args.side + args.side // 8, "crop": args.side,
             "test_crop": args.side, "num_frames": args.num_frames, "optimizer": args.optimizer, "lr": args.lr,
             "batch_size": args.batch_size, "epochs": args.epochs, "flip": args.flip, "schedule": args.schedule}
    cfg = {"device": "cpu", "seed": seed, "glenet": block}
    started = time.perf_counter()
    finetune("glenet", shards, work / f"glenet{seed}", classes, cfg)
    glenet_seconds = time.perf_counter() - started
    splits, _ = read_predictions(work / f"glenet{seed}" / "predictions.h5")
    glenet = test_top1(splits["test"].logits, splits["test"].label, confusing)
    glenet_val = test_top1(splits["val"].logits, splits["val"].label, confusing)
    import pandas as pd

    log = pd.read_csv(work / f"glenet{seed}" / "log.csv")

    # the baseline: the same settings (the joint phase's optimiser), one phase of twice the epochs
    values = {**phase_settings(SPEC, cfg)["joint"], "epochs": 2 * args.epochs}
    training = train_config(values)
    arch = settings(values)
    sets = {split: SPEC.dataset({"frames": shards}, split, split == "train", {**values, "seed": seed})
            for split in ("train", "val", "test")}
    torch.manual_seed(seed)
    model = P3DResNet(classes, arch.depth, arch.width, arch.dropout)

    def step(m, batch):
        logits = m(batch["jpeg"])
        return F.cross_entropy(logits, batch["label"]), {"train_acc": float((logits.argmax(1) == batch["label"]).float().mean())}

    def evaluate(m):
        logits, labels, _ = predict(m, sets["val"], lambda m, b: m(b["jpeg"]), training.batch_size, "cpu")
        return {"val_loss": float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels)))}

    started = time.perf_counter()
    fit(model, step, sets["train"], work / f"baseline{seed}", training, evaluate, progress=False)
    baseline_seconds = time.perf_counter() - started
    logits, labels, _ = predict(model, sets["test"], lambda m, b: m(b["jpeg"]), training.batch_size, "cpu")
    baseline = test_top1(logits, labels, confusing)
    logits, labels, _ = predict(model, sets["val"], lambda m, b: m(b["jpeg"]), training.batch_size, "cpu")
    baseline_val = test_top1(logits, labels, confusing)
    row = {"seed": seed, "baseline_top1": baseline[0], "glenet_top1": glenet[0],
           "baseline_confusing_top1": baseline[1], "glenet_confusing_top1": glenet[1],
           "baseline_val_top1": baseline_val[0], "glenet_val_top1": glenet_val[0],
           "baseline_val_confusing_top1": baseline_val[1], "glenet_val_confusing_top1": glenet_val[1],
           "glenet_samples_per_s": float(log["samples_per_s"].mean()), "glenet_seconds": glenet_seconds,
           "baseline_seconds": baseline_seconds}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--frames", default=str(REPO / "results" / "demo" / "frames"), help="folder of frames shards")
    parser.add_argument("--corpus", default=str(REPO / "results" / "demo" / "corpus"), help="folder with confusing.txt")
    parser.add_argument("--manifest", default=str(REPO / "results" / "demo" / "manifest.csv"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4, help="per GLE-Net phase; the baseline trains twice as many")
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--side", type=int, default=32, help="crop side in pixels (short side: side * 9/8)")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--flip", action="store_true", help="random horizontal flips (the paper's); off by default: "
                        "the demo's one-handed classes would then show either hand")
    parser.add_argument("--schedule", default="plateau", help="plateau (the paper's), step or cosine")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attention-shape", default="256,8,56,56", help="C,T,H,W at pool2 (paper: 256,8,56,56)")
    parser.add_argument("--attention-stride", type=int, default=2)
    parser.add_argument("--attention-explicit", action="store_true", help="also measure with E materialised")
    parser.add_argument("--skip-training", action="store_true", help="measure the attention memory only")
    args = parser.parse_args()

    import torch

    from signpipe.finetune import num_classes
    from signpipe.metrics import read_classes

    torch.set_num_threads(args.threads)
    shape = tuple(int(v) for v in args.attention_shape.split(","))
    attention = {"module": attention_peak_mb(shape, args.attention_stride)}   # as trained (SDPA kernel)
    if args.attention_explicit:
        attention["explicit_E"] = attention_peak_mb(shape, args.attention_stride, explicit=True)
    print(json.dumps({"attention": attention, "shape": shape}), flush=True)
    rows = []
    if not args.skip_training:
        shards = sorted(glob.glob(os.path.join(args.frames, "*.h5")))
        classes = num_classes(args.manifest)
        confusing = read_classes(Path(args.corpus) / "confusing.txt")
        with tempfile.TemporaryDirectory(prefix="glenet-bench-") as work:
            rows = [run_seed(seed, shards, classes, confusing, args, Path(work)) for seed in range(args.seeds)]
    mean = {key: float(np.mean([row[key] for row in rows])) if rows else float("nan")
            for key in ("baseline_top1", "glenet_top1", "baseline_confusing_top1", "glenet_confusing_top1",
                        "baseline_val_top1", "glenet_val_top1", "baseline_val_confusing_top1",
                        "glenet_val_confusing_top1", "glenet_samples_per_s")}
    print(json.dumps({
        "baseline_top1": mean["baseline_top1"], "glenet_top1": mean["glenet_top1"],
        "baseline_confusing_top1": mean["baseline_confusing_top1"],
        "glenet_confusing_top1": mean["glenet_confusing_top1"], "samples_per_s": mean["glenet_samples_per_s"],
        **{key: mean[key] for key in mean if "_val_" in key},
        "peak_rss_mb": rss_mb(), "attention_peak_mb": attention["module"]["extra_mb"], "attention": attention,
        "attention_shape": shape, "attention_stride": args.attention_stride, "seeds": rows,
        "settings": {k: v for k, v in vars(args).items() if k not in ("frames", "corpus", "manifest")}}))


if __name__ == "__main__":
    main()
