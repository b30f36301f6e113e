"""``openpose`` backend: import the per-frame JSON files of OpenPose's ``--write_json``.

A folder per video (``pose.openpose.dir`` / ``pattern``, default ``{video_id}``) holds one
``<name>_<frame>_keypoints.json`` per frame of the source video (OpenPose numbers a video's
frames from 0, e.g. ``clip_000000000012_keypoints.json``), each ``{"people": [{
"pose_keypoints_2d": [x, y, c] x 25, "face_keypoints_2d": [x, y, c] x 70,
"hand_left_keypoints_2d": [x, y, c] x 21, "hand_right_keypoints_2d": ...}]}`` in source-video
pixels (OpenPose's default ``--keypoint_scale 0``). The 137 points are mapped to the 133 layout
by ``signpipe.keypoints.openpose_map``; the signer is chosen among people as for MMPose, and the
clip window of the manifest row is cut by frame number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import signpipe
from signpipe.keypoints.openpose_map import openpose_to_wholebody
from signpipe.pose import Backend, Keypoints, file_import_backend
from signpipe.pose.track import POLICY, Person, select_signer

FRAME_FILE = re.compile(r"(\d+)_keypoints\.json$")
"""An OpenPose frame file; the digits before ``_keypoints.json`` are the frame number."""


def frame_files(folder: str | Path) -> dict[int, Path]:
    """OpenPose's frame files in a video's folder, by frame number."""
    files: dict[int, Path] = {}
    for path in Path(folder).iterdir():
        match = FRAME_FILE.search(path.name)
        if not match:
            continue
        frame = int(match.group(1))
        if frame in files:
            raise ValueError(f"{folder}: two files for frame {frame}: {files[frame].name} and {path.name}")
        files[frame] = path
    return files


def read_frame(path: str | Path) -> list[Person]:
    """The people of one OpenPose frame file, in the 133 layout."""
    with open(path, encoding="utf-8") as f:
        try:
            people = json.load(f)["people"]
            return [Person(*openpose_to_wholebody(person)) for person in people]
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not an OpenPose keypoints file ({err})") from err


def read_openpose(folder: str | Path, size: tuple[int, int], frame_start: int = 0,
                  frame_end: int = -1) -> Keypoints:
    """The signer's keypoints in frames ``[frame_start, frame_end)`` (-1 = to the end) of a video's folder.

    size: the source video's (width, height), used to find the most central person. Frames
    without a file (a gap in the numbering) have nobody in them.
    """
    files = frame_files(folder)
    stop = max(files, default=-1) + 1
    if frame_end >= 0:
        stop = min(stop, frame_end)
    frames = [read_frame(files[t]) if t in files else [] for t in range(frame_start, stop)]
    return Keypoints(*select_signer(frames, size))


def make_backend(cfg: Mapping[str, Any]) -> Backend:
    return file_import_backend(cfg, "openpose", "{video_id}", read_openpose, {
        "backend": "openpose", "version": signpipe.__version__,
        "map": "signpipe.keypoints.openpose_map: BODY_25 + face 68 of 70 + 2x21 hands", "people": POLICY})
