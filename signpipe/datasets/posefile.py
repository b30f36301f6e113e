"""pose-format ``.pose`` files, one per sequence (the sign-language-processing community's format).

Listed by :func:`signpipe.datasets.files.load_files`: a ``manifest`` CSV of files and labels, or
``root`` with a folder per class (``.pose`` files by default). The pose stage reads each file's
components into the 133 COCO-WholeBody points (``signpipe.keypoints.sources``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signpipe.datasets.files import load_files

EXTENSIONS = (".pose",)


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of every listed ``.pose`` file that exists, and the missing."""
    return load_files(cfg, where, EXTENSIONS)
