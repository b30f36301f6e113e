"""The finetune stage: any model spec, pre-trained SignBERT encoder, predictions.h5 for val and test."""

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import signpipe.finetune as finetune_module
from signpipe.data import ShardDataset
from signpipe.finetune import finetune, phase_settings
from signpipe.models import MODELS, ModelSpec, Phase, Registered, model_spec
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
    cfg = {**TRAIN, "signbert": {"model": {"hidden": 32, "layers": 1, "heads": 2, "feedforward": 64}}}
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
    cfg = {**TRAIN, "signbert": {"model": {"hidden": 32, "layers": 1, "heads": 2, "feedforward": 64}}}
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
    model = SPEC.build(4, {"pretrained": tmp_path / "signbert.pt"})  # no sizes given: the file's
    for name, value in pretrained.encoder.state_dict().items():
        torch.testing.assert_close(model.encoder.state_dict()[name], value)
    # Through the stage: with a zero learning rate the trained encoder is still the pre-trained one.
    finetune("signbert", shards, tmp_path / "run", 4, {**TRAIN, "epochs": 1, "lr": 0.0, "weight_decay": 0.0},
             pretrained=tmp_path / "signbert.pt")
    trained = torch.load(tmp_path / "run" / "checkpoint.pt")["model"]
    for name, value in pretrained.encoder.state_dict().items():
        torch.testing.assert_close(trained[f"encoder.{name}"], value)


class MeanPose(nn.Module):
    def __init__(self, num_classes):
        super().__init__()
        self.linear = nn.Linear(2 * 21 * 3, num_classes)
        self.aux = nn.Linear(2 * 21 * 3, 1)

    def forward(self, pose):
        return self.linear(pose.float().mean(1).flatten(1))


def mean_dataset(seen):
    def dataset(shards, split, train, cfg):
        seen.setdefault("cfg", cfg)
        seen.setdefault("shards", shards)
        return ShardDataset(shards, ["pose"], split, cfg["num_frames"], train)
    return dataset


def two_losses(model, batch):
    """Cross-entropy and a second term (the mean pose regressed to 0), as HMA's or GLE-Net's extra losses."""
    logits = model(batch["pose"])
    pose = batch["pose"].float().mean(1).flatten(1)
    return {"ce": F.cross_entropy(logits, batch["label"]), "aux": model.aux(pose).pow(2).mean()}, logits


@pytest.fixture
def register(monkeypatch):
    """Register a test model (its spec and its stages) as signpipe.models would."""
    def add(spec, stages=("hands",)):
        monkeypatch.setitem(MODELS, spec.name, Registered("test_finetune", tuple(stages)))
        monkeypatch.setattr(finetune_module, "model_spec", lambda name: spec)
        return spec
    return add


def test_finetune_trains_any_model_spec(shards, tmp_path, register):
    seen = {}
    register(ModelSpec("mean", lambda n, cfg: MeanPose(n), mean_dataset(seen), lambda m, b: m(b["pose"])))
    finetune("mean", shards, tmp_path, 4, {**TRAIN, "mean": {"num_frames": 6}})
    splits, _ = read_predictions(tmp_path / "predictions.h5")
    assert set(splits["test"].video_id) == videos(shards, "test")
    assert seen["cfg"]["num_frames"] == 6 and seen["cfg"]["epochs"] == 2 and seen["cfg"]["pretrained"] is None
    assert seen["shards"] == {"hands": shards}
    assert pd.read_csv(tmp_path / "log.csv")["phase"].tolist() == ["main", "main"]


def test_every_loss_term_is_weighted_and_logged(shards, tmp_path, register):
    defaults = {"loss_weights": {"ce": 1.0, "aux": 0.5}, "optimizer": "sgd", "lr": 0.05}
    register(ModelSpec("mean", lambda n, cfg: MeanPose(n), mean_dataset({}), lambda m, b: m(b["pose"]),
                       losses=two_losses, defaults=defaults))
    finetune("mean", shards, tmp_path / "a", 4, TRAIN)
    log = pd.read_csv(tmp_path / "a" / "log.csv")
    assert {"ce_loss", "aux_loss", "train_loss", "train_acc"} <= set(log.columns)
    # the total is the weighted sum of the terms (means over the same batches)
    np.testing.assert_allclose(log["train_loss"], log["ce_loss"] + 0.5 * log["aux_loss"], rtol=1e-5)
    finetune("mean", shards, tmp_path / "b", 4, {**TRAIN, "mean": {"loss_weights": {"aux": 0.0}}})
    log = pd.read_csv(tmp_path / "b" / "log.csv")
    np.testing.assert_allclose(log["train_loss"], log["ce_loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="finetune.mean.loss_weights: mean has no loss 'akx'"):
        finetune("mean", shards, tmp_path / "c", 4, {**TRAIN, "mean": {"loss_weights": {"akx": 1.0}}})


PHASED = (Phase("streams", {"loss_weights": {"ce": 0.0, "aux": 1.0}}), Phase("joint", {"lr": 0.01}))


def test_two_phases_train_in_their_own_folders_and_log_together(shards, tmp_path, register):
    register(ModelSpec("mean", lambda n, cfg: MeanPose(n), mean_dataset({}), lambda m, b: m(b["pose"]),
                       losses=two_losses, defaults={"loss_weights": {"ce": 1.0, "aux": 1.0}}, phases=PHASED))
    cfg = {**TRAIN, "mean": {"phases": {"joint": {"epochs": 3}}}}
    finetune("mean", shards, tmp_path, 4, cfg)
    log = pd.read_csv(tmp_path / "log.csv")
    assert log["phase"].tolist() == ["streams"] * 2 + ["joint"] * 3
    assert log["lr"].tolist() == pytest.approx([1e-3] * 2 + [1e-2] * 3)
    np.testing.assert_allclose(log["train_loss"][:2], log["aux_loss"][:2], rtol=1e-5)  # ce weighed 0 in phase 1
    for phase in ("streams", "joint"):
        assert (tmp_path / phase / "checkpoint.pt").exists() and (tmp_path / phase / "log.csv").exists()
    assert (tmp_path / "curves.png").exists() and (tmp_path / "predictions.h5").exists()
    with pytest.raises(ValueError, match="finetune.mean.phases: unknown phase 'jiont'; mean trains in streams, joint"):
        finetune("mean", shards, tmp_path / "x", 4, {**TRAIN, "mean": {"phases": {"jiont": {}}}})


def test_a_kill_in_phase_two_resumes_phase_two(shards, tmp_path, register, monkeypatch):
    register(ModelSpec("mean", lambda n, cfg: MeanPose(n), mean_dataset({}), lambda m, b: m(b["pose"]),
                       losses=two_losses, defaults={"loss_weights": {"ce": 1.0, "aux": 1.0}}, phases=PHASED))
    cfg = {**TRAIN, "mean": {"phases": {"joint": {"epochs": 3}}}}
    finetune("mean", shards, tmp_path / "straight", 4, cfg)

    real_step = finetune_module._weighted_step
    joint = tmp_path / "killed" / "joint" / "checkpoint.pt"

    def killing_step(losses, weights):
        step = real_step(losses, weights)
        if weights["ce"] == 0.0:  # phase 1: untouched
            return step

        def killed(model, batch):  # the job dies in epoch 3 of phase 2
            if joint.exists() and torch.load(joint)["epoch"] == 2:
                raise KeyboardInterrupt("killed")
            return step(model, batch)
        return killed

    monkeypatch.setattr(finetune_module, "_weighted_step", killing_step)
    with pytest.raises(KeyboardInterrupt):
        finetune("mean", shards, tmp_path / "killed", 4, cfg)
    phase1 = (tmp_path / "killed" / "streams" / "checkpoint.pt")
    stamp = phase1.stat().st_mtime_ns
    assert torch.load(tmp_path / "killed" / "joint" / "checkpoint.pt")["epoch"] == 2
    monkeypatch.setattr(finetune_module, "_weighted_step", real_step)
    finetune("mean", shards, tmp_path / "killed", 4, cfg)
    assert phase1.stat().st_mtime_ns == stamp  # phase 1 not retrained
    straight = pd.read_csv(tmp_path / "straight" / "log.csv")
    resumed = pd.read_csv(tmp_path / "killed" / "log.csv")
    pd.testing.assert_frame_equal(straight.drop(columns=["seconds", "samples_per_s"]),
                                  resumed.drop(columns=["seconds", "samples_per_s"]))
    a, _ = read_predictions(tmp_path / "straight" / "predictions.h5")
    b, _ = read_predictions(tmp_path / "killed" / "predictions.h5")
    np.testing.assert_array_equal(a["test"].logits, b["test"].logits)
    # a forced rerun (everything finished) trains every phase again
    finetune("mean", shards, tmp_path / "killed", 4, cfg)
    assert phase1.stat().st_mtime_ns != stamp


def test_plateau_schedule_through_the_stage(shards, tmp_path):
    cfg = {**TRAIN, "epochs": 3, "signbert": {"model": {"hidden": 32, "layers": 1, "heads": 2, "feedforward": 64},
                                               "schedule": "plateau", "patience": 0, "optimizer": "sgd", "lr": 0.01}}
    finetune("signbert", shards, tmp_path, 4, cfg)
    log = pd.read_csv(tmp_path / "log.csv")
    decayed = log["val_loss"].cummin().diff().fillna(-1).to_numpy()[:-1] >= 0  # no new best -> next lr x0.1
    expected = 0.01 * 0.1 ** np.concatenate([[0], np.cumsum(decayed)])
    np.testing.assert_allclose(log["lr"], expected, rtol=1e-6)


def test_settings_precedence_user_over_defaults():
    spec = ModelSpec("m", None, None, None, defaults={"lr": 0.1, "optimizer": "sgd"},
                     phases=(Phase("a", {"epochs": 30}), Phase("b", {"lr": 0.5})))
    settings = phase_settings(spec, {"epochs": 2, "batch_size": 4, "m": {"lr": 0.2, "phases": {"b": {"lr": 0.3}}}})
    assert settings["a"]["epochs"] == 2 and settings["b"]["epochs"] == 2  # the user's stage key beats phase defaults
    assert settings["a"]["lr"] == 0.2 and settings["b"]["lr"] == 0.3 and settings["a"]["optimizer"] == "sgd"
    assert phase_settings(spec, {})["a"]["epochs"] == 30 and phase_settings(spec, {})["b"]["lr"] == 0.5


def test_a_model_draws_its_figures_after_training(shards, tmp_path, register):
    from matplotlib.figure import Figure

    from signpipe.figures import save_figure

    seen = {}

    def figures(model, data, out_dir, settings):
        seen["split"], seen["training"] = set(data.index["split"]), model.training
        fig = Figure()
        fig.add_subplot().plot(model.linear.weight.detach().numpy().T)
        save_figure(fig, out_dir / "weights.png")

    register(ModelSpec("mean", lambda n, cfg: MeanPose(n), mean_dataset({}), lambda m, b: m(b["pose"]),
                       figures=figures))
    finetune("mean", shards, tmp_path / "drawn", 4, TRAIN)
    assert (tmp_path / "drawn" / "figures" / "weights.png").read_bytes()[:4] == b"\x89PNG"
    assert seen == {"split": {"val"}, "training": False}
    register(ModelSpec("plain", lambda n, cfg: MeanPose(n), mean_dataset({}), lambda m, b: m(b["pose"])))
    finetune("plain", shards, tmp_path / "plain", 4, TRAIN)
    assert list((tmp_path / "plain" / "figures").iterdir()) == []  # declared for every model, empty without figures


def test_a_planted_signbert_pt_runs_no_code(tmp_path):
    """The pre-trained encoder file is read with weights_only: a pickle that calls os.system is refused."""
    import os
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    with open(tmp_path / "signbert.pt", "wb") as f:
        pickle.dump({"arch": Payload(), "encoder": {}}, f)
    with pytest.raises(pickle.UnpicklingError):
        SPEC.build(4, {"pretrained": tmp_path / "signbert.pt"})
    assert not marker.exists()


def test_a_kill_after_phase_one_before_phase_twos_first_checkpoint_keeps_phase_one(shards, tmp_path, register,
                                                                                   monkeypatch):
    register(ModelSpec("mean", lambda n, cfg: MeanPose(n), mean_dataset({}), lambda m, b: m(b["pose"]),
                       losses=two_losses, defaults={"loss_weights": {"ce": 1.0, "aux": 1.0}}, phases=PHASED))
    cfg = {**TRAIN, "mean": {"phases": {"joint": {"epochs": 3}}}}
    edited = {**TRAIN, "mean": {"phases": {"joint": {"epochs": 3, "lr": 0.02}}}}  # phase 2's lr set after the kill
    finetune("mean", shards, tmp_path / "straight", 4, edited)
    real_step = finetune_module._weighted_step

    def killing_step(losses, weights):
        step = real_step(losses, weights)
        if weights["ce"] == 0.0:  # phase 1: untouched
            return step

        def killed(model, batch):  # the job dies in phase 2's first batch: no phase 2 checkpoint yet
            raise KeyboardInterrupt("killed")
        return killed

    monkeypatch.setattr(finetune_module, "_weighted_step", killing_step)
    with pytest.raises(KeyboardInterrupt):
        finetune("mean", shards, tmp_path / "killed", 4, cfg)
    phase1 = tmp_path / "killed" / "streams" / "checkpoint.pt"
    assert not (tmp_path / "killed" / "joint" / "checkpoint.pt").exists()
    stamp, weights = phase1.stat().st_mtime_ns, torch.load(phase1)["model"]
    monkeypatch.setattr(finetune_module, "_weighted_step", real_step)
    finetune("mean", shards, tmp_path / "killed", 4, edited)
    assert phase1.stat().st_mtime_ns == stamp  # phase 1 not retrained
    for name, value in torch.load(phase1)["model"].items():
        torch.testing.assert_close(value, weights[name])
    straight = pd.read_csv(tmp_path / "straight" / "log.csv")
    resumed = pd.read_csv(tmp_path / "killed" / "log.csv")
    pd.testing.assert_frame_equal(straight.drop(columns=["seconds", "samples_per_s"]),
                                  resumed.drop(columns=["seconds", "samples_per_s"]))
    assert resumed["lr"].tolist() == pytest.approx([1e-3] * 2 + [0.02] * 3)  # phase 2 at its configured lr


def test_phase_two_starts_from_phase_ones_weights_at_its_configured_lr(shards, tmp_path, register):
    register(ModelSpec("mean", lambda n, cfg: MeanPose(n), mean_dataset({}), lambda m, b: m(b["pose"]),
                       losses=two_losses, defaults={"loss_weights": {"ce": 1.0, "aux": 1.0}}, phases=PHASED))
    finetune("mean", shards, tmp_path, 4, {**TRAIN, "weight_decay": 0.0, "mean": {"phases": {"joint": {"lr": 0.0}}}})
    log = pd.read_csv(tmp_path / "log.csv")
    assert log["lr"].tolist() == [1e-3, 1e-3, 0.0, 0.0]
    streams, joint = (torch.load(tmp_path / phase / "checkpoint.pt")["model"] for phase in ("streams", "joint"))
    for name, value in streams.items():  # lr 0: phase 2 ends where it started, on phase 1's weights
        torch.testing.assert_close(joint[name], value)
    # GLE-Net fine-tunes phase 1's weights one x0.1 step below its lr (§5.1), not a restart at 5e-3
    glenet = phase_settings(model_spec("glenet"), {})
    assert glenet["streams"]["lr"] == 5e-3 and glenet["joint"]["lr"] == 5e-4
