"""What every keypoint file reader returns, and the per-file loop they share."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.jobs import describe, fails_the_job

REASON_LIMIT = 300
"""Longest reason a failures row gets for one file."""


@dataclass
class KeypointSequence:
    """One sequence in the 133 COCO-WholeBody layout.

    xy: (T, 133, 2) float32 in pixels, 0 where the point is missing.
    score: (T, 133) float32 in [0, 1], 0 where the point is missing.
    fps: frames per second when the file says, else None.
    size: (width, height) of the frame the pixels refer to when the file says (a pyskl
    ``img_shape``, a ``.pose`` header); None means the dataset's nominal ``width`` x ``height``.
    """

    xy: np.ndarray
    score: np.ndarray
    fps: float | None = None
    size: tuple[int, int] | None = None


Result = tuple[str, "KeypointSequence | ValueError"]
"""(video_id, the sequence or why it could not be read)."""


def nominal_size(cfg: Mapping[str, Any], fmt: str) -> tuple[int, int]:
    """The dataset's nominal frame (``width``, ``height``) that normalised coordinates are scaled to."""
    try:
        width, height = int(cfg["width"]), int(cfg["height"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{fmt} dataset: set width and height (the nominal frame in pixels that normalised "
                         f"coordinates become), got width={cfg.get('width')!r}, height={cfg.get('height')!r}") from err
    if width <= 0 or height <= 0:
        raise ValueError(f"{fmt} dataset: width and height must be positive, got {width} x {height}")
    return width, height


def read_each(rows: Sequence[Mapping[str, Any]], read: Callable[[Path], KeypointSequence]) -> Iterator[Result]:
    """``read`` each row's ``path`` in order; a file that cannot be read, for whatever reason, yields
    :func:`file_error` instead of raising, so one damaged file never costs the shard. Only errors of
    the job itself (:func:`signpipe.jobs.fails_the_job`: memory, disk full, interrupt) propagate."""
    for row in rows:
        path = Path(row["path"])
        try:
            sequence: KeypointSequence | ValueError = read(path)
        except Exception as err:
            if fails_the_job(err):
                raise
            sequence = file_error(path, err)
        yield str(row["video_id"]), sequence


def file_error(path: Path | str, err: Exception) -> ValueError:
    """The one-line reason a file failed, naming it: an OSError's ``cannot read (...)``, a ValueError's
    message, else ``Type: message``; cut to :data:`REASON_LIMIT` characters (numpy and pyarrow can
    quote a whole column in a message)."""
    if isinstance(err, OSError):
        reason = f"cannot read ({err.strerror or err})"
    elif isinstance(err, ValueError):
        reason = str(err)
    else:
        reason = describe(err)
    if str(path) not in reason:
        reason = f"{path}: {reason}"
    return ValueError(shorten(reason))


def shorten(text: str, limit: int | None = None) -> str:
    """``text`` on one line, at most ``limit`` (default :data:`REASON_LIMIT`) characters ('...' marks a cut)."""
    limit = limit or REASON_LIMIT
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."
