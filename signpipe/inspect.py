"""`signpipe inspect`: what is inside any signpipe HDF5 artifact, without writing code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.keypoints.quality import DETECTION_THRESHOLD, detection_rates
from signpipe.shards import VLEN_BYTES, read_index

MAX_STAT_BYTES = 64 << 20
"""Arrays larger than this get their stats from evenly spaced rows (the report says how many)."""


def _rows_for_stats(ds: h5py.Dataset) -> np.ndarray | slice:
    row_bytes = max(ds.dtype.itemsize * int(np.prod(ds.shape[1:], dtype=np.int64)), 1)
    n = len(ds)
    keep = max(1, MAX_STAT_BYTES // row_bytes)
    return slice(None) if n <= keep else np.linspace(0, n - 1, keep).astype(np.int64)


def array_stats(ds: h5py.Dataset) -> str:
    """One line of stats for an array: min/mean/max for numbers, sizes for encoded bytes."""
    if len(ds) == 0 or ds.ndim == 0:
        return "empty"
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
    text = f"min {data[finite].min():.4g} mean {data[finite].mean():.4g} max {data[finite].max():.4g}"
    if not finite.all():
        text += f" non-finite {int((~finite).sum())}"
    return text + sampled


def describe(path: str | os.PathLike) -> str:
    """The report `signpipe inspect` prints: attrs, index summary, and every array with its stats."""
    path = Path(path)
    lines = [f"{path} ({path.stat().st_size / 1e6:.1f} MB)"]
    with h5py.File(path, "r") as f:
        for key, value in sorted(f.attrs.items()):
            if key == "config":
                value = json.dumps(json.loads(value), sort_keys=True)
            lines.append(f"  @{key}: {value}")
        if "index" in f:
            index = read_index(f)
            lengths = index["length"].to_numpy()
            splits = ", ".join(f"{k} {v}" for k, v in index["split"].value_counts().sort_index().items())
            lines.append(f"  videos: {len(index)} ({splits or 'none'}), frames {int(lengths.sum())}")
            if len(index):
                lines.append(f"  frames per video: min {lengths.min()} median {np.median(lengths):.0f} "
                             f"max {lengths.max()}; labels {index['label'].nunique()}")

        if "score" in f and f["score"].ndim == 2 and f["score"].shape[1] == NUM_KEYPOINTS and len(f["score"]):
            rows = _rows_for_stats(f["score"])
            rates = detection_rates(f["score"][rows])
            lines.append("  detected (share of frames, score > "
                         f"{DETECTION_THRESHOLD} on half a part's points): "
                         + ", ".join(f"{part} {rate:.2f}" for part, rate in rates.items()))

        def visit(name: str, obj: h5py.HLObject) -> None:
            depth = name.count("/") + 1
            pad = "  " * depth
            if isinstance(obj, h5py.Group):
                lines.append(f"{pad}{name.split('/')[-1]}/")
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
