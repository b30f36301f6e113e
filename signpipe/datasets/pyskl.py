"""pyskl / MMAction2 skeleton pickles: ``{"split": {name: [frame_dir, ...]}, "annotations": [...]}``.

Each annotation is one sequence: ``frame_dir`` (its id), ``label``, ``keypoint`` (M, T, V, 2) in
pixels of ``img_shape`` (height, width), ``keypoint_score`` (M, T, V). Only 133-point WholeBody
files (HRNet / RTMPose) fit signpipe's layout. Unpickling runs code stored in the file, so the
dataset block must say ``trust_pickle: true`` (``signpipe.keypoints.sources.load_pyskl`` refuses
otherwise). ``splits`` maps signpipe's splits to the pickle's split names (default: the same
names); sequences in none of the mapped splits are not listed. Every row's ``path`` is the pickle;
``frame_dir`` (an extra column) finds the annotation again, and the video id is ``frame_dir``
with characters a file name cannot hold replaced by '_'.
"""

from __future__ import annotations

import logging
import numbers
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signpipe.datasets import FRAME_COLUMNS, SPLITS, config_path, examples, flag, no_missing, nominal_frame, text_lines

log = logging.getLogger(__name__)


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the annotations in the mapped splits of ``pickle``; nothing is missing (one file holds all)."""
    from signpipe.keypoints.sources import load_pyskl

    path = config_path(cfg, "pickle", where)
    data = load_pyskl(path, flag(cfg, "trust_pickle", where, False))
    split_names = cfg.get("splits") or {split: split for split in SPLITS if split in data["split"]}
    unknown = sorted(name for name in split_names.values() if name not in data["split"])
    if set(split_names) - set(SPLITS) or unknown:
        raise ValueError(f"{where}.splits: expected {{train|val|test: split name of the pickle}}; the pickle's "
                         f"splits are {examples(sorted(data['split']))}, got {dict(split_names)!r}")
    split_of: dict[str, str] = {}
    for split, name in split_names.items():
        for frame_dir in data["split"][name]:
            if split_of.setdefault(str(frame_dir), split) != split:
                raise ValueError(f"{where}.splits: sequence {frame_dir!r} is in both {split_of[str(frame_dir)]} "
                                 f"and {split}")
    glosses = class_names(cfg, where)
    width, height = nominal_frame(cfg, where)
    records = []
    for number, annotation in enumerate(data["annotations"]):
        frame_dir = str(annotation["frame_dir"])
        if frame_dir not in split_of:
            continue
        what = f"{where}: {path}: annotation {number} (frame_dir {frame_dir!r})"
        label = annotation.get("label")
        if isinstance(label, bool) or not isinstance(label, numbers.Integral):
            raise ValueError(f"{what}: label must be an integer class index, got {label!r}")
        shape = annotation.get("img_shape")
        if shape is None:
            shape = (height, width)
        elif not (isinstance(shape, (tuple, list)) and len(shape) >= 2
                  and all(isinstance(v, numbers.Integral) and v > 0 for v in shape[:2])):
            raise ValueError(f"{what}: img_shape must be (height, width) in positive pixels, got {shape!r}")
        records.append({
            "video_id": safe_id(frame_dir), "path": str(path), "label": int(label),
            "gloss": glosses[label] if label < len(glosses) else str(label), "split": split_of[frame_dir],
            "signer": "", "frame_start": 0, "frame_end": -1,
            FRAME_COLUMNS[0]: int(shape[1]), FRAME_COLUMNS[1]: int(shape[0]), "frame_dir": frame_dir,
        })
    rows = pd.DataFrame.from_records(records, columns=["video_id", "path", "label", "gloss", "split", "signer",
                                                       "frame_start", "frame_end", *FRAME_COLUMNS, "frame_dir"])
    repeated = rows.loc[rows["frame_dir"].duplicated(), "frame_dir"].unique()
    if len(repeated):
        raise ValueError(f"{where}: {path}: frame_dir {examples(sorted(repeated))} is in several annotations; "
                         "each sequence needs its own frame_dir")
    clashes = rows.loc[rows["video_id"].duplicated(keep=False), "frame_dir"]
    if len(clashes):
        raise ValueError(f"{where}: frame_dirs {examples(sorted(clashes))} of {path} give the same video id once "
                         "made file-name safe; rename them in the pickle")
    log.info("%s: %d of %d annotations of %s are in the splits %s", where, len(rows), len(data["annotations"]),
             path, dict(split_names))
    return rows, no_missing()


def class_names(cfg: Mapping[str, Any], where: str) -> list[str]:
    """Glosses by label from the ``classes`` file (one per line), else none (the gloss is the label)."""
    if cfg.get("classes") is None:
        return []
    return text_lines(config_path(cfg, "classes", where))


def safe_id(frame_dir: str) -> str:
    """``frame_dir`` as a video id: runs of characters outside letters, digits, '_', '.', '-' -> '_', no leading '.'."""
    text = re.sub(r"[^\w.-]+", "_", frame_dir)
    return "_" + text[1:] if text.startswith(".") else text
