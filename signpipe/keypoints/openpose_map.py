"""OpenPose's 137 keypoints -> the 133 COCO-WholeBody layout (DESIGN §4).

The HMA paper extracts "the 137 2D joints of body, face and hands" with OpenPose: BODY_25
(25) + face (70) + two hands (2 x 21), one ``[x0, y0, c0, x1, y1, c1, ...]`` array each in
OpenPose's per-frame JSON. ``OPENPOSE_MAP`` is the one table that places them in the 133 layout:

=========================  =====  ===========================================================
OpenPose array             count  -> 133 layout
=========================  =====  ===========================================================
``pose_keypoints_2d``      25     BODY_25, by name: nose, eyes, ears, shoulders, elbows,
                                  wrists, hips, knees, ankles -> body 0-16; big toes, small
                                  toes, heels -> feet 17-22. ``neck`` (1) and ``mid_hip`` (8)
                                  have no counterpart and are dropped.
``face_keypoints_2d``      70     0-67 are the 68 iBUG 300-W points in the same order as
                                  COCO-WholeBody's face -> 23-90; 68 and 69 are the pupils,
                                  which COCO-WholeBody lacks: dropped.
``hand_left_keypoints_2d`` 21     same joint order (wrist, thumb1-4 ... pinky1-4) -> 91-111
``hand_right_keypoints_2d`` 21    -> 112-132
=========================  =====  ===========================================================

Every one of the 133 keypoints has an OpenPose counterpart; only OpenPose's neck, mid-hip and
two pupils are left out.

Chirality. OpenPose's ``L*`` body parts and ``hand_left_keypoints_2d`` are the person's own left
(COCO's convention, on the image's right for a person facing the camera), as signpipe's are.
Checked in OpenPose's source: ``src/openpose/hand/handDetector.cpp`` places hand rectangle 0 from
``LWrist``/``LElbow``/``LShoulder``; ``handKeypoints[0]`` is written as ``hand_left_keypoints_2d``
by ``wPeopleJsonSaver.hpp``, and ``doc/02_output.md`` says "handKeypoints[0] corresponds to the
left hand". The BODY_25 order is that document's ``POSE_BODY_25_BODY_PARTS`` list; the face's 70
points are ``FACE_NUMBER_PARTS`` in ``include/openpose/face/faceParameters.hpp``, whose drawn
pairs stop at point 67 (68 and 69 are the pupils).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from signpipe.keypoints.index_map import apply_map, gather_arrays
from signpipe.keypoints.layout import BODY_NAMES, FINGERS, FOOT_NAMES, NUM_HAND_JOINTS, PARTS

BODY_25_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "mid_hip",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)
"""BODY_25 in OpenPose's order, named as in ``signpipe.keypoints.layout``."""

OPENPOSE_COUNTS: dict[str, int] = {
    "pose_keypoints_2d": len(BODY_25_NAMES),
    "face_keypoints_2d": 70,
    "hand_left_keypoints_2d": NUM_HAND_JOINTS,
    "hand_right_keypoints_2d": NUM_HAND_JOINTS,
}
"""Keypoints per array of one person in OpenPose's JSON (137 in all)."""


def _map() -> dict[str, tuple[tuple[int, int], ...]]:
    index = {name: i for i, name in enumerate(BODY_NAMES + FOOT_NAMES)}  # body 0-16, feet 17-22
    face, left, right = PARTS["face"], PARTS["left_hand"], PARTS["right_hand"]
    return {
        "pose_keypoints_2d": tuple((i, index[n]) for i, n in enumerate(BODY_25_NAMES) if n in index),
        "face_keypoints_2d": tuple((i, face.start + i) for i in range(face.stop - face.start)),
        "hand_left_keypoints_2d": tuple((i, left.start + i) for i in range(NUM_HAND_JOINTS)),
        "hand_right_keypoints_2d": tuple((i, right.start + i) for i in range(NUM_HAND_JOINTS)),
    }


OPENPOSE_MAP: dict[str, tuple[tuple[int, int], ...]] = _map()
"""Per OpenPose array, (OpenPose index, 133-layout index) pairs; OpenPose points not listed are dropped."""


BODY_135_FACE: dict[str, tuple[int, int]] = {
    "FaceContour": (0, 1), "REyeBrow": (17, 1), "LEyeBrow": (26, -1), "NoseUpper": (27, 1), "NoseLower": (31, 1),
    "REye": (36, 1), "LEye": (42, 1), "OMouth": (48, 1), "IMouth": (60, 1),
}
"""BODY_135 face point name prefix -> (OpenPose face index of number 0, step): ``LEyeBrow4`` is point 22."""

_BODY_135_HAND = re.compile(r"([LR])(Thumb|Index|Middle|Ring|Pinky)([1-4])[A-Za-z]*")
_BODY_135_FACE = re.compile(r"(" + "|".join(BODY_135_FACE) + r")(\d+)")
_CAMEL_SIDE = re.compile(r"^([LR])(?=[A-Z])")


def body_135_points(name: str) -> list[tuple[str, int]]:
    """Where a point of OpenPose's BODY_135 model (its names, e.g. in pose-format headers) goes:
    (OpenPose array, index) pairs, empty for points without a 133 counterpart (``UpperNeck``,
    ``HeadTop``, the pupils).

    BODY_135 is BODY_25 without neck and mid-hip (plus upper neck and head top), 2 x 20 hand
    joints without the wrist, and the 70 face points. Its wrists (``LWrist``) also serve as the
    hand wrists.
    """
    hand = _BODY_135_HAND.fullmatch(name)
    if hand:
        side, finger, k = hand.groups()
        key = "hand_left_keypoints_2d" if side == "L" else "hand_right_keypoints_2d"
        return [(key, 1 + 4 * FINGERS.index(finger.lower()) + int(k) - 1)]
    face = _BODY_135_FACE.fullmatch(name)
    if face:
        first, step = BODY_135_FACE[face.group(1)]
        return [("face_keypoints_2d", first + step * int(face.group(2)))]
    snake = _CAMEL_SIDE.sub(lambda m: "left_" if m.group(1) == "L" else "right_", name)
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", snake).lower()
    if snake not in BODY_25_NAMES:
        return []
    points = [("pose_keypoints_2d", BODY_25_NAMES.index(snake))]
    if snake.endswith("_wrist"):
        points.append(("hand_left_keypoints_2d" if snake.startswith("left") else "hand_right_keypoints_2d", 0))
    return points


_GATHER: dict[str, np.ndarray] = gather_arrays(OPENPOSE_MAP)
"""OPENPOSE_MAP as (2, N) index arrays (source, target), built once."""


def openpose_sequence_to_wholebody(parts: Mapping[str, np.ndarray | None],
                                   num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """T frames of one OpenPose person as xy (T, 133, 2) and score (T, 133), through ``OPENPOSE_MAP``.

    parts: per OpenPose array (``pose_keypoints_2d`` ...), a (T, count, 3) array of (x, y, c);
    NaN or c = 0 marks a point not found (OpenPose writes x = y = c = 0 for those), and an absent
    or None part was not run.
    """
    return apply_map(parts, _GATHER, num_frames)

def openpose_to_wholebody(person: Mapping[str, Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    """One person of an OpenPose JSON frame as xy (133, 2) and score (133,).

    A missing or empty array (OpenPose run without ``--face`` / ``--hand``) leaves its part at
    score 0; OpenPose already writes x = y = c = 0 for points it did not detect.
    """
    parts = {}
    for key, count in OPENPOSE_COUNTS.items():
        values = person.get(key)
        if not values:
            continue
        if len(values) != 3 * count:
            hint = " (run OpenPose with --model_pose BODY_25)" if key == "pose_keypoints_2d" else ""
            raise ValueError(f"{key}: expected {count} keypoints (x, y, c), got {len(values)} values{hint}")
        parts[key] = np.asarray(values, np.float32).reshape(1, count, 3)
    xy, score = openpose_sequence_to_wholebody(parts, 1)
    return xy[0], score[0]
