"""Keypoint layouts, index maps and graph edges shared by every stage and model."""

from signpipe.keypoints.layout import (
    HAND_EDGES,
    HAND_JOINT_NAMES,
    HAND_SLICES,
    NUM_HAND_JOINTS,
    NUM_KEYPOINTS,
    PARTS,
    keypoint_names,
    skeleton_edges,
)

__all__ = [
    "HAND_EDGES",
    "HAND_JOINT_NAMES",
    "HAND_SLICES",
    "NUM_HAND_JOINTS",
    "NUM_KEYPOINTS",
    "PARTS",
    "keypoint_names",
    "skeleton_edges",
]
