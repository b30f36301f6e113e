"""MS-ASL (Joze & Koller, BMVC 2019): ``MSASL_{train,val,test}.json``.

Each file is a list of samples (``url``, ``start_time``/``end_time`` in seconds, ``start``/``end``
frames, ``label``, ``clean_text``/``text``, ``signer_id``, ``box`` = normalised y0, x0, y1, x1,
``fps``, ``width``, ``height``). MS-ASL has no video ids; a sample's id is its file's split
and its position in that file, ``train_00042``, so it is stable as long as the files are.

* ``trimmed: true`` (default): ``videos`` holds one clip per sample, ``{video_id}.mp4``, already
  cut to the sign: the whole clip is used.
* ``trimmed: false``: ``videos`` holds the YouTube downloads, ``{youtube_id}.mp4``; the sample's
  frames ``start``..``end`` (or ``start_time``..``end_time`` x ``fps``) are used, end exclusive.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signpipe.datasets import (
    BBOX_COLUMNS,
    config_path,
    existing,
    flag,
    locate_videos,
    video_extensions,
    youtube_id,
)

SPLIT_FILES = {"train": "MSASL_train.json", "val": "MSASL_val.json", "test": "MSASL_test.json"}
SUBSETS = (100, 200, 500, 1000)
FIELDS = ["url", "start_time", "end_time", "start", "end", "label", "text", "clean_text",
          "signer_id", "box", "fps", "width", "height"]


def read_split(path: Path, split: str) -> pd.DataFrame:
    """The samples of one MS-ASL file, with ``video_id`` and ``split``; absent fields are NaN."""
    with open(path, encoding="utf-8") as f:
        samples = pd.DataFrame.from_records(json.load(f))
    samples = samples.reindex(columns=list(dict.fromkeys([*samples.columns, *FIELDS])))
    samples.insert(0, "video_id", [f"{split}_{i:05d}" for i in range(len(samples))])
    samples["split"] = split
    return samples


def load(cfg: Mapping[str, Any], where: str, corpus_dir: Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of the samples (labels below ``subset``, if given) whose video is on disk, and the missing."""
    index_dir = config_path(cfg, "index_dir", where, kind="dir")
    videos = config_path(cfg, "videos", where, kind="dir")
    extensions = video_extensions(cfg, where)
    trimmed = flag(cfg, "trimmed", where, default=True)
    subset = cfg.get("subset")
    if subset is not None and subset not in SUBSETS:
        raise ValueError(f"{where}.subset: must be one of {', '.join(map(str, SUBSETS))}, got {subset!r}")
    samples = pd.concat(
        [read_split(existing(index_dir / name, f"{where}.index_dir"), split) for split, name in SPLIT_FILES.items()],
        ignore_index=True,
    )
    if subset is not None:
        samples = samples.loc[samples["label"] < subset].reset_index(drop=True)
    stems = samples["video_id"] if trimmed else samples["url"].map(youtube_id).fillna(samples["video_id"])
    return locate_videos(manifest_rows(samples, trimmed), stems, videos, extensions)


def manifest_rows(samples: pd.DataFrame, trimmed: bool) -> pd.DataFrame:
    """Manifest rows (path not yet set) of MS-ASL samples; box converted to pixel x0, y0, x1, y1."""
    fps = samples["fps"]
    start = samples["start"].fillna((samples["start_time"] * fps).round())
    end = samples["end"].fillna((samples["end_time"] * fps).round())
    rows = pd.DataFrame({
        "video_id": samples["video_id"],
        "path": "",
        "label": samples["label"],
        "gloss": samples["clean_text"].fillna(samples["text"]),
        "split": samples["split"],
        "signer": samples["signer_id"].map(lambda s: "" if pd.isna(s) else str(int(s))),
        "frame_start": 0 if trimmed else start,
        "frame_end": -1 if trimmed else end,
        "fps": fps,
        "url": samples["url"],
    })
    box = np.array([b if isinstance(b, list) else [np.nan] * 4 for b in samples["box"]], dtype=float).reshape(-1, 4)
    y0, x0, y1, x1 = box.T
    width, height = samples["width"].to_numpy(float), samples["height"].to_numpy(float)
    pixels = np.stack([x0 * width, y0 * height, x1 * width, y1 * height], axis=1)
    return rows.join(pd.DataFrame(pixels, columns=BBOX_COLUMNS, index=rows.index))
