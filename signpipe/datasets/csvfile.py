"""A manifest the user wrote: a CSV with at least ``video_id, path, label, split``.

Optional columns and their defaults: ``gloss`` (the label as text), ``signer`` (''),
``frame_start`` (0), ``frame_end`` (-1). Other columns are kept as extras. Relative paths
are resolved against the CSV's folder, so the CSV can travel with its videos. A ``role: pretrain``
dataset's CSV needs only ``video_id, path``: its labels and splits, if any, are not read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from signpipe.datasets import (
    check_video_ids, config_path, dataset_role, read_manifest, resolve, split_missing, unlabeled, utf8_text,
)

REQUIRED = ["video_id", "path", "label", "split"]
DEFAULTS = {"gloss": "", "signer": "", "frame_start": 0, "frame_end": -1}
"""Optional columns; an empty gloss becomes the label as text."""


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the ``manifest`` CSV whose video file exists, and the missing."""
    return read_table(config_path(cfg, "manifest", where), f"{where}.manifest",
                      labeled=dataset_role(cfg, where) != "pretrain")


def read_table(csv_path: Path, what: str, path_columns: Sequence[str] = ("path",),
               labeled: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A manifest-like CSV with defaults filled and ``path_columns`` made absolute; split on ``path``.
    ``labeled`` False (a ``role: pretrain`` dataset): ``label`` and ``split`` need not be there (see
    :func:`signpipe.datasets.unlabeled`)."""
    data = csv_path.read_bytes()
    if b"\0" in data:  # pandas would silently cut the cell at it
        line = data[:data.index(b"\0")].count(b"\n") + 1
        raise ValueError(f"{what}: {csv_path}: line {line} holds a NUL byte; is it a text CSV?")
    utf8_text(csv_path, data)
    table = read_manifest(csv_path)
    if not labeled:
        table = unlabeled(table)
    absent = [c for c in [*REQUIRED, *path_columns] if c not in table.columns]
    if absent:
        raise ValueError(f"{what}: {csv_path} lacks the columns {absent}")
    check_video_ids(table["video_id"], f"{what}: {csv_path}", lambda i: f"line {i + 2}")
    table = table.assign(**{c: v for c, v in DEFAULTS.items() if c not in table.columns}).fillna(DEFAULTS)
    table["gloss"] = table["gloss"].where(table["gloss"] != "", table["label"].astype(str))
    for column in path_columns:
        table[column] = [str(resolve(p, csv_path.parent)) for p in table[column]]
    return split_missing(table, table["path"].map(os.path.isfile).astype(bool), "video file not found")
