"""ST-GCN (Yan et al., AAAI 2018) on the full-body keypoints: the papers' pose baseline, "P".

Input: a clip's 133 keypoints from a keypoints shard, ``xy`` (B, T, 133, 2) in source pixels
and ``score`` (B, T, 133). The model keeps one keypoint subset (``signpipe.keypoints.graph``:
``27`` by default, ``59`` or ``133``), normalises positions by the signer's shoulders (centre
at the shoulder midpoint, unit = shoulder width, both averaged over the clip's frames where
both shoulders are detected) and zeroes undetected points; channels are (x, y, score).

Each block is a spatial graph convolution over Yan et al.'s spatial-configuration partitions
(root / centripetal / centrifugal) with a learnable edge-importance mask per block, then a
temporal convolution (kernel 9), batch norm, ReLU and a residual connection. Global average
pooling and a linear layer give the logits.

Config (``finetune.stgcn`` block; defaults are Yan et al.'s network, the demo asks for less):
``subset`` (27), ``layers`` [[channels, temporal stride], ...] (the paper's ten,
:data:`PAPER_LAYERS`), ``temporal_kernel`` (9), ``dropout`` (0.5), ``num_frames`` (32), ``seed`` (0),
``mirror`` (0: probability of a left-right flip in training), ``dominant_hand`` (false: mirror
clips whose left wrist moves more).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from signpipe.data import NUM_FRAMES, ShardDataset
from signpipe.keypoints.graph import spatial_partition, subset_graph
from signpipe.keypoints.layout import LEFT_SHOULDER, RIGHT_SHOULDER
from signpipe.models import ModelSpec, Shards

PAPER_LAYERS = ((64, 1), (64, 1), (64, 1), (64, 1), (128, 2), (128, 1), (128, 1), (256, 2), (256, 1), (256, 1))
"""Yan et al.'s ten blocks: (output channels, temporal stride)."""
PAPER_DROPOUT = 0.5
"""Yan et al.'s dropout after each block's temporal convolution."""
DETECTED = 0.0
"""A point counts as detected when its score is above this (shards store 0 for nothing found)."""


def normalise_keypoints(xy: Tensor, score: Tensor) -> Tensor:
    """Positions (B, T, V, 2) centred on the shoulder midpoint and divided by shoulder width.

    Centre and width are the means over the frames of each clip where both shoulders are
    detected; a clip without shoulders uses the mean and twice the spread of its detected
    points. Undetected points come out as 0.
    """
    seen = score > DETECTED
    both = (seen[..., LEFT_SHOULDER] & seen[..., RIGHT_SHOULDER]).unsqueeze(-1).to(xy.dtype)     # (B, T, 1)
    left, right = xy[..., LEFT_SHOULDER, :], xy[..., RIGHT_SHOULDER, :]
    frames = both.sum(dim=1).clamp(min=1)                                                        # (B, 1)
    centre = ((left + right) / 2 * both).sum(dim=1) / frames                                     # (B, 2)
    width = ((left - right).norm(dim=-1, keepdim=True) * both).sum(dim=1) / frames               # (B, 1)
    weight = seen.unsqueeze(-1).to(xy.dtype)
    count = weight.sum(dim=(1, 2)).clamp(min=1)
    mean = (xy * weight).sum(dim=(1, 2)) / count
    spread = (((xy - mean[:, None, None]) ** 2 * weight).sum(dim=(1, 2)) / count).sum(-1, keepdim=True).sqrt()
    has = both.sum(dim=1) > 0
    centre = torch.where(has, centre, mean)
    width = torch.where(has, width, 2 * spread).clamp(min=1e-6)
    return (xy - centre[:, None, None]) / width[:, None, None] * weight


class GraphConv(nn.Module):
    """Spatial graph convolution: ``sum_k (x W_k) (A_k * M_k)`` over K partitions, M the learnable
    edge importance. x (B, C, T, V) -> (B, C_out, T, V)."""

    def __init__(self, in_channels: int, out_channels: int, adjacency: Tensor) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency)                               # (K, V, V)
        self.importance = nn.Parameter(torch.ones_like(adjacency))
        self.conv = nn.Conv2d(in_channels, out_channels * len(adjacency), kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        b, _, t, v = x.shape
        y = self.conv(x).view(b, len(self.adjacency), -1, t, v)
        return torch.einsum("bkctv,kvw->bctw", y, self.adjacency * self.importance)


class Block(nn.Module):
    """One ST-GCN block: graph conv, BN, ReLU, temporal conv (stride), BN, dropout, + residual, ReLU.

    ``conv`` is the graph convolution's class, built as ``conv(in_channels, out_channels,
    adjacency)`` (HMA's inference module brings its own normalisation)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, adjacency: Tensor,
                 kernel: int, dropout: float, residual: bool = True, conv: type[nn.Module] = GraphConv) -> None:
        super().__init__()
        self.gcn = conv(in_channels, out_channels, adjacency)
        self.tcn = nn.Sequential(
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, (kernel, 1), (stride, 1), ((kernel - 1) // 2, 0)),
            nn.BatchNorm2d(out_channels), nn.Dropout(dropout))
        if not residual:
            self.residual = None
        elif in_channels == out_channels and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, (stride, 1)),
                                          nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        y = self.tcn(self.gcn(x))
        return torch.relu(y if self.residual is None else y + self.residual(x))


class STGCN(nn.Module):
    """ST-GCN over one keypoint subset: (xy (B, T, 133, 2), score (B, T, 133)) -> logits (B, classes)."""

    def __init__(self, num_classes: int, subset: str = "27", layers: Sequence[Sequence[int]] = PAPER_LAYERS,
                 temporal_kernel: int = 9, dropout: float = PAPER_DROPOUT) -> None:
        super().__init__()
        graph = subset_graph(subset)
        self.register_buffer("indices", torch.tensor(graph.indices, dtype=torch.long))
        adjacency = torch.from_numpy(spatial_partition(graph))
        self.data_bn = nn.BatchNorm1d(3 * graph.num_nodes)
        blocks, channels = [], 3
        for number, (out_channels, stride) in enumerate(layers):
            blocks.append(Block(channels, out_channels, stride, adjacency, temporal_kernel, dropout,
                                residual=number > 0))  # as the paper: no residual on the input block
            channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, xy: Tensor, score: Tensor) -> Tensor:
        xy = normalise_keypoints(xy.float(), score.float())[:, :, self.indices]             # (B, T, V, 2)
        x = torch.cat([xy, score.float()[:, :, self.indices, None]], dim=-1)                 # (B, T, V, 3)
        b, t, v, c = x.shape
        x = self.data_bn(x.permute(0, 2, 3, 1).reshape(b, v * c, t))                         # per-joint-channel BN
        x = x.view(b, v, c, t).permute(0, 2, 3, 1)                                           # (B, 3, T, V)
        return self.head(self.blocks(x).mean(dim=(2, 3)))


def build(num_classes: int, cfg: Mapping[str, Any]) -> STGCN:
    """ST-GCN from the model's config block (keys in the module docstring)."""
    return STGCN(num_classes, str(cfg.get("subset", "27")), cfg.get("layers", PAPER_LAYERS),
                 int(cfg.get("temporal_kernel", 9)), float(cfg.get("dropout", PAPER_DROPOUT)))


def dataset(shards: Shards, split: str, train: bool, cfg: Mapping[str, Any]) -> ShardDataset:
    """Clips of ``xy`` and ``score`` from keypoints shards (random frames in training, centred at test),
    mirrored with probability ``mirror`` in training and, with ``dominant_hand``, so that the
    right wrist moves more (``signpipe.data``)."""
    return ShardDataset(shards, ("xy", "score"), split=split, num_frames=int(cfg.get("num_frames", NUM_FRAMES)),
                        train=train, seed=int(cfg.get("seed", 0)), mirror=float(cfg.get("mirror") or 0.0),
                        dominant_hand=bool(cfg.get("dominant_hand")))


def forward(model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
    return model(batch["xy"], batch["score"])


SPEC = ModelSpec("stgcn", build, dataset, forward)
