"""The embedded synthetic demo corpus: ``corpus.csv`` written by ``signpipe.synth.make_corpus``.

Its columns are the manifest's plus ``keypoints`` (the sidecar keypoints file of each video)
and ``repeat``; ``path`` and ``keypoints`` are relative to the corpus folder and made absolute.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signpipe.datasets import existing, resolve
from signpipe.datasets.csvfile import read_table


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of ``corpus_dir/corpus.csv`` whose video exists, and the missing."""
    if corpus_dir is None:
        raise ValueError(f"{where}: the synthetic adapter needs corpus_dir, the folder that "
                         "signpipe.synth.make_corpus wrote")
    corpus_csv = existing(resolve(corpus_dir) / "corpus.csv", f"{where} (corpus_dir)")
    return read_table(corpus_csv, f"{where}: {corpus_csv}", path_columns=("path", "keypoints"))
