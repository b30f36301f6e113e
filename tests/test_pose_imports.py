"""Pose imports (openpose, mmpose-json), the signer track, and the mmpose backend's testable parts.

The real MMPose COCO-WholeBody predictions of ../shared/data/clips are the reference: the
openpose import is checked by writing them in OpenPose's layout and reading them back.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from signpipe.keypoints import NUM_KEYPOINTS, PARTS
from signpipe.keypoints.layout import LEFT_WRIST, RIGHT_WRIST
from signpipe.keypoints.openpose_map import BODY_25_NAMES, OPENPOSE_COUNTS, OPENPOSE_MAP
from signpipe.pose import Clip, file_sha256, make_backend
from signpipe.pose.mmpose import (
    chunks,
    enlarged_box,
    model_paths,
    person_boxes,
    resolve_device,
    signer_keypoints,
)
from signpipe.pose.mmpose_json import instance_person, read_mmpose_json
from signpipe.pose.openpose import read_openpose
from signpipe.pose.track import Person, centrality_rank, select_signer

CLIPS = {"FOOTBALL": ((640, 360), 62), "SOUP": ((320, 240), 41)}
"""Real clips: source (width, height) and frame count."""
LEFT_HAND_WRIST, RIGHT_HAND_WRIST = PARTS["left_hand"].start, PARTS["right_hand"].start


@pytest.fixture(scope="module")
def predictions(shared_data: Path) -> dict[str, list[dict]]:
    """The real MMPose prediction files' content, by clip name."""
    return {name: json.loads((shared_data / "clips" / f"{name}.mmpose.json").read_text()) for name in CLIPS}


def clip_of(video_id: str, size: tuple[int, int], frames: int, start: int = 0, end: int = -1) -> Clip:
    """A Clip as an import backend sees it (imports never decode frames)."""
    return Clip(video_id, {"frame_start": start, "frame_end": end}, frames, (1.0, 1.0), size, lambda: iter(()))


def arrays(entries: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """xy (T, 133, 2) and score (T, 133) of the one person per frame of a real prediction file."""
    people = [instance_person(e["instances"][0]) for e in entries]
    return np.stack([p.xy for p in people]), np.stack([p.score for p in people])


def to_openpose(xy: np.ndarray, score: np.ndarray) -> dict[str, list[float]]:
    """One person in OpenPose's JSON layout, through the inverse of OPENPOSE_MAP.

    OpenPose points without a 133 counterpart (neck, mid-hip, pupils) get a far-off junk value:
    the import must drop them.
    """
    person = {}
    for key, count in OPENPOSE_COUNTS.items():
        points = np.full((count, 3), 9999.0)
        for source, target in OPENPOSE_MAP[key]:
            points[source] = (*xy[target], score[target])
        person[key] = points.ravel().tolist()
    return person


def write_openpose(folder: Path, frames: list[list[dict]], name: str = "clip") -> Path:
    """A video's OpenPose folder: ``<name>_<12-digit frame>_keypoints.json`` per frame."""
    folder.mkdir(parents=True, exist_ok=True)
    for t, people in enumerate(frames):
        (folder / f"{name}_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return folder


# ---------------------------------------------------------------- openpose


def test_openpose_map_places_every_wholebody_point_once():
    targets = [t for pairs in OPENPOSE_MAP.values() for _, t in pairs]
    assert sorted(targets) == list(range(NUM_KEYPOINTS))
    dropped = {key: sorted(set(range(n)) - {s for s, _ in OPENPOSE_MAP[key]}) for key, n in OPENPOSE_COUNTS.items()}
    assert [BODY_25_NAMES[i] for i in dropped["pose_keypoints_2d"]] == ["neck", "mid_hip"]
    assert dropped["face_keypoints_2d"] == [68, 69]  # the pupils
    assert not dropped["hand_left_keypoints_2d"] and not dropped["hand_right_keypoints_2d"]
    body = dict(OPENPOSE_MAP["pose_keypoints_2d"])
    assert body[BODY_25_NAMES.index("left_wrist")] == LEFT_WRIST  # BODY_25 7 = LWrist
    assert body[BODY_25_NAMES.index("right_wrist")] == RIGHT_WRIST
    assert dict(OPENPOSE_MAP["hand_left_keypoints_2d"])[0] == LEFT_HAND_WRIST


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_openpose_import_gives_back_real_keypoints(name, predictions, tmp_path):
    size, count = CLIPS[name]
    xy, score = arrays(predictions[name])
    write_openpose(tmp_path / name, [[to_openpose(xy[t], score[t])] for t in range(count)], name)
    backend = make_backend({"backend": "openpose", "openpose": {"dir": str(tmp_path)}})
    kp = backend.extract(clip_of(name, size, count))
    assert kp.xy.shape == (count, NUM_KEYPOINTS, 2) and kp.score.shape == (count, NUM_KEYPOINTS)
    np.testing.assert_allclose(kp.xy, xy, atol=1e-3)
    np.testing.assert_allclose(kp.score, score, atol=1e-6)
    assert (kp.people == 1).all()
    window = backend.extract(clip_of(name, size, 20, start=5, end=25))
    np.testing.assert_allclose(window.xy, xy[5:25], atol=1e-3)
    assert backend.provenance["backend"] == "openpose"


def test_openpose_undetected_points_score_zero(predictions, tmp_path):
    xy, score = arrays(predictions["SOUP"][:4])
    frames = [[to_openpose(xy[t], score[t])] for t in range(4)]
    frames[1][0]["hand_right_keypoints_2d"] = []  # OpenPose found no right hand
    face = np.asarray(frames[2][0]["face_keypoints_2d"]).reshape(70, 3)
    face[:17] = 0  # OpenPose's x = y = c = 0 for undetected points (here the jaw)
    frames[2][0]["face_keypoints_2d"] = face.ravel().tolist()
    frames[3] = []  # nobody
    kp = read_openpose(write_openpose(tmp_path / "v", frames), (320, 240))
    right, jaw = PARTS["right_hand"], slice(PARTS["face"].start, PARTS["face"].start + 17)
    assert (kp.score[1, right] == 0).all() and (kp.xy[1, right] == 0).all()
    assert (kp.score[1, PARTS["left_hand"]] > 0).all()
    assert (kp.score[2, jaw] == 0).all() and (kp.xy[2, jaw] == 0).all()
    assert (kp.score[3] == 0).all() and (kp.xy[3] == 0).all() and kp.people.tolist() == [1, 1, 1, 0]


def test_openpose_frames_follow_their_numbers(predictions, tmp_path):
    xy, score = arrays(predictions["SOUP"][:4])
    folder = tmp_path / "v"
    folder.mkdir()
    for frame, t in zip([0, 1, 2, 10], range(4)):  # unpadded numbers, frames 3-9 missing
        (folder / f"v_{frame}_keypoints.json").write_text(json.dumps({"people": [to_openpose(xy[t], score[t])]}))
    (folder / "notes.txt").write_text("not a frame")
    kp = read_openpose(folder, (320, 240))
    assert len(kp.xy) == 11 and kp.people.tolist() == [1, 1, 1] + [0] * 7 + [1]
    np.testing.assert_allclose(kp.xy[10], xy[3], atol=1e-3)
    assert len(read_openpose(folder, (320, 240), 2, 5).xy) == 3
    (folder / "w_000000000002_keypoints.json").write_text(json.dumps({"people": []}))  # another run's file
    with pytest.raises(ValueError, match="two files for frame 2"):
        read_openpose(folder, (320, 240))


def test_openpose_rejects_coco18_body(tmp_path):
    person = {"pose_keypoints_2d": [1.0] * 18 * 3}
    folder = write_openpose(tmp_path / "v", [[person]])
    with pytest.raises(ValueError, match="BODY_25") as err:
        read_openpose(folder, (320, 240))
    assert "clip_000000000000_keypoints.json" in str(err.value)


def test_openpose_missing_folder_warns_and_leaves_undetected(tmp_path, caplog):
    backend = make_backend({"backend": "openpose", "openpose": {"dir": str(tmp_path)}})
    with caplog.at_level(logging.WARNING):
        kp = backend.extract(clip_of("absent", (320, 240), 7))
    assert "no predictions at" in caplog.text and "absent" in caplog.text
    assert kp.xy.shape == (7, NUM_KEYPOINTS, 2) and not kp.score.any()


# ---------------------------------------------------------------- select_signer


def moved(person: Person, factor: float, shift: tuple[float, float]) -> Person:
    """Another person: the same pose scaled about the origin and shifted."""
    offset = np.asarray(shift, np.float32)
    box = np.concatenate([person.box[:2] * factor + offset, person.box[2:] * factor + offset])
    return Person(person.xy * factor + offset, person.score, box)


@pytest.fixture(scope="module")
def signer(predictions) -> list[Person]:
    """The real signer of SOUP (320x240), one Person per frame, with MMPose's boxes."""
    return [instance_person(e["instances"][0]) for e in predictions["SOUP"]]


def test_signer_beats_a_larger_off_centre_person(signer):
    size = (320, 240)
    strangers = [moved(p, 1.3, (230, 90)) for p in signer]
    area = lambda b: (b[2] - b[0]) * (b[3] - b[1])  # noqa: E731
    assert area(strangers[0].box) > area(signer[0].box)
    assert centrality_rank(strangers[0].box, size) < centrality_rank(signer[0].box, size)
    xy, score, people = select_signer([[s, p] for p, s in zip(signer, strangers)], size)
    np.testing.assert_array_equal(xy, np.stack([p.xy for p in signer]))
    assert (people == 2).all()
    swapped = select_signer([[p, s] for p, s in zip(signer, strangers)], size)
    np.testing.assert_array_equal(swapped[0], xy)
    np.testing.assert_array_equal(swapped[1], score)


def test_signer_track_survives_a_person_appearing_mid_clip(signer):
    size = (1000, 400)  # the signer sits left of centre; the newcomer is larger and central
    stranger = moved(signer[0], 1.2, (380, 40))
    assert centrality_rank(stranger.box, size) > centrality_rank(signer[0].box, size)
    assert stranger.box[0] > signer[0].box[2]  # no overlap with the signer
    frames = [[p] if t < 5 else [moved(p, 1.2, (380, 40)), p] for t, p in enumerate(signer)]
    xy, _, people = select_signer(frames, size)
    np.testing.assert_array_equal(xy, np.stack([p.xy for p in signer]))
    assert people.tolist() == [1] * 5 + [2] * (len(signer) - 5)


def test_frames_with_nobody_or_only_a_stranger_score_zero(signer):
    size = (320, 240)
    stranger = moved(signer[3], 1.0, (200, 0))  # beside the signer, not overlapping
    frames = [[p] for p in signer[:6]]
    frames[2], frames[3] = [], [stranger]
    xy, score, people = select_signer(frames, size)
    assert not score[2].any() and not xy[2].any() and not score[3].any()
    np.testing.assert_array_equal(xy[4], signer[4].xy)  # the track goes on
    assert people.tolist() == [1, 1, 0, 1, 1, 1]


# ---------------------------------------------------------------- mmpose-json


def test_mmpose_json_real_clips_and_chirality(shared_data):
    for name, (size, count) in CLIPS.items():
        kp = read_mmpose_json(shared_data / "clips" / f"{name}.mmpose.json", size)
        assert kp.xy.shape == (count, NUM_KEYPOINTS, 2) and (kp.people == 1).all() and kp.score.all()
        shoulders = np.linalg.norm(kp.xy[:, 5] - kp.xy[:, 6], axis=1)
        to_own = np.linalg.norm(kp.xy[:, LEFT_WRIST] - kp.xy[:, LEFT_HAND_WRIST], axis=1)
        to_other = np.linalg.norm(kp.xy[:, LEFT_WRIST] - kp.xy[:, RIGHT_HAND_WRIST], axis=1)
        assert (to_own < 0.25 * shoulders).all() and (to_own < to_other).all(), name
        # a signer facing the camera: their left is on the image's right
        assert np.median(kp.xy[:, LEFT_WRIST, 0] - kp.xy[:, RIGHT_WRIST, 0]) > 0, name
        assert np.median(kp.xy[:, LEFT_HAND_WRIST, 0] - kp.xy[:, RIGHT_HAND_WRIST, 0]) > 0, name


def test_mmpose_json_window_file_forms_and_missing_file(predictions, tmp_path, caplog):
    size, count = CLIPS["FOOTBALL"]
    (tmp_path / "a.json").write_text(json.dumps(predictions["FOOTBALL"]))
    (tmp_path / "b.json").write_text(json.dumps({"meta_info": {"dataset_name": "coco_wholebody"},
                                                 "instance_info": predictions["FOOTBALL"]}))
    backend = make_backend({"backend": "mmpose-json", "mmpose_json": {"dir": str(tmp_path)}})
    full = backend.extract(clip_of("a", size, count))
    other_form = backend.extract(clip_of("b", size, count))
    np.testing.assert_array_equal(other_form.xy, full.xy)
    window = backend.extract(clip_of("a", size, 20, start=10, end=30))
    np.testing.assert_array_equal(window.xy, full.xy[10:30])
    np.testing.assert_array_equal(window.score, full.score[10:30])
    with caplog.at_level(logging.WARNING):
        missing = backend.extract(clip_of("c", size, 5))
    assert "no predictions at" in caplog.text and missing.xy.shape == (5, NUM_KEYPOINTS, 2)
    assert not missing.score.any()


# ---------------------------------------------------------------- mmpose (without mmpose)


def test_mmpose_config_errors_name_the_keys(tmp_path):
    config, checkpoint = tmp_path / "pose.py", tmp_path / "pose.pth"
    with pytest.raises(ValueError, match=r"pose\.mmpose\.config"):
        make_backend({"backend": "mmpose"})
    with pytest.raises(FileNotFoundError, match=r"pose\.mmpose\.config: .*pose\.py"):
        model_paths({"config": str(config), "checkpoint": str(checkpoint)})
    config.write_text("")
    with pytest.raises(ValueError, match=r"pose\.mmpose\.checkpoint"):
        model_paths({"config": str(config)})
    with pytest.raises(FileNotFoundError, match=r"pose\.mmpose\.checkpoint"):
        model_paths({"config": str(config), "checkpoint": str(checkpoint)})
    checkpoint.write_bytes(b"weights")
    with pytest.raises(ValueError, match=r"det_config and pose\.mmpose\.det_checkpoint"):
        model_paths({"config": str(config), "checkpoint": str(checkpoint), "det_config": str(config)})
    assert model_paths({"config": str(config), "checkpoint": str(checkpoint)}) == {
        "config": config, "checkpoint": checkpoint}


@pytest.mark.skipif(importlib.util.find_spec("mmpose") is not None, reason="mmpose is installed here")
def test_mmpose_missing_stack_names_the_extra_and_env(tmp_path):
    (tmp_path / "pose.py").write_text("")
    (tmp_path / "pose.pth").write_bytes(b"weights")
    cfg = {"backend": "mmpose", "mmpose": {"config": str(tmp_path / "pose.py"), "checkpoint": str(tmp_path / "pose.pth")}}
    with pytest.raises(ImportError) as err:
        make_backend(cfg)
    assert "`mmpose` extra" in str(err.value) and "workflow/envs/mmpose.yaml" in str(err.value)


def test_mmpose_instances_convert_like_the_json_import(predictions, shared_data):
    size, count = CLIPS["SOUP"]
    frames = [e["instances"] for e in predictions["SOUP"]]  # what split_instances gives per frame
    reference = read_mmpose_json(shared_data / "clips" / "SOUP.mmpose.json", size)
    for keep_boxes in (True, False):
        kp = signer_keypoints(frames, size, (1.0, 1.0), keep_boxes)
        np.testing.assert_array_equal(kp.xy, reference.xy)
        np.testing.assert_array_equal(kp.score, reference.score)
    # frames stored at half size: keypoints come back in source pixels
    halved = [[{**i, "keypoints": (np.asarray(i["keypoints"]) / 2).tolist(),
                "bbox": (np.asarray(i["bbox"]) / 2).tolist()} for i in f] for f in frames]
    kp = signer_keypoints(halved, (160, 120), (2.0, 2.0))
    np.testing.assert_allclose(kp.xy, reference.xy, rtol=1e-6)
    assert len(kp.people) == count


def test_mmpose_box_from_previous_keypoints(signer):
    size = (320, 240)
    np.testing.assert_array_equal(enlarged_box(None, size), [0, 0, 320, 240])
    np.testing.assert_allclose(enlarged_box(np.array([100, 100, 140, 180]), size, 1.5), [90, 80, 150, 200])
    np.testing.assert_allclose(enlarged_box(np.array([300, 10, 330, 50]), size, 2.0), [285, 0, 320, 70])
    previous = Person(signer[0].xy, signer[0].score)  # no detector box: the keypoints' own
    box = enlarged_box(previous.bounds(), size)
    confident = np.clip(previous.xy[previous.score > 0.3], 0, size)  # within the frame
    assert (box[:2] <= confident.min(axis=0)).all() and (box[2:] >= confident.max(axis=0)).all()
    assert (box >= 0).all() and box[2] <= 320 and box[3] <= 240


def test_mmpose_helpers(tmp_path):
    assert [len(b) for b in chunks(iter(range(41)), 16)] == [16, 16, 9]
    assert list(chunks([], 16)) == []
    boxes = np.array([[0, 0, 10, 10], [1, 1, 5, 5], [2, 2, 8, 8]])
    np.testing.assert_array_equal(person_boxes(boxes, np.array([0, 0, 2]), np.array([0.9, 0.1, 0.9])), boxes[:1])
    assert person_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0)).shape == (0, 4)
    assert resolve_device("auto", True) == "cuda:0" and resolve_device("auto", False) == "cpu"
    assert resolve_device("cuda", False) == "cuda:0" and resolve_device("cpu", True) == "cpu"
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x" * 3_000_000)
    assert file_sha256(weights) == hashlib.sha256(weights.read_bytes()).hexdigest()
