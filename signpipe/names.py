"""Video ids as file names: the one rule for what an id may hold, and the one way to build a path from it.

Video ids end up in file names (``sheets/<video_id>.png``, ``corpus/videos/<video_id>.mp4``), so
the manifest accepts only ids that are plain names (:func:`video_id_problem`), and every path
built from an id goes through :func:`video_file`, which refuses a name that would leave its folder.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

VIDEO_ID_RULE = "letters, digits, '_', '.' and '-' only, not starting with '.', at most 200 bytes"
"""What a video id may hold, for error messages."""
MAX_ID_BYTES = 200
"""Longest id in UTF-8 bytes: file systems allow 255 per name, the rest is for suffixes."""
_UNSAFE = re.compile(r"[^\w.-]")
"""Characters outside the rule (``\\w`` is any Unicode letter or digit, and '_')."""


def video_id_problem(video_id: object) -> str | None:
    """Why ``video_id`` cannot be a file name (``'is empty'``, ``"contains '/'"``), or None when it can."""
    if video_id is None or (isinstance(video_id, float) and math.isnan(video_id)) or video_id == "":
        return "is empty"
    text = str(video_id)
    unsafe = sorted(set(_UNSAFE.findall(text)))
    if unsafe:
        return "contains " + ", ".join(map(repr, unsafe))
    if text.startswith("."):
        return "starts with '.'"
    if len(text.encode("utf-8")) > MAX_ID_BYTES:
        return f"is longer than {MAX_ID_BYTES} bytes"
    return None


def video_file(folder: str | os.PathLike, video_id: str, suffix: str = "") -> Path:
    """``folder/<video_id><suffix>``; a ValueError when the id is no plain file name (it could leave ``folder``)."""
    problem = video_id_problem(video_id)
    if problem is None and os.sep not in suffix and "/" not in suffix:
        return Path(folder) / f"{video_id}{suffix}"
    raise ValueError(f"video_id {video_id!r} {problem or f'with suffix {suffix!r} is no file name'}: "
                     f"refusing to build a path in {folder} from it; video ids must hold {VIDEO_ID_RULE} "
                     "(fix the id in the dataset's index or manifest)")
