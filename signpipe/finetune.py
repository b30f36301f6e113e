"""The finetune stage: train any registered model (``signpipe.models``) for recognition, one dataset.

Cross-entropy on clips (32 frames: random sampling in training, centred at test, SignBERT
§4.2) through the shared loop ``signpipe.train.fit``, with the validation accuracy after every
epoch; then the logits of every val and test video go to ``predictions.h5``. SignBERT starts
from the pre-trained encoder when ``pretrained`` is given (§3.4); other models ignore it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from signpipe.data import NUM_FRAMES
from signpipe.models import model_spec
from signpipe.predictions import SplitPredictions, write_predictions
from signpipe.settings import from_config
from signpipe.train import TrainConfig, distributed, fit, input_fingerprint, predict

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.h5"


def train_config(cfg: Mapping[str, Any]) -> TrainConfig:
    """The ``TrainConfig`` keys of a stage's config block (others ignored; missing or null ones default)."""
    return from_config(TrainConfig, cfg)


def num_classes(manifest: str | os.PathLike) -> int:
    """Classes of a dataset: one more than the largest label of its manifest (labels are 0..C-1)."""
    return int(pd.read_csv(manifest, usecols=["label"])["label"].max()) + 1


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 per-instance accuracy of logits (N, C) against labels (N,)."""
    return float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan")


def finetune(model_name: str, shards: Sequence[str | os.PathLike], out_dir: str | os.PathLike, num_classes: int,
             cfg: Mapping[str, Any], pretrained: str | os.PathLike | None = None) -> dict[str, float]:
    """Train model ``model_name`` on the train split of ``shards``; write into ``out_dir``
    ``checkpoint.pt``, ``log.csv``, ``curves.png`` and ``predictions.h5`` (val and test).
    A job killed mid-training resumes from ``checkpoint.pt`` when started again on the same inputs.

    ``cfg``: the ``TrainConfig`` keys (epochs, batch_size, lr, ..., device, seed), ``num_frames``,
    and per model an optional block ``cfg[model_name]`` handed to the model's ``build`` and
    ``dataset``. Returns the final val and test accuracy.
    """
    spec = model_spec(model_name)
    training = train_config(cfg)
    model_cfg = {"num_frames": cfg.get("num_frames", NUM_FRAMES), "seed": training.seed,
                 **(cfg.get(model_name) or {}), "pretrained": str(pretrained) if pretrained else None}
    sets = {split: spec.dataset(shards, split, split == "train", model_cfg) for split in ("train", "val", "test")}
    if not len(sets["train"]):
        raise ValueError(f"finetune {model_name}: no train-split videos in {len(shards)} {spec.stage} shards")
    torch.manual_seed(training.seed)  # the initial weights: the same run gives the same model
    model = spec.build(num_classes, model_cfg)

    def step(model: nn.Module, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, float]]:
        logits = spec.forward(model, batch)
        labels = batch["label"]
        loss = F.cross_entropy(logits.float(), labels)
        return loss, {"train_acc": float((logits.argmax(1) == labels).float().mean())}

    def evaluate(model: nn.Module) -> dict[str, float]:
        logits, labels, _ = predict(model, sets["val"], spec.forward, training.batch_size, training.device)
        return {"val_loss": float(F.cross_entropy(torch.from_numpy(logits), torch.from_numpy(labels))),
                "val_acc": accuracy(logits, labels)}

    inputs = [*shards, *([pretrained] if pretrained else [])]
    fit(model, step, sets["train"], out_dir, training, evaluate if len(sets["val"]) else None,
        title=f"{model_name} fine-tuning", fingerprint=input_fingerprint(inputs, model_cfg))
    if distributed()[0] != 0:
        return {}
    splits = {split: SplitPredictions(*predict(model, sets[split], spec.forward, training.batch_size, training.device))
              for split in ("val", "test")}
    write_predictions(Path(out_dir) / PREDICTIONS, splits, model_name, num_classes,
                      {**model_cfg, "train": {f.name: getattr(training, f.name) for f in fields(TrainConfig)}})
    result = {f"{split}_acc": accuracy(p.logits, p.label) for split, p in splits.items()}
    log.info("finetune %s: %s", model_name, result)
    return result
