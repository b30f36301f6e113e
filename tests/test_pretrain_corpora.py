"""Unlabeled corpora for SignBERT's pre-training (`role: pretrain`): listing without labels, the config
checks, and pre-training that sees train clips only and records what it saw."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from signpipe.config import ConfigError, check_config, check_references
from signpipe.datasets import DEFAULT_ROLE, NO_LABEL, ROLES, UNLABELED_ADAPTERS, build_manifest
from signpipe.models.signbert import HandTokens
from signpipe.models.signbert import SignBERT, SignBERTConfig
from signpipe.pretrain import decay_advice, pretrain, reconstruction_panels
from test_signbert import make_hands_shards

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"
TINY_MODEL = {"hidden": 16, "layers": 1, "heads": 2, "feedforward": 32, "gcn_channels": 8}


def assert_unlabeled(manifest: pd.DataFrame, count: int) -> None:
    assert len(manifest) == count
    assert (manifest["label"] == NO_LABEL).all() and (manifest["split"] == "train").all()
    assert (manifest["gloss"] == "").all()


def test_folder_lists_a_flat_folder_without_classes_or_splits(tmp_path):
    for name in ("P01_a.mp4", "P02_b.mkv", "notes.txt", "more/P03_c.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    manifest, missing = build_manifest({"adapter": "folder", "role": "pretrain", "root": str(tmp_path)}, name="raw")
    assert_unlabeled(manifest, 3) and missing.empty
    assert sorted(manifest["video_id"]) == ["P01_a", "P02_b", "more__P03_c"] and (manifest["signer"] == "").all()
    signed, _ = build_manifest({"adapter": "folder", "role": "pretrain", "root": str(tmp_path),
                                "pattern": r"(?P<signer>P\d+)_"}, name="raw")
    assert sorted(signed["signer"]) == ["P01", "P02", "P03"]
    with pytest.raises(ValueError, match=r"datasets.raw.pattern: .* does not match"):
        build_manifest({"adapter": "folder", "role": "pretrain", "root": str(tmp_path), "pattern": r"(?P<signer>Q)"},
                       name="raw")


def test_csv_needs_no_label_or_split_column(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    (tmp_path / "list.csv").write_text("video_id,path\na,a.mp4\nb,b.mp4\n")
    manifest, missing = build_manifest({"adapter": "csv", "role": "pretrain", "manifest": str(tmp_path / "list.csv")},
                                       name="raw")
    assert_unlabeled(manifest, 1)
    assert list(missing["video_id"]) == ["b"] and (missing["label"] == NO_LABEL).all()
    with pytest.raises(ValueError, match=r"lacks the columns \['label', 'split'\]"):
        build_manifest({"adapter": "csv", "manifest": str(tmp_path / "list.csv")}, name="raw")


def test_gislr_ignores_sign_and_needs_no_splits(shared_data, tmp_path):
    index = shared_data / "gislr" / "train.csv"
    manifest, missing = build_manifest({"adapter": "gislr", "role": "pretrain", "index": str(index)}, name="kaggle")
    assert_unlabeled(manifest, 20) and missing.empty
    table = pd.read_csv(index, dtype=str).drop(columns="sign")
    table["path"] = [str(index.parent / p) for p in table["path"]]
    table.to_csv(tmp_path / "nosign.csv", index=False)
    manifest, _ = build_manifest({"adapter": "gislr", "role": "pretrain", "index": str(tmp_path / "nosign.csv")})
    assert_unlabeled(manifest, 20)


@pytest.mark.parametrize("adapter", ["pose", "arrays"])
def test_keypoint_files_in_a_flat_folder(adapter, tmp_path):
    for name in ("s1", "s2"):
        if adapter == "arrays":
            np.save(tmp_path / f"{name}.npy", np.zeros((3, 543, 3), np.float32))
        else:
            (tmp_path / f"{name}.pose").write_bytes(b"x")
    cfg = {"adapter": adapter, "role": "pretrain", "root": str(tmp_path)}
    if adapter == "arrays":
        cfg["layout"] = "mediapipe-holistic-543"
    manifest, _ = build_manifest(cfg, name="raw")
    assert_unlabeled(manifest, 2) and sorted(manifest["video_id"]) == ["s1", "s2"]


@pytest.mark.parametrize("block, message", [
    ({"adapter": "wlasl", "index": "i.json", "videos": "v"}, "datasets.raw.role: adapter wlasl lists labeled videos only"),
    ({"adapter": "gislr", "index": "train.csv", "splits": {"test": [1]}}, "datasets.raw.splits: a role: pretrain dataset"),
    ({"adapter": "folder", "root": ".", "classes": "c.txt"}, "datasets.raw.classes: a role: pretrain dataset"),
])
def test_role_pretrain_refuses_labeled_adapters_and_split_keys(block, message):
    with pytest.raises(ValueError, match=message):
        build_manifest({**block, "role": "pretrain"}, name="raw")
    with pytest.raises(ConfigError, match=f"config {message}"):
        check_references({"datasets": {"raw": {**block, "role": "pretrain"}}})


def test_schema_role_is_the_librarys_and_drops_the_split_keys_for_pretrain():
    role = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["datasets"]["additionalProperties"]["properties"]["role"]
    assert role["default"] == DEFAULT_ROLE and tuple(role["enum"]) == ROLES
    unlabeled = {"csv": {"manifest": "m.csv"}, "folder": {"root": "r"}, "gislr": {"index": "i.csv"},
                 "pose": {"root": "r"}, "arrays": {"manifest": "m.csv", "layout": "mediapipe-holistic-543"}}
    assert set(unlabeled) == set(UNLABELED_ADAPTERS)
    for adapter, keys in unlabeled.items():
        check_config({"datasets": {"raw": {"adapter": adapter, "role": "pretrain", **keys}}}, SCHEMA_PATH)
    for adapter in ("folder", "gislr", "pose"):
        with pytest.raises(ConfigError, match="config datasets.raw"):
            check_config({"datasets": {"raw": {"adapter": adapter, **unlabeled[adapter]}}}, SCHEMA_PATH)


def test_config_names_a_pretrain_dataset_left_out_of_pretrain_or_given_to_fusion():
    datasets = {"raw": {"adapter": "folder", "root": ".", "role": "pretrain"}, "mine": {"adapter": "synthetic"}}
    with pytest.raises(ConfigError, match="config pretrain.datasets: dataset 'raw' has role: pretrain"):
        check_references({"datasets": datasets, "pretrain": {"datasets": ["mine"]}})
    with pytest.raises(ConfigError, match="config fusion.subsets.raw: dataset 'raw' has role: pretrain"):
        check_references({"datasets": datasets, "fusion": {"subsets": {"raw": {"x": "x.txt"}}}})
    check_references({"datasets": datasets, "pretrain": {"datasets": ["raw", "mine"]}})


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    return make_hands_shards(tmp_path_factory.mktemp("made"))


def test_pretraining_sees_train_clips_only_and_records_each_dataset(made, tmp_path):
    """A labeled dataset gives its train split (no val or test video), an unlabeled one every clip;
    signbert.pt says how many of each."""
    shards = []
    for name in ("mine", "corpus"):
        (tmp_path / name / "hands").mkdir(parents=True)
        for k, path in enumerate(made):
            copy = tmp_path / name / "hands" / f"{k}.h5"
            shutil.copy(path, copy)
            if name == "corpus":  # as a role: pretrain dataset's shards are: every clip train, no label
                with h5py.File(copy, "r+") as f:
                    index = f["index"][...]
                    index["split"], index["label"] = b"train", NO_LABEL
                    f["index"][...] = index
            shards.append(copy)
    splits = pd.concat([HandTokens(path).index for path in made])["split"]
    train, everything = int((splits == "train").sum()), len(splits)
    assert 0 < train < everything
    out = tmp_path / "pretrain" / "signbert.pt"
    pretrain(shards, out, {"epochs": 1, "batch_size": 4, "num_frames": 4, "device": "cpu", "model": TINY_MODEL})
    state = torch.load(out)
    assert state["datasets"] == {"corpus": everything, "mine": train}
    assert state["sequences"] == everything + train
    assert pd.read_csv(out.parent / "log.csv")["samples"].tolist() == [everything + train]


def test_val_every_measures_feasibility_every_n_epochs_and_after_the_last(made, tmp_path):
    out = tmp_path / "signbert.pt"
    pretrain(made, out, {"epochs": 3, "val_every": 2, "batch_size": 8, "num_frames": 4, "device": "cpu",
                         "model": TINY_MODEL})
    log = pd.read_csv(tmp_path / "log.csv")
    assert log["pck20_output"].notna().tolist() == [False, True, True]


def test_the_decay_warning_says_what_the_advice_costs(made, tmp_path, caplog):
    assert decay_advice(500, 32, 20, 60) == (157, 471)  # 16 steps per epoch: 2,500 steps are 157 epochs
    assert decay_advice(5000, 32, 20, 60) is None and decay_advice(500, 32, 20, 20) is None
    pretrain(made, tmp_path / "signbert.pt", {"epochs": 2, "lr_step": 1, "batch_size": 4, "num_frames": 4,
                                              "device": "cpu", "model": TINY_MODEL})
    clips = int((pd.concat([HandTokens(path).index for path in made])["split"] == "train").sum())
    per_epoch = -(-clips // 4)
    needed = -(-2500 // per_epoch)
    assert (f"lr_step {needed} and epochs {2 * needed} instead of 2, i.e. {2 * needed - 2} more epochs on this "
            "corpus") in caplog.text


def test_reconstruction_draws_frames_without_a_hand_as_absent(made, tmp_path):
    """Frames where the detector found no hand show no skeleton in any row, the reconstruction's included."""
    shards = []
    for k, path in enumerate(made):
        copy = tmp_path / f"{k}.h5"
        shutil.copy(path, copy)
        shards.append(copy)
    first = HandTokens(shards, "val").index.iloc[0]
    with h5py.File(first["path"], "r+") as f:
        start, length = int(first["start"]), int(first["length"])
        pose = f["pose"][start:start + length]
        pose[:, 0] = 0  # the left hand never detected, the right one in the first half only
        pose[length // 2:, 1] = 0
        f["pose"][start:start + length] = pose
    data = HandTokens(shards, "val", 8)
    assert data.index.iloc[0]["video_id"] == first["video_id"]
    torch.manual_seed(0)
    fig = reconstruction_panels(SignBERT(SignBERTConfig(**TINY_MODEL)), data, device="cpu")
    axes = np.array(fig.axes).reshape(-1, 3).T  # added column by column: (row, column)
    clip = data.__getitems__([0])[0]["pose"]
    absent = [column for column, ax in enumerate(axes[0]) if (clip[int(ax.get_title().split()[1]), 1, :, 2] == 0).all()]
    assert absent and len(absent) < axes.shape[1]
    for column in range(axes.shape[1]):
        drawn = [len(ax.lines) + sum(len(c.get_offsets()) for c in ax.collections) for ax in axes[:, column]]
        texts = [t.get_text() for ax in axes[:, column] for t in ax.texts]
        if column in absent:
            assert drawn == [0, 0, 0] and texts == ["no hand\ndetected"] * 3
        else:
            assert drawn[2] > 0 and not texts
