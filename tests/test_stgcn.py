"""ST-GCN: keypoint normalisation by hand, shapes per subset, and a short training run through fit/predict."""

from __future__ import annotations

import numpy as np
import torch

from signpipe.keypoints.layout import NUM_KEYPOINTS
from signpipe.models import model_spec
from signpipe.models.stgcn import STGCN, normalise_keypoints
from signpipe.shards import ShardWriter
from signpipe.train import TrainConfig, fit, predict


def test_normalise_by_shoulder_centre_and_width() -> None:
    xy = torch.zeros(1, 2, NUM_KEYPOINTS, 2)
    score = torch.ones(1, 2, NUM_KEYPOINTS)
    xy[0, :, 5] = torch.tensor([[10.0, 10.0], [14.0, 10.0]])   # left shoulder in frames 0 and 1
    xy[0, :, 6] = torch.tensor([[6.0, 10.0], [6.0, 10.0]])     # right shoulder: widths 4 and 8, centres 8 and 10
    xy[0, :, 0] = torch.tensor([9.0, 4.0])                     # nose
    score[0, 1, 100] = 0                                       # one point undetected in frame 1
    out = normalise_keypoints(xy, score)
    # clip centre (9, 10), width 6
    torch.testing.assert_close(out[0, 0, 0], torch.tensor([0.0, -1.0]))
    torch.testing.assert_close(out[0, 0, 5], torch.tensor([1 / 6, 0.0]))
    assert out[0, 1, 100].abs().sum() == 0
    # no shoulders anywhere: centred on the mean of the detected points instead, still finite
    score[..., 5:7] = 0
    assert torch.isfinite(normalise_keypoints(xy, score)).all()


def test_every_subset_gives_logits() -> None:
    xy, score = torch.rand(2, 8, NUM_KEYPOINTS, 2) * 100, torch.rand(2, 8, NUM_KEYPOINTS)
    for subset in ("27", "59", "133"):
        model = STGCN(5, subset, layers=((8, 1), (16, 2))).eval()
        assert model(xy, score).shape == (2, 5)
        assert model.blocks[0].gcn.importance.shape == (3, int(subset), int(subset))


def _shard(path, videos: int = 12, classes: int = 3, val: int = 0) -> None:
    """Keypoints whose right wrist moves in a class-specific direction: learnable in a few steps.
    Videos 0-8 are train, the next ``val`` val, the rest test."""
    rng = np.random.default_rng(0)
    with ShardWriter(path, "keypoints", 1, {"xy": (np.float32, (NUM_KEYPOINTS, 2)),
                                            "score": (np.float32, (NUM_KEYPOINTS,))}) as writer:
        for v in range(videos):
            frames = 10 + v % 5
            xy = rng.normal(100, 5, (frames, NUM_KEYPOINTS, 2)).astype(np.float32)
            xy[:, 5], xy[:, 6] = (120, 80), (80, 80)
            xy[:, 112:133] += (np.arange(frames)[:, None, None] * 4 * np.array([np.cos(v % classes * 2.1),
                                                                                 np.sin(v % classes * 2.1)]))
            writer.add(f"v{v}", label=v % classes, split="train" if v < 9 else "val" if v < 9 + val else "test", xy=xy,
                       score=np.ones((frames, NUM_KEYPOINTS), np.float32))


def test_trains_with_the_shared_loop_and_predicts(tmp_path) -> None:
    _shard(tmp_path / "0.h5")
    spec = model_spec("stgcn")
    cfg = {"subset": "27", "layers": [[16, 1], [16, 2]], "num_frames": 8}
    assert spec.stages == ("keypoints",)
    model = spec.build(3, cfg)
    train = spec.dataset({"keypoints": [tmp_path / "0.h5"]}, "train", True, cfg)

    def step(m, batch):
        loss = torch.nn.functional.cross_entropy(spec.forward(m, batch), batch["label"])
        return loss, {}

    history = fit(model, step, train, tmp_path / "run", TrainConfig(epochs=3, batch_size=9, lr=1e-2, device="cpu"),
                  progress=False)
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    logits, labels, ids = predict(model, spec.dataset({"keypoints": [tmp_path / "0.h5"]}, "test", False, cfg), spec.forward,
                                  device="cpu")
    assert logits.shape == (3, 3) and ids == ["v9", "v10", "v11"] and labels.tolist() == [0, 1, 2]
