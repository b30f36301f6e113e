"""The finetune stage: any model spec, pre-trained SignBERT encoder, predictions.h5 for val and test."""

import h5py
import pandas as pd
import pytest
import torch
from torch import nn

import signpipe.finetune as finetune_module
from signpipe.data import ShardDataset
from signpipe.finetune import finetune
from signpipe.models import ModelSpec
from signpipe.models.signbert import SPEC, SignBERT, save_encoder
from signpipe.predictions import read_predictions
from signpipe.shards import read_index
from test_signbert import TINY, make_hands_shards

TRAIN = {"epochs": 2, "batch_size": 4, "num_frames": 8, "device": "cpu", "seed": 0}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_hands_shards(tmp_path_factory.mktemp("hands"))


def videos(shards, split):
    """Video ids of one split over the shards."""
    ids = set()
    for path in shards:
        with h5py.File(path) as f:
            index = read_index(f)
        ids |= set(index["video_id"][index["split"] == split])
    return ids


def test_finetune_writes_predictions_for_every_val_and_test_video(shards, tmp_path):
    cfg = {**TRAIN, "signbert": {"hidden": 32, "layers": 1, "heads": 2, "feedforward": 64}}
    result = finetune("signbert", shards, tmp_path, 4, cfg)
    splits, attrs = read_predictions(tmp_path / "predictions.h5")
    assert set(splits) == {"val", "test"} and attrs["model"] == "signbert" and attrs["num_classes"] == 4
    for name, split in splits.items():
        assert set(split.video_id) == videos(shards, name) and len(split.video_id) == len(split.label)
        assert split.logits.shape == (len(split.video_id), 4)
    log = pd.read_csv(tmp_path / "log.csv")
    assert len(log) == 2 and {"train_loss", "train_acc", "val_acc", "val_loss"} <= set(log.columns)
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "curves.png").exists()
    assert set(result) == {"val_acc", "test_acc"}


def test_finetune_is_repeatable_from_its_seed(shards, tmp_path):
    cfg = {**TRAIN, "signbert": {"hidden": 32, "layers": 1, "heads": 2, "feedforward": 64}}
    torch.rand(7)  # whatever ran before in the process must not matter
    finetune("signbert", shards, tmp_path / "a", 4, cfg)
    finetune("signbert", shards, tmp_path / "b", 4, cfg)
    finetune("signbert", shards, tmp_path / "c", 4, {**cfg, "seed": 1})
    a, b, c = (pd.read_csv(tmp_path / run / "log.csv")[["train_loss", "val_loss"]] for run in "abc")
    assert a.equals(b) and not a.equals(c)


def test_finetune_starts_from_the_pretrained_encoder(shards, tmp_path):
    pretrained = SignBERT(TINY)
    with torch.no_grad():
        for parameter in pretrained.encoder.parameters():
            parameter.normal_()
    save_encoder(tmp_path / "signbert.pt", pretrained)
    model = SPEC.build(4, {"pretrained": tmp_path / "signbert.pt", "hidden": 999})  # sizes come from the file
    for name, value in pretrained.encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], value)
    # Through the stage: with a zero learning rate the trained encoder is still the pre-trained one.
    finetune("signbert", shards, tmp_path / "run", 4, {**TRAIN, "epochs": 1, "lr": 0.0, "weight_decay": 0.0},
             pretrained=tmp_path / "signbert.pt")
    trained = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)["model"]
    for name, value in pretrained.encoder.state_dict().items():
        torch.testing.assert_close(trained[f"encoder.{name}"], value)


class MeanPose(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.linear = nn.Linear(2 * 21 * 3, num_classes)

    def forward(self, pose):
        return self.linear(pose.float().mean(1).flatten(1))


def test_finetune_trains_any_model_spec(shards, tmp_path, monkeypatch):
    seen = {}

    def dataset(paths, split, train, cfg):
        seen.setdefault("cfg", cfg)
        return ShardDataset(paths, ["pose"], split, cfg["num_frames"], train)

    spec = ModelSpec("mean", "hands", lambda n, cfg: MeanPose(n), dataset, lambda m, b: m(b["pose"]))
    monkeypatch.setattr(finetune_module, "model_spec", lambda name: spec)
    cfg = {**TRAIN, "mean": {"width": 3}}
    finetune("mean", shards, tmp_path, 4, cfg)
    splits, _ = read_predictions(tmp_path / "predictions.h5")
    assert set(splits["test"].video_id) == videos(shards, "test")
    assert seen["cfg"] == {"num_frames": 8, "seed": 0, "width": 3, "pretrained": None}
