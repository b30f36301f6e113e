"""RGB 3D-CNN on full frames: the papers' RGB baseline, "R" (SignBERT's H + R fusion).

torchvision's video ResNets (``r3d_18`` by default; ``mc3_18``, ``r2plus1d_18``) built with
``weights=None``: nothing is ever downloaded. ``checkpoint`` in the config may name a local
state dict (e.g. Kinetics-400 weights saved from torchvision on a machine with internet); it is
loaded into the network except for a classifier of another shape, and a missing file is an
error naming the config key. The papers' RGB partner is Kinetics-pretrained, so without a
checkpoint the network starts from random weights and the finetune stage warns that H+R will not
reach the paper (``signpipe.models.pretrained``).

Input clips come from frames shards with the same temporal sampling as every signpipe model
(32 frames, random segments in training, centred at test). Each video's frames are resized so
their short side is ``size`` and cropped to ``size`` x ``size`` (centred at test, at a random
place in training, drawn per item and epoch); no horizontal flip, which would swap the signer's
hands. Pixels are normalised with the Kinetics mean and std; with ``subtract_mean`` each pixel's
mean over the clip is then subtracted, so what does not move (background, clothes, skin) is 0
and a network trained from random weights sees the moving arms and hands from its first step
(the demo's: raw frames left r3d_18 at chance, docs/models.md).

Config (``finetune.rgb3d`` block): ``arch`` (r3d_18), ``size`` (112, torchvision's Kinetics
size; the CPU demo uses less), ``num_frames`` (32), ``checkpoint`` (null), ``subtract_mean``
(false: the Kinetics input), ``seed`` (0).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models import video

from signpipe.clips import FrameClips
from signpipe.data import NUM_FRAMES
from signpipe.models import ModelSpec, Shards
from signpipe.models.pretrained import load_video_resnet

log = logging.getLogger(__name__)

ARCHS = ("r3d_18", "mc3_18", "r2plus1d_18")
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
DEFAULT_SIZE = 112


class RGB3D(nn.Module):
    """A torchvision video ResNet taking uint8 clips (B, T, S, S, 3) -> logits (B, classes);
    ``subtract_mean``: the network sees each normalised pixel minus its mean over the T frames."""

    def __init__(self, num_classes: int, arch: str = "r3d_18", subtract_mean: bool = False) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"finetune.rgb3d.arch: {arch!r} unknown; known: {', '.join(ARCHS)}")
        self.net = getattr(video, arch)(weights=None, num_classes=num_classes)
        self.register_buffer("mean", torch.tensor(KINETICS_MEAN).view(1, 3, 1, 1, 1))
        self.register_buffer("std", torch.tensor(KINETICS_STD).view(1, 3, 1, 1, 1))
        self.subtract_mean = subtract_mean

    def forward(self, clip: Tensor) -> Tensor:
        x = (clip.permute(0, 4, 1, 2, 3).float() / 255 - self.mean) / self.std          # (B, 3, T, S, S)
        if self.subtract_mean:
            x = x - x.mean(2, keepdim=True)
        return self.net(x)


def build(num_classes: int, cfg: Mapping[str, Any]) -> RGB3D:
    """The network of ``cfg['arch']``; weights from ``cfg['checkpoint']`` (a local torchvision state
    dict, ``signpipe.models.pretrained.load_video_resnet``) when set, else random; ``init`` recorded."""
    model = RGB3D(num_classes, str(cfg.get("arch", "r3d_18")), bool(cfg.get("subtract_mean", False)))
    model.init = load_video_resnet(model.net, cfg["checkpoint"], "finetune.rgb3d.checkpoint") \
        if cfg.get("checkpoint") else "random"
    return model


def dataset(shards: Shards, split: str, train: bool, cfg: Mapping[str, Any]) -> FrameClips:
    """Frames scaled to ``size`` and cropped to ``size`` x ``size`` (``signpipe.clips``), never flipped."""
    size = int(cfg.get("size", DEFAULT_SIZE))
    return FrameClips(shards, split, train, size, size, num_frames=int(cfg.get("num_frames", NUM_FRAMES)),
                      seed=int(cfg.get("seed", 0)))


def forward(model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
    return model(batch["jpeg"])


SPEC = ModelSpec("rgb3d", build, dataset, forward)
