"""Decode stage: videos of one shard -> JPEG frames in an HDF5 shard (DESIGN §2-3).

Each video is decoded with PyAV, cut to its clip (manifest ``frame_start``/``frame_end``),
turned upright by its stream's display matrix (phone recordings store portrait clips as landscape
pictures plus a 90° rotation), resized so that its short side is at most ``short_side`` (never
enlarged), and stored as JPEG bytes. Scaling and JPEG encoding run in a thread pool while PyAV decodes the next
frames, so the stage keeps close to a bare decode loop. A video that cannot be decoded never fails the shard:
it is listed with its reason in the shard's failures CSV and the rest is written; only errors of
the job itself (:func:`signpipe.jobs.fails_the_job`: disk full, out of memory, interrupted) stop it.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import av
import simplejpeg
import numpy as np
import pandas as pd

from signpipe.datasets import read_manifest
from signpipe.jobs import describe, fails_the_job
from signpipe.logs import track
from signpipe.shards import VLEN_BYTES, ShardWriter, concat_csvs, write_csv

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
TRUNCATION_TOLERANCE = 0.05
"""Share of its header's frame count a video may fall short by before it counts as truncated.
Headers overcount by a few frames where the muxer used an edit list (FOOTBALL.mp4 declares 64
frames and holds 62), so only a clear shortfall (at least 3 frames) is treated as truncation.
Containers without a frame count (Matroska/WebM) are checked the same way against the frame
count their duration implies at the stream's average rate."""
FAILURE_COLUMNS = ["video_id", "path", "stage", "reason"]
"""Columns of ``failures.csv``: ``reason`` is a :class:`DecodeError`'s message, or ``"Type: message"``
of any other exception raised for the video."""
FRAME_ARRAYS = {"jpeg": (VLEN_BYTES, ()), "height": (np.int32, ()), "width": (np.int32, ())}
INDEX_EXTRA = [("fps", np.float64), ("src_height", np.int64), ("src_width", np.int64)]


class DecodeError(Exception):
    """A video that cannot be turned into frames; the message is the reason users see."""


@dataclass
class DecodedVideo:
    """One clip: JPEG bytes per frame and the displayed (upright) sizes before and after resizing."""

    jpeg: list[bytes]
    height: int
    width: int
    fps: float
    src_height: int
    src_width: int


def target_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) with the short side brought down to ``short_side`` (never up), both even.

    Even sides let the 4:2:0 chroma planes map exactly onto JPEG's own 4:2:0 layout.
    """
    scale = min(1.0, short_side / min(width, height))
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def frame_to_jpeg(frame: av.VideoFrame, width: int, height: int, quality: int, rotation: int = 0) -> bytes:
    """JPEG bytes of a decoded frame, turned ``rotation`` degrees counter-clockwise (a multiple of
    90, PyAV's ``VideoFrame.rotation``) and resized to ``width`` x ``height`` (the upright size).

    The frame is scaled straight into full-range YUV 4:2:0 and its planes are handed to
    libjpeg-turbo as they are, skipping the round trip through RGB that costs half the time;
    a rotation turns the three planes with ``np.rot90``.
    """
    turns = (rotation // 90) % 4
    if turns % 2:
        width, height = height, width  # scale the stored picture, then turn it upright
    yuv = frame.reformat(width=width, height=height, format="yuvj420p")
    sizes = [(height, width), (height // 2, width // 2), (height // 2, width // 2)]
    y, u, v = (np.ascontiguousarray(np.rot90(np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[:h, :w],
                                             turns))
               for plane, (h, w) in zip(yuv.planes, sizes))
    return simplejpeg.encode_jpeg_yuv_planes(y, u, v, quality=quality)


def display_rotation(frame: av.VideoFrame) -> int:
    """Counter-clockwise degrees (0, 90, 180, 270) that turn ``frame`` upright, from its display matrix."""
    return round(frame.rotation / 90) * 90 % 360


def expected_frames(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> int:
    """Frames the file's header promises: the stream's frame count, else (Matroska, WebM) its
    duration (the stream's ``DURATION`` tag, else the container's) times the average rate; 0 when unknown."""
    if stream.frames:
        return stream.frames
    rate = stream.average_rate or stream.guessed_rate
    seconds = _hms_seconds(stream.metadata.get("DURATION", "")) or (container.duration or 0) / av.time_base
    return round(seconds * float(rate)) if rate else 0


def _hms_seconds(text: str) -> float:
    """Seconds of a Matroska ``DURATION`` tag (``00:00:01.640000000``); 0 when absent or malformed."""
    try:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return 0.0


def decode_video(path: str | os.PathLike, frame_start: int = 0, frame_end: int = -1,
                 short_side: int = 256, jpeg_quality: int = 90,
                 pool: ThreadPoolExecutor | None = None) -> DecodedVideo:
    """Decode frames ``[frame_start, frame_end)`` (0-based, -1 = to the end) of one video to JPEG.

    With a ``pool``, JPEG encoding overlaps decoding. Raises DecodeError with a user-facing
    reason for missing, empty, unreadable, truncated or frameless videos.
    """
    path = Path(path)
    if not path.is_file():
        raise DecodeError("file not found")
    if path.stat().st_size == 0:
        raise DecodeError("empty file (0 bytes)")
    try:
        # Metadata is never needed here, and phone/QuickTime files carry non-UTF-8 names.
        container = av.open(str(path), metadata_errors="replace")
    except (av.FFmpegError, OSError) as err:
        raise DecodeError(f"cannot open ({_reason(err)})") from err
    encoded: list[Future | bytes] = []
    seen = 0
    with container:
        if not container.streams.video:
            raise DecodeError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        declared, stream_frames = expected_frames(container, stream), stream.frames
        try:
            for index, frame in enumerate(container.decode(stream)):
                seen = index + 1
                if index < frame_start:
                    continue
                if 0 <= frame_end <= index:
                    break
                if not encoded:
                    rotation = display_rotation(frame)
                    src_h, src_w = (frame.width, frame.height) if rotation % 180 else (frame.height, frame.width)
                    width, height = target_size(src_w, src_h, short_side)
                encoded.append(pool.submit(frame_to_jpeg, frame, width, height, jpeg_quality, rotation) if pool
                               else frame_to_jpeg(frame, width, height, jpeg_quality, rotation))
        except av.FFmpegError as err:
            _cancel(encoded)
            raise DecodeError(f"corrupt or truncated after {seen} frames ({_reason(err)})") from err
    wanted = declared if frame_end < 0 else min(frame_end, declared or frame_end)
    if declared and seen < wanted - max(3, TRUNCATION_TOLERANCE * wanted):
        _cancel(encoded)
        promise = "header declares" if stream_frames else "container's duration implies"
        raise DecodeError(f"truncated: decoded {seen} of the {declared} frames its {promise}")
    if not encoded:
        if seen == 0:
            raise DecodeError("no frames decoded (empty or unreadable video stream)")
        raise DecodeError(f"clip starts at frame {frame_start} but the video has {seen} frames")
    if 0 <= frame_end and seen < frame_end:
        log.warning("%s: clip ends at frame %d but the video has %d frames; kept %d",
                    path, frame_end, seen, len(encoded))
    jpeg = [item.result() if isinstance(item, Future) else item for item in encoded]
    return DecodedVideo(jpeg, height, width, float(rate) if rate else 0.0, src_h, src_w)


def _reason(err: Exception) -> str:
    """FFmpeg's message without PyAV's errno prefix."""
    return getattr(err, "strerror", None) or str(err)


def _cancel(encoded: list[Future | bytes]) -> None:
    for item in encoded:
        if isinstance(item, Future):
            item.cancel()


def decode_shard(manifest_csv: str | os.PathLike, shard: int, frames_h5: str | os.PathLike,
                 failures_csv: str | os.PathLike, short_side: int = 256, jpeg_quality: int = 90,
                 threads: int = 2, progress: bool = True) -> dict[str, int]:
    """Decode every video of ``shard`` in the manifest into ``frames_h5``; list failures in ``failures_csv``.

    Returns counts: videos written, failed, frames written.
    """
    manifest = read_manifest(manifest_csv)
    rows = manifest[manifest["shard"] == shard]
    failures: list[dict[str, str]] = []
    frames_total = 0
    config = {"short_side": short_side, "jpeg_quality": jpeg_quality}
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool, ShardWriter(
        frames_h5, "frames", SCHEMA_VERSION, FRAME_ARRAYS, config=config,
        source=[str(manifest_csv), f"pyav {av.__version__}", f"simplejpeg {simplejpeg.__version__}"],
        index_extra=INDEX_EXTRA,
    ) as writer:
        for row in track(rows.itertuples(index=False), total=len(rows), disable=not progress,
                         desc=f"decode shard {shard}", unit="video"):
            try:
                video = decode_video(row.path, int(row.frame_start), int(row.frame_end),
                                     short_side, jpeg_quality, pool)
            except Exception as err:
                if fails_the_job(err):
                    raise
                reason = str(err) if isinstance(err, DecodeError) else describe(err)
                log.warning("video %s: cannot decode (%s); skipped, listed in %s", row.video_id, reason, failures_csv)
                failures.append({"video_id": row.video_id, "path": row.path, "stage": "decode", "reason": reason})
                continue
            n = len(video.jpeg)
            writer.add(
                row.video_id, row.label, row.split, jpeg=video.jpeg,
                height=np.full(n, video.height, np.int32), width=np.full(n, video.width, np.int32),
                extra={"fps": video.fps, "src_height": video.src_height, "src_width": video.src_width},
            )
            frames_total += n
    write_csv(pd.DataFrame(failures, columns=FAILURE_COLUMNS), failures_csv)
    stats = {"videos": len(rows) - len(failures), "failed": len(failures), "frames": frames_total}
    log.info("shard %d: %d videos, %d frames, %d failed", shard, stats["videos"], frames_total, len(failures))
    return stats


def collect_failures(failure_csvs: list[str | os.PathLike], out_csv: str | os.PathLike) -> pd.DataFrame:
    """Concatenate the per-shard failure lists into one ``{ds}/failures.csv``."""
    table = concat_csvs(failure_csvs, out_csv, FAILURE_COLUMNS)
    log.info("%d failed videos in %d shards", len(table), len(failure_csvs))
    return table
