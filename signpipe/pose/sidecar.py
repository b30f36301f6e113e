"""``sidecar`` backend: keypoints shipped with the dataset, one ``.npz`` per video.

The manifest's ``keypoints`` column (the synthetic demo writes it; a csv manifest may too)
names a file with ``xy`` (N, 133, 2) in source-video pixels and ``score`` (N, 133) for every
frame of the video; the clip window of the manifest row is cut from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import signpipe
from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.pose import Backend, Clip, Keypoints


def read_sidecar(path: str | Path, frame_start: int = 0, frame_end: int = -1) -> Keypoints:
    """The keypoints of frames ``[frame_start, frame_end)`` (-1 = to the end) of one sidecar file."""
    with np.load(path) as data:
        xy, score = data["xy"], data["score"]
    if xy.shape[1:] != (NUM_KEYPOINTS, 2) or score.shape != xy.shape[:2]:
        raise ValueError(f"{path}: expected xy (N, 133, 2) and score (N, 133), got {xy.shape} and {score.shape}")
    window = slice(frame_start, None if frame_end < 0 else frame_end)
    xy, score = xy[window].astype(np.float32), score[window].astype(np.float32)
    return Keypoints(xy, score, np.ones(len(xy), np.int64))


def make_backend(cfg: Mapping[str, Any]) -> Backend:
    column = cfg.get("sidecar_column", "keypoints")

    def extract(clip: Clip) -> Keypoints:
        path = clip.row.get(column)
        if not path:
            raise ValueError(f"video {clip.video_id}: pose.backend sidecar needs a '{column}' column in the "
                             "manifest naming each video's .npz keypoints file")
        return read_sidecar(path, int(clip.row["frame_start"]), int(clip.row["frame_end"]))

    return Backend(extract, {"backend": "sidecar", "version": signpipe.__version__, "column": column,
                             "people": "one person per file"})
