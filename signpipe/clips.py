"""Pixel clips for the pixel models: frames and hand crops read, resized, cropped and flipped here.

The loader layer of the pixel models (pytorchvideo's ``transform=`` hook, one place for all):
:class:`FrameClips` gives clips of full frames (rgb3d, GLE-Net), :class:`HandClips` clips of both
hands' crops with their 2D poses (HMA). Frames are sampled in time by
:class:`signpipe.data.ShardDataset`; each model module only says which sizes it wants.

What costs time is decoding JPEG and resizing, and it does not depend on the epoch: a frame is
always scaled to the same short side, a hand crop always to the scale at which its window is
``size`` pixels. So each stored image is decoded once per run, straight at the smallest
power-of-two scale that keeps the size the model needs (libjpeg's DCT scaling: a 1/8 decode costs
about half a full one and leaves almost nothing to resize), resized with OpenCV's area average on
uint8, and kept in a bounded in-memory cache (``cache_mb`` per dataset, shared out among its
DataLoader workers, each holding its part; images past the budget are decoded each time). In
training a video's first clip decodes every frame a later epoch may draw, so from the second
epoch on nothing is decoded. What does depend on the epoch is cheap and drawn per item and epoch
from ``(seed, epoch, item)``: the square crop's place and the horizontal flip, one draw for every
frame (and both hands) of a clip. At test the crop is centred and nothing is flipped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import simplejpeg
from torch.utils.data import get_worker_info

from signpipe.data import NUM_FRAMES, ShardDataset, random_offsets, sample_frames

CACHE_MB = 2048
"""Decoded images kept per dataset, in MiB, shared out among its DataLoader workers."""
MAX_DCT_FACTOR = 8
"""JPEG decoding shrinks by 2, 4 or 8 at most (libjpeg's fast power-of-two DCT scales)."""


def decode_scaled(row: np.ndarray | bytes, min_height: int, min_width: int) -> np.ndarray:
    """One stored JPEG row as RGB (h, w, 3) uint8 at the smallest of 1, 1/2, 1/4, 1/8 of its size
    that keeps ``h >= min_height`` and ``w >= min_width`` (decoded at that scale: the DCT does the shrinking)."""
    height, width = simplejpeg.decode_jpeg_header(row)[:2]
    factor = 1
    while factor < MAX_DCT_FACTOR and -(-height // (2 * factor)) >= min_height and -(-width // (2 * factor)) >= min_width:
        factor *= 2
    if factor == 1:
        return simplejpeg.decode_jpeg(row, colorspace="RGB")
    return simplejpeg.decode_jpeg(row, colorspace="RGB", min_height=-(-height // factor), min_width=-(-width // factor))


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(height, width) of a frame scaled so its short side is ``short_side``."""
    scale = short_side / min(height, width)
    return max(short_side, round(height * scale)), max(short_side, round(width * scale))


def resize_image(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w, 3) uint8 -> (height, width, 3) uint8: OpenCV's area average when shrinking, bilinear when enlarging."""
    if image.shape[:2] == (height, width):
        return image
    interpolation = cv2.INTER_AREA if height <= image.shape[0] and width <= image.shape[1] else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interpolation)


def crop_place(height: int, width: int, crop: int, offset: Sequence[float] | None = None) -> tuple[int, int]:
    """(top, left) of a ``crop`` x ``crop`` square in a (height, width) image: ``offset`` (y, x) in
    [0, 1) places it within the slack, None centres it."""
    slack_y, slack_x = height - crop, width - crop
    if offset is None:
        return slack_y // 2, slack_x // 2
    return int(offset[0] * (slack_y + 1)), int(offset[1] * (slack_x + 1))


def square_crop(clip: np.ndarray, crop: int, offset: Sequence[float] | None = None) -> np.ndarray:
    """Frames (N, H, W, 3) -> (N, crop, crop, 3), the same square of every frame (:func:`crop_place`)."""
    top, left = crop_place(clip.shape[1], clip.shape[2], crop, offset)
    return np.ascontiguousarray(clip[:, top:top + crop, left:left + crop])


def scale_crop(clip: np.ndarray, short_side: int, crop: int, offset: Sequence[float] | None = None) -> np.ndarray:
    """Frames (N, H, W, 3) uint8 -> (N, crop, crop, 3): short side to ``short_side``
    (:func:`resize_image`), then a square crop (:func:`square_crop`)."""
    height, width = short_side_size(*clip.shape[1:3], short_side)
    return square_crop(np.stack([resize_image(frame, height, width) for frame in clip]), crop, offset)


def transform_clip(crop: np.ndarray, pose: np.ndarray, size: int, crop_fraction: float = 0.875,
                   offset: tuple[float, float] | None = None, flip: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One clip's crops (N, 2, S, S, 3) uint8 and poses (N, 2, 21, 3) in crop pixels -> the model's input.

    A square window of side ``crop_fraction * S`` is cut at the same place in every frame and
    both hands (``offset`` (y, x) in [0, 1) of the slack; None: centred) and resized to ``size``;
    poses become x, y in [-1, 1] of that window (centre 0; undetected joints, score 0, at 0).
    ``flip`` mirrors the images horizontally: a mirrored right hand looks like a left one, so the
    hands swap places (and with them the hand model that decodes them, their chirality).
    Returns crops (N, 2, size, size, 3) uint8 and poses (N, 2, 21, 3) float32.
    """
    side = crop.shape[-2]
    window = max(1, int(round(crop_fraction * side)))
    top, left = crop_place(side, side, window, offset)
    images = crop[..., top:top + window, left:left + window, :]
    if window != size:
        images = np.stack([resize_image(image, size, size) for image in images.reshape(-1, window, window, 3)]
                          ).reshape(*crop.shape[:2], size, size, 3)
    if flip:
        images = images[:, ::-1, :, ::-1]  # swap the hands, mirror each image left-right
    return np.ascontiguousarray(images), window_pose(pose, top, left, window, flip)


def window_pose(pose: np.ndarray, top: int, left: int, window: int, flip: bool = False) -> np.ndarray:
    """Poses (N, 2, 21, 3) in crop pixels -> x, y in [-1, 1] of the ``window`` square at (top, left)
    (centre 0; undetected joints, score 0, at 0), float32; ``flip``: mirrored, the hands swapped."""
    score = pose[..., 2:].astype(np.float32)
    xy = (pose[..., :2] - np.array([left, top], np.float32)) * (2.0 / window) - 1.0
    if flip:
        xy, score = xy[:, ::-1] * np.array([-1.0, 1.0], np.float32), score[:, ::-1]
    xy = np.where(score > 0, xy, 0.0)
    return np.concatenate([xy, score], axis=-1).astype(np.float32)


class ImageCache:
    """Decoded images by (shard, row), up to ``budget`` bytes: filled first come, never evicted
    (a clip's frames are redrawn every epoch, so no image is likelier than another to come back)."""

    def __init__(self, budget: int) -> None:
        self.budget, self.used, self.images, self.full = budget, 0, {}, budget <= 0

    def get(self, key: tuple[int, int]) -> np.ndarray | None:
        return self.images.get(key)

    def put(self, key: tuple[int, int], image: np.ndarray) -> None:
        """Keeps ``image`` if it fits the budget; the first one that does not marks the cache ``full``."""
        if self.used + image.nbytes <= self.budget:
            self.images[key] = image
            self.used += image.nbytes
        else:
            self.full = True


class PixelClips(ShardDataset):
    """A :class:`ShardDataset` whose JPEG array ``image_array`` is decoded by :meth:`decode` once per
    run into a bounded :class:`ImageCache` (``cache_mb``; 0 decodes every time).

    In training, the first clip read of a video decodes every frame a later epoch may draw
    (:meth:`reachable`) while the cache has room: random frames reach all of them over the epochs
    anyway, and one read of the video's span beats one per epoch. At test only the (centred,
    fixed) frames read are decoded."""

    image_array = ""
    """The JPEG array read through the cache (``jpeg`` of frames shards, ``crop`` of hands shards)."""

    def __init__(self, *args: Any, cache_mb: float = CACHE_MB, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_mb = cache_mb
        self._cache, self._cache_pid = ImageCache(0), -1

    def decode(self, row: np.ndarray) -> np.ndarray:
        """One stored JPEG row as the image this dataset keeps."""
        raise NotImplementedError

    def cache(self) -> ImageCache:
        """This process's cache: the budget divided among the DataLoader's workers, each keeping its own
        (a forked worker starts its own rather than keep its parent's at the parent's budget)."""
        if self._cache_pid != os.getpid():
            info = get_worker_info()
            self._cache = ImageCache(int(self.cache_mb * (1 << 20)) // (info.num_workers if info else 1))
            self._cache_pid = os.getpid()
        return self._cache

    def reachable(self, item: int) -> np.ndarray:
        """Frame indices (M,) a training clip of video ``item`` can draw: all of them."""
        return np.arange(self._length[item])

    def images(self, items: np.ndarray, frames: np.ndarray) -> list[list[np.ndarray]]:
        """Per item of ``items`` (B,), its N images at ``frames`` (B, N) (the cache's own arrays: read
        only): from the cache, the missing ones read with one h5py read of their span, decoded once each."""
        cache, datasets = self.cache(), self._arrays()[self.image_array]
        shard, start = self._where[next(iter(self.sources))]
        clips = []
        for item, picked in zip(items, frames):
            s, rows = int(shard[item]), (start[item] + picked).tolist()
            found = {row: cache.get((s, row)) for row in rows}
            missing = sorted(row for row, image in found.items() if image is None)
            if missing and self.train and not cache.full:  # the video's first clip: all it may ever draw
                missing = sorted(set(missing) | {row for row in (start[item] + self.reachable(item)).tolist()
                                                 if cache.get((s, row)) is None})
            if missing:
                span = datasets[s][missing[0]:missing[-1] + 1]
                for row in missing:
                    image = self.decode(span[row - missing[0]])
                    cache.put((s, row), image)
                    found[row] = image
            clips.append([found[row] for row in rows])
        return clips

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (spawned workers) without the cache; each process fills its own."""
        return {**super().__getstate__(), "_cache": ImageCache(0), "_cache_pid": -1}


class FrameClips(PixelClips):
    """Clips of full frames from frames shards for the RGB models: item ``jpeg`` (N, crop, crop, 3)
    uint8, plus the usual ``label``, ``video_id``, ``frames``, ``length`` (:class:`ShardDataset`).

    Every ``frame_step``-th frame is kept, then ``num_frames`` of them drawn as ``sampling`` says
    (``signpipe.data``); each frame scaled to ``short_side`` (cached), then a square ``crop``
    (default: ``short_side``) at one random place per clip and epoch in training, centred at test,
    and in training mirrored left-right with probability ``flip`` (per clip and epoch)."""

    image_array = "jpeg"

    def __init__(self, shards: Any, split: str | None, train: bool, short_side: int, crop: int | None = None,
                 flip: float = 0.0, frame_step: int = 1, sampling: str = "segments", num_frames: int = NUM_FRAMES,
                 seed: int = 0, cache_mb: float = CACHE_MB) -> None:
        super().__init__(shards, ("jpeg",), split=split, num_frames=num_frames, train=train, seed=seed,
                         sampling=sampling, cache_mb=cache_mb)
        self.short_side, self.size, self.flip, self.frame_step = short_side, crop or short_side, flip, frame_step

    def decode(self, row: np.ndarray) -> np.ndarray:
        """A frame (H', W', 3) uint8 with its short side ``short_side``."""
        height, width = short_side_size(*simplejpeg.decode_jpeg_header(row)[:2], self.short_side)
        return resize_image(decode_scaled(row, height, width), height, width)

    def reachable(self, item: int) -> np.ndarray:
        """Every ``frame_step``-th frame: those a clip can draw."""
        return np.arange(0, self._length[item], self.frame_step)

    def frames(self, items: np.ndarray) -> np.ndarray:
        """Frame indices (B, N): ``num_frames`` of every ``frame_step``-th frame."""
        offsets = random_offsets(self.seed, self.epoch, items, self.num_frames) if self.train else None
        kept = -(-self._length[items] // self.frame_step)
        return sample_frames(kept, self.num_frames, offsets, self.sampling) * self.frame_step

    def read(self, items: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Scaled frames (cached), then each clip's crop and flip: one draw per item and epoch."""
        draws = random_offsets(self.seed + 1, self.epoch, items, 3) if self.train else None
        out = np.empty((*frames.shape, self.size, self.size, 3), np.uint8)
        for k, images in enumerate(self.images(items, frames)):  # each pixel copied once, into the batch
            top, left = crop_place(*images[0].shape[:2], self.size, None if draws is None else draws[k, :2])
            step = -1 if draws is not None and draws[k, 2] < self.flip else 1
            for n, image in enumerate(images):
                out[k, n] = image[top:top + self.size, left:left + self.size][:, ::step]
        return {"jpeg": out}


class HandClips(PixelClips):
    """Clips of hands shards for HMA: ``crop`` (N, 2, size, size, 3) uint8 and ``pose`` (N, 2, 21, 3)
    normalised by :func:`transform_clip`: a window of ``crop_fraction`` of the stored crop, resized
    to ``size``; in training one random window and a flip (p = ``flip``) per clip, drawn from
    (seed, epoch, item) like the frames; at test the centred window, no flip.

    The resizing does not depend on the epoch, so it is done once: each stored crop (side S) is
    decoded and scaled by ``size / round(crop_fraction * S)`` (:meth:`scaled_side`) into the cache,
    and a clip is a ``size`` window of those, its poses scaled alike."""

    image_array = "crop"

    def __init__(self, shards: Any, split: str | None, train: bool, size: int = 256, crop_fraction: float = 0.875,
                 flip: float = 0.5, num_frames: int = NUM_FRAMES, seed: int = 0, cache_mb: float = CACHE_MB) -> None:
        super().__init__(shards, ["crop", "pose"], split=split, num_frames=num_frames, train=train, seed=seed,
                         cache_mb=cache_mb)
        self.size, self.crop_fraction, self.flip = size, crop_fraction, flip
        self._sides: dict[int, int] = {}

    def scaled_side(self, stored: int) -> int:
        """Side of a stored crop of side ``stored`` scaled so its ``crop_fraction`` window is ``size`` pixels."""
        return max(self.size, round(stored * self.size / max(1, round(self.crop_fraction * stored))))

    def decode(self, row: np.ndarray) -> np.ndarray:
        """Both hands' crops (2, S', S', 3) uint8, S' = :meth:`scaled_side` of the stored S."""
        stored = simplejpeg.decode_jpeg_header(row)[1]
        side = self.scaled_side(stored)
        image = decode_scaled(row, 2 * side, side)
        if image.shape[0] != 2 * image.shape[1]:  # a side the scale does not divide: the stored size
            image = simplejpeg.decode_jpeg(row, colorspace="RGB")
        half = image.shape[1]
        return np.stack([resize_image(image[:half], side, side), resize_image(image[half:], side, side)])

    def scaled(self, items: np.ndarray, frames: np.ndarray) -> tuple[list[list[np.ndarray]], np.ndarray]:
        """Per item its N scaled crops (2, S', S', 3) (the cache's: read only) and poses (B, N, 2, 21, 3)
        in their pixels."""
        poses = ShardDataset.read(self, items, frames, names=("pose",))["pose"]
        crops = self.images(items, frames)
        for k, item in enumerate(items):
            poses[k, ..., :2] *= crops[k][0].shape[-2] / self.stored_side(int(item))
        return crops, poses

    def read(self, items: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Each clip's ``size`` window of its scaled crops, and its flip: one draw per item and epoch
        (:func:`transform_clip` with the resizing done once); each pixel copied once, into the batch."""
        draws = random_offsets(self.seed + 1, self.epoch, items, 3) if self.train else None
        crops, poses = self.scaled(items, frames)
        out = np.empty((*frames.shape, 2, self.size, self.size, 3), np.uint8)
        pose = np.empty((*frames.shape, 2, 21, 3), np.float32)
        for k, images in enumerate(crops):
            side = images[0].shape[-2]
            top, left = crop_place(side, side, self.size, None if draws is None else draws[k, :2])
            flip = draws is not None and draws[k, 2] < self.flip
            step = -1 if flip else 1
            for n, image in enumerate(images):
                out[k, n] = image[::step, top:top + self.size, left:left + self.size][:, :, ::step]
            pose[k] = window_pose(poses[k], top, left, self.size, flip)
        return {"crop": out, "pose": pose}

    def stored_side(self, item: int) -> int:
        """Side S of the crops stored for video ``item`` (its shard's ``crop`` JPEGs are 2S x S), read once per shard."""
        shard, start = (int(where[item]) for where in self._where["hands"])
        if shard not in self._sides:
            self._sides[shard] = int(simplejpeg.decode_jpeg_header(self._arrays()["crop"][shard][start])[1])
        return self._sides[shard]
