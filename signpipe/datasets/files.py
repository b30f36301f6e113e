"""Keypoint files listed like videos: one file per sequence, labelled by a CSV or a folder per class.

The ``pose`` (pose-format ``.pose``) and ``arrays`` (``.npy``/``.npz``) adapters share it: with a
``manifest`` key the files and labels come from a CSV exactly as the ``csv`` adapter reads one
(``video_id, path, label, split`` plus optional ``gloss, signer``); with ``root`` they are found
in a folder per class as the ``folder`` adapter finds videos (``pattern`` names the signer,
``splits`` lists signers per split). Either way each row gets the nominal frame
(``width``, ``height``) its normalised coordinates are scaled to: the dataset's keys, one frame
for every sequence. A CSV ``width``/``height`` column that disagrees with them is refused, not
silently replaced. A ``role: pretrain`` dataset needs no labels: a CSV of ``video_id, path``, or a
``root`` holding the files directly (``pattern`` optional).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from signpipe.datasets import FRAME_COLUMNS, config_path, dataset_role, nominal_frame
from signpipe.datasets import csvfile, folder


def load_files(cfg: Mapping[str, Any], where: str, extensions: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows, missing) of the keypoint files a ``manifest`` CSV or a ``root`` folder per class lists.

    ``extensions`` are the file types looked for under ``root`` unless the block has ``extensions``.
    """
    if (cfg.get("manifest") is None) == (cfg.get("root") is None):
        raise ValueError(f"{where}: set either manifest (a CSV of files, labels and splits) or root "
                         "(a folder per class, with pattern and splits), not both or neither")
    if cfg.get("manifest") is not None:
        rows, missing = csvfile.read_table(config_path(cfg, "manifest", where), f"{where}.manifest",
                                           labeled=dataset_role(cfg, where) != "pretrain")
    else:
        rows, missing = folder.load({**cfg, "extensions": cfg.get("extensions") or list(extensions)}, where)
    width, height = nominal_frame(cfg, where)
    for key, value in zip(FRAME_COLUMNS, (width, height)):
        bad = rows[pd.to_numeric(rows[key], errors="coerce") != value] if key in rows.columns else rows.iloc[:0]
        if len(bad):  # the readers scale by the dataset's frame: a per-row size would be dropped unsaid
            raise ValueError(f"{where}.manifest: {cfg['manifest']}: video_id {bad['video_id'].iloc[0]!r} has "
                             f"{key} {bad[key].iloc[0]!r} ({len(bad)} row(s) differ), but the nominal frame is the "
                             f"dataset's {key} key ({value}); set {where}.{key} and drop the column")
    missing = missing.assign(reason=missing["reason"].replace("video file not found", "keypoint file not found"))
    return rows.assign(**{FRAME_COLUMNS[0]: width, FRAME_COLUMNS[1]: height}), missing
