"""The COCO-WholeBody 133-keypoint layout that every signpipe stage uses (DESIGN §4).

Index ranges: 0-16 body, 17-22 feet, 23-90 face (68 points), 91-111 the signer's left
hand, 112-132 the signer's right hand. Hand joints follow the OpenPose/MMPose order:
wrist, then thumb, index, middle, ring and pinky, each from base (1) to tip (4).
"""

from __future__ import annotations

NUM_KEYPOINTS = 133
NUM_HAND_JOINTS = 21

BODY_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)
FOOT_NAMES: tuple[str, ...] = (
    "left_big_toe", "left_small_toe", "left_heel",
    "right_big_toe", "right_small_toe", "right_heel",
)
FINGERS: tuple[str, ...] = ("thumb", "index", "middle", "ring", "pinky")
HAND_JOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{k}" for finger in FINGERS for k in range(1, 5)
)

PARTS: dict[str, slice] = {
    "body": slice(0, 17),
    "feet": slice(17, 23),
    "face": slice(23, 91),
    "left_hand": slice(91, 112),
    "right_hand": slice(112, 133),
}
"""Index range of each part in the 133 layout."""

HAND_SLICES: tuple[slice, slice] = (PARTS["left_hand"], PARTS["right_hand"])
"""(left, right) of the signer: the hand axis order of every signpipe array."""

# Landmarks used by several stages.
LEFT_SHOULDER, RIGHT_SHOULDER = 5, 6
LEFT_ELBOW, RIGHT_ELBOW = 7, 8
LEFT_WRIST, RIGHT_WRIST = 9, 10
FACE_MOUTH = slice(23 + 48, 23 + 68)
"""The 20 mouth points of the 68-point face (iBUG 300-W order, points 49-68)."""


def keypoint_names() -> list[str]:
    """Names of all 133 keypoints in index order."""
    names = list(BODY_NAMES) + list(FOOT_NAMES)
    names += [f"face{i}" for i in range(68)]
    names += [f"left_hand_{n}" for n in HAND_JOINT_NAMES]
    names += [f"right_hand_{n}" for n in HAND_JOINT_NAMES]
    return names


HAND_EDGES: tuple[tuple[int, int], ...] = tuple(
    edge
    for f in range(5)
    for edge in [(0, 1 + 4 * f)] + [(1 + 4 * f + k, 2 + 4 * f + k) for k in range(3)]
)
"""Physical bones of one 21-joint hand (parent, child), local indices."""

BODY_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 3), (2, 4), (5, 6), (5, 7), (7, 9), (6, 8), (8, 10),
    (5, 11), (6, 12), (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    (15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22),
)
"""Body and feet bones in global indices."""


def skeleton_edges() -> list[tuple[int, int]]:
    """Edges over the 133 layout for drawing: body, both hands (joined at the wrists), face outline."""
    edges = list(BODY_EDGES)
    for hand, wrist in zip(HAND_SLICES, (LEFT_WRIST, RIGHT_WRIST)):
        edges += [(hand.start + a, hand.start + b) for a, b in HAND_EDGES]
        edges.append((wrist, hand.start))
    jaw = range(23, 23 + 17)
    edges += [(a, a + 1) for a in jaw[:-1]]
    return edges


def _face_mirror() -> list[int]:
    """Each of the 68 iBUG face points' mirror image across the face's vertical axis (local indices)."""
    pairs = [(k, 16 - k) for k in range(17)]                                     # jaw
    pairs += [(17 + k, 26 - k) for k in range(5)]                                # brows
    pairs += [(27 + k, 27 + k) for k in range(4)]                                # nose bridge
    pairs += [(31 + k, 35 - k) for k in range(5)]                                # nostrils
    pairs += list(zip(range(36, 42), (45, 44, 43, 42, 47, 46)))                  # eyes: corner to corner
    pairs += [(48 + k, 54 - k) for k in range(7)] + [(55 + k, 59 - k) for k in range(5)]  # outer lips
    pairs += [(60 + k, 64 - k) for k in range(5)] + [(65 + k, 67 - k) for k in range(3)]  # inner lips
    mirror = [0] * 68
    for a, b in pairs:
        mirror[a], mirror[b] = b, a
    return mirror


def _flip_permutation() -> tuple[int, ...]:
    body = [0] + [k + 1 if k % 2 else k - 1 for k in range(1, 17)]      # 1<->2, 3<->4, ..., 15<->16
    feet = [20, 21, 22, 17, 18, 19]
    face = [PARTS["face"].start + k for k in _face_mirror()]
    left, right = (list(range(s.start, s.stop)) for s in HAND_SLICES)
    return tuple(body + feet + face + right + left)


FLIP_PERMUTATION: tuple[int, ...] = _flip_permutation()
"""Index of each keypoint's mirror image in the 133 layout: a mirrored frame (x flipped) has at
index i what the original has at ``FLIP_PERMUTATION[i]`` (left and right body points, feet, face
points and hands swapped; the nose and the face's midline stay). Its own inverse."""
