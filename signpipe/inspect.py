"""`signpipe inspect`: what is inside any signpipe HDF5 artifact, without writing code."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.keypoints.quality import DETECTION_THRESHOLD, detection_rates
from signpipe.shards import VLEN_BYTES, read_index

MAX_STAT_BYTES = 64 << 20
"""Arrays larger than this get their stats from evenly spaced rows (the report says how many)."""
INDEX_COLUMNS = ("video_id", "start", "length", "label", "split")
"""Columns of a shard's ``/index`` table (docs/hdf5.md)."""


@contextmanager
def open_hdf5(path: str | os.PathLike) -> Iterator[h5py.File]:
    """``path`` opened read-only; a missing or non-HDF5 file is an error that names it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise ValueError(f"{path}: not an HDF5 file; signpipe's artifacts are the .h5 files under results/ "
                         "(e.g. results/demo/frames/0.h5)")
    try:
        f = h5py.File(path, "r")
    except OSError as error:  # e.g. a truncated file: h5py's message does not name it
        raise OSError(f"{path}: cannot open the HDF5 file ({error}); is it complete?") from None
    with f:
        yield f


def index_table(f: h5py.File) -> pd.DataFrame:
    """The ``/index`` table of an open artifact; an error naming the file when it is not one."""
    index = f.get("index")
    if isinstance(index, h5py.Dataset) and index.ndim == 1 and set(INDEX_COLUMNS) <= set(index.dtype.names or ()):
        return read_index(f)
    found = ("absent" if index is None else "a group" if isinstance(index, h5py.Group)
             else f"an array of shape {index.shape} and dtype {index.dtype}")
    raise ValueError(f"{f.filename}: /index is {found}, not a signpipe index table with columns "
                     f"{', '.join(INDEX_COLUMNS)} (docs/hdf5.md); was the file written by signpipe?")


def _rows_for_stats(ds: h5py.Dataset) -> np.ndarray | slice:
    row_bytes = max(ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64)), 1)
    n = len(ds)
    keep = max(1, MAX_STAT_BYTES // row_bytes)
    return slice(None) if n <= keep else np.linspace(0, n - 1, keep).astype(np.int64)


def array_stats(ds: h5py.Dataset) -> str:
    """One line of stats for an array: min/mean/max for numbers, sizes for encoded bytes."""
    if ds.ndim == 0 or len(ds) == 0:
        return "empty" if ds.ndim else "scalar"
    rows = _rows_for_stats(ds)
    sampled = "" if isinstance(rows, slice) else f" (over {len(rows)} of {len(ds)} rows)"
    data = ds[rows]
    if ds.dtype == VLEN_BYTES:
        sizes = np.array([len(x) for x in data])
        return f"bytes/row min {sizes.min()} mean {sizes.mean():.0f} max {sizes.max()}{sampled}"
    if data.dtype.kind not in "biuf":
        return f"dtype {data.dtype}"
    data = data.astype(np.float64)
    finite = np.isfinite(data)
    if not finite.any():
        return f"all {data.size} values non-finite{sampled}"
    text = f"min {data[finite].min():.4g} mean {data[finite].mean():.4g} max {data[finite].max():.4g}"
    if not finite.all():
        text += f" non-finite {int((~finite).sum())}"
    return text + sampled


def _json(value: object) -> object:
    """A JSON attr re-serialised with sorted keys; anything else as it is."""
    try:
        return json.dumps(json.loads(value), sort_keys=True)
    except (TypeError, ValueError):
        return value


def describe(path: str | os.PathLike) -> str:
    """The report `signpipe inspect` prints: attrs, index summary, and every array with its stats."""
    path = Path(path)
    with open_hdf5(path) as f:
        lines = [f"{path} ({path.stat().st_size / 1e6:.1f} MB)"]
        for key, value in sorted(f.attrs.items()):
            if key == "config":
                value = _json(value)
            lines.append(f"  @{key}: {value}")
        if "index" in f:
            index = index_table(f)
            lengths = index["length"].to_numpy()
            splits = ", ".join(f"{k} {v}" for k, v in index["split"].value_counts().sort_index().items())
            lines.append(f"  videos: {len(index)} ({splits or 'none'}), frames {int(lengths.sum())}")
            if len(index):
                lines.append(f"  frames per video: min {lengths.min()} median {np.median(lengths):.0f} "
                             f"max {lengths.max()}; labels {index['label'].nunique()}")

        if not f.attrs.get("crops", True):
            lines.append("  no crops: a keypoint dataset's hands shard (poses and boxes in the nominal frame only)")

        score = f.get("score")
        if isinstance(score, h5py.Dataset) and score.ndim == 2 and score.shape[1] == NUM_KEYPOINTS and len(score):
            rows = _rows_for_stats(score)
            rates = detection_rates(score[rows])
            lines.append("  detected (share of frames, score > "
                         f"{DETECTION_THRESHOLD} on half a part's points): "
                         + ", ".join(f"{part} {rate:.2f}" for part, rate in rates.items()))

        def visit(name: str, obj: h5py.HLObject) -> None:
            depth = name.count("/") + 1
            pad = "  " * depth
            if not isinstance(obj, h5py.Dataset):
                lines.append(f"{pad}{name.split('/')[-1]}{'/' if isinstance(obj, h5py.Group) else ' (named type)'}")
                return
            dtype = "vlen bytes" if obj.dtype == VLEN_BYTES else str(obj.dtype)
            if obj.dtype.names:
                dtype = "table(" + ", ".join(obj.dtype.names) + ")"
                stats = ""
            else:
                stats = "  " + array_stats(obj)
            chunks = f" chunks {obj.chunks}" if obj.chunks else ""
            comp = f" {obj.compression}" if obj.compression else ""
            lines.append(f"{pad}/{name.split('/')[-1]} {obj.shape} {dtype}{chunks}{comp}{stats}")

        f.visititems(visit)
    return "\n".join(lines)
