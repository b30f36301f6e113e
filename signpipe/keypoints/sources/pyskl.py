"""``pyskl``: skeleton pickles of pyskl / MMAction2 with 133 COCO-WholeBody points (HRNet, RTMPose WholeBody).

``{"split": {name: [frame_dir, ...]}, "annotations": [{frame_dir, label, keypoint (M, T, V, 2),
keypoint_score (M, T, V), img_shape (height, width), ...}]}`` with V = 133, already in the 133
layout and in pixels of ``img_shape``. Only the first person (M index 0) is read: pyskl files
put the main actor first. A ``keypoint`` of (M, T, V, 3) carries the score itself. Points with
score 0 or NaN are missing (xy 0).

Unpickling runs code from the file, so a pickle is opened only when the dataset block sets
``trust_pickle: true``.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.keypoints.index_map import split_points
from signpipe.jobs import fails_the_job
from signpipe.keypoints.sources.sequence import KeypointSequence, Result, file_error, shorten


def refuse_untrusted(path: Path | str, trust_pickle: bool) -> None:
    """Raise ValueError unless the dataset block trusts pickles."""
    if trust_pickle is not True:
        raise ValueError(f"{path}: not opened: unpickling runs code stored in the file, so a pyskl pickle is "
                         "read only from a source you trust; set trust_pickle: true in the dataset's config "
                         "block to allow it")


def load(path: Path | str, trust_pickle: bool) -> dict:
    """The pickle's dict (``split``, ``annotations``), after :func:`refuse_untrusted`."""
    refuse_untrusted(path, trust_pickle)
    with open(path, "rb") as f:
        try:
            data = pickle.load(f)
        except Exception as err:  # unpickling a damaged file can raise nearly anything
            if fails_the_job(err):
                raise
            raise ValueError(f"{path}: not a readable pickle ({type(err).__name__}: {err})") from err
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise ValueError(f"{path}: not a pyskl skeleton pickle: expected a dict with an 'annotations' list")
    split = data.get("split")
    if not isinstance(split, dict) or not all(isinstance(v, (list, tuple)) for v in split.values()):
        raise ValueError(f"{path}: not a pyskl skeleton pickle: expected a 'split' dict of frame_dir lists, "
                         f"got {type(split).__name__}")
    odd = next((a for a in data["annotations"] if not isinstance(a, dict) or "frame_dir" not in a), None)
    if odd is not None:
        raise ValueError(f"{path}: annotation {data['annotations'].index(odd)} is not a dict with a frame_dir "
                         f"(got {shorten(repr(odd), 60)})")
    return data


def to_sequence(annotation: Mapping[str, Any]) -> KeypointSequence:
    """The first person of one annotation as 133 keypoints in ``img_shape`` pixels."""
    keypoint = np.asarray(annotation["keypoint"], np.float32)
    if keypoint.ndim != 4 or keypoint.shape[2] != NUM_KEYPOINTS or keypoint.shape[3] not in (2, 3):
        raise ValueError(f"keypoint: expected shape (M, T, {NUM_KEYPOINTS}, 2), got {keypoint.shape}")
    if "keypoint_score" in annotation:
        score = np.asarray(annotation["keypoint_score"], np.float32)
    elif keypoint.shape[3] == 3:
        score = keypoint[..., 2]
    else:
        raise ValueError("no keypoint_score and keypoint has no score channel")
    if score.shape != keypoint.shape[:3]:
        raise ValueError(f"keypoint {keypoint.shape[:3]} (M, T, V) and keypoint_score {score.shape} disagree")
    if keypoint.shape[0] == 0 or keypoint.shape[1] == 0:
        raise ValueError(f"empty sequence: keypoint has shape {keypoint.shape}")
    size = None
    if "img_shape" in annotation:
        height, width = (int(v) for v in annotation["img_shape"][:2])
        size = (width, height)
    xy, score = split_points(np.concatenate([keypoint[0, ..., :2], score[0, ..., None]], axis=-1))
    return KeypointSequence(xy, score, size=size)


def read(rows: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any]) -> Iterator[Result]:
    """The rows' annotations by ``frame_dir`` (the row's ``frame_dir`` column, else its ``video_id``:
    the manifest makes ids file-name safe and keeps the original) from their pickle (cfg key: ``trust_pickle``).

    Consecutive rows of the same pickle share one load; only one pickle is held at a time.
    """
    trust = cfg.get("trust_pickle", False)
    if len(rows):
        refuse_untrusted(rows[0]["path"], trust)
    return _read(rows, trust)


def _read(rows: Sequence[Mapping[str, Any]], trust: bool) -> Iterator[Result]:
    current: str | None = None
    annotations: dict[str, Any] | ValueError = {}
    for row in rows:
        path, video_id = str(row["path"]), str(row["video_id"])
        frame_dir = str(row.get("frame_dir") or video_id)
        if path != current:
            current = path
            try:
                annotations = {str(a["frame_dir"]): a for a in load(path, trust)["annotations"]}
            except Exception as err:
                if fails_the_job(err):
                    raise
                annotations = file_error(path, err)
        if isinstance(annotations, ValueError):
            yield video_id, annotations
        elif frame_dir not in annotations:
            yield video_id, ValueError(f"{path}: no annotation with frame_dir {frame_dir!r}")
        else:
            try:
                sequence: KeypointSequence | ValueError = to_sequence(annotations[frame_dir])
            except Exception as err:
                if fails_the_job(err):
                    raise
                sequence = file_error(f"{path}, frame_dir {frame_dir}",
                                      ValueError(f"missing {err}") if isinstance(err, KeyError) else err)
            yield video_id, sequence
