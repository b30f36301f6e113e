"""HMA (Hu et al., AAAI 2021): the paper's equations pinned on real code and small generated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import torchvision

from signpipe.clips import HandClips
from signpipe.finetune import finetune, phase_settings
from signpipe.handmodel import make_camera
from signpipe.handmodel.mano import MANO_FINGERTIPS, mirror_model
from signpipe.handmodel.asset import load_asset
from signpipe.keypoints import HAND_EDGES
from signpipe.keypoints.layout import FINGERS
from signpipe.models import model_spec
from signpipe.models.hma import (
    ALPHA, HMA, INITIAL_VIEW, MIDDLE_JOINTS, PALM_JOINTS, SPEC, TEMPORAL_GROUPS, TERMINAL_JOINTS, HandGraphConv,
    HMAConfig, build, hand_partitions, joint_weights, projected_pck, regularisation_loss, spatial_consistency_loss,
    temporal_consistency_loss,
)
from signpipe.predictions import read_predictions
from test_handmodel import pretend_chumpy, to_mano_vertex_layout, write_mano_pickle
from test_signbert import make_hands_shards

TINY = {"arch": "resnet18", "width": 8, "size": 16, "num_frames": 4, "gcn_layers": [[8, 1], [16, 2]],
        "temporal_kernel": 3}
"""A CPU-sized HMA: every part of the paper's model, a fraction of its channels."""


def tiny(num_classes: int = 4, **extra) -> HMA:
    torch.manual_seed(0)
    return build(num_classes, {**TINY, **extra})


def random_crops(batch: int = 2, length: int = 4, size: int = 16) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randint(0, 256, (batch, length, 2, size, size, 3), dtype=torch.uint8)


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_hands_shards(tmp_path_factory.mktemp("hma"), crop_size=32)


# --- eq. 1-3, 5: encoder, latent, hand model, projection ---------------------------------------

def test_latent_is_theta6_beta10_and_the_camera_and_joints_come_out_per_frame_and_hand():
    model = tiny().eval()
    assert model.decoder.latent.out_features == 6 + 10 + 9  # theta R^6, beta R^10, c_r (6D), c_o R^2, log c_s
    out = model(random_crops())
    assert out.latent.theta.shape == (2, 4, 2, 6) and out.latent.beta.shape == (2, 4, 2, 10)
    assert out.latent.camera.shape == (2, 4, 2, 9)
    assert out.joints3d.shape == (2, 4, 2, 21, 3) and out.joints2d.shape == (2, 4, 2, 21, 2)
    assert out.logits.shape == (2, 4)
    assert torch.allclose(out.joints3d[..., 0, :], torch.zeros(3), atol=1e-6)  # wrist at the origin
    assert [h.side for h in model.decoder.hands] == ["left", "right"] and model.decoder.num_pca == 6


def test_a_fresh_decoder_draws_an_upright_hand_of_crop_size():
    with torch.no_grad():
        out = tiny().eval()(random_crops())
    middle_tip = out.joints2d[..., 12, :] - out.joints2d[..., 0, :]
    assert (middle_tip[..., 1] < -0.5).all()  # fingers up in the image (y down)
    extent = (out.joints2d.amax(-2) - out.joints2d.amin(-2)).amax(-1)
    assert 0.5 < float(extent.median()) < 2.0


def test_projection_is_eq5_through_the_camera():
    model = tiny().eval()
    hand = model.decoder.hands[1]
    theta, beta = torch.randn(3, 6) * 0.5, torch.randn(3, 10) * 0.3
    angle = torch.tensor(0.7)
    rotation = torch.tensor([[torch.cos(angle), -torch.sin(angle), 0.0], [torch.sin(angle), torch.cos(angle), 0.0],
                             [0.0, 0.0, 1.0]]).expand(3, 3, 3)
    translation, scale = torch.tensor([[0.1, -0.2]]).expand(3, 2), torch.tensor([5.0, 6.0, 7.0])
    out = hand(theta, beta, make_camera(rotation, translation, scale), vertices=False)
    expected = scale[:, None, None] * (out.joints3d @ rotation.transpose(-1, -2))[..., :2] + translation[:, None]
    torch.testing.assert_close(out.joints2d, expected, atol=1e-5, rtol=1e-5)  # c_s Pi(c_r J3D) + c_o


def test_fingertips_are_the_named_vertices_on_mano_format_data(tmp_path, monkeypatch):
    right = to_mano_vertex_layout(load_asset())
    with monkeypatch.context() as patch:
        pretend_chumpy(patch)
        write_mano_pickle(right, tmp_path / "MANO_RIGHT.pkl")
        write_mano_pickle(mirror_model(right), tmp_path / "MANO_LEFT.pkl")
    model = tiny(mano_dir=str(tmp_path)).eval()
    tips = [MANO_FINGERTIPS[f] for f in FINGERS]
    assert tips == [734, 333, 443, 555, 678]
    for hand in model.decoder.hands:
        assert hand.licensed and hand.tip_vertices.tolist() == tips
        theta, beta = torch.randn(2, 6), torch.randn(2, 10) * 0.5
        camera = torch.zeros(2, 9)
        mesh = hand(theta, beta, camera)  # the full mesh: fingertip joints are those vertices
        assert mesh.vertices.shape == (2, 778, 3)
        torch.testing.assert_close(mesh.joints3d[:, [4, 8, 12, 16, 20]], mesh.vertices[:, tips])
        torch.testing.assert_close(hand(theta, beta, camera, vertices=False).joints3d, mesh.joints3d,
                                   atol=1e-5, rtol=1e-5)
    out = model(random_crops())
    assert out.joints3d.shape == (2, 4, 2, 21, 3) and torch.isfinite(out.logits).all()


def test_encoder_is_torchvision_resnet34_and_loads_a_local_checkpoint(tmp_path):
    reference = torchvision.models.resnet34(weights=None)  # never downloads
    path = tmp_path / "resnet34.pth"
    torch.save(reference.state_dict(), path)
    model = build(5, {**TINY, "arch": "resnet34", "width": 64, "checkpoint": str(path)})
    for name, value in model.encoder.resnet.state_dict().items():
        torch.testing.assert_close(value, reference.state_dict()[name])
    assert model.encoder.resnet.out_features == 512
    with pytest.raises(FileNotFoundError, match="finetune.hma.checkpoint: .*missing.pth does not exist"):
        build(5, {**TINY, "checkpoint": str(tmp_path / "missing.pth")})
    with pytest.raises(ValueError, match="finetune.hma.checkpoint: .* does not fit the network"):
        build(5, {**TINY, "checkpoint": str(path)})  # width 8 cannot take ResNet-34's weights


# --- eq. 4: inference module -----------------------------------------------------------------

def test_partitions_split_the_hand_graph_with_self_loops():
    parts = hand_partitions("spatial")
    assert parts.shape == (3, 21, 21)
    adjacency = torch.eye(21)
    for a, b in HAND_EDGES:
        adjacency[a, b] = adjacency[b, a] = 1
    torch.testing.assert_close(parts.sum(0), adjacency)  # sum_k A_k = A + I
    assert parts[0].diagonal().all() and parts[1, 2, 1] == 1 and parts[2, 1, 2] == 1  # root, parent, child
    both = hand_partitions("spatial", hands=2)
    assert both.shape == (3, 42, 42) and both[:, :21, 21:].sum() == 0  # no edge between the hands
    assert hand_partitions("uniform").shape == (1, 21, 21)


def test_graph_conv_averages_each_joints_neighbourhood_as_st_gcns_code():
    conv = HandGraphConv(3, 4, hand_partitions("spatial"))
    operators = conv.operators().detach()
    # the wrist: itself and five children (thumb CMC, four MCPs); a fingertip: itself and its DIP
    assert float(operators[0, 0, 0]) == pytest.approx(1 / 6) and float(operators[2, 0, 1]) == pytest.approx(1 / 6)
    assert float(operators[0, 8, 8]) == pytest.approx(1 / 2) and float(operators[1, 8, 7]) == pytest.approx(1 / 2)
    assert float(operators[1, 1, 0]) == pytest.approx(1 / 3) and float(operators[2, 7, 8]) == pytest.approx(1 / 3)
    torch.testing.assert_close(operators.sum(dim=(0, 2)), torch.ones(21))  # each joint: a mean of its neighbours
    assert float(operators.max()) == pytest.approx(1 / 2)  # no edge outweighs its siblings by accident
    with torch.no_grad():
        conv.importance.mul_(torch.rand(21, 21) + 0.5)
    torch.testing.assert_close(conv.operators(), operators * conv.importance)  # M scales the normalised graph
    x = torch.randn(1, 3, 2, 21)
    y = conv.conv(x).view(1, 3, 4, 2, 21)
    expected = sum(y[:, k] @ conv.operators()[k].T for k in range(3))  # Z = sum_k (D^-1 A_k o M) X W_k
    torch.testing.assert_close(conv(x), expected)


def test_edge_importance_starts_at_ones_and_is_learned():
    model = tiny()
    masks = [block.gcn.importance for block in model.inference.blocks]
    assert all(torch.equal(m, torch.ones(42, 42)) for m in masks)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = F.cross_entropy(model(random_crops(4)).logits, torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in masks)
    optimizer.step()
    assert all(not torch.equal(m, torch.ones(42, 42)) for m in masks)


def test_camera_scale_survives_the_papers_sgd_on_the_spatial_loss():
    """Eq. 6's L1 gradient in log c_s stays about the loss's size at the optimum and the FC's features
    are large, so at the paper's SGD step a free log c_s shrank the hands to their wrists (c_s 8 -> 1.6
    in two steps, < 0.01 in ten; docs/hma.md, Camera scale). SCALE_STEP keeps c_s near its start."""
    model = build(4, {**TINY, "width": 16, "size": 32})
    torch.manual_seed(2)
    crops = torch.randint(0, 256, (4, 4, 2, 32, 32, 3), dtype=torch.uint8)
    hand = model.decoder.hands[1]
    turned = torch.linalg.matrix_exp(torch.tensor([[0.0, 0.0, 1.2], [0.0, 0.0, 0.0], [-1.2, 0.0, 0.0]]))
    camera = make_camera(INITIAL_VIEW @ turned, torch.zeros(2), torch.tensor(8.0))
    target = hand(0.5 * torch.randn(4, 4, 2, 6), torch.zeros(10), camera, vertices=False).joints2d
    pose = torch.cat([target, torch.ones(*target.shape[:-1], 1)], dim=-1)  # a hand turned from the start's view
    optimizer = torch.optim.SGD(model.parameters(), lr=5e-3, momentum=0.9, weight_decay=1e-4)
    scales = []
    for _ in range(10):
        out = model(crops)
        scales.append(out.latent.camera[..., 8].detach().exp())
        loss = 0.1 * spatial_consistency_loss(out.joints2d, pose, reduction="frame", scale=8.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert min(float(s.min()) for s in scales) > 4.0  # never a hand shrunk to half its size, let alone its wrist
    assert torch.allclose(scales[0], torch.tensor(8.0), rtol=0.05)  # the start: the hand spans 3/4 of the crop


@pytest.mark.parametrize("frame", ["model", "camera", None])
def test_the_inference_module_sees_the_joints_before_c_r_unless_asked(frame):
    model = tiny(**({} if frame is None else {"joint_frame": frame})).eval()
    frame = frame or "camera"  # the default (docs/hma.md: Joint frame)
    crops = random_crops()
    with torch.no_grad():
        before = model(crops)
        model.decoder.latent.bias[16:22] += torch.tensor([0.0, 0.5, 0.0, 0.3, 0.0, 0.2])  # turn the camera c_r
        after = model(crops)
    torch.testing.assert_close(after.joints3d, before.joints3d)  # J3D does not depend on the camera
    assert not torch.allclose(after.joints2d, before.joints2d)
    assert torch.allclose(after.logits, before.logits) == (frame == "model")  # eq. 4 takes J3D (paper)


@pytest.mark.parametrize("fusion", ["graph", "logits"])
def test_both_hands_reach_the_logits(fusion):
    model = tiny(hand_fusion=fusion).eval()
    joints = torch.randn(2, 4, 2, 21, 3) * 0.05
    changed = joints.clone()
    changed[:, :, 0] += 0.05 * torch.randn(2, 4, 21, 3)  # the left hand only
    before, after = model.inference(joints), model.inference(changed)
    assert before.shape == (2, 4) and not torch.allclose(before, after)
    changed = joints.clone()
    changed[:, :, 1] += 0.05 * torch.randn(2, 4, 21, 3)
    assert not torch.allclose(before, model.inference(changed))


# --- eq. 6-9: losses ---------------------------------------------------------------------------

def test_loss_weights_are_the_papers_lambdas_and_the_optimiser_its_sgd():
    settings = phase_settings(SPEC, {})["main"]
    assert settings["loss_weights"] == {"ce": 1.0, "spa": 0.1, "tem": 0.1, "reg": 0.1}
    assert (settings["optimizer"], settings["lr"], settings["momentum"], settings["weight_decay"]) == \
        ("sgd", 5e-3, 0.9, 1e-4)
    assert (settings["schedule"], settings["lr_gamma"], settings["num_frames"]) == ("plateau", 0.1, 32)
    config = HMAConfig()
    assert (config.epsilon, config.w_beta, config.alpha, config.arch, config.size, config.num_pca) == \
        (0.4, 10.0, (1.0, 2.5, 4.0), "resnet34", 256, 6)


def test_alpha_per_named_joint_group():
    assert PALM_JOINTS == (0, 1, 5, 9, 13, 17)  # wrist, thumb CMC, finger MCPs
    assert MIDDLE_JOINTS == (2, 3, 6, 7, 10, 11, 14, 15, 18, 19)
    assert TERMINAL_JOINTS == (4, 8, 12, 16, 20)  # fingertips
    weights = joint_weights()
    assert weights[list(PALM_JOINTS)].eq(1.0).all() and weights[list(MIDDLE_JOINTS)].eq(2.5).all()
    assert weights[list(TERMINAL_JOINTS)].eq(4.0).all()
    assert sorted(j for g in TEMPORAL_GROUPS for j in g) == list(range(21)) and ALPHA == (1.0, 2.5, 4.0)
    with pytest.raises(ValueError, match="temporal_groups"):
        HMAConfig(temporal_groups=((0, 1), (2,), (3,)))


def test_temporal_loss_is_zero_when_static_and_a_hand_computed_value():
    static = torch.randn(1, 5, 2, 21, 3).expand(1, 5, 2, 21, 3)[:, :1].expand(1, 5, 2, 21, 3)
    assert float(temporal_consistency_loss(static)) == 0.0
    joints = torch.zeros(1, 2, 2, 21, 3)
    joints[0, 1, 0, 8] = torch.tensor([0.1, 0.2, 0.0])  # index tip (terminal, alpha 4) moves
    joints[0, 1, 1, 0] = torch.tensor([0.0, 0.0, 0.3])  # wrist (palm, alpha 1), other hand
    joints[0, 1, 1, 3] = torch.tensor([0.1, 0.0, 0.0])  # thumb IP (middle, alpha 2.5)
    expected = 4 * (0.01 + 0.04) + 1 * 0.09 + 2.5 * 0.01
    assert float(temporal_consistency_loss(joints)) == pytest.approx(expected)
    assert float(temporal_consistency_loss(joints, reduction="mean")) == pytest.approx(expected / (1 * 2 * 21))
    assert float(temporal_consistency_loss(joints, reduction="frame")) == pytest.approx(expected / 2)  # 2 hand poses
    assert float(temporal_consistency_loss(torch.cat([joints, joints]))) == pytest.approx(expected)  # per clip


def test_spatial_loss_is_wrist_relative_l1_with_epsilon_inclusive():
    torch.manual_seed(0)
    pose = torch.cat([torch.rand(1, 3, 2, 21, 2) * 2 - 1, torch.ones(1, 3, 2, 21, 1)], dim=-1)
    shifted = pose[..., :2] + torch.tensor([0.3, -0.7])  # same shape, translated
    assert float(spatial_consistency_loss(shifted, pose)) == pytest.approx(0.0, abs=1e-4)  # float rounding only
    one = torch.zeros(1, 1, 1, 21, 3)
    one[..., 2] = 0.0
    one[..., 0, 2] = 0.9            # the wrist
    one[..., 5, :] = torch.tensor([0.5, 0.5, 0.4])   # exactly epsilon: counts
    one[..., 6, :] = torch.tensor([0.5, 0.5, 0.39])  # below: ignored
    predicted = torch.zeros(1, 1, 1, 21, 2)
    predicted[..., 5, :] = torch.tensor([0.2, 0.9])
    predicted[..., 6, :] = torch.tensor([5.0, 5.0])
    assert float(spatial_consistency_loss(predicted, one)) == pytest.approx(0.3 + 0.4)  # ||.||_1
    assert float(spatial_consistency_loss(predicted, one, epsilon=0.41)) == 0.0
    two = torch.cat([one, one], dim=1)  # two frames: the paper sums, "frame" averages the hand poses
    both = predicted.expand(1, 2, 1, 21, 2)
    assert float(spatial_consistency_loss(both, two)) == pytest.approx(1.4)
    assert float(spatial_consistency_loss(both, two, reduction="frame")) == pytest.approx(0.7)
    one[..., 0, 2] = 0.2  # an unsure wrist: no origin, nothing counts
    assert float(spatial_consistency_loss(predicted, one)) == 0.0


def test_spa_scale_measures_the_spatial_loss_in_pixels_of_a_256_crop():
    pose = torch.zeros(1, 1, 1, 21, 3)
    pose[..., [0, 8], 2] = 1.0                                 # wrist and index tip confident
    pose[..., 8, :2] = torch.tensor([0.25, -0.5])              # normalised crop units
    predicted = torch.zeros(1, 1, 1, 21, 2)
    predicted[..., 8, :] = torch.tensor([0.25 + 1 / 128, -0.5 - 2 / 128])  # 1 px, 2 px off in a 256-px crop
    assert float(spatial_consistency_loss(predicted, pose)) == pytest.approx(3 / 128)
    assert float(spatial_consistency_loss(predicted, pose, scale=128.0)) == pytest.approx(3.0)  # pixels
    assert HMAConfig().spa_scale == 8.0  # pixels of a 16-px crop (docs/hma.md, Units)
    model = tiny(spa_scale=128.0)
    batch = {"crop": random_crops(), "pose": torch.cat([torch.rand(2, 4, 2, 21, 2) * 2 - 1, torch.ones(2, 4, 2, 21, 1)],
                                                      dim=-1), "label": torch.tensor([1, 2])}
    scaled = SPEC.losses(model, batch)[0]
    model.config = HMAConfig.from_settings({**TINY, "spa_scale": 1.0})
    plain = SPEC.losses(model, batch)[0]
    assert float(scaled["spa"]) == pytest.approx(128 * float(plain["spa"]), rel=1e-5)
    assert float(scaled["reg"]) == pytest.approx(float(plain["reg"]))  # only eq. 6 changes units


def test_regularisation_is_theta_squared_plus_w_beta_beta_squared():
    theta = torch.zeros(1, 2, 2, 6)
    beta = torch.zeros(1, 2, 2, 10)
    theta[0, 0, 0, :2] = torch.tensor([1.0, 2.0])
    beta[0, 1, 1, 3] = 0.5
    assert float(regularisation_loss(theta, beta)) == pytest.approx(5.0 + 10 * 0.25)
    assert float(regularisation_loss(theta, beta, w_beta=1.0, reduction="mean")) == pytest.approx((5.0 + 0.25) / 4)
    assert float(regularisation_loss(theta, beta, reduction="frame")) == pytest.approx(7.5 / 4)  # per frame and hand
    assert HMAConfig().reduction == "frame"


def test_losses_of_a_batch_are_named_and_reach_the_encoder():
    model = tiny()
    pose = torch.cat([torch.rand(2, 4, 2, 21, 2) * 2 - 1, torch.rand(2, 4, 2, 21, 1)], dim=-1)
    terms, logits = SPEC.losses(model, {"crop": random_crops(), "pose": pose, "label": torch.tensor([1, 2])})
    assert set(terms) == {"ce", "spa", "tem", "reg"} and logits.shape == (2, 4)
    for name in ("spa", "tem", "reg"):
        model.zero_grad()
        terms[name].backward(retain_graph=True)
        assert model.encoder.resnet.conv1.weight.grad.abs().sum() > 0, name


@pytest.mark.parametrize("reduction", ["frame", "mean"])
def test_the_configs_loss_keys_reach_the_losses(reduction):
    """epsilon, alpha, w_beta, reduction and spa_scale of finetune.hma reach eq. 6-8: each term equals its
    function called with the config's values, which differ from the defaults (or 0, 1) here."""
    keys = {"epsilon": 0.7, "alpha": [3.0, 0.5, 2.0], "w_beta": 2.5, "reduction": reduction, "spa_scale": 4.0}
    model = tiny(**keys)
    torch.manual_seed(2)
    pose = torch.cat([torch.rand(2, 4, 2, 21, 2) * 2 - 1, torch.rand(2, 4, 2, 21, 1)], dim=-1)
    pose[..., 0, 2] = 0.9  # confident wrists: joints between 0 and 0.7 decide what counts
    batch = {"crop": random_crops(), "pose": pose, "label": torch.tensor([1, 2])}
    terms = SPEC.losses(model, batch)[0]
    with torch.no_grad():
        out = model(batch["crop"])
        expected = {"spa": spatial_consistency_loss(out.joints2d, pose, 0.7, reduction=reduction, scale=4.0),
                    "tem": temporal_consistency_loss(out.joints3d, (3.0, 0.5, 2.0), reduction=reduction),
                    "reg": regularisation_loss(out.latent.theta, out.latent.beta, 2.5, reduction=reduction)}
        defaults = {"spa": spatial_consistency_loss(out.joints2d, pose, 0.0, reduction=reduction, scale=4.0),
                    "tem": temporal_consistency_loss(out.joints3d, reduction=reduction),
                    "reg": regularisation_loss(out.latent.theta, out.latent.beta, 1.0, reduction=reduction)}
    for name, value in expected.items():
        assert float(terms[name].detach()) == pytest.approx(float(value), rel=1e-5), name
        assert float(value) != pytest.approx(float(defaults[name]), rel=1e-3), name  # the key matters here


def test_pck_counts_wrist_relative_joints_within_the_threshold():
    pose = torch.zeros(1, 21, 3)
    pose[..., 2] = 1.0
    predicted = torch.zeros(1, 21, 2) + 1.0  # translated: every joint right
    predicted[0, 3] += torch.tensor([0.5, 0.0])
    assert projected_pck(predicted, pose, threshold=0.4) == (19, 20)


# --- input (the crops' windows and flips: test_clips.py) -----------------------------------------

def test_hand_clips_from_hands_shards(shards):
    data = SPEC.dataset({"hands": shards}, "train", True, {**TINY, "num_frames": 6})
    assert isinstance(data, HandClips) and model_spec("hma") is SPEC and SPEC.stages == ("hands",)
    sample = data[0]
    assert sample["crop"].shape == (6, 2, 16, 16, 3) and sample["crop"].dtype == torch.uint8
    assert sample["pose"].shape == (6, 2, 21, 3)
    seen = sample["pose"][..., 2] > 0
    assert seen.any() and sample["pose"][..., :2][seen].abs().max() < 3
    for epoch in range(3):  # drawn from (seed, epoch, item): the same sample twice
        data.set_epoch(epoch)
        first = data[0]
        second = data[0]
        assert torch.equal(first["crop"], second["crop"]) and torch.equal(first["pose"], second["pose"])
    test = SPEC.dataset({"hands": shards}, "test", False, TINY)
    assert torch.equal(test[0]["crop"], test[0]["crop"]) and test[0]["crop"].shape[0] == 4


def test_finetune_trains_hma_logs_every_term_and_draws_the_hands(shards, tmp_path):
    cfg = {"device": "cpu", "epochs": 1, "batch_size": 4, "hma": TINY}
    result = finetune("hma", {"hands": shards}, tmp_path, 4, cfg)
    assert set(result) == {"val_acc", "test_acc"}
    log = pd.read_csv(tmp_path / "log.csv")
    for column in ("ce_loss", "spa_loss", "tem_loss", "reg_loss", "train_loss", "val_loss"):
        assert column in log and np.isfinite(log[column]).all(), column
    row = log.iloc[-1]
    weighted = row["ce_loss"] + 0.1 * (row["spa_loss"] + row["tem_loss"] + row["reg_loss"])  # eq. 9, lambda = 0.1
    assert row["train_loss"] == pytest.approx(weighted, rel=0.05)
    predictions, _ = read_predictions(tmp_path / "predictions.h5")
    assert predictions["test"].logits.shape[1] == 4
    figure = tmp_path / "figures" / "hands.png"
    assert figure.is_file() and figure.stat().st_size > 1000
    assert (tmp_path / "curves.png").is_file()


def test_the_validation_loss_the_plateau_watches_is_eq9_on_the_val_split(shards, tmp_path):
    """val_loss (what the plateau schedule steps on) is eq. 9 on the val split, the loss the paper
    trains with, and val_ce_loss its cross-entropy: the cross-entropy alone sat at chance while the
    decoder still fitted the hands and decayed the lr mid-fit."""
    cfg = {"device": "cpu", "epochs": 1, "batch_size": 4, "schedule": "plateau", "hma": TINY}
    finetune("hma", {"hands": shards}, tmp_path, 4, cfg)
    row = pd.read_csv(tmp_path / "log.csv").iloc[-1]
    model = build(4, TINY)
    model.load_state_dict(torch.load(tmp_path / "checkpoint.pt", weights_only=True)["model"])
    model.eval()
    totals, ces, sizes = [], [], []
    with torch.no_grad():
        for batch in torch.utils.data.DataLoader(SPEC.dataset({"hands": shards}, "val", False, TINY), batch_size=4):
            terms, logits = SPEC.losses(model, batch)
            totals.append(terms["ce"] + 0.1 * (terms["spa"] + terms["tem"] + terms["reg"]))   # eq. 9, lambda = 0.1
            ces.append(F.cross_entropy(logits, batch["label"], reduction="sum"))
            sizes.append(len(batch["label"]))
    assert row["val_loss"] == pytest.approx(float(sum(t * n for t, n in zip(totals, sizes)) / sum(sizes)), rel=1e-4)
    assert row["val_ce_loss"] == pytest.approx(float(sum(ces) / sum(sizes)), rel=1e-4)
    assert row["val_loss"] > row["val_ce_loss"]
