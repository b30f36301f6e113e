import numpy as np

from signpipe.keypoints import HAND_EDGES, NUM_KEYPOINTS, PARTS, keypoint_names, skeleton_edges
from signpipe.pose.mmpose_json import frames_of


def test_names_are_unique_and_cover_the_layout():
    names = keypoint_names()
    assert len(names) == NUM_KEYPOINTS == len(set(names))
    assert names[9] == "left_wrist" and names[91] == "left_hand_wrist" and names[132] == "right_hand_pinky4"
    assert sum(s.stop - s.start for s in PARTS.values()) == NUM_KEYPOINTS


def test_hand_edges_form_a_tree_rooted_at_the_wrist():
    children = [child for _, child in HAND_EDGES]
    assert len(HAND_EDGES) == 20 and sorted(children) == list(range(1, 21))
    assert [parent for parent, child in HAND_EDGES if child in (1, 5, 9, 13, 17)] == [0] * 5


def test_skeleton_edges_stay_in_range_and_join_wrists_to_hands():
    edges = np.array(skeleton_edges())
    assert edges.min() >= 0 and edges.max() < NUM_KEYPOINTS
    assert (9, 91) in skeleton_edges() and (10, 112) in skeleton_edges()


def _entry(frame_id, x):
    return {"frame_id": frame_id, "instances": [{"keypoints": [[x, 0.0]] * 133, "keypoint_scores": [0.9] * 133}]}


def test_mmpose_frame_ids_from_zero_or_one():
    zero_based = frames_of([_entry(0, 1.0), _entry(1, 2.0)])
    one_based = frames_of([_entry(1, 1.0), _entry(2, 2.0)])
    assert [f[0].xy[0, 0] for f in zero_based] == [f[0].xy[0, 0] for f in one_based] == [1.0, 2.0]
    assert len(frames_of([_entry(0, 1.0), _entry(3, 2.0)])) == 4  # gaps stay as empty frames
