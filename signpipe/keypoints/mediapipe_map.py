"""MediaPipe Holistic's 33 pose + 468 face mesh + 2 x 21 hand landmarks -> the 133 COCO-WholeBody layout.

``MEDIAPIPE_MAP`` is the one table that places them (DESIGN §4); docs/pose.md lists it in full.

====================  =====  ==================================================================
Holistic output       count  -> 133 layout
====================  =====  ==================================================================
``pose_landmarks``    33     BlazePose, by name: nose, eyes, ears, shoulders, elbows, wrists,
                             hips, knees, ankles -> body 0-16; heels -> 19, 22; ``foot_index``
                             (the tip of the foot, between the big and second toe) -> big toe
                             17, 20. COCO's small toes (18, 21) have no counterpart: score 0.
                             Unused: inner/outer eye corners, mouth corners, the pinky, index
                             and thumb points of BlazePose's hands (the hand model gives them).
``face_landmarks``    468    68 of them -> face 23-90 in the iBUG 300-W order (``FACE_MESH_68``,
                             derived below); refine_face_landmarks' 10 iris points are unused.
``left_hand_...``     21     same joint order (wrist, thumb1-4 ... pinky1-4) -> 91-111
``right_hand_...``    21     -> 112-132
====================  =====  ==================================================================

Chirality. Holistic's ``left_hand_landmarks`` is the signer's own left hand, as signpipe's
91-111 is: Holistic crops each hand around the pose model's wrist of that side, and
BlazePose's ``left_*`` landmarks are the person's left (on the image's right for a signer
facing the camera). Checked on the real clips against MMPose (whose 91-111 is COCO-WholeBody's
left hand), mean joint distances in source pixels, hands ~50 px across: ``left_hand_landmarks``
lies 5-9 px from MMPose's 91-111 and 40-55 px from its 112-132; ``right_hand_landmarks`` 6-7 px
from 112-132 and 38-56 px from 91-111. tests/test_pose_mediapipe.py fails on a swap.

The 468 -> 68 face correspondence comes from the face mesh's own topology: MediaPipe names its
contours (``FACEMESH_FACE_OVAL``, ``_LIPS``, ``_LEFT_EYE``/``_RIGHT_EYE``,
``_LEFT_EYEBROW``/``_RIGHT_EYEBROW``, ``_NOSE`` in ``mediapipe.python.solutions.face_mesh_connections``).
Each iBUG point is taken on the matching contour at iBUG's definition (corners, centre lines,
cupid's-bow peaks) or, between those, at the nearest mesh vertex to iBUG's even arc-length
spacing, measured on the mean face of the real clips; left and right use mirror-image vertices.
iBUG's "right" is the person's right: point 0 is the jaw on the image's left, 36 the outer
corner of the eye on the image's left, for a face looking at the camera. The choice was checked
by drawing it over real frames next to MMPose's 68 points. On the real clips the two lie
0.040 inter-ocular distances apart on average (per point 0.018-0.115; the jaw, which MMPose draws
a little inside the face outline, 0.065; eyes 0.025, mouth 0.031, nose 0.033, brows 0.037).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from signpipe.keypoints.index_map import apply_map, gather_arrays
from signpipe.keypoints.layout import BODY_NAMES, FOOT_NAMES, NUM_HAND_JOINTS, NUM_KEYPOINTS, PARTS

POSE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer",
    "right_eye_inner", "right_eye", "right_eye_outer", "left_ear", "right_ear",
    "mouth_left", "mouth_right", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
"""BlazePose's 33 landmarks in order (``mediapipe.python.solutions.pose.PoseLandmark``)."""

POSE_ALIASES: dict[str, str] = {"left_foot_index": "left_big_toe", "right_foot_index": "right_big_toe"}
"""BlazePose names mapped to a differently named COCO-WholeBody keypoint (closest point, not the same)."""

FACE_MESH_68: tuple[int, ...] = (
    # Jaw 0-16 on FACEMESH_FACE_OVAL: 0 is the oval vertex level with the outer eye corners
    # (127; 16 its mirror 356), 8 the chin (152); 1-7 and 9-15 at even arc-length in between.
    127, 234, 93, 58, 172, 136, 149, 176, 152, 400, 378, 365, 397, 288, 323, 454, 356,
    # Brows 17-21 (person's right, outer -> inner) and 22-26 (left, inner -> outer): the five
    # vertices of the lower line of each FACEMESH_*_EYEBROW band. The upper line (70 63 105 66
    # 107 / 336 296 334 293 300) runs along the brow's top edge, 0.058 inter-ocular distances
    # from MMPose's brow points against the lower line's 0.037.
    46, 53, 52, 65, 55, 285, 295, 282, 283, 276,
    # Nose bridge 27-30 on FACEMESH_NOSE's midline 168-6-197-195-5-4-1: 27 level with the eye
    # corners (6), 30 the tip, the most forward vertex (4); 28, 29 at thirds (197, 5).
    6, 197, 5, 4,
    # Nose base 31-35: FACEMESH_NOSE's chain under the nostrils, alar base to alar base, through
    # the subnasale (2).
    98, 97, 2, 326, 327,
    # Right eye 36-41 (FACEMESH_RIGHT_EYE): outer corner 33, upper lid at thirds 160 158, inner
    # corner 133, lower lid at thirds 153 144. Left eye 42-47 mirrors it (inner corner first).
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # Outer lips 48-59 (FACEMESH_LIPS): corners 61, 291; 50, 52 the cupid's-bow peaks (37, 267),
    # 51 the top centre (0), 49, 53 halfway corner-to-peak (39, 269); 57 the bottom centre (17),
    # 56, 58 below the peaks (314, 84), 55, 59 halfway (321, 91).
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91,
    # Inner lips 60-67: inner corners 78, 308; 62, 66 the centres (13, 14); 61, 63, 65, 67 at
    # quarters of the inner contour (81, 311, 402, 178).
    78, 81, 13, 311, 308, 402, 14, 178,
)
"""Face mesh vertex of each of the 68 iBUG 300-W points, in iBUG order (face 23-90 of the 133 layout)."""


def _map() -> dict[str, tuple[tuple[int, int], ...]]:
    index = {name: i for i, name in enumerate(BODY_NAMES + FOOT_NAMES)}  # body and feet, 0-22
    face, left, right = PARTS["face"], PARTS["left_hand"], PARTS["right_hand"]
    pose = ((i, index[POSE_ALIASES.get(n, n)]) for i, n in enumerate(POSE_NAMES) if POSE_ALIASES.get(n, n) in index)
    return {
        "pose": tuple(sorted(pose, key=lambda pair: pair[1])),
        "face": tuple((vertex, face.start + k) for k, vertex in enumerate(FACE_MESH_68)),
        "left_hand": tuple((i, left.start + i) for i in range(NUM_HAND_JOINTS)),
        "right_hand": tuple((i, right.start + i) for i in range(NUM_HAND_JOINTS)),
    }


MEDIAPIPE_MAP: dict[str, tuple[tuple[int, int], ...]] = _map()
"""Per Holistic part, (MediaPipe index, 133-layout index) pairs; 133 keypoints not listed get score 0."""

_GATHER: dict[str, np.ndarray] = gather_arrays(MEDIAPIPE_MAP)
"""MEDIAPIPE_MAP as (2, N) index arrays (source, target), built once."""

UNMAPPED: tuple[int, ...] = tuple(sorted(
    set(range(NUM_KEYPOINTS)) - {target for pairs in MEDIAPIPE_MAP.values() for _, target in pairs}))
"""133-layout keypoints MediaPipe has no counterpart for (the two small toes)."""

HAND_NAMES: tuple[str, ...] = (
    "WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP",
    "INDEX_FINGER_MCP", "INDEX_FINGER_PIP", "INDEX_FINGER_DIP", "INDEX_FINGER_TIP",
    "MIDDLE_FINGER_MCP", "MIDDLE_FINGER_PIP", "MIDDLE_FINGER_DIP", "MIDDLE_FINGER_TIP",
    "RING_FINGER_MCP", "RING_FINGER_PIP", "RING_FINGER_DIP", "RING_FINGER_TIP",
    "PINKY_MCP", "PINKY_PIP", "PINKY_DIP", "PINKY_TIP",
)
"""MediaPipe's 21 hand landmarks in order (``mediapipe.python.solutions.hands.HandLandmark``): the
133 layout's hand joint order (wrist, thumb 1-4 ... pinky 1-4)."""

PART_SIZES: dict[str, int] = {"pose": len(POSE_NAMES), "face": 478, "left_hand": NUM_HAND_JOINTS,
                              "right_hand": NUM_HAND_JOINTS}
"""Landmarks per Holistic part at most: the face has 468, or 478 with refine_face_landmarks' iris points."""


def landmark_names(part: str) -> tuple[str, ...]:
    """Names of a Holistic part's landmarks, index order, as MediaPipe's enums spell them.

    Files that name points (pose-format headers) use these: BlazePose's ``PoseLandmark`` names
    (``LEFT_WRIST``), ``HandLandmark`` names (``INDEX_FINGER_TIP``), and the face mesh vertex
    number for the face (``"152"``).
    """
    if part == "pose":
        return tuple(name.upper() for name in POSE_NAMES)
    if part == "face":
        return tuple(str(i) for i in range(PART_SIZES["face"]))
    return HAND_NAMES


def mediapipe_sequence_to_wholebody(parts: Mapping[str, np.ndarray | None],
                                    num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """T frames of Holistic landmarks as xy (T, 133, 2) and score (T, 133), through ``MEDIAPIPE_MAP``.

    parts: per part of ``MEDIAPIPE_MAP`` (pose, face, left_hand, right_hand), a (T, N, 3) array
    of the part's N landmarks as (x, y, score) in any unit (the caller scales), N at least the
    highest index the map reads (33, 468, 21, 21); NaN or score 0 marks a landmark not found, and
    a part that is absent or None was not found in any frame. Keypoints not found get xy 0, score 0.
    """
    return apply_map(parts, _GATHER, num_frames)

def mediapipe_to_wholebody(parts: Mapping[str, np.ndarray | None]) -> tuple[np.ndarray, np.ndarray]:
    """One frame of Holistic landmarks as xy (133, 2) and score (133,).

    parts: per part of ``MEDIAPIPE_MAP`` (pose, face, left_hand, right_hand), an (N, 3) array of
    Holistic's N landmarks (33, 468 or 478, 21, 21) as (x, y, score), or None where Holistic
    found nothing (those keypoints keep score 0).
    """
    xy, score = mediapipe_sequence_to_wholebody(
        {part: None if points is None else points[None] for part, points in parts.items()}, 1)
    return xy[0], score[0]
