"""``signpipe export keypoints``: a keypoints shard out to pose-format, pyskl or NumPy files.

The shard (DESIGN §3) holds ``xy`` (T, 133, 2) in source-video pixels and ``score`` (T, 133),
and ``/index`` per video: label, split, and for a keypoint dataset's imported shard also ``fps``
and the frame (``src_width``, ``src_height``). For a shard made from videos, fps and frame size
come from the frames shard beside it (``{ds}/frames/{shard}.h5``) when it is there. Missing
points (score 0) stay missing in every format:

- ``pose``: one ``{video_id}.pose`` per video, one person, the COCO-WholeBody components of
  pose-format (``BODY``, ``FACE``, ``LEFT_HAND``, ``RIGHT_HAND``, points named as there, format
  XYC), missing points masked; header size = the frame, fps 0 when unknown.
- ``pyskl``: one pickle ``{"split": {split: [video_id, ...]}, "annotations": [{frame_dir, label,
  img_shape, original_shape, total_frames, keypoint (1, T, 133, 2), keypoint_score (1, T, 133)}]}``,
  the layout pyskl / MMAction2 skeleton pipelines read; splits and labels from ``/index``
  (videos without a split go to ``all``).
- ``npz``: one ``{video_id}.npz`` per video: ``keypoints`` (T, 133, 3) float32 (x, y, score)
  and, when known, ``fps``, ``width``, ``height``; the ``arrays`` format's ``coco-wholebody-133``.

Where the shard does not know the frame, its size is the points' extent (rounded up), since
pose-format and pyskl both need one.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.shards import atomic_path, read_index, read_video

log = logging.getLogger(__name__)

EXPORT_FORMATS = ("pose", "pyskl", "npz")


@dataclass
class ShardVideo:
    """One video of a keypoints shard, with what the shard (or its frames shard) knows of it."""

    video_id: str
    label: int
    split: str
    xy: np.ndarray
    score: np.ndarray
    fps: float | None
    size: tuple[int, int] | None

    def frame_size(self) -> tuple[int, int]:
        """(width, height): the known frame, else the extent of the detected points."""
        if self.size:
            return self.size
        found = self.xy[self.score > 0]
        extent = found.max(axis=0) if len(found) else np.zeros(2)
        return max(1, math.ceil(float(extent[0]))), max(1, math.ceil(float(extent[1])))


def _frame_info(shard: Path, index: pd.DataFrame) -> pd.DataFrame:
    """fps, src_width, src_height per video: from ``/index``, else the frames shard beside, else none."""
    columns = ["fps", "src_width", "src_height"]
    info = index.set_index("video_id")
    if all(c in info for c in columns):
        return info[columns]
    frames = shard.parent.parent / "frames" / shard.name
    if frames.is_file():
        with h5py.File(frames, "r") as f:
            table = read_index(f).set_index("video_id")
        if all(c in table for c in columns):
            return table[columns].reindex(info.index)
    return pd.DataFrame(np.nan, index=info.index, columns=columns)


def read_shard(shard: str | os.PathLike) -> Iterator[ShardVideo]:
    """The videos of a keypoints shard in index order, one at a time."""
    shard = Path(shard)
    with open_shard(shard) as f:
        if "xy" not in f or "score" not in f or f["xy"].shape[1:] != (NUM_KEYPOINTS, 2):
            raise ValueError(f"{shard}: not a keypoints shard (needs xy (T, {NUM_KEYPOINTS}, 2) and score; "
                             f"has {', '.join(f)}; schema {f.attrs.get('schema', '?')})")
        index = read_index(f)
        info = _frame_info(shard, index)
        for row in index.to_dict("records"):
            fps, width, height = info.loc[row["video_id"]]
            known = width > 0 and height > 0
            yield ShardVideo(str(row["video_id"]), int(row["label"]), str(row["split"] or "all"),
                             read_video(f, "xy", row), read_video(f, "score", row),
                             float(fps) if fps > 0 else None, (int(width), int(height)) if known else None)


def write_pose(video: ShardVideo, path: Path) -> None:
    """One video as a pose-format file with COCO-WholeBody components."""
    from pose_format import Pose
    from pose_format.numpy import NumPyPoseBody
    from pose_format.pose_header import VERSION, PoseHeader, PoseHeaderDimensions
    from pose_format.utils.cocowholebody133_header import cocowholebody_components

    missing = np.repeat((video.score <= 0)[:, None, :, None], 2, axis=-1)
    data = np.ma.masked_array(video.xy[:, None], mask=missing)
    header = PoseHeader(VERSION, PoseHeaderDimensions(*video.frame_size()), cocowholebody_components())
    pose = Pose(header, NumPyPoseBody(video.fps or 0.0, data, video.score[:, None]))
    with atomic_path(path, ".pose") as tmp, open(tmp, "wb") as f:
        pose.write(f)


def write_npz(video: ShardVideo, path: Path) -> None:
    """One video as ``keypoints`` (T, 133, 3) (x, y, score), plus fps and frame size when known."""
    extra = {}
    if video.fps:
        extra["fps"] = np.float64(video.fps)
    if video.size:
        extra["width"], extra["height"] = (np.int64(v) for v in video.size)
    with atomic_path(path, ".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, keypoints=np.concatenate([video.xy, video.score[..., None]], axis=-1).astype(np.float32),
                 **extra)


def pyskl_annotation(video: ShardVideo) -> dict:
    """One video as a pyskl annotation (first and only person)."""
    width, height = video.frame_size()
    return {"frame_dir": video.video_id, "label": video.label, "img_shape": (height, width),
            "original_shape": (height, width), "total_frames": len(video.xy),
            "keypoint": video.xy[None].astype(np.float32), "keypoint_score": video.score[None].astype(np.float32)}


def export_keypoints(shard: str | os.PathLike, fmt: str, out: str | os.PathLike, force: bool = False) -> list[Path]:
    """Write the videos of keypoints shard ``shard`` as ``fmt`` files under ``out`` (a folder; for pyskl
    the pickle file). Returns the files written.

    One rule for every format (:func:`check_targets`): nothing is written onto the shard, and a file
    that exists already is refused unless ``force``; all is checked before the first file is written.
    """
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    out = Path(out)
    targets = check_targets(Path(shard), fmt, out, force)
    videos = read_shard(shard)
    if fmt == "pyskl":
        split: dict[str, list[str]] = {}
        annotations = []
        for video in videos:
            split.setdefault(video.split, []).append(video.video_id)
            annotations.append(pyskl_annotation(video))
        with atomic_path(out, ".pkl") as tmp, open(tmp, "wb") as f:
            pickle.dump({"split": split, "annotations": annotations}, f, protocol=pickle.HIGHEST_PROTOCOL)
        log.info("%s: %d videos -> %s", shard, len(annotations), out)
        return [out]
    out.mkdir(parents=True, exist_ok=True)
    write = write_pose if fmt == "pose" else write_npz
    written = []
    for video, path in zip(videos, targets):
        write(video, path)
        written.append(path)
    log.info("%s: %d videos -> %s/*.%s", shard, len(written), out, fmt)
    return written


def check_targets(shard: Path, fmt: str, out: Path, force: bool) -> list[Path]:
    """The files an export of ``shard`` writes, in index order, after refusing what would destroy data:
    an output that is the shard itself (even with ``force``), an ``out`` of the wrong kind (a file where
    a folder is needed, or the reverse), and existing files unless ``force``."""
    with open_shard(shard) as f:
        ids = read_index(f)["video_id"].astype(str).tolist()
    targets = [out] if fmt == "pyskl" else [out / f"{video_id}.{fmt}" for video_id in ids]
    if any(t.exists() and t.resolve() == shard.resolve() for t in [out, *targets]):
        raise ValueError(f"export: {out} is the input shard {shard}; write to another path")
    if fmt == "pyskl" and out.is_dir():
        raise ValueError(f"export: {out} is a folder; pyskl writes one pickle file (e.g. {out / 'keypoints.pkl'})")
    if fmt != "pyskl" and out.exists() and not out.is_dir():
        raise ValueError(f"export: {out} is a file; {fmt} writes one file per video into a folder")
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise ValueError(f"export: {existing[0]}{more} exist(s) already; pass --force to overwrite, or choose "
                         "another output")
    return targets


@contextmanager
def open_shard(shard: Path) -> Iterator[h5py.File]:
    """``shard`` opened read-only; a file HDF5 cannot open is a one-line ValueError naming it."""
    try:
        f = h5py.File(shard, "r")
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ValueError(f"{shard}: not a readable HDF5 file ({str(err).splitlines()[0]}); is it a keypoints "
                         "shard, completely written?") from err
    with f:
        yield f
