"""The workflow's configuration: checks with short messages, and each stage's settings for its rule.

The Snakefile calls :func:`check_config` before Snakemake's own validation (which fills in the
schema's defaults): a mistake gets one line naming the key, the value and what is allowed,
instead of a dump of the whole schema. Cross-references the schema cannot express (a fusion
combo naming a model that is not trained, pre-training on an unknown dataset) are checked here
too, so a bad config fails before any job runs. Nothing here imports torch: the Snakefile must
parse in a second or two, on every cluster job too.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from typing import Any

RULE_ONLY_KEYS = ("threads", "gpus")
"""Keys that size a job (Snakemake's threads and resources) but never change its output."""


class ConfigError(ValueError):
    """A config mistake, said in one line that names the key."""


def check_config(config: Mapping[str, Any], schema_path: str | os.PathLike) -> None:
    """Validate ``config`` against the JSON schema and the cross-references; raise
    :class:`ConfigError` naming the first bad key."""
    import jsonschema
    import yaml

    with open(schema_path) as f:  # libyaml's loader when present: the schema is parsed at every start
        schema = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is not None:
        raise ConfigError(_describe(error))
    check_references(config)
    check_blanks(config)
    check_backend_paths(config)


def _describe(error: Any) -> str:
    """One line for a schema error: the key path, what is wrong and, for a choice, what is allowed."""
    path = ".".join(map(str, error.absolute_path)) or "(top level)"
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(known)) if isinstance(error.instance, Mapping) else []
        keys = ", ".join(map(repr, unknown)) or error.message
        return f"config {path}: unknown key {keys}" + (f"; known keys: {', '.join(known)}" if known else "")
    if error.validator == "enum":
        allowed = ", ".join(map(repr, error.validator_value))
        return f"config {path}: {error.instance!r} is not allowed; choose one of {allowed}"
    return f"config {path}: {error.message}"


def check_references(config: Mapping[str, Any]) -> None:
    """Names that must exist elsewhere in the config: datasets of ``pretrain.datasets``,
    ``fusion.subsets`` and ``predict``, models of ``fusion.combos`` and ``predict`` (they must be in
    ``finetune.models``)."""
    datasets = set(config.get("datasets") or {})
    pretrain = (config.get("pretrain") or {}).get("datasets", "all")
    if pretrain != "all":
        for name in pretrain:
            if name not in datasets:
                raise ConfigError(f"config pretrain.datasets: no dataset {name!r}; datasets: {', '.join(sorted(datasets))}")
    models = (config.get("finetune") or {}).get("models", ["signbert"])
    fusion = config.get("fusion") or {}
    for combo in fusion.get("combos") or []:
        for model in combo:
            if model not in models:
                raise ConfigError(f"config fusion.combos: {model!r} in {list(combo)} is not in finetune.models "
                                  f"({', '.join(models)}); add it there or drop the combo")
    for name in fusion.get("subsets") or {}:
        if name not in datasets:
            raise ConfigError(f"config fusion.subsets: no dataset {name!r}; datasets: {', '.join(sorted(datasets))}")
    check_roles(config, fusion)
    check_pixels(config.get("datasets") or {}, models)
    for name, block in (config.get("predict") or {}).items():
        block = block or {}
        if block.get("dataset") not in datasets:
            raise ConfigError(f"config predict.{name}.dataset: no dataset {block.get('dataset')!r}; "
                              f"datasets: {', '.join(sorted(datasets))}")
        for model in (block["model"].split("+") if block.get("model") else []):
            if model not in models:
                raise ConfigError(f"config predict.{name}.model: {model!r} is not in finetune.models "
                                  f"({', '.join(models)}); name a trained model or a fusion A+B of them")


def check_roles(config: Mapping[str, Any], fusion: Mapping[str, Any]) -> None:
    """``role: pretrain`` datasets (no labels): an adapter that can list media without labels, no split
    keys, named by ``pretrain.datasets`` (they feed nothing else) and by no ``fusion.subsets``."""
    from signpipe.datasets import dataset_role

    pretrain = (config.get("pretrain") or {}).get("datasets", "all")
    for name, block in (config.get("datasets") or {}).items():
        try:
            role = dataset_role(block, f"datasets.{name}")
        except ValueError as error:
            raise ConfigError(f"config {error}") from None
        if role != "pretrain":
            continue
        if pretrain != "all" and name not in pretrain:
            raise ConfigError(f"config pretrain.datasets: dataset {name!r} has role: pretrain, which feeds pre-training "
                              f"only; add it to pretrain.datasets or remove it")
        if name in (fusion.get("subsets") or {}):
            raise ConfigError(f"config fusion.subsets.{name}: dataset {name!r} has role: pretrain (no labels), so "
                              "nothing is fine-tuned or fused on it; remove the entry")


BLANK = "FILL_ME"
"""Prefix of the values a paper preset leaves for the user (configs/paper/, docs/presets.md)."""
BACKEND_PATHS = {
    "mediapipe": [("mediapipe", "model_dir", "dir")],
    "mmpose": [("mmpose", key, "file") for key in ("config", "checkpoint", "det_config", "det_checkpoint")],
    "mmpose-json": [("mmpose_json", "dir", "dir")],
    "openpose": [("openpose", "dir", "dir")],
    "sidecar": [],
}
"""Per pose backend, its (block, key, kind) paths: checked before any job runs, since the pose
jobs would read them only after decode ran."""


def check_blanks(config: Any, where: str = "") -> None:
    """Refuse any value still starting with ``FILL_ME`` (a preset's blank), naming its key."""
    items = (config.items() if isinstance(config, Mapping)
             else enumerate(config) if isinstance(config, list) else ())
    for key, value in items:
        path = f"{where}.{key}" if where else str(key)
        if isinstance(value, str) and value.startswith(BLANK):
            raise ConfigError(f"config {path}: {value!r} is a blank of the preset; fill in the path to your copy "
                              "(docs/presets.md, 'What you fill in')")
        check_blanks(value, path)


def check_backend_paths(config: Mapping[str, Any]) -> None:
    """The files and folders the pose backend of each video dataset reads (the global ``pose:`` block
    overridden by the dataset's own) must exist; keypoint datasets run no backend."""
    from signpipe.datasets import KEYPOINT_ADAPTERS

    glob = config.get("pose") or {}
    for name, block in (config.get("datasets") or {}).items():
        if (block or {}).get("adapter") in KEYPOINT_ADAPTERS:
            continue
        own = (block or {}).get("pose") or {}
        pose = {**glob, **own}
        for sub, key, kind in BACKEND_PATHS.get(pose.get("backend", "mediapipe"), []):
            value = (pose.get(sub) or {}).get(key)
            if value is None:
                continue
            where = f"datasets.{name}.pose.{sub}.{key}" if key in (own.get(sub) or {}) else f"pose.{sub}.{key}"
            path = os.path.expanduser(str(value))
            if not (os.path.isdir(path) if kind == "dir" else os.path.isfile(path)):
                state = "is not a folder" if kind == "dir" and os.path.exists(path) else (
                    "is not a file" if os.path.exists(path) else "does not exist")
                raise ConfigError(f"config {where}: {value} {state} (relative paths are from the working "
                                  f"directory, {os.getcwd()}); the {pose.get('backend')} pose backend of dataset "
                                  f"{name!r} reads it")


def pixels_needed(model: str) -> str | None:
    """What pixels model ``model`` reads: 'video frames', 'hand crops', or None (keypoints and poses only)."""
    from signpipe.models import MODELS

    if "frames" in MODELS[model].stages:
        return "video frames"
    return "hand crops" if MODELS[model].crops else None


def check_pixels(datasets: Mapping[str, Any], models: list[str]) -> None:
    """Refuse a model that needs pixels on a keypoint dataset (no frames, hands shards without crops)."""
    from signpipe.datasets import KEYPOINT_ADAPTERS

    for name, block in datasets.items():
        adapter = (block or {}).get("adapter")
        if adapter not in KEYPOINT_ADAPTERS:
            continue
        for model in models:
            needed = pixels_needed(model)
            if needed:
                raise ConfigError(f"config finetune.models: {model!r} needs {needed}, but dataset {name!r} "
                                  f"(adapter {adapter}) has keypoints only; drop {model} from finetune.models "
                                  "(and fusion.combos) or train it in a run without that dataset")


def stage_params(block: Mapping[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A stage's block as its rule's params: without the keys that only size the job
    (:data:`RULE_ONLY_KEYS`), so changing ``threads`` reruns nothing, and without ``skip``."""
    return {key: value for key, value in block.items() if key not in (*RULE_ONLY_KEYS, *skip)}


def user_blocks(config: Mapping[str, Any], stage: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """The sub-blocks ``config[stage][name]`` as the user wrote them, before the schema fills in
    defaults (copied: validation changes the config in place)."""
    block = config.get(stage) or {}
    return {name: copy.deepcopy(block.get(name) or {}) for name in names}


def finetune_params(config: Mapping[str, Any], written: Mapping[str, Any], model: str) -> dict[str, Any]:
    """What the finetune job of ``model`` depends on: the stage's training keys the user set,
    the model's block as written (for a model that decodes through the hand model, with
    ``hand_model.mano_dir`` when the block names none; for SignBERT with ``pretrain.model``, the one
    source of its sizes), the global device, seed, amp and deterministic
    (``signpipe.finetune.phase_settings`` puts the defaults under them)."""
    from signpipe.models import MODELS

    stage = stage_params(config["finetune"], skip=("models", "pretrained", *MODELS))
    block = dict(written[model])
    mano_dir = (config.get("hand_model") or {}).get("mano_dir")
    if MODELS[model].hand_model and mano_dir and block.get("mano_dir") is None:
        block["mano_dir"] = mano_dir  # the licensed MANO of hand_model, unless the model's block names its own
    if model == "signbert":
        block["model"] = dict((config.get("pretrain") or {}).get("model") or {})  # one source of its sizes
    return {**stage, model: block, **{key: config[key] for key in TRAINING_GLOBALS if key in config}}


TRAINING_GLOBALS = ("device", "seed", "amp", "deterministic")
"""Top-level keys every training job reads (``signpipe.train.TrainConfig``)."""
