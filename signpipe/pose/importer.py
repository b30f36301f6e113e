"""Pose stage of a keypoint dataset: its files -> the keypoints shard, with no video and no frames.

Corpora such as Kaggle's ASL Signs ship keypoints only (``signpipe.datasets.KEYPOINT_ADAPTERS``).
For them the pose stage imports instead of detecting: ``signpipe.keypoints.sources.read_sequences``
streams the shard's sequences one file at a time, already mapped to the 133 COCO-WholeBody points
in pixels of the nominal frame (or of the frame the file names, such as a pyskl ``img_shape``), and they are written with the keypoints shard's usual arrays,
``quality.csv`` rows and provenance. What a frames shard would record per video, the nominal frame
(``src_width``, ``src_height``) and ``fps`` (0 when the file does not say), goes into ``/index``,
so that the hands stage and ``signpipe show`` know the frame without pixels. A sequence its reader
refuses is listed with the reason in the shard's failures CSV and left out; the rest is written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

import signpipe
from signpipe.datasets import FRAME_COLUMNS, nominal_frame, read_manifest
from signpipe.decode import FAILURE_COLUMNS
from signpipe.decode import INDEX_EXTRA as FRAME_INDEX_EXTRA
from signpipe.keypoints.quality import PART_NAMES
from signpipe.logs import track
from signpipe.pose import INDEX_EXTRA, KEYPOINT_ARRAYS, QUALITY_COLUMNS, SCHEMA_VERSION, add_video
from signpipe.shards import ShardWriter, write_csv

log = logging.getLogger(__name__)

IMPORT_INDEX_EXTRA = INDEX_EXTRA + FRAME_INDEX_EXTRA
"""``/index`` columns of an imported keypoints shard: the quality columns and the frames index's
``fps``, ``src_height``, ``src_width`` (the nominal frame)."""


class ManifestRows(Sequence):
    """The rows of a manifest table as dicts made when asked for: a reader walks them once, and a list
    of every row's dict would cost about a kilobyte per sequence for the whole job."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.columns = list(table.columns)
        self.values = [table[column].to_numpy() for column in self.columns]

    def __len__(self) -> int:
        return len(self.values[0]) if self.values else 0

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return {column: values[i] for column, values in zip(self.columns, self.values)}


def import_shard(manifest_csv: str | os.PathLike, keypoints_h5: str | os.PathLike, quality_csv: str | os.PathLike,
                 failures_csv: str | os.PathLike, cfg: Mapping[str, Any], progress: bool = True) -> pd.DataFrame:
    """Keypoints of every sequence of a shard manifest into ``keypoints_h5``; quality and failures CSVs beside.

    ``cfg`` is the dataset's ``datasets:`` block (its ``adapter`` names the file format; ``width``,
    ``height``, ``layout``, ``trust_pickle`` as the format needs). Returns the quality table.
    """
    from signpipe.keypoints.sources import read_sequences

    fmt = cfg["adapter"]
    width, height = nominal_frame(cfg, f"datasets.{fmt}")
    cfg = {**cfg, "width": width, "height": height}
    table = read_manifest(manifest_csv)
    table = table.assign(**{key: table[key] if key in table else default
                            for key, default in zip(FRAME_COLUMNS, (width, height))})
    rows = ManifestRows(table)
    position = {video_id: i for i, video_id in enumerate(table["video_id"])}
    attrs = {"pose_backend": f"import {fmt}", "pose_version": f"signpipe {signpipe.__version__}",
             "pose_reader": f"signpipe.keypoints.sources ({fmt})", "width": width, "height": height}
    quality, failures = [], []
    with ShardWriter(keypoints_h5, "keypoints", SCHEMA_VERSION, KEYPOINT_ARRAYS, config=dict(cfg),
                     source=[str(manifest_csv)], index_extra=IMPORT_INDEX_EXTRA, attrs=attrs) as writer:
        for video_id, sequence in track(read_sequences(fmt, rows, cfg), total=len(rows), disable=not progress,
                                        desc=f"import {os.path.basename(manifest_csv)}", unit="sequence"):
            row = rows[position[video_id]]
            if isinstance(sequence, Exception):
                log.warning("sequence %s: cannot import (%s); left out, listed in %s", video_id, sequence, failures_csv)
                failures.append((video_id, row["path"], "pose", str(sequence)))
                continue
            src_width, src_height = sequence.size or (int(row["width"]), int(row["height"]))
            quality.append(add_video(writer, video_id, int(row["label"]), row["split"], sequence.xy, sequence.score,
                                     extra={"fps": sequence.fps or 0.0, "src_width": src_width,
                                            "src_height": src_height}))
    table = pd.DataFrame(quality, columns=QUALITY_COLUMNS)
    write_csv(table, quality_csv)
    write_csv(pd.DataFrame(failures, columns=FAILURE_COLUMNS), failures_csv)
    log.info("%s: %d sequences imported, %d failed (listed in %s)%s", keypoints_h5, len(table), len(failures),
             failures_csv, "; mean detection rate " + ", ".join(f"{p} {table[f'rate_{p}'].mean():.2f}"
                                                                for p in PART_NAMES) if len(table) else "")
    return table
