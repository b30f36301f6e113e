"""Pretrained weights from local files: GLE-Net's inflation (2D ResNet -> P3D), HMA's ResNet encoder,
rgb3d's torchvision video ResNets, the ``init`` record and the random-init warning.

Every reference network is torchvision's, built with ``weights=None`` (random, nothing downloaded)
and saved to a temporary file, as a user saves the ImageNet or Kinetics weights.
"""

from __future__ import annotations

import logging

import pytest
import torch
import torchvision
from torchvision.models import video

from signpipe.finetune import finetune
from signpipe.models import glenet, hma, rgb3d
from signpipe.models.glenet import DEPTHS, GLENet, GLENetConfig
from signpipe.models.pretrained import inflate_conv1
from signpipe.predictions import read_predictions
from test_glenet import TINY as GLENET_TINY, frames_shard


def saved(net: torch.nn.Module, path) -> str:
    torch.save(net.state_dict(), path)
    return str(path)


def resnet2d_features(net: torchvision.models.ResNet, images: torch.Tensor) -> torch.Tensor:
    """res5 (layer4) features of a torchvision ResNet: (N, C, h, w)."""
    x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def used(net: torch.nn.Module) -> torch.nn.Module:
    """``net`` with BN scales, biases and running statistics of a trained net (not BN's fresh 1, 0, 0, 1):
    random affine parameters, statistics averaged over a batch of random images."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.reset_running_stats()
                module.momentum = None                                                  # a cumulative average
        net.train()(torch.randn(8, 3, 64, 64))
    return net.eval()


@pytest.mark.parametrize("depth", [50, 18])
def test_an_inflated_torchvision_resnet_gives_the_2d_features_per_frame_in_both_streams(tmp_path, depth):
    torch.manual_seed(depth)
    reference = used(getattr(torchvision.models, f"resnet{depth}")(weights=None))
    model = glenet.build(7, {"depth": depth, "checkpoint": saved(reference, tmp_path / "resnet.pth")})
    assert model.init == "imagenet"
    reference, model = reference.double().eval(), model.double().eval()
    frame = torch.randn(1, 3, 64, 64, dtype=torch.float64)
    clip = frame.unsqueeze(2).repeat(1, 1, 16, 1, 1)                                    # T = 16 identical frames
    with torch.no_grad():
        expected = resnet2d_features(reference, frame)[0]                               # (C, 2, 2)
        pool2 = model.shared(clip)
        streams = [model.global_stream(pool2)[1]["res5"], model.local_stream(pool2)[1]["res5"]]
    for res5 in streams:                                                                # (1, C, T/4, 2, 2)
        assert res5.shape[2] == 4
        for t in (2,):  # the interior frame: conv1 and the time pools never read temporal padding for it
            assert (res5[0, :, t] - expected).abs().max() < 1e-4
    # the global stream's enhancement starts as the identity (beta = 0), so its logits see the same features
    assert model.global_enhancement.beta.item() == 0.0


def test_conv1_is_spread_over_five_frames_and_3x3_convs_become_spatial_then_identity_in_time(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet18(weights=None)
    model = glenet.build(3, {"depth": 18, "checkpoint": saved(reference, tmp_path / "r18.pth")})
    conv1 = model.shared.conv1[0].weight                                                # (64, 3, 5, 7, 7)
    torch.testing.assert_close(conv1.sum(2), reference.conv1.weight)
    torch.testing.assert_close(conv1, inflate_conv1(reference.conv1.weight))
    p3d = model.global_stream.res3[0].body[0]                                          # layer2.0.conv1 (stride 2)
    torch.testing.assert_close(p3d[0].weight[:, :, 0], reference.layer2[0].conv1.weight)
    temporal = p3d[3].weight[:, :, :, 0, 0]                                             # (C, C, 3)
    assert torch.equal(temporal[:, :, 1], torch.eye(temporal.shape[0])) and not temporal[:, :, [0, 2]].any()
    torch.testing.assert_close(model.local_stream.res5[1].body[3][0].weight[:, :, 0], reference.layer4[1].conv2.weight)


def test_glenet_takes_its_own_two_stream_state_dict_and_refuses_another_depth(tmp_path):
    source = GLENet(5, GLENetConfig(**GLENET_TINY))
    torch.save({"model": source.state_dict()}, tmp_path / "run.pt")                      # a run's checkpoint.pt
    model = glenet.build(3, {**GLENET_TINY, "checkpoint": str(tmp_path / "run.pt")})
    assert model.init == "file"
    torch.testing.assert_close(model.local_stream.res3[0].body[0][0].weight, source.local_stream.res3[0].body[0][0].weight)
    with pytest.raises(ValueError, match="finetune.glenet.checkpoint: .*another depth"):
        glenet.build(3, {"depth": 50, "checkpoint": saved(torchvision.models.resnet18(weights=None), tmp_path / "r.pth")})
    assert DEPTHS[50][0] == "bottleneck"


def test_hma_encoder_is_an_exact_copy_of_torchvision_resnet34(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet34(weights=None)
    model = hma.build(4, {"arch": "resnet34", "checkpoint": saved(reference, tmp_path / "resnet34.pth")})
    assert model.init == "imagenet"
    images = torch.randn(3, 3, 64, 64)
    reference.eval(), model.eval()
    with torch.no_grad():
        expected = torch.flatten(reference.avgpool(resnet2d_features(reference, images)), 1)
        assert torch.equal(model.encoder.resnet(images), expected)
    with pytest.raises(FileNotFoundError, match="finetune.hma.checkpoint: .*nope.pth does not exist"):
        hma.build(4, {"checkpoint": str(tmp_path / "nope.pth")})


@pytest.mark.parametrize("arch", rgb3d.ARCHS)
def test_rgb3d_loads_torchvision_video_resnets_but_their_classifier(tmp_path, arch):
    torch.manual_seed(0)
    reference = getattr(video, arch)(weights=None)                                     # Kinetics-400's 400 classes
    model = rgb3d.build(5, {"arch": arch, "checkpoint": saved(reference, tmp_path / f"{arch}.pth")})
    assert model.init == "kinetics" and model.net.fc.out_features == 5
    clip = torch.randn(1, 3, 4, 32, 32)
    reference.eval(), model.eval()
    reference.fc = model.net.fc = torch.nn.Identity()
    with torch.no_grad():
        assert torch.equal(model.net(clip), reference(clip))
    other = "mc3_18" if arch != "mc3_18" else "r3d_18"
    with pytest.raises(ValueError, match=f"finetune.rgb3d.checkpoint: .*{arch}.pth does not fit the network"):
        rgb3d.build(5, {"arch": other, "checkpoint": str(tmp_path / f"{arch}.pth")})


def test_a_paper_model_from_random_weights_warns_and_predictions_record_the_init(tmp_path, caplog):
    path = frames_shard(tmp_path / "0.h5")
    cfg = {"epochs": 1, "batch_size": 4, "device": "cpu", "seed": 0, "rgb3d": {"size": 16, "num_frames": 4}}
    with caplog.at_level(logging.WARNING):
        finetune("rgb3d", [path], tmp_path / "random", 3, cfg)
    assert "rgb3d: no finetune.rgb3d.checkpoint, so it trains from random weights" in caplog.text
    assert "R3D_18_Weights.KINETICS400_V1" in caplog.text
    assert read_predictions(tmp_path / "random" / "predictions.h5")[1]["init"] == "random"
    caplog.clear()
    weights = saved(video.r3d_18(weights=None), tmp_path / "r3d_18.pth")
    with caplog.at_level(logging.WARNING):
        finetune("rgb3d", [path], tmp_path / "kinetics", 3, {**cfg, "rgb3d": {**cfg["rgb3d"], "checkpoint": weights}})
    assert "random weights" not in caplog.text
    assert read_predictions(tmp_path / "kinetics" / "predictions.h5")[1]["init"] == "kinetics"


def test_hma_encoder_takes_a_torchvision_resnet50(tmp_path):
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None).eval()
    model = hma.build(4, {"arch": "resnet50", "checkpoint": saved(reference, tmp_path / "resnet50.pth")}).eval()
    assert model.init == "imagenet" and model.encoder.resnet.out_features == 2048
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = torch.flatten(reference.avgpool(resnet2d_features(reference, images)), 1)
        assert torch.equal(model.encoder.resnet(images), expected)
