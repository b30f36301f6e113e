"""A folder per class (``root/<gloss>/...video files``), signer read from each file name.

A ``role: pretrain`` dataset has no classes: every video under ``root`` (a flat folder, or any
subfolders) is listed, ``pattern`` optional (without it the signer is unknown).

Fits corpora recorded in a lab and shipped as one directory per sign, such as the Chinese
CSL/SLR500 and NMFs-CSL sets, where the file name carries the signer
(``P01_s3_00_1_color.avi``) and the official split is by signer.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signpipe.datasets import (
    SPLITS,
    config_path,
    dataset_role,
    examples,
    no_missing,
    required,
    text_lines,
    video_extensions,
)

log = logging.getLogger(__name__)


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of every video under ``root``; nothing is missing (the rows come from the files)."""
    root = config_path(cfg, "root", where, kind="dir")
    labeled = dataset_role(cfg, where) != "pretrain"
    pattern = name_pattern(cfg, where) if labeled or cfg.get("pattern") is not None else re.compile(r"(?P<signer>)")
    extensions = video_extensions(cfg, where)
    if not labeled:  # every video under root; the manifest gives them no label and the train split
        return _listed(root, [("", -1, root)], pattern, extensions, where), no_missing()
    split_of = signer_splits(cfg, where)
    rows = _listed(root, [(gloss, label, root / gloss) for label, gloss in enumerate(class_names(cfg, root, where))],
                   pattern, extensions, where)
    rows.insert(4, "split", rows["signer"].map(split_of))
    unlisted = sorted(rows.loc[rows["split"].isna(), "signer"].unique())
    if unlisted:
        default = cfg.get("default_split")
        if default is None:
            raise ValueError(f"{where}.splits: signers {examples(unlisted)} are in no split; "
                             f"list them or set {where}.default_split")
        if default not in SPLITS:
            raise ValueError(f"{where}.default_split: must be one of {', '.join(SPLITS)}, got {default!r}")
        rows["split"] = rows["split"].fillna(default)
    return rows, no_missing()


def _listed(root: Path, classes: list[tuple[str, int, Path]], pattern: re.Pattern, extensions: tuple[str, ...],
            where: str) -> pd.DataFrame:
    """Rows (no split) of the video files under each (gloss, label, folder) of ``classes``, signer and
    other named groups from ``pattern`` matched on each file name."""
    records, unmatched = [], []
    for gloss, label, folder in classes:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in extensions or not path.is_file():
                continue
            match = pattern.match(path.stem)
            if match is None:
                unmatched.append(str(path.relative_to(root)))
                continue
            groups = match.groupdict()
            records.append({
                "video_id": video_id(gloss, path.relative_to(folder)), "path": str(path),
                "label": label, "gloss": gloss, "signer": groups.pop("signer") or "",
                "frame_start": 0, "frame_end": -1, **groups,
            })
    if unmatched:
        raise ValueError(f"{where}.pattern: {pattern.pattern!r} does not match {len(unmatched)} file names "
                         f"(without extension), e.g. {examples(unmatched)}")
    return pd.DataFrame.from_records(
        records, columns=list(dict.fromkeys(["video_id", "path", "label", "gloss", "signer", "frame_start",
                                             "frame_end", *pattern.groupindex])))


def name_pattern(cfg: Mapping[str, Any], where: str) -> re.Pattern:
    """The ``pattern`` regex; it must have a named group ``signer``."""
    try:
        pattern = re.compile(required(cfg, "pattern", where))
    except re.error as error:
        raise ValueError(f"{where}.pattern: not a valid regular expression: {error}") from error
    if "signer" not in pattern.groupindex:
        raise ValueError(f"{where}.pattern: needs a named group (?P<signer>...), got {pattern.pattern!r}")
    return pattern


def class_names(cfg: Mapping[str, Any], root: Path, where: str) -> list[str]:
    """Glosses in label order: the ``classes`` file's lines, else the class folders sorted by name."""
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if cfg.get("classes") is None:
        return folders
    path = config_path(cfg, "classes", where)
    names = text_lines(path)
    not_names = [name for name in names if name in (".", "..") or Path(name).name != name or "\0" in name]
    if not_names:
        raise ValueError(f"{where}.classes: {path} lists {examples(not_names)}, which are not folder names; "
                         f"list the names of the class folders directly under {root}")
    unlisted = sorted(set(folders) - set(names))
    if unlisted:
        raise ValueError(f"{where}.classes: {path} does not list the class folders {examples(unlisted)}")
    empty = [name for name in names if name not in folders]
    if empty:
        log.warning("%s: classes %s of %s have no folder under %s", where, examples(empty), path.name, root)
    return names


def signer_splits(cfg: Mapping[str, Any], where: str) -> dict[str, str]:
    """``splits: {train: [signers], ...}`` as signer -> split (signers compared as strings)."""
    splits = required(cfg, "splits", where)
    if not isinstance(splits, Mapping) or set(splits) - set(SPLITS):
        raise ValueError(f"{where}.splits: expected a mapping with keys among {', '.join(SPLITS)}, "
                         f"got {splits!r}")
    split_of: dict[str, str] = {}
    for split, signers in splits.items():
        for signer in map(str, signers or []):
            if split_of.setdefault(signer, split) != split:
                raise ValueError(f"{where}.splits: signer {signer!r} is in both {split_of[signer]} and {split}")
    return split_of


def video_id(gloss: str, relative: Path) -> str:
    """``{gloss}__{path under the class folder, no extension}`` (without a gloss: the path alone): '/' ->
    '__', unsafe characters -> '_'."""
    parts = [gloss] * bool(gloss) + list(relative.with_suffix("").parts)
    return "__".join(re.sub(r"[^\w.-]+", "_", part) for part in parts)
