"""RGB 3D-CNN: frames shards through the loader (resize and crop: test_clips.py), checkpoint handling, a short training run."""

from __future__ import annotations

import numpy as np
import pytest
import simplejpeg
import torch

from signpipe.data import ShardDataset
from signpipe.models import model_spec
from signpipe.models.rgb3d import RGB3D, build
from signpipe.shards import VLEN_BYTES, ShardWriter
from signpipe.train import TrainConfig, fit, predict


def _frames_shard(path, sizes=((48, 64), (64, 40), (48, 64), (64, 40))) -> None:
    """Four videos of different frame sizes; a bright band whose side tells the class."""
    with ShardWriter(path, "frames", 1, {"jpeg": (VLEN_BYTES, ())}) as writer:
        for v, (h, w) in enumerate(sizes):
            frames = []
            for _ in range(6 + v):
                image = np.full((h, w, 3), 30, np.uint8)
                image[:, slice(w // 2, None) if v % 2 else slice(0, w // 2)] = 220
                frames.append(np.frombuffer(simplejpeg.encode_jpeg(image, quality=90), np.uint8))
            jpeg = np.empty(len(frames), object)
            jpeg[:] = frames
            writer.add(f"v{v}", label=v % 2, split="train" if v < 2 else "test", jpeg=jpeg)


def test_loader_decodes_frames_shards(tmp_path) -> None:
    _frames_shard(tmp_path / "0.h5")
    item = ShardDataset(tmp_path / "0.h5", num_frames=4)[1]
    assert item["jpeg"].shape == (4, 64, 40, 3) and item["jpeg"].dtype == torch.uint8
    assert item["jpeg"][0, 0, 30, 0] > 150 and item["jpeg"][0, 0, 5, 0] < 80   # right half bright


def test_checkpoint_path_must_exist_and_fit(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="finetune.rgb3d.checkpoint: .*nope.pt does not exist"):
        build(3, {"checkpoint": tmp_path / "nope.pt"})
    source = RGB3D(7)                                     # another number of classes: the classifier is skipped
    torch.save(source.net.state_dict(), tmp_path / "k.pt")
    model = build(3, {"checkpoint": tmp_path / "k.pt"})
    torch.testing.assert_close(model.net.stem[0].weight, source.net.stem[0].weight)
    assert model.net.fc.out_features == 3
    with pytest.raises(ValueError, match="arch: 'resnet50' unknown"):
        build(3, {"arch": "resnet50"})


def test_trains_with_the_shared_loop_and_predicts(tmp_path) -> None:
    _frames_shard(tmp_path / "0.h5")
    spec = model_spec("rgb3d")
    cfg = {"size": 16, "num_frames": 4}
    assert spec.stages == ("frames",)
    model = spec.build(2, cfg)
    train = spec.dataset({"frames": [tmp_path / "0.h5"]}, "train", True, cfg)
    assert train[0]["jpeg"].shape == (4, 16, 16, 3)

    def step(m, batch):
        return torch.nn.functional.cross_entropy(spec.forward(m, batch), batch["label"]), {}

    history = fit(model, step, train, tmp_path / "run", TrainConfig(epochs=1, batch_size=2, device="cpu"),
                  progress=False)
    assert np.isfinite(history["train_loss"]).all()
    logits, labels, ids = predict(model, spec.dataset({"frames": [tmp_path / "0.h5"]}, "test", False, cfg), spec.forward,
                                  device="cpu")
    assert logits.shape == (2, 2) and ids == ["v2", "v3"] and labels.tolist() == [0, 1]


def test_subtract_mean_hides_what_does_not_move() -> None:
    torch.manual_seed(0)
    model = RGB3D(3, subtract_mean=True).eval()
    still = torch.full((2, 4, 16, 16, 3), 40, dtype=torch.uint8)
    still[1] = 200                                                       # another colour, still nothing moves
    moving = still.clone()
    moving[:, 2, 4:8, 4:8] = 255                                         # a hand in one frame
    with torch.no_grad():
        logits = model(torch.cat([still, moving]))
        raw = RGB3D(3).eval()
        raw.load_state_dict(model.state_dict())
        torch.testing.assert_close(logits[0], logits[1])                 # only the still clips' looks differ
        assert not torch.allclose(logits[0], logits[2])                  # what moves reaches the network
        raw_logits = raw(still)
    assert not torch.allclose(raw_logits[0], raw_logits[1])              # raw frames: the colour reaches it
    assert build(3, {"subtract_mean": True}).subtract_mean and not build(3, {}).subtract_mean
