"""``predictions.h5``: per-sample logits of one model on val and test, the input of fusion and tables.

Every model writes the same file (per-sample scores, so fusion and later analysis need no
re-run)::

    /<split>/logits    (N, C) float32
    /<split>/label     (N,) int64
    /<split>/video_id  (N,) str
    /<split>/streams/<stream>  (N, C) float32  (only for models whose prediction sums streams:
                                                GLE-Net's ``global`` and ``local``; logits above = their sum)
    @schema "signpipe/predictions/1", @model, @num_classes, @config (JSON)
    @hand_model "open" | "mano"  (only for models that went through a hand model: HMA's decoder,
                                  SignBERT's pre-training; "open" = signpipe's hand, not MANO)
    @init "random" | "imagenet" | "kinetics" | "file"  (only for models with pretrained weights to
                                  start from: HMA, GLE-Net, rgb3d; signpipe.models.pretrained)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np

import signpipe
from signpipe.shards import atomic_path

SCHEMA = "signpipe/predictions/1"


@dataclass
class SplitPredictions:
    """logits (N, C), label (N,), video_id (N,) of one split; ``streams``: each stream's logits
    (N, C) by name for a model whose logits sum streams (GLE-Net), else empty."""

    logits: np.ndarray
    label: np.ndarray
    video_id: list[str]
    streams: dict[str, np.ndarray] = field(default_factory=dict)


def write_predictions(path: str | os.PathLike, splits: Mapping[str, SplitPredictions], model: str,
                      num_classes: int, config: Mapping[str, Any] | None = None,
                      hand_model: str | None = None, init: str | None = None) -> None:
    """Write the predictions of each split atomically; ``hand_model`` ("open" | "mano") when the
    model went through one, ``init`` (``signpipe.models.pretrained.INITS``) when it has weights to start from."""
    with atomic_path(path, ".h5") as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update({"schema": SCHEMA, "model": model, "num_classes": num_classes,
                        "created_by": f"signpipe {signpipe.__version__}",
                        "config": json.dumps(dict(config or {}), sort_keys=True, default=str)})
        if hand_model is not None:
            f.attrs["hand_model"] = hand_model
        if init is not None:
            f.attrs["init"] = init
        for name, split in splits.items():
            if len(split.logits) and split.logits.shape[1] != num_classes:
                raise ValueError(f"{name}: logits have {split.logits.shape[1]} classes, expected {num_classes}")
            group = f.create_group(name)
            group.create_dataset("logits", data=np.asarray(split.logits, np.float32).reshape(-1, num_classes))
            group.create_dataset("label", data=np.asarray(split.label, np.int64))
            group.create_dataset("video_id", data=np.array(split.video_id, dtype=object),
                                 dtype=h5py.string_dtype("utf-8"))
            for stream, logits in split.streams.items():
                group.create_dataset(f"streams/{stream}", data=np.asarray(logits, np.float32).reshape(-1, num_classes))


def read_predictions(path: str | os.PathLike) -> tuple[dict[str, SplitPredictions], dict[str, Any]]:
    """The splits of a predictions file and its attrs."""
    with h5py.File(path, "r") as f:
        if f.attrs.get("schema") != SCHEMA:
            raise ValueError(f"{path}: not a signpipe predictions file (schema {f.attrs.get('schema')!r})")
        splits = {name: SplitPredictions(group["logits"][()], group["label"][()],
                                         [v.decode("utf-8") for v in group["video_id"][()]],
                                         {stream: data[()] for stream, data in group.get("streams", {}).items()})
                  for name, group in f.items()}
        return splits, dict(f.attrs)
