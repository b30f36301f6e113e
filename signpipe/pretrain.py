"""The pretrain stage: SignBERT's masked hand-model-aware pre-training (§3.2-3.3) and its feasibility measure.

Masking (§3.2): half of the tokens of a clip are chosen (``mask: present``, the default: half of
the tokens with a detected hand, since real detectors drop hands the paper's MMPose input always
has; ``all``: half of all tokens, absent hands included); each chosen token gets, with equal
probability, masked joint modeling (m joints, m uniform in 1..M; each of them zeroed or moved by
a random spatial disturbance, with equal probability), masked frame modeling (all 21 joints
zeroed) or identity. Zeroing sets x, y and score to 0 (the crop centre, no confidence).

Loss (eq. 6-8), on the chosen tokens only: L = L_rec + lambda L_reg, with L_rec the L1 distance
between the decoder's projected joints and the detected ones, weighted by the detection score
and ignoring joints scored <= epsilon, and L_reg = |theta|^2 + w_beta |beta|^2 + w_delta
|beta_t - beta_(t-1)|^2. Both are summed over joints and divided by the number of chosen tokens
(the paper writes plain sums); coordinates are the normalised crop frame [-1, 1], L_rec times
``rec_scale`` (1; 128 measures it in pixels of a 256-px crop). Padding tokens (``short_clips:
pad``) are never chosen.

Feasibility (§4.3, Tables 1-2): on held-out (val) clips, masked the same way with a fixed seed,
PCK at 20 px and the area under the PCK curve from 20 to 40 px of the masked input and of the
reconstruction against the detected joints (score > epsilon), in a 256-px crop frame whatever
the stored crop size.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from signpipe.data import NUM_FRAMES
from signpipe.handmodel.defaults import SIDES
from signpipe.keypoints import HAND_EDGES
from signpipe.models.signbert import (
    HandLatent, HandTokens, SignBERT, SignBERTConfig, clip_options, present_hands, save_encoder,
)
from signpipe.figures import save_figure
from signpipe.settings import from_config
from signpipe.shards import atomic_path
from signpipe.train import (
    autocast, autocast_dtype, distributed, eval_loader, evaluation_ranks, fit, gather_shards, input_fingerprint, resolve_device,
    shard_of, train_config, use_threads,
)

log = logging.getLogger(__name__)

IDENTITY, MASK_JOINTS, MASK_FRAMES = 0, 1, 2
"""The operations on a chosen token, drawn with equal probability."""
PCK_FRAME = 256
"""Crop side (pixels) in which PCK thresholds are counted (SignBERT crops hands to 256 x 256)."""
PCK_THRESHOLD = 20.0
AUC_RANGE = (20.0, 40.0)
FEASIBILITY = "feasibility.json"
STEPS_BEFORE_DECAY = 2500
"""Fewer optimiser steps than this before the first lr decay left the reconstruction short of the
masked input in benchmarks/signbert.py (160 steps: PCK@20 0.40; 1,800: 0.85, level with the
input; 2,700: 0.87); pretrain warns."""
VAL_EVERY = 1
"""Feasibility is measured every ``val_every`` epochs and after the last (on small sets it costs more
than an epoch of training)."""
RECONSTRUCTION = "reconstruction.png"
PRETRAIN_CODE = ("signpipe.pretrain", "signpipe.models.signbert")
"""The modules that define a pre-training run besides ``signpipe.train.RUN_CODE``."""
FEASIBILITY_KEYS = ("pck20_input", "auc_input", "pck20_output", "auc_output", "pck20_input_masked",
                    "pck20_output_masked")
"""What :func:`feasibility` measures, in ``log.csv``, ``feasibility.json`` and ``signbert.pt``."""


@dataclass(frozen=True)
class PretrainObjective:
    """Masking and loss settings; paper values (§3.2, §4.2) where the paper gives them."""

    mask_ratio: float = 0.5
    max_masked_joints: int = 5
    """M: masked joint modeling masks 1..M joints (the paper's Table 1 tries 3 to 11; signpipe's choice)."""
    disturbance: float = 0.2
    """Largest spatial disturbance per coordinate, normalised crop units (0.2 = 25.6 px at 256; signpipe's choice)."""
    epsilon: float = 0.5
    lam: float = 0.01
    w_beta: float = 10.0
    w_delta: float = 100.0
    mask: str = "present"
    """present: choose among the tokens with a detected hand; all: among all tokens."""
    rec_scale: float = 1.0
    """L_rec's unit: 1 = normalised crop units ([-1, 1]); 128 = pixels of a 256-px crop."""


MASKS = ("present", "all")


@dataclass
class Masking:
    """A masked batch: pose (B, T, 2, 21, 3) the model's input; chosen (B, T, 2) bool; operation
    (B, T, 2) int64, one of IDENTITY, MASK_JOINTS, MASK_FRAMES on chosen tokens, -1 elsewhere;
    present (B, T, 2) bool, the hands detected before masking (the encoder's absent state)."""

    pose: Tensor
    chosen: Tensor
    operation: Tensor
    present: Tensor


def _rand(shape: Sequence[int], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Uniform [0, 1) numbers on ``like``'s device, from ``generator`` (CPU) or the global stream."""
    device = "cpu" if generator is not None else like.device
    return torch.rand(*shape, generator=generator, device=device).to(like.device)


def mask_joints(pose: Tensor, selected: Tensor, max_masked_joints: int, disturbance: float,
                generator: torch.Generator | None = None) -> Tensor:
    """Masked joint modeling on the ``selected`` (B, T, 2) tokens of pose (B, T, 2, 21, 3).

    Per token m ~ U{1..M} joints; each is zeroed (x, y, score) or has x, y moved by U(-d, d),
    with equal probability.
    """
    lead, joints = pose.shape[:3], pose.shape[3]
    m = 1 + (_rand(lead, pose, generator) * max_masked_joints).long().clamp(max=max_masked_joints - 1)
    rank = _rand((*lead, joints), pose, generator).argsort(-1).argsort(-1)
    masked = (rank < m[..., None]) & selected[..., None]
    zero = masked & (_rand((*lead, joints), pose, generator) < 0.5)
    moved = masked & ~zero
    shift = (_rand((*lead, joints, 2), pose, generator) * 2 - 1) * disturbance
    out = pose.clone()
    out[..., :2] += shift * moved[..., None]
    return out * ~zero[..., None]


def mask_frames(pose: Tensor, selected: Tensor) -> Tensor:
    """Masked frame modeling: all joints of the ``selected`` (B, T, 2) tokens zeroed."""
    return pose * ~selected[..., None, None]


def mask_tokens(pose: Tensor, objective: PretrainObjective = PretrainObjective(),
                generator: torch.Generator | None = None, valid: Tensor | None = None) -> Masking:
    """Choose ``mask_ratio`` of the eligible tokens of each clip (exactly, rounded) and mask them
    (§3.2). Eligible: tokens of ``valid`` (B, T) frames (not padding), and with ``mask: present``
    only those with a detected hand."""
    if objective.mask not in MASKS:
        raise ValueError(f"mask={objective.mask!r}: use one of {', '.join(MASKS)}")
    batch, length, hands = pose.shape[:3]
    present = present_hands(pose)
    eligible = torch.ones_like(present) if valid is None else valid[:, :, None].expand_as(present).clone()
    if objective.mask == "present":
        eligible &= present
    eligible = eligible.reshape(batch, -1)
    count = (objective.mask_ratio * eligible.sum(1)).round().long()
    keys = _rand(eligible.shape, pose, generator) + (~eligible).float()  # ineligible tokens rank last
    chosen = (keys.argsort(-1).argsort(-1) < count[:, None]).reshape(batch, length, hands)
    operation = (_rand((batch, length, hands), pose, generator) * 3).long().clamp(max=2)
    operation = torch.where(chosen, operation, torch.full_like(operation, -1))
    masked = mask_joints(pose, operation == MASK_JOINTS, objective.max_masked_joints, objective.disturbance, generator)
    masked = mask_frames(masked, operation == MASK_FRAMES)
    return Masking(masked, chosen, operation, present)


def reconstruction_loss(predicted: Tensor, detected: Tensor, epsilon: float) -> Tensor:
    """Eq. 7 summed over tokens: predicted (N, 21, 2), detected (N, 21, 3) -> scalar.

    Joints with score <= epsilon are ignored; the others weigh by their score.
    """
    score = detected[..., 2]
    weight = torch.where(score > epsilon, score, torch.zeros_like(score))
    return (weight * (predicted - detected[..., :2]).abs().sum(-1)).sum()


def regularisation_loss(latent: HandLatent, chosen: Tensor, w_beta: float, w_delta: float) -> Tensor:
    """Eq. 8 summed over the chosen tokens (B, T, 2); the beta change is counted at each chosen t >= 1."""
    theta, beta = latent.theta.float(), latent.beta.float()
    magnitude = theta.pow(2).sum(-1) + w_beta * beta.pow(2).sum(-1)
    change = (beta[:, 1:] - beta[:, :-1]).pow(2).sum(-1)
    return (magnitude * chosen).sum() + w_delta * (change * chosen[:, 1:]).sum()


def binary_scores(hands_shards: Sequence[str | os.PathLike]) -> bool:
    """Whether every hand joint score in the hands shards is 0 or 1 (MediaPipe gives no per-joint
    confidence): then eq. 7's weighting by the score and its threshold epsilon (below 1) change nothing."""
    for path in hands_shards:
        with h5py.File(path, "r") as f:
            if not np.isin(f["pose"][..., 2], (0.0, 1.0)).all():
                return False
    return True


def pretraining_loss(model: nn.Module, pose: Tensor, objective: PretrainObjective,
                     generator: torch.Generator | None = None, valid: Tensor | None = None
                     ) -> tuple[Tensor, dict[str, Tensor]]:
    """Mask pose (B, T, 2, 21, 3), reconstruct, and return eq. 6 per chosen token with its two terms.

    The hand model decodes every token and the tokens not chosen weigh 0 (their scores are zeroed):
    selecting the chosen ones would make the step wait for the GPU to count them. ``valid`` (B, T):
    False on padding frames (never chosen, attended to by no token). The two terms come back as
    0-d tensors on the device (``signpipe.train.fit`` reads them once per epoch).
    """
    masking = mask_tokens(pose, objective, generator, valid)
    latent = model(masking.pose, masking.present, valid)
    decoder = getattr(model, "module", model).decoder  # DistributedDataParallel wraps the model
    rec = pose.new_zeros(())
    for hand in range(pose.shape[2]):
        mine = HandLatent(latent.theta[:, :, hand], latent.beta[:, :, hand], latent.camera[:, :, hand])
        detected = pose[:, :, hand].float() * masking.chosen[:, :, hand, None, None]  # not chosen: score 0
        rec = rec + reconstruction_loss(decoder.project(mine, hand), detected, objective.epsilon)
    count = masking.chosen.sum().clamp(min=1)
    rec = objective.rec_scale * rec / count
    reg = regularisation_loss(latent, masking.chosen, objective.w_beta, objective.w_delta) / count
    return rec + objective.lam * reg, {"rec_loss": rec.detach(), "reg_loss": reg.detach()}


def pck(predicted: Tensor, detected: Tensor, epsilon: float, thresholds: Sequence[float]) -> list[float]:
    """Fraction of joints within each threshold (pixels of a ``PCK_FRAME`` crop).

    predicted (..., 21, 2) and detected (..., 21, 3) in normalised crop units; joints scored
    <= epsilon are not counted.
    """
    valid = detected[..., 2] > epsilon
    distance = (predicted - detected[..., :2]).norm(dim=-1)[valid] * (PCK_FRAME / 2)
    if distance.numel() == 0:
        return [float("nan")] * len(thresholds)
    return [float((distance <= t).float().mean()) for t in thresholds]


def pck_auc(predicted: Tensor, detected: Tensor, epsilon: float) -> tuple[float, float]:
    """PCK at 20 px and the normalised area under the PCK curve over 20-40 px (§4.1)."""
    thresholds = np.linspace(*AUC_RANGE, 21)
    curve = pck(predicted, detected, epsilon, [PCK_THRESHOLD, *thresholds])
    inside = np.asarray(curve[1:])
    return curve[0], float(((inside[1:] + inside[:-1]) / 2).mean())  # trapezoids of equal width


@torch.no_grad()
def feasibility(model: SignBERT, data: Dataset, objective: PretrainObjective = PretrainObjective(),
                seed: int = 0, batch_size: int = 32, device: str = "auto", num_workers: int | None = None,
                amp: str = "off") -> dict[str, float]:
    """PCK@20 and AUC of the masked input and of the reconstruction, over every token of ``data``
    but padding (the paper's measure), and PCK@20 over the tokens whose joints or frame were masked
    (``*_masked``: what the model had to hallucinate).

    Batch k's masking is drawn from ``seed`` and k, so every epoch (and every run with the same
    ``batch_size``, whatever its training batch size) is measured on the same masked clips, and
    under torchrun each rank measures its share of the batches (``signpipe.train.shard_of``) as
    one process would; every rank returns the whole measure. ``num_workers`` and ``amp`` as in
    ``signpipe.train.TrainConfig``.
    """
    target = resolve_device(device, distributed()[2])
    model.to(target).eval()
    rank, world = evaluation_ranks()
    first = shard_of(len(data), batch_size, rank, world).start // batch_size
    dtype = autocast_dtype(amp, target)
    inputs, outputs, detected, masked = [], [], [], []
    for number, batch in enumerate(eval_loader(data, batch_size, target, num_workers=num_workers), first):
        pose, valid = batch["pose"], batch["valid"]
        masking = mask_tokens(pose, objective, torch.Generator().manual_seed(seed + number * 1_000_003), valid)
        with autocast(target, dtype):
            latent = model(masking.pose.to(target), masking.present.to(target), valid.to(target))
            joints = model.decoder.joints2d(latent).float().cpu()
        keep = valid[:, :, None].expand_as(masking.chosen)  # padding tokens are not measured
        outputs.append(joints[keep])
        inputs.append(masking.pose[..., :2][keep])
        detected.append(pose[keep])
        masked.append((masking.operation > IDENTITY)[keep])
    parts = gather_shards((detected, inputs, outputs, masked))
    detected, inputs, outputs, masked = ([x for part in parts for x in part[k]] for k in range(4))
    if not detected:
        return {}
    detected_all, input_all, output_all, masked_all = map(torch.cat, (detected, inputs, outputs, masked))
    pck_in, auc_in = pck_auc(input_all, detected_all, objective.epsilon)
    pck_out, auc_out = pck_auc(output_all, detected_all, objective.epsilon)
    [pck_in_masked], [pck_out_masked] = (pck(xy[masked_all], detected_all[masked_all], objective.epsilon,
                                             [PCK_THRESHOLD]) for xy in (input_all, output_all))
    return {"pck20_input": pck_in, "auc_input": auc_in, "pck20_output": pck_out, "auc_output": auc_out,
            "pck20_input_masked": pck_in_masked, "pck20_output_masked": pck_out_masked}


OPERATION_NAMES = {-1: "not chosen", IDENTITY: "identity", MASK_JOINTS: "joints masked", MASK_FRAMES: "frame masked"}


def _draw_skeleton(ax: Any, xy: np.ndarray, shown: np.ndarray, colour: str) -> None:
    """Bones and joints of one hand (21, 2), normalised crop units, where both ends are ``shown``."""
    for a, b in HAND_EDGES:
        if shown[a] and shown[b]:
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color=colour, lw=1.2)
    ax.scatter(xy[shown, 0], xy[shown, 1], s=6, color=colour, zorder=3)


@torch.no_grad()
def reconstruction_figure(model: SignBERT, data: HandTokens, path: str | os.PathLike,
                          objective: PretrainObjective = PretrainObjective(), seed: int = 0, frames: int = 6,
                          device: str = "auto", note: str = "") -> Path:
    """A PNG like the paper's Fig. 3: for ``frames`` consecutive frames of the first clip of
    ``data``, one hand's detected joints, the masked input (disturbed joints as red dots, zeroed
    ones as red crosses where they were) and the reconstruction. The hand and frames are those
    where masked tokens hide the most confidently detected joints. A frame where the detector found
    no hand is drawn as absent in every row (the decoder's output there has nothing to match)."""
    fig = reconstruction_panels(model, data, objective, seed, frames, device, note)
    return save_figure(fig, path)


@torch.no_grad()
def reconstruction_panels(model: SignBERT, data: HandTokens, objective: PretrainObjective = PretrainObjective(),
                          seed: int = 0, frames: int = 6, device: str = "auto", note: str = "") -> Any:
    """The matplotlib Figure of :func:`reconstruction_figure`: 3 rows (detected, masked input,
    reconstruction) x ``frames`` columns."""
    from matplotlib.figure import Figure

    target = resolve_device(device)
    model.to(target).eval()
    sample = data.__getitems__([0])[0]
    pose, valid = sample["pose"][None], sample["valid"][None]  # (1, T, 2, 21, 3), (1, T)
    masking = mask_tokens(pose, objective, torch.Generator().manual_seed(seed), valid)
    output = model.decoder.joints2d(model(masking.pose.to(target), masking.present.to(target),
                                          valid.to(target))).cpu()
    frames = min(frames, int(valid.sum()))
    masked = (masking.operation[0] > IDENTITY) * (pose[0, ..., 2] > objective.epsilon).sum(-1)  # (T, 2)
    windows = masked.float().unfold(0, frames, 1).sum(-1)  # (T - frames + 1, 2): masked confident joints
    best = int(windows.flatten().argmax())
    start, hand = divmod(best, 2)
    fig = Figure(figsize=(1.8 * frames, 5.6))
    rows = (("detected", pose), ("masked input", masking.pose), ("reconstruction", output))
    for column, t in enumerate(range(start, start + frames)):
        detected = pose[0, t, hand].numpy()
        confident = detected[:, 2] > objective.epsilon
        present = bool(masking.present[0, t, hand])
        for row, (name, values) in enumerate(rows):
            ax = fig.add_subplot(len(rows), frames, row * frames + column + 1)
            xy = values[0, t, hand, :, :2].numpy()
            if not present:
                ax.text(0, 0, "no hand\ndetected", ha="center", va="center", fontsize=7, color="grey")
            elif row == 1:  # disturbed joints: red dots; zeroed ones: red crosses where they were
                kept = values[0, t, hand, :, 2].numpy() > 0
                moved = kept & (np.abs(xy - detected[:, :2]) > 1e-6).any(-1)
                _draw_skeleton(ax, xy, kept, "tab:blue")
                ax.scatter(xy[moved, 0], xy[moved, 1], s=18, color="red", zorder=4)
                gone = ~kept & confident
                ax.scatter(detected[gone, 0], detected[gone, 1], s=14, color="red", marker="x", zorder=4)
            else:
                _draw_skeleton(ax, xy, confident if row == 0 else np.ones(len(xy), bool),
                               "k" if row == 0 else "tab:green")
            ax.set_xlim(-1, 1)
            ax.set_ylim(1, -1)  # image y down
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            if column == 0:
                ax.set_ylabel(name)
            if row == 0:
                ax.set_title(f"frame {t}\n{OPERATION_NAMES[int(masking.operation[0, t, hand])]}", fontsize=8)
    fig.suptitle(f"{SIDES[hand]} hand of video {sample['video_id']}: detected, masked input, reconstruction{note}")
    fig.tight_layout()
    return fig


def decay_advice(clips: int, batch_size: int, lr_step: int, epochs: int) -> tuple[int, int] | None:
    """(lr_step, epochs) that put the first lr decay at STEPS_BEFORE_DECAY optimiser steps or later on
    a corpus of ``clips`` (epochs scaled with lr_step, so the run keeps its number of decays); None when
    the run does not decay before that many steps (or never decays)."""
    per_epoch = -(-clips // batch_size)
    if epochs <= lr_step or per_epoch * lr_step >= STEPS_BEFORE_DECAY:
        return None
    needed = -(-STEPS_BEFORE_DECAY // per_epoch)
    return needed, -(-epochs * needed // lr_step)


def early_decay(clips: int, batch_size: int, lr_step: int, epochs: int) -> None:
    """Warn when the learning rate decays before STEPS_BEFORE_DECAY steps, saying what the advice costs."""
    advice = decay_advice(clips, batch_size, lr_step, epochs)
    if advice is None:
        return
    needed, more = advice
    log.warning("pretrain: the learning rate decays after %d steps (lr_step %d epochs of %d clips); the "
                "reconstruction needs %d or more: lr_step %d and epochs %d instead of %d, i.e. %d more epochs "
                "on this corpus (docs/signbert.md, 'Schedule on small corpora')", -(-clips // batch_size) * lr_step,
                lr_step, clips, STEPS_BEFORE_DECAY, needed, more, epochs, more - epochs)


def sequences_by_dataset(data: HandTokens) -> dict[str, int]:
    """How many clips of ``data`` each dataset gave, a dataset named by the folder of its hands shards
    (the workflow's ``<results>/<dataset>/hands/<shard>.h5``)."""
    names = data.index["path"].map(lambda path: Path(path).parent.parent.name)
    return {str(name): int(count) for name, count in names.value_counts().sort_index().items()}


def pretrain(hands_shards: Sequence[str | os.PathLike], out_pt: str | os.PathLike,
             cfg: Mapping[str, Any], threads: int | None = None) -> dict[str, float]:
    """Pre-train SignBERT on the train split of ``hands_shards``; write ``out_pt`` (the encoder) and,
    beside it, ``log.csv``, ``curves.png``, ``checkpoint.pt`` (resume), ``feasibility.json`` and
    ``reconstruction.png`` (:func:`reconstruction_figure` on the first val clip).

    ``cfg``: the training keys of ``signpipe.train.TrainConfig`` (epochs, batch_size, lr, ...,
    device, seed), ``num_frames``, the ``PretrainObjective`` keys (``mask``, ``rec_scale``, ...),
    the clip options of ``signpipe.models.signbert.CLIP_OPTIONS`` (``sampling``, ``short_clips``,
    ``mirror``, ``dominant_hand``), ``val_every`` (feasibility every N epochs and after the last; the
    other rows of ``log.csv`` leave it empty), ``model`` (encoder sizes, ``SignBERTConfig``) and ``hand_model``
    (mano_dir, num_pca); ``threads`` caps torch's CPU threads. Returns the last feasibility.
    ``feasibility.json`` also says whether every hand score is 0 or 1 (``binary_scores``: eq. 7's
    weighting is then inert) and ``signbert.pt`` which hand model decoded (``hand_model``: open | mano)
    and what it was trained on (``datasets``: train clips per dataset, :func:`sequences_by_dataset`;
    ``sequences``: their sum). Only train-split clips are trained on: a labeled dataset's val and
    test videos never are, a ``role: pretrain`` dataset's are all train.
    """
    use_threads(threads)
    out_dir = Path(out_pt).parent
    seed = cfg.get("seed", 0)
    num_frames = cfg.get("num_frames", NUM_FRAMES)
    options = clip_options(cfg)
    train_set = HandTokens(hands_shards, "train", num_frames, train=True, seed=seed, **options)
    if not len(train_set):
        raise ValueError(f"pretrain: no train-split videos in {len(hands_shards)} hands shards")
    seen = sequences_by_dataset(train_set)
    log.info("pretrain: %d train sequences: %s", len(train_set), ", ".join(f"{k} {v}" for k, v in seen.items()))
    held_out = "val"
    val_set = HandTokens(hands_shards, "val", num_frames, **options)
    if not len(val_set):  # feasibility and the figure still need clips: say that they were trained on
        held_out = "train"
        val_set = HandTokens(hands_shards, "train", num_frames, **options)
        log.warning("pretrain: no val-split videos in %d hands shards; feasibility and %s are measured on "
                    "train clips, which the model has seen", len(hands_shards), RECONSTRUCTION)
    objective = from_config(PretrainObjective, cfg, aliases={"lambda": "lam"})
    training = train_config(cfg)
    torch.manual_seed(training.seed)  # the initial weights: the same run gives the same model
    model = SignBERT(from_config(SignBERTConfig, cfg.get("model")), hand_model=cfg.get("hand_model"))
    hand_model = "mano" if model.decoder.hands[0].licensed else "open"
    if hand_model == "open":
        log.warning("pretrain: hand_model.mano_dir is null, so signpipe's open hand (not learned from scans) "
                    "replaces MANO in the decoder; signbert.pt records hand_model: open (docs/handmodel.md)")
    binary = binary_scores(hands_shards)
    if binary:
        log.warning("pretrain: every hand score in the hands shards is 0 or 1 (MediaPipe gives no per-joint "
                    "confidence), so eq. 7's confidence weighting and epsilon = %g change nothing: L_rec weighs "
                    "each detected joint by 1 (feasibility.json: binary_scores)", objective.epsilon)
    early_decay(len(train_set), training.batch_size, training.lr_step, training.epochs)

    def step(model: nn.Module, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        return pretraining_loss(model, batch["pose"], objective, valid=batch["valid"])

    val_every = cfg.get("val_every", VAL_EVERY)

    def evaluate(model: nn.Module) -> dict[str, float]:
        epoch = train_set.epoch + 1  # the epoch just trained, counted from 1
        if epoch % val_every and epoch < training.epochs:
            return {}
        return feasibility(model, val_set, objective, seed, device=training.device,
                           num_workers=training.num_workers, amp=training.amp)

    settings = {k: v for k, v in cfg.items() if k not in ("epochs", "num_workers", "val_every")}
    history = fit(model, step, train_set, out_dir, training, evaluate, title="SignBERT pre-training",
                  fingerprint=input_fingerprint(hands_shards, settings, PRETRAIN_CODE))
    if distributed()[0] != 0:
        return {}
    measured = {k: float(history.iloc[-1][k]) for k in FEASIBILITY_KEYS if k in history}
    with atomic_path(out_dir / FEASIBILITY, ".json") as tmp:
        report = {"split": held_out, "videos": len(val_set), "binary_scores": binary, **measured}
        Path(tmp).write_text(json.dumps(report, indent=1) + "\n")
    reconstruction_figure(model, val_set, out_dir / RECONSTRUCTION, objective, seed, device=training.device,
                          note="" if held_out == "val" else " (no val videos: a train clip, seen in training)")
    save_encoder(out_pt, model, {"feasibility": measured, "hand_model": hand_model, "datasets": seen,
                                 "sequences": len(train_set)})
    log.info("pretrain: %s written; feasibility %s", out_pt, measured)
    return measured
