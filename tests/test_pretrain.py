"""SignBERT pre-training: masking, the loss of eq. 6-8, PCK/AUC, and the stage on a tiny real shard."""

import json

import pandas as pd
import pytest
import torch
from torch import nn

from signpipe.models.signbert import HandLatent, SignBERT, present_hands
from signpipe.pretrain import (
    FEASIBILITY, FEASIBILITY_KEYS, IDENTITY, MASK_FRAMES, MASK_JOINTS, PCK_FRAME, RECONSTRUCTION, PretrainObjective,
    feasibility, mask_tokens, pck, pck_auc, pretrain, pretraining_loss, reconstruction_loss, regularisation_loss,
)
from signpipe.models.signbert import HandTokens
from test_signbert import TINY, make_hands_shards, random_pose

PX = 2 / PCK_FRAME  # one pixel of a 256-px crop in normalised units


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_hands_shards(tmp_path_factory.mktemp("hands"))


def test_masking_chooses_half_the_tokens_and_applies_each_operation_equally():
    pose = random_pose(64, 32)
    pose[..., 2] = 0.9
    objective = PretrainObjective(max_masked_joints=5)
    masking = mask_tokens(pose, objective, torch.Generator().manual_seed(1))
    assert (masking.chosen.sum((1, 2)) == 32).all()  # exactly 50% of 64 tokens per clip
    assert ((masking.operation >= 0) == masking.chosen).all()
    shares = torch.bincount(masking.operation[masking.chosen], minlength=3).float() / masking.chosen.sum()
    assert torch.allclose(shares, torch.full((3,), 1 / 3), atol=0.03)
    changed = (masking.pose != pose).any(-1)  # (B, T, 2, 21) joints touched
    assert not changed[~masking.chosen].any() and not changed[masking.operation == IDENTITY].any()
    assert (masking.pose[masking.operation == MASK_FRAMES] == 0).all()
    per_token = changed[masking.operation == MASK_JOINTS].sum(-1)
    assert per_token.min() >= 1 and per_token.max() <= 5 and abs(per_token.float().mean() - 3) < 0.15
    joints = masking.pose[masking.operation == MASK_JOINTS][changed[masking.operation == MASK_JOINTS]]
    zeroed = (joints == 0).all(-1)
    assert abs(zeroed.float().mean() - 0.5) < 0.05  # zero masking or spatial disturbance
    original = pose[masking.operation == MASK_JOINTS][changed[masking.operation == MASK_JOINTS]]
    shift = (joints - original)[~zeroed]
    assert (shift[:, 2] == 0).all() and shift[:, :2].abs().max() <= objective.disturbance + 1e-6


def test_reconstruction_ignores_joints_at_or_below_epsilon_and_weighs_by_score():
    detected = torch.zeros(1, 21, 3)
    detected[0, :, :2] = 1.0
    detected[0, :4, 2] = torch.tensor([0.5, 0.6, 1.0, 0.2])
    loss = reconstruction_loss(torch.zeros(1, 21, 2), detected, epsilon=0.5)
    assert float(loss) == pytest.approx(0.6 * 2 + 1.0 * 2)


def test_regulariser_counts_chosen_tokens_and_the_change_of_beta():
    theta, beta = torch.zeros(1, 3, 1, 25), torch.zeros(1, 3, 1, 10)
    theta[0, 0, 0, 0] = 1.0
    beta[0, 1, 0, 0] = 0.5
    latent = HandLatent(theta, beta, torch.zeros(1, 3, 1, 9))
    chosen = torch.tensor([True, True, False])[None, :, None]
    # theta^2 at t=0: 1; w_beta beta^2 at t=1: 10 * 0.25; w_delta change at t=1: 100 * 0.25 (t=2 not chosen).
    assert float(regularisation_loss(latent, chosen, 10.0, 100.0)) == pytest.approx(1 + 2.5 + 25)


class Probe(nn.Module):
    """Runs a SignBERT and keeps the gradient of the latent it returned."""

    def __init__(self, model):
        super().__init__()
        self.module = model

    def forward(self, pose, *rest):
        self.latent = self.module(pose, *rest)
        self.latent.camera.retain_grad()
        return self.latent


def test_only_chosen_tokens_carry_the_reconstruction_loss():
    pose = random_pose(2, 8)
    pose[..., 2] = 0.9
    probe = Probe(SignBERT(TINY).eval())
    loss, metrics = pretraining_loss(probe, pose, PretrainObjective(), torch.Generator().manual_seed(3))
    loss.backward()
    chosen = mask_tokens(pose, PretrainObjective(), torch.Generator().manual_seed(3)).chosen
    grad = probe.latent.camera.grad.abs().sum(-1)  # the camera enters the reconstruction only
    assert (grad[~chosen] == 0).all() and (grad[chosen] > 0).all()
    assert metrics["rec_loss"] > 0 and metrics["reg_loss"] >= 0


def test_pck_and_auc_in_a_256_pixel_crop():
    detected = torch.zeros(1, 4, 3)
    detected[..., 2] = torch.tensor([0.9, 0.9, 0.9, 0.3])
    predicted = torch.zeros(1, 4, 2)
    predicted[0, 0, 0] = 10 * PX  # 10 px off: within 20
    predicted[0, 1, 1] = 30 * PX  # 30 px off
    predicted[0, 2, 0] = 45 * PX  # beyond 40 px
    predicted[0, 3, 0] = 100 * PX  # not counted: score <= 0.5
    pck20, auc = pck_auc(predicted, detected, 0.5)
    assert pck20 == pytest.approx(1 / 3)
    # PCK over 20..40 px: 1/3 below 30 px, 2/3 from 30 px; trapezoids of 1 px over 20 px.
    assert auc == pytest.approx((9 * 1 / 3 + 0.5 + 10 * 2 / 3) / 20)
    assert pck_auc(detected[..., :2], detected, 0.5) == (1.0, 1.0)


def test_feasibility_measures_all_tokens_and_the_masked_ones_apart(shards):
    data = HandTokens(shards, "val", 8)
    measured = feasibility(SignBERT(TINY), data, PretrainObjective(), seed=5, batch_size=len(data), device="cpu")
    assert set(measured) == set(FEASIBILITY_KEYS)
    pose = torch.stack([sample["pose"] for sample in data.__getitems__(range(len(data)))])
    masking = mask_tokens(pose, PretrainObjective(), torch.Generator().manual_seed(5))  # the same draw
    masked = masking.operation > IDENTITY
    assert measured["pck20_input"] == pytest.approx(pck_auc(masking.pose[..., :2], pose, 0.5)[0])
    assert measured["pck20_input_masked"] == pytest.approx(pck(masking.pose[masked][..., :2], pose[masked], 0.5,
                                                                [20.0])[0])
    assert measured["pck20_input_masked"] < measured["pck20_input"] < 1.0  # half the tokens are untouched
    assert 0 <= measured["pck20_output_masked"] <= 1


def test_pretrain_stage_lowers_its_loss_and_reports_feasibility(shards, tmp_path, caplog):
    out = tmp_path / "pretrain" / "signbert.pt"
    cfg = {"epochs": 8, "batch_size": 4, "lr": 3e-3, "num_frames": 8, "device": "cpu", "seed": 0,
           "model": {"hidden": 32, "layers": 1, "heads": 2, "feedforward": 64, "gcn_channels": 16}}
    measured = pretrain(shards, out, cfg)
    assert "the learning rate decays after" not in caplog.text  # 8 epochs, none of them decayed
    log = pd.read_csv(out.parent / "log.csv")
    assert len(log) == 8 and log["train_loss"].iloc[-2:].mean() < log["train_loss"].iloc[:2].mean()
    assert {"rec_loss", "reg_loss", *FEASIBILITY_KEYS} <= set(log.columns)
    assert (out.parent / "curves.png").stat().st_size > 0 and (out.parent / RECONSTRUCTION).stat().st_size > 0
    state = torch.load(out)
    assert state["arch"]["hidden"] == 32 and "gesture_state_embedding.pool.weight" in state["encoder"]
    report = json.loads((out.parent / FEASIBILITY).read_text())
    assert report["split"] == "val" and report["videos"] == 4 and report == {**report, **measured}
    assert 0 < report["pck20_input"] < 1 and 0 <= report["pck20_output"] <= 1


def test_pretrain_trains_on_the_train_split_only_and_warns_of_an_early_decay(shards, tmp_path, caplog):
    out = tmp_path / "signbert.pt"
    measured = pretrain(shards, out, {"epochs": 2, "lr_step": 1, "num_frames": 4, "device": "cpu", "model": {
        "hidden": 16, "layers": 1, "heads": 2, "feedforward": 32, "gcn_channels": 8}})
    assert "the learning rate decays after" in caplog.text  # 1 epoch of a few clips
    splits = pd.concat([HandTokens(path).index for path in shards])["split"]
    assert pd.read_csv(tmp_path / "log.csv")["samples"].tolist() == [int((splits == "train").sum())] * 2
    assert 0 < (splits == "train").sum() < len(splits) and set(measured) == set(FEASIBILITY_KEYS)
    report = json.loads((tmp_path / FEASIBILITY).read_text())
    assert report["videos"] == int((splits == "val").sum())


def test_pretrain_is_repeatable_from_its_seed(shards, tmp_path):
    cfg = {"epochs": 1, "batch_size": 4, "num_frames": 4, "device": "cpu", "seed": 0, "model": {
        "hidden": 16, "layers": 1, "heads": 2, "feedforward": 32, "gcn_channels": 8}}
    torch.rand(7)  # whatever ran before in the process must not matter
    runs = [pretrain(shards, tmp_path / run / "signbert.pt", cfg) for run in "ab"]
    logs = [pd.read_csv(tmp_path / run / "log.csv")[["train_loss", "rec_loss"]] for run in "ab"]
    assert runs[0] == runs[1] and logs[0].equals(logs[1])


def test_pretrain_without_val_videos_measures_on_train_clips_and_says_so(shards, tmp_path, caplog):
    """A schema-valid corpus with no val split used to fail on the missing reconstruction.png."""
    import shutil

    import h5py

    copies = []
    for path in shards:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        with h5py.File(copy, "r+") as f:
            index = f["index"][...]
            index["split"][index["split"] == b"val"] = b"test"
            f["index"][...] = index
        copies.append(copy)
    out = tmp_path / "pretrain" / "signbert.pt"
    measured = pretrain(copies, out, {"epochs": 1, "batch_size": 4, "num_frames": 4, "device": "cpu", "model": {
        "hidden": 16, "layers": 1, "heads": 2, "feedforward": 32, "gcn_channels": 8}})
    assert "no val-split videos" in caplog.text and set(measured) == set(FEASIBILITY_KEYS)
    report = json.loads((out.parent / FEASIBILITY).read_text())
    assert report["split"] == "train" and report["videos"] > 0
    assert out.exists() and (out.parent / RECONSTRUCTION).stat().st_size > 0


def dropped_pose(batch=16, length=16, seed=0):
    """A random pose in which about half the hand tokens are absent (every score 0), as real detectors give."""
    pose = random_pose(batch, length)
    pose[..., 2] = 0.9
    gone = torch.rand(batch, length, 2, generator=torch.Generator().manual_seed(seed)) < 0.5
    pose[gone] = 0
    return pose, gone


def test_mask_present_chooses_half_the_detected_hands_and_never_an_absent_one():
    pose, gone = dropped_pose()
    masking = mask_tokens(pose, PretrainObjective(mask="present"), torch.Generator().manual_seed(1))
    assert not (masking.chosen & gone).any()
    torch.testing.assert_close(masking.chosen.sum((1, 2)), (0.5 * (~gone).sum((1, 2))).round().long())
    everywhere = mask_tokens(pose, PretrainObjective(mask="all"), torch.Generator().manual_seed(1))
    assert (everywhere.chosen.sum((1, 2)) == 16).all() and (everywhere.chosen & gone).any()
    # A masked frame is all zeros, yet the encoder is told the hand is there: masked != absent.
    frames = masking.operation == MASK_FRAMES
    assert frames.any() and not present_hands(masking.pose)[frames].any() and masking.present[frames].all()
    torch.testing.assert_close(masking.present, ~gone)
    with pytest.raises(ValueError, match="mask='some'"):
        mask_tokens(pose, PretrainObjective(mask="some"))


def test_padding_tokens_are_never_chosen():
    pose = random_pose(4, 10)
    pose[..., 2] = 0.9
    valid = torch.arange(10)[None] < torch.tensor([[10], [6], [3], [1]])
    masking = mask_tokens(pose, PretrainObjective(), torch.Generator().manual_seed(2), valid)
    assert not masking.chosen[~valid].any()
    assert masking.chosen.sum((1, 2)).tolist() == [10, 6, 3, 1]  # half of 2L tokens


def test_reconstruction_loss_is_over_the_chosen_present_tokens_in_rec_scale_units():
    pose, gone = dropped_pose(4, 8, seed=3)
    model = SignBERT(TINY).eval()
    objective = PretrainObjective(mask="present")
    _, metrics = pretraining_loss(model, pose, objective, torch.Generator().manual_seed(4))
    masking = mask_tokens(pose, objective, torch.Generator().manual_seed(4))
    with torch.no_grad():
        joints = model.decoder.joints2d(model(masking.pose, masking.present))
    expected = reconstruction_loss(joints[masking.chosen], pose[masking.chosen], 0.5) / masking.chosen.sum()
    assert float(metrics["rec_loss"]) == pytest.approx(float(expected), rel=1e-5)
    scaled = PretrainObjective(mask="present", rec_scale=128.0)
    _, pixels = pretraining_loss(model, pose, scaled, torch.Generator().manual_seed(4))
    assert float(pixels["rec_loss"]) == pytest.approx(128 * float(metrics["rec_loss"]), rel=1e-5)
    assert float(pixels["reg_loss"]) == pytest.approx(float(metrics["reg_loss"]), rel=1e-5)
