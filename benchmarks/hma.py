"""HMA on the synthetic corpus (CPU): the paper's Table 1 ablation and how well the decoded hands fit.

    python benchmarks/hma.py [--classes 10 --signers 6 --repeats 3 --epochs 20 --seeds 3 ...]

Builds the corpus and its hands shards in a temporary folder (synth -> manifest -> decode ->
sidecar pose -> hands), then fine-tunes HMA three ways per seed with the same schedule:
``full`` (eq. 9: L_cla + 0.1 L_spa + 0.1 L_tem + 0.1 L_reg), ``cls_only`` (L_cla alone, Table 1's
first row) and ``no_tem`` (without L_tem, its third row); ``spa_only`` (L_spa alone) on request.
``pck20_projected`` is the share of confident val-split pseudo-label joints (c >= epsilon,
wrist-relative as eq. 6, wrist excluded) that the full model's projected joints hit within 0.2
of the hand box side (the stored crop); ``pck20_untrained`` the same for a freshly built model;
``pck20_fit`` for the hand model fitted to every val hand pose by optimisation (no encoder: the
ceiling of theta in R^6, beta and the camera) and ``pck20_constant`` for one fitted hand per
side (a decoder that ignores the image). Prints one JSON line last; accuracies are test-split
means over the seeds.
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
from signpipe.handmodel.defaults import SIDES
from signpipe.models.hma import (
    INITIAL_LOG_SCALE, INITIAL_VIEW, SPEC, HMAConfig, build, projected_pck, spatial_consistency_loss,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handmodel_fit import depth_mirror, fit_palm_camera  # noqa: E402
from signbert import hands_shards  # noqa: E402  (the same corpus pipeline as the SignBERT benchmark)

VARIANTS = {
    "full": {"ce": 1.0, "spa": 0.1, "tem": 0.1, "reg": 0.1},
    "cls_only": {"ce": 1.0, "spa": 0.0, "tem": 0.0, "reg": 0.0},
    "no_tem": {"ce": 1.0, "spa": 0.1, "tem": 0.0, "reg": 0.1},
    "spa_only": {"ce": 0.0, "spa": 0.1, "tem": 0.0, "reg": 0.0},
}
"""Loss weights per variant: Table 1's rows (full, cls_only, no_tem) and, to diagnose the fit,
L_spa alone (the encoder trained as a 2D hand pose regressor through the hand model)."""


def pck_threshold(config: HMAConfig, fraction: float = 0.2) -> float:
    """``fraction`` of the hand box side in normalised units (box side = stored crop = 2 / crop_fraction)."""
    return 2.0 * fraction / config.crop_fraction


def val_pck(model: torch.nn.Module, shards: list[Path], settings: dict, fraction: float = 0.2) -> float:
    """PCK@fraction of the hand box on the val split (centred clips): projected vs pseudo-label joints."""
    config = HMAConfig.from_settings(settings)
    data = SPEC.dataset({"hands": shards}, "val", False, settings)
    threshold = pck_threshold(config, fraction)
    correct = counted = 0
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=8):
            out = model(batch["crop"])
            c, n = projected_pck(out.joints2d, batch["pose"], threshold, config.epsilon)
            correct, counted = correct + c, counted + n
    return correct / max(counted, 1)


def fit_pck(shards: list[Path], settings: dict, per_frame: bool, steps: int = 300, fraction: float = 0.2) -> float:
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
    correct = counted = 0
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
            c, n = projected_pck(joints[torch.arange(len(pose)), best], pose, pck_threshold(config, fraction),
                                 config.epsilon)
        correct, counted = correct + c, counted + n
    return correct / max(counted, 1)


def train_variant(name: str, seed: int, shards: list[Path], root: Path, classes: int, common: dict,
                  model: dict, threads: int) -> dict[str, float]:
    """Fine-tune one variant with one seed (a worker process); its val PCK@0.2 too where L_spa trains."""
    torch.set_num_threads(threads)
    out = root / f"{name}-{seed}"
    cfg = {**common, "seed": seed, "hma": {**model, "loss_weights": VARIANTS[name]}}
    result = finetune("hma", {"hands": shards}, out, classes, cfg)
    result["samples_per_s"] = float(pd.read_csv(out / "log.csv")["samples_per_s"].mean())
    if VARIANTS[name]["spa"]:
        settings = {**model, "num_frames": common["num_frames"]}
        trained = build(classes, settings)
        trained.load_state_dict(torch.load(out / "checkpoint.pt", weights_only=True)["model"])
        result["pck20_projected"] = val_pck(trained, shards, settings)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--signers", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=32, help="frames per generated video")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--crop", type=int, default=64, help="hands stage crop side")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--size", type=int, default=48, help="encoder input side")
    parser.add_argument("--num-frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--optimizer", default="sgd", help="sgd (paper) or adam")
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--schedule", default="plateau", help="plateau (paper), cosine, step")
    parser.add_argument("--spa-scale", type=float, default=1.0,
                        help="finetune.hma.spa_scale: units of L_spa (1 normalised; 128 pixels of a 256-px crop)")
    parser.add_argument("--joint-frame", default="model", help="finetune.hma.joint_frame: model (paper) or camera")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default="full,cls_only,no_tem", help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once (processes)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.classes, args.signers, args.repeats, args.frames, args.epochs, args.seeds = 3, 3, 1, 8, 1, 1
        args.crop, args.size, args.width, args.num_frames, args.variants = 32, 32, 8, 4, "full"
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    model = {"arch": args.arch, "width": args.width, "size": args.size, "gcn_layers": [[32, 1], [64, 2]],
             "spa_scale": args.spa_scale, "joint_frame": args.joint_frame}
    common = {"batch_size": args.batch_size, "device": "cpu", "epochs": args.epochs, "optimizer": args.optimizer,
              "lr": args.lr, "schedule": args.schedule, "num_frames": args.num_frames}
    variants = args.variants.split(",")
    jobs = [(name, seed) for seed in range(args.seeds) for name in variants]
    with tempfile.TemporaryDirectory(prefix="signpipe-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        shards = hands_shards(root, args)
        data_s = time.perf_counter() - started
        settings = {**model, "num_frames": args.num_frames}
        with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [pool.submit(train_variant, name, seed, shards, root, args.classes, common, model, args.threads)
                       for name, seed in jobs]
            torch.manual_seed(0)
            untrained = val_pck(build(args.classes, settings), shards, settings)
            fitted, constant = fit_pck(shards, settings, per_frame=True), fit_pck(shards, settings, per_frame=False)
            results = []
            for (name, seed), future in zip(jobs, futures):
                results.append(future.result())
                print(json.dumps({"seed": seed, "variant": name, **{k: round(v, 4) for k, v in results[-1].items()}}),
                      flush=True)
        videos = len(pd.read_csv(root / "manifest.csv"))
    runs = {name: [r for (n, _), r in zip(jobs, results) if n == name] for name in variants}
    pck = [r["pck20_projected"] for r in runs.get("full", [])]
    fits = {f"pck20_{name}": round(mean(r["pck20_projected"] for r in runs[name]), 4)
            for name in variants if name != "full" and VARIANTS[name]["spa"]}
    print(json.dumps({
        "videos": videos, "classes": args.classes, "crop": args.crop, "model": model, "epochs": args.epochs,
        "optimizer": args.optimizer, "lr": args.lr, "schedule": args.schedule,
        "num_frames": args.num_frames, "seeds": args.seeds, "jobs": args.jobs, "data_s": round(data_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        **{f"acc_{name}": round(mean(r["test_acc"] for r in runs[name]), 4) for name in variants},
        **{f"val_acc_{name}": round(mean(r["val_acc"] for r in runs[name]), 4) for name in variants},
        **{f"acc_{name}_per_seed": [round(r["test_acc"], 4) for r in runs[name]] for name in variants},
        "pck20_projected": round(mean(pck), 4) if pck else None,
        "pck20_projected_per_seed": [round(p, 4) for p in pck],
        **fits, "pck20_untrained": round(untrained, 4), "pck20_fit": round(fitted, 4),
        "pck20_constant": round(constant, 4),
        "train_samples_per_s": round(mean(r["samples_per_s"] for r in results), 2),
        "peak_rss_mb": round(max([r["peak_rss_mb"] for r in results]
                                 + [resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]), 1),
    }))


if __name__ == "__main__":
    main()
