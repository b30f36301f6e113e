"""SignBERT (Hu et al., ICCV 2021): hand pose tokens, Transformer encoder, hand-model-aware decoder.

Every hand in every frame is one token: its 21 joints (x, y, score), x and y normalised from the
crop frame to [-1, 1] (crop centre 0), so the model is the same whatever the crop size. A token's
embedding is the sum of (§3.1)

- the **gesture state embedding** f_p: a GCN over the hand graph (physical bones plus
  symmetrical links between the same joint of neighbouring fingers), run frame by frame, then
  graph pooling over neighbouring joints (palm and the five fingers);
- the **temporal embedding** f_o: sinusoidal in the frame index, the same for both hands of a frame;
- the **chirality embedding** f_h: one learned vector for the left hand, one for the right.

A hand the detector did not find in a frame (every score 0) is not a hand pose: its f_p is
replaced by a learned **absent embedding** (signpipe's; the paper's MMPose input has a hand in
every frame), so the encoder tells "not there" from a masked frame (all zeros, but present).
Padding tokens (clips shorter than 32 frames with ``short_clips: pad``) are masked out of
attention and of the head's pooling.

The tokens (B, 2T) go through a post-norm Transformer encoder (eq. 1, N = 3 layers). For
pre-training the **hand-model-aware decoder** (eq. 2-5) maps every output token with one linear
layer to theta (25 pose PCA coefficients), beta (10 shape coefficients) and a weak-perspective
camera, and the hand model layer (``signpipe.handmodel``) turns those into 21 joints projected
to 2D. For fine-tuning the **prediction head** (§3.1) weights the tokens with a temporal
attention, sums them and classifies with a linear layer (``head: joint``: one softmax over the
2T tokens; ``per_hand``: a softmax over time per hand, the two hand vectors concatenated).
``SPEC`` is this model for the finetune stage.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor, nn

from signpipe.data import NUM_FRAMES, ShardDataset
from signpipe.handmodel import CAMERA_DIM, NUM_BETAS, HandModel
from signpipe.handmodel.defaults import PAPER_NUM_PCA, SIDES
from signpipe.keypoints import HAND_EDGES, NUM_HAND_JOINTS
from signpipe.models import ModelSpec, Shards
from signpipe.settings import from_config
from signpipe.train import save_checkpoint

log = logging.getLogger(__name__)

FINGERS = tuple(tuple(range(1 + 4 * f, 5 + 4 * f)) for f in range(5))
"""Joints of the five fingers (thumb to pinky), base to tip, in the hand joint order."""
PARTS = ((0,) + tuple(finger[0] for finger in FINGERS),) + FINGERS
"""Graph pooling regions: the palm (wrist and finger bases), then each finger."""
TEMPORAL_TABLE = 256
"""Frames the temporal embedding's table holds on the device (longer clips build a longer one)."""
HEADS = ("joint", "per_hand")
"""Readings of the prediction head's "simple attention over time" (§3.1)."""
ARCH_KEYS = ("hidden", "layers", "heads", "feedforward", "gcn_channels", "gcn_layers")
"""The sizes of ``SignBERTConfig`` that must agree between pre-training and fine-tuning."""
INITIAL_LOG_SCALE = math.log(8.0)
"""Camera log-scale the decoder starts from: the hand model's hand (about 0.12 units from wrist
to fingertip) then spans about half the normalised crop, as the hands stage's crops do."""


def hand_graph() -> Tensor:
    """(21, 21) normalised adjacency D^-1/2 (A + I) D^-1/2 of the hand graph.

    A joins the physical bones (``HAND_EDGES``) and, symmetrically across the hand, the same
    joint of neighbouring fingers (thumb-index, index-middle, ...), undirected (SignBERT §3.1).
    """
    edges = list(HAND_EDGES) + [(a[k], b[k]) for a, b in zip(FINGERS, FINGERS[1:]) for k in range(4)]
    adjacency = torch.eye(NUM_HAND_JOINTS)
    for a, b in edges:
        adjacency[a, b] = adjacency[b, a] = 1.0
    degree = adjacency.sum(1).rsqrt()
    return degree[:, None] * adjacency * degree[None, :]


def normalise_pose(pose: Tensor, crop_size: float) -> Tensor:
    """(..., 21, 3) crop pixels and score -> x, y in [-1, 1] of the crop (centre 0), score unchanged.

    Undetected joints (score 0) get x = y = 0, as masked joints do: their stored coordinates
    are the source's (0, 0) seen from the crop, far outside it, and carry no information.
    """
    xy = pose[..., :2] * (2.0 / crop_size) - 1.0
    score = pose[..., 2:]
    return torch.cat([torch.where(score > 0, xy, torch.zeros_like(xy)), score], dim=-1)


def temporal_embedding(length: int, dim: int) -> Tensor:
    """(length, dim) sinusoidal position encoding of frames 0..length-1 (Vaswani et al. 2017)."""
    position = torch.arange(length, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: dim // 2])
    return table


@dataclass(frozen=True)
class SignBERTConfig:
    """Sizes of the encoder. The paper gives N = 3 layers (Table 6); the widths are signpipe's."""

    hidden: int = 256
    layers: int = 3
    heads: int = 8
    feedforward: int = 1024
    gcn_channels: int = 64
    gcn_layers: int = 2
    dropout: float = 0.1


def part_joints() -> Tensor:
    """(P, L) joint indexes of each region of ``PARTS``, shorter ones padded with their first joint
    (which leaves a region's maximum as it is): one gather on the device pools every region."""
    longest = max(map(len, PARTS))
    return torch.tensor([list(part) + [part[0]] * (longest - len(part)) for part in PARTS])


def present_hands(pose: Tensor) -> Tensor:
    """(B, T, 2) bool: the hands the detector found (any joint scored above 0) in pose (B, T, 2, 21, 3)."""
    return (pose[..., 2] > 0).any(-1)


class GestureStateEmbedding(nn.Module):
    """f_p: (..., 21, 3) joints -> (..., hidden); graph convolutions per frame, then graph pooling.

    Each layer is ``ReLU(LayerNorm(A X W))`` over the normalised hand graph A; pooling takes the
    maximum over each region of ``PARTS`` and a linear layer maps the regions to ``hidden``.
    """

    def __init__(self, hidden: int, channels: int, layers: int) -> None:
        super().__init__()
        self.register_buffer("adjacency", hand_graph())
        sizes = [3] + [channels] * layers
        self.weights = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes, sizes[1:]))
        self.norms = nn.ModuleList(nn.LayerNorm(b) for b in sizes[1:])
        self.pool = nn.Linear(len(PARTS) * channels, hidden)
        self.register_buffer("part_joints", part_joints(), persistent=False)  # not in checkpoints

    def forward(self, joints: Tensor) -> Tensor:
        x = joints
        for weight, norm in zip(self.weights, self.norms):
            x = torch.relu(norm(self.adjacency @ weight(x)))
        pooled = x[..., self.part_joints, :].amax(dim=-2).flatten(-2)  # (..., P * channels), region by region
        return self.pool(pooled)


class SignBERTEncoder(nn.Module):
    """Embeddings and post-norm Transformer encoder (eq. 1): pose (B, T, 2, 21, 3) -> (B, T, 2, hidden)."""

    def __init__(self, arch: SignBERTConfig) -> None:
        super().__init__()
        self.arch = arch
        self.gesture_state_embedding = GestureStateEmbedding(arch.hidden, arch.gcn_channels, arch.gcn_layers)
        self.chirality_embedding = nn.Embedding(len(SIDES), arch.hidden)
        self.absent_embedding = nn.Parameter(torch.zeros(arch.hidden).normal_(0.0, 0.02))
        layer = nn.TransformerEncoderLayer(arch.hidden, arch.heads, arch.feedforward, arch.dropout,
                                           batch_first=True, norm_first=False)  # post-norm: F = L(M(F) + F)
        self.transformer = nn.TransformerEncoder(layer, arch.layers, enable_nested_tensor=False)
        self.register_buffer("temporal_table", temporal_embedding(TEMPORAL_TABLE, arch.hidden), persistent=False)

    def embed(self, pose: Tensor, present: Tensor | None = None) -> Tensor:
        """F_0 = f_p + f_o + f_h, (B, T, 2, hidden); f_p is the absent embedding where ``present``
        (B, T, 2) is False (by default: where the pose has no scored joint)."""
        _, length, hands = pose.shape[:3]
        present = present_hands(pose) if present is None else present
        f_p = self.gesture_state_embedding(pose)
        f_p = torch.where(present[..., None], f_p, self.absent_embedding.to(f_p.dtype))
        table = self.temporal_table if length <= len(self.temporal_table) else \
            temporal_embedding(length, self.arch.hidden).to(pose.device)
        f_o = table[:length].to(f_p.dtype)[:, None, :]
        f_h = self.chirality_embedding(torch.arange(hands, device=pose.device))
        return f_p + f_o + f_h

    def forward(self, pose: Tensor, present: Tensor | None = None, valid: Tensor | None = None) -> Tensor:
        """Features (B, T, 2, hidden); ``valid`` (B, T) False on padding frames, which no token attends to."""
        tokens = self.embed(pose, present)
        batch, length, hands, hidden = tokens.shape
        padding = None if valid is None else ~valid[:, :, None].expand(batch, length, hands).reshape(batch, -1)
        out = self.transformer(tokens.reshape(batch, length * hands, hidden), src_key_padding_mask=padding)
        return out.reshape(batch, length, hands, hidden)


@dataclass
class HandLatent:
    """The decoder's latent per token (eq. 2): theta (..., 25), beta (..., 10), camera (..., 9)."""

    theta: Tensor
    beta: Tensor
    camera: Tensor


class HandModelAwareDecoder(nn.Module):
    """Eq. 2-5: features (B, T, 2, hidden) -> ``HandLatent``; :meth:`project` -> 2D joints.

    One linear layer D gives theta, beta and the camera (6D rotation, translation, log-scale;
    see ``signpipe.handmodel.camera``) of every token; the left and right hand model layers
    (the left one the mirror of the right) decode the left and right tokens.
    """

    def __init__(self, hidden: int, hand_model: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        config = {"hand_model": {"num_pca": PAPER_NUM_PCA["signbert"], **(hand_model or {})}}
        self.hands = nn.ModuleList(HandModel.from_config(config, side) for side in SIDES)
        self.num_pca = self.hands[0].num_pca
        self.latent = nn.Linear(hidden, self.num_pca + NUM_BETAS + CAMERA_DIM)
        with torch.no_grad():
            self.latent.weight.mul_(0.1)
            self.latent.bias.zero_()
            self.latent.bias[-1] = INITIAL_LOG_SCALE

    def forward(self, features: Tensor) -> HandLatent:
        theta, beta, camera = self.latent(features).split([self.num_pca, NUM_BETAS, CAMERA_DIM], dim=-1)
        return HandLatent(theta, beta, camera)

    def project(self, latent: HandLatent, hand: int) -> Tensor:
        """2D joints (..., 21, 2) of tokens of hand ``hand`` (0 left, 1 right) from their latent (..., *)."""
        return self.hands[hand](latent.theta, latent.beta, latent.camera, vertices=False).joints2d

    def joints2d(self, latent: HandLatent) -> Tensor:
        """2D joints (B, T, 2, 21, 2) of every token of a latent (B, T, 2, *)."""
        return torch.stack([self.project(HandLatent(latent.theta[:, :, h], latent.beta[:, :, h],
                                                    latent.camera[:, :, h]), h) for h in range(len(SIDES))], dim=2)


class PredictionHead(nn.Module):
    """Temporal attention over the tokens, weighted sum, linear classifier: (B, T, 2, hidden) -> (B, C).

    ``head`` joint: one softmax over all 2T tokens, one pooled vector; per_hand: a softmax over
    the T tokens of each hand, the left and right pooled vectors concatenated. Padding frames
    (``valid`` False) get no weight.
    """

    def __init__(self, hidden: int, num_classes: int, dropout: float, head: str = "joint") -> None:
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"head={head!r}: use one of {', '.join(HEADS)}")
        self.head = head
        self.attention = nn.Linear(hidden, 1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden * (len(SIDES) if head == "per_hand" else 1), num_classes)

    def weights(self, features: Tensor, valid: Tensor | None = None) -> Tensor:
        """(B, T, 2, hidden) -> attention weights (B, T, 2), summing to 1 per sample (joint) or
        per sample and hand (per_hand)."""
        scores = self.attention(features).squeeze(-1).float()
        if valid is not None:
            scores = scores.masked_fill(~valid[:, :, None], float("-inf"))
        if self.head == "per_hand":
            return scores.softmax(dim=1)
        return scores.flatten(1).softmax(dim=1).reshape(scores.shape)

    def forward(self, features: Tensor, valid: Tensor | None = None) -> Tensor:
        weighted = self.weights(features, valid).to(features.dtype)[..., None] * features
        pooled = weighted.sum(dim=1).flatten(1) if self.head == "per_hand" else weighted.sum(dim=(1, 2))
        return self.classifier(self.dropout(pooled))


class SignBERT(nn.Module):
    """The encoder with the decoder (pre-training, ``num_classes`` None) or the prediction head.

    forward(pose (B, T, 2, 21, 3), present (B, T, 2), valid (B, T)) -> ``HandLatent`` of every
    token (pre-training) or logits (B, C); see :meth:`SignBERTEncoder.forward`.
    """

    def __init__(self, arch: SignBERTConfig | None = None, num_classes: int | None = None,
                 hand_model: Mapping[str, Any] | None = None, head: str = "joint") -> None:
        super().__init__()
        arch = arch or SignBERTConfig()
        self.encoder = SignBERTEncoder(arch)
        self.decoder = HandModelAwareDecoder(arch.hidden, hand_model) if num_classes is None else None
        self.head = PredictionHead(arch.hidden, num_classes, arch.dropout, head) if num_classes is not None else None
        self.pretrained_hand_model: str | None = None
        """The hand model ("open" or "mano") of the pre-training whose encoder :func:`build` loaded."""

    def forward(self, pose: Tensor, present: Tensor | None = None, valid: Tensor | None = None) -> HandLatent | Tensor:
        features = self.encoder(pose, present, valid)
        return self.decoder(features) if self.head is None else self.head(features, valid)


def save_encoder(path: str | os.PathLike, model: SignBERT, extra: Mapping[str, Any] | None = None) -> None:
    """Write the pre-trained encoder (weights and sizes) atomically: the artifact ``signbert.pt``."""
    save_checkpoint(path, {"encoder": model.encoder.state_dict(), "arch": asdict(model.encoder.arch),
                           **dict(extra or {})})


def build(num_classes: int, cfg: Mapping[str, Any]) -> SignBERT:
    """The classifier, head ``cfg["head"]`` (joint). Its sizes have one source, ``cfg["model"]``
    (the workflow hands in ``pretrain.model``), for a model trained from scratch and a pre-trained
    one alike; with ``cfg["pretrained"]`` (a ``signbert.pt``) the file's sizes must equal them
    (an error names both) and its encoder weights are loaded (without ``cfg["model"]``, as in a
    call outside the workflow, the file's sizes are taken). ``cfg["dropout"]`` sets the
    fine-tuning dropout. Sizes set in the finetune block itself are an error."""
    stray = [key for key in ARCH_KEYS if cfg.get(key) is not None]
    if stray:
        raise ValueError(f"finetune.signbert.{stray[0]}: SignBERT's sizes are set once, in pretrain.model "
                         "(fine-tuning from scratch builds the same model as pre-training)")
    dropout = {"dropout": cfg["dropout"]} if cfg.get("dropout") is not None else {}
    state = torch.load(cfg["pretrained"], map_location="cpu", weights_only=True) if cfg.get("pretrained") else None
    sizes = cfg.get("model") if cfg.get("model") is not None or state is None else state["arch"]
    arch = from_config(SignBERTConfig, {**(sizes or {}), **dropout})
    if state is not None:
        for key in ARCH_KEYS:
            if state["arch"][key] != getattr(arch, key):
                raise ValueError(f"signbert: pretrain.model.{key} is {getattr(arch, key)} in the config but "
                                 f"{state['arch'][key]} in {cfg['pretrained']}; rerun pretrain or set "
                                 f"pretrain.model.{key}: {state['arch'][key]}")
    model = SignBERT(arch, num_classes, head=cfg.get("head", HEADS[0]))
    if state is not None:
        model.encoder.load_state_dict(state["encoder"])
        model.pretrained_hand_model = state.get("hand_model")
        log.info("signbert: encoder loaded from %s", cfg["pretrained"])
    return model


def crop_size(paths: Sequence[str | os.PathLike]) -> int:
    """The crop side of hands shards (their ``config`` attr); all must agree."""
    sizes = set()
    for path in paths:
        with h5py.File(path, "r") as f:
            sizes.add(int(json.loads(f.attrs["config"])["crop_size"]))
    if len(sizes) != 1:
        raise ValueError(f"hands shards with different crop sizes {sorted(sizes)}: rerun the hands stage alike")
    return sizes.pop()


def mirror_hands(pose: np.ndarray) -> np.ndarray:
    """Normalised pose (..., 2, 21, 3) of the mirrored signer: x negated, left and right hands swapped
    (each hand's tokens then carry the other chirality)."""
    out = pose[..., ::-1, :, :].copy()
    out[..., 0] *= -1
    return out


def mirror_boxes(box: np.ndarray) -> np.ndarray:
    """Boxes (..., 2, 4) (x0, y0, x1, y1) of the mirrored signer, about x = 0, hands swapped."""
    out = box[..., ::-1, :].copy()
    out[..., [0, 2]] = -box[..., ::-1, :][..., [2, 0]]
    return out


class HandTokens(ShardDataset):
    """Clips of hands shards with ``pose`` (N, 2, 21, 3) normalised by :func:`normalise_pose`
    (and ``box`` (N, 2, 4) with ``dominant_hand``, which measures activity on the boxes).

    ``ShardDataset``'s options: ``sampling``, ``short_clips``, ``mirror``, ``dominant_hand``.
    """

    mirrors = {"pose": mirror_hands, "box": mirror_boxes}

    def __init__(self, shards: str | os.PathLike | Sequence[str | os.PathLike],
                 split: str | Sequence[str] | None = None, num_frames: int = NUM_FRAMES, train: bool = False,
                 seed: int = 0, **options: Any) -> None:
        arrays = ["pose", "box"] if options.get("dominant_hand") else ["pose"]
        super().__init__(shards, arrays=arrays, split=split, num_frames=num_frames, train=train, seed=seed, **options)
        self.crop_size = crop_size(self.paths)

    def activity(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, 2) path length of each hand's box centre (source pixels) over the clip's frames."""
        centre = (arrays["box"][..., :2] + arrays["box"][..., 2:]) / 2
        return np.linalg.norm(np.diff(centre, axis=1), axis=-1).sum(axis=1)

    def read(self, items: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
        """The batch's poses (B, N, 2, 21, 3), normalised in one step (per sample it cost a
        sixth of a small model's training step)."""
        arrays = super().read(items, frames)
        arrays["pose"] = normalise_pose(torch.from_numpy(arrays["pose"]), self.crop_size).numpy()
        return arrays


CLIP_OPTIONS = {"sampling": "segments", "short_clips": "repeat", "mirror": 0.0, "dominant_hand": False}
"""The clip options of pre-training and fine-tuning (:class:`HandTokens`) and their defaults."""


def clip_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`CLIP_OPTIONS` of a settings block, defaults where it sets none."""
    return {key: cfg[key] if cfg.get(key) is not None else default for key, default in CLIP_OPTIONS.items()}


def dataset(shards: Shards, split: str, train: bool, cfg: Mapping[str, Any]) -> HandTokens:
    """Hand token clips of ``cfg["num_frames"]`` frames (32) of one split, with :func:`clip_options`."""
    return HandTokens(shards, split, cfg.get("num_frames", NUM_FRAMES), train, cfg.get("seed", 0), **clip_options(cfg))


def forward(model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
    """Logits (B, C) of a batch of hand token clips (padding frames masked)."""
    return model(batch["pose"], valid=batch["valid"])


SPEC = ModelSpec(name="signbert", build=build, dataset=dataset, forward=forward,
                 defaults={"head": HEADS[0], **CLIP_OPTIONS})
