"""Hands stage: frames + keypoints shards -> both hands' crops, poses and boxes (DESIGN §2-3).

As SignBERT and HMA do, the hand and shoulder keypoints place a square box on each hand: its
centre comes from the confident hand joints, its side is ``box_scale`` times the signer's
shoulder width, so the crop scale follows the signer's distance from the camera and never the
hand shape (a fist and an open hand get the same box). Where a hand was not detected between
two detections, its box centre is interpolated from them; before its first and after its last
detection (the whole clip when it is never detected) the centre is extrapolated along the
forearm (wrist and elbow), else along the upper arm. Box centres are smoothed over time, and
boxes that leave the image are padded with a constant colour, never shifted, so the hand stays
at the crop centre.

Crops are cut from the stored frames (the source resized to ``decode.short_side``), so that
setting bounds the detail a crop can hold. A keypoint dataset (``signpipe.datasets.KEYPOINT_ADAPTERS``)
has no frames: its hands shard holds the same poses and boxes, in the nominal frame its keypoints
shard records, and no ``crop`` array; the attr ``crops`` (false) says so (:func:`has_crops`).
Coordinates are continuous pixels of the source video (pixel ``i`` spans ``[i, i + 1)``), the
convention of the keypoints shard.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import h5py
import numpy as np
import simplejpeg

from signpipe.jobs import describe, fails_the_job
from signpipe.keypoints import HAND_SLICES, NUM_HAND_JOINTS
from signpipe.keypoints.layout import LEFT_ELBOW, LEFT_SHOULDER, LEFT_WRIST, RIGHT_ELBOW, RIGHT_SHOULDER, RIGHT_WRIST
from signpipe.keypoints.quality import DETECTION_THRESHOLD, part_detected
from signpipe.logs import track
from signpipe.shards import VLEN_BYTES, decode_jpeg, ShardWriter, read_index

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CROP_SIZE = 256
"""Side of a hand crop in pixels (SignBERT rescales hand crops to 256 x 256)."""
BOX_SCALE = 0.8
"""Box side / shoulder width. An adult hand (wrist to middle fingertip) is about half the
shoulder width, and its joints reach at most 0.31 shoulder widths from the box centre in any
orientation (measured on the real MMPose clips); 0.8 leaves 0.09 shoulder widths of context
on each side for smoothing lag and joint noise."""
HAND_REACH = 0.35
"""Hand centre = wrist + HAND_REACH * (wrist - elbow): wrist to mid-hand over the forearm length."""
ARM_REACH = 1.15
"""Hand centre = elbow + ARM_REACH * (elbow - shoulder): a straight arm (forearm 0.85 upper arm)."""
FALLBACK_SHOULDER = 0.35
"""Shoulder width as a share of the source's short side, for clips where no frame shows both shoulders."""
STORAGES = ("jpeg", "raw")

DETECTED, INTERPOLATED, FOREARM, UPPER_ARM, NO_CUE = range(5)
BOX_SOURCES = ("detected", "interpolated", "forearm", "upper_arm", "no_cue")
"""How a box centre was found (``box_source`` values): the hand's joints in this frame;
interpolated in time from other frames' centres; extrapolated from this frame's wrist and elbow
(forearm) or elbow and shoulder (upper arm); nothing in the whole clip to go by (the image centre)."""
ARMS = ((LEFT_SHOULDER, LEFT_ELBOW, LEFT_WRIST), (RIGHT_SHOULDER, RIGHT_ELBOW, RIGHT_WRIST))
"""Shoulder, elbow, wrist of the signer's (left, right) arm."""
INDEX_EXTRA = [("src_height", np.int64), ("src_width", np.int64), ("shoulder_width", np.float32)]


def hand_arrays(crop_size: int, storage: str, crops: bool = True) -> dict[str, tuple[Any, tuple[int, ...]]]:
    """The per-frame arrays of a hands shard.

    crop (only with ``crops``): raw (T, 2, S, S, 3) uint8, or JPEG (T,) with both hands in one
    (2S, S) image, left above right (:func:`decode_crops`); pose (T, 2, 21, 3) float32 (x, y in crop
    pixels, score); box (T, 2, 4) float32 (x0, y0, x1, y1 in source pixels); box_source (T, 2) uint8
    (BOX_SOURCES).
    """
    if storage not in STORAGES:
        raise ValueError(f"hands.storage: {storage!r} is not one of {', '.join(STORAGES)}")
    crop = (VLEN_BYTES, ()) if storage == "jpeg" else (np.uint8, (2, crop_size, crop_size, 3))
    return {**({"crop": crop} if crops else {}), "pose": (np.float32, (2, NUM_HAND_JOINTS, 3)),
            "box": (np.float32, (2, 4)), "box_source": (np.uint8, (2,))}


def has_crops(f: h5py.File) -> bool:
    """Whether an open hands shard holds crops: its ``crops`` attr; shards written before it existed all do."""
    return bool(f.attrs.get("crops", True))


def encode_crops(crops: np.ndarray, quality: int) -> bytes:
    """One JPEG of both hands' crops (2, S, S, 3) uint8: a (2S, S) image, left hand on top.

    One image per frame halves the per-row cost of storing and decoding; with S a multiple of
    16 the seam lies on a JPEG block boundary, so neither hand bleeds into the other.
    """
    return simplejpeg.encode_jpeg(crops.reshape(-1, *crops.shape[2:]), quality=quality, colorspace="RGB")


def decode_crops(rows: Iterable[np.ndarray]) -> np.ndarray:
    """Crops (n, 2, S, S, 3) uint8 from n JPEG rows of a hands shard's ``crop`` array."""
    images = [decode_jpeg(row) for row in rows]
    return np.stack([image.reshape(2, image.shape[1], *image.shape[1:]) for image in images])


def read_crops(ds: h5py.Dataset, rows: slice) -> np.ndarray:
    """Crops (n, 2, S, S, 3) uint8 of rows ``rows`` of a ``crop`` array, JPEG or raw."""
    data = ds[rows]
    return decode_crops(data) if ds.dtype == VLEN_BYTES else data


def shoulder_width(xy: np.ndarray, score: np.ndarray, source_size: tuple[int, int]) -> float:
    """The signer's shoulder width in source pixels: the median over frames with both shoulders.

    xy (T, 133, 2), score (T, 133). The median over the clip ignores single bad frames and torso
    turns; without shoulders it is FALLBACK_SHOULDER of the source's short side.
    """
    both = (score[:, LEFT_SHOULDER] > DETECTION_THRESHOLD) & (score[:, RIGHT_SHOULDER] > DETECTION_THRESHOLD)
    if not both.any():
        return FALLBACK_SHOULDER * min(source_size)
    return float(np.median(np.linalg.norm(xy[both, LEFT_SHOULDER] - xy[both, RIGHT_SHOULDER], axis=-1)))


def _fill_gaps(valid: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Centres (T, 2) where ``valid`` (T,), linearly interpolated between them and held at the ends."""
    t = np.arange(len(valid))
    return np.stack([np.interp(t, t[valid], centre[valid, k]) for k in range(2)], axis=-1)


def _cues(xy: np.ndarray, score: np.ndarray, hand: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per-frame centre estimates of one hand, best first: [(valid (T,), centre (T, 2))] from the hand
    joints (middle of the confident joints' bounding box), the forearm and the upper arm."""
    detected = part_detected(score)[("left_hand", "right_hand")[hand]]
    joints = xy[detected, HAND_SLICES[hand]]
    found = (score[detected, HAND_SLICES[hand]] > DETECTION_THRESHOLD)[..., None]
    centre = np.zeros((len(xy), 2))
    centre[detected] = (np.where(found, joints, np.inf).min(axis=1) + np.where(found, joints, -np.inf).max(axis=1)) / 2
    shoulder, elbow, wrist = (xy[:, k] for k in ARMS[hand])
    seen = score[:, ARMS[hand]] > DETECTION_THRESHOLD
    return [(detected, centre), (seen[:, 2] & seen[:, 1], wrist + HAND_REACH * (wrist - elbow)),
            (seen[:, 1] & seen[:, 0], elbow + ARM_REACH * (elbow - shoulder))]


def hand_centres(xy: np.ndarray, score: np.ndarray, hand: int,
                 source_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Box centres (T, 2) of one hand (0 left, 1 right) in source pixels and how each was found (T,) uint8.

    Frames with the hand detected use its joints; gaps between them are interpolated. Frames
    before the first and after the last detection (all frames when the hand is never detected)
    are extrapolated from the forearm where wrist and elbow are seen, else from the upper arm;
    what is left is interpolated in time, held at the ends. Nothing at all: the image centre.
    """
    (detected, joints), *arm = _cues(xy, score, hand)
    length = len(xy)
    centre = np.zeros((length, 2))
    source = np.full(length, NO_CUE, np.uint8)
    known = np.zeros(length, bool)
    if detected.any():
        first, last = np.flatnonzero(detected)[[0, -1]]
        span = slice(first, last + 1)
        centre[span] = _fill_gaps(detected[span], joints[span])
        source[span] = np.where(detected[span], DETECTED, INTERPOLATED)
        known[span] = True
    for code, (valid, estimate) in zip((FOREARM, UPPER_ARM), arm):
        use = valid & ~known
        centre[use], source[use], known[use] = estimate[use], code, True
    if not known.any():
        return np.broadcast_to(np.array(source_size, float) / 2, (length, 2)).copy(), source
    source[~known] = INTERPOLATED
    return _fill_gaps(known, centre), source


def smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing of ``values`` (T, ...) along time, ``sigma`` in frames, ends held."""
    if sigma <= 0 or len(values) < 2:
        return values
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.concatenate([np.repeat(values[:1], radius, 0), values, np.repeat(values[-1:], radius, 0)])
    flat = padded.reshape(len(padded), -1)
    out = np.stack([np.convolve(flat[:, k], kernel, mode="valid") for k in range(flat.shape[1])], axis=-1)
    return out.reshape(values.shape)


def hand_boxes(xy: np.ndarray, score: np.ndarray, source_size: tuple[int, int], box_scale: float = BOX_SCALE,
               sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray, float]:
    """Square boxes on both hands of one clip.

    xy (T, 133, 2) source pixels, score (T, 133); source_size (width, height).
    Returns box (T, 2, 4) float32 (x0, y0, x1, y1) in source pixels, box_source (T, 2) uint8
    (BOX_SOURCES) and the shoulder width in source pixels. The side of every box of the clip is
    ``box_scale`` shoulder widths; centres are smoothed with a Gaussian of ``sigma`` frames.
    """
    width = shoulder_width(xy, score, source_size)
    centre, source = zip(*(hand_centres(xy, score, hand, source_size) for hand in range(2)))
    centre, source = np.stack(centre, axis=1), np.stack(source, axis=1)
    centre = smooth(centre, sigma)
    half = box_scale * width / 2
    box = np.concatenate([centre - half, centre + half], axis=-1).astype(np.float32)
    return box, source, width


def pose_in_crop(xy: np.ndarray, score: np.ndarray, box: np.ndarray, crop_size: int) -> np.ndarray:
    """Both hands' joints in crop pixels: (T, 2, 21, 3) float32 (x, y, score).

    xy (T, 133, 2) and score (T, 133) of the keypoints shard, box (T, 2, 4) in source pixels.
    Scores are the pose stage's, unchanged; joints with score 0 (not detected) get x = y = 0.
    """
    hands = [np.concatenate([xy[:, s], score[:, s, None]], axis=-1) for s in HAND_SLICES]
    pose = np.stack(hands, axis=1).astype(np.float32)  # (T, 2, 21, 3)
    origin = box[:, :, None, :2]
    side = (box[:, :, None, 2:] - origin)
    pose[..., :2] = (pose[..., :2] - origin) * crop_size / side
    pose[..., :2] *= (pose[..., 2:] > 0)
    return pose


def crop_frame(image: np.ndarray, box: np.ndarray, scale: tuple[float, float], crop_size: int,
               fill: int = 0) -> np.ndarray:
    """Both hands' crops (2, S, S, 3) uint8 of one stored frame (H, W, 3).

    box (2, 4) in source pixels; scale (sx, sy) = source pixels per stored pixel. Parts of a box
    outside the image are filled with ``fill``, so the box centre stays the crop centre.
    """
    sx, sy = scale
    crops = np.empty((2, crop_size, crop_size, 3), np.uint8)
    for hand, (x0, y0, x1, y1) in enumerate(box):
        ax, ay = (x1 - x0) / (crop_size * sx), (y1 - y0) / (crop_size * sy)
        # Crop pixel u (centre u + 0.5) samples stored pixel (x0 / sx + (u + 0.5) * ax) - 0.5.
        warp = np.array([[ax, 0, x0 / sx + 0.5 * ax - 0.5], [0, ay, y0 / sy + 0.5 * ay - 0.5]])
        cv2.warpAffine(image, warp, (crop_size, crop_size), dst=crops[hand],
                       flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=(fill, fill, fill))
    return crops


@dataclass
class HandClip:
    """The hands of one video, ready for the shard (arrays as in :func:`hand_arrays`; ``crop`` None without frames)."""

    crop: np.ndarray | list[bytes] | None
    pose: np.ndarray
    box: np.ndarray
    box_source: np.ndarray
    shoulder_width: float


def crop_video(jpeg: np.ndarray, xy: np.ndarray, score: np.ndarray, frame_size: tuple[int, int],
               source_size: tuple[int, int], crop_size: int = CROP_SIZE, box_scale: float = BOX_SCALE,
               sigma: float = 1.0, storage: str = "jpeg", jpeg_quality: int = 90, fill: int = 0) -> HandClip:
    """Boxes, crops and crop-pixel poses of one video.

    jpeg (T,) stored frames; xy (T, 133, 2), score (T, 133) in source pixels; frame_size and
    source_size are (width, height) of the stored frames and of the source video.
    """
    clip = hand_poses(xy, score, source_size, crop_size, box_scale, sigma)
    scale = (source_size[0] / frame_size[0], source_size[1] / frame_size[1])
    crops = [crop_frame(decode_jpeg(row), b, scale, crop_size, fill)
             for row, b in zip(jpeg, clip.box)]
    if storage == "jpeg":
        clip.crop = [encode_crops(c, jpeg_quality) for c in crops]
    else:
        clip.crop = np.stack(crops) if crops else np.zeros((0, 2, crop_size, crop_size, 3), np.uint8)
    return clip


def hand_poses(xy: np.ndarray, score: np.ndarray, source_size: tuple[int, int], crop_size: int = CROP_SIZE,
               box_scale: float = BOX_SCALE, sigma: float = 1.0) -> HandClip:
    """Boxes and crop-pixel poses of one video, without crops (``crop`` None): all a video without frames has.

    xy (T, 133, 2), score (T, 133) in source pixels; source_size (width, height). The poses are in
    the pixels of the crop a box would give (``crop_size``), as with frames, so models read them alike.
    """
    box, source, width = hand_boxes(xy, score, source_size, box_scale, sigma)
    return HandClip(None, pose_in_crop(xy, score, box, crop_size), box, source, width)


def _ordered(pool: ThreadPoolExecutor, work: Iterable[Callable[[], HandClip]], ahead: int) -> Iterator[Future]:
    """Futures of ``work`` in order, keeping at most ``ahead`` jobs in flight (bounded memory)."""
    pending: deque[Future] = deque()
    for job in work:
        pending.append(pool.submit(job))
        if len(pending) >= ahead:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


def crop_shard(frames_h5: str | os.PathLike | None, keypoints_h5: str | os.PathLike, hands_h5: str | os.PathLike,
               crop_size: int = CROP_SIZE, box_scale: float = BOX_SCALE, smooth_sigma: float = 1.0,
               storage: str = "jpeg", jpeg_quality: int = 90, fill: int = 0, chunk_frames: int = 256,
               threads: int = 1, progress: bool = True) -> dict[str, int]:
    """Crop both hands of every video of a frames shard into ``hands_h5``.

    The keypoints shard must hold the same videos with the same frame counts (the pose stage
    guarantees it). Without a frames shard (``frames_h5`` None: a keypoint dataset) the videos,
    their nominal frame (``src_width``, ``src_height``) and frame counts come from the keypoints
    shard, and the hands shard gets poses and boxes only (attr ``crops`` false). Crops are stored
    as one JPEG per frame (:func:`encode_crops`) or, with ``storage="raw"``, as uint8
    (T, 2, S, S, 3), about ten times larger; ``threads`` videos are
    cropped at once (OpenCV and libjpeg-turbo release the GIL); ``chunk_frames`` rows make one
    HDF5 chunk (larger chunks make h5py's reads of a clip cheaper). A video that fails (e.g. a
    corrupt stored frame) is written with 0 frames, which loaders skip, and named with its error
    in the attr ``failures`` (JSON: video_id -> "Type: message"); errors of the job
    (:func:`signpipe.jobs.fails_the_job`) stop it. Returns counts: videos and frames written, videos
    failed and, over both hands, the frames per box source (``detected``, ``interpolated``,
    ``forearm``, ``upper_arm``, ``no_cue``); the counts are also written to the shard's attrs as
    ``frames_<source>``.
    """
    crops = frames_h5 is not None
    arrays = hand_arrays(crop_size, storage, crops)
    config = {"crop_size": crop_size, "box_scale": box_scale, "smooth_sigma": smooth_sigma, "storage": storage,
              "jpeg_quality": jpeg_quality, "fill": fill}
    counts = np.zeros(len(BOX_SOURCES), np.int64)
    with (h5py.File(frames_h5, "r") if crops else contextlib.nullcontext()) as frames, \
            h5py.File(keypoints_h5, "r") as keypoints:
        kp_index = read_index(keypoints)
        index = read_index(frames) if crops else kp_index
        if crops and not index[["video_id", "length"]].equals(kp_index[["video_id", "length"]]):
            raise ValueError(f"{keypoints_h5} does not hold the videos and frame counts of {frames_h5}; "
                             "rerun the pose stage for this shard (snakemake --forcerun pose_shard)")

        def crop_entry(entry: Any) -> HandClip:  # runs in the pool: every error of the video lands in its future
            rows = slice(int(entry.start), int(entry.start + entry.length))
            xy, score = keypoints["xy"][rows], keypoints["score"][rows]
            source_size = (int(entry.src_width), int(entry.src_height))
            if not crops:
                return hand_poses(xy, score, source_size, crop_size, box_scale, smooth_sigma)
            jpeg = frames["jpeg"][rows]
            frame_size = ((int(frames["width"][rows.start]), int(frames["height"][rows.start]))
                          if entry.length else (1, 1))
            return crop_video(jpeg, xy, score, frame_size, source_size, crop_size, box_scale,
                              smooth_sigma, storage, jpeg_quality, fill)

        empty = {name: ([] if dtype == VLEN_BYTES else np.zeros((0, *tail), dtype))
                 for name, (dtype, tail) in arrays.items()}
        failures: dict[str, str] = {}

        with ThreadPoolExecutor(max(1, threads)) as pool, ShardWriter(
            hands_h5, "hands", SCHEMA_VERSION, arrays, config=config,
            source=([str(frames_h5), str(keypoints_h5), f"opencv {cv2.__version__}",
                     f"simplejpeg {simplejpeg.__version__}"] if crops else [str(keypoints_h5)]),
            index_extra=INDEX_EXTRA, chunk_frames=chunk_frames,
        ) as writer:
            entries = list(index.itertuples(index=False))
            clips = _ordered(pool, (functools.partial(crop_entry, entry) for entry in entries),
                             ahead=2 * max(1, threads))
            for entry, future in track(zip(entries, clips), total=len(entries), disable=not progress,
                                       desc=f"hands {os.path.basename(keypoints_h5)}", unit="video"):
                extra = {"src_height": entry.src_height, "src_width": entry.src_width}
                try:
                    clip = future.result()
                except Exception as err:
                    if fails_the_job(err):
                        raise
                    failures[entry.video_id] = describe(err)
                    log.warning("video %s: cannot crop its hands (%s); written with 0 frames, named in the "
                                "'failures' attr of %s", entry.video_id, failures[entry.video_id], hands_h5)
                    writer.add(entry.video_id, entry.label, entry.split, extra=extra, **empty)
                    continue
                writer.add(entry.video_id, entry.label, entry.split, **({"crop": clip.crop} if crops else {}),
                           pose=clip.pose, box=clip.box, box_source=clip.box_source, extra={**extra, "shoulder_width": clip.shoulder_width})
                counts += np.bincount(clip.box_source.ravel(), minlength=len(BOX_SOURCES))
            failed = index["video_id"].isin(failures)
            stats = {"videos": int((~failed).sum()), "frames": int(index["length"][~failed].sum()),
                     "failed": len(failures), **{name: int(n) for name, n in zip(BOX_SOURCES, counts)}}
            writer.attrs.update({f"frames_{name}": int(n) for name, n in zip(BOX_SOURCES, counts)})
            writer.attrs["failures"] = json.dumps(failures)
            writer.attrs["crops"] = crops
    log.info("%s: %d videos, %d frames, %d failed; hand boxes (both hands) %s", hands_h5, stats["videos"],
             stats["frames"], stats["failed"], ", ".join(f"{name} {stats[name]}" for name in BOX_SOURCES))
    return stats
