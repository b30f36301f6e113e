"""``gislr``: Kaggle "Isolated Sign Language Recognition" (ASL Signs) landmark parquet files.

One parquet per sequence, one row per frame x landmark: ``frame, row_id, type, landmark_index,
x, y, z``, ``type`` one of ``face`` (468), ``left_hand`` (21), ``pose`` (33), ``right_hand``
(21): MediaPipe Holistic's output, x and y normalised to the image, NaN where Holistic found
nothing. Only ``frame, type, landmark_index, x, y`` are read (``type`` dictionary-encoded), and
rows are scattered into per-part arrays with one vectorised assignment (no per-row Python), then placed by
``MEDIAPIPE_MAP`` like the ``mediapipe`` pose backend's output. Frame numbers need not start
at 0: the sequence runs from the first to the last frame in the file, a frame without rows
being undetected; frame numbers that are missing or not integers, or a gap of more than
``MAX_FRAME_GAP`` frames without rows (a damaged number such as 2^31 would otherwise allocate
terabytes), refuse the file. Scores are 1 where a landmark has coordinates (the files hold no confidence).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from signpipe.keypoints.mediapipe_map import PART_SIZES, mediapipe_sequence_to_wholebody
from signpipe.keypoints.sources.sequence import KeypointSequence, Result, nominal_size, read_each

COLUMNS = ("frame", "type", "landmark_index", "x", "y")
"""The columns read; ``row_id`` and ``z`` are not needed."""

MAX_FRAME_GAP = 1000
"""Most consecutive frames without any row inside one sequence (40 s at 25 fps; the Kaggle files have none)."""

_OFFSETS = dict(zip(PART_SIZES, np.cumsum([0, *PART_SIZES.values()])[:-1].tolist()))
"""Start of each Holistic part in the (T, sum of PART_SIZES, 3) array rows are scattered into."""


def read_parquet(path: Path, size: tuple[int, int]) -> KeypointSequence:
    """One sequence file as 133 keypoints in pixels of the nominal frame ``size`` (width, height)."""
    try:
        parquet = pq.ParquetFile(path, read_dictionary=["type"])
    except KeyError:  # no "type" column to dictionary-encode
        parquet = pq.ParquetFile(path)
    with parquet:
        names = parquet.schema_arrow.names
        missing = [c for c in COLUMNS if c not in names]
        if missing:
            raise ValueError(f"{path}: not a GISLR landmark file: missing column(s) {', '.join(missing)} "
                             f"(has {', '.join(names)})")
        table = parquet.read(columns=list(COLUMNS), use_threads=False)  # one small file: threads cost more
    for name in ("x", "y", "landmark_index"):
        dtype = table.schema.field(name).type
        if not (pa.types.is_floating(dtype) or pa.types.is_integer(dtype)):
            raise ValueError(f"{path}: column {name} must hold numbers, got {dtype}")
    if table.num_rows == 0:
        raise ValueError(f"{path}: empty sequence (no landmark rows)")
    kind = table.column("type").combine_chunks()
    if not pa.types.is_dictionary(kind.type) or not pa.types.is_string(kind.type.value_type):
        raise ValueError(f"{path}: column type must hold the strings {', '.join(PART_SIZES)}, got {kind.type}")
    unknown = sorted(set(kind.dictionary.to_pylist()) - set(PART_SIZES))
    if unknown:
        raise ValueError(f"{path}: unknown landmark type(s) {', '.join(map(str, unknown))}; "
                         f"expected {', '.join(PART_SIZES)}")
    if kind.null_count:
        raise ValueError(f"{path}: {kind.null_count} row(s) without a landmark type")
    parts = kind.dictionary.to_pylist()
    offset = np.array([_OFFSETS[p] for p in parts], np.int64)[kind.indices.to_numpy()]
    count = np.array([PART_SIZES[p] for p in parts], np.int64)[kind.indices.to_numpy()]
    index = table.column("landmark_index").to_numpy().astype(np.int64)
    bad = (index < 0) | (index >= count)
    if bad.any():
        row = int(np.argmax(bad))
        raise ValueError(f"{path}: landmark_index {index[row]} out of range for type {kind[row].as_py()} "
                         f"({int(bad.sum())} such row(s))")
    frame = frame_numbers(path, table.column("frame"))
    points = np.full((int(frame.max()) + 1, sum(PART_SIZES.values()), 3), np.nan, np.float32)
    width, height = size
    points[frame, offset + index, 0] = table.column("x").to_numpy() * width
    points[frame, offset + index, 1] = table.column("y").to_numpy() * height
    points[..., 2] = 1.0
    xy, score = mediapipe_sequence_to_wholebody(
        {part: points[:, start:start + PART_SIZES[part]] for part, start in _OFFSETS.items()}, len(points))
    return KeypointSequence(xy, score)


def frame_numbers(path: Path, column: pa.ChunkedArray) -> np.ndarray:
    """The ``frame`` column as 0-based int64 positions; refuses missing or fractional numbers and gaps
    of more than :data:`MAX_FRAME_GAP` frames, so the positions are bounded by the rows present."""
    values = column.to_numpy()
    if not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"{path}: column frame must hold integers, got {column.type}")
    bad = np.zeros(len(values), bool)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        raise ValueError(f"{path}: {int(bad.sum())} row(s) with a missing or fractional frame number "
                         f"(first {values[bad][0]})")
    frame = values.astype(np.int64)
    present = np.unique(frame)
    gaps = np.diff(present)
    if len(gaps) and gaps.max() > MAX_FRAME_GAP:
        at = int(np.argmax(gaps))
        raise ValueError(f"{path}: frame numbers jump from {present[at]} to {present[at + 1]} (more than "
                         f"{MAX_FRAME_GAP} frames without rows); a damaged frame number?")
    return frame - present[0]


def read(rows: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any]) -> Iterator[Result]:
    """Stream the rows' parquet files (cfg keys: ``width``, ``height``)."""
    size = nominal_size(cfg, "gislr")
    return read_each(rows, lambda path: read_parquet(path, size))
