"""The recognition models signpipe fine-tunes, behind one small description each.

The ``finetune`` stage trains any of them the same way (``signpipe.train.fit``, cross-entropy
on 32-frame clips, ``predictions.h5`` on val and test); what differs per model is which shards
it reads, how it is built and how a batch goes through it. A model module exposes ``SPEC``, a
:class:`ModelSpec`; this registry imports a module only when its model is asked for.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn
from torch.utils.data import Dataset

MODELS = {
    "signbert": "signpipe.models.signbert",
    "stgcn": "signpipe.models.stgcn",
    "rgb3d": "signpipe.models.rgb3d",
}
"""Model name (config ``finetune.models``) -> module holding its ``SPEC``."""


@dataclass(frozen=True)
class ModelSpec:
    """How the finetune stage trains one model.

    stage: the shards it reads, ``"hands"``, ``"keypoints"`` or ``"frames"`` (the rule's inputs).
    build(num_classes, cfg) -> the model; ``cfg`` is the model's config block (e.g. pretrained
        weights path, sizes).
    dataset(shards, split, train, cfg) -> a Dataset of dict samples with at least ``label`` and
        ``video_id`` (train=True: random temporal sampling and augmentation; False: centred).
    forward(model, batch) -> logits (B, num_classes) of a batch already on the device.
    """

    name: str
    stage: str
    build: Callable[[int, Mapping[str, Any]], nn.Module]
    dataset: Callable[[Sequence[str | os.PathLike], str, bool, Mapping[str, Any]], Dataset]
    forward: Callable[[nn.Module, Mapping[str, Any]], Tensor]


def model_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; an unknown name lists the known ones."""
    if name not in MODELS:
        raise ValueError(f"finetune.models: unknown model {name!r}; known: {', '.join(MODELS)}")
    return importlib.import_module(MODELS[name]).SPEC
