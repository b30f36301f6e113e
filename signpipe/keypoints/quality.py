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


SWAPPED_HANDS_WARNING = 0.5
"""Share of frames with a verdict above which a video's hands are reported as swapped."""
SWAPPED_HANDS_MIN_FRAMES = 3
"""Frames with a verdict a video needs before it is reported."""


def swapped_hands(xy: np.ndarray, score: np.ndarray, threshold: float = DETECTION_THRESHOLD) -> tuple[float, int]:
    """(share, frames): of the frames where chirality can be judged, the share where the "left" hand
    (91-111) sits on the signer's right side, or the "right" hand on their left.

    The signer faces the camera, so their left side is the image's right (larger x). A frame is
    judged by the hands' wrists (91, 112) against the shoulders' midpoint (5, 6) when both
    shoulders are detected, else, with both hands detected, by which wrist is further right.
    Detection-order hand slots or a mirrored video give a share near 1; a few frames of crossed
    hands do not reach :data:`SWAPPED_HANDS_WARNING`. xy: (T, 133, 2); score: (T, 133).
    """
    wrists = {"left": PARTS["left_hand"].start, "right": PARTS["right_hand"].start}
    found = {side: score[:, i] > threshold for side, i in wrists.items()}
    x = {side: xy[:, i, 0] for side, i in wrists.items()}
    body = (score[:, 5] > threshold) & (score[:, 6] > threshold)
    midline = (xy[:, 5, 0] + xy[:, 6, 0]) / 2
    wrong = {side: found[side] & body & ((x[side] < midline) if side == "left" else (x[side] > midline))
             for side in wrists}
    judged_body = body & (found["left"] | found["right"])
    swapped_body = wrong["left"] | wrong["right"]
    both = ~body & found["left"] & found["right"]
    swapped_pair = both & (x["left"] < x["right"])
    frames = int(judged_body.sum() + both.sum())
    share = float((swapped_body.sum() + swapped_pair.sum()) / frames) if frames else 0.0
    return share, frames


def swapped_hands_problem(share: float, frames: int) -> str:
    """A one-line warning when most of the ``frames`` judged by :func:`swapped_hands` have the hands on
    the wrong sides (``share``), else ''."""
    if frames < SWAPPED_HANDS_MIN_FRAMES or share <= SWAPPED_HANDS_WARNING:
        return ""
    return (f"the left hand sits on the signer's right side (or the right on the left) in {share:.0%} of "
            f"{frames} frames: hand slots in detection order (arrays: set hands_order: detection) or a "
            "mirrored video?")
