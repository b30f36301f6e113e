"""``pose``: pose-format ``.pose`` files (the sign-language-processing ``pose-format`` package).

A ``.pose`` header lists components, each naming its points; the body holds data (frames,
people, points, dims) and confidence (frames, people, points) at the header's fps. Points are
placed **by name**, through the one table of their source:

- MediaPipe Holistic: ``POSE_LANDMARKS``, ``FACE_LANDMARKS``, ``LEFT_HAND_LANDMARKS``,
  ``RIGHT_HAND_LANDMARKS`` (point names as MediaPipe's enums spell them, face points by mesh
  vertex number; subsets such as 8 pose or 128 face points are fine) -> ``MEDIAPIPE_MAP``.
  ``POSE_WORLD_LANDMARKS`` (metres around the hips, not image positions) is ignored.
- OpenPose ``BODY_135`` (one component) -> ``OPENPOSE_MAP`` via ``openpose_map.body_135_points``.
- COCO-WholeBody-style: ``BODY`` (the 23 body and feet names), ``FACE`` (``face-0`` ...),
  ``LEFT_HAND`` / ``RIGHT_HAND`` (``hand_0`` ...), with or without a ``_133`` suffix (pose-format's
  MMPose and AlphaPose headers, and ``signpipe export keypoints --format pose``).

A body shorter than its header declares (a cut download) is refused, not read (:func:`body_problem`).
The first of these families present is read; other components are ignored. A file with none
of them is refused. Only the first person is read (people index 0). A point is missing where
the body masks it or its confidence is 0. pose-format stores MediaPipe landmarks in pixels of
the header's width x height; coordinates that all lie within [-2, 2] are taken as normalised and
scaled to the header's size (or the dataset's nominal ``width`` x ``height`` when the header has
none).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pose_format import Pose
from pose_format.pose_header import PoseHeader
from pose_format.utils.reader import BufferReader, ConstStructs

from signpipe.keypoints import NUM_KEYPOINTS, PARTS, keypoint_names
from signpipe.keypoints.index_map import split_points
from signpipe.keypoints.mediapipe_map import PART_SIZES, landmark_names, mediapipe_sequence_to_wholebody
from signpipe.keypoints.openpose_map import OPENPOSE_COUNTS, body_135_points, openpose_sequence_to_wholebody
from signpipe.keypoints.sources.sequence import KeypointSequence, Result, read_each

NORMALISED_LIMIT = 2.0
"""Coordinates all within [-limit, limit] are normalised to the frame, not pixels."""

_HOLISTIC = {"POSE_LANDMARKS": "pose", "FACE_LANDMARKS": "face", "LEFT_HAND_LANDMARKS": "left_hand",
             "RIGHT_HAND_LANDMARKS": "right_hand"}
_HOLISTIC_INDEX = {part: {name: i for i, name in enumerate(landmark_names(part))} for part in PART_SIZES}
_WHOLEBODY = {"BODY": "body", "FACE": "face", "LEFT_HAND": "left_hand", "RIGHT_HAND": "right_hand"}
_BODY_INDEX = {name: i for i, name in enumerate(keypoint_names()[:PARTS["face"].start])}
_TRAILING_NUMBER = re.compile(r".*?(\d+)$")


def _holistic_points(component: str, point: str) -> list[tuple[str, int]]:
    part = _HOLISTIC.get(component)
    index = _HOLISTIC_INDEX[part].get(point) if part else None
    return [] if index is None else [(part, index)]


def _wholebody_points(component: str, point: str) -> list[tuple[str, int]]:
    part = _WHOLEBODY.get(component.removesuffix("_133"))
    if part == "body":
        return [("wholebody", _BODY_INDEX[point])] if point in _BODY_INDEX else []
    number = _TRAILING_NUMBER.fullmatch(point) if part else None
    if number is None:
        return []
    span = PARTS[part]
    index = span.start + int(number.group(1))
    return [("wholebody", index)] if index < span.stop else []


def _openpose_points(component: str, point: str) -> list[tuple[str, int]]:
    return body_135_points(point) if component == "BODY_135" else []


@dataclass(frozen=True)
class Family:
    """A source of keypoints a ``.pose`` header can come from: where its named points go, and its map."""

    name: str
    """As error messages name it."""
    sizes: Mapping[str, int]
    destinations: Callable[[str, str], list[tuple[str, int]]]
    """(component name, point name) -> (part, index) pairs in ``sizes``' arrays; empty if unused."""
    to_wholebody: Callable[[Mapping[str, np.ndarray], int], tuple[np.ndarray, np.ndarray]]


FAMILIES = (
    Family("MediaPipe Holistic (POSE_LANDMARKS, FACE_LANDMARKS, LEFT_/RIGHT_HAND_LANDMARKS)", PART_SIZES, _holistic_points, mediapipe_sequence_to_wholebody),
    Family("OpenPose BODY_135", OPENPOSE_COUNTS, _openpose_points, openpose_sequence_to_wholebody),
    Family("COCO-WholeBody (BODY, FACE, LEFT_HAND, RIGHT_HAND)", {"wholebody": NUM_KEYPOINTS}, _wholebody_points,
           lambda parts, _: split_points(parts["wholebody"])),
)


def body_problem(data: bytes) -> str:
    """Why the body of a ``.pose`` file (its bytes ``data``) is not what its header implies, else ''.

    pose-format 0.1 files carry a 16-bit frame count that the reader ignores: it takes as many frames
    as the bytes hold, so a cut file reads its confidences from coordinate bytes (points "found" at
    garbage positions). The header's frames x people x points x (dims + 1) floats must be there;
    for 0.1 a count that overflowed 16 bits is accepted when the bytes hold whole frames of it.
    """
    reader = BufferReader(data)
    header = PoseHeader.read(reader)
    version = round(header.version, 3)
    if version not in (0.1, 0.2):  # 0.0 stores frames one by one: pose-format checks each
        return ""
    if version == 0.1:
        _, frames = reader.unpack(ConstStructs.double_ushort)
    else:
        reader.unpack(ConstStructs.float)
        frames = reader.unpack(ConstStructs.uint)
    people = reader.unpack(ConstStructs.ushort)
    points = sum(len(c.points) for c in header.components)
    per_frame = people * points * (header.num_dims() + 1) * 4
    present, expected = len(data) - reader.read_offset, frames * per_frame
    if present == expected or (version == 0.1 and per_frame and present % per_frame == 0
                               and present // per_frame % 65536 == frames):
        return ""
    if version == 0.2 and present > expected:  # trailing bytes: the reader stops where the header says
        return ""
    return (f"truncated or damaged: the header declares {frames} frames of {people} person(s) x {points} points "
            f"({expected} body bytes) but {present} bytes follow it")


def read_pose(path: Path, nominal: tuple[int, int] | None) -> KeypointSequence:
    """The first person of a ``.pose`` file as 133 keypoints in pixels (see the module doc for units)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        problem = body_problem(data)
        pose = None if problem else Pose.read(data)
    except Exception as err:  # pose-format raises struct/Value/Index errors on a damaged file
        raise ValueError(f"{path}: not a readable .pose file ({type(err).__name__}: {err})") from err
    if pose is None:
        raise ValueError(f"{path}: {problem}; refused (re-export or re-download it)")
    header = pose.header
    names = [c.name for c in header.components]
    offsets = np.cumsum([0] + [len(c.points) for c in header.components])
    for family in FAMILIES:
        sources = {part: ([], []) for part in family.sizes}
        for component, offset in zip(header.components, offsets):
            for i, point in enumerate(component.points):
                for part, index in family.destinations(component.name, point):
                    sources[part][0].append(offset + i)
                    sources[part][1].append(index)
        if any(src for src, _ in sources.values()):
            break
    else:
        raise ValueError(f"{path}: unknown components {', '.join(names)}: none has points of "
                         f"{', '.join(f.name for f in FAMILIES)} (see docs/datasets.md, 'Keypoint file formats')")
    data, confidence = pose.body.data, np.asarray(pose.body.confidence, np.float32)
    frames = len(confidence)
    if frames == 0 or confidence.shape[1] == 0:
        raise ValueError(f"{path}: empty sequence (data shape {tuple(data.shape)})")
    points = np.concatenate([np.ma.filled(data[:, 0, :, :2].astype(np.float32), np.nan),
                             confidence[:, 0, :, None]], axis=-1)
    points[points[..., 2] <= 0] = np.nan
    width, height = header.dimensions.width, header.dimensions.height
    size = (int(width), int(height)) if width > 1 and height > 1 else None
    found = points[np.isfinite(points).all(axis=-1)][:, :2]
    if found.size and np.abs(found).max() <= NORMALISED_LIMIT:
        scale = size or nominal
        if scale is None:
            raise ValueError(f"{path}: coordinates are normalised and the header gives no frame size; "
                             "set the dataset's width and height")
        points[..., :2] *= np.float32(scale)
    parts = {part: np.full((frames, count, 3), np.nan, np.float32) for part, count in family.sizes.items()}
    for part, (src, dst) in sources.items():
        parts[part][:, dst] = points[:, src]
    xy, score = family.to_wholebody(parts, frames)
    return KeypointSequence(xy, score, float(pose.body.fps) or None, size)


def read(rows: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any]) -> Iterator[Result]:
    """Stream the rows' ``.pose`` files (cfg keys: ``width``, ``height``, used only for normalised
    coordinates in a file whose header gives no size)."""
    nominal = (int(cfg["width"]), int(cfg["height"])) if cfg.get("width") and cfg.get("height") else None
    return read_each(rows, lambda path: read_pose(path, nominal))
