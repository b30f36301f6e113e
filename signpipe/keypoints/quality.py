"""When is a body part "detected" in a frame: one rule for quality reports, inspect and tests."""

from __future__ import annotations

import numpy as np

from signpipe.keypoints.layout import PARTS

DETECTION_THRESHOLD = 0.3
"""A keypoint counts as detected when its score exceeds this."""

PART_NAMES: tuple[str, ...] = ("body", "face", "left_hand", "right_hand")
"""Parts reported in quality.csv; left/right are the signer's."""

PART_INDICES: dict[str, np.ndarray] = {
    # Upper body only (nose, eyes, ears, shoulders, elbows, wrists): hips and legs are out of
    # frame in most sign videos and would make every frame look half-detected.
    "body": np.arange(0, 11),
    "face": np.arange(PARTS["face"].start, PARTS["face"].stop),
    "left_hand": np.arange(PARTS["left_hand"].start, PARTS["left_hand"].stop),
    "right_hand": np.arange(PARTS["right_hand"].start, PARTS["right_hand"].stop),
}


def part_detected(score: np.ndarray, threshold: float = DETECTION_THRESHOLD) -> dict[str, np.ndarray]:
    """Per part, (T,) bool: at least half of the part's keypoints score above ``threshold``.

    score: (T, 133).
    """
    return {part: (score[:, idx] > threshold).mean(axis=1) >= 0.5 for part, idx in PART_INDICES.items()}


def detection_rates(score: np.ndarray, threshold: float = DETECTION_THRESHOLD) -> dict[str, float]:
    """Per part, the share of frames where it was detected (0 for a clip without frames)."""
    return {part: float(found.mean()) if len(found) else 0.0
            for part, found in part_detected(score, threshold).items()}
