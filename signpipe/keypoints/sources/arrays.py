"""``arrays``: one ``.npy`` / ``.npz`` per video holding a (T, points, channels) array of a declared ``layout``.

==========================  ===================  ===========================================================
``layout``                  shape accepted       points, in this order
==========================  ===================  ===========================================================
``mediapipe-holistic-543``  (T, 543, 2 or 3)     Holistic as the Kaggle ASL Signs files order it: face 468,
                                                 left hand 21, pose 33, right hand 21; (x, y[, z]) normalised
``mediapipe-hands-126``     (T, 126) or          left hand 21 then right hand 21 (MediaPipe Hands / Holistic
                            (T, 42, 2 or 3)      hands); (T, 126) is each point's x, y, z in turn; normalised;
                                                 ``hands_order: detection``: the slots are in detection order
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


HANDS_ORDERS = ("left_right", "detection")
"""``hands_order`` of ``mediapipe-hands-126``: slots are (left, right), or the order MediaPipe Hands detected them."""
NEAR_PREVIOUS = 0.15
"""A lone hand within this share of the frame width of a hand of the previous frame keeps that hand's side."""


def order_hands(points: np.ndarray, width: float) -> np.ndarray:
    """(T, 42, 3) hands in detection order (NaN where missing) -> (T, 42, 3) signer's left 21, right 21.

    The signer faces the camera, so their left hand is the one further right in the image. With two
    hands in a frame, the one with the larger wrist x is the left. A lone hand keeps the side of the
    previous frame's hand nearest to it when that is within ``NEAR_PREVIOUS * width`` (continuity),
    else takes the side of the frame's vertical midline it is on (x > width / 2: left). ``width``:
    the frame width in the points' units.
    """
    hands = points.reshape(len(points), 2, 21, 3)
    out = np.full_like(hands, np.nan)
    previous: list[np.ndarray | None] = [None, None]
    for t, frame in enumerate(hands):
        seen = [hand for hand in frame if np.isfinite(hand).all(-1).any()]
        where = [hand[0, :2] if np.isfinite(hand[0]).all() else np.nanmean(hand[:, :2], axis=0) for hand in seen]
        if len(seen) == 2:
            sides = [0, 1] if where[0][0] > where[1][0] else [1, 0]
        elif seen:
            distance = [np.inf if p is None else float(np.hypot(*(where[0] - p))) for p in previous]
            nearest = int(np.argmin(distance))
            sides = [nearest if distance[nearest] < NEAR_PREVIOUS * width else int(where[0][0] <= width / 2)]
        else:
            sides = []
        previous = [None, None]
        for hand, position, side in zip(seen, where, sides):
            out[t, side], previous[side] = hand, position
    return out.reshape(points.shape)


def read_array(path: Path, layout: str, scale: tuple[float, float], key: str | None,
               detection_width: float | None = None) -> KeypointSequence:
    """One file as 133 keypoints; ``scale`` multiplies x, y (the nominal frame for normalised layouts, else 1).
    With ``detection_width`` (the frame width in pixels) the hand slots are in detection order and are
    reassigned by :func:`order_hands`."""
    array, fps = load_array(path, key)
    points = to_points(array, layout)
    points[..., :2] *= np.float32(scale)
    if detection_width is not None:
        points = order_hands(points, detection_width)
    xy, score = LAYOUTS[layout].to_wholebody(points)
    return KeypointSequence(xy, score, fps)


def hands_order(cfg: Mapping[str, Any], where: str = "arrays dataset") -> str:
    """The ``hands_order`` key, checked: ``detection`` only for ``mediapipe-hands-126``."""
    order = cfg.get("hands_order", HANDS_ORDERS[0])
    if order not in HANDS_ORDERS:
        raise ValueError(f"{where}.hands_order: must be one of {', '.join(HANDS_ORDERS)}, got {order!r}")
    if order == "detection" and cfg.get("layout") != "mediapipe-hands-126":
        raise ValueError(f"{where}.hands_order: detection applies to layout mediapipe-hands-126 only (the other "
                         f"layouts name each hand), got layout {cfg.get('layout')!r}")
    return order


def read(rows: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any]) -> Iterator[Result]:
    """Stream the rows' array files (cfg keys: ``layout``, ``normalized``, ``width``, ``height``, ``array``,
    ``hands_order``)."""
    layout = cfg.get("layout")
    if layout not in LAYOUTS:
        raise ValueError(f"arrays dataset: layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    normalized = bool(cfg.get("normalized", LAYOUTS[layout].normalized))
    scale = nominal_size(cfg, "arrays") if normalized else (1.0, 1.0)
    width = float(nominal_size(cfg, "arrays")[0]) if hands_order(cfg) == "detection" else None
    return read_each(rows, lambda path: read_array(path, layout, scale, cfg.get("array"), width))
