"""GLE-Net, the global-local enhancement network (Hu et al., TOMM 2021), on full RGB frames.

A pseudo-3D ResNet (§5.1: conv1 5x7x7; every 3x3 conv a 1x3x3 spatial then a 3x1x1 temporal
conv) whose stages 1-2 are shared, then two streams with their own stages 3-5 and classifier
(Fig. 4):

- the **global stream** enhances its input with self-attention over all T*H*W positions
  (:class:`GlobalEnhancement`, Eqs. 2-3), placed after ``pool2`` by default (Table 2);
- the **local stream** resamples the shared feature map per time step so that salient regions
  get more pixels (:class:`LocalEnhancement`, Eqs. 4-5), guided by a saliency map computed
  from the global stream's res4 output (:func:`trilinear_saliency`, Eq. 6; Table 3);
- **mutual promotion** (:func:`mutual_promotion_loss`, Eqs. 7-8) ties the two streams'
  predictions; the total loss is Eq. 1, ``lambda (L_com + L_global + L_local) + (1 - lambda) L_mu``
  (:func:`equation1_weights`), and the prediction at test is ``z_com = z_global + z_local``.

Training follows §5.1 in two phases (``SPEC.phases``): ``streams`` trains both streams on their
own cross-entropy (the shared stages get both gradients; the sum and the mutual term weigh 0),
``joint`` trains everything with Eq. 1. SGD, lr 5e-3, momentum 0.9, weight decay 1e-4, x0.1
when the validation loss stops falling, dropout 0.5. Input: short side 256, a random 224 crop
and horizontal flip in training, the centre 256 x 256 at test; every other frame, then 32
consecutive ones (a random window in training, the centred one at test).

Where the paper is silent the choice is a config key (``finetune.glenet``), listed with its
reason in docs/glenet.md, which also maps every equation to the code here. Nothing is ever
downloaded; ``checkpoint`` may name a local state dict.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from signpipe.clips import FrameClips
from signpipe.data import NUM_FRAMES, SAMPLINGS
from signpipe.models import ModelSpec, Phase, Shards
from signpipe.models.pretrained import load_p3d
from signpipe.models.rgb3d import KINETICS_MEAN, KINETICS_STD
from signpipe.settings import from_config

log = logging.getLogger(__name__)

DEPTHS = {10: ("basic", (1, 1, 1, 1)), 18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
          50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)), 152: ("bottleneck", (3, 8, 36, 3))}
"""ResNet depth -> block kind and blocks per stage (res2..res5), as He et al.; 50 is the paper's."""
POSITIONS = ("pool2", "res3", "res4", "res5", "none")
"""Where the global enhancement module may sit in the global stream (Table 2); ``none``: nowhere,
the ablation of the local enhancement alone (Table 4's "+LEM")."""
SALIENCY_STAGES = ("res3", "res4", "res5")
"""Global-stream stages the saliency map may be computed from (Table 3)."""
LAMBDA = 0.2
"""lambda of Eq. 1 (Fig. 6: best at 0.2)."""


@dataclass
class GLENetConfig:
    """The network and input settings of ``finetune.glenet`` (training settings are separate)."""

    depth: int = 50
    """Backbone depth (DEPTHS); the paper's 3D-ResNet-50."""
    width: int = 64
    """Channels of conv1 and res2's blocks (ResNet: 64); stages double it."""
    position: str = "pool2"
    """Where the global enhancement module sits: pool2 | res3 | res4 | res5 (Table 2: pool2), or
    none (an ablation: two streams with the local enhancement only)."""
    attention_stride: int = 2
    """Keys and values (B, C of Eq. 2) are max-pooled spatially by this factor before attention
    (the non-local network's subsampling, [66] §3.3); 1 = full attention over all T*H*W positions."""
    saliency_stage: str = "res4"
    """Global-stream stage whose output Y gives the saliency map (Table 3: res4)."""
    detach_saliency: bool = False
    """Stop the local loss's gradient at the saliency input Y (True), so that it trains only the
    local stream and the shared stages. The paper detaches nothing ("jointly finetune the whole
    framework"): the sampling (Eqs. 4-5) is piecewise linear in S, so the local stream's loss
    also trains the global stream's stages up to Y (docs/glenet.md: an ablation, issue 24)."""
    max_magnification: float = 4.0
    """Cap on how much the sampling may enlarge a row or column (>= 1; inf = no cap)."""
    dropout: float = 0.5
    short_side: int = 256
    """Frames are resized so their short side is this (§5.1: 256)."""
    crop: int = 224
    """Side of the random square crop in training (224)."""
    test_crop: int = 256
    """Side of the centred square crop at test (256)."""
    frame_step: int = 2
    """Every ``frame_step``-th frame is kept before the 32 are drawn (§5.1: every other frame)."""
    sampling: str = "window"
    """How the 32 frames are drawn from those kept: ``window``, 32 consecutive ones at a random
    start in training and centred at test (§5.1: "32 frames temporally by random and center
    selecting", the 3D-CNN's reading, against TSN's segments for the 2D-CNN), or ``segments``,
    one per equal segment over the whole video (signpipe's other models)."""
    flip: bool = True
    """Random horizontal flip in training (§5.1)."""
    subtract_mean: bool = False
    """Not in the paper: each normalised pixel minus its mean over the clip, so what does not move
    is 0 (the CPU demo from random weights; ``signpipe.models.rgb3d``)."""
    checkpoint: str | None = None
    """Local state dict to start from: a torchvision ResNet of the same depth (ImageNet), inflated
    into both streams, or a GLE-Net state dict (``signpipe.models.pretrained``); None: random."""


def settings(cfg: Mapping[str, Any] | None) -> GLENetConfig:
    """The :class:`GLENetConfig` of a settings block; a bad value names its key."""
    arch = from_config(GLENetConfig, cfg)
    where = "finetune.glenet"
    if arch.depth not in DEPTHS:
        raise ValueError(f"{where}.depth: {arch.depth} unknown; known: {', '.join(map(str, DEPTHS))}")
    if arch.position not in POSITIONS:
        raise ValueError(f"{where}.position: {arch.position!r} unknown; known: {', '.join(POSITIONS)}")
    if arch.saliency_stage not in SALIENCY_STAGES:
        raise ValueError(f"{where}.saliency_stage: {arch.saliency_stage!r} unknown; known: {', '.join(SALIENCY_STAGES)}")
    if arch.max_magnification < 1:
        raise ValueError(f"{where}.max_magnification: {arch.max_magnification} < 1; a cap below 1 cannot hold")
    if max(arch.crop, arch.test_crop) > arch.short_side:
        raise ValueError(f"{where}.crop/test_crop: {arch.crop}/{arch.test_crop} larger than short_side "
                         f"{arch.short_side}; crops lie inside the frame: raise short_side or lower the crop")
    if arch.sampling not in SAMPLINGS:
        raise ValueError(f"{where}.sampling: {arch.sampling!r} unknown; known: {', '.join(SAMPLINGS)}")
    return arch


# ---------------------------------------------------------------- the pseudo-3D ResNet (§5.1)

def spatial_conv(cin: int, cout: int, stride: int = 1) -> nn.Conv3d:
    """The 1x3x3 half of a pseudo-3D 3x3 conv (stride spatial only)."""
    return nn.Conv3d(cin, cout, (1, 3, 3), stride=(1, stride, stride), padding=(0, 1, 1), bias=False)


def temporal_conv(channels: int) -> nn.Conv3d:
    """The 3x1x1 half of a pseudo-3D 3x3 conv."""
    return nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0), bias=False)


class P3DConv(nn.Sequential):
    """A ResNet 3x3 conv in the pseudo-3D style (P3D-A, [47]): 1x3x3 spatial, BN, ReLU, 3x1x1
    temporal. (B, cin, T, H, W) -> (B, cout, T, H/stride, W/stride); the block adds BN after it."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(spatial_conv(cin, cout, stride), nn.BatchNorm3d(cout), nn.ReLU(inplace=True),
                         temporal_conv(cout))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    if cin == cout and stride == 1:
        return nn.Identity()
    return nn.Sequential(nn.Conv3d(cin, cout, 1, stride=(1, stride, stride), bias=False), nn.BatchNorm3d(cout))


class BasicBlock(nn.Module):
    """ResNet-18/34 block with pseudo-3D convs: P3D, BN, ReLU, P3D, BN, + shortcut, ReLU."""

    expansion = 1

    def __init__(self, cin: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(P3DConv(cin, channels, stride), nn.BatchNorm3d(channels), nn.ReLU(inplace=True),
                                  P3DConv(channels, channels), nn.BatchNorm3d(channels))
        self.shortcut = _shortcut(cin, channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """ResNet-50+ block: 1x1x1, P3D 3x3 (with the stride), 1x1x1 to 4x channels, + shortcut."""

    expansion = 4

    def __init__(self, cin: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out = channels * self.expansion
        self.body = nn.Sequential(
            nn.Conv3d(cin, channels, 1, bias=False), nn.BatchNorm3d(channels), nn.ReLU(inplace=True),
            P3DConv(channels, channels, stride), nn.BatchNorm3d(channels), nn.ReLU(inplace=True),
            nn.Conv3d(channels, out, 1, bias=False), nn.BatchNorm3d(out))
        self.shortcut = _shortcut(cin, out, stride)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


def make_stage(kind: str, cin: int, channels: int, blocks: int, stride: int) -> nn.Sequential:
    """One ResNet stage: ``blocks`` blocks, the first with ``stride`` (spatial) and the channel change."""
    block = BLOCKS[kind]
    layers = [block(cin, channels, stride)]
    layers += [block(channels * block.expansion, channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class SharedStages(nn.Module):
    """Stages 1-2 with their pools, as the non-local I3D ResNet ([66] Table 1) that names ``pool2``:
    conv1 5x7x7 stride (1, 2, 2), pool1 3x3x3 stride 2, res2, pool2 3x1x1 stride (2, 1, 1).
    Clips (B, 3, T, S, S) -> (B, 4w or w, T/4, S/4, S/4) (w = width; 4w for bottleneck blocks)."""

    def __init__(self, kind: str, blocks: int, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv3d(3, width, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
                                   nn.BatchNorm3d(width), nn.ReLU(inplace=True))
        self.pool1 = nn.MaxPool3d(3, stride=2, padding=1)
        self.res2 = make_stage(kind, width, width, blocks, 1)
        self.pool2 = nn.MaxPool3d((3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0))
        self.channels = width * BLOCKS[kind].expansion

    def forward(self, clip: Tensor) -> Tensor:
        return self.pool2(self.res2(self.pool1(self.conv1(clip))))


class Stream(nn.Module):
    """Stages 3-5 and a classifier (global average pool, dropout, linear): one stream of Fig. 4.
    ``forward`` returns the logits and the output of every stage."""

    def __init__(self, kind: str, blocks: Sequence[int], cin: int, width: int, num_classes: int, dropout: float,
                 enhancement_at: str | None = None, enhancement: nn.Module | None = None) -> None:
        super().__init__()
        expansion = BLOCKS[kind].expansion
        self.res3 = make_stage(kind, cin, 2 * width, blocks[0], 2)
        self.res4 = make_stage(kind, 2 * width * expansion, 4 * width, blocks[1], 2)
        self.res5 = make_stage(kind, 4 * width * expansion, 8 * width, blocks[2], 2)
        self.enhancement_at, self.enhancement = enhancement_at, enhancement
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * width * expansion, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        stages = {}
        if self.enhancement_at == "pool2":
            x = self.enhancement(x)
        for name in ("res3", "res4", "res5"):
            x = getattr(self, name)(x)
            if self.enhancement_at == name:
                x = self.enhancement(x)
            stages[name] = x
        return self.fc(self.dropout(x.mean((2, 3, 4)))), stages


def stage_channels(kind: str, width: int) -> dict[str, int]:
    """Output channels of pool2 and res3..res5."""
    e = BLOCKS[kind].expansion
    return {"pool2": width * e, "res3": 2 * width * e, "res4": 4 * width * e, "res5": 8 * width * e}


class P3DResNet(nn.Module):
    """The one-stream baseline (Table 4's 3D-R50): the same backbone without enhancement modules.
    uint8 clips (B, T, S, S, 3) -> logits (B, classes); ``subtract_mean`` as GLE-Net's."""

    def __init__(self, num_classes: int, depth: int = 50, width: int = 64, dropout: float = 0.5,
                 subtract_mean: bool = False) -> None:
        super().__init__()
        self.subtract_mean = subtract_mean
        kind, blocks = DEPTHS[depth]
        self.shared = SharedStages(kind, blocks[0], width)
        self.stream = Stream(kind, blocks[1:], self.shared.channels, width, num_classes, dropout)
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1))

    def forward(self, clip: Tensor) -> Tensor:
        return self.stream(self.shared(normalise(clip, self.mean, self.std, self.subtract_mean)))[0]


def normalise(clip: Tensor, mean: Tensor, std: Tensor, subtract_mean: bool = False) -> Tensor:
    """uint8 clips (B, T, S, S, 3) -> float (B, 3, T, S, S), Kinetics mean and std; minus each
    pixel's mean over T with ``subtract_mean``."""
    x = (clip.permute(0, 4, 1, 2, 3).float() / 255 - mean) / std
    return x - x.mean(2, keepdim=True) if subtract_mean else x


# ---------------------------------------------------------------- global enhancement (Eqs. 2-3)

class GlobalEnhancement(nn.Module):
    """Eqs. 2-3: X~ = beta f(C E^T) + X, E_ij = softmax_j(A_i . B_j), over the N = T*H*W positions.

    A, B, C come from three 1x1x1 convs with X's channels (§4.2: "the same shape as X"). The
    output at position i aggregates C over all j weighted by E_ij, the impact of j on i, i.e.
    column i of C E^T (the paper writes C E with E indexed as defined). beta starts at 0, so the
    module starts as the identity. With ``stride`` > 1, B and C are max-pooled spatially first
    (N_k = T * ceil(H/s) * ceil(W/s) keys), as the non-local network does to fit its memory.
    (B, C, T, H, W) -> the same.
    """

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.query = nn.Conv3d(channels, channels, 1)   # A
        self.key = nn.Conv3d(channels, channels, 1)     # B
        self.value = nn.Conv3d(channels, channels, 1)   # C
        self.beta = nn.Parameter(torch.zeros(1))
        self.stride = stride

    def _keys(self, x: Tensor, conv: nn.Conv3d) -> Tensor:
        y = conv(x)
        if self.stride > 1:
            y = F.max_pool3d(y, (1, self.stride, self.stride), ceil_mode=True)
        return y.flatten(2).transpose(1, 2)                                              # (B, N_k, C)

    def enhancement_map(self, x: Tensor) -> Tensor:
        """E (B, N, N_k) of Eq. 2: row i is the softmax over j of A_i . B_j."""
        a = self.query(x).flatten(2).transpose(1, 2)                                     # (B, N, C)
        return torch.softmax(a @ self._keys(x, self.key).transpose(1, 2), dim=-1)

    def aggregate(self, x: Tensor) -> Tensor:
        """f(C E^T): (B, C, T, H, W), without materialising E where the attention kernel allows.
        In float32 even under mixed precision: the unscaled products A_i . B_j overflow float16."""
        b, c, t, h, w = x.shape
        a = self.query(x).flatten(2).transpose(1, 2).unsqueeze(1)                        # (B, 1, N, C)
        k, v = self._keys(x, self.key).unsqueeze(1), self._keys(x, self.value).unsqueeze(1)
        with torch.autocast(x.device.type, enabled=False):
            # contiguous (B, 1, N, C): transposed views make the fused kernels decline and the
            # math path materialise E (N x N_k floats per clip); contiguous, the flash kernel runs
            a, k, v = (t.float().contiguous() for t in (a, k, v))
            out = F.scaled_dot_product_attention(a, k, v, scale=1.0)                     # Eq. 2: no 1/sqrt(C)
        return out.squeeze(1).transpose(1, 2).reshape(b, c, t, h, w).to(x.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return self.beta * self.aggregate(x) + x


# ---------------------------------------------------------------- local enhancement (Eqs. 4-6)

def trilinear_saliency(y: Tensor) -> Tensor:
    """Eq. 6 per time step: S = mean_c( f( f(Y_t) Y_t^T ) Y_t ), f = softmax along the last axis.

    Y_t (C2, N2) is the global stream's feature at time t: f(Y_t) normalises each channel over
    the positions, f(Y_t) Y_t^T (C2, C2) relates channels and is normalised per row, and the
    channel mean of the product with Y_t is the saliency of each position (TASN's trilinear
    attention, [75]). y (B, C2, T, h, w) -> S (B, T, h, w), float32.
    """
    b, c, t, h, w = y.shape
    with torch.autocast(y.device.type, enabled=False):                                  # float32 under AMP too
        yt = y.float().permute(0, 2, 1, 3, 4).reshape(b * t, c, h * w)
        channels = torch.softmax(yt, dim=-1) @ yt.transpose(1, 2)                        # (B*T, C2, C2)
        return (torch.softmax(channels, dim=-1) @ yt).mean(1).reshape(b, t, h, w)


def inverse_cdf(mass: Tensor, max_magnification: float = float("inf")) -> Tensor:
    """Eqs. 4-5 along one axis: where each of the n output samples is taken from, in [0, 1].

    ``mass`` (..., n) >= 0 is the saliency of each input row or column (max(S_i*) of Eq. 4).
    Its distribution function P, piecewise linear with P(k/n) = sum_{i<=k} mass_i / sum mass
    (each input pixel a bin of width 1/n), is inverted at the output pixel centres (k + 0.5)/n:
    a bin of mass m gets n m / sum(mass) output samples, its magnification. A uniform mass gives
    the centres themselves, the identity. Magnifications above ``max_magnification`` are pulled
    in by mixing with the uniform mass, d' = (1 - a) d + a, the least a that caps the peak
    (the order of the bins is kept). Returns (..., n), ascending.
    """
    n = mass.shape[-1]
    mass = mass.float().clamp_min(0)
    density = (mass + 1e-6 * mass.amax(-1, keepdim=True) + 1e-12)
    density = density / density.mean(-1, keepdim=True)                                   # mean 1: uniform = 1
    peak = density.amax(-1, keepdim=True)
    if np.isfinite(max_magnification):
        mix = ((peak - max_magnification) / (peak - 1).clamp_min(1e-12)).clamp(0, 1)
        density = (1 - mix) * density + mix
    edges = torch.cat([torch.zeros_like(density[..., :1]), density.cumsum(-1) / n], -1)  # P at k/n, (..., n+1)
    edges = edges / edges[..., -1:]
    centres = (torch.arange(n, device=mass.device, dtype=edges.dtype) + 0.5) / n
    centres = centres.expand(*mass.shape[:-1], n).contiguous()
    bins = (torch.searchsorted(edges.contiguous(), centres, right=True) - 1).clamp(0, n - 1)
    low = edges.gather(-1, bins)
    width = (edges.gather(-1, bins + 1) - low).clamp_min(1e-12)
    return (bins + ((centres - low) / width).clamp(0, 1)) / n


def sampling_grid(saliency: Tensor, max_magnification: float = float("inf")) -> Tensor:
    """Eqs. 4-5: saliency maps (..., H, W) -> grid_sample grids (..., H, W, 2) (x, y in [-1, 1],
    align_corners=False). Columns follow P_x of the column maxima, rows P_y of the row maxima."""
    h, w = saliency.shape[-2:]
    x = inverse_cdf(saliency.amax(-2), max_magnification)                                # (..., W)
    y = inverse_cdf(saliency.amax(-1), max_magnification)                                # (..., H)
    grid = torch.stack([x.unsqueeze(-2).expand(*x.shape[:-1], h, w), y.unsqueeze(-1).expand(*y.shape[:-1], h, w)], -1)
    return grid * 2 - 1


def resample(x: Tensor, grid: Tensor) -> Tensor:
    """Eq. 5: each time step of x (B, C, T, H, W) read at grid (B, T, H, W, 2) (bilinear)."""
    b, c, t, h, w = x.shape
    frames = x.transpose(1, 2).reshape(b * t, c, h, w)
    out = F.grid_sample(frames, grid.reshape(b * t, h, w, 2).to(frames.dtype), mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out.reshape(b, t, c, h, w).transpose(1, 2)


def region_magnification(grid: Tensor, boxes: Tensor) -> Tensor:
    """How much a sampling grid enlarges a region: the share of output samples that fall in the
    box over the share of the input the box covers (1: unchanged, > 1: more pixels, < 1: fewer).

    grid (..., H, W, 2) as :func:`sampling_grid` gives it (separable: columns share x, rows y);
    boxes (..., 4) as (x0, y0, x1, y1) in [0, 1] of the input. Returns (...,). Used to check that
    the local stream enlarges the face (benchmarks/glenet.py).
    """
    x = (grid[..., 0, :, 0] + 1) / 2                                                     # (..., W)
    y = (grid[..., :, 0, 1] + 1) / 2                                                     # (..., H)
    x0, y0, x1, y1 = (b.unsqueeze(-1) for b in boxes.to(grid.dtype).unbind(-1))
    inside = ((x >= x0) & (x <= x1)).to(grid.dtype).mean(-1) * ((y >= y0) & (y <= y1)).to(grid.dtype).mean(-1)
    return inside / ((x1 - x0) * (y1 - y0)).squeeze(-1).clamp_min(1e-12)


class LocalEnhancement(nn.Module):
    """Eqs. 4-6: saliency from the global stream's Y, upsampled to the local stream's input X,
    then X resampled per time step so salient rows and columns get more pixels.

    ``forward(x, y)``: x (B, C, T, H, W), y (B, C2, T2, h, w) -> (sampled x, saliency S
    (B, T, H, W), grid (B, T, H, W, 2)).
    """

    def __init__(self, max_magnification: float = 4.0, detach: bool = False) -> None:
        super().__init__()
        self.max_magnification, self.detach = max_magnification, detach

    def forward(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        saliency = trilinear_saliency(y.detach() if self.detach else y)
        saliency = F.interpolate(saliency.unsqueeze(1), size=x.shape[2:], mode="trilinear",
                                 align_corners=False).squeeze(1)                         # (B, T, H, W)
        grid = sampling_grid(saliency, self.max_magnification)
        return resample(x, grid), saliency, grid


# ---------------------------------------------------------------- the network (Fig. 4)

class GLEOutput(NamedTuple):
    """What GLE-Net computes for a batch: the streams' logits z_global, z_local (B, classes),
    their sum z_com (the prediction), the saliency (B, T', H', W') and sampling grid
    (B, T', H', W', 2) at the local stream's input (T' = T/4, H' = S/4)."""

    z_global: Tensor
    z_local: Tensor
    z_com: Tensor
    saliency: Tensor
    grid: Tensor


class GLENet(nn.Module):
    """Fig. 4: shared stages 1-2, a global stream with the global enhancement module, a local
    stream fed by the local enhancement module. uint8 clips (B, T, S, S, 3) -> :class:`GLEOutput`."""

    def __init__(self, num_classes: int, arch: GLENetConfig | None = None) -> None:
        super().__init__()
        self.arch = arch = arch or GLENetConfig()
        kind, blocks = DEPTHS[arch.depth]
        self.shared = SharedStages(kind, blocks[0], arch.width)
        channels = stage_channels(kind, arch.width)
        enhancement = None if arch.position == "none" else GlobalEnhancement(channels[arch.position], arch.attention_stride)
        self.global_stream = Stream(kind, blocks[1:], channels["pool2"], arch.width, num_classes, arch.dropout,
                                    arch.position, enhancement)
        self.local_enhancement = LocalEnhancement(arch.max_magnification, arch.detach_saliency)
        self.local_stream = Stream(kind, blocks[1:], channels["pool2"], arch.width, num_classes, arch.dropout)
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1))

    @property
    def global_enhancement(self) -> GlobalEnhancement | None:
        """The global stream's enhancement module (at ``arch.position``; None for ``none``)."""
        return self.global_stream.enhancement

    def forward(self, clip: Tensor) -> GLEOutput:
        x = self.shared(normalise(clip, self.mean, self.std, self.arch.subtract_mean))  # pool2: (B, C, T', H', W')
        z_global, stages = self.global_stream(x)
        sampled, saliency, grid = self.local_enhancement(x, stages[self.arch.saliency_stage])
        z_local, _ = self.local_stream(sampled)
        return GLEOutput(z_global, z_local, z_global + z_local, saliency, grid)


# ---------------------------------------------------------------- losses (Eqs. 1, 7-8)

def mutual_promotion_loss(z1: Tensor, z2: Tensor) -> Tensor:
    """Eqs. 7-8: L_mu = KL(p2 || p1) + KL(p1 || p2) of the streams' softmax, mean over the batch.

    Written as sum_m (p1 - p2)(log p1 - log p2), which is that sum term by term: >= 0,
    symmetric, 0 for equal predictions. Gradients reach both streams.
    """
    log1, log2 = F.log_softmax(z1.float(), -1), F.log_softmax(z2.float(), -1)
    return ((log1.exp() - log2.exp()) * (log1 - log2)).sum(-1).mean()


def equation1_weights(lam: float = LAMBDA) -> dict[str, float]:
    """Eq. 1's weights of the named terms: lambda for L_com, L_global, L_local; 1 - lambda for L_mu."""
    return {"com": lam, "global": lam, "local": lam, "mu": 1 - lam}


STREAMS_WEIGHTS = {"com": 0.0, "global": 1.0, "local": 1.0, "mu": 0.0}
"""Phase 1 (§5.1, "train the global stream and local stream separately"): each stream on its own label loss."""


def losses(model: nn.Module, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], Tensor]:
    """The four terms of Eq. 1 (unweighted; the phase's ``loss_weights`` weigh them) and z_com."""
    out: GLEOutput = model(batch["jpeg"])
    label = batch["label"]
    return {"com": F.cross_entropy(out.z_com.float(), label),
            "global": F.cross_entropy(out.z_global.float(), label),
            "local": F.cross_entropy(out.z_local.float(), label),
            "mu": mutual_promotion_loss(out.z_global, out.z_local)}, out.z_com


def forward(model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
    """Logits at test: z_com = z_global + z_local (§4.1, sum fusion)."""
    return model(batch["jpeg"]).z_com


def streams(model: nn.Module, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
    """z_com and each stream's logits, {"global": z_global, "local": z_local}, from one forward:
    what each stream contributes to the prediction (``predictions.h5``, ``log.csv``)."""
    out: GLEOutput = model(batch["jpeg"])
    return out.z_com, {"global": out.z_global, "local": out.z_local}


# ---------------------------------------------------------------- the spec

def build(num_classes: int, cfg: Mapping[str, Any]) -> GLENet:
    """GLE-Net of the block's sizes; weights from ``checkpoint`` when set (a torchvision ResNet
    inflated into both streams, or a GLE-Net state dict: ``signpipe.models.pretrained.load_p3d``),
    its ``init`` recorded on the model."""
    arch = settings(cfg)
    model = GLENet(num_classes, arch)
    kind, blocks = DEPTHS[arch.depth]
    model.init = load_p3d(model, arch.checkpoint, "finetune.glenet.checkpoint", kind == "bottleneck", blocks) \
        if arch.checkpoint else "random"
    return model


def dataset(shards: Shards, split: str, train: bool, cfg: Mapping[str, Any]) -> FrameClips:
    """§5.1's input (``signpipe.clips``): every ``frame_step``-th frame, then ``num_frames`` as
    ``sampling`` says; short side ``short_side``, a random ``crop`` and flip in training, the
    centred ``test_crop`` at test."""
    arch = settings(cfg)
    return FrameClips(shards, split, train, arch.short_side, arch.crop if train else arch.test_crop,
                      0.5 if arch.flip else 0.0, arch.frame_step, arch.sampling,
                      int(cfg.get("num_frames", NUM_FRAMES)), int(cfg.get("seed", 0)))


@torch.no_grad()
def saliency_figure(model: GLENet, data: FrameClips, out_dir: str | os.PathLike, cfg: Mapping[str, Any] | None = None,
                    videos: int = 3, columns: int = 8) -> Path:
    """``saliency.png``: for the first ``videos`` clips of ``data``, per shown frame the frame, its
    saliency map (Eq. 6) over it, and the frame resampled with the local stream's grid (Eqs. 4-5):
    what the local stream enlarges. Grids and maps are upsampled from the feature map's size
    (S/4) to the frame's, and each frame uses the feature map of its time (T/4 steps)."""
    from matplotlib.figure import Figure

    from signpipe.figures import save_figure

    items = data.__getitems__(list(range(min(videos, len(data)))))
    clips = torch.stack([item["jpeg"] for item in items])                                # (V, T, S, S, 3)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = model(clips.to(device))
    model.train(was_training)
    v, t, side = clips.shape[:3]
    shown = np.unique(np.linspace(0, t - 1, min(columns, t)).round().astype(int))
    fig = Figure(figsize=(1.6 * len(shown) + 1.2, 1.7 * 3 * len(items) + 0.4), layout="constrained")
    axes = np.asarray(fig.subplots(3 * len(items), len(shown), squeeze=False))
    low, high = float(out.saliency.min()), float(out.saliency.max())  # one colour scale for every map
    for n, item in enumerate(items):
        frames = clips[n].permute(0, 3, 1, 2).float()                                    # (T, 3, S, S)
        steps = (shown * out.saliency.shape[1] // t).tolist()
        saliency = F.interpolate(out.saliency[n, steps].unsqueeze(1).float().cpu(), size=(side, side),
                                 mode="bilinear", align_corners=False).squeeze(1)
        grid = F.interpolate(out.grid[n, steps].permute(0, 3, 1, 2).float().cpu(), size=(side, side),
                             mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
        warped = F.grid_sample(frames[shown], grid, mode="bilinear", padding_mode="border", align_corners=False)
        for col, frame in enumerate(shown):
            image = clips[n, frame].numpy()
            rows = ((image, None), (image, saliency[col].numpy()),
                    (warped[col].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy(), None))
            for r, (picture, overlay) in enumerate(rows):
                ax = axes[3 * n + r, col]
                ax.imshow(picture)
                if overlay is not None:
                    shading = ax.imshow(overlay, cmap="jet", alpha=0.5, vmin=low, vmax=high)
                ax.set_xticks([])
                ax.set_yticks([])
                if col == 0:
                    ax.set_ylabel(("frame", "saliency", "sampled")[r] + (f"\n{item['video_id']}" if r == 0 else ""),
                                  fontsize=9)
                if n == 0 and r == 0:
                    ax.set_title(f"frame {int(item['frames'][frame])}", fontsize=9)
    fig.colorbar(shading, ax=axes.ravel().tolist(), fraction=0.02, label="saliency (Eq. 6)")
    fig.suptitle("GLE-Net: saliency (Eq. 6) and\nwhat the local stream enlarges (Eqs. 4-5)", fontsize=10)
    return save_figure(fig, Path(out_dir) / "saliency.png")


def figures(model: nn.Module, data: FrameClips, out_dir: Path, cfg: Mapping[str, Any]) -> None:
    """The finetune stage's hook: ``saliency.png``."""
    saliency_figure(model, data, out_dir, cfg)


DEFAULTS = {"optimizer": "sgd", "lr": 5e-3, "momentum": 0.9, "weight_decay": 1e-4, "schedule": "plateau",
            "lr_gamma": 0.1, "patience": 5, "epochs": 40, "batch_size": 16, "num_frames": NUM_FRAMES,
            "loss_weights": equation1_weights(LAMBDA)}
"""§5.1: SGD, lr 5e-3, momentum 0.9, weight decay 1e-4, x0.1 on a validation-loss plateau, 32
frames. Not in the paper (docs/glenet.md): patience 5, 40 epochs per phase, batch 16."""
JOINT_LR_SCALE = 0.1
"""lr of the joint phase over the streams phase's (5e-4 at the paper's 5e-3): §5.1 "jointly
finetune the whole framework trained at the first stage"; the paper gives one lr (5e-3, x0.1 on a
plateau), read here as fine-tuning one x0.1 step below it (docs/training.md), not a restart. It
follows a user's lr (``finetune.glenet.lr: 1e-3`` -> joint 1e-4) unless ``phases.joint.lr`` is written."""
PHASES = (Phase("streams", {"loss_weights": STREAMS_WEIGHTS}),
          Phase("joint", {"loss_weights": equation1_weights(LAMBDA)}, lr_scale=JOINT_LR_SCALE))
"""§5.1's two-stage optimisation: the streams on their own, then jointly with Eq. 1 from their weights."""

SPEC = ModelSpec("glenet", build, dataset, forward, losses=losses, defaults=DEFAULTS, phases=PHASES, figures=figures,
                 streams=streams)
