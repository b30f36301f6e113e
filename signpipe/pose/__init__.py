"""Pose stage: 133 COCO-WholeBody keypoints per frame for every video of a shard (DESIGN §3-4).

A *backend* turns one clip into keypoints in source-video pixels. Detectors (``mediapipe``,
``mmpose``) look at the decoded frames of the frames shard; imports (``mmpose-json``,
``openpose``, ``sidecar``) read files that already hold keypoints, cut to the same clip window
as the frames. Either way the result has exactly as many frames as the frames shard holds for
the video, so later stages can pair frame ``t`` with keypoints ``t``.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from signpipe.datasets import read_manifest
from signpipe.jobs import describe, fails_the_job, process_pool
from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.keypoints.quality import PART_NAMES, detection_rates, swapped_hands, swapped_hands_problem
from signpipe.logs import track as track_progress
from signpipe.shards import ShardWriter, decode_jpeg, concat_csvs, read_index, write_csv

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KEYPOINT_ARRAYS = {"xy": (np.float32, (NUM_KEYPOINTS, 2)), "score": (np.float32, (NUM_KEYPOINTS,))}
INDEX_EXTRA = [(f"rate_{part}", np.float32) for part in PART_NAMES] + [("multi_person_frames", np.int64)]
QUALITY_COLUMNS = ["video_id", "frames", *[f"rate_{part}" for part in PART_NAMES], "multi_person_frames",
                   "swapped_hands", "error"]
"""Columns of ``quality.csv``; ``swapped_hands`` is the share of judged frames whose hands sit on the
wrong sides (:func:`signpipe.keypoints.quality.swapped_hands`); ``error`` is empty, or ``"Type: message"``
of a video whose keypoints failed."""

BACKENDS = {
    "mediapipe": "signpipe.pose.mediapipe",
    "mmpose": "signpipe.pose.mmpose",
    "mmpose-json": "signpipe.pose.mmpose_json",
    "openpose": "signpipe.pose.openpose",
    "sidecar": "signpipe.pose.sidecar",
}
"""Backend name (config ``pose.backend``) -> module with ``make_backend(cfg) -> Backend``."""


@dataclass
class Clip:
    """One video of the shard, as a backend sees it.

    ``row`` is the video's manifest row (path, frame_start/frame_end, adapter extras such as a
    sidecar path). ``frames()`` decodes the stored frames lazily: RGB ``(H, W, 3)`` uint8 at
    the stored size; ``scale`` = (sx, sy) maps stored-frame pixels to source-video pixels, and
    ``source_size`` is the source video's (width, height).
    """

    video_id: str
    row: Mapping[str, Any]
    num_frames: int
    scale: tuple[float, float]
    source_size: tuple[int, int]
    frames: Callable[[], Iterator[np.ndarray]]


@dataclass
class Keypoints:
    """A backend's answer for one clip.

    xy: (T, 133, 2) float32 in source-video pixels, 0 where nothing was detected.
    score: (T, 133) float32 in [0, 1], 0 where nothing was detected.
    people: (T,) int, persons the backend saw per frame (1 for single-person backends).
    """

    xy: np.ndarray
    score: np.ndarray
    people: np.ndarray


@dataclass
class Backend:
    """A configured backend: ``extract(clip) -> Keypoints`` plus its provenance (keypoints drift
    with the extractor: a run is reproducible only with the backend, version and weights recorded).

    ``provenance`` goes into every keypoints shard's attrs: backend name and version, model or
    config, weights hash where there are weights, and how the signer was chosen among people.
    ``close`` releases models (e.g. MediaPipe's graph).
    """

    extract: Callable[[Clip], Keypoints]
    provenance: dict[str, Any]
    close: Callable[[], None] = field(default=lambda: None)


@functools.cache
def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a model or checkpoint file, for provenance; cached, since every
    worker process of a shard hashes the same files."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_backend(cfg: Mapping[str, Any]) -> Backend:
    """The backend named by ``cfg['backend']`` (the ``pose:`` config block), imported only when chosen."""
    name = cfg.get("backend")
    if name not in BACKENDS:
        raise ValueError(f"pose.backend: unknown backend {name!r}; known: {', '.join(BACKENDS)}")
    module = importlib.import_module(BACKENDS[name])
    return module.make_backend(cfg)


def empty_keypoints(num_frames: int) -> Keypoints:
    """Keypoints of a clip where nothing was detected."""
    return Keypoints(np.zeros((num_frames, NUM_KEYPOINTS, 2), np.float32),
                     np.zeros((num_frames, NUM_KEYPOINTS), np.float32), np.zeros(num_frames, np.int64))


def file_import_backend(cfg: Mapping[str, Any], key: str, default_pattern: str,
                        read: Callable[[Path, tuple[int, int], int, int], Keypoints],
                        provenance: Mapping[str, Any]) -> Backend:
    """A backend that imports one prediction file (or folder) per video: ``{dir}/{pattern}`` of ``pose.<key>``.

    ``read(path, source_size, frame_start, frame_end)`` turns it into the clip's keypoints. A
    video without predictions keeps score 0 throughout and is named in the log.
    """
    block = {"pattern": default_pattern, **(cfg.get(key) or {})}
    if not block.get("dir"):
        raise ValueError(f"pose.{key}.dir: the folder of per-video prediction files is not set")

    def extract(clip: Clip) -> Keypoints:
        path = Path(block["dir"]) / block["pattern"].format(video_id=clip.video_id)
        if not path.exists():
            log.warning("video %s: no predictions at %s (pose.%s.dir / pattern); its keypoints are left "
                        "undetected", clip.video_id, path, key)
            return empty_keypoints(clip.num_frames)
        return read(path, clip.source_size, int(clip.row["frame_start"]), int(clip.row["frame_end"]))

    return Backend(extract, {**provenance, "dir": block["dir"], "pattern": block["pattern"]})


def fit_length(kp: Keypoints, num_frames: int, video_id: str) -> Keypoints:
    """Pad (with undetected frames) or cut imported keypoints to the clip's frame count, saying so."""
    have = len(kp.xy)
    if have == num_frames:
        return kp
    log.warning("video %s: keypoints have %d frames, the frames shard %d; %s", video_id, have,
                num_frames, "padded with undetected frames" if have < num_frames else "cut")
    out = empty_keypoints(num_frames)
    n = min(have, num_frames)
    out.xy[:n], out.score[:n], out.people[:n] = kp.xy[:n], kp.score[:n], kp.people[:n]
    return out


def _clip(frames_file: h5py.File, entry: Mapping[str, Any], row: Mapping[str, Any]) -> Clip:
    """The Clip of one ``/index`` entry of an open frames shard."""
    start, length = int(entry["start"]), int(entry["length"])
    jpeg = frames_file["jpeg"]
    width, height = (int(frames_file[k][start]) for k in ("width", "height")) if length else (1, 1)

    def frames() -> Iterator[np.ndarray]:
        for i in range(start, start + length):
            yield decode_jpeg(jpeg[i])

    source = int(entry["src_width"]), int(entry["src_height"])
    return Clip(str(entry["video_id"]), row, length, (source[0] / width, source[1] / height), source, frames)


class _Extractor:
    """Runs one backend over the videos of one frames shard; one per worker process."""

    def __init__(self, cfg: Mapping[str, Any], frames_h5: str | os.PathLike, manifest_csv: str | os.PathLike,
                 backend: Backend | None = None):
        self.owned = backend is None
        self.backend = make_backend(cfg) if backend is None else backend
        self.frames_file = h5py.File(frames_h5, "r")
        self.index = read_index(self.frames_file).set_index("video_id", drop=False)
        self.rows = read_manifest(manifest_csv).set_index("video_id", drop=False)

    def __call__(self, video_id: str) -> Keypoints:
        clip = _clip(self.frames_file, self.index.loc[video_id], self.rows.loc[video_id].to_dict())
        return fit_length(self.backend.extract(clip), clip.num_frames, video_id)

    def close(self) -> None:
        if self.owned:
            self.backend.close()
        self.frames_file.close()


_worker: _Extractor | None = None


def _init_worker(cfg: Mapping[str, Any], frames_h5: str, manifest_csv: str) -> None:
    global _worker
    _worker = _Extractor(cfg, frames_h5, manifest_csv)
    atexit.register(_worker.close)


def _extract_in_worker(video_id: str) -> Keypoints:
    return _worker(video_id)


def _provenance_in_worker() -> dict[str, Any]:
    return dict(_worker.backend.provenance)


def extract_shard(manifest_csv: str | os.PathLike, frames_h5: str | os.PathLike,
                  keypoints_h5: str | os.PathLike, quality_csv: str | os.PathLike,
                  cfg: Mapping[str, Any], threads: int = 1, progress: bool = True,
                  backend: Backend | None = None) -> pd.DataFrame:
    """Keypoints for every video of a frames shard into ``keypoints_h5``; per-video quality into ``quality_csv``.

    With ``threads > 1`` videos are spread over that many processes, each with its own backend
    (detectors such as MediaPipe run one graph per process; see :func:`signpipe.jobs.process_pool`).
    A video whose backend raises keeps its frames with undetected keypoints (score 0) and its
    ``error`` in the quality table; errors of the job (:func:`signpipe.jobs.fails_the_job`) stop it.
    Returns the quality table: per video, frames, the detection rate of each part, the frames
    where several people were seen and the error, if any. A ``backend`` already made from ``cfg``
    is used (in this process) instead of a new one and left open: ``signpipe predict`` loads its
    detector once for many videos.
    """
    with h5py.File(frames_h5, "r") as f:
        index = read_index(f)
    quality = []
    pool = (process_pool(threads, _init_worker, (dict(cfg), str(frames_h5), str(manifest_csv)))
            if threads > 1 and len(index) > 1 and backend is None else None)
    # With a pool the backends (and their models) live in the workers only; one reports provenance.
    extractor = None if pool else _Extractor(cfg, frames_h5, manifest_csv, backend)
    try:
        if pool:
            try:
                provenance = pool.submit(_provenance_in_worker).result()
            except BrokenProcessPool:
                make_backend(cfg).close()  # a bad config raises here, with its message naming the key
                raise
            futures = [pool.submit(_extract_in_worker, video_id) for video_id in index["video_id"]]
            results = (future.result for future in futures)
        else:
            provenance = extractor.backend.provenance
            results = (functools.partial(extractor, video_id) for video_id in index["video_id"])
        with ShardWriter(
            keypoints_h5, "keypoints", SCHEMA_VERSION, KEYPOINT_ARRAYS, config=dict(cfg),
            source=[str(frames_h5), str(manifest_csv)], index_extra=INDEX_EXTRA,
            attrs={f"pose_{k}": str(v) for k, v in provenance.items()},
        ) as writer:
            for entry, result in track_progress(zip(index.itertuples(index=False), results), total=len(index),
                                       disable=not progress, desc=f"pose {os.path.basename(frames_h5)}", unit="video"):
                try:
                    kp, error = result(), ""
                except Exception as err:
                    if fails_the_job(err):
                        raise
                    kp, error = empty_keypoints(int(entry.length)), describe(err)
                    log.warning("video %s: keypoints failed (%s); kept with undetected keypoints, listed in %s",
                                entry.video_id, error, quality_csv)
                quality.append(add_video(writer, entry.video_id, entry.label, entry.split, kp.xy, kp.score,
                                         multi_person_frames=int((kp.people > 1).sum()), error=error))
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
        if extractor:
            extractor.close()
    table = pd.DataFrame(quality, columns=QUALITY_COLUMNS)
    write_csv(table, quality_csv)
    if len(table):
        log.info("%s: %d videos; mean detection rate %s", keypoints_h5, len(table),
                 ", ".join(f"{p} {table[f'rate_{p}'].mean():.2f}" for p in PART_NAMES))
    return table


def add_video(writer: ShardWriter, video_id: str, label: int, split: str, xy: np.ndarray, score: np.ndarray,
              multi_person_frames: int = 0, error: str = "", extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Add one video's keypoints to a keypoints shard with its per-part detection rates (and any
    other ``/index`` ``extra``); returns its ``quality.csv`` row."""
    rates = detection_rates(score)
    swapped, judged = swapped_hands(xy, score)
    problem = swapped_hands_problem(swapped, judged)
    if problem:
        log.warning("video %s: %s", video_id, problem)
    writer.add(video_id, label, split, xy=xy.astype(np.float32, copy=False), score=score.astype(np.float32, copy=False),
               extra={**{f"rate_{p}": r for p, r in rates.items()}, "multi_person_frames": multi_person_frames,
                      **(extra or {})})
    return {"video_id": video_id, "frames": len(xy), **{f"rate_{p}": round(r, 4) for p, r in rates.items()},
            "multi_person_frames": multi_person_frames, "swapped_hands": round(swapped, 4) if judged else 0.0,
            "error": error}


def collect_quality(quality_csvs: list[str | os.PathLike], out_csv: str | os.PathLike) -> pd.DataFrame:
    """Concatenate the per-shard quality tables into ``{ds}/keypoints/quality.csv``."""
    return concat_csvs(quality_csvs, out_csv, QUALITY_COLUMNS)
