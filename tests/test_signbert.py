"""SignBERT's model: hand graph, the three embeddings, post-norm encoder, decoder and head, token loader."""

import numpy as np
import pandas as pd
import pytest
import torch

from signpipe.data import ShardDataset
from signpipe.datasets import write_manifest
from signpipe.decode import decode_shard
from signpipe.hands import crop_shard
from signpipe.keypoints import HAND_EDGES
from signpipe.models import model_spec
from signpipe.models.signbert import (
    SPEC, HandTokens, SignBERT, SignBERTConfig, hand_graph, mirror_boxes, mirror_hands, normalise_pose,
    present_hands, save_encoder, temporal_embedding,
)
from signpipe.pose import extract_shard
from signpipe.synth import make_corpus

TINY = SignBERTConfig(hidden=32, layers=1, heads=2, feedforward=64, gcn_channels=16, dropout=0.0)


def make_hands_shards(root, crop_size=16, **corpus):
    """Two hands shards of a tiny synthetic corpus (4 classes, 3 signers: train, val and test;
    ``corpus``: more ``make_corpus`` arguments)."""
    make_corpus(root / "corpus", **{"num_classes": 4, "signers": 3, "repeats": 1, "frames": 12, "width": 96,
                                    "height": 72, "progress": False, **corpus})
    write_manifest({"adapter": "synthetic", "num_shards": 2}, root / "manifest.csv", root / "missing.csv",
                   corpus_dir=root / "corpus")
    paths = []
    for shard in (0, 1):
        frames, keypoints, hands = (root / f"{stage}{shard}.h5" for stage in ("frames", "keypoints", "hands"))
        decode_shard(root / "manifest.csv", shard, frames, root / "failures.csv", short_side=48, progress=False)
        extract_shard(root / "manifest.csv", frames, keypoints, root / "quality.csv", {"backend": "sidecar"},
                      progress=False)
        crop_shard(frames, keypoints, hands, crop_size=crop_size, progress=False)
        paths.append(hands)
    return paths


def random_pose(batch=2, length=6):
    torch.manual_seed(0)
    pose = torch.rand(batch, length, 2, 21, 3) * 2 - 1
    pose[..., 2] = torch.rand(batch, length, 2, 21)
    return pose


def test_hand_graph_has_bones_and_symmetrical_links():
    a = hand_graph()
    assert a.shape == (21, 21) and torch.allclose(a, a.T)
    for parent, child in HAND_EDGES:
        assert a[parent, child] > 0
    assert a[1, 5] > 0 and a[8, 12] > 0 and a[17, 20] == 0  # thumb-index base, index-middle tip; no shortcut
    assert a[4, 20] == 0  # thumb tip and pinky tip are not neighbours
    assert torch.linalg.eigvalsh(a).max() == pytest.approx(1.0, abs=1e-5)  # D^-1/2 (A + I) D^-1/2


def test_normalise_pose_maps_the_crop_to_minus_one_one():
    pose = torch.tensor([[0.0, 0.0, 0.7], [8.0, 8.0, 0.2], [16.0, 4.0, 1.0]])
    np.testing.assert_allclose(normalise_pose(pose, 16), [[-1, -1, 0.7], [0, 0, 0.2], [1, -0.5, 1.0]])


def test_shapes_of_encoder_decoder_and_head():
    pose = random_pose()
    pretraining = SignBERT(TINY).eval()
    assert pretraining.encoder(pose).shape == (2, 6, 2, 32)
    latent = pretraining(pose)
    assert latent.theta.shape == (2, 6, 2, 25) and latent.beta.shape == (2, 6, 2, 10)
    assert latent.camera.shape == (2, 6, 2, 9)
    joints = pretraining.decoder.joints2d(latent)
    assert joints.shape == (2, 6, 2, 21, 2) and torch.isfinite(joints).all()
    # A fresh decoder draws a hand of about half the normalised crop, not a dot or a giant.
    extent = joints.amax(-2) - joints.amin(-2)
    assert 0.2 < float(extent.detach().max(-1).values.median()) < 2.0
    classifier = SignBERT(TINY, num_classes=5).eval()
    assert classifier(pose).shape == (2, 5) and classifier.decoder is None
    weights = classifier.head.weights(classifier.encoder(pose))
    assert weights.shape == (2, 6, 2) and torch.allclose(weights.sum((1, 2)), torch.ones(2))


def test_chirality_differs_per_hand_and_temporal_embedding_is_shared_by_both_hands():
    encoder = SignBERT(TINY).encoder
    pose = random_pose(1, 5)
    pose[:, :, 1] = pose[:, :, 0]  # the same gesture in both hands
    pose[:, 1] = pose[:, 0]  # and in frames 0 and 1
    tokens = encoder.embed(pose)
    chirality = encoder.chirality_embedding.weight
    assert not torch.allclose(tokens[:, :, 0], tokens[:, :, 1])
    torch.testing.assert_close(tokens[:, :, 0] - chirality[0], tokens[:, :, 1] - chirality[1])
    torch.testing.assert_close(tokens[:, :, 0] - tokens[:, :, 1], (chirality[0] - chirality[1]).expand(1, 5, 32))
    assert not torch.allclose(tokens[:, 0], tokens[:, 1])  # same gesture, different moments
    table = temporal_embedding(5, 32)
    torch.testing.assert_close(tokens[0, 1, 0] - tokens[0, 0, 0], table[1] - table[0])


def test_encoder_is_post_norm_and_attends_across_hands_and_time():
    model = SignBERT(SignBERTConfig(hidden=32, layers=3, heads=2, feedforward=64, gcn_channels=16, dropout=0.0)).eval()
    assert len(model.encoder.transformer.layers) == 3
    assert all(not layer.norm_first for layer in model.encoder.transformer.layers)
    pose = random_pose(1, 4)
    changed = pose.clone()
    changed[0, 3, 1] = 0  # the right hand of the last frame only
    before, after = model.encoder(pose), model.encoder(changed)
    assert not torch.allclose(before[0, 0, 0], after[0, 0, 0])  # the left hand of frame 0 sees it


def test_hand_tokens_read_normalised_poses(tmp_path):
    shards = make_hands_shards(tmp_path)
    data = SPEC.dataset({"hands": shards}, "train", True, {"num_frames": 8})
    assert isinstance(data, HandTokens) and data.crop_size == 16 and set(data.index["split"]) == {"train"}
    sample = data[0]
    assert sample["pose"].shape == (8, 2, 21, 3)
    items = np.array([0])
    raw = torch.from_numpy(ShardDataset.read(data, items, data.frames(items))["pose"][0])  # before normalising
    torch.testing.assert_close(sample["pose"], normalise_pose(raw, 16))
    assert model_spec("signbert") is SPEC and SPEC.stages == ("hands",)
    batch = torch.utils.data.default_collate([data[0], data[1]])
    assert SPEC.forward(SPEC.build(4, {"model": {"hidden": 32, "layers": 1, "heads": 2}}), batch).shape == (2, 4)


def test_undetected_joints_look_like_masked_ones():
    from signpipe.models.signbert import normalise_pose

    pose = torch.tensor([[[64.0, 0.0, 0.9], [-300.0, -250.0, 0.0]]])  # a joint and an undetected one
    out = normalise_pose(pose, crop_size=128)
    torch.testing.assert_close(out[0, 0], torch.tensor([0.0, -1.0, 0.9]))
    torch.testing.assert_close(out[0, 1], torch.zeros(3))


def test_an_absent_hand_has_its_own_input_state_unlike_a_masked_one():
    encoder = SignBERT(TINY).encoder
    pose = random_pose(1, 4)
    pose[0, 2, 1] = 0  # the right hand of frame 2: nothing there, or masked (all zeros)
    assert not present_hands(pose)[0, 2, 1] and present_hands(pose).sum() == 7
    absent = encoder.embed(pose)
    masked = encoder.embed(pose, present=torch.ones(1, 4, 2, dtype=torch.bool))
    assert not torch.allclose(absent[0, 2, 1], masked[0, 2, 1])
    torch.testing.assert_close(absent[0, 2, 1] - masked[0, 2, 1],
                               encoder.absent_embedding - encoder.gesture_state_embedding(pose[0, 2, 1]))
    keep = torch.ones(1, 4, 2, dtype=torch.bool)
    keep[0, 2, 1] = False
    torch.testing.assert_close(absent[keep], masked[keep])  # every other token alike


def test_padding_frames_change_nothing_and_get_no_head_weight():
    model = SignBERT(TINY, num_classes=3).eval()
    pose = random_pose(1, 6)
    valid = torch.tensor([[True] * 4 + [False] * 2])
    other = pose.clone()
    other[0, 4:] = random_pose(1, 2)[0] * 3  # anything in the padding
    torch.testing.assert_close(model.encoder(pose, valid=valid)[0, :4], model.encoder(other, valid=valid)[0, :4])
    torch.testing.assert_close(model(pose, valid=valid), model(other, valid=valid))
    weights = model.head.weights(model.encoder(pose, valid=valid), valid).detach()
    assert (weights[0, 4:] == 0).all() and float(weights.sum()) == pytest.approx(1.0)


def test_per_hand_head_pools_each_hand_over_time_and_concatenates():
    model = SignBERT(TINY, num_classes=5, head="per_hand").eval()
    features = model.encoder(random_pose(2, 6))
    weights = model.head.weights(features)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 2))  # a softmax over time per hand
    assert model.head.classifier.in_features == 2 * TINY.hidden
    pooled = (weights[..., None] * features).sum(1)  # (B, 2, hidden): left, right
    torch.testing.assert_close(model.head(features), model.head.classifier(pooled.flatten(1)))
    with pytest.raises(ValueError, match="head='both'"):
        SignBERT(TINY, num_classes=5, head="both")


def test_mirroring_flips_x_and_swaps_the_hands():
    pose = random_pose(1, 3)
    mirrored = torch.from_numpy(mirror_hands(pose.numpy()))
    torch.testing.assert_close(mirrored[:, :, 0, :, 0], -pose[:, :, 1, :, 0])  # the new left is the old right
    torch.testing.assert_close(mirrored[:, :, 1, :, 1:], pose[:, :, 0, :, 1:])  # y and score unchanged
    torch.testing.assert_close(torch.from_numpy(mirror_hands(mirrored.numpy())), pose)
    box = np.array([[[10.0, 5, 30, 25], [50, 6, 80, 36]]])
    np.testing.assert_array_equal(mirror_boxes(box), [[[-80, 6, -50, 36], [-30, 5, -10, 25]]])


def test_sizes_have_one_source_and_a_checkpoint_that_disagrees_is_an_error(tmp_path):
    sizes = {"hidden": 32, "layers": 1, "heads": 2, "feedforward": 64, "gcn_channels": 16}
    scratch = SPEC.build(4, {"model": sizes})
    assert scratch.encoder.arch.hidden == 32 and scratch.encoder.arch.gcn_channels == 16
    save_encoder(tmp_path / "signbert.pt", SignBERT(TINY))
    pretrained = SPEC.build(4, {"model": sizes, "pretrained": tmp_path / "signbert.pt", "dropout": 0.3})
    assert pretrained.encoder.arch == scratch.encoder.arch.__class__(**{**sizes, "dropout": 0.3})
    with pytest.raises(ValueError, match=r"pretrain.model.layers is 3 in the config but 1 in .*signbert.pt"):
        SPEC.build(4, {"model": {**sizes, "layers": 3}, "pretrained": tmp_path / "signbert.pt"})
    with pytest.raises(ValueError, match=r"finetune.signbert.hidden: .* pretrain.model"):
        SPEC.build(4, {"hidden": 32})


def test_hand_tokens_pad_short_clips_and_mirror_in_training(tmp_path, caplog):
    shards = make_hands_shards(tmp_path)
    with caplog.at_level("INFO"):
        padded = HandTokens(shards, "train", 32, short_clips="pad")
    assert "train: 4 of 4 videos shorter than 32 frames, padded (masked)" in caplog.text
    sample = padded[0]
    length = sample["length"]
    assert sample["valid"].sum() == length and sample["valid"][:length].all()
    np.testing.assert_array_equal(sample["frames"][:length], np.arange(length))
    plain = HandTokens(shards, "train", 8, train=True)
    flipped = HandTokens(shards, "train", 8, train=True, mirror=1.0)
    assert not plain[0]["mirrored"] and flipped[0]["mirrored"]
    torch.testing.assert_close(flipped[0]["pose"], torch.from_numpy(mirror_hands(plain[0]["pose"].numpy())))
    assert not HandTokens(shards, "train", 8, mirror=1.0)[0]["mirrored"]  # random mirroring in training only


@pytest.mark.parametrize("left_handed", [0.0, 1.0])
def test_dominant_hand_mirrors_left_handed_one_hand_signs(tmp_path, left_handed):
    shards = make_hands_shards(tmp_path, num_classes=12, left_handed=left_handed)
    data = HandTokens(shards, None, 16, dominant_hand=True)
    one_hand = [k for k in range(len(data)) if "-one-" in pd.read_csv(tmp_path / "manifest.csv").set_index(
        "video_id").loc[data.index["video_id"][k], "gloss"]]
    assert one_hand
    for k in one_hand:  # the moving hand ends up on the right
        sample = data[k]
        assert sample["mirrored"] == bool(left_handed) and sample["box"].shape == (16, 2, 4)
