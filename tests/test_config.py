"""The workflow's config: the schema agrees with the model registry and the library's defaults;
mistakes are one line naming the key; thread counts never reach a rule's params."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import yaml

from signpipe.config import ConfigError, check_config, finetune_params, stage_params, user_blocks
from signpipe.finetune import phase_settings
from signpipe.models import MODELS, model_spec
from signpipe.models.glenet import PHASES as GLENET_PHASES, GLENetConfig
from signpipe.models.hma import HMAConfig
from signpipe.models.rgb3d import DEFAULT_SIZE
from signpipe.models.signbert import SignBERTConfig
from signpipe.models.stgcn import PAPER_DROPOUT, PAPER_LAYERS

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
FINETUNE = SCHEMA["properties"]["finetune"]["properties"]
MODEL_DEFAULTS = {
    "signbert": {"dropout": SignBERTConfig().dropout},  # its sizes are pretrain.model's
    "stgcn": {"subset": "27", "layers": [list(layer) for layer in PAPER_LAYERS], "temporal_kernel": 9,
              "dropout": PAPER_DROPOUT},
    "rgb3d": {"arch": "r3d_18", "size": DEFAULT_SIZE, "subtract_mean": False, "checkpoint": None},
    "glenet": {**asdict(GLENetConfig()), "phases": {phase.name: dict(phase.settings) for phase in GLENET_PHASES}},
    "hma": json.loads(json.dumps(asdict(HMAConfig()))),  # tuples as the lists YAML gives
}
"""What each model's build uses when its block leaves a key out."""


def test_schema_model_names_are_the_registry():
    assert FINETUNE["models"]["items"]["enum"] == list(MODELS)
    combos = SCHEMA["properties"]["fusion"]["properties"]["combos"]
    assert combos["items"]["items"]["enum"] == list(MODELS)
    assert [name for name in FINETUNE if name in MODELS] == list(MODELS)
    assert set(MODEL_DEFAULTS) == set(MODELS)


@pytest.mark.parametrize("model", list(MODELS))
def test_schema_defaults_are_the_libraries(model):
    block = FINETUNE[model]["properties"]
    schema_defaults = {key: spec["default"] for key, spec in block.items() if "default" in spec}
    library = phase_settings(replace(model_spec(model), phases=()), {})["main"]  # the block's, under any phase's
    training = {key: library[key] for key in schema_defaults if key not in MODEL_DEFAULTS[model]}
    assert {k: v for k, v in schema_defaults.items() if k in training} == training
    assert {k: v for k, v in schema_defaults.items() if k in MODEL_DEFAULTS[model]} == MODEL_DEFAULTS[model]
    training_keys = set(SCHEMA["$defs"]["training"]["properties"]) - {"grad_clip"}
    if library["schedule"] == "plateau":  # lr_step is read by the step schedule only: a block may leave it out
        training_keys -= {"lr_step"}
    assert training_keys <= set(schema_defaults), "every training default of a model is in its block"


def config(**extra):
    return {"datasets": {"d": {"adapter": "synthetic"}}, **extra}


@pytest.mark.parametrize("bad, message", [
    ({"finetune": {"stgcn": {"subsett": "133"}}}, "config finetune.stgcn: unknown key 'subsett'; known keys: "),
    ({"finetune": {"stgcn": {"subset": "72"}}}, "config finetune.stgcn.subset: '72' is not allowed; choose one of"),
    ({"finetune": {"signbert": {"phases": {"main": {"lrr": 1}}}}}, "config finetune.signbert.phases.main: unknown key 'lrr'"),
    ({"finetune": {"signbert": {"optimizer": "adamw"}}}, "finetune.signbert.optimizer: 'adamw' is not allowed"),
    ({"finetune": {"lr": -1}}, "config finetune.lr: -1 is less than or equal to the minimum of 0"),
    ({"pretrain": {"datasets": ["bda"]}}, "config pretrain.datasets: no dataset 'bda'; datasets: d"),
    ({"fusion": {"combos": [["signbert", "rgb3d"]]}}, "'rgb3d' in ['signbert', 'rgb3d'] is not in finetune.models"),
    ({"fusion": {"subsets": {"e": {}}}}, "config fusion.subsets: no dataset 'e'"),
    ({"predict": {"new": {"dataset": "e", "videos": "v"}}}, "config predict.new.dataset: no dataset 'e'; datasets: d"),
    ({"predict": {"new": {"dataset": "d", "videos": "v", "model": "signbert+rgb3d"}}},
     "config predict.new.model: 'rgb3d' is not in finetune.models"),
    ({"predict": {"new": {"dataset": "d"}}}, "config predict.new: 'videos' is a required property"),
])
def test_mistakes_name_the_key(bad, message):
    with pytest.raises(ConfigError) as error:
        check_config(config(**bad), SCHEMA_PATH)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_good_config_passes():
    check_config(yaml.safe_load((SCHEMA_PATH.parents[2] / "config.yaml").read_text()), SCHEMA_PATH)


def test_thread_counts_never_reach_params():
    assert stage_params({"short_side": 256, "threads": 4, "gpus": 1}) == {"short_side": 256}
    assert stage_params({"datasets": "all", "epochs": 2}, skip=("datasets",)) == {"epochs": 2}


def test_finetune_params_hold_the_users_keys_of_one_model():
    written = {"signbert": {}, "stgcn": {"subset": "59"}, "rgb3d": {}}
    cfg = {"device": "cpu", "seed": 3, "finetune": {"models": ["stgcn"], "pretrained": True, "epochs": 2, "threads": 4,
                                                   "stgcn": {"subset": "59", "lr": 0.001}, "rgb3d": {"size": 112}}}
    assert finetune_params(cfg, written, "stgcn") == {"epochs": 2, "stgcn": {"subset": "59"}, "device": "cpu", "seed": 3}
    raw = {"finetune": {"stgcn": {"subset": "59"}}}
    blocks = user_blocks(raw, "finetune", ["stgcn", "rgb3d"])
    assert blocks == {"stgcn": {"subset": "59"}, "rgb3d": {}}
    raw["finetune"]["stgcn"]["lr"] = 0.1  # validation fills defaults in place later: the copy keeps what was written
    assert blocks["stgcn"] == {"subset": "59"}


def test_model_code_follows_the_model_modules_a_model_imports():
    from signpipe.models import model_code

    assert model_code("stgcn") == ["signpipe.models.stgcn"]
    assert model_code("glenet") == ["signpipe.models.glenet", "signpipe.models.pretrained",  # its weights loader
                                    "signpipe.models.rgb3d"]  # its clips are rgb3d's


def test_the_global_mano_dir_reaches_models_that_decode_hands():
    written = {name: {} for name in ("signbert", "stgcn", "rgb3d", "glenet", "hma")}
    cfg = {"device": "cpu", "seed": 0, "hand_model": {"mano_dir": "/mano", "num_pca": 25}, "finetune": {"models": ["hma"]}}
    assert finetune_params(cfg, written, "hma")["hma"] == {"mano_dir": "/mano"}
    assert finetune_params(cfg, {**written, "hma": {"mano_dir": "/own"}}, "hma")["hma"] == {"mano_dir": "/own"}
    assert finetune_params(cfg, written, "stgcn")["stgcn"] == {}
