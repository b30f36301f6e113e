"""SignBERT's pre-training objective by value: eq. 6 (L = L_rec + lambda L_reg per chosen token)
and eq. 8's temporal term with both hands, each recomputed token by token from its definition;
eq. 7 with 0/1 scores (MediaPipe), where its confidence weighting is inert and the stage says so."""

import json
import shutil

import h5py
import pytest
import torch
from torch import nn

from signpipe.finetune import finetune, hand_model_used
from signpipe.models.signbert import HandLatent, SignBERT, SignBERTConfig
from signpipe.predictions import read_predictions
from signpipe.pretrain import (
    FEASIBILITY, PretrainObjective, binary_scores, mask_tokens, pretrain, pretraining_loss, reconstruction_loss,
    regularisation_loss,
)
from test_signbert import make_hands_shards

SMALL = SignBERTConfig(hidden=16, layers=1, heads=2, feedforward=32, gcn_channels=8, dropout=0.0)


class Recorder(nn.Module):
    """Runs a SignBERT and keeps the (masked) pose it was given and the latent it returned."""

    def __init__(self, model: SignBERT) -> None:
        super().__init__()
        self.module = model

    def forward(self, pose, *rest):
        self.pose, self.latent = pose, self.module(pose, *rest)
        return self.latent


def token_regulariser(theta, beta, previous_beta, w_beta, w_delta):
    """Eq. 8 of one token: |theta_t|^2 + w_beta |beta_t|^2 + w_delta |beta_t - beta_(t-1)|^2 (no change at t = 0)."""
    change = 0.0 if previous_beta is None else w_delta * float(((beta - previous_beta) ** 2).sum())
    return float((theta ** 2).sum()) + w_beta * float((beta ** 2).sum()) + change


def test_eq6_total_is_rec_plus_lambda_reg_per_chosen_token():
    torch.manual_seed(0)
    batch, length = 2, 5
    pose = torch.rand(batch, length, 2, 21, 3) * 2 - 1
    pose[..., 2] = torch.rand(batch, length, 2, 21)  # graded scores: some joints fall below epsilon
    objective = PretrainObjective(lam=0.25)
    model = Recorder(SignBERT(SMALL)).eval()
    total, terms = pretraining_loss(model, pose, objective, torch.Generator().manual_seed(3))

    masking = mask_tokens(pose, objective, torch.Generator().manual_seed(3))  # the same draws
    assert torch.equal(masking.pose, model.pose), "pretraining_loss masks with mask_tokens' draws"
    latent = model.latent
    with torch.no_grad():
        predicted = model.module.decoder.joints2d(latent)  # (B, T, 2, 21, 2)
    rec = reg = 0.0
    for b, t, h in masking.chosen.nonzero().tolist():
        score = pose[b, t, h, :, 2]
        distance = (predicted[b, t, h] - pose[b, t, h, :, :2]).abs().sum(-1)
        rec += float((torch.where(score > objective.epsilon, score, torch.zeros_like(score)) * distance).sum())
        reg += token_regulariser(latent.theta[b, t, h].detach(), latent.beta[b, t, h].detach(),
                                 latent.beta[b, t - 1, h].detach() if t else None, objective.w_beta, objective.w_delta)
    chosen = int(masking.chosen.sum())
    assert chosen == batch * length  # half of the 2T tokens of each clip
    assert terms["rec_loss"] == pytest.approx(rec / chosen, rel=1e-4)
    assert terms["reg_loss"] == pytest.approx(reg / chosen, rel=1e-4)
    assert reg / chosen > 0.01 * rec / chosen  # lambda visibly matters in the total
    assert float(total.detach()) == pytest.approx((rec + objective.lam * reg) / chosen, rel=1e-4)


def test_eq8_temporal_term_differences_each_hand_over_time_not_across_hands():
    """Left beta grows by 1 per frame along one axis, right beta is constant and far from it:
    only the left hand changes over time; the two hands differ at every frame."""
    length = 3
    theta = torch.zeros(1, length, 2, 25)
    beta = torch.zeros(1, length, 2, 10)
    beta[0, :, 0, 0] = torch.arange(length, dtype=torch.float32)  # left: 0, 1, 2
    beta[0, :, 1, 1] = 5.0  # right: 5 at every frame
    latent = HandLatent(theta, beta, torch.zeros(1, length, 2, 9))
    every = torch.ones(1, length, 2, dtype=torch.bool)
    # magnitudes: w_beta (0 + 1 + 4) left + w_beta 3 * 25 right; change: w_delta (1 + 1) left, 0 right
    assert float(regularisation_loss(latent, every, 10.0, 100.0)) == pytest.approx(10 * 5 + 10 * 75 + 100 * 2)
    left_last = torch.zeros(1, length, 2, dtype=torch.bool)
    left_last[0, 2, 0] = True  # the change is counted at a chosen t >= 1, against t - 1 of the same hand
    assert float(regularisation_loss(latent, left_last, 10.0, 100.0)) == pytest.approx(10 * 4 + 100 * 1)
    right_first = torch.zeros(1, length, 2, dtype=torch.bool)
    right_first[0, 1, 1] = True
    assert float(regularisation_loss(latent, right_first, 10.0, 100.0)) == pytest.approx(10 * 25)


def test_eq7_with_scores_of_0_or_1_is_a_plain_l1_over_detected_joints_whatever_epsilon():
    torch.manual_seed(1)
    detected = torch.rand(4, 21, 3) * 2 - 1
    detected[..., 2] = (torch.rand(4, 21) > 0.3).float()  # found (1) or not (0), as MediaPipe's hands
    predicted = torch.rand(4, 21, 2) * 2 - 1
    plain = float(((predicted - detected[..., :2]).abs().sum(-1) * detected[..., 2]).sum())
    for epsilon in (0.0, 0.3, 0.5, 0.9):
        assert float(reconstruction_loss(predicted, detected, epsilon)) == pytest.approx(plain, rel=1e-6)


@pytest.fixture(scope="module")
def binary_shards(tmp_path_factory):
    """Hands shards of a tiny synthetic corpus with every score set to 1 where a joint was found."""
    root = tmp_path_factory.mktemp("binary")
    graded = make_hands_shards(root / "graded")
    assert not binary_scores(graded)  # the synthetic detector's scores are graded
    paths = []
    for path in graded:
        copy = root / path.name
        shutil.copy(path, copy)
        with h5py.File(copy, "r+") as f:
            pose = f["pose"][...]
            pose[..., 2] = (pose[..., 2] > 0).astype(pose.dtype)
            f["pose"][...] = pose
        paths.append(copy)
    return paths


def test_pretrain_says_once_that_eq7_is_inert_and_records_the_open_hand(binary_shards, tmp_path, caplog):
    assert binary_scores(binary_shards)
    out = tmp_path / "pretrain" / "signbert.pt"
    small = {"hidden": 16, "layers": 1, "heads": 2, "feedforward": 32, "gcn_channels": 8}
    pretrain(binary_shards, out, {"epochs": 1, "batch_size": 4, "num_frames": 4, "device": "cpu", "model": small,
                                  "hand_model": {"mano_dir": None}})
    assert caplog.text.count("confidence weighting and epsilon = 0.5 change nothing") == 1
    assert caplog.text.count("open hand (not learned from scans) replaces MANO") == 1
    assert json.loads((out.parent / FEASIBILITY).read_text())["binary_scores"] is True
    assert torch.load(out, weights_only=True)["hand_model"] == "open"
    finetune("signbert", binary_shards, tmp_path / "signbert", 4,
             {"epochs": 1, "batch_size": 4, "num_frames": 4, "device": "cpu", "model": small}, pretrained=out)
    assert read_predictions(tmp_path / "signbert" / "predictions.h5")[1]["hand_model"] == "open"
    finetune("signbert", binary_shards, tmp_path / "scratch", 4,
             {"epochs": 1, "batch_size": 4, "num_frames": 4, "device": "cpu", "model": small})
    assert "hand_model" not in read_predictions(tmp_path / "scratch" / "predictions.h5")[1]  # no hand model involved
    assert hand_model_used(SignBERT(SMALL)) == "open"  # a model that decodes through the hand model itself
