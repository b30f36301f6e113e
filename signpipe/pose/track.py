"""One signer per frame when a backend sees several people.

Whole-body detectors return 2-3 people on some frames (a second person in the background, a
reflection, a false positive). The signer is followed as one track: start from the largest,
most central person, then in every frame keep the person whose box overlaps the previous
signer box most. A frame where nobody overlaps gets no keypoints (score 0) rather than a
stranger; after ``REINIT_AFTER`` such frames in a row the track starts afresh.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from signpipe.keypoints import NUM_KEYPOINTS

MIN_IOU = 0.1
"""Overlap below which a person is not taken for the signer of the previous frame."""
REINIT_AFTER = 10
"""Frames without a matching person after which the largest central person is taken again."""
BOX_SCORE = 0.3
"""Keypoints above this score define a person's box when the backend gives none."""

POLICY = (f"largest central person first, then highest box IoU with the previous frame's signer "
          f"(>= {MIN_IOU}); re-chosen after {REINIT_AFTER} unmatched frames")
"""The rule above in one line, for the keypoints shard's attrs."""


@dataclass
class Person:
    """One detected person: xy (133, 2) source pixels, score (133,), box (x0, y0, x1, y1) or None."""

    xy: np.ndarray
    score: np.ndarray
    box: np.ndarray | None = None

    def bounds(self) -> np.ndarray | None:
        """The person's box: the detector's, else that of its confident keypoints."""
        if self.box is not None:
            return np.asarray(self.box, np.float64)
        confident = self.xy[self.score > BOX_SCORE]
        if len(confident) < 2:
            return None
        return np.concatenate([confident.min(axis=0), confident.max(axis=0)]).astype(np.float64)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def centrality_rank(box: np.ndarray, size: tuple[int, int]) -> float:
    """Area discounted by the box centre's distance from the image centre (1 at the centre, 0 at a corner)."""
    width, height = size
    centre = np.array([(box[0] + box[2]) / 2, (box[1] + box[3]) / 2])
    offset = np.linalg.norm((centre - [width / 2, height / 2]) / [width / 2, height / 2]) / np.sqrt(2)
    return float((box[2] - box[0]) * (box[3] - box[1]) * max(0.0, 1.0 - offset))


def select_signer(frames: Sequence[Sequence[Person]], size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The signer's track through a clip.

    frames: per frame, the people detected; size: the source video's (width, height).
    Returns xy (T, 133, 2), score (T, 133) (zeros where the signer was not found) and
    people (T,), the number of people seen per frame.
    """
    count = len(frames)
    xy = np.zeros((count, NUM_KEYPOINTS, 2), np.float32)
    score = np.zeros((count, NUM_KEYPOINTS), np.float32)
    people = np.array([len(p) for p in frames], np.int64)
    previous: np.ndarray | None = None
    unmatched = 0
    for t, persons in enumerate(frames):
        boxes = [(p, p.bounds()) for p in persons]
        boxes = [(p, b) for p, b in boxes if b is not None]
        if not boxes:
            unmatched += 1
            continue
        if previous is None or unmatched >= REINIT_AFTER:
            chosen, box = max(boxes, key=lambda pb: centrality_rank(pb[1], size))
        else:
            chosen, box = max(boxes, key=lambda pb: iou(pb[1], previous))
            if iou(box, previous) < MIN_IOU:
                unmatched += 1
                continue
        xy[t], score[t] = chosen.xy, chosen.score
        previous, unmatched = box, 0
    return xy, score, people
