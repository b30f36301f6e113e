"""Pixel clips (signpipe.clips): frames and hand crops decoded at scale, cached once per run,
cropped and flipped per clip and epoch; GLE-Net's and HMA's inputs through their factories."""

from __future__ import annotations

import numpy as np
import pytest
import simplejpeg
import torch

from signpipe.clips import FrameClips, HandClips, decode_scaled, resize_image, scale_crop, transform_clip
from signpipe.data import ShardDataset
from signpipe.models.glenet import SPEC as GLENET
from signpipe.models.hma import SPEC as HMA
from test_glenet import frames_shard
from test_signbert import make_hands_shards

HMA_TINY = {"size": 16, "num_frames": 4}


@pytest.fixture(scope="module")
def hands(tmp_path_factory):
    return make_hands_shards(tmp_path_factory.mktemp("clips"), crop_size=32)


def _close(data: ShardDataset) -> None:
    """Closes the dataset's shard files: what it reads from now on must come from its cache."""
    for f in data._files:
        f.close()


# ---------------------------------------------------------------- resizing and decoding

def test_scale_crop_short_side_then_square() -> None:
    clip = np.zeros((2, 40, 80, 3), np.uint8)
    clip[:, :, 40:] = 255
    centred = scale_crop(clip, 20, 20)
    assert centred.shape == (2, 20, 20, 3)
    assert centred[0, 10, 0, 0] < 10 and centred[0, 10, 19, 0] > 245      # the middle: dark left, bright right
    assert scale_crop(clip, 20, 20, (0.0, 0.0))[0, 10, 15, 0] < 10        # leftmost crop: dark
    assert scale_crop(clip, 20, 20, (0.0, 0.999))[0, 10, 4, 0] > 245      # rightmost crop: bright
    assert scale_crop(clip, 40, 32).shape == (2, 32, 32, 3)                # no resize, a smaller crop


def test_decode_scaled_shrinks_by_the_largest_power_of_two_that_keeps_the_size() -> None:
    ramp = np.linspace(0, 255, 128)[None, :, None] * np.linspace(0.2, 1, 96)[:, None, None]
    image = np.broadcast_to(ramp, (96, 128, 3)).round().astype(np.uint8)
    row = np.frombuffer(simplejpeg.encode_jpeg(image, quality=95), np.uint8)
    assert decode_scaled(row, 96, 128).shape == (96, 128, 3)               # the full size: no shrinking
    assert decode_scaled(row, 48, 64).shape == (48, 64, 3)                 # 1/2
    assert decode_scaled(row, 25, 10).shape == (48, 64, 3)                 # 1/4 would be 24 high: 1/2
    assert decode_scaled(row, 1, 1).shape == (12, 16, 3)                   # 1/8 at most
    small = decode_scaled(row, 24, 32).astype(int)                         # 1/4: as the area average of all pixels
    assert np.abs(small - resize_image(image, 24, 32).astype(int)).max() <= 4


# ---------------------------------------------------------------- frames: GLE-Net's input (§5.1)

def test_clips_take_every_other_frame_crop_and_flip(tmp_path):
    path = frames_shard(tmp_path / "0.h5")
    cfg = {"short_side": 40, "crop": 32, "test_crop": 40, "frame_step": 2}
    train = GLENET.dataset({"frames": [path]}, "train", True, {**cfg, "num_frames": 4})
    test = GLENET.dataset({"frames": [path]}, "test", False, {**cfg, "num_frames": 4})
    item = train[0]
    assert item["jpeg"].shape == (4, 32, 32, 3) and (item["frames"] % 2 == 0).all()
    assert test[0]["jpeg"].shape == (4, 40, 40, 3) and (test[0]["frames"] % 2 == 0).all()
    plain = GLENET.dataset({"frames": [path]}, "train", True, {**cfg, "num_frames": 4, "flip": False})
    flipped = []
    for epoch in range(8):                                               # flips are drawn per item and epoch
        train.set_epoch(epoch)
        plain.set_epoch(epoch)                                           # the same crop, never flipped
        clip, reference = train[0]["jpeg"], plain[0]["jpeg"]
        assert torch.equal(clip, reference) or torch.equal(clip, reference.flip(2))   # mirrored left-right
        flipped.append(not torch.equal(clip, reference))
    assert 0 < sum(flipped) < 8, flipped
    train.set_epoch(3)
    plain.set_epoch(3)
    assert torch.equal(train[0]["jpeg"], plain[0]["jpeg"].flip(2) if flipped[3] else plain[0]["jpeg"])


def test_training_crops_move_per_epoch_and_are_one_square_of_every_frame(tmp_path):
    path = frames_shard(tmp_path / "0.h5")
    train = FrameClips([path], "train", True, 40, 32, num_frames=4)
    whole = FrameClips([path], "train", True, 40, 40, num_frames=4)      # the full scaled frames (40 x 53)
    places = set()
    for epoch in range(6):
        train.set_epoch(epoch)
        whole.set_epoch(epoch)
        clip, frames = train[2]["jpeg"].numpy(), np.stack(whole.images(np.array([2]), train[2]["frames"].numpy()[None])[0])
        found = [(top, left) for top in range(frames.shape[1] - 31) for left in range(frames.shape[2] - 31)
                 if np.array_equal(frames[:, top:top + 32, left:left + 32], clip)]
        assert found, f"epoch {epoch}: not one square of every frame"
        places.add(found[0])
    assert len(places) > 2, places                                       # a new place per epoch


def test_the_cache_serves_later_epochs_unchanged_without_the_file(tmp_path):
    path = frames_shard(tmp_path / "0.h5", frames=6)
    # more slots (12) than frames (6-8): every frame is read every epoch
    cached, uncached = (FrameClips([path], "train", True, 40, 32, 0.5, num_frames=12, cache_mb=mb) for mb in (64, 0))
    everything = list(range(len(cached)))
    cached.__getitems__(everything)                                      # epoch 0 fills the cache
    _close(cached)
    for epoch in (1, 2):
        cached.set_epoch(epoch)
        uncached.set_epoch(epoch)
        for ours, reference in zip(cached.__getitems__(everything), uncached.__getitems__(everything)):
            assert torch.equal(ours["jpeg"], reference["jpeg"]), ours["video_id"]
    _close(uncached)
    with pytest.raises(Exception):                                       # uncached: every epoch reads the file
        uncached[0]


def test_training_decodes_every_frame_a_clip_may_draw_at_its_first_read(tmp_path):
    path = frames_shard(tmp_path / "0.h5")
    train = FrameClips([path], "train", True, 40, 32, frame_step=2, num_frames=2)
    first = train[1]
    start = int(train._where["frames"][1][1])
    assert sorted(row - start for _, row in train.cache().images) == list(range(0, first["length"], 2))
    _close(train)
    for epoch in range(1, 6):                                            # later epochs: other frames, no file
        train.set_epoch(epoch)
        assert train[1]["jpeg"].shape == (2, 32, 32, 3)
    test = FrameClips([path], "train", False, 40, 32, frame_step=2, num_frames=2)
    test[1]
    assert len(test.cache().images) == 2                                 # at test: the frames read only


def test_the_cache_keeps_to_its_budget(tmp_path):
    path = frames_shard(tmp_path / "0.h5", frames=6)
    frame = 40 * 53 * 3                                                  # a 48 x 64 frame at short side 40
    data = FrameClips([path], None, False, 40, cache_mb=5.5 * frame / (1 << 20), num_frames=12)
    data.__getitems__(list(range(len(data))))
    cache = data.cache()
    assert len(cache.images) == 5 and cache.used == 5 * frame <= cache.budget


# ---------------------------------------------------------------- hand crops: HMA's input

def test_flip_swaps_the_hands_and_mirrors_images_and_poses():
    crop = np.zeros((1, 2, 16, 16, 3), np.uint8)
    crop[0, 0, :, :4, 0] = 255   # left hand: red stripe on its left edge
    crop[0, 1, :, :4, 2] = 255   # right hand: blue stripe on its left edge
    pose = np.zeros((1, 2, 21, 3), np.float32)
    pose[0, 0, 0] = (4.0, 8.0, 0.9)    # left wrist
    pose[0, 1, 0] = (12.0, 4.0, 0.8)   # right wrist
    images, poses = transform_clip(crop, pose, 16, 1.0)
    np.testing.assert_allclose(poses[0, :, 0], [[-0.5, 0.0, 0.9], [0.5, -0.5, 0.8]])
    flipped, flipped_poses = transform_clip(crop, pose, 16, 1.0, flip=True)
    assert flipped[0, 0, :, -4:, 2].min() == 255 and flipped[0, 0, :, :12].max() == 0  # the right hand, mirrored
    assert flipped[0, 1, :, -4:, 0].min() == 255  # the left hand now in the right slot
    np.testing.assert_allclose(flipped_poses[0, :, 0], [[-0.5, -0.5, 0.8], [0.5, 0.0, 0.9]])
    np.testing.assert_array_equal(flipped_poses[0, :, 1:], 0)  # undetected joints stay at 0


def test_window_and_resize_keep_poses_on_the_pixels():
    crop = np.zeros((1, 2, 32, 32, 3), np.uint8)
    crop[0, :, 10:12, 20:22] = 255  # a bright dot around (21, 11)
    pose = np.zeros((1, 2, 21, 3), np.float32)
    pose[0, :, 0] = (21.0, 11.0, 1.0)
    images, poses = transform_clip(crop, pose, 48, 0.75, offset=(0.0, 0.99))  # window x 8..32, y 0..24
    u, v = poses[0, 0, 0, :2]
    assert (u, v) == pytest.approx(((21 - 8) / 24 * 2 - 1, 11 / 24 * 2 - 1))
    y, x = np.unravel_index(images[0, 0, ..., 0].argmax(), (48, 48))
    assert abs((x + 0.5) / 48 * 2 - 1 - u) < 0.1 and abs((y + 0.5) / 48 * 2 - 1 - v) < 0.1


def clip_transforms(raw_crop, raw_pose, size, crop_fraction):
    """Every (top, left, flip) a training clip can get, with the clip it gives: the window cut
    here for all frames at once, resized by :func:`transform_clip`, flipped here (every frame
    mirrored, x negated, the hands swapped)."""
    window = max(1, int(round(crop_fraction * raw_crop.shape[-2])))
    for top in range(raw_crop.shape[-2] - window + 1):
        for left in range(raw_crop.shape[-2] - window + 1):
            pose = raw_pose - np.array([left, top, 0], np.float32)
            crop, pose = transform_clip(raw_crop[..., top:top + window, left:left + window, :], pose, size, 1.0)
            yield (top, left, False), (crop, pose)
            mirrored = np.concatenate([pose[:, ::-1, :, :1] * -1, pose[:, ::-1, :, 1:]], axis=-1)
            yield (top, left, True), (crop[:, ::-1, :, ::-1], mirrored)


def test_training_clips_are_flipped_and_cropped_once_per_clip(hands):
    """Each training clip is one ``size`` window of its scaled crops and one flip for all its frames
    (the flip swapping the hands); over epochs both flips and several windows occur."""
    data = HMA.dataset({"hands": hands}, "train", True, {**HMA_TINY, "num_frames": 6})
    drawn = []
    for epoch in range(12):
        data.set_epoch(epoch)
        sample = data[1]
        crops, poses = data.scaled(np.array([1]), sample["frames"].numpy()[None])
        crops = [np.stack(crops[0])]
        side = crops[0].shape[-2]
        assert side == 18                                                  # 32 px stored, 16 / round(0.875 * 32)
        assert not (crops[0][:, 0] == crops[0][:, 1]).all()               # the hands differ: a swap shows
        matches = [draw for draw, (crop, pose) in clip_transforms(crops[0], poses[0], 16, 16 / side)
                   if np.array_equal(crop, sample["crop"].numpy()) and np.allclose(pose, sample["pose"].numpy())]
        assert matches, f"epoch {epoch}: the clip is not one window and one flip of its frames"
        drawn.append(matches[0])
    assert {flip for _, _, flip in drawn} == {False, True}  # flipped, p = 0.5
    assert len({(top, left) for top, left, _ in drawn}) > 2  # random windows, not the centre only
    test = HMA.dataset({"hands": hands}, "train", False, {**HMA_TINY, "num_frames": 6})
    centred = test[1]
    crops, poses = test.scaled(np.array([1]), centred["frames"].numpy()[None])
    crop, _ = transform_clip(np.stack(crops[0]), poses[0], 16, 16 / crops[0][0].shape[-2])
    assert torch.equal(centred["crop"], torch.from_numpy(crop))  # at test: centred, not flipped


@pytest.mark.parametrize("size", [8, 16])
def test_scaled_crops_keep_their_poses_on_the_pixels(hands, size):
    """Crops scaled once (8 px: decoded at half the stored 32 px, then 9 px; 16 px: 18 px) give the
    clip that windowing the stored crop and resizing it each time gives, within a pixel, poses included."""
    data = HandClips(hands, "test", False, size=size, num_frames=6)
    items = np.arange(len(data))
    frames = data.frames(items)
    ours = data.read(items, frames)
    raw = ShardDataset.read(data, items, frames)
    for k in items:
        crop, pose = transform_clip(raw["crop"][k], raw["pose"][k], size, 0.875)
        np.testing.assert_allclose(ours["pose"][k], pose, atol=2 / size)      # one pixel of the input
        assert np.abs(ours["crop"][k].astype(int) - crop.astype(int)).mean() < 12
    _close(data)
    np.testing.assert_array_equal(data.read(items, frames)["crop"], ours["crop"])  # the crops came from the cache
