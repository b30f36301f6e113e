"""HMA on the synthetic hand-shape corpus (CPU): the paper's Table 1 and how well the decoded hands fit.

    python benchmarks/hma.py              # the measurement: 4 rows x 5 seeds, paper optimiser (~30 min, 2 idle cores)
    python benchmarks/hma.py --smoke      # the same code path and JSON keys in seconds

Builds the corpus (``hand_shapes``: classes differ only by hand shape and palm orientation;
motion, location, hands and repetitions random per video; signers with different hand sizes;
480 x 360 video, 6 repeats: 360 videos, 240 of them train) and its hands shards in a temporary
folder (synth -> manifest -> decode -> sidecar pose -> hands; ``--data DIR`` keeps and reuses them), then fine-tunes HMA per seed as Table 1's four rows, with
the model's default loss weights: ``cls_only`` (L_cla), ``cls_reg`` (+ L_reg), ``no_tem``
(+ L_reg + L_spa) and ``full`` (eq. 9); ``spa_only`` (L_spa alone) on request.
``pck20_projected`` is the share of confident val-split pseudo-label joints (c >= epsilon,
wrist-relative as eq. 6, wrist excluded) that the full model's projected joints hit within 0.2
of the hand box side (the stored crop); ``pck20_untrained`` the same for a freshly built model;
``pck20_fit`` for the hand model fitted to every val hand pose by optimisation (no encoder: the
ceiling of theta in R^6, beta and the camera) and ``pck20_constant`` for one fitted hand per
side (a decoder that ignores the image); each also at 0.1 of the box side (``pck10_*``, FRACTIONS:
0.2 is passed by one constant hand, 0.1 asks for the articulation). ``theta_probe_acc`` is the test accuracy of a linear
classifier trained on the full model's decoded theta (and camera rotation), averaged over each
clip: how much of the class the decoded hands carry; ``theta_probe_acc_<row>`` and
``joints_probe_acc_<row>`` (the same probe on the inference module's input) give it per row, and
``pose_probe_acc`` on the pseudo-label 2D poses: what a perfect fit could carry; ``acc_pose_gcn``
is the inference module alone trained on the pseudo-labels (can the classifier learn the classes
in this budget?). ``pck20_train_<row>``, ``pck10_train_<row>``: the same PCK on the train clips
(an encoder that underfits scores there as on val). Each run's line has its wall time (``run_s``,
``train_s`` of it in training steps), its per-epoch loss terms, val accuracy and lr (``lr_curve``:
whether the plateau decayed it). Prints one JSON line last; accuracies are test-split means (and
standard deviations) over the seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from statistics import mean

import pandas as pd
import torch
from torch.utils.data import DataLoader

from signpipe.finetune import finetune
from signpipe.handmodel import NUM_BETAS, HandModel, make_camera
from signpipe.handmodel.camera import camera_rotation
from signpipe.handmodel.defaults import SIDES
from signpipe.models.hma import (
    DEFAULTS, INITIAL_LOG_SCALE, INITIAL_VIEW, SPEC, HMAConfig, build, projected_pck, spatial_consistency_loss,
)
from signpipe.train import make_optimizer, train_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handmodel_fit import depth_mirror, fit_palm_camera  # noqa: E402
from signbert import hands_shards  # noqa: E402  (the same corpus pipeline as the SignBERT benchmark)

TERMS = {"cls_only": ("ce",), "cls_reg": ("ce", "reg"), "no_tem": ("ce", "reg", "spa"),
         "full": ("ce", "reg", "spa", "tem"), "spa_only": ("spa",)}
"""The loss terms of each variant: Table 1's rows (Cla; Cla + Reg; Cla + Reg + Spa; all four) and,
to diagnose the fit, L_spa alone (the encoder trained as a 2D hand pose regressor through the
hand model). Each term keeps the model's default weight (``DEFAULTS["loss_weights"]``)."""


def loss_weights(name: str, weights: dict[str, float] | None = None) -> dict[str, float]:
    """Variant ``name``'s loss weights: its terms at ``weights`` (default: the model's), the others 0."""
    weights = weights or DEFAULTS["loss_weights"]
    return {term: (weight if term in TERMS[name] else 0.0) for term, weight in weights.items()}


def pck_threshold(config: HMAConfig, fraction: float = 0.2) -> float:
    """``fraction`` of the hand box side in normalised units (box side = stored crop = 2 / crop_fraction)."""
    return 2.0 * fraction / config.crop_fraction


FRACTIONS = (0.2, 0.1)
"""The PCK thresholds reported (fractions of the hand box side): 0.2 (the issue's goal) is lenient
(a 0.46-unit radius on a hand about 1.2 units long, passed by one constant hand at ~0.69); 0.1
separates a decoder that fits the articulation from one that outputs the average hand."""


def val_pck(model: torch.nn.Module, shards: list[Path], settings: dict,
            fractions: tuple[float, ...] = FRACTIONS, split: str = "val") -> dict[float, float]:
    """PCK@fraction of the hand box on ``split`` (centred clips), per fraction: projected vs
    pseudo-label joints (on ``train``: does the encoder fit the clips it trains on at all?)."""
    config = HMAConfig.from_settings(settings)
    data = SPEC.dataset({"hands": shards}, split, False, settings)
    correct, counted = dict.fromkeys(fractions, 0), 0
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=8):
            out = model(batch["crop"])
            for fraction in fractions:
                c, n = projected_pck(out.joints2d, batch["pose"], pck_threshold(config, fraction), config.epsilon)
                correct[fraction] += c
            counted += n
    return {fraction: c / max(counted, 1) for fraction, c in correct.items()}


def fit_pck(shards: list[Path], settings: dict, per_frame: bool, steps: int = 300,
            fractions: tuple[float, ...] = FRACTIONS) -> dict[float, float]:
    """PCK@fraction of the hand model itself fitted to the val pseudo-labels by Adam on eq. 6 (no encoder).

    ``per_frame``: theta, beta and the camera of every hand pose are free (the best any encoder
    could output: the ceiling of the representation), started from the better of a palm-camera
    search and its depth mirror; else one theta, beta and camera per side for all frames, started
    from the decoder's initial camera (what a decoder that ignores the image can reach).
    """
    config = HMAConfig.from_settings(settings)
    data = SPEC.dataset({"hands": shards}, "val", False, settings)
    poses = torch.cat([batch["pose"] for batch in DataLoader(data, batch_size=8)])   # (N, T, 2, 21, 3)
    generator = torch.Generator().manual_seed(0)
    per_hand_loss = torch.vmap(lambda j, p: spatial_consistency_loss(j[None], p[None], config.epsilon, reduction="sum"))
    correct, counted = dict.fromkeys(fractions, 0), 0
    for h, side in enumerate(SIDES):
        pose = poses[:, :, h].reshape(-1, 21, 3)
        pose = pose[pose[:, 0, 2] >= config.epsilon]                                 # a confident wrist
        model = HandModel(side, config.mano_dir, config.num_pca)
        if per_frame:
            camera = fit_palm_camera(model, pose[..., :2], pose[..., 2] >= config.epsilon, 32, 150, generator)
            shape = (len(pose), 2)
        else:
            camera = make_camera(INITIAL_VIEW, torch.zeros(2), torch.tensor(INITIAL_LOG_SCALE).exp())
            shape = (1, 2)
        camera = torch.stack([camera, depth_mirror(camera)], dim=-2).expand(*shape, -1).clone().requires_grad_()
        theta = torch.zeros(*shape, config.num_pca, requires_grad=True)
        beta = torch.zeros(*shape, NUM_BETAS, requires_grad=True)
        optimiser = torch.optim.Adam([theta, beta, camera], lr=0.05)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        target = pose[:, None].expand(-1, 2, -1, -1)
        for _ in range(steps):
            joints = model(theta, beta, camera, vertices=False).joints2d.expand(len(pose), 2, -1, -1)
            loss = spatial_consistency_loss(joints, target, config.epsilon, reduction="sum")
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
        with torch.no_grad():
            joints = model(theta, beta, camera, vertices=False).joints2d.expand(len(pose), 2, -1, -1)
            errors = per_hand_loss(joints.flatten(0, 1), target.flatten(0, 1)).view(-1, 2)   # (N, start)
            best = errors.argmin(1) if per_frame else errors.sum(0).argmin().expand(len(pose))
            for fraction in fractions:
                c, n = projected_pck(joints[torch.arange(len(pose)), best], pose, pck_threshold(config, fraction),
                                     config.epsilon)
                correct[fraction] += c
        counted += n
    return {fraction: c / max(counted, 1) for fraction, c in correct.items()}


def decoded_features(model: torch.nn.Module, shards: list[Path], split: str,
                     settings: dict) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per clip of ``split`` (centred), averaged over its frames, with the labels (N,): ``theta``, the
    decoded theta and camera rotation (6D) of both hands (N, 2 * (P + 6)); ``joints``, the inference
    module's input (c_r J3D or J3D, ``joint_frame``; N, 2 * 21 * 3); ``pose``, the pseudo-label 2D
    poses, wrist-relative (N, 2 * 21 * 2): what the hands stage gives the decoder to fit."""
    data = SPEC.dataset({"hands": shards}, split, False, settings)
    features: dict[str, list[torch.Tensor]] = {"theta": [], "joints": [], "pose": []}
    labels = []
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=8):
            out = model(batch["crop"])
            joints = out.joints3d
            if model.config.joint_frame == "camera":
                joints = joints @ camera_rotation(out.latent.camera).transpose(-1, -2)
            pose = batch["pose"][..., :2] - batch["pose"][..., :1, :2]
            features["theta"].append(torch.cat([out.latent.theta, out.latent.camera[..., :6]], -1).mean(1).flatten(1))
            features["joints"].append(joints.mean(1).flatten(1))
            features["pose"].append(pose.mean(1).flatten(1))
            labels.append(batch["label"])
    label = torch.cat(labels)
    return {name: (torch.cat(values), label) for name, values in features.items()}


def probe_accuracy(train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                   classes: int, steps: int = 300) -> float:
    """Test accuracy of a linear softmax classifier (L-BFGS, weight decay 1e-3) fitted on the train features."""
    mean_, std = train[0].mean(0), train[0].std(0).clamp(min=1e-6)
    x, y = (train[0] - mean_) / std, train[1]
    layer = torch.nn.Linear(x.shape[1], classes)
    optimiser = torch.optim.LBFGS(layer.parameters(), max_iter=steps)

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(layer(x), y) + 1e-3 * layer.weight.pow(2).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    with torch.no_grad():
        return float((layer((test[0] - mean_) / std).argmax(1) == test[1]).float().mean())


def train_variant(name: str, seed: int, shards: list[Path], root: Path, classes: int, common: dict,
                  model: dict, threads: int) -> dict:
    """Fine-tune one variant with one seed (a worker process): its test and val accuracy, val PCK@0.2,
    the accuracy of linear probes on its decoded theta, on its inference module's input and on the
    pseudo-labels (the reference), and the per-epoch loss terms."""
    torch.set_num_threads(threads)
    started = time.perf_counter()
    out = root / f"{name}-{seed}"
    weights = model.get("loss_weights")
    cfg = {**common, "seed": seed, "hma": {**model, "loss_weights": loss_weights(name, weights)}}
    result: dict = finetune("hma", {"hands": shards}, out, classes, cfg)
    log = pd.read_csv(out / "log.csv")
    result["samples_per_s"] = float(log["samples_per_s"].mean())
    result["train_s"] = float(log["seconds"].sum())
    result["curves"] = {f"{term}_loss": [round(float(v), 4) for v in log[f"{term}_loss"]]
                        for term in ("ce", "spa", "tem", "reg") if f"{term}_loss" in log}
    result["val_acc_curve"] = [round(float(v), 4) for v in log["val_acc"]] if "val_acc" in log else []
    result["lr_curve"] = [float(v) for v in log["lr"]]
    settings = {**model, "num_frames": common["num_frames"]}
    trained = build(classes, settings)
    trained.load_state_dict(torch.load(out / "checkpoint.pt", weights_only=True)["model"])
    pck = val_pck(trained, shards, settings)
    result["pck20_projected"], result["pck10_projected"] = pck[0.2], pck[0.1]
    pck = val_pck(trained, shards, settings, split="train")
    result["pck20_train"], result["pck10_train"] = pck[0.2], pck[0.1]
    train, test = (decoded_features(trained, shards, split, settings) for split in ("train", "test"))
    for feature in ("theta", "joints", "pose"):
        result[f"{feature}_probe_acc"] = probe_accuracy(train[feature], test[feature], classes)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["run_s"] = time.perf_counter() - started
    return result


def pseudo_label_joints(pose: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Pseudo-label 2D poses (B, T, 2, 21, 3) -> joints for the inference module (B, T, 2, 21, 3): x, y
    wrist-relative, z = 0, joints below epsilon at the wrist (a decoder that copies the pseudo-labels)."""
    xy = (pose[..., :2] - pose[..., :1, :2]) * (pose[..., 2:] >= epsilon)
    return torch.cat([xy, torch.zeros_like(xy[..., :1])], dim=-1)


def train_on_pseudo_labels(seed: int, shards: list[Path], classes: int, common: dict, model: dict,
                           threads: int) -> dict:
    """HMA's inference module alone, trained on the pseudo-label poses with the run's optimiser (its
    lr held: no schedule), batches and epochs (no encoder, no decoder: what a decoder that copied
    the pseudo-labels would hand it); test and val accuracy (a worker process). Whether the
    classifier can learn the classes within this budget at all."""
    torch.set_num_threads(threads)
    settings = {**model, "num_frames": common["num_frames"], "seed": seed}
    torch.manual_seed(seed)
    net = build(classes, settings).inference
    epsilon = HMAConfig.from_settings(settings).epsilon
    training = train_config({**DEFAULTS, **common, "seed": seed})
    optimizer = make_optimizer(net.parameters(), training)
    data = SPEC.dataset({"hands": shards}, "train", True, settings)
    for epoch in range(training.epochs):
        data.set_epoch(epoch)
        net.train()
        order = torch.Generator().manual_seed(seed * 100003 + epoch)
        for batch in DataLoader(data, batch_size=training.batch_size, shuffle=True, generator=order):
            loss = torch.nn.functional.cross_entropy(net(pseudo_label_joints(batch["pose"], epsilon)), batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    result = {}
    with torch.no_grad():
        for split in ("val", "test"):
            hits = total = 0
            for batch in DataLoader(SPEC.dataset({"hands": shards}, split, False, settings), batch_size=8):
                hits += int((net(pseudo_label_joints(batch["pose"], epsilon)).argmax(1) == batch["label"]).sum())
                total += len(batch["label"])
            result[f"{split}_acc"] = hits / max(total, 1)
    return result


def spread(values: list[float]) -> float:
    """Standard deviation over seeds (0 for one seed)."""
    return float(torch.tensor(values, dtype=torch.float64).std()) if len(values) > 1 else 0.0


SMOKE = {"classes": 3, "signers": 3, "repeats": 1, "frames": 12, "video": "160x120", "shards": 1, "crop": 32, "size": 16,
         "num_frames": 4, "epochs": 1, "seeds": 1, "fit_steps": 5, "jobs": 1}
"""--smoke: a corpus of 9 videos, one epoch, one seed: every variant and measure, in seconds."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="hand_shapes", choices=("hand_shapes", "signs"),
                        help="hand_shapes: classes differ by hand shape and palm only; signs: the demo's vocabulary")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--signers", type=int, default=6, help="the last one test, the one before val")
    parser.add_argument("--repeats", type=int, default=6,
                        help="videos per signer and class (6: 240 train videos; 2 left every row at chance; 12 with "
                             "--epochs 36 lifts full over 3x chance and cls_only further: docs/hma.md)")
    parser.add_argument("--frames", type=int, default=24, help="frames per generated video")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--video", default="480x360", help="generated video size, WIDTHxHEIGHT (the hand ~60 px)")
    parser.add_argument("--crop", type=int, default=48, help="hands stage crop side")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--size", type=int, default=32, help="encoder input side")
    parser.add_argument("--num-frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--epochs", type=int, default=24,
                        help="24: the classifier's budget (acc_pose_gcn 0.45 at 14, 0.60 at 24; docs/hma.md, Numbers)")
    parser.add_argument("--batch-size", type=int, default=4,
                        help="clips per step (4: twice the steps of 8 at the same cost; the paper gives none)")
    parser.add_argument("--optimizer", default="sgd", help="sgd (paper) or adam")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--schedule", default="plateau", help="plateau (paper), cosine, step")
    parser.add_argument("--hma", action="append", default=[], metavar="KEY=JSON",
                        help="a finetune.hma key over the model's default, e.g. joint_frame='\"model\"' (repeatable)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first..first+seeds-1 (to add seeds to an earlier run's, over the same --data)")
    parser.add_argument("--variants", default="cls_only,cls_reg,no_tem,full", help=f"of {', '.join(TERMS)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=2, help="runs trained at once (processes)")
    parser.add_argument("--fit-steps", type=int, default=300, help="Adam steps of the hand-model fits")
    parser.add_argument("--data", type=Path, help="keep the corpus and shards here and reuse them")
    parser.add_argument("--smoke", action="store_true", help=f"tiny sizes: {SMOKE}")
    args = parser.parse_args()
    if args.smoke:
        for key, value in SMOKE.items():
            setattr(args, key, value)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    model = {"arch": args.arch, "width": args.width, "size": args.size, "gcn_layers": [[32, 1], [64, 2]],
             **{key: json.loads(value) for key, value in (item.split("=", 1) for item in args.hma)}}
    common = {"batch_size": args.batch_size, "device": "cpu", "epochs": args.epochs, "optimizer": args.optimizer,
              "lr": args.lr, "schedule": args.schedule, "num_frames": args.num_frames}
    variants = args.variants.split(",")
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    jobs = [(name, seed) for seed in seeds for name in variants]
    with tempfile.TemporaryDirectory(prefix="signpipe-bench-") as tmp:
        root = Path(tmp)
        data = args.data or root
        started = time.perf_counter()
        shards = sorted(data.glob("hands*.h5"))
        if not shards or not (data / "manifest.csv").is_file():
            width, height = (int(side) for side in args.video.split("x"))
            shards = hands_shards(data, args, hand_shapes=args.corpus == "hand_shapes", width=width, height=height)
        data_s = time.perf_counter() - started
        settings = {**model, "num_frames": args.num_frames}
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(train_variant, name, seed, shards, root, args.classes, common, model, args.threads)
                       for name, seed in jobs]
            oracle = [pool.submit(train_on_pseudo_labels, seed, shards, args.classes, common, model, args.threads)
                      for seed in seeds]
            torch.manual_seed(0)
            untrained = val_pck(build(args.classes, settings), shards, settings)
            fitted = fit_pck(shards, settings, per_frame=True, steps=args.fit_steps)
            constant = fit_pck(shards, settings, per_frame=False, steps=args.fit_steps)
            results = []
            for (name, seed), future in zip(jobs, futures):
                results.append(future.result())
                print(json.dumps({"seed": seed, "variant": name,
                                  **{k: round(v, 4) if isinstance(v, float) else v for k, v in results[-1].items()}}),
                      flush=True)
            oracle = [future.result() for future in oracle]
        videos = len(pd.read_csv(data / "manifest.csv"))
    runs = {name: [r for (n, _), r in zip(jobs, results) if n == name] for name in variants}
    acc = {name: [r["test_acc"] for r in runs[name]] for name in variants}
    pck = [r["pck20_projected"] for r in runs.get("full", [])]
    pck10 = [r["pck10_projected"] for r in runs.get("full", [])]
    probe = [r["theta_probe_acc"] for r in runs.get("full", [])]
    fits = {f"pck{k}_{name}": round(mean(r[f"pck{k}_projected"] for r in runs[name]), 4)
            for k in ("20", "10") for name in variants if name != "full"}
    fits.update({f"pck{k}_train_{name}": round(mean(r[f"pck{k}_train"] for r in runs[name]), 4)
                 for k in ("20", "10") for name in variants})
    probes = {f"{feature}_probe_acc_{name}": round(mean(r[f"{feature}_probe_acc"] for r in runs[name]), 4)
              for feature in ("theta", "joints") for name in variants}
    print(json.dumps({
        "corpus": args.corpus, "videos": videos, "classes": args.classes, "chance": round(1 / args.classes, 4),
        "video": args.video, "crop": args.crop, "model": model, "epochs": args.epochs, "optimizer": args.optimizer, "lr": args.lr,
        "schedule": args.schedule, "num_frames": args.num_frames, "seeds": list(seeds), "jobs": args.jobs,
        "data_s": round(data_s, 1), "total_s": round(time.perf_counter() - started, 1),
        **{f"acc_{name}": round(mean(acc[name]), 4) for name in variants},
        **{f"acc_{name}_std": round(spread(acc[name]), 4) for name in variants},
        **{f"val_acc_{name}": round(mean(r["val_acc"] for r in runs[name]), 4) for name in variants},
        **{f"acc_{name}_per_seed": [round(a, 4) for a in acc[name]] for name in variants},
        "pck20_projected": round(mean(pck), 4) if pck else None,
        "pck20_projected_per_seed": [round(p, 4) for p in pck],
        "pck10_projected": round(mean(pck10), 4) if pck10 else None,
        "pck10_projected_per_seed": [round(p, 4) for p in pck10],
        "theta_probe_acc": round(mean(probe), 4) if probe else None,
        "acc_pose_gcn": round(mean(r["test_acc"] for r in oracle), 4),
        "acc_pose_gcn_std": round(spread([r["test_acc"] for r in oracle]), 4),
        "val_acc_pose_gcn": round(mean(r["val_acc"] for r in oracle), 4),
        **probes, "pose_probe_acc": round(mean(r["pose_probe_acc"] for r in results), 4),
        **fits, **{f"pck{round(100 * f)}_{name}": round(value[f], 4)
                   for name, value in (("untrained", untrained), ("fit", fitted), ("constant", constant))
                   for f in FRACTIONS},
        "train_samples_per_s": round(mean(r["samples_per_s"] for r in results), 2),
        "peak_rss_mb": round(max([r["peak_rss_mb"] for r in results]
                                 + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]), 1),
    }))


if __name__ == "__main__":
    main()
