"""``arrays``: one ``.npy`` / ``.npz`` per video holding a (T, points, channels) array of a declared ``layout``.

==========================  ===================  ===========================================================
``layout``                  shape accepted       points, in this order
==========================  ===================  ===========================================================
``mediapipe-holistic-543``  (T, 543, 2 or 3)     Holistic as the Kaggle ASL Signs files order it: face 468,
                                                 left hand 21, pose 33, right hand 21; (x, y[, z]) normalised
``mediapipe-hands-126``     (T, 126) or          left hand 21 then right hand 21 (MediaPipe Hands / Holistic
                            (T, 42, 2 or 3)      hands); (T, 126) is each point's x, y, z in turn; normalised
``coco-wholebody-133``      (T, 133, 2 or 3)     the 133 layout itself; (x, y[, score]) in pixels
``openpose-137``            (T, 137, 2 or 3)     BODY_25 25, left hand 21, right hand 21, face 70;
                                                 (x, y[, c]) in pixels
==========================  ===================  ===========================================================

MediaPipe layouts go through ``MEDIAPIPE_MAP``, OpenPose through ``OPENPOSE_MAP``. z is ignored.
A point is missing where any of its values is NaN, where its score channel is 0, or, for
layouts without a score channel, where it is exactly (0, 0), which is how exporters commonly
fill parts that were not found; other points score 1. Coordinates are normalised to the frame
(multiplied by the config's ``width`` x ``height``) or pixels, per layout unless the config's
``normalized`` says otherwise. In a ``.npz`` the array is ``keypoints`` (or the config's
``array``, or the file's only array); an ``fps`` entry there is the frame rate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.keypoints.index_map import split_points
from signpipe.keypoints.mediapipe_map import mediapipe_sequence_to_wholebody
from signpipe.keypoints.openpose_map import OPENPOSE_COUNTS, openpose_sequence_to_wholebody
from signpipe.keypoints.sources.sequence import KeypointSequence, Result, nominal_size, read_each, shorten


def _split(points: np.ndarray, counts: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Consecutive point ranges of (T, N, 3) ``points`` by part, in ``counts`` order."""
    bounds = np.cumsum([0, *counts.values()])
    return {part: points[:, a:b] for part, a, b in zip(counts, bounds[:-1], bounds[1:])}


HOLISTIC_543 = {"face": 468, "left_hand": 21, "pose": 33, "right_hand": 21}
"""The parts of ``mediapipe-holistic-543`` in order."""
HANDS_126 = {"left_hand": 21, "right_hand": 21}
OPENPOSE_137 = {key: OPENPOSE_COUNTS[key] for key in
                ("pose_keypoints_2d", "hand_left_keypoints_2d", "hand_right_keypoints_2d", "face_keypoints_2d")}
"""The OpenPose arrays of ``openpose-137`` in order."""


@dataclass(frozen=True)
class Layout:
    """How an array layout is read: points per frame, whether a third channel is a score (else z),
    whether coordinates are normalised unless the config says ``normalized``, and the map it goes through."""

    points: int
    has_score: bool
    normalized: bool
    to_wholebody: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    """(T, points, 3) of (x, y, score), NaN where missing -> xy (T, 133, 2), score (T, 133)."""


LAYOUTS: dict[str, Layout] = {
    "mediapipe-holistic-543": Layout(543, False, True, lambda p: mediapipe_sequence_to_wholebody(
        _split(p, HOLISTIC_543), len(p))),
    "mediapipe-hands-126": Layout(42, False, True, lambda p: mediapipe_sequence_to_wholebody(
        _split(p, HANDS_126), len(p))),
    "coco-wholebody-133": Layout(133, True, False, split_points),
    "openpose-137": Layout(137, True, False, lambda p: openpose_sequence_to_wholebody(
        _split(p, OPENPOSE_137), len(p))),
}
"""Array layout name (config ``layout``) -> how to read it."""


def load_array(path: Path, key: str | None) -> tuple[np.ndarray, float | None]:
    """The keypoint array of a ``.npy`` / ``.npz`` file and the fps an ``.npz`` records (else None)."""
    data = np.load(path, allow_pickle=False)
    if not isinstance(data, np.lib.npyio.NpzFile):
        return data, None
    with data:
        names = [n for n in data.files if n != "fps"]
        name = key or ("keypoints" if "keypoints" in names else names[0] if len(names) == 1 else None)
        if name not in data.files:
            raise ValueError(f"{path}: no array {name!r} (has {', '.join(data.files) or 'none'}); "
                             "name it with the dataset's array key")
        fps = data["fps"] if "fps" in data.files else None
        if fps is not None and (fps.size != 1 or not np.issubdtype(fps.dtype, np.number) or not fps > 0):
            raise ValueError(f"{path}: fps must be one positive number, got {shorten(repr(fps.tolist()), 60)}")
        return data[name], None if fps is None else float(fps)


def to_points(array: np.ndarray, layout: str) -> np.ndarray:
    """Check ``array`` against ``layout`` and return it as (T, points, 3) float32 (x, y, score), NaN where missing."""
    spec = LAYOUTS[layout]
    shape = tuple(array.shape)
    if layout == "mediapipe-hands-126" and array.ndim == 2 and shape[1] == 126:
        array = array.reshape(len(array), 42, 3)
    channels = "score" if spec.has_score else "z"
    flat = " or (T, 126)" if layout == "mediapipe-hands-126" else ""
    if array.ndim != 3 or array.shape[1] != spec.points or array.shape[2] not in (2, 3):
        raise ValueError(f"layout {layout}: expected shape (T, {spec.points}, 2) or (T, {spec.points}, 3) "
                         f"(x, y[, {channels}]){flat}, got {shape}")
    if len(array) == 0:
        raise ValueError(f"layout {layout}: empty sequence (0 frames)")
    points = np.ones((*array.shape[:2], 3), np.float32)
    points[..., :2] = array[..., :2]
    if spec.has_score and array.shape[2] == 3:
        points[..., 2] = array[..., 2]
    else:
        points[(points[..., 0] == 0) & (points[..., 1] == 0)] = np.nan
    points[points[..., 2] == 0] = np.nan
    points[~np.isfinite(points).all(axis=-1)] = np.nan
    return points


def read_array(path: Path, layout: str, scale: tuple[float, float], key: str | None) -> KeypointSequence:
    """One file as 133 keypoints; ``scale`` multiplies x, y (the nominal frame for normalised layouts, else 1)."""
    array, fps = load_array(path, key)
    points = to_points(array, layout)
    points[..., :2] *= np.float32(scale)
    xy, score = LAYOUTS[layout].to_wholebody(points)
    return KeypointSequence(xy, score, fps)


def read(rows: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any]) -> Iterator[Result]:
    """Stream the rows' array files (cfg keys: ``layout``, ``normalized``, ``width``, ``height``, ``array``)."""
    layout = cfg.get("layout")
    if layout not in LAYOUTS:
        raise ValueError(f"arrays dataset: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    normalized = bool(cfg.get("normalized", LAYOUTS[layout].normalized))
    scale = nominal_size(cfg, "arrays") if normalized else (1.0, 1.0)
    return read_each(rows, lambda path: read_array(path, layout, scale, cfg.get("array")))
