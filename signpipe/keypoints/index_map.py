"""Applying an index map: per source part, (source index, 133-layout index) pairs.

Every source's table (``mediapipe_map.MEDIAPIPE_MAP``, ``openpose_map.OPENPOSE_MAP``) has this
form; this module places points through one, for one frame or a whole sequence at once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from signpipe.keypoints.layout import NUM_KEYPOINTS


def split_points(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 3) points (x, y, score) as xy (..., 2) and score (...) float32 in [0, 1]; a point is
    missing where a value is NaN or its score is not above 0, and gets xy 0, score 0."""
    points = np.asarray(points, np.float32)
    found = np.isfinite(points).all(axis=-1) & (points[..., 2] > 0)
    return (np.where(found[..., None], points[..., :2], 0.0).astype(np.float32),
            np.clip(np.where(found, points[..., 2], 0.0), 0.0, 1.0).astype(np.float32))


def gather_arrays(table: Mapping[str, tuple[tuple[int, int], ...]]) -> dict[str, np.ndarray]:
    """A map's pairs as one (2, N) index array (source, target) per part, for vectorised placing."""
    return {part: np.array(pairs).reshape(-1, 2).T for part, pairs in table.items()}


def apply_map(parts: Mapping[str, np.ndarray | None], gather: Mapping[str, np.ndarray],
              num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Place T frames of source points: xy (T, 133, 2), score (T, 133); keypoints no part fills get score 0.

    parts: per part of the map, (T, N, 3) points (x, y, score) as :func:`split_points` reads
    them, or None (or absent) where the part is not there at all.
    """
    xy = np.zeros((num_frames, NUM_KEYPOINTS, 2), np.float32)
    score = np.zeros((num_frames, NUM_KEYPOINTS), np.float32)
    for part, (source, target) in gather.items():
        points = parts.get(part)
        if points is not None:
            xy[:, target], score[:, target] = split_points(np.asarray(points)[:, source])
    return xy, score
