"""The hands stage: box geometry from hand and shoulder keypoints, crops, and the shard it writes."""

import json

import h5py
import numpy as np
import pytest

from signpipe.datasets import write_manifest
from signpipe.decode import decode_shard
from signpipe.hands import (
    BOX_SCALE, DETECTED, FOREARM, HAND_REACH, INTERPOLATED, NO_CUE, UPPER_ARM, crop_frame, crop_shard, hand_boxes,
    pose_in_crop, read_crops, smooth,
)
from signpipe.keypoints import HAND_SLICES
from signpipe.pose import extract_shard
from signpipe.shards import read_index, read_video
from signpipe.synth import make_corpus

SIZE = (640, 480)
# 21 joints of an open hand of unit length (wrist to middle fingertip) around its palm centre:
# the wrist below, four joints per finger fanning out above.
FAN = np.array([[0.0, 0.45]] + [[np.sin(a) * r, -np.cos(a) * r]
                                for a in np.radians([-70, -25, 0, 20, 40]) for r in (0.15, 0.28, 0.42, 0.55)])


def person(length, shoulder_width=100.0, hands=((380.0, 300.0), (260.0, 300.0)), reach=0.5):
    """Keypoints (T, 133, 2) and scores (T, 133) of a signer facing the camera: shoulders, arms and
    two hands (left of the signer on the image right) ``reach`` shoulder widths long (an adult's
    open hand is about half the shoulder width; a fist about a third of that)."""
    xy = np.zeros((length, 133, 2), np.float32)
    score = np.zeros((length, 133), np.float32)
    cx, cy = 320.0, 200.0
    for side, (shoulder, elbow, wrist) in enumerate(((5, 7, 9), (6, 8, 10))):
        sign = 1 if side == 0 else -1
        xy[:, shoulder] = (cx + sign * shoulder_width / 2, cy)
        xy[:, elbow] = (cx + sign * shoulder_width * 0.7, cy + shoulder_width * 0.9)
        xy[:, wrist] = hands[side][0], hands[side][1] + reach * shoulder_width
        xy[:, HAND_SLICES[side]] = np.asarray(hands[side], np.float32) + FAN * reach * shoulder_width
        score[:, [shoulder, elbow, wrist]] = 0.9
        score[:, HAND_SLICES[side]] = 0.9
    return xy, score


def centres(box):
    return (box[..., :2] + box[..., 2:]) / 2


def test_box_side_tracks_shoulder_width_not_hand_openness():
    open_hand = hand_boxes(*person(5, 100.0, reach=0.5), SIZE, sigma=0)
    fist = hand_boxes(*person(5, 100.0, reach=0.17), SIZE, sigma=0)
    nearer = hand_boxes(*person(5, 200.0, reach=0.5), SIZE, sigma=0)
    side = lambda result: result[0][..., 2] - result[0][..., 0]  # noqa: E731
    np.testing.assert_allclose(side(open_hand), BOX_SCALE * 100.0, rtol=1e-5)
    np.testing.assert_allclose(side(fist), side(open_hand), rtol=1e-5)
    np.testing.assert_allclose(side(nearer), 2 * side(open_hand), rtol=1e-5)
    np.testing.assert_allclose(open_hand[0][..., 3] - open_hand[0][..., 1], side(open_hand), rtol=1e-5)  # square
    assert open_hand[2] == pytest.approx(100.0) and nearer[2] == pytest.approx(200.0)
    # The open hand fits: every joint inside its box.
    xy, score = person(5, 100.0, reach=0.5)
    pose = pose_in_crop(xy, score, open_hand[0], 112)
    assert ((pose[..., :2] > 0) & (pose[..., :2] < 112)).all()


def test_hands_come_in_signer_order_left_then_right():
    xy, score = person(3, hands=((400.0, 280.0), (230.0, 330.0)))
    box, source, _ = hand_boxes(xy, score, SIZE, sigma=0)
    assert (source == DETECTED).all()
    left_mid = (xy[0, HAND_SLICES[0]].min(axis=0) + xy[0, HAND_SLICES[0]].max(axis=0)) / 2
    np.testing.assert_allclose(centres(box)[:, 0], np.broadcast_to(left_mid, (3, 2)), atol=1e-4)
    # Swapping the two hands' keypoints swaps the boxes and the poses.
    swapped_xy, swapped_score = xy.copy(), score.copy()
    for a, b in (HAND_SLICES, (9, 10), (7, 8), (5, 6)):
        swapped_xy[:, a], swapped_xy[:, b] = xy[:, b], xy[:, a]
        swapped_score[:, a], swapped_score[:, b] = score[:, b], score[:, a]
    swapped_box, _, _ = hand_boxes(swapped_xy, swapped_score, SIZE, sigma=0)
    np.testing.assert_allclose(swapped_box, box[:, ::-1])
    np.testing.assert_allclose(pose_in_crop(swapped_xy, swapped_score, swapped_box, 64),
                               pose_in_crop(xy, score, box, 64)[:, ::-1], atol=1e-4)


def test_missing_frames_are_interpolated_and_keep_score_zero():
    xy, score = person(10)
    xy[:, HAND_SLICES[1]] += np.arange(10)[:, None, None] * [6.0, -3.0]  # right hand moves on a line
    score[4:7, HAND_SLICES[1]] = 0.0  # lost for three frames
    xy[4:7, HAND_SLICES[1]] = 0.0
    box, source, _ = hand_boxes(xy, score, SIZE, sigma=0)
    assert source[:, 1].tolist() == [DETECTED] * 4 + [INTERPOLATED] * 3 + [DETECTED] * 3
    truth = centres(box)[3, 1] + (np.arange(10) - 3)[:, None] * [6.0, -3.0]
    np.testing.assert_allclose(centres(box)[:, 1], truth, atol=1e-3)
    pose = pose_in_crop(xy, score, box, 112)
    assert (pose[4:7, 1] == 0).all() and (pose[:4, 1, :, 2] > 0).all()


def test_hand_missing_from_the_whole_clip_is_extrapolated_from_the_arm():
    xy, score = person(6)
    score[:, HAND_SLICES[0]] = 0.0  # left hand never detected
    box, source, _ = hand_boxes(xy, score, SIZE, sigma=0)
    assert (source[:, 0] == FOREARM).all() and (source[:, 1] == DETECTED).all()
    wrist, elbow = xy[0, 9], xy[0, 7]
    np.testing.assert_allclose(centres(box)[:, 0], np.broadcast_to(wrist + HAND_REACH * (wrist - elbow), (6, 2)),
                               rtol=1e-5)
    assert (pose_in_crop(xy, score, box, 112)[:, 0] == 0).all()
    score[:, 9] = 0.0  # no wrist either: the upper arm
    assert (hand_boxes(xy, score, SIZE, sigma=0)[1][:, 0] == UPPER_ARM).all()
    score[:, 5:11] = 0.0  # no arms, no shoulders: the image centre, box from the image size
    box, source, width = hand_boxes(xy, score, SIZE, sigma=0)
    assert (source[:, 0] == NO_CUE).all()
    np.testing.assert_allclose(centres(box)[:, 0], np.broadcast_to(np.array(SIZE) / 2, (6, 2)))
    assert width == pytest.approx(0.35 * 480)


def test_frames_before_the_first_detection_follow_the_forearm():
    xy, score = person(8)
    score[:3, HAND_SLICES[1]] = 0.0  # the right hand appears at frame 3
    box, source, _ = hand_boxes(xy, score, SIZE, sigma=0)
    assert source[:, 1].tolist() == [FOREARM] * 3 + [DETECTED] * 5
    score[1, 10] = 0.0  # no wrist at frame 1: the upper arm
    assert hand_boxes(xy, score, SIZE, sigma=0)[1][:, 1].tolist() == [FOREARM, UPPER_ARM, FOREARM] + [DETECTED] * 5
    score[1, 8] = 0.0  # no elbow either: interpolated between its neighbours' estimates
    assert hand_boxes(xy, score, SIZE, sigma=0)[1][:, 1].tolist() == [FOREARM, INTERPOLATED, FOREARM] + [DETECTED] * 5


def test_smoothing_reduces_jitter_and_keeps_constant_tracks():
    rng = np.random.default_rng(0)
    track = np.cumsum(rng.normal(0, 1, (50, 2, 2)), axis=0) + rng.normal(0, 3, (50, 2, 2))
    smoothed = smooth(track, 1.0)
    assert np.abs(np.diff(smoothed, axis=0)).mean() < 0.6 * np.abs(np.diff(track, axis=0)).mean()
    np.testing.assert_allclose(smooth(np.full((7, 2), 5.0), 2.0), 5.0)
    np.testing.assert_array_equal(smooth(track, 0), track)


def test_crops_are_padded_not_shifted_at_the_border():
    height, width = 60, 80
    image = np.zeros((height, width, 3), np.uint8)
    image[..., 0] = np.arange(width)[None, :] * 3  # red encodes x, green y
    image[..., 1] = np.arange(height)[:, None] * 4
    image[..., 2] = 255
    scale = (2.0, 2.0)  # source pixels per stored pixel
    # Left box in the image; right box centred on the source's top-left corner (3/4 outside).
    box = np.array([[40.0, 20.0, 80.0, 60.0], [-20.0, -20.0, 20.0, 20.0]])
    crops = crop_frame(image, box, scale, crop_size=20, fill=7)
    # Crop pixel (u, v) centre is source x0 + (u + 0.5) * 2, stored (x0 / 2 + u + 0.5): pixel x0 / 2 + u.
    np.testing.assert_array_equal(crops[0, :, :, 0], np.broadcast_to(3 * (20 + np.arange(20)), (20, 20)))
    np.testing.assert_array_equal(crops[0, :, :, 1], np.broadcast_to(4 * (10 + np.arange(20))[:, None], (20, 20)))
    assert (crops[1, :10, :] == 7).all() and (crops[1, :, :10] == 7).all()  # padded, not moved
    np.testing.assert_array_equal(crops[1, 10:, 10:, 0], np.broadcast_to(3 * np.arange(10), (10, 10)))
    np.testing.assert_array_equal(crops[1, 10:, 10:, 2], 255)


def test_hand_at_the_border_stays_at_the_crop_centre():
    xy, score = person(4, hands=((630.0, 470.0), (260.0, 300.0)))  # left hand in the bottom-right corner
    box, _, _ = hand_boxes(xy, score, SIZE, sigma=0)
    assert box[0, 0, 2] > SIZE[0] and box[0, 0, 3] > SIZE[1]  # the box leaves the image
    pose = pose_in_crop(xy, score, box, 100)[:, 0, :, :2]
    np.testing.assert_allclose((pose.min(axis=1) + pose.max(axis=1)) / 2, 50.0, atol=1e-3)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """A tiny synthetic corpus: frames (stored at 2/3 of the source size) and keypoints of shard 0."""
    root = tmp_path_factory.mktemp("hands")
    make_corpus(root / "corpus", num_classes=3, signers=3, repeats=1, frames=12, width=96, height=72, progress=False)
    write_manifest({"adapter": "synthetic", "num_shards": 1}, root / "manifest.csv", root / "missing.csv",
                   corpus_dir=root / "corpus")
    decode_shard(root / "manifest.csv", 0, root / "frames.h5", root / "failures.csv", short_side=48, progress=False)
    extract_shard(root / "manifest.csv", root / "frames.h5", root / "keypoints.h5", root / "quality.csv",
                  {"backend": "sidecar"}, progress=False)
    return root


def test_crop_shard_writes_the_hands_schema(shards, tmp_path):
    stats = crop_shard(shards / "frames.h5", shards / "keypoints.h5", tmp_path / "hands.h5", crop_size=32,
                       threads=2, progress=False)
    with h5py.File(tmp_path / "hands.h5") as f, h5py.File(shards / "keypoints.h5") as kp:
        index, kp_index = read_index(f), read_index(kp)
        assert index[["video_id", "start", "length", "label", "split"]].equals(
            kp_index[["video_id", "start", "length", "label", "split"]])
        total = int(index["length"].sum())
        assert f.attrs["schema"] == "signpipe/hands/1" and stats["frames"] == total
        assert f["pose"].shape == (total, 2, 21, 3) and f["box"].shape == (total, 2, 4)
        assert f["crop"].shape == (total,) and read_crops(f["crop"], slice(0, 5)).shape == (5, 2, 32, 32, 3)
        counts = {name: int(f.attrs[f"frames_{name}"]) for name in ("detected", "interpolated", "forearm",
                                                                     "upper_arm", "no_cue")}
        assert sum(counts.values()) == 2 * total and counts["detected"] > total // 2
        assert counts == {name: stats[name] for name in counts}
        for row in index.itertuples():
            pose, box = read_video(f, "pose", row._asdict()), read_video(f, "box", row._asdict())
            xy, score = read_video(kp, "xy", row._asdict()), read_video(kp, "score", row._asdict())
            side = box[..., 2:] - box[..., :2]
            for hand, part in enumerate(HAND_SLICES):  # crop pixels map back onto the source keypoints
                back = box[:, hand, None, :2] + pose[:, hand, :, :2] * side[:, hand, None] / 32
                seen = score[:, part] > 0
                np.testing.assert_allclose(back[seen], xy[:, part][seen], atol=1e-3)
                np.testing.assert_array_equal(pose[:, hand, :, 2], score[:, part])


def test_raw_storage_matches_jpeg(shards, tmp_path):
    crop_shard(shards / "frames.h5", shards / "keypoints.h5", tmp_path / "jpeg.h5", crop_size=32, progress=False)
    crop_shard(shards / "frames.h5", shards / "keypoints.h5", tmp_path / "raw.h5", crop_size=32, storage="raw",
               progress=False)
    with h5py.File(tmp_path / "jpeg.h5") as jpeg, h5py.File(tmp_path / "raw.h5") as raw:
        assert raw["crop"].shape[1:] == (2, 32, 32, 3) and raw["crop"].dtype == np.uint8
        a, b = read_crops(jpeg["crop"], slice(0, 40)), read_crops(raw["crop"], slice(0, 40))
        assert a.shape == b.shape and np.abs(a.astype(int) - b).mean() < 4
        np.testing.assert_array_equal(jpeg["box"][:], raw["box"][:])


def test_mismatched_keypoints_shard_is_refused(shards, tmp_path):
    other = tmp_path / "other_frames.h5"
    decode_shard(shards / "manifest.csv", 0, other, tmp_path / "f.csv", short_side=48, progress=False)
    with h5py.File(other, "a") as f:  # drop a frame count out of step
        index = f["index"][()]
        index["length"][0] -= 1
        f["index"][...] = index
    with pytest.raises(ValueError, match="rerun the pose stage"):
        crop_shard(other, shards / "keypoints.h5", tmp_path / "hands.h5", crop_size=32, progress=False)


def test_a_video_that_fails_is_written_empty_and_named(shards, tmp_path, caplog):
    """A corrupt stored frame fails its video only: written with 0 frames (loaders skip it), named in the attrs."""
    frames = tmp_path / "frames.h5"
    frames.write_bytes((shards / "frames.h5").read_bytes())
    with h5py.File(frames, "a") as f:
        index = read_index(f)
        bad = index.loc[1, "video_id"]
        f["jpeg"][int(index.loc[1, "start"]) + 2] = np.frombuffer(b"\xff\xd8 not a JPEG", np.uint8)
    stats = crop_shard(frames, shards / "keypoints.h5", tmp_path / "hands.h5", crop_size=32, threads=2,
                       progress=False)
    with h5py.File(tmp_path / "hands.h5") as f:
        hands = read_index(f).set_index("video_id")
        failures = json.loads(f.attrs["failures"])
    assert list(failures) == [bad] and failures[bad].startswith("ValueError: ")
    assert hands.loc[bad, "length"] == 0 and stats["failed"] == 1
    others = index.set_index("video_id").drop(bad)
    assert hands.drop(bad)["length"].equals(others["length"]) and stats["videos"] == len(others)
    assert f"video {bad}: cannot crop its hands (ValueError" in caplog.text
