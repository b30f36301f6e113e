"""WLASL (Li et al., WACV 2020): the ``WLASL_v0.3.json`` index and its ``nslt_{N}.json`` subsets.

Which frames belong to an instance depends on which video files the user has:

* ``trimmed: true`` (default): ``videos`` is the ``videos/`` folder written by WLASL's
  ``start_kit/preprocess.py``, one ``{video_id}.mp4`` per instance. That script cuts a YouTube
  video to ``frame_start..frame_end`` but copies every other video (and YouTube ones with
  ``frame_end`` -1) whole, so the index's frame range applies only to the files it copied.
* ``trimmed: false``: ``videos`` holds the raw downloads of ``start_kit/video_downloader.py``:
  YouTube videos named by their YouTube id (several instances can share one), the others by
  ``video_id``; the index's frame range applies to every instance.

The index counts frames of the raw video at its own rate (preprocess.py cuts the frames OpenCV
reads; the ``fps`` field, 25, is the rate of the clips it writes) from 1, both ends inclusive, with
``frame_end`` -1 meaning "to the end"; the manifest's ``frame_start = frame_start - 1`` and
``frame_end`` is unchanged (an inclusive 1-based end equals an exclusive 0-based one).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from signpipe.datasets import (
    BBOX_COLUMNS,
    MISSING_COLUMNS,
    check_video_ids,
    config_path,
    examples,
    existing,
    flag,
    locate_videos,
    no_missing,
    video_extensions,
    youtube_id,
)
from signpipe.names import video_file

log = logging.getLogger(__name__)


def read_index(path: Path) -> pd.DataFrame:
    """One row per instance of ``WLASL_v0.3.json``, with its ``gloss`` and ``label``.

    ``label`` is the gloss's position in the file: the class order of the nslt subset files
    (and of ``wlasl_class_list.txt``), so WLASL100 is labels 0..99.
    """
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    return pd.DataFrame.from_records(
        [{**instance, "gloss": entry["gloss"], "label": label}
         for label, entry in enumerate(entries) for instance in entry["instances"]]
    )


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the instances (all, or those of ``subset``) whose video is on disk, and the missing."""
    index_path = config_path(cfg, "index", where)
    videos = config_path(cfg, "videos", where, kind="dir")
    extensions = video_extensions(cfg, where)
    trimmed = flag(cfg, "trimmed", where, default=True)
    index = read_index(index_path)
    instance = index.groupby("label").cumcount()
    check_video_ids(index["video_id"], f"{where}.index: {index_path}",
                    lambda i: f"gloss {index['gloss'][i]!r} instance {instance[i]}")
    not_in_index = no_missing()
    if cfg.get("subset") is not None:
        index, not_in_index = apply_subset(index, subset_file(cfg, index_path, where), where)
        not_in_index["path"] = [str(video_file(videos, v, extensions[0])) for v in not_in_index["video_id"]]
    youtube = index["url"].map(youtube_id)
    stems = index["video_id"] if trimmed else youtube.fillna(index["video_id"])
    present, missing = locate_videos(manifest_rows(index, youtube, trimmed), stems, videos, extensions)
    return present, pd.concat([missing, not_in_index], ignore_index=True)


def subset_file(cfg: Mapping[str, Any], index_path: Path, where: str) -> Path:
    """``subset: N`` -> ``nslt_N.json`` beside the index; any other value is the file's path."""
    value = cfg["subset"]
    if isinstance(value, int) and not isinstance(value, bool):
        return existing(index_path.parent / f"nslt_{value}.json", f"{where}.subset")
    return config_path(cfg, "subset", where)


def apply_subset(index: pd.DataFrame, path: Path, where: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The instances of a subset file, labelled and split by it; and its ids the index lacks.

    The subset's class must be the label the index gives the video (its gloss position), else
    the two files come from different WLASL versions and the labels would be wrong.
    Ids absent from the index (nslt_2000.json lists 12 that v0.3 dropped) come back as missing
    rows with reason 'not in index' and no path yet.
    """
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    check_video_ids(list(entries), f"{where}.subset: {path}", lambda i: f"entry {i + 1}")
    subset = pd.DataFrame({
        "video_id": list(entries),
        "subset_label": [int(e["action"][0]) for e in entries.values()],
        "subset_split": [e["subset"] for e in entries.values()],
    })
    known = subset["video_id"].isin(index["video_id"])
    chosen = subset.loc[known].merge(index, on="video_id")
    disagree = chosen.loc[chosen["label"] != chosen["subset_label"], "video_id"]
    if len(disagree):
        raise ValueError(
            f"{where}.subset: {path.name} gives {len(disagree)} videos a class other than their gloss's "
            f"position in the index (e.g. {examples(disagree)}); use the index and subset files of the "
            "same WLASL release")
    moved = int((chosen["split"] != chosen["subset_split"]).sum())
    if moved:
        log.warning("%s: %d videos have another split in %s than in the index; using %s",
                    where, moved, path.name, path.name)
    log.info("%s: %s: %d videos, %d classes; every class agrees with the index's gloss order",
             where, path.name, len(subset), subset["subset_label"].nunique())
    chosen = chosen.drop(columns=["label", "split"]).rename(columns={"subset_label": "label", "subset_split": "split"})
    gloss_of = index.drop_duplicates("label").set_index("label")["gloss"]
    absent = subset.loc[~known]
    not_in_index = pd.DataFrame({
        "video_id": absent["video_id"], "path": "", "reason": "not in index",
        "label": absent["subset_label"], "gloss": absent["subset_label"].map(gloss_of).fillna(""),
        "split": absent["subset_split"],
    }, columns=MISSING_COLUMNS)
    if len(not_in_index):
        log.warning("%s: %d videos of %s are not in the index: %s; listed in missing.csv",
                    where, len(not_in_index), path.name, examples(sorted(not_in_index["video_id"])))
    return chosen.reset_index(drop=True), not_in_index.reset_index(drop=True)


def manifest_rows(index: pd.DataFrame, youtube: pd.Series, trimmed: bool) -> pd.DataFrame:
    """Manifest rows (path not yet set) of index instances; ``youtube`` is each one's YouTube id."""
    already_cut = trimmed & youtube.notna() & (index["frame_end"] != -1)
    rows = pd.DataFrame({
        "video_id": index["video_id"].astype(str),
        "path": "",
        "label": index["label"],
        "gloss": index["gloss"],
        "split": index["split"],
        "signer": index["signer_id"].astype(str),
        "frame_start": (index["frame_start"] - 1).where(~already_cut, 0),
        "frame_end": index["frame_end"].where(~already_cut, -1),
        "fps": index["fps"],
    })
    bbox = pd.DataFrame(index["bbox"].tolist(), columns=BBOX_COLUMNS, index=index.index)
    extras = index[["source", "url", "instance_id", "variation_id"]]
    return pd.concat([rows, bbox, extras], axis=1)
