"""Can the hand prior express real signing hand shapes? Fit it to MMPose 2D hands and measure.

For every frame of the MMPose clips and each hand with at least ``--min-joints`` joints scored
above 0.5, theta, beta and the camera are fitted by Adam, all hands of a side in one batch, to the
confident joints (per-hand coordinates: centred, divided by the diagonal of the box of those
joints). Rotation is found first with the palm joints only (many random starts, no mesh needed),
then both depth-mirror solutions of that palm fit are refined with the full model and the better
one kept. Error = mean distance over the confident joints / box diagonal, per hand.

    python benchmarks/handmodel_fit.py [--data ../shared/data/clips] [--mano-dir DIR] [--num-pca 6] [--smoke]

Prints one JSON line last: frames, hands, mean_err_rel, median_err_rel, ms_per_1k_hands_fwd_bwd
(with the mesh) and ms_per_1k_hands_joints_only (the joints alone, as the decoders run it),
and for context camera_only_median_err_rel (the mean hand, only the camera fitted: what theta and
beta add) and theta_rms_median (size of the fitted theta; the open hand's sampled poses have 1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from signpipe.handmodel import (
    CAMERA_DIM,
    NUM_BETAS,
    NUM_PCA,
    HandModel,
    camera_rotation,
    camera_scale,
    make_camera,
    weak_perspective_project,
)
from signpipe.keypoints.layout import HAND_JOINT_NAMES, HAND_SLICES

SCORE_THRESHOLD = 0.5
PALM_JOINTS = [HAND_JOINT_NAMES.index(n) for n in ("wrist", "thumb1", "index1", "middle1", "ring1", "pinky1")]
DEPTH_FLIP = torch.diag(torch.tensor([1.0, 1.0, -1.0]))


def load_hands(data: Path, min_joints: int) -> tuple[int, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Frames read and, per side, normalised targets (H, 21, 2) and confidence masks (H, 21)."""
    frames, hands = 0, {"left": ([], []), "right": ([], [])}
    for path in sorted(data.glob("*.mmpose.json")):
        for frame in json.loads(path.read_text()):
            if not frame["instances"]:
                continue
            frames += 1
            signer = max(frame["instances"], key=lambda i: float(np.mean(i["keypoint_scores"])))
            xy, score = np.asarray(signer["keypoints"]), np.asarray(signer["keypoint_scores"])
            for side, part in zip(("left", "right"), HAND_SLICES):
                mask = score[part] > SCORE_THRESHOLD
                if mask.sum() < min_joints:
                    continue
                points = xy[part]
                low, high = points[mask].min(0), points[mask].max(0)
                hands[side][0].append((points - points[mask].mean(0)) / np.linalg.norm(high - low))
                hands[side][1].append(mask)
    return frames, {s: (torch.tensor(np.array(t), dtype=torch.float32), torch.tensor(np.array(m)))
                    for s, (t, m) in hands.items() if t}


def masked_error(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(..., 21, 2) -> (...) mean joint distance over the masked joints."""
    distance = (pred - target).norm(dim=-1) * mask
    return distance.sum(-1) / mask.sum(-1).clamp(min=1)


def masked_squared(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(..., J, 2) -> (...) mean squared distance over the masked joints (the fitting loss)."""
    return (((pred - target) ** 2).sum(-1) * mask).sum(-1) / mask.sum(-1).clamp(min=1)


def fit_palm_camera(model: HandModel, target: torch.Tensor, mask: torch.Tensor, starts: int,
                    steps: int, generator: torch.Generator) -> torch.Tensor:
    """(H, 9) cameras placing the mean hand's palm joints on the targets: best of random starts."""
    with torch.no_grad():
        mean_hand = model(torch.zeros(model.num_pca), torch.zeros(NUM_BETAS), torch.zeros(CAMERA_DIM))
    palm = mean_hand.joints3d[PALM_JOINTS]
    weight = mask[:, None, PALM_JOINTS].float().expand(-1, starts, -1)
    hands = len(target)
    camera = torch.cat([torch.randn(hands, starts, 6, generator=generator), torch.zeros(hands, starts, 2),
                        torch.full((hands, starts, 1), float(np.log(4.0)))], dim=-1).requires_grad_()
    optimiser = torch.optim.Adam([camera], lr=0.05)
    for _ in range(steps):
        loss = masked_squared(weak_perspective_project(palm, camera), target[:, None, PALM_JOINTS], weight)
        optimiser.zero_grad()
        loss.sum().backward()
        optimiser.step()
    best = loss.detach().argmin(dim=1)
    return camera.detach()[torch.arange(hands), best]


def depth_mirror(camera: torch.Tensor) -> torch.Tensor:
    """The other rotation that projects a planar palm identically: flip depth and the palm normal."""
    rotation = DEPTH_FLIP @ camera_rotation(camera) @ DEPTH_FLIP
    return make_camera(rotation, camera[..., 6:8], camera_scale(camera))


def fit(model: HandModel, target: torch.Tensor, mask: torch.Tensor, steps: int, prior: float,
        generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Per-hand (H,) errors of the palm-only camera fit of the mean hand (``camera_only``) and of
    the full fit of theta, beta and camera from both palm solutions (``full``), and the fitted
    theta's root mean square (``theta_rms``; 1 is the spread of the open hand's sampled poses)."""
    palm_camera = fit_palm_camera(model, target, mask, starts=32, steps=150, generator=generator)
    with torch.no_grad():
        mean_hand = model(torch.zeros(model.num_pca), torch.zeros(NUM_BETAS), palm_camera, vertices=False).joints2d
        camera_only = masked_error(mean_hand, target, mask.float())
    camera = torch.stack([palm_camera, depth_mirror(palm_camera)], dim=1).requires_grad_()
    hands = len(target)
    theta = torch.zeros(hands, 2, model.num_pca, requires_grad=True)
    beta = torch.zeros(hands, 2, NUM_BETAS, requires_grad=True)
    optimiser = torch.optim.Adam([theta, beta, camera], lr=0.05)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
    weight = mask[:, None].float().expand(-1, 2, -1)
    for _ in range(steps):
        pred = model(theta, beta, camera, vertices=False).joints2d
        loss = masked_squared(pred, target[:, None], weight)
        loss = loss + prior * ((theta**2).sum(-1) + 10 * (beta**2).sum(-1))
        optimiser.zero_grad()
        loss.sum().backward()
        optimiser.step()
        schedule.step()
    with torch.no_grad():
        joints = model(theta, beta, camera, vertices=False).joints2d
        error, best = masked_error(joints, target[:, None], weight).min(dim=1)
        theta_rms = theta[torch.arange(hands), best].pow(2).mean(-1).sqrt()
    return {"camera_only": camera_only, "full": error, "theta_rms": theta_rms}


def time_fwd_bwd(model: HandModel, vertices: bool, batch: int = 1000, repeats: int = 5) -> float:
    """Milliseconds of one forward and backward pass over ``batch`` hands, best of ``repeats``
    (the minimum is the least disturbed by other work on a shared machine); with the mesh or
    the joints alone (what the decoders' losses use)."""
    theta = torch.randn(batch, model.num_pca, requires_grad=True)
    beta = torch.randn(batch, NUM_BETAS, requires_grad=True)
    camera = torch.randn(batch, CAMERA_DIM, requires_grad=True)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(theta, beta, camera, vertices=vertices).joints2d.sum().backward()
        times.append(time.perf_counter() - start)
    return 1000 * min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/clips",
                        help="folder of *.mmpose.json files (default: ../shared/data/clips from the repo)")
    parser.add_argument("--mano-dir", default=None, help="licensed MANO folder (default: the open hand)")
    parser.add_argument("--num-pca", type=int, default=NUM_PCA,
                        help=f"pose PCA coefficients (default {NUM_PCA}, SignBERT; HMA uses 6)")
    parser.add_argument("--min-joints", type=int, default=10, help="confident joints a hand needs (default 10)")
    parser.add_argument("--steps", type=int, default=400, help="Adam steps of the full fit (default 400)")
    parser.add_argument("--prior", type=float, default=1e-5,
                        help="weight of the ||theta||^2 + 10 ||beta||^2 regulariser (default 1e-5)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--max-hands", type=int, default=0, help="fit the first N hands of each side (default 0: all)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    timing = {"batch": 1000, "repeats": 5}
    if args.smoke:
        args.steps, args.max_hands, timing = 5, 8, {"batch": 100, "repeats": 1}
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    if not args.data.is_dir():
        print(f"{args.data}: no such folder (the shared MMPose clips)", file=sys.stderr)
        sys.exit(77)  # skipped: its input is absent
    frames, hands = load_hands(args.data, args.min_joints)
    if args.max_hands:
        hands = {side: (target[:args.max_hands], mask[:args.max_hands]) for side, (target, mask) in hands.items()}
    if not hands:
        raise SystemExit(f"{args.data}: no *.mmpose.json hands with {args.min_joints}+ confident joints")
    start = time.perf_counter()
    fits = {
        side: fit(HandModel(side, args.mano_dir, args.num_pca), target, mask, args.steps, args.prior, generator)
        for side, (target, mask) in hands.items()
    }
    fit_seconds = time.perf_counter() - start
    merged = {key: torch.cat([f[key] for f in fits.values()]) for key in ("camera_only", "full", "theta_rms")}
    errors = merged["full"]
    result = {
        "frames": frames,
        "hands": len(errors),
        "model": "mano" if args.mano_dir else "open_hand",
        "num_pca": args.num_pca,
        "median_err_rel_per_side": {side: round(float(f["full"].median()), 4) for side, f in fits.items()},
        "camera_only_median_err_rel": round(float(merged["camera_only"].median()), 4),
        "theta_rms_median": round(float(merged["theta_rms"].median()), 2),
        "fit_seconds": round(fit_seconds, 1),
        "mean_err_rel": round(float(errors.mean()), 4),
        "median_err_rel": round(float(errors.median()), 4),
    }
    timed = HandModel("right", args.mano_dir, args.num_pca)
    per_1k = 1000 / timing["batch"]
    result["ms_per_1k_hands_fwd_bwd"] = round(per_1k * time_fwd_bwd(timed, vertices=True, **timing), 1)
    result["ms_per_1k_hands_joints_only"] = round(per_1k * time_fwd_bwd(timed, vertices=False, **timing), 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
