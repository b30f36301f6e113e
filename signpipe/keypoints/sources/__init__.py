"""Readers of corpora that ship keypoints instead of videos, into the 133 COCO-WholeBody layout.

One module per file format, each mapping through the one table of its source
(``signpipe.keypoints.mediapipe_map``, ``openpose_map``); docs/datasets.md, "Keypoint file
formats", describes each. Format modules are imported only when read, so listing ``FORMATS``
costs no pyarrow or pose-format import.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from signpipe.keypoints.sources.sequence import KeypointSequence, Result

FORMATS = ("gislr", "pose", "arrays", "pyskl")
"""Adapter names of the keypoint datasets, one reader each."""

_MODULES = {"gislr": "gislr", "pose": "posefile", "arrays": "arrays", "pyskl": "pyskl"}


def read_sequences(fmt: str, rows: Sequence[Mapping[str, Any]], cfg: Mapping[str, Any]) -> Iterator[Result]:
    """Yield (video_id, sequence) per manifest row in order, reading one file at a time.

    rows: manifest rows with at least ``video_id`` and ``path`` (for pyskl the pickle, and
    ``video_id`` the annotation's ``frame_dir``). cfg: the dataset's config block. A sequence
    that cannot be read yields (video_id, ValueError(reason)) instead of raising, so the caller
    writes the rest and lists the reason; a config that cannot work for any file raises.
    """
    if fmt not in _MODULES:
        raise ValueError(f"unknown keypoint format {fmt!r}; known: {', '.join(FORMATS)}")
    module = importlib.import_module(f"signpipe.keypoints.sources.{_MODULES[fmt]}")
    return module.read(rows, cfg)


def load_pyskl(path: Path, trust_pickle: bool) -> dict:
    """A pyskl skeleton pickle (``{"split": ..., "annotations": [...]}``); refused unless ``trust_pickle``."""
    from signpipe.keypoints.sources.pyskl import load

    return load(path, trust_pickle)


__all__ = ["FORMATS", "KeypointSequence", "load_pyskl", "read_sequences"]
