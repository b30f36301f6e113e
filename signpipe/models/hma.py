"""HMA: Hand-Model-Aware sign language recognition (Hu, Zhou, Pu, Li; AAAI 2021), model ``hma``.

Both hands' RGB crops of every frame go through a **visual encoder** (eq. 1: a ResNet-34 per
frame and hand, then one fully-connected layer to the latent theta in R^6 (pose PCA), beta in
R^10 and a weak-perspective camera), a **hand-model-aware decoder** (eq. 2-3: MANO, or
signpipe's open MANO-format hand, through ``signpipe.handmodel``: 21 3D joints, the fingertips
from the mesh vertices, projected to 2D by the camera, eq. 5) and an **inference module**
(eq. 4: an ST-GCN over the hand graph of the 3D joints with a learnable edge-importance mask M,
global pooling, a linear classifier). Training adds three weakly supervised terms to the
cross-entropy (eq. 9): the spatial consistency of the projected joints with the hands stage's 2D
poses (eq. 6), the temporal smoothness of the 3D joints (eq. 7) and a regulariser of theta and
beta (eq. 8). ``docs/hma.md`` maps every equation to the code below and lists what the paper
leaves open and what signpipe chose (each a key of the ``finetune.hma`` block).

Tensors: ``crop`` (B, T, 2, S, S, 3) uint8, hands (left, right) of the signer; ``pose``
(B, T, 2, 21, 3): x, y in [-1, 1] of the (cropped) hand image, centre 0, and the pose stage's
score; latent per token (B, T, 2, *); joints (B, T, 2, 21, 3) and (B, T, 2, 21, 2).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from signpipe.clips import HandClips
from signpipe.data import NUM_FRAMES, ShardDataset
from signpipe.handmodel import CAMERA_DIM, NUM_BETAS
from signpipe.handmodel.camera import IDENTITY_6D, camera_rotation, rotation_to_6d
from signpipe.handmodel.defaults import PAPER_NUM_PCA, SIDES
from signpipe.keypoints import HAND_EDGES, NUM_HAND_JOINTS
from signpipe.keypoints.graph import hop_distance
from signpipe.models import ModelSpec, Shards
from signpipe.models.pretrained import load_resnet2d
from signpipe.models.signbert import HandLatent, HandModelAwareDecoder
from signpipe.models.stgcn import Block

log = logging.getLogger(__name__)

ARCHS: dict[str, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet34": (BasicBlock, (3, 4, 6, 3)), "resnet50": (Bottleneck, (3, 4, 6, 3))}
"""Block and blocks per stage of torchvision's ResNets; the paper's encoder is ResNet-34."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

ROOT = 0
"""The root joint of eq. 6 (the wrist, joint 0 of the hand order): both 2D joint sets are taken relative to it."""
PALM_JOINTS = (0, 1, 5, 9, 13, 17)
"""S_0: the wrist and the base joint of every digit (thumb CMC, finger MCP)."""
MIDDLE_JOINTS = (2, 3, 6, 7, 10, 11, 14, 15, 18, 19)
"""S_1: the two middle joints of every digit (thumb MCP and IP, finger PIP and DIP)."""
TERMINAL_JOINTS = (4, 8, 12, 16, 20)
"""S_2: the five fingertips."""
TEMPORAL_GROUPS = (PALM_JOINTS, MIDDLE_JOINTS, TERMINAL_JOINTS)
"""Eq. 7's joint groups {S_i}: palm, middle, terminal; every joint in exactly one."""

EPSILON = 0.4
"""Eq. 6: joints of the pseudo-label with confidence c >= epsilon count (paper: 0.4)."""
W_BETA = 10.0
"""Eq. 8: weight of ||beta||^2 (paper: 10)."""
ALPHA = (1.0, 2.5, 4.0)
"""Eq. 7: alpha_0, alpha_1, alpha_2 for palm, middle, terminal joints (paper: 1, 2.5, 4)."""
LAMBDA = 0.1
"""Eq. 9: lambda_spa = lambda_tem = lambda_reg = 0.1 (paper)."""
SPA_SCALE = 8.0
"""Units of eq. 6: pixels per normalised crop unit (8: pixels of a 16-px crop), the best measured
under SGD at lr 5e-3; 16, 48 and the paper's pixels of a 256-px crop (128) let the hand collapse
more often (docs/hma.md, Units)."""
INITIAL_VIEW = torch.diag(torch.tensor([1.0, -1.0, -1.0]))
"""Camera rotation the decoder starts from: 180 degrees about x, the hand model's fingers (+y)
pointing up in the image (y down) and its palm towards the camera, as in most hand crops."""
INITIAL_LOG_SCALE = float(np.log(8.0))
"""Camera log-scale the decoder starts from: the hand (about 0.19 m wrist to fingertip) spans
about 1.5 of the crop's 2 normalised units (SignBERT's decoder starts the same way). The hands
stage cuts each crop around its hand, so c_s varies little: on the hand-shape corpus the scales
implied by the pseudo-labels' extents are 6.4-9.8 (5th-95th percentile, median 8.5)."""
SCALE_STEP = 0.1
"""log c_s = INITIAL_LOG_SCALE + SCALE_STEP * (the FC's output): the camera scale's steps are
SCALE_STEP^2 = 1/100 of the other latent outputs'. Eq. 6's L1 gradient in log c_s does not shrink
near the optimum (it is about the loss itself) and the FC's input features have a squared norm of
about 75, so at the paper's lr 5e-3 one SGD step moved log c_s by about 1: c_s fell from 8 to 1.6
in two steps and some hands reached c_s < 0.01 within ten, where every gradient into theta, c_r
and c_s is multiplied by c_s and the hand stays shrunk to its wrist (docs/hma.md, Camera scale)."""
FUSIONS = ("graph", "logits")
FRAMES = ("model", "camera")
PARTITIONS = ("spatial", "uniform")
REDUCTIONS = ("sum", "frame", "mean")


@dataclass(frozen=True)
class HMAConfig:
    """The ``finetune.hma`` keys the model reads (docs/hma.md); defaults are the paper's where it gives them.

    Encoder: ``arch`` (resnet34), ``width`` (64, torchvision's; smaller for CPU runs),
    ``checkpoint`` (a local torchvision ResNet state dict, e.g. ImageNet weights; None: random
    init). Input: ``size`` (256 px per hand), ``crop_fraction`` (0.875 of the stored crop is cut
    at one random place per clip in training, at the centre at test, then resized to ``size``),
    ``flip`` (0.5). Decoder: ``num_pca`` (6), ``mano_dir`` (None: the open hand). Inference
    module: ``gcn_layers`` [[channels, temporal stride], ...], ``temporal_kernel`` (9),
    ``partition`` (spatial | uniform), ``hand_fusion`` (graph | logits), ``joint_frame``
    (camera: c_r J3D, the hand's orientation in the image kept | model: J3D), ``dropout``. Losses:
    ``epsilon`` (0.4), ``w_beta`` (10), ``alpha`` (1, 2.5, 4), ``temporal_groups``, ``reduction``
    (frame | sum | mean), ``spa_scale`` (8: L_spa in pixels of a 16-px crop, 8 per normalised
    unit; 128 would be pixels of the paper's 256-px crop; docs/hma.md, Units).
    """

    arch: str = "resnet34"
    width: int = 64
    checkpoint: str | None = None
    size: int = 256
    crop_fraction: float = 0.875
    flip: float = 0.5
    num_pca: int = PAPER_NUM_PCA["hma"]
    mano_dir: str | None = None
    gcn_layers: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (256, 2))
    temporal_kernel: int = 9
    partition: str = "spatial"
    hand_fusion: str = "graph"
    joint_frame: str = "camera"
    dropout: float = 0.0
    epsilon: float = EPSILON
    w_beta: float = W_BETA
    alpha: tuple[float, float, float] = ALPHA
    temporal_groups: tuple[tuple[int, ...], ...] = TEMPORAL_GROUPS
    reduction: str = "frame"
    spa_scale: float = SPA_SCALE

    def __post_init__(self) -> None:
        for key, value, known in (("arch", self.arch, tuple(ARCHS)), ("partition", self.partition, PARTITIONS),
                                  ("hand_fusion", self.hand_fusion, FUSIONS), ("joint_frame", self.joint_frame, FRAMES),
                                  ("reduction", self.reduction, REDUCTIONS)):
            if value not in known:
                raise ValueError(f"finetune.hma.{key}: {value!r} unknown; known: {', '.join(known)}")
        groups = sorted(j for group in self.temporal_groups for j in group)
        if groups != list(range(NUM_HAND_JOINTS)) or len(self.temporal_groups) != len(self.alpha):
            raise ValueError("finetune.hma.temporal_groups: every joint 0..20 in exactly one group, "
                             f"one group per alpha ({len(self.alpha)}); got {self.temporal_groups}")

    @classmethod
    def from_settings(cls, cfg: Mapping[str, Any] | None) -> HMAConfig:
        """The keys of ``cfg`` this class names (others belong to training); lists become tuples."""
        names = {f.name for f in fields(cls)}
        values = {}
        for key, value in (cfg or {}).items():
            if key in names and value is not None:
                values[key] = _tuples(value) if isinstance(value, (list, tuple)) else value
        return cls(**values)


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


DEFAULTS: dict[str, Any] = {
    "epochs": 60, "batch_size": 8, "optimizer": "sgd", "lr": 5e-3, "momentum": 0.9, "weight_decay": 1e-4,
    "schedule": "plateau", "lr_gamma": 0.1, "patience": 5, "num_frames": NUM_FRAMES,
    "loss_weights": {"ce": 1.0, "spa": LAMBDA, "tem": LAMBDA, "reg": LAMBDA},
}
"""Training defaults (§4 Implementation details): SGD, lr 5e-3, momentum 0.9, weight decay 1e-4,
x0.1 when the validation loss saturates, 32 frames, lambda = 0.1 each. Not in the paper and
chosen here: 60 epochs, batch size 8 clips (each 64 crops), patience 5 epochs."""


# ---------------------------------------------------------------------------------------------
# Eq. 1: visual encoder

class ResNetTrunk(nn.Module):
    """torchvision's ResNet without its classifier, of any base ``width`` (64 = torchvision's).

    Layer names are torchvision's (conv1, bn1, layer1-4), so a torchvision ``resnet18/34/50`` state
    dict (ImageNet weights saved on a machine with internet) loads into that ``arch`` at ``width=64``.
    images (N, 3, H, W) -> features (N, 8 * width, x4 for resnet50's bottlenecks).
    """

    def __init__(self, arch: str = "resnet34", width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = width
        block, counts = ARCHS[arch]
        for stage, blocks in enumerate(counts):
            planes, stride = width * 2**stage, 1 if stage == 0 else 2
            out = planes * block.expansion
            downsample = None
            if stride != 1 or inplanes != out:
                downsample = nn.Sequential(nn.Conv2d(inplanes, out, 1, stride, bias=False), nn.BatchNorm2d(out))
            layers = [block(inplanes, planes, stride, downsample)]
            layers += [block(out, planes) for _ in range(blocks - 1)]
            setattr(self, f"layer{stage + 1}", nn.Sequential(*layers))
            inplanes = out
        self.out_features = inplanes
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)


class VisualEncoder(nn.Module):
    """E of eq. 1 without its last layer: crops (B, T, 2, S, S, 3) uint8 -> features (B, T, 2, F),
    one ResNet pass per frame and hand (ImageNet mean and std)."""

    def __init__(self, arch: str, width: int) -> None:
        super().__init__()
        self.resnet = ResNetTrunk(arch, width)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, crop: Tensor) -> Tensor:
        lead = crop.shape[:3]
        x = crop.reshape(-1, *crop.shape[3:]).permute(0, 3, 1, 2).float() / 255
        return self.resnet((x - self.mean) / self.std).reshape(*lead, -1)


# ---------------------------------------------------------------------------------------------
# Eq. 2-3, 5: hand-model-aware decoder

class HMADecoder(HandModelAwareDecoder):
    """The last layer of E (eq. 1: features -> theta (6), beta (10), camera (9)) and MANO (eq. 2-3).

    The camera is signpipe's (``signpipe.handmodel.camera``): the rotation c_r in the 6D
    representation (always a true rotation), translation c_o, log c_s (always positive), the
    last with steps SCALE_STEP^2 smaller than the other outputs' (it starts at 8). :meth:`decode`
    gives joints3d (B, T, 2, 21, 3), wrist at the origin, in the hand model's frame (metres), and
    joints2d (B, T, 2, 21, 2) = c_s * Pi(c_r joints3d) + c_o (eq. 5). The left and right hand
    models decode the left and right tokens.
    """

    def __init__(self, features: int, num_pca: int, mano_dir: str | None) -> None:
        super().__init__(features, {"num_pca": num_pca, "mano_dir": mano_dir})
        with torch.no_grad():
            start = self.num_pca + NUM_BETAS
            self.latent.bias[start:start + 6] = rotation_to_6d(INITIAL_VIEW) - torch.tensor(IDENTITY_6D)
            self.latent.bias[start + CAMERA_DIM - 1] = 0.0  # c_s starts at exp(INITIAL_LOG_SCALE)

    def forward(self, features: Tensor) -> HandLatent:
        """features (B, T, 2, F) -> theta, beta, camera; log c_s = INITIAL_LOG_SCALE + SCALE_STEP * output."""
        latent = super().forward(features)
        camera = latent.camera
        log_scale = INITIAL_LOG_SCALE + SCALE_STEP * camera[..., CAMERA_DIM - 1:]
        return HandLatent(latent.theta, latent.beta, torch.cat([camera[..., :CAMERA_DIM - 1], log_scale], dim=-1))

    def decode(self, latent: HandLatent) -> tuple[Tensor, Tensor]:
        """(joints3d (B, T, 2, 21, 3), joints2d (B, T, 2, 21, 2)) of a latent (B, T, 2, *)."""
        outs = [self.hands[h](latent.theta[:, :, h], latent.beta[:, :, h], latent.camera[:, :, h], vertices=False)
                for h in range(len(SIDES))]
        return torch.stack([o.joints3d for o in outs], dim=2), torch.stack([o.joints2d for o in outs], dim=2)


# ---------------------------------------------------------------------------------------------
# Eq. 4: inference module

def hand_partitions(kind: str = "spatial", hands: int = 1) -> Tensor:
    """Binary neighbour-type matrices A_k (K, V, V), V = 21 * hands, with sum_k A_k = A + I.

    ``A_k[i, j] = 1`` when j is a neighbour of type k of i (itself included in type 0). spatial:
    Yan et al.'s spatial configuration about the wrist (0 root: same hop distance from the wrist,
    i.e. i itself; 1 centripetal: the parent; 2 centrifugal: the children); uniform: one type.
    With several hands the graph holds each hand's joints (hand h: nodes 21h..21h+20) and no edge
    between hands.
    """
    if kind not in PARTITIONS:
        raise ValueError(f"finetune.hma.partition: {kind!r} unknown; known: {', '.join(PARTITIONS)}")
    adjacency = np.eye(NUM_HAND_JOINTS)
    for a, b in HAND_EDGES:
        adjacency[a, b] = adjacency[b, a] = 1
    if kind == "uniform":
        parts = adjacency[None]
    else:
        hops = hop_distance(NUM_HAND_JOINTS, HAND_EDGES, ROOT)
        nearer, farther = hops[None, :] < hops[:, None], hops[None, :] > hops[:, None]  # [i, j]: j vs i
        parts = np.stack([adjacency * (~nearer & ~farther), adjacency * nearer, adjacency * farther])
    eye = np.eye(hands)
    return torch.tensor(np.stack([np.kron(eye, part) for part in parts]), dtype=torch.float32)


class HandGraphConv(nn.Module):
    """Eq. 4 with ST-GCN's released normalisation: ``Z = sum_k (D^-1 A_k o M) X W_k``, ``D^ii = sum_k sum_j A_k^ij``.

    Each node averages its whole neighbourhood (itself included) before the neighbourhood is split
    into the K types, and the learnable edge importance M (V, V, initialised to ones, shared by
    the types as in the equation) scales that operator, as Yan et al.'s code does
    (``net/utils/graph.py``: ``normalize_digraph`` of A + I, then the partitions, then
    ``A * edge_importance``). Eq. 4's per-type degrees on both sides divide an edge i -> j of type
    k by the root of j's degree in type k, which is 0 where j has no neighbour of that type (the
    wrist has no parent, a fingertip no child): with Yan et al.'s 0.001 added, the wrist -> child
    and DIP -> tip edges weighed 31.6 and all others at most 1. Here every edge into node i
    weighs 1 / (its neighbours + 1), at most 1/2, at the start, and no degree can reach zero.
    x (B, C, T, V) -> (B, C_out, T, V).
    """

    def __init__(self, in_channels: int, out_channels: int, partitions: Tensor) -> None:
        super().__init__()
        self.register_buffer("partitions", partitions)                            # (K, V, V) binary A_k
        self.importance = nn.Parameter(torch.ones(partitions.shape[-2:]))         # M
        self.conv = nn.Conv2d(in_channels, out_channels * len(partitions), kernel_size=1)  # W_k

    def operators(self) -> Tensor:
        """(K, V, V) ``D^-1 A_k o M``: row i weighs node i's neighbours j of type k."""
        degree = self.partitions.sum(dim=(0, 2))                                  # (V,) |N(i)| + 1
        return self.partitions / degree[:, None] * self.importance

    def forward(self, x: Tensor) -> Tensor:
        b, _, t, v = x.shape
        y = self.conv(x).view(b, len(self.partitions), -1, t, v)
        return torch.einsum("bkctj,kij->bcti", y, self.operators())


class InferenceModule(nn.Module):
    """ST-GCN on both hands' 3D joints (B, T, 2, 21, 3) -> logits (B, classes).

    hand_fusion ``graph``: one graph of 42 joints (each hand's bones, no edge between the hands),
    one network, global average pooling over time and both hands' joints, one classifier.
    ``logits``: the same network (shared weights) on each hand's 21-joint graph, the two hands'
    logits summed (late fusion, as the paper fuses streams).
    """

    def __init__(self, num_classes: int, layers: Sequence[Sequence[int]], kernel: int = 9,
                 partition: str = "spatial", hand_fusion: str = "graph", dropout: float = 0.0) -> None:
        super().__init__()
        self.hand_fusion = hand_fusion
        partitions = hand_partitions(partition, len(SIDES) if hand_fusion == "graph" else 1)
        nodes = partitions.shape[-1]
        self.data_bn = nn.BatchNorm1d(3 * nodes)
        blocks, channels = [], 3
        for number, (out_channels, stride) in enumerate(layers):
            blocks.append(Block(channels, out_channels, stride, partitions, kernel, dropout, residual=number > 0,
                                conv=HandGraphConv))
            channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, joints: Tensor) -> Tensor:
        batch, length = joints.shape[:2]
        if self.hand_fusion == "graph":
            x = joints.reshape(batch, length, -1, 3)                                   # (B, T, 42, 3)
        else:
            x = joints.transpose(1, 2).reshape(batch * len(SIDES), length, -1, 3)     # (2B, T, 21, 3)
        b, t, v, c = x.shape
        x = self.data_bn(x.permute(0, 2, 3, 1).reshape(b, v * c, t)).view(b, v, c, t).permute(0, 2, 3, 1)
        logits = self.head(self.dropout(self.blocks(x).mean(dim=(2, 3))))
        return logits if self.hand_fusion == "graph" else logits.view(batch, len(SIDES), -1).sum(1)


# ---------------------------------------------------------------------------------------------
# The model

class HMAOutput(NamedTuple):
    """logits (B, C); latent (B, T, 2, *); joints3d (B, T, 2, 21, 3); joints2d (B, T, 2, 21, 2)."""

    logits: Tensor
    latent: HandLatent
    joints3d: Tensor
    joints2d: Tensor


class HMA(nn.Module):
    """Encoder, hand-model-aware decoder, inference module: crop (B, T, 2, S, S, 3) uint8 -> ``HMAOutput``."""

    def __init__(self, num_classes: int, config: HMAConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or HMAConfig()
        self.encoder = VisualEncoder(config.arch, config.width)
        self.decoder = HMADecoder(self.encoder.resnet.out_features, config.num_pca, config.mano_dir)
        self.inference = InferenceModule(num_classes, config.gcn_layers, config.temporal_kernel, config.partition,
                                         config.hand_fusion, config.dropout)

    def forward(self, crop: Tensor) -> HMAOutput:
        latent = self.decoder(self.encoder(crop))
        joints3d, joints2d = self.decoder.decode(latent)
        joints = joints3d
        if self.config.joint_frame == "camera":  # c_r J3D: the hand's orientation in the image too
            joints = joints3d @ camera_rotation(latent.camera.float()).transpose(-1, -2)
        return HMAOutput(self.inference(joints), latent, joints3d, joints2d)


# ---------------------------------------------------------------------------------------------
# Eq. 6-9: losses

def _reduce(terms: Tensor, count: Tensor | float, reduction: str, joints: bool = True) -> Tensor:
    """One loss from its terms (B, ..., J) (``joints``: the last axis holds joints) or (B, ...).

    sum: the paper's sums over frames, hands and joints, averaged over the batch's clips (axis 0);
    frame: summed over the joints of a hand, averaged over hands, frames and clips (one hand pose
    is one term); mean: divided by ``count``, the number of terms that can be non-zero.
    """
    if reduction == "sum":
        return terms.sum() / terms.shape[0]
    if reduction == "frame":
        return terms.sum() / (terms.shape[:-1].numel() if joints else terms.numel())
    return terms.sum() / torch.as_tensor(count, dtype=terms.dtype, device=terms.device).clamp(min=1)


def spatial_consistency_loss(joints2d: Tensor, pose: Tensor, epsilon: float = EPSILON, root: int = ROOT,
                             reduction: str = "sum", scale: float = 1.0) -> Tensor:
    """Eq. 6: ``sum_t sum_j 1(c(t, j) >= epsilon) ||J~2D(t, j) - J2D(t, j)||_1``, root-relative.

    joints2d (B, ..., 21, 2) projected; pose (B, ..., 21, 3) the pseudo-label (x, y, c) in the same
    units. Both are taken relative to their root joint (the wrist), so a translated prediction of
    the right shape costs nothing; a joint counts when it and the root have c >= epsilon. ``scale``
    converts those units to the loss's (e.g. 128: normalised crop units to pixels of a 256-px
    crop); the L1 norm makes it a factor on the loss.
    """
    predicted = joints2d.float() - joints2d[..., root:root + 1, :].float()
    target = pose[..., :2] - pose[..., root:root + 1, :2]
    confidence = pose[..., 2]
    counted = (confidence >= epsilon) & (confidence[..., root:root + 1] >= epsilon)
    error = scale * (predicted - target).abs().sum(-1) * counted
    return _reduce(error, counted.sum(), reduction)


def joint_weights(alpha: Sequence[float] = ALPHA, groups: Sequence[Sequence[int]] = TEMPORAL_GROUPS) -> Tensor:
    """(21,) alpha_i of the group S_i each joint belongs to."""
    weights = torch.zeros(NUM_HAND_JOINTS)
    for a, group in zip(alpha, groups):
        weights[list(group)] = float(a)
    return weights


def temporal_consistency_loss(joints3d: Tensor, alpha: Sequence[float] = ALPHA,
                              groups: Sequence[Sequence[int]] = TEMPORAL_GROUPS, reduction: str = "sum") -> Tensor:
    """Eq. 7: ``sum_i alpha_i sum_{j in S_i} sum_{t>=2} ||J~3D(t, j) - J~3D(t-1, j)||_2^2``.

    joints3d (B, T, ..., 21, 3); time is axis 1. Zero for a static sequence.
    """
    velocity = (joints3d[:, 1:] - joints3d[:, :-1]).float().pow(2).sum(-1)       # (B, T-1, ..., 21)
    terms = velocity * joint_weights(alpha, groups).to(velocity.device)
    return _reduce(terms, terms.numel(), reduction)


def regularisation_loss(theta: Tensor, beta: Tensor, w_beta: float = W_BETA, reduction: str = "sum") -> Tensor:
    """Eq. 8: ``||theta||^2 + w_beta ||beta||^2`` per frame and hand; theta (B, ..., P), beta (B, ..., 10)."""
    terms = theta.float().pow(2).sum(-1) + w_beta * beta.float().pow(2).sum(-1)
    return _reduce(terms, terms.numel(), reduction, joints=False)


def hma_losses(output: HMAOutput, batch: Mapping[str, Any], config: HMAConfig) -> dict[str, Tensor]:
    """The four terms of eq. 9, by name: ce (L_cla), spa, tem, reg; weighted by ``loss_weights``."""
    return {
        "ce": F.cross_entropy(output.logits.float(), batch["label"]),
        "spa": spatial_consistency_loss(output.joints2d, batch["pose"], config.epsilon, ROOT, config.reduction,
                                        config.spa_scale),
        "tem": temporal_consistency_loss(output.joints3d, config.alpha, config.temporal_groups, config.reduction),
        "reg": regularisation_loss(output.latent.theta, output.latent.beta, config.w_beta, config.reduction),
    }


def projected_pck(joints2d: Tensor, pose: Tensor, threshold: float, epsilon: float = EPSILON,
                  root: int = ROOT) -> tuple[int, int]:
    """(correct, counted): root-relative projected joints within ``threshold`` (same units) of the
    pseudo-label, over the joints other than the root where it and the root have c >= epsilon."""
    predicted = joints2d.float() - joints2d[..., root:root + 1, :].float()
    target = pose[..., :2] - pose[..., root:root + 1, :2]
    confidence = pose[..., 2]
    counted = (confidence >= epsilon) & (confidence[..., root:root + 1] >= epsilon)
    counted[..., root] = False
    close = (predicted - target).norm(dim=-1) <= threshold
    return int((close & counted).sum()), int(counted.sum())


# ---------------------------------------------------------------------------------------------
# The finetune stage's interface

def _unwrap(model: nn.Module) -> HMA:
    return getattr(model, "module", model)


def build(num_classes: int, cfg: Mapping[str, Any]) -> HMA:
    """HMA from the ``finetune.hma`` settings; the encoder from ``cfg["checkpoint"]`` when set (a local
    torchvision ResNet state dict, ``signpipe.models.pretrained.load_resnet2d``), its ``init`` recorded."""
    config = HMAConfig.from_settings(cfg)
    model = HMA(num_classes, config)
    model.init = load_resnet2d(model.encoder.resnet, config.checkpoint, "finetune.hma.checkpoint") \
        if config.checkpoint else "random"
    return model


def dataset(shards: Shards, split: str, train: bool, cfg: Mapping[str, Any]) -> HandClips:
    """Clips of ``num_frames`` frames of hands shards (crops and poses) of one split."""
    config = HMAConfig.from_settings(cfg)
    return HandClips(shards, split, train, config.size, config.crop_fraction, config.flip,
                     int(cfg.get("num_frames", NUM_FRAMES)), int(cfg.get("seed", 0)))


def forward(model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
    """Logits (B, C) of a batch of hand clips."""
    return model(batch["crop"]).logits


def losses(model: nn.Module, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], Tensor]:
    """Eq. 9's terms of a training batch and its logits."""
    output = model(batch["crop"])
    return hma_losses(output, batch, _unwrap(model).config), output.logits


def figures(model: nn.Module, data: ShardDataset, out_dir: Path, settings: Mapping[str, Any]) -> list[Path]:
    """``hands.png``: crops of a few videos with the pseudo-label and the decoded, projected joints (Fig. 3)."""
    from signpipe.models.hma_figures import draw_hands

    return [draw_hands(_unwrap(model), data, Path(out_dir) / "hands.png")]


SPEC = ModelSpec(name="hma", build=build, dataset=dataset, forward=forward, losses=losses, defaults=DEFAULTS,
                 figures=figures, validate_objective=True)
"""``validate_objective``: the plateau watches eq. 9 on the val split, "the validation loss" of the
loss the paper trains with (§4). The val cross-entropy alone stays at chance while the decoder is
still fitting the hands and decayed the lr mid-fit (docs/hma.md, Schedule)."""
