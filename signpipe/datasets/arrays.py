"""One ``.npy`` / ``.npz`` array of keypoints per sequence, in a declared ``layout``.

Listed by :func:`signpipe.datasets.files.load_files`: a ``manifest`` CSV of files, labels and
signers, or ``root`` with a folder per class. ``layout`` (required) names how each array's points
are ordered (``signpipe.keypoints.sources``); it is checked here so that a typo fails at listing,
not in every pose job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signpipe.datasets import required
from signpipe.datasets.files import load_files
from signpipe.keypoints.sources.arrays import LAYOUTS, hands_order

EXTENSIONS = (".npy", ".npz")


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of every listed array file that exists, and the missing."""
    layout = required(cfg, "layout", where)
    if layout not in LAYOUTS:
        raise ValueError(f"{where}.layout: {layout!r} is not one of {', '.join(LAYOUTS)}")
    hands_order(cfg, where)
    return load_files(cfg, where, EXTENSIONS)
