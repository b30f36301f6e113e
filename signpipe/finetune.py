"""The finetune stage: train any registered model (``signpipe.models``) for recognition, one dataset.

Each model trains through the shared loop ``signpipe.train.fit`` on clips of the shards it reads
(32 frames: random sampling in training, centred at test, SignBERT §4.2 and HMA §4), with its
own losses (a named dict summed with the weights ``loss_weights``; cross-entropy alone by
default), optimiser and schedule, in one or more phases, and the validation loss and accuracy
after every epoch; then the logits of every val and test video go to ``predictions.h5``.
SignBERT starts from the pre-trained encoder when ``pretrained`` is given (§3.4); the pixel models
(HMA, GLE-Net, rgb3d) from a local torchvision state dict when their ``checkpoint`` is set
(``signpipe.models.pretrained``), else from random weights with a warning in the job log, and
``predictions.h5`` records which (``init``).

Settings of a model, last wins: ``TrainConfig``'s defaults, the model's (``ModelSpec.defaults``,
from its paper), its phase's defaults, then what the user wrote: the stage's keys
(``finetune.epochs``), the model's block (``finetune.<model>``), its phase's block
(``finetune.<model>.phases.<phase>``). A key the user set thus beats every default, with one
rule on top: a phase with an ``lr_scale`` (GLE-Net's joint phase, 0.1) runs at that multiple of
the previous phase's lr, the user's included, unless the user writes the phase's own ``lr``.

A model with several phases trains them in order, each one ``fit`` in its own folder
(``<out>/<phase>/``) with its own checkpoint, each starting from the weights the previous one
ended with. A job killed in phase k resumes phase k and reuses phases 1..k-1 as they are;
``log.csv`` holds every phase's epochs with a ``phase`` column.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from signpipe.data import NUM_FRAMES
from signpipe.handmodel import HandModel
from signpipe.models import MODELS, ModelSpec, Phase, model_code, model_spec
from signpipe.models.pretrained import warn_if_random
from signpipe.predictions import SplitPredictions, write_predictions
from signpipe.train import (
    CHECKPOINT, TrainConfig, distributed, fit, input_fingerprint, load_run, predict, train_config, use_threads,
    write_log,
)

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.h5"
FIGURES = "figures"
"""Folder of a model's own figures (``ModelSpec.figures``); empty for a model without any."""
MAIN = Phase("main")
"""The one phase of a model that declares none; it trains in the model's folder itself."""


def num_classes(manifest: str | os.PathLike) -> int:
    """Classes of a dataset: one more than the largest label of its manifest (labels are 0..C-1)."""
    return int(pd.read_csv(manifest, usecols=["label"])["label"].max()) + 1


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 per-instance accuracy of logits (N, C) against labels (N,)."""
    return float((logits.argmax(1) == labels).mean()) if len(labels) else float("nan")


def cross_entropy(spec: ModelSpec):
    """The default losses of a model: ``{"ce": cross-entropy of its logits}``."""
    def losses(model: nn.Module, batch: Mapping[str, Any]) -> tuple[dict[str, Tensor], Tensor]:
        logits = spec.forward(model, batch)
        return {"ce": F.cross_entropy(logits.float(), batch["label"])}, logits
    return losses


def phase_settings(spec: ModelSpec, cfg: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each phase's settings, in order: defaults first, what the user wrote last (module docstring).

    ``cfg``: the stage's keys as the user wrote them, with the model's block under its name.
    An unknown phase or loss weight names its key.
    """
    block = dict(cfg.get(spec.name) or {})
    user_phases = dict(block.pop("phases", None) or {})
    phases = spec.phases or (MAIN,)
    unknown = sorted(set(user_phases) - {phase.name for phase in phases})
    if unknown:
        raise ValueError(f"finetune.{spec.name}.phases: unknown phase {unknown[0]!r}; "
                         f"{spec.name} trains in {', '.join(p.name for p in phases)}")
    stage = {k: v for k, v in cfg.items() if k not in MODELS and v is not None}
    defaults = {**asdict(TrainConfig()), "num_frames": NUM_FRAMES, "loss_weights": {"ce": 1.0}, **spec.defaults}
    settings = {}
    for phase in phases:
        written = user_phases.get(phase.name) or {}
        mine = {**defaults, **phase.settings, **stage, **block, **written}
        if phase.lr_scale is not None and "lr" not in written:   # a step below the lr before it (Phase)
            before = settings[next(reversed(settings))]["lr"] if settings else mine["lr"]
            mine["lr"] = float(f"{before * phase.lr_scale:.12g}")   # 5e-3 x 0.1 is 5e-4, not 5.000000000000001e-4
        weights = {**defaults["loss_weights"], **phase.settings.get("loss_weights", {}),
                   **(block.get("loss_weights") or {}), **(written.get("loss_weights") or {})}
        extra = sorted(set(weights) - set(defaults["loss_weights"]))
        if extra:
            raise ValueError(f"finetune.{spec.name}.loss_weights: {spec.name} has no loss {extra[0]!r}; "
                             f"its losses: {', '.join(defaults['loss_weights'])}")
        settings[phase.name] = {**mine, "loss_weights": weights}
    return settings


def finetune(model_name: str, shards: Mapping[str, Sequence[str | os.PathLike]] | Sequence[str | os.PathLike],
             out_dir: str | os.PathLike, num_classes: int, cfg: Mapping[str, Any],
             pretrained: str | os.PathLike | None = None, threads: int | None = None) -> dict[str, float]:
    """Train model ``model_name`` on the train split of ``shards`` ({stage: paths}, or the paths
    of a model's one stage); write into ``out_dir`` ``log.csv``, ``curves.png``,
    ``predictions.h5`` (val and test) and the checkpoints (resumed after a kill).

    ``cfg``: the stage's keys as the user set them (epochs, batch_size, lr, ..., device, seed) and
    per model an optional block ``cfg[model_name]`` (see :func:`phase_settings`); the settings are
    handed to the model's ``build`` and ``dataset``. The model's figures (``ModelSpec.figures``)
    go to ``out_dir/figures/``. ``threads`` caps torch's CPU threads (the job's share of the
    machine; torch would take every core). Returns the final val and test accuracy.
    """
    use_threads(threads)
    spec = model_spec(model_name)
    shards = _by_stage(spec, shards)
    settings = phase_settings(spec, cfg)
    first = next(iter(settings.values()))
    model_cfg = {**first, "pretrained": str(pretrained) if pretrained else None}
    sets = {split: spec.dataset(shards, split, split == "train", model_cfg) for split in ("train", "val", "test")}
    if not len(sets["train"]):
        raise ValueError(f"finetune {model_name}: no train-split videos in the "
                         + ", ".join(f"{len(paths)} {stage}" for stage, paths in shards.items()) + " shards")
    torch.manual_seed(train_config(first).seed)  # the initial weights: the same run gives the same model
    model = spec.build(num_classes, model_cfg)
    init = getattr(model, "init", None)  # random | imagenet | kinetics | file (signpipe.models.pretrained)
    warn_if_random(model_name, init)
    losses = spec.losses or cross_entropy(spec)
    inputs = [path for paths in shards.values() for path in paths] + ([pretrained] if pretrained else [])
    code = ["signpipe.finetune", *model_code(model_name)]
    out_dir = Path(out_dir)
    folders = {name: out_dir if not spec.phases else out_dir / name for name in settings}
    trainings = {name: train_config(values) for name, values in settings.items()}
    fingerprints = _phase_fingerprints(inputs, model_cfg, settings, num_classes, code)
    reuse = _phases_to_reuse(folders, trainings, fingerprints)
    history = []
    for number, (name, values) in enumerate(settings.items()):
        training = trainings[name]
        if number >= reuse:  # this phase trains (afresh or resumed): later phases' checkpoints are stale
            for later in list(settings)[number + 1:]:
                (folders[later] / CHECKPOINT).unlink(missing_ok=True)
        step = _weighted_step(losses, values["loss_weights"])

        def evaluate(model: nn.Module, training: TrainConfig = training,
                     weights: Mapping[str, float] = values["loss_weights"]) -> dict[str, float]:
            if spec.validate_objective:
                val, total = objective(model, losses, weights, sets["val"], training)
            else:
                val = predictions(spec, model, sets["val"], training)
            ce = float(F.cross_entropy(torch.from_numpy(val.logits), torch.from_numpy(val.label)))
            loss = {"val_loss": total, "val_ce_loss": ce} if spec.validate_objective else {"val_loss": ce}
            return {**loss, "val_acc": accuracy(val.logits, val.label),
                    **{f"val_{stream}_acc": accuracy(logits, val.label) for stream, logits in val.streams.items()}}

        title = f"{model_name} fine-tuning" + (f", phase {name}" if spec.phases else "")
        history.append(fit(model, step, sets["train"], folders[name], training,
                           evaluate if len(sets["val"]) else None, title=title, fingerprint=fingerprints[name],
                           phase=name, reuse_finished=number < reuse))
    last = trainings[list(settings)[-1]]
    splits = {split: predictions(spec, model, sets[split], last) for split in ("val", "test")}  # on every rank
    if distributed()[0] != 0:
        return {}
    if spec.phases:
        write_log(pd.concat(history, ignore_index=True), out_dir, f"{model_name} fine-tuning")
    write_predictions(out_dir / PREDICTIONS, splits, model_name, num_classes,
                      {**model_cfg, "train": {name: asdict(t) for name, t in trainings.items()}},
                      hand_model_used(model), init)
    figures = out_dir / FIGURES
    figures.mkdir(parents=True, exist_ok=True)
    if spec.figures is not None:
        model.eval()
        with torch.no_grad():
            spec.figures(model, sets["val"] if len(sets["val"]) else sets["test"], figures, model_cfg)
    result = {f"{split}_acc": accuracy(p.logits, p.label) for split, p in splits.items()}
    log.info("finetune %s: %s", model_name, result)
    return result


def predictions(spec: ModelSpec, model: nn.Module, data: Dataset, training: TrainConfig) -> SplitPredictions:
    """Logits, labels and ids of every sample of ``data``; for a model with ``spec.streams``,
    each stream's logits too, from the same forward."""
    if spec.streams is None:
        return SplitPredictions(*predict(model, data, spec.forward, training.batch_size, training.device,
                                         num_workers=training.num_workers, amp=training.amp))
    names: list[str] = []

    def forward(model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        logits, streams = spec.streams(model, batch)
        names[:] = streams
        return torch.stack([logits, *streams.values()], 1).flatten(1)                  # (B, (1 + S) C)

    logits, labels, ids = predict(model, data, forward, training.batch_size, training.device,
                                  num_workers=training.num_workers, amp=training.amp)
    if not len(logits):
        return SplitPredictions(logits, labels, ids)
    stacked = logits.reshape(len(logits), 1 + len(names), -1)
    return SplitPredictions(stacked[:, 0], labels, ids, {name: stacked[:, 1 + k] for k, name in enumerate(names)})


def objective(model: nn.Module, losses: Callable, weights: Mapping[str, float], data: Dataset,
              training: TrainConfig) -> tuple[SplitPredictions, float]:
    """The predictions of ``data`` (eval mode) and, from the same forward, the training objective:
    ``losses`` summed with ``weights``, the mean over its samples (each batch's value weighs its size)."""
    def forward(model: nn.Module, batch: Mapping[str, Any]) -> Tensor:
        terms, logits = losses(model, batch)
        total = weighted_total(terms, weights).detach()
        return torch.cat([logits.float(), total.reshape(1, 1).expand(len(logits), 1)], 1)  # (B, C + 1)

    values, labels, ids = predict(model, data, forward, training.batch_size, training.device,
                                  num_workers=training.num_workers, amp=training.amp)
    return SplitPredictions(values[:, :-1], labels, ids), float(values[:, -1].mean())


def hand_model_used(model: nn.Module) -> str | None:
    """"mano" or "open" (signpipe's hand in place of MANO): the hand model ``model`` decodes through
    (HMA), else the one its pre-trained encoder was trained with (SignBERT's, recorded by its build
    from ``signbert.pt``); None when no hand model was involved."""
    layers = [module for module in model.modules() if isinstance(module, HandModel)]
    if layers:
        return "mano" if layers[0].licensed else "open"
    return getattr(model, "pretrained_hand_model", None)


def _by_stage(spec: ModelSpec, shards: Mapping[str, Sequence[str | os.PathLike]] | Sequence[str | os.PathLike]
              ) -> dict[str, list[str | os.PathLike]]:
    """Shards per stage; a plain list is the shards of a model that reads one stage."""
    if not isinstance(shards, Mapping):
        if len(spec.stages) != 1:
            raise ValueError(f"finetune {spec.name}: give shards per stage ({', '.join(spec.stages)})")
        shards = {spec.stages[0]: shards}
    missing = [stage for stage in spec.stages if not shards.get(stage)]
    if missing:
        raise ValueError(f"finetune {spec.name}: no {', '.join(missing)} shards given; it reads {', '.join(spec.stages)}")
    return {stage: list(shards[stage]) for stage in spec.stages}


def _phase_fingerprints(inputs: Sequence[str | os.PathLike], model_cfg: Mapping[str, Any],
                        settings: Mapping[str, Mapping[str, Any]], num_classes: int, code: Sequence[str]
                        ) -> dict[str, str]:
    """Each phase's :func:`~signpipe.train.input_fingerprint`: the inputs, the model and the settings
    of that phase and the phases before it (whose weights it starts from), not of later ones, so
    that editing phase 2's lr after phase 1 finished never retrains phase 1."""
    names = list(settings)
    return {name: input_fingerprint(inputs, {"model": model_cfg, "num_classes": num_classes, "phase": name,
                                             "phases": {n: settings[n] for n in names[:number + 1]}}, code)
            for number, name in enumerate(names)}


def _phases_to_reuse(folders: Mapping[str, Path], trainings: Mapping[str, TrainConfig],
                     fingerprints: Mapping[str, str]) -> int:
    """How many leading phases a rerun takes as they are: those before the last phase with a
    checkpoint of this run, or up to and including it when it finished and is not the last phase.
    Everything finished (a forced rerun) or nothing found: none."""
    names = list(folders)
    for number in range(len(names) - 1, -1, -1):
        name = names[number]
        state = load_run(folders[name], trainings[name], fingerprints[name])
        if state is None:
            continue
        finished = state["epoch"] >= trainings[name].epochs
        if not finished:
            return number
        return number + 1 if number < len(names) - 1 else 0
    return 0


def weighted_total(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """The objective: the named loss terms summed with ``weights`` (1 for a term not named), in float32."""
    return sum(weights.get(name, 1.0) * term.float() for name, term in terms.items())


def _weighted_step(losses, weights: Mapping[str, float]):
    """A training step of ``fit``: the model's named losses, summed with ``weights``, each term logged.

    The metrics stay tensors on the device: ``fit`` sums them there and reads them once per epoch,
    so a step never waits for the GPU to log them."""
    def step(model: nn.Module, batch: Mapping[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        terms, logits = losses(model, batch)
        total = weighted_total(terms, weights)
        metrics = {f"{name}_loss": term.detach() for name, term in terms.items()}
        if logits is not None:
            metrics["train_acc"] = (logits.detach().argmax(1) == batch["label"]).float().mean()
        return total, metrics
    return step

