"""GLE-Net against its own backbone where faces matter (issue 24), and its attention memory (issue 26).

The corpus (drawn once into ``--out``, reused when its settings match): the synthetic
generator's legible-face mode, ``face_scale`` 2.4 and every class in a pair that differs only in
the face (``confusing_pairs = classes // 2``), so the face is >= 24 px at the 72-px model input
and half of every decision rests on it. Split by signer; nothing is tuned on the test split.
Both models see each pixel minus its mean over the clip (``subtract_mean``, as the demo):
from random weights on raw frames (``--no-subtract-mean``) neither left chance at this budget.

Per seed, with the same frames, input pipeline, optimiser and schedule:

- the **baseline**, the one-stream pseudo-3D ResNet of the same depth (``P3DResNet``), trained
  for exactly GLE-Net's epochs and schedule: one run per GLE-Net phase (``--epochs`` then
  ``--joint-epochs``, the second at the joint phase's lr ``--joint-lr``), the weights carried over;
- **GLE-Net** (``full``) through the finetune stage, both phases; its per-stream logits
  (``predictions.h5`` ``streams/``) give ``glenet_global_top1`` and ``glenet_local_top1``;
- the **ablations** (``--ablations``, all by default, on the first ``--ablation-seeds`` seeds, 1 by default): ``gem_only``
  (the global stream alone: only L_global is trained, its logits scored), ``lem_only`` (two
  streams, no global enhancement module, ``position: none``), ``no_mu`` (both modules, L_mu
  weighted 0), and the hypotheses of issue 24: ``kl_0.2`` (L_mu weighted 0.2 instead of 0.8),
  ``saliency_detached`` (``detach_saliency: true``: the local loss stops at the saliency input,
  signpipe's default until issue 24; ``full`` back-propagates through it, as the paper). ``no_mu`` and ``kl_0.2`` differ from
  ``full`` only in the joint phase, so they start from a copy of ``full``'s finished streams phase
  (the stage's phase reuse) instead of training it again.

The runs go to ``--jobs`` worker processes (one torch thread each): 2 fills 2 idle cores.

Top-1 in % on the test signers; ``*_confusing_top1`` on the classes with a face-only partner
(all of them here). ``face_magnification`` / ``hands_magnification``: how much the trained
GLE-Net's local stream enlarges the face and the hands of the test clips (share of its samples
in the part's box over the box's share of the frame, boxes from the keypoint sidecars; 1 = as
the global stream sees it). ``attention_peak_mb``: forward + backward of the global enhancement
module alone at the paper's pool2 shape (C 256, T 8, 56 x 56: 32 frames of 224 px, keys pooled
by 2), one clip, in a fresh process, MiB above its inputs (RSS on CPU, the allocator's peak on
CUDA). ``saliency.png`` of the first seed's GLE-Net is copied to ``--out``.

    python benchmarks/glenet.py            # the issue's numbers: 3 seeds, every ablation on seed 0 (~14 min, 2 idle cores)
    python benchmarks/glenet.py --smoke    # seconds: tiny corpus and sizes, the same code and keys
    python benchmarks/glenet.py --ablation-seeds 3   # every ablation on every seed (~24 min)
    python benchmarks/glenet.py --seeds 1 --ablations ""   # baseline and full GLE-Net on one seed
    python benchmarks/glenet.py --only baseline --epochs 8   # the budget curve: does the baseline read the face?

The default budget is 30 + 2 epochs: at 8 + 2 (the default until then) every model stayed at or
below the 50 % a model that reads only the hands reaches, so the comparison could not show what
GLE-Net is for; at 30 + 2 both read the face (docs/glenet.md, "The budget").

Prints one line per run, then one JSON line (last): baseline_top1, glenet_top1,
glenet_global_top1, glenet_local_top1, baseline_confusing_top1, glenet_confusing_top1,
face_magnification, hands_magnification (seed means), seeds (per seed), samples_per_s (GLE-Net
training), attention_peak_mb, then ablations (per variant: seed means and standard deviations
of the test top-1s, the streams' validation top-1 after each phase, the final train losses) and
settings.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAPER_ATTENTION_SHAPE = (256, 8, 56, 56)
"""GLE-Net's pool2 at the paper's input (C, T, H, W): 32 frames of 224 px, ResNet-50."""
VARIANTS = {
    "full": {},
    "gem_only": {"phases": {"streams": {"loss_weights": {"com": 0.0, "global": 1.0, "local": 0.0, "mu": 0.0}},
                            "joint": {"loss_weights": {"com": 0.0, "global": 1.0, "local": 0.0, "mu": 0.0}}}},
    "lem_only": {"position": "none"},
    "no_mu": {"phases": {"joint": {"loss_weights": {"com": 0.2, "global": 0.2, "local": 0.2, "mu": 0.0}}}},
    "kl_0.2": {"phases": {"joint": {"loss_weights": {"com": 0.2, "global": 0.2, "local": 0.2, "mu": 0.2}}}},
    "saliency_detached": {"detach_saliency": True},
}
"""GLE-Net's ablations (Table 4's +GEM, +LEM, both without mutual promotion) and issue 24's hypotheses."""
SHARE_STREAMS = ("no_mu", "kl_0.2")
"""Variants whose streams phase is ``full``'s (they differ in the joint phase only)."""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _attention_worker(shape: tuple[int, int, int, int], stride: int, explicit: bool, queue) -> None:
    import torch

    from signpipe.models.glenet import GlobalEnhancement

    torch.set_num_threads(1)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    channels, t, h, w = shape
    torch.manual_seed(0)
    module = GlobalEnhancement(channels, stride).to(device)
    with torch.no_grad():
        module.beta.fill_(1.0)
    x = torch.randn(1, channels, t, h, w, device=device, requires_grad=True)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    before = rss_mb()
    started = time.perf_counter()
    if explicit:   # E materialised, as Eq. 2 reads (what the attention did with transposed q/k/v)
        e = module.enhancement_map(x)
        c = module._keys(x, module.value)                                  # (1, N_k, C)
        out = (e @ c).transpose(1, 2).reshape(x.shape) * module.beta + x
    else:
        out = module(x)
    out.square().mean().backward()
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device == "cuda" else rss_mb() - before
    queue.put({"extra_mb": peak, "seconds": time.perf_counter() - started, "device": device})


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


def top1(logits: np.ndarray, labels: np.ndarray, partner: np.ndarray) -> tuple[float, float]:
    """Top-1 (%) on all videos and on those of classes with a confusing partner (``partner[label] >= 0``)."""
    right = logits.argmax(1) == labels
    keep = partner[labels] >= 0
    return 100 * float(right.mean()), 100 * float(right[keep].mean()) if keep.any() else float("nan")


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
    from signpipe.shards import read_index

    sources = {}
    for path in dict.fromkeys(data.index["path"]):
        with h5py.File(path) as shard:
            table = read_index(shard)
        sources |= {v: (int(h), int(w)) for v, h, w in zip(table["video_id"], table["src_height"], table["src_width"])}
    model.eval()
    values = {"face": [], "hands": []}
    for start in range(0, len(data), batch):
        items = data.__getitems__(list(range(start, min(start + batch, len(data)))))
        with torch.no_grad():
            grid = model(torch.stack([item["jpeg"] for item in items])).grid                # (B, T', H', W', 2)
        for n, item in enumerate(items):
            keypoints = np.load(corpus / "keypoints" / f"{item['video_id']}.npz")
            groups = np.array_split(np.asarray(item["frames"]), grid.shape[1])             # the frames of each T' step
            src_hw = sources[item["video_id"]]                                             # keypoints: video pixels
            for name, part in (("face", FACE), ("hands", HANDS)):
                boxes = np.array([np.r_[np.nanmin(b[:, :2], 0), np.nanmax(b[:, 2:], 0)] for b in
                                  (part_boxes(keypoints["xy"], keypoints["score"], g, part, src_hw, short_side, crop)
                                   for g in groups)])
                ok = ~np.isnan(boxes).any(1) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
                if ok.any():
                    values[name] += region_magnification(grid[n][ok], torch.from_numpy(boxes[ok]).float()).tolist()
    return {name: float(np.mean(part)) if part else float("nan") for name, part in values.items()}


def make_frames(args: argparse.Namespace, out: Path) -> tuple[list[str], Path, Path]:
    """The legible-face corpus, its manifest and one frames shard under ``out/corpus``; reused when
    drawn with the same settings. Returns the shard paths, the corpus folder and the manifest."""
    from signpipe.datasets import write_manifest
    from signpipe.decode import decode_shard
    from signpipe.synth import make_corpus

    corpus_cfg = {"num_classes": args.classes, "signers": args.signers, "repeats": args.repeats,
                  "frames": args.frames, "val_signers": args.val_signers, "test_signers": args.test_signers,
                  "face_scale": args.face_scale, "confusing_pairs": args.classes // 2, "seed": 0}
    root = out / "corpus"
    stamp = root / "settings.json"
    wanted = json.dumps({**corpus_cfg, "short_side": short_side(args)}, sort_keys=True)
    shard = root / "frames" / "0.h5"
    if not (stamp.exists() and stamp.read_text() == wanted and shard.exists()):
        shutil.rmtree(root, ignore_errors=True)
        make_corpus(root / "videos", progress=False, **corpus_cfg)
        write_manifest({"adapter": "synthetic", "num_shards": 1}, root / "manifest.csv", root / "missing.csv",
                       root / "videos")
        shard.parent.mkdir(parents=True, exist_ok=True)
        decode_shard(root / "manifest.csv", 0, shard, root / "failures.csv", short_side=short_side(args),
                     threads=1, progress=False)
        stamp.write_text(wanted)
    return [str(shard)], root / "videos", root / "manifest.csv"


def short_side(args: argparse.Namespace) -> int:
    return args.side + args.side // 8


def block(args: argparse.Namespace, variant: str) -> dict:
    """The ``finetune.glenet`` block of a run (both models' input and training settings)."""
    variant_keys = dict(VARIANTS[variant])
    phases = {name: dict(keys) for name, keys in variant_keys.pop("phases", {}).items()}
    # the joint phase fine-tunes at the stage's --lr x 0.1 (finetune.phase_settings) unless --joint-lr is given
    phases["joint"] = {**phases.get("joint", {}), "epochs": args.joint_epochs}
    if args.joint_lr is not None:
        phases["joint"]["lr"] = args.joint_lr
    return {"depth": args.depth, "width": args.width, "short_side": short_side(args), "crop": args.side,
            "test_crop": args.side, "num_frames": args.num_frames, "frame_step": 1, "sampling": "segments",
            "flip": False, "subtract_mean": args.subtract_mean, "optimizer": args.optimizer, "lr": args.lr, "batch_size": args.batch_size,
            "epochs": args.epochs, "schedule": args.schedule, "num_workers": 0, **variant_keys, "phases": phases}


def run_glenet(seed: int, variant: str, shards: list[str], classes: int, partner: np.ndarray, corpus: Path,
               args: argparse.Namespace, work: Path) -> dict[str, float]:
    """One GLE-Net run through the finetune stage: its test top-1s (sum and streams), the
    streams' validation top-1 after each phase, the final train losses, and for ``full`` the
    magnification of face and hands. A ``SHARE_STREAMS`` variant starts from a copy of
    ``full``'s streams phase of the same seed (run first)."""
    import pandas as pd
    import torch

    from signpipe.finetune import finetune
    from signpipe.models.glenet import SPEC
    from signpipe.predictions import read_predictions

    folder = work / f"{variant}{seed}"
    if variant in SHARE_STREAMS:
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(work / f"full{seed}" / "streams", folder / "streams")
    cfg = {"device": "cpu", "seed": seed, "glenet": block(args, variant)}
    started, cpu = time.perf_counter(), time.process_time()
    finetune("glenet", shards, folder, classes, cfg)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    test = read_predictions(folder / "predictions.h5")[0]["test"]
    scored = test.streams["global"] if variant == "gem_only" else test.logits
    row = {"variant": variant, "seed": seed, "seconds": seconds, "cpu_seconds": cpu}
    row["top1"], row["confusing_top1"] = top1(scored, test.label, partner)
    for stream, logits in test.streams.items():
        row[f"{stream}_top1"] = top1(logits, test.label, partner)[0]
    log = pd.read_csv(folder / "log.csv")
    trained = log[log["phase"] == "joint"] if variant in SHARE_STREAMS else log
    row["samples_per_s"] = float(trained["samples_per_s"].mean())
    row["val_top1"] = 100 * float(log["val_acc"].iloc[-1])
    for phase, rows in log.groupby("phase", sort=False):
        for stream in ("global", "local"):
            row[f"{phase}_val_{stream}_top1"] = 100 * float(rows[f"val_{stream}_acc"].iloc[-1])
    for term in ("global", "local", "mu"):
        row[f"train_{term}_loss"] = float(log[f"{term}_loss"].iloc[-1])
    if variant == "full":
        settings = block(args, variant)
        model = SPEC.build(classes, settings)
        model.load_state_dict(torch.load(folder / "joint" / "checkpoint.pt", weights_only=True)["model"])
        data = SPEC.dataset({"frames": shards}, "test", False, settings)
        enlarged = magnification(model, data, corpus, settings["short_side"], settings["test_crop"])
        row["face_magnification"], row["hands_magnification"] = enlarged["face"], enlarged["hands"]
    print(json.dumps(row), flush=True)
    return row


def run_baseline(seed: int, shards: list[str], classes: int, partner: np.ndarray, args: argparse.Namespace,
                 work: Path) -> dict[str, float]:
    """The one-stream backbone with GLE-Net's phases' settings, epochs and schedule, one run per
    phase, the weights carried from the first to the second."""
    import torch
    import torch.nn.functional as F

    from signpipe.finetune import phase_settings
    from signpipe.models.glenet import SPEC, P3DResNet, settings
    from signpipe.train import fit, predict, train_config

    phases = phase_settings(SPEC, {"device": "cpu", "seed": seed, "glenet": block(args, "full")})
    first = next(iter(phases.values()))
    arch = settings(first)
    sets = {split: SPEC.dataset({"frames": shards}, split, split == "train", first) for split in ("train", "val", "test")}
    torch.manual_seed(seed)
    model = P3DResNet(classes, arch.depth, arch.width, arch.dropout, arch.subtract_mean)
    forward = lambda m, b: m(b["jpeg"])  # noqa: E731

    def step(m, batch):
        logits = m(batch["jpeg"])
        return F.cross_entropy(logits, batch["label"]), {"train_acc": float((logits.argmax(1) == batch["label"]).float().mean())}

    def evaluate(m):
        logits, labels, _ = predict(m, sets["val"], forward, first["batch_size"], "cpu")
        return {"val_loss": float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))),
                "val_acc": float((logits.argmax(1) == labels).mean())}

    started, cpu = time.perf_counter(), time.process_time()
    for name, values in phases.items():
        fit(model, step, sets["train"], work / f"baseline{seed}" / name, train_config(values), evaluate, progress=False)
    logits, labels, _ = predict(model, sets["test"], forward, first["batch_size"], "cpu")
    row = {"variant": "baseline", "seed": seed, "seconds": time.perf_counter() - started,
           "cpu_seconds": time.process_time() - cpu}
    row["top1"], row["confusing_top1"] = top1(logits, labels, partner)
    print(json.dumps(row), flush=True)
    return row


def run_task(task: list[tuple[str, int]], shards: list[str], classes: int, partner: np.ndarray, corpus: Path,
             args: argparse.Namespace, work: Path) -> list[dict]:
    """Runs ``(variant, seed)`` in order in one process (one torch thread); ``baseline`` is the backbone."""
    import torch

    torch.set_num_threads(args.threads)
    return [run_baseline(seed, shards, classes, partner, args, work) if variant == "baseline"
            else run_glenet(seed, variant, shards, classes, partner, corpus, args, work) for variant, seed in task]


SUMMARISED = ("top1", "confusing_top1", "global_top1", "local_top1", "val_top1", "streams_val_global_top1",
              "streams_val_local_top1", "joint_val_global_top1", "joint_val_local_top1", "train_global_loss",
              "train_local_loss", "train_mu_loss", "face_magnification", "hands_magnification", "seconds", "cpu_seconds")
"""What the ablation summary gives per variant (mean and std over its seeds)."""


def tasks(seeds: int, ablation_seeds: int, ablations: list[str], only: str | None = None,
          first_seed: int = 0) -> list[list[tuple[str, int]]]:
    """The runs grouped into tasks for the workers, seed by seed from ``first_seed`` (a stopped run
    has whole seeds): ``full`` followed by the variants that start from its streams phase, every
    other variant alone, the baseline. ``only``: "baseline" (the baseline alone) or "glenet" (no baseline)."""
    out = []
    for seed in range(first_seed, first_seed + seeds):
        variants = ablations if seed - first_seed < ablation_seeds else []
        if only != "baseline":
            out.append([("full", seed)] + [(v, seed) for v in variants if v in SHARE_STREAMS])
            out += [[(v, seed)] for v in variants if v not in SHARE_STREAMS]
        if only != "glenet":
            out.append([("baseline", seed)])
    return out


def mean(rows: list[dict], key: str) -> float:
    values = [row[key] for row in rows if key in row]
    return float(np.mean(values)) if values else float("nan")


def std(rows: list[dict], key: str) -> float:
    """Standard deviation over seeds (ddof 1; 0 for one seed)."""
    values = [row[key] for row in rows if key in row]
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0 if values else float("nan")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny corpus and sizes: seconds, the same code and keys")
    parser.add_argument("--out", default=None,
                        help="corpus (reused), runs, saliency.png and result.json (default: results/benchmarks/glenet "
                             "of the checkout; with --smoke a new temporary folder, so a smoke run never replaces them)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds run from here: adds seeds to a finished run (another --out) without rerunning it")
    parser.add_argument("--ablations", default=",".join(v for v in VARIANTS if v != "full"),
                        help=f"comma-separated, of {', '.join(VARIANTS)} (full always runs), or ''")
    parser.add_argument("--ablation-seeds", type=int, default=1, help="how many of the first seeds run the ablations")
    parser.add_argument("--epochs", type=int, default=30,
                        help="of GLE-Net's streams phase; the baseline's first run (8: no model reads the face)")
    parser.add_argument("--joint-epochs", type=int, default=2, help="of the joint phase; the baseline's second run")
    parser.add_argument("--classes", type=int, default=8, help="all in face-only pairs (classes // 2 pairs)")
    parser.add_argument("--signers", type=int, default=14)
    parser.add_argument("--val-signers", type=int, default=1)
    parser.add_argument("--test-signers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=24, help="frames per clip before the signer's speed")
    parser.add_argument("--face-scale", type=float, default=2.4)
    parser.add_argument("--depth", type=int, default=10)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--side", type=int, default=72, help="crop side in pixels (short side: side * 9/8)")
    parser.add_argument("--num-frames", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--subtract-mean", action=argparse.BooleanOptionalAction, default=True,
                        help="both models see each pixel minus its clip mean (subtract_mean): from random weights on "
                             "raw frames neither learns at this budget")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--joint-lr", type=float, default=None,
                        help="lr of the joint phase, both models (default: --lr x 0.1, the stage's rule for a user's lr: "
                             "a fine-tune, not a restart)")
    parser.add_argument("--schedule", default="cosine", help="plateau (the paper's), step or cosine")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes running the runs side by side")
    parser.add_argument("--attention-shape", default=",".join(map(str, PAPER_ATTENTION_SHAPE)), help="C,T,H,W at pool2")
    parser.add_argument("--attention-stride", type=int, default=2)
    parser.add_argument("--attention-explicit", action="store_true", help="also measure with E materialised")
    parser.add_argument("--skip-training", action="store_true", help="measure the attention memory only")
    parser.add_argument("--only", choices=("baseline", "glenet"), default=None,
                        help="train the baseline alone (the budget curve of docs/glenet.md: does it read the face?) "
                             "or GLE-Net and its ablations alone (default: both)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.seeds, args.ablation_seeds, args.epochs, args.joint_epochs, args.classes, args.signers = 1, 1, 1, 1, 4, 4
        args.repeats, args.frames, args.side, args.width, args.num_frames, args.batch_size = 1, 8, 32, 4, 4, 4
        args.attention_shape, args.ablations = "16,2,8,8", "no_mu"

    import pandas as pd
    import torch

    from signpipe.finetune import num_classes

    torch.set_num_threads(args.threads)
    shape = tuple(int(v) for v in args.attention_shape.split(","))
    out = Path(args.out or (tempfile.mkdtemp(prefix="glenet-smoke-") if args.smoke else REPO / "results" / "benchmarks" / "glenet"))
    rows: list[dict] = []
    if args.skip_training:
        attention = {"module": attention_peak_mb(shape, args.attention_stride)}
    else:
        ablations = [v for v in args.ablations.split(",") if v and v != "full"]
        unknown = [v for v in ablations if v not in VARIANTS]
        if unknown:
            parser.error(f"--ablations: {', '.join(unknown)} unknown; known: {', '.join(VARIANTS)}")
        shards, corpus, manifest = make_frames(args, out)
        classes = num_classes(manifest)
        partner = pd.read_csv(corpus / "classes.csv").sort_values("label")["confusing_with"].to_numpy()
        work = out / "runs"
        todo = tasks(args.seeds, args.ablation_seeds, ablations, args.only, args.first_seed)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max(1, min(args.jobs, len(todo))), mp_context=context) as pool:
            running = [pool.submit(run_task, task, shards, classes, partner, corpus, args, work) for task in todo]
            attention = {"module": attention_peak_mb(shape, args.attention_stride)}   # beside the runs
            for future in running:
                rows += future.result()
        rows.sort(key=lambda row: row["seed"])
        figure = work / f"full{args.first_seed}" / "figures" / "saliency.png"
        if figure.exists():
            shutil.copy(figure, out / "saliency.png")
    if args.attention_explicit:
        attention["explicit_E"] = attention_peak_mb(shape, args.attention_stride, explicit=True)
    print(json.dumps({"attention": attention, "shape": shape}), flush=True)
    by = {variant: [row for row in rows if row["variant"] == variant] for variant in dict.fromkeys(r["variant"] for r in rows)}
    full, baseline = by.get("full", []), by.get("baseline", [])
    result = {
        "baseline_top1": mean(baseline, "top1"), "glenet_top1": mean(full, "top1"),
        "glenet_global_top1": mean(full, "global_top1"), "glenet_local_top1": mean(full, "local_top1"),
        "baseline_confusing_top1": mean(baseline, "confusing_top1"),
        "glenet_confusing_top1": mean(full, "confusing_top1"),
        "face_magnification": mean(full, "face_magnification"), "hands_magnification": mean(full, "hands_magnification"),
        "seeds": [{k: v for k, v in row.items() if k != "variant"}
                  | {"baseline_top1": b["top1"] for b in baseline if b["seed"] == row["seed"]} for row in full],
        "samples_per_s": mean(full, "samples_per_s"), "attention_peak_mb": attention["module"]["extra_mb"],
        "ablations": {variant: {f"{stat.__name__}_{key}": stat(part, key) for key in SUMMARISED for stat in (mean, std)
                                if any(key in r for r in part)} | {"seeds": len(part)} for variant, part in by.items()},
        "attention": attention, "attention_shape": shape,
        "cpu_seconds": sum(row["cpu_seconds"] for row in rows),
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "result.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
