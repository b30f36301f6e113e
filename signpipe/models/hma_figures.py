"""HMA's report figure (the paper's Fig. 3): hand crops, the 2D pseudo-labels, the decoded hands.

Kept out of ``signpipe.models.hma`` so that changing a drawing retrains nothing (the code a
finetune run depends on is its model's module).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import default_collate

from signpipe.figures import save_image
from signpipe.keypoints import HAND_EDGES

CELL = 112
"""Side of one crop in the figure, pixels."""
LABEL = 18
BACKDROP = (32, 32, 32)
PSEUDO_COLOUR = (255, 210, 0)
DECODED_COLOUR = (0, 230, 120)
FINGER_COLOURS = ((230, 80, 80), (240, 170, 40), (90, 200, 90), (60, 160, 240), (190, 100, 230))
"""Bones of the thumb, index, middle, ring and pinky."""
ROWS = ("crop", "2D pseudo-label", "HMA: decoded, projected")


def _draw_hand(cell: np.ndarray, xy: np.ndarray, shown: np.ndarray, colour: tuple[int, int, int]) -> None:
    """Bones and joints of one hand, ``xy`` (21, 2) in [-1, 1] of the cell; joints where ``shown``."""
    p = np.round((xy + 1.0) / 2.0 * CELL * 16).astype(np.int32)
    for number, (a, b) in enumerate(HAND_EDGES):
        if shown[a] and shown[b]:
            cv2.line(cell, tuple(p[a]), tuple(p[b]), FINGER_COLOURS[number // 4], 2, cv2.LINE_AA, 4)
    for k in np.flatnonzero(shown):
        cv2.circle(cell, tuple(p[k]), 2 * 16, colour, -1, cv2.LINE_AA, 4)


def _label(text: str, width: int) -> np.ndarray:
    strip = np.full((LABEL, width, 3), BACKDROP, np.uint8)
    cv2.putText(strip, text, (4, LABEL - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (230, 230, 230), 1, cv2.LINE_AA)
    return strip


def draw_hands(model: torch.nn.Module, data, path: str | os.PathLike, videos: int = 2, frames: int = 4) -> Path:
    """PNG of ``videos`` clips of ``data`` (a ``signpipe.clips.HandClips``): per clip and
    ``frames`` frames spread over it, both hands, in three rows: the crop the model sees, the
    hands stage's 2D pose (joints with c >= epsilon), and the model's 3D joints projected by its
    camera (eq. 5). The decoded hand is drawn relative to its wrist (eq. 6 constrains the shape,
    not the translation c_o) at the pseudo-label's wrist where that is confident, else at its own
    c_o. ``model`` is an ``HMA`` in eval mode."""
    epsilon = model.config.epsilon
    chosen = np.unique(np.linspace(0, len(data) - 1, min(videos, len(data))).round().astype(int)).tolist()
    batch = default_collate(data.__getitems__(chosen))
    device = next(model.parameters()).device
    with torch.no_grad():
        out = model(batch["crop"].to(device))
    decoded = out.joints2d.float().cpu().numpy()
    pose, crops = batch["pose"].numpy(), batch["crop"].numpy()
    length = crops.shape[1]
    picks = np.unique(np.linspace(0, length - 1, frames).round().astype(int))
    width = 2 * len(picks) * CELL
    blocks = []
    for v in range(len(chosen)):
        label = int(batch["label"][v])
        predicted = int(out.logits[v].argmax())
        blocks.append(_label(f"video {batch['video_id'][v]}  label {label}  predicted {predicted}", width))
        for row, name in enumerate(ROWS):
            cells = []
            for t in picks:
                for hand in range(2):
                    cell = cv2.resize(crops[v, t, hand], (CELL, CELL), interpolation=cv2.INTER_LINEAR)
                    score = pose[v, t, hand, :, 2]
                    if row == 1:
                        _draw_hand(cell, pose[v, t, hand, :, :2], score >= epsilon, PSEUDO_COLOUR)
                    elif row == 2:
                        xy = decoded[v, t, hand]
                        if score[0] >= epsilon:
                            xy = xy - xy[:1] + pose[v, t, hand, :1, :2]
                        _draw_hand(cell, xy, np.ones(len(xy), bool), DECODED_COLOUR)
                    cv2.putText(cell, f"{'LR'[hand]} t{int(batch['frames'][v, t])}", (3, 12),
                                cv2.FONT_HERSHEY_SIMPLEX, 0.35, (255, 255, 255), 1, cv2.LINE_AA)
                    cells.append(cell)
            blocks.append(_label(name, width))
            blocks.append(np.concatenate(cells, axis=1))
    return save_image(np.concatenate(blocks, axis=0), path)
