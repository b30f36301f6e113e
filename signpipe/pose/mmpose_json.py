"""``mmpose-json`` backend: import the prediction files MMPose's demo writes.

A file per video (``pose.mmpose_json.dir`` / ``pattern``, default ``{video_id}.json``) holds
either the list MMPose's demo saves, ``[{"frame_id": i, "instances": [{"keypoints":
[[x, y] x 133], "keypoint_scores": [133], "bbox": [[x0, y0, x1, y1]], ...}]}, ...]``, or the
``{"meta_info": ..., "instance_info": [...]}`` form of ``--save-predictions``. Frames cover the
whole source video; the clip window of the manifest row is cut from them. This is also the
conversion the live ``mmpose`` backend uses, so it is what CI checks on real MMPose output.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

import signpipe
from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.pose import Backend, Keypoints, file_import_backend
from signpipe.pose.track import POLICY, Person, select_signer


def instance_person(instance: Mapping[str, Any]) -> Person:
    """One MMPose instance (``keypoints``, ``keypoint_scores``, optional ``bbox``) as a Person."""
    xy = np.asarray(instance["keypoints"], np.float32).reshape(-1, 2)
    score = np.clip(np.asarray(instance["keypoint_scores"], np.float32).reshape(-1), 0.0, 1.0)
    if xy.shape != (NUM_KEYPOINTS, 2) or score.shape != (NUM_KEYPOINTS,):
        raise ValueError(f"expected 133 COCO-WholeBody keypoints, got {xy.shape[0]} "
                         "(was the file made with a wholebody model?)")
    box = instance.get("bbox")
    box = np.asarray(box, np.float64).reshape(-1)[:4] if box is not None and len(np.ravel(box)) >= 4 else None
    return Person(xy, score, box)


def frames_of(predictions: Any) -> list[list[Person]]:
    """People per frame of a prediction file's content, frames ordered by ``frame_id`` (gaps stay empty).

    Frame ids may start at 0 or, as MMPose's video demo writes them, at 1.
    """
    entries = predictions["instance_info"] if isinstance(predictions, Mapping) else predictions
    by_frame = {int(e.get("frame_id", i)): e.get("instances", []) for i, e in enumerate(entries)}
    if min(by_frame, default=0) == 1:
        # MMPose's video demo numbers frames from 1 (it counts before saving); a file made
        # frame by frame from 0 always has an entry for frame 0, empty or not.
        by_frame = {t - 1: people for t, people in by_frame.items()}
    count = max(by_frame, default=-1) + 1
    return [[instance_person(inst) for inst in by_frame.get(t, [])] for t in range(count)]


def read_mmpose_json(path: str | Path, size: tuple[int, int], frame_start: int = 0,
                     frame_end: int = -1) -> Keypoints:
    """The signer's keypoints in frames ``[frame_start, frame_end)`` of an MMPose prediction file.

    size: the source video's (width, height), used to find the most central person.
    """
    with open(path, encoding="utf-8") as f:
        try:
            frames = frames_of(json.load(f))
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not an MMPose prediction file ({err})") from err
    frames = frames[frame_start:None if frame_end < 0 else frame_end]
    return Keypoints(*select_signer(frames, size))


def make_backend(cfg: Mapping[str, Any]) -> Backend:
    return file_import_backend(cfg, "mmpose_json", "{video_id}.json", read_mmpose_json,
                               {"backend": "mmpose-json", "version": signpipe.__version__, "people": POLICY})
