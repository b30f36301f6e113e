"""The recognition models signpipe fine-tunes, behind one small description each.

The ``finetune`` stage trains any of them the same way (``signpipe.finetune``: the shared loop
``signpipe.train.fit``, one or more training phases, ``predictions.h5`` on val and test); what
differs per model is which shards it reads, how it is built, how a batch goes through it, its
losses and its optimiser defaults. A model module exposes ``SPEC``, a :class:`ModelSpec`.

This module imports neither torch nor any model: the workflow reads :data:`MODELS` (names and
the stages each model reads) when it parses the Snakefile, which must stay fast, and
:func:`model_spec` imports a model's module only when it is trained.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

if TYPE_CHECKING:
    from torch import Tensor, nn
    from torch.utils.data import Dataset

STAGES = ("hands", "keypoints", "frames")
"""The shard stages a model may read."""


class Registered(NamedTuple):
    """Where a model lives, which shards it reads (its rule's inputs), whether it decodes
    through the hand model (then the global ``hand_model.mano_dir`` reaches it) and whether it
    reads the hands shards' crops, not only their poses (then a keypoint dataset cannot feed it)."""

    module: str
    stages: tuple[str, ...]
    hand_model: bool = False
    crops: bool = False


MODELS: dict[str, Registered] = {
    "signbert": Registered("signpipe.models.signbert", ("hands",)),
    "stgcn": Registered("signpipe.models.stgcn", ("keypoints",)),
    "rgb3d": Registered("signpipe.models.rgb3d", ("frames",)),
    "glenet": Registered("signpipe.models.glenet", ("frames",)),
    "hma": Registered("signpipe.models.hma", ("hands",), hand_model=True, crops=True),
}
"""Model name (config ``finetune.models``) -> its module (holding ``SPEC``) and the stages it reads."""

Shards = Mapping[str, Sequence[Union[str, os.PathLike]]]
"""Shard paths per stage, ``{"hands": [...], "keypoints": [...]}``: one entry per stage the model reads."""


@dataclass(frozen=True)
class Phase:
    """One training phase: its own epochs and overrides (lr, loss weights, ...) of the model's settings.

    ``lr_scale``: the phase's lr as a multiple of the lr before it (the previous phase's; for the
    first, the model's), whoever set that, unless the user writes the phase's own ``lr``: a
    fine-tuning phase stays one step below a user's lr instead of restarting at a fixed one.
    """

    name: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    lr_scale: float | None = None


@dataclass(frozen=True)
class ModelSpec:
    """How the finetune stage trains one model.

    build(num_classes, cfg) -> the model; ``cfg`` is the model's settings (its config block over
        ``defaults``: sizes, pretrained weights path, ...).
    dataset(shards, split, train, cfg) -> a Dataset of dict samples with at least ``label`` and
        ``video_id``; ``shards`` maps each stage of :data:`MODELS` to its shard paths (train=True:
        random temporal sampling and augmentation; False: centred).
    forward(model, batch) -> logits (B, num_classes) of a batch already on the device (evaluation).
    losses(model, batch) -> ({name: scalar tensor}, logits or None): the terms of the training
        loss, summed with the weights ``loss_weights`` of the settings (1 where not given), and
        the logits for the training accuracy. None: cross-entropy alone, ``{"ce": ...}``.
    defaults: the model's training defaults from its paper (optimizer, lr, schedule, ...) over
        ``signpipe.train.TrainConfig``'s, and its loss weights.
    phases: the phases it trains in, in order, each with its default overrides; one phase
        (``main``) when empty.
    figures(model, data, out_dir, settings) -> PNGs the stage writes into ``out_dir`` after
        training, from ``data`` (the val split, the test split when val is empty): what the
        model does that curves cannot show (decoded hands, saliency). None: no figures.
    streams(model, batch) -> (logits, {stream: logits (B, num_classes)}) in one forward, for a
        model whose prediction sums streams (GLE-Net): each stream's logits go to
        ``predictions.h5`` beside the prediction and its val top-1 to ``log.csv``. None: one stream.
    validate_objective: the validation loss (``val_loss`` in ``log.csv``, what a plateau schedule
        watches) is the training objective, ``losses`` summed with ``loss_weights``, on the val
        split, its cross-entropy then ``val_ce_loss``; False: the val cross-entropy. For a model
        whose auxiliary terms keep falling while the classes are not yet learned (HMA's hand fit).
    """

    name: str
    build: Callable[[int, Mapping[str, Any]], nn.Module]
    dataset: Callable[[Shards, str, bool, Mapping[str, Any]], Dataset]
    forward: Callable[[nn.Module, Mapping[str, Any]], Tensor]
    losses: Callable[[nn.Module, Mapping[str, Any]], tuple[dict[str, Tensor], Tensor | None]] | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    phases: tuple[Phase, ...] = ()
    figures: Callable[[nn.Module, Dataset, Path, Mapping[str, Any]], Any] | None = None
    streams: Callable[[nn.Module, Mapping[str, Any]], tuple[Tensor, dict[str, Tensor]]] | None = None
    validate_objective: bool = False

    @property
    def stages(self) -> tuple[str, ...]:
        """The shard stages it reads (from :data:`MODELS`)."""
        return model_stages(self.name)


def model_stages(name: str) -> tuple[str, ...]:
    """The shard stages model ``name`` reads, without importing it."""
    return _registered(name).stages


def model_code(name: str) -> list[str]:
    """The modules that define model ``name``: its own and the other model modules it imports
    (GLE-Net reads its clips through rgb3d's loader), for ``signpipe.train.code_digest``."""
    import ast
    import importlib.util

    module = _registered(name).module
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return [module, *sorted(m for m in imported if m.startswith(f"{__name__}.") and m != module)]


def model_spec(name: str) -> ModelSpec:
    """The spec of model ``name``; an unknown name lists the known ones."""
    return importlib.import_module(_registered(name).module).SPEC


def _registered(name: str) -> Registered:
    if name not in MODELS:
        raise ValueError(f"finetune.models: unknown model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]
