"""GLE-Net (TOMM 2021): each equation pinned on small real tensors, the P3D backbone's kernels,
the input pipeline, and both training phases through the finetune stage on a generated frames shard."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import simplejpeg
import torch
import torch.nn.functional as F

from signpipe.finetune import finetune, phase_settings
from signpipe.fusion import fuse
from signpipe.models import model_spec
from signpipe.models.glenet import (
    SPEC, GLENet, GlobalEnhancement, P3DResNet, build, equation1_weights, forward, inverse_cdf,
    losses, mutual_promotion_loss, normalise, region_magnification, resample, sampling_grid, settings,
    trilinear_saliency,
)
from signpipe.predictions import read_predictions
from signpipe.shards import VLEN_BYTES, ShardWriter
from test_config import FINETUNE

TINY = {"depth": 10, "width": 4, "short_side": 36, "crop": 32, "test_crop": 32, "frame_step": 1}


def frames_shard(path, videos_per_split=(6, 3, 3), classes=3, frames=10, seed=0):
    """A frames shard whose class is where a bright square sits (top-left, top-right, bottom); 48 x 64 frames."""
    rng = np.random.default_rng(seed)
    with ShardWriter(path, "frames", 1, {"jpeg": (VLEN_BYTES, ())}) as writer:
        n = 0
        for split, count in zip(("train", "val", "test"), videos_per_split):
            for k in range(count):
                label = k % classes
                rows = []
                for _ in range(frames + k % 3):
                    image = rng.integers(20, 60, (48, 64, 3), dtype=np.uint8)
                    y, x = ((4, 4), (4, 40), (28, 22))[label]
                    image[y:y + 16, x:x + 20] = 230
                    rows.append(np.frombuffer(simplejpeg.encode_jpeg(image, quality=90), np.uint8))
                jpeg = np.empty(len(rows), object)
                jpeg[:] = rows
                writer.add(f"v{n:02d}", label=label, split=split, jpeg=jpeg)
                n += 1
    return path


# ---------------------------------------------------------------- Eqs. 2-3

@pytest.mark.parametrize("stride", [1, 2])
def test_beta_zero_gives_x_exactly_and_otherwise_beta_times_C_Et_plus_x(stride):
    torch.manual_seed(0)
    x = torch.randn(2, 8, 3, 5, 6)
    module = GlobalEnhancement(8, stride=stride)                          # 2: the default attention_stride
    assert module.beta.item() == 0.0
    assert torch.equal(module(x), x)                                     # initialised as the identity
    with torch.no_grad():
        module.beta.fill_(0.7)
        pool = lambda y: F.max_pool3d(y, (1, stride, stride), ceil_mode=True).flatten(2)  # noqa: E731  (B, C, N_k)
        a, b, c = module.query(x).flatten(2), pool(module.key(x)), pool(module.value(x))
        e = torch.softmax(a.transpose(1, 2) @ b, -1)                     # Eq. 2: E_ij = softmax_j(A_i . B_j), (B, N, N_k)
        torch.testing.assert_close(module.enhancement_map(x), e)
        expected = 0.7 * (c @ e.transpose(1, 2)).reshape(x.shape) + x    # Eq. 3: beta f(C E^T) + X
        torch.testing.assert_close(module(x), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("stride, keys", [(1, 3 * 5 * 6), (2, 3 * 3 * 3)])
def test_rows_of_the_enhancement_map_sum_to_one(stride, keys):
    torch.manual_seed(1)
    module = GlobalEnhancement(8, stride=stride)
    e = module.enhancement_map(torch.randn(2, 8, 3, 5, 6))
    assert e.shape == (2, 3 * 5 * 6, keys) and (e >= 0).all()
    torch.testing.assert_close(e.sum(-1), torch.ones(2, 3 * 5 * 6))
    a, b = module.query, module.key
    x = torch.randn(1, 8, 3, 5, 6)
    if stride == 1:                                                      # E_ij = exp(A_i.B_j) / sum_j exp(A_i.B_j)
        logits = a(x).flatten(2)[0].T @ b(x).flatten(2)[0]
        torch.testing.assert_close(module.enhancement_map(x)[0], torch.softmax(logits, -1))


# ---------------------------------------------------------------- Eqs. 4-6

def test_a_uniform_saliency_resamples_to_the_identity_grid():
    grid = sampling_grid(torch.full((2, 3, 7, 9), 0.4), max_magnification=4.0)
    identity = F.affine_grid(torch.eye(2, 3).expand(6, 2, 3), (6, 1, 7, 9), align_corners=False).view(2, 3, 7, 9, 2)
    torch.testing.assert_close(grid, identity, atol=1e-6, rtol=0)
    x = torch.randn(2, 4, 3, 7, 9)
    torch.testing.assert_close(resample(x, grid), x, atol=1e-5, rtol=0)


def test_region_magnification_is_1_for_the_identity_and_the_cap_for_a_salient_box():
    box = torch.tensor([0.25, 0.25, 0.75, 0.5])                                    # x0, y0, x1, y1
    uniform = sampling_grid(torch.ones(8, 8))
    assert float(region_magnification(uniform, box)) == pytest.approx(1.0)        # 4/8 columns x 2/8 rows
    # columns 2 and 3 of 8 (x in [0.25, 0.5]) very salient, capped at 2: they get 4 of the 8 columns
    saliency = torch.ones(8, 8)
    saliency[:, 2:4] = 1e3
    grid = sampling_grid(saliency, max_magnification=2.0)
    boxes = torch.tensor([[0.25, 0.0, 0.5, 1.0], [0.0, 0.0, 1.0, 1.0]])          # those columns; the whole frame
    torch.testing.assert_close(region_magnification(grid.expand(2, 8, 8, 2), boxes),
                               torch.tensor([2.0, 1.0]), atol=1e-6, rtol=0)


def test_the_grid_follows_the_row_and_column_maxima_of_eq_4():
    # column 1: one salient pixel (max 10, sum 10); column 3: 3 everywhere (max 3, sum 18); rows alike
    saliency = torch.full((6, 6), 0.1)
    saliency[2, 1] = 10.0
    saliency[:, 3] = 3.0
    saliency[4, :] = torch.maximum(saliency[4, :], torch.tensor(3.0))
    grid = sampling_grid(saliency)
    x, y = (grid[0, :, 0] + 1) / 2, (grid[:, 0, 1] + 1) / 2                # where the columns / rows read
    torch.testing.assert_close(x, inverse_cdf(saliency.amax(0)))
    torch.testing.assert_close(y, inverse_cdf(saliency.amax(1)))
    samples = lambda positions, k: int(((positions * 6).floor() == k).sum())  # noqa: E731
    assert samples(x, 1) > samples(x, 3) and samples(y, 2) > samples(y, 4)  # by max, not by sum or mean


def test_salient_columns_get_more_samples_up_to_the_cap():
    mass = torch.ones(1, 20)
    mass[0, 5] = 100.0                                                    # one very salient column
    free = inverse_cdf(mass)
    capped = inverse_cdf(mass, max_magnification=3.0)
    # output samples whose source lies in column 5: its magnification
    inside = lambda positions: int(((positions * 20).floor() == 5).sum())  # noqa: E731
    assert inside(free) > 10 and inside(capped) == 3
    assert (torch.diff(capped) > 0).all() and capped.min() > 0 and capped.max() < 1
    # the density after the cap is at most 3 everywhere: consecutive samples are >= 1/(3 n) apart
    assert torch.diff(capped).min() >= 1 / (3 * 20) - 1e-6


def test_trilinear_saliency_is_equation_6():
    torch.manual_seed(2)
    y = torch.rand(1, 6, 2, 3, 4)                                         # (B, C2, T, h, w), post-ReLU like res4
    s = trilinear_saliency(y)
    assert s.shape == (1, 2, 3, 4) and (s >= 0).all()
    yt = y[0, :, 1].reshape(6, 12)                                        # time step 1: Y_t (C2, N2)
    expected = (torch.softmax(torch.softmax(yt, -1) @ yt.T, -1) @ yt).mean(0).reshape(3, 4)
    torch.testing.assert_close(s[0, 1], expected)


# ---------------------------------------------------------------- Eqs. 1, 7-8

def test_mutual_promotion_is_the_symmetric_kl():
    torch.manual_seed(3)
    z1, z2 = torch.randn(5, 7), torch.randn(5, 7)
    loss = mutual_promotion_loss(z1, z2)
    p1, p2 = F.log_softmax(z1, -1), F.log_softmax(z2, -1)
    kl = lambda p, q: F.kl_div(q, p, log_target=True, reduction="batchmean")  # KL(p || q)  # noqa: E731
    torch.testing.assert_close(loss, kl(p2, p1) + kl(p1, p2))
    assert loss > 0 and torch.equal(loss, mutual_promotion_loss(z2, z1))                # symmetric
    assert mutual_promotion_loss(z1, z1).item() == 0.0
    assert mutual_promotion_loss(z1, z1 + 3.0).abs().item() < 1e-6     # equal predictions (softmax is shift-free)
    assert (torch.stack([mutual_promotion_loss(torch.randn(3, 4), torch.randn(3, 4)) for _ in range(20)]) >= 0).all()


def test_mutual_promotion_sends_gradients_to_both_streams():
    torch.manual_seed(9)
    z1, z2 = torch.randn(4, 5, requires_grad=True), torch.randn(4, 5, requires_grad=True)
    mutual_promotion_loss(z1, z2).backward()
    r1, r2 = z1.detach().clone().requires_grad_(), z2.detach().clone().requires_grad_()
    p1, p2 = F.log_softmax(r1, -1), F.log_softmax(r2, -1)
    (F.kl_div(p1, p2, log_target=True, reduction="batchmean")
     + F.kl_div(p2, p1, log_target=True, reduction="batchmean")).backward()    # neither side detached
    torch.testing.assert_close(z1.grad, r1.grad)
    torch.testing.assert_close(z2.grad, r2.grad)
    model = GLENet(3, settings(TINY))
    terms, _ = losses(model, {"jpeg": torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8),
                              "label": torch.tensor([0, 1])})
    terms["mu"].backward()
    assert model.global_stream.fc.weight.grad.abs().sum() > 0 and model.local_stream.fc.weight.grad.abs().sum() > 0


def test_lambda_0_2_weighs_the_label_losses_0_2_and_mutual_promotion_0_8():
    assert equation1_weights(0.2) == {"com": 0.2, "global": 0.2, "local": 0.2, "mu": 0.8}
    assert [phase.name for phase in SPEC.phases] == ["streams", "joint"]
    phases = phase_settings(SPEC, {})
    assert phases["streams"]["loss_weights"] == {"com": 0.0, "global": 1.0, "local": 1.0, "mu": 0.0}
    assert phases["joint"]["loss_weights"] == {"com": 0.2, "global": 0.2, "local": 0.2, "mu": 0.8}
    for values, lr in zip(phases.values(), (5e-3, 5e-4)):   # §5.1; the joint phase fine-tunes one x0.1 step below
        assert (values["optimizer"], values["lr"], values["momentum"], values["weight_decay"]) == ("sgd", lr, 0.9, 1e-4)
        assert (values["schedule"], values["lr_gamma"], values["num_frames"]) == ("plateau", 0.1, 32)


def test_the_joint_phase_fine_tunes_one_tenth_below_the_users_lr_unless_its_own_is_written():
    joint = lambda cfg: phase_settings(SPEC, cfg)["joint"]["lr"]  # noqa: E731
    assert joint({"glenet": {"lr": 1e-3}}) == pytest.approx(1e-4)         # the block's lr: x0.1, not a restart at 1e-3
    assert joint({"lr": 2e-2}) == pytest.approx(2e-3)                      # the stage's lr too
    assert joint({"glenet": {"phases": {"streams": {"lr": 1e-2}}}}) == pytest.approx(1e-3)   # below phase 1's lr
    assert joint({"glenet": {"lr": 1e-3, "phases": {"joint": {"lr": 3e-3}}}}) == 3e-3   # written: taken as is
    assert phase_settings(SPEC, {"glenet": {"lr": 1e-3}})["streams"]["lr"] == 1e-3


def test_z_com_is_the_sum_used_at_test_and_supervised_by_l_com():
    torch.manual_seed(4)
    model = GLENet(3, settings(TINY)).eval()
    clip = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
    batch = {"jpeg": clip, "label": torch.tensor([0, 2])}
    with torch.no_grad():
        out = model(clip)
        torch.testing.assert_close(out.z_com, out.z_global + out.z_local)
        torch.testing.assert_close(forward(model, batch), out.z_global + out.z_local)
        terms, logits = losses(model, batch)
    assert set(terms) == {"com", "global", "local", "mu"}
    torch.testing.assert_close(terms["com"], F.cross_entropy(out.z_global + out.z_local, batch["label"]))
    torch.testing.assert_close(logits, out.z_com)
    assert out.saliency.shape == (2, 1, 8, 8) and out.grid.shape == (2, 1, 8, 8, 2)   # T/4, S/4


@pytest.mark.parametrize("position", ["pool2", "res3", "res5"])
def test_the_global_stream_applies_the_enhancement_at_its_position(position):
    torch.manual_seed(7)
    model = GLENet(3, settings({**TINY, "position": position})).eval()
    with torch.no_grad():
        model.global_enhancement.beta.fill_(0.5)                         # beta 0 would hide a skipped module
        clip = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
        stream = model.global_stream
        x = model.shared(normalise(clip, model.mean, model.std))
        for name in ("pool2", "res3", "res4", "res5"):
            x = x if name == "pool2" else getattr(stream, name)(x)
            if name == position:
                x = model.global_enhancement(x)
        torch.testing.assert_close(model(clip).z_global, stream.fc(x.mean((2, 3, 4))))


@pytest.mark.parametrize("stage", ["res4", "res3"])
def test_the_saliency_comes_from_the_configured_global_stage(stage):
    torch.manual_seed(8)
    model = GLENet(3, settings({**TINY, "saliency_stage": stage} if stage != "res4" else TINY)).eval()
    seen = {}
    getattr(model.global_stream, stage).register_forward_hook(lambda m, i, o: seen.setdefault("y", o))
    with torch.no_grad():
        out = model(torch.randint(0, 256, (1, 8, 32, 32, 3), dtype=torch.uint8))
    expected = F.interpolate(trilinear_saliency(seen["y"]).unsqueeze(1), size=out.saliency.shape[1:],
                             mode="trilinear", align_corners=False).squeeze(1)   # Eq. 6, upsampled to X
    torch.testing.assert_close(out.saliency, expected)


def test_subtract_mean_hides_what_does_not_move():
    torch.manual_seed(5)
    model = GLENet(3, settings({**TINY, "subtract_mean": True})).eval()
    still = torch.full((2, 4, 32, 32, 3), 40, dtype=torch.uint8)
    still[1] = 200                                                     # another colour; nothing moves
    moving = still.clone()
    moving[:, 2, 8:16, 8:16] = 255                                     # a hand in one frame
    raw = GLENet(3, settings(TINY)).eval()
    raw.load_state_dict(model.state_dict())
    with torch.no_grad():
        logits = model(torch.cat([still, moving])).z_com
        raw_logits = raw(still).z_com
    torch.testing.assert_close(logits[0], logits[1])
    assert not torch.allclose(logits[0], logits[2])
    assert not torch.allclose(raw_logits[0], raw_logits[1])            # raw frames: the colour reaches it
    baseline = P3DResNet(3, 10, 4, subtract_mean=True).eval()           # the benchmark's one-stream baseline too
    with torch.no_grad():
        logits = baseline(torch.cat([still, moving]))
    torch.testing.assert_close(logits[0], logits[1])
    assert not torch.allclose(logits[0], logits[2])


def test_the_local_loss_trains_the_global_stream_through_the_saliency_unless_detached():
    """As the paper (nothing detached): by default z_local's gradient reaches the global stream's
    res3-res4 through Eqs. 4-6; ``detach_saliency: true`` stops it there."""
    torch.manual_seed(5)
    clip = torch.randint(0, 256, (2, 4, 32, 32, 3), dtype=torch.uint8)
    for written, detached in (({}, False), ({"detach_saliency": True}, True), ({"detach_saliency": False}, False)):
        model = GLENet(3, settings({**TINY, **written}))
        model(clip).z_local.sum().backward()
        for stage in (model.global_stream.res3, model.global_stream.res4):
            grad = stage[0].body[0][0].weight.grad
            assert (grad is None or not grad.any()) == detached, written
        assert model.global_stream.res5[0].body[0][0].weight.grad is None   # res5 is after Y: never


def test_attention_and_saliency_stay_float32_under_mixed_precision(monkeypatch):
    torch.manual_seed(6)
    x = 30 * torch.randn(1, 16, 2, 6, 6)                                  # large products: float16 would overflow
    module = GlobalEnhancement(16, stride=2)
    attention, seen = F.scaled_dot_product_attention, []

    def spy(q, k, v, **kwargs):                                          # what the fused kernel is handed
        seen.append([(t.dtype, t.is_contiguous()) for t in (q, k, v)])
        return attention(q, k, v, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    with torch.no_grad():
        module.beta.fill_(1.0)
        exact = module.aggregate(x)
        with torch.autocast("cpu", dtype=torch.float16):
            mixed = module.aggregate(x)
            saliency = trilinear_saliency(x.relu())
    # float32 and contiguous: transposed views make SDPA fall back to materialising E (issue 26)
    assert seen == [[(torch.float32, True)] * 3] * 2
    assert mixed.dtype == saliency.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, rtol=0, atol=0.01 * float(exact.abs().max()))   # A, B, C convs in float16
    torch.testing.assert_close(saliency, trilinear_saliency(x.relu()))


def test_the_attention_runs_the_fused_kernel_not_the_math_path():
    module = GlobalEnhancement(8, stride=2)
    with torch.profiler.profile() as profile:
        module(torch.randn(1, 8, 2, 6, 6))
    ops = {event.name for event in profile.events()}
    assert "aten::_scaled_dot_product_attention_math" not in ops
    assert any("_scaled_dot_product_flash_attention" in op or "efficient_attention" in op for op in ops), ops


# ---------------------------------------------------------------- the backbone (§5.1)

def test_p3d_blocks_have_the_stated_kernels():
    model = GLENet(10, settings({"depth": 50, "width": 8}))
    kernels = [m.kernel_size for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert model.shared.conv1[0].kernel_size == (5, 7, 7)
    assert (3, 3, 3) not in kernels and set(kernels) == {(5, 7, 7), (1, 3, 3), (3, 1, 1), (1, 1, 1)}
    assert kernels.count((1, 3, 3)) == kernels.count((3, 1, 1)) == 3 + 2 * (4 + 6 + 3)   # one pair per bottleneck
    for block in model.global_stream.res3:                               # spatial then temporal
        p3d = block.body[3]
        assert (p3d[0].kernel_size, p3d[3].kernel_size) == ((1, 3, 3), (3, 1, 1))
    baseline = P3DResNet(10, depth=50, width=8)
    assert sum(isinstance(m, torch.nn.Conv3d) and m.kernel_size == (1, 3, 3) for m in baseline.modules()) == 16
    basic = GLENet(10, settings({"depth": 18, "width": 4}))
    assert sum(isinstance(m, torch.nn.Conv3d) and m.kernel_size == (3, 1, 1) for m in basic.modules()) == 4 + 2 * 12
    with pytest.raises(ValueError, match="finetune.glenet.position: 'pool3' unknown"):
        settings({"position": "pool3"})


@pytest.mark.parametrize("position", ["res3", "res5", "none"])
def test_the_global_module_can_sit_after_other_stages_or_nowhere(position):
    model = GLENet(3, settings({**TINY, "position": position})).eval()
    if position == "none":                                               # the ablation: local enhancement only
        assert model.global_enhancement is None
        assert not any(isinstance(m, GlobalEnhancement) for m in model.modules())
    else:
        assert model.global_enhancement.query.in_channels == {"res3": 8, "res5": 32}[position]
    assert model(torch.zeros(1, 4, 32, 32, 3, dtype=torch.uint8)).z_com.shape == (1, 3)


# ---------------------------------------------------------------- input (§5.1; the clips themselves: test_clips.py)

def test_both_crops_must_fit_the_short_side():
    assert settings({"short_side": 256, "crop": 224, "test_crop": 256}).test_crop == 256     # the paper's
    for crops in ({"crop": 224, "test_crop": 256}, {"crop": 256, "test_crop": 224}):
        with pytest.raises(ValueError, match="finetune.glenet.crop/test_crop: .* larger than short_side 224"):
            settings({"short_side": 224, **crops})


@pytest.mark.parametrize("sampling", ["window", "segments"])
def test_frames_are_a_window_by_default_or_segments(tmp_path, sampling):
    path = frames_shard(tmp_path / "0.h5", frames=24)
    cfg = {"short_side": 40, "crop": 32, "test_crop": 32, "frame_step": 2, "num_frames": 4}
    cfg = cfg if sampling == "window" else {**cfg, "sampling": sampling}                   # window: the default
    for split, train in (("train", True), ("test", False)):
        frames = SPEC.dataset({"frames": [path]}, split, train, cfg)[0]["frames"].numpy()
        steps = np.diff(frames)
        assert (frames % 2 == 0).all() and (steps == 2).all() == (sampling == "window"), frames
    with pytest.raises(ValueError, match="finetune.glenet.sampling: 'random' unknown"):
        settings({"sampling": "random"})


def test_checkpoint_key_names_itself(tmp_path):
    with pytest.raises(FileNotFoundError, match="finetune.glenet.checkpoint: .*nope.pt does not exist"):
        build(3, {**TINY, "checkpoint": str(tmp_path / "nope.pt")})
    source = GLENet(5, settings(TINY))
    torch.save({"model": source.state_dict()}, tmp_path / "c.pt")
    model = build(3, {**TINY, "checkpoint": str(tmp_path / "c.pt")})   # another class count: classifiers skipped
    torch.testing.assert_close(model.shared.conv1[0].weight, source.shared.conv1[0].weight)
    assert model.global_stream.fc.out_features == 3


# ---------------------------------------------------------------- the stage: both phases, figure, schema

def test_trains_both_phases_with_their_loss_weights_and_draws_saliency(tmp_path):
    path = frames_shard(tmp_path / "0.h5")
    cfg = {"epochs": 1, "batch_size": 4, "device": "cpu", "seed": 0,
           "glenet": {**TINY, "num_frames": 4, "phases": {"joint": {"lr": 0.0}}}}
    result = finetune("glenet", [path], tmp_path / "run", 3, cfg)
    log = pd.read_csv(tmp_path / "run" / "log.csv")
    assert log["phase"].tolist() == ["streams", "joint"]
    streams, joint = log.iloc[0], log.iloc[1]
    assert streams["train_loss"] == pytest.approx(streams["global_loss"] + streams["local_loss"], rel=1e-5)
    assert joint["train_loss"] == pytest.approx(
        0.2 * (joint["com_loss"] + joint["global_loss"] + joint["local_loss"]) + 0.8 * joint["mu_loss"], rel=1e-5)
    states = {phase: torch.load(tmp_path / "run" / phase / "checkpoint.pt", weights_only=True)["model"]
              for phase in ("streams", "joint")}
    # the joint phase (lr 0 here) continues from the weights the streams phase ended with
    for name in ("shared.conv1.0.weight", "global_stream.fc.weight", "local_stream.res3.0.body.0.0.weight"):
        torch.testing.assert_close(states["joint"][name], states["streams"][name], rtol=0, atol=0)
    splits, _ = read_predictions(tmp_path / "run" / "predictions.h5")
    assert splits["test"].logits.shape == (3, 3) and set(result) == {"val_acc", "test_acc"}
    # per-stream evidence: each stream's logits beside their sum z_com, each stream's val top-1 per epoch
    for split in splits.values():
        assert set(split.streams) == {"global", "local"}
        torch.testing.assert_close(split.streams["global"] + split.streams["local"], split.logits)
    val = splits["val"]
    for stream in ("global", "local"):
        accuracy = 100 * float((val.streams[stream].argmax(1) == val.label).mean())
        assert log[f"val_{stream}_acc"].iloc[-1] * 100 == pytest.approx(accuracy)
    table = fuse({"glenet": tmp_path / "run" / "predictions.h5"}, [], tmp_path / "fusion")
    assert table["method"].tolist() == ["glenet (GLE-Net)", "glenet:global", "glenet:local"]
    test = splits["test"]
    assert table["instance_top1"].tolist() == pytest.approx(
        [100 * float((z.argmax(1) == test.label).mean()) for z in (test.logits, *test.streams.values())])
    assert (tmp_path / "run" / "figures" / "saliency.png").read_bytes()[:4] == b"\x89PNG"


def test_schema_block_holds_the_phases_and_the_registry_finds_the_spec():
    assert model_spec("glenet") is SPEC and SPEC.stages == ("frames",)
    block = FINETUNE["glenet"]["properties"]
    assert block["phases"]["default"] == {p.name: dict(p.settings) for p in SPEC.phases}


# ---------------------------------------------------------------- NMFs-CSL subsets (Table 5)

def test_nmfs_subsets_command_writes_confusing_and_normal(tmp_path, capsys):
    from signpipe.cli import main
    from signpipe.metrics import accuracies, read_classes

    assert main(["nmfs-subsets", str(tmp_path / "subsets"), "--classes", "1067"]) == 0
    confusing = read_classes(tmp_path / "subsets" / "confusing.txt")
    normal = read_classes(tmp_path / "subsets" / "normal.txt")
    assert confusing.tolist() == list(range(610)) and normal.tolist() == list(range(610, 1067))
    assert "fusion.subsets.<dataset>: {confusing: " in capsys.readouterr().out
    # as the tables use them: the subsets' accuracies are those of their videos; no class is left over
    labels = np.array([3, 700, 609, 610])
    scores = np.eye(1067)[[3, 0, 609, 0]]                                 # right on the confusing two only
    table = accuracies(scores, labels, {"confusing": confusing, "normal": normal})
    assert (table["confusing_top1"], table["normal_top1"], table["instance_top1"]) == (100.0, 0.0, 50.0)
    assert main(["nmfs-subsets", str(tmp_path / "bad"), "--classes", "10", "--confusing", "10"]) == 1


def test_nmfs_split_from_the_corpus_lists_reads_signers_and_label_order(tmp_path, capsys):
    import yaml

    from signpipe.cli import main

    # a release-like layout: class folders named by number, labels 1-based in the train list and
    # NOT in the sorted folder order (folder "10" is label 2), signers P1-P3 train, P4 test
    folders = ["7", "10", "3"]
    train = [f"{folder}/P{signer}_{rep}.mp4 {label}" for label, folder in enumerate(folders, 1)
             for signer in (1, 2, 3) for rep in range(2)]
    test = [f"{folder}/P4_{rep}.mp4" for folder in folders for rep in range(2)]
    (tmp_path / "train.txt").write_text("\n".join(train) + "\n")
    (tmp_path / "test.txt").write_text("\n".join(test) + "\n\n")
    lists = [str(tmp_path / "train.txt"), str(tmp_path / "test.txt")]
    pattern = r"(?P<signer>P\d+)_(?P<rep>\d+)"
    assert main(["nmfs-split", str(tmp_path / "out"), "--lists", *lists, "--pattern", pattern, "--val", "P3"]) == 0
    keys = yaml.safe_load((tmp_path / "out" / "split.yaml").read_text())
    assert keys == {"splits": {"train": ["P1", "P2"], "test": ["P4"], "val": ["P3"]}}
    assert (tmp_path / "out" / "classes.txt").read_text().split() == folders          # the lists' label order
    out = capsys.readouterr().out
    assert "note: train: 3 signers, 18 videos; the paper has 8 signers, 25608 videos" in out
    # a signer in both lists: not a signer split, so no split is written
    (tmp_path / "test.txt").write_text("7/P1_9.mp4\n")
    assert main(["nmfs-split", str(tmp_path / "bad"), "--lists", *lists, "--pattern", pattern]) == 1
    assert not (tmp_path / "bad").exists()


def test_nmfs_split_from_test_signers_sends_the_others_to_train(tmp_path):
    import yaml

    from signpipe.datasets.folder import signer_splits
    from signpipe.datasets.nmfs_csl import write_split

    paths, notes = write_split(tmp_path, test=["P10", "P09"], val=["P08"])
    keys = yaml.safe_load(paths["split"].read_text())
    assert keys == {"splits": {"test": ["P09", "P10"], "val": ["P08"]}, "default_split": "train"}
    assert notes == [] and "classes" not in paths
    assert signer_splits(keys, "datasets.nmfs_csl") == {"P09": "test", "P10": "test", "P08": "val"}
    assert write_split(tmp_path, test=["P10"])[1] == ["1 test signers; the paper has 2"]
    with pytest.raises(ValueError, match="already test signers"):
        write_split(tmp_path, test=["P10", "P09"], val=["P09"])
    with pytest.raises(ValueError, match="either --lists"):
        write_split(tmp_path)
