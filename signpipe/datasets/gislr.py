"""Google's Kaggle "ASL Signs" (Isolated Sign Language Recognition) layout: MediaPipe landmarks, no video.

``train.csv`` lists one sequence per row: ``path`` (its parquet, relative to the CSV's folder),
``participant_id``, ``sequence_id``, ``sign``. Labels are the signs in the order of a ``classes``
file (one sign per line, or the competition's ``sign_to_prediction_index_map.json``), else sorted.
Splits come from config lists of participants (``split_by: participant``, the default, so val and
test signers are never trained on) or, for a slice with one participant, of sequence ids
(``split_by: sequence``, which is not signer-independent). The 94k rows of the full set are listed
with one scan of each participant folder, not a stat per file. A ``role: pretrain`` dataset reads no
``sign`` (the column may be absent) and needs no splits: every sequence is pre-trained on.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signpipe.datasets import (
    FRAME_COLUMNS,
    NO_LABEL,
    SPLITS,
    config_path,
    dataset_role,
    examples,
    nominal_frame,
    split_missing,
    text_lines,
    utf8_text,
)
from signpipe.datasets.folder import signer_splits

COLUMNS = ["path", "participant_id", "sequence_id", "sign"]
SPLIT_BY = ("participant", "sequence")


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of every sequence of ``index`` whose parquet exists, and the missing."""
    index = config_path(cfg, "index", where)
    utf8_text(index)
    table = pd.read_csv(index, dtype=str, keep_default_na=False)
    labeled = dataset_role(cfg, where) != "pretrain"
    absent = [c for c in COLUMNS if c not in table.columns and (labeled or c != "sign")]
    if absent:
        raise ValueError(f"{where}.index: {index} lacks the columns {absent} of the Kaggle train.csv")
    label, split = labels_and_splits(cfg, table, index, where) if labeled else (NO_LABEL, "train")
    width, height = nominal_frame(cfg, where)
    paths = [os.path.normpath(os.path.join(index.parent, p)) for p in table["path"]]
    rows = pd.DataFrame({
        "video_id": table["sequence_id"], "path": paths, "label": label, "gloss": table.get("sign", ""),
        "split": split, "signer": table["participant_id"], "frame_start": 0, "frame_end": -1,
        FRAME_COLUMNS[0]: width, FRAME_COLUMNS[1]: height,
    })
    return split_missing(rows, pd.Series(existing_files(paths)), "keypoint file not found")


def labels_and_splits(cfg: Mapping[str, Any], table: pd.DataFrame, index: Path,
                      where: str) -> tuple[pd.Series, pd.Series]:
    """Each row's label (its sign's, :func:`class_labels`) and split (by participant or sequence)."""
    empty = table.index[table["sign"].str.strip() == ""]
    if len(empty):  # it would become class '' and renumber every other class
        raise ValueError(f"{where}.index: {index}: line(s) {examples(list(empty + 2))} have an empty sign "
                         f"(sequence_id {examples(table.loc[empty, 'sequence_id'])}); give each row its sign "
                         "or remove it")
    label_of = class_labels(cfg, sorted(table["sign"].unique()), where)
    unknown = sorted(set(table["sign"]) - set(label_of))
    if unknown:
        raise ValueError(f"{where}.classes: signs {examples(unknown)} of {index} are not in the classes file")
    split_by = cfg.get("split_by", "participant")
    if split_by not in SPLIT_BY:
        raise ValueError(f"{where}.split_by: must be one of {', '.join(SPLIT_BY)}, got {split_by!r}")
    keys = table["participant_id" if split_by == "participant" else "sequence_id"]
    split = keys.map(signer_splits(cfg, where))
    unlisted = sorted(keys[split.isna()].unique())
    if unlisted:
        default = cfg.get("default_split")
        if default not in SPLITS:
            raise ValueError(f"{where}.splits: {split_by}s {examples(unlisted)} are in no split; list them or set "
                             f"{where}.default_split to one of {', '.join(SPLITS)}")
        split = split.fillna(default)
    return table["sign"].map(label_of), split


def class_labels(cfg: Mapping[str, Any], signs: list[str], where: str) -> dict[str, int]:
    """Sign -> label: the ``classes`` file (a JSON map sign -> index, or one sign per line), else ``signs`` in order."""
    if cfg.get("classes") is None:
        return {sign: label for label, sign in enumerate(signs)}
    path = config_path(cfg, "classes", where)
    if path.suffix.lower() == ".json":
        mapping = json.loads(utf8_text(path))
        if (not isinstance(mapping, dict) or len(set(mapping.values())) != len(mapping)
                or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in mapping.values())):
            raise ValueError(f"{where}.classes: {path} must map each sign to its own integer index >= 0 "
                             "(as sign_to_prediction_index_map.json does)")
        return mapping
    names = text_lines(path)
    return {sign: label for label, sign in enumerate(names)}


def existing_files(paths: list[str]) -> list[bool]:
    """Whether each file exists, from one listing of each folder (a participant's thousands of files)."""
    found: dict[str, set[str]] = {}
    for folder in {os.path.dirname(p) for p in paths}:
        try:
            with os.scandir(folder) as entries:
                found[folder] = {entry.name for entry in entries if entry.is_file()}
        except OSError:
            found[folder] = set()
    return [os.path.basename(p) in found[os.path.dirname(p)] for p in paths]
