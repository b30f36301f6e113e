"""GLE-Net vs a plain one-stream pseudo-3D ResNet of the same depth, on the demo corpus (issue 14).

The demo generator's confusing class pairs differ only in the face, the non-manual features
GLE-Net exists for. Both models read the same frames shards with the same input pipeline and
train for the same number of epochs (GLE-Net: ``--epochs`` per phase, streams then joint; the
baseline: twice ``--epochs`` in one run), with the same optimiser, over ``--seeds`` seeds. Test
top-1 on all classes and on the confusing ones (``corpus/classes.csv``: the classes with a
partner) is reported per seed and as the seed mean. The attention memory is measured apart, in a fresh process per setting:
forward and backward of the global enhancement module at the pool2 shape of ``--attention-shape``
(default the paper's: C 256, T 8, 56 x 56 for 32 frames of 224 px), with its keys and values
pooled by ``--attention-stride``.

    python benchmarks/glenet.py                                   # demo shards under results/demo
    python benchmarks/glenet.py --side 64 --width 16 --epochs 8 --optimizer adam --lr 1e-3 --schedule cosine
    python benchmarks/glenet.py --frames R/gle/frames --corpus R/gle/corpus --manifest R/gle/corpus/corpus.csv ...

(the last on a larger generated corpus, built by Snakemake from a config file; docs/glenet.md).
It also checks what the local stream enlarges: the mean magnification (``region_magnification``)
of the test clips' face and hands under the trained GLE-Net's sampling grids, their boxes read
from the corpus's keypoint sidecars (1 = as many pixels as in the global stream).

Prints one line per seed and setting, then one JSON line (last): baseline_top1, glenet_top1,
baseline_confusing_top1, glenet_confusing_top1 (seed means, %), samples_per_s (GLE-Net
training), the same top-1s on the validation signer (``*_val_*``), the face top-1s
(``*_face_top1``: of the confusing test videos predicted within their pair, the share with the
right face; 50 = the face ignored; partners from ``classes.csv``), glenet_face_magnification and
glenet_hands_magnification, peak_rss_mb (this process), attention_peak_mb (the module at the
given shape), and the per-seed numbers and settings.
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


def test_top1(logits: np.ndarray, labels: np.ndarray, partner: np.ndarray) -> tuple[float, float, float]:
    """Top-1 (%) on all videos, on the confusing ones, and the *face* top-1: of the confusing videos
    predicted as their class or its partner (the hands right), the share with the right face; 50
    means the face is ignored. ``partner[label]``: the confusing partner of each class, -1 none."""
    predicted = logits.argmax(1)
    right = predicted == labels
    keep = partner[labels] >= 0
    pair = keep & (right | (predicted == partner[labels]))
    face = 100 * float(right[pair].mean()) if pair.any() else float("nan")
    return 100 * float(right.mean()), 100 * float(right[keep].mean()), face


FACE, HANDS = slice(23, 91), slice(91, 133)
"""COCO-WholeBody indices of the 68 face points and the two hands' 42 (the corpus's keypoint sidecars)."""


def part_boxes(xy: np.ndarray, score: np.ndarray, frames: np.ndarray, part: slice, src_hw: tuple[int, int],
               short_side: int, crop: int) -> np.ndarray:
    """Box (x0, y0, x1, y1) in [0, 1] of the test crop around a part's confident points, per frame (T, 4):
    the keypoints mapped as ``scale_crop`` maps the frame (short side, then the centred crop)."""
    h, w = src_hw
    scale = short_side / min(h, w)
    top = (max(short_side, round(h * scale)) - crop) // 2
    left = (max(short_side, round(w * scale)) - crop) // 2
    boxes = []
    for frame in frames:
        points = xy[frame, part][score[frame, part] > 0.3] * scale - [left, top]
        if not len(points):
            points = np.full((1, 2), np.nan)
        boxes.append(np.r_[points.min(0), points.max(0)] / crop)
    return np.clip(np.array(boxes), 0, 1)


def magnification(model, data, corpus: Path, short_side: int, crop: int, batch: int = 8) -> dict[str, float]:
    """Mean magnification (``region_magnification``) the local stream's grids give the face and the
    hands of the test clips: > 1 means the local stream sees them with more pixels than the global one."""
    import h5py
    import torch

    from signpipe.models.glenet import region_magnification

    model.eval()
    values = {"face": [], "hands": []}
    for start in range(0, len(data), batch):
        items = data.__getitems__(list(range(start, min(start + batch, len(data)))))
        with torch.no_grad():
            grid = model(torch.stack([item["jpeg"] for item in items])).grid                # (B, T', H', W', 2)
        for n, item in enumerate(items):
            keypoints = np.load(corpus / "keypoints" / f"{item['video_id']}.npz")
            groups = np.array_split(np.asarray(item["frames"]), grid.shape[1])             # the frames of each T' step
            row = data.index.iloc[start + n]
            with h5py.File(row["path"]) as shard:
                src_hw = int(shard["height"][row["start"]]), int(shard["width"][row["start"]])
            for name, part in (("face", FACE), ("hands", HANDS)):
                boxes = np.array([np.r_[np.nanmin(b[:, :2], 0), np.nanmax(b[:, 2:], 0)] for b in
                                  (part_boxes(keypoints["xy"], keypoints["score"], g, part, src_hw, short_side, crop)
                                   for g in groups)])
                ok = ~np.isnan(boxes).any(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
                if ok.any():
                    values[name] += region_magnification(grid[n][ok], torch.from_numpy(boxes[ok]).float()).tolist()
    return {name: float(np.mean(part)) for name, part in values.items()}


def run_seed(seed: int, shards: list[str], classes: int, partner: np.ndarray, corpus_dir: Path,
             args: argparse.Namespace, work: Path) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from signpipe.finetune import finetune, phase_settings
    from signpipe.models.glenet import SPEC, P3DResNet, settings
    from signpipe.predictions import read_predictions
    from signpipe.train import fit, predict, train_config

    block = {"depth": args.depth, "width": args.width, "short_side": args.side + args.side // 8, "crop": args.side,
             "test_crop": args.side, "num_frames": args.num_frames, "optimizer": args.optimizer, "lr": args.lr,
             "batch_size": args.batch_size, "epochs": args.epochs, "flip": args.flip, "schedule": args.schedule}
    joint_lr = args.lr * 0.1 if args.joint_lr is None else args.joint_lr  # the joint phase fine-tunes, not restarts
    cfg = {"device": "cpu", "seed": seed, "glenet": {**block, "phases": {"joint": {"lr": joint_lr}}}}
    started = time.perf_counter()
    finetune("glenet", shards, work / f"glenet{seed}", classes, cfg)
    glenet_seconds = time.perf_counter() - started
    splits, _ = read_predictions(work / f"glenet{seed}" / "predictions.h5")
    glenet = test_top1(splits["test"].logits, splits["test"].label, partner)
    glenet_val = test_top1(splits["val"].logits, splits["val"].label, partner)
    model = SPEC.build(classes, block)
    model.load_state_dict(torch.load(work / f"glenet{seed}" / "joint" / "checkpoint.pt", weights_only=True)["model"])
    test_set = SPEC.dataset({"frames": shards}, "test", False, block)
    enlarged = magnification(model, test_set, corpus_dir, block["short_side"], block["test_crop"])
    import pandas as pd

    log = pd.read_csv(work / f"glenet{seed}" / "log.csv")

    # the baseline: the same settings (phase 1's optimiser, from --lr), one phase of twice the epochs
    values = {**phase_settings(SPEC, cfg)["streams"], "epochs": 2 * args.epochs}
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
    baseline = test_top1(logits, labels, partner)
    logits, labels, _ = predict(model, sets["val"], lambda m, b: m(b["jpeg"]), training.batch_size, "cpu")
    baseline_val = test_top1(logits, labels, partner)
    row = {"seed": seed, "baseline_top1": baseline[0], "glenet_top1": glenet[0],
           "baseline_confusing_top1": baseline[1], "glenet_confusing_top1": glenet[1],
           "baseline_val_top1": baseline_val[0], "glenet_val_top1": glenet_val[0],
           "baseline_val_confusing_top1": baseline_val[1], "glenet_val_confusing_top1": glenet_val[1],
           "baseline_face_top1": baseline[2], "glenet_face_top1": glenet[2],
           "glenet_face_magnification": enlarged["face"], "glenet_hands_magnification": enlarged["hands"],
           "glenet_samples_per_s": float(log["samples_per_s"].mean()), "glenet_seconds": glenet_seconds,
           "baseline_seconds": baseline_seconds}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--frames", default=str(REPO / "results" / "demo" / "frames"), help="folder of frames shards")
    parser.add_argument("--corpus", default=str(REPO / "results" / "demo" / "corpus"), help="the corpus folder: classes.csv, keypoints/")
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
    parser.add_argument("--joint-lr", type=float, default=None,
                        help="lr of GLE-Net's joint phase (default: --lr x 0.1, as finetune.glenet's 5e-4 after 5e-3)")
    parser.add_argument("--flip", action="store_true", help="random horizontal flips (the paper's); off by default: "
                        "the demo's one-handed classes would then show either hand")
    parser.add_argument("--schedule", default="plateau", help="plateau (the paper's), step or cosine")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--attention-shape", default="256,8,56,56", help="C,T,H,W at pool2 (paper: 256,8,56,56)")
    parser.add_argument("--attention-stride", type=int, default=2)
    parser.add_argument("--attention-explicit", action="store_true", help="also measure with E materialised")
    parser.add_argument("--skip-training", action="store_true", help="measure the attention memory only")
    parser.add_argument("--keep", help="folder to keep the runs in (logs, checkpoints, saliency.png); default: "
                        "a temporary one, deleted")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.seeds, args.epochs, args.attention_shape = 1, 1, "32,4,14,14"
        if not glob.glob(os.path.join(args.frames, "*.h5")):
            print(f"no frames shards in {args.frames}: run `make demo` first", file=sys.stderr)
            sys.exit(77)  # skipped: its input is absent

    import torch

    import pandas as pd

    from signpipe.finetune import num_classes

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
        partner = pd.read_csv(Path(args.corpus) / "classes.csv").sort_values("label")["confusing_with"].to_numpy()
        with tempfile.TemporaryDirectory(prefix="glenet-bench-") as work:
            work = Path(args.keep or work)
            rows = [run_seed(seed, shards, classes, partner, Path(args.corpus), args, work)
                    for seed in range(args.seeds)]
    mean = {key: float(np.mean([row[key] for row in rows])) if rows else float("nan")
            for key in ("baseline_top1", "glenet_top1", "baseline_confusing_top1", "glenet_confusing_top1",
                        "baseline_val_top1", "glenet_val_top1", "baseline_val_confusing_top1",
                        "glenet_val_confusing_top1", "baseline_face_top1", "glenet_face_top1",
                        "glenet_samples_per_s", "glenet_face_magnification", "glenet_hands_magnification")}
    print(json.dumps({
        "baseline_top1": mean["baseline_top1"], "glenet_top1": mean["glenet_top1"],
        "baseline_confusing_top1": mean["baseline_confusing_top1"],
        "glenet_confusing_top1": mean["glenet_confusing_top1"], "samples_per_s": mean["glenet_samples_per_s"],
        **{key: mean[key] for key in mean if "_val_" in key or "face" in key or "hands" in key},
        "peak_rss_mb": rss_mb(), "attention_peak_mb": attention["module"]["extra_mb"], "attention": attention,
        "attention_shape": shape, "attention_stride": args.attention_stride, "seeds": rows,
        "settings": {k: v for k, v in vars(args).items() if k not in ("frames", "corpus", "manifest", "keep")}}))


if __name__ == "__main__":
    main()
