"""What a first GPU run needs, checked on CPU: data-parallel pre-training and HMA past step 2 (torchrun
with gloo reproduces DDP's failures), resume across devices and AMP settings, one GPU per job."""

from __future__ import annotations

import logging
from dataclasses import replace

import pandas as pd
import pytest
import torch
from torch import nn

from signpipe.models.signbert import HandTokens, SignBERT, SignBERTConfig
from signpipe.pretrain import FEASIBILITY_KEYS, PretrainObjective, feasibility
from signpipe.train import (
    AMP, CHECKPOINT, TrainConfig, autocast_dtype, fit, loader_workers, make_optimizer, make_schedule, restore_run,
    set_determinism, sync_batchnorm, train_config,
)
from conftest import benchmark
from test_train import TinyData, TinyNet, classification_step

from test_signbert import make_hands_shards

GPU_READY = benchmark("gpu_ready")
syncs_per_pretrain_step = GPU_READY.syncs_per_pretrain_step
syncs_per_finetune_step = GPU_READY.syncs_per_finetune_step
"""The benchmark's counter of GPU waits."""

CFG = TrainConfig(epochs=2, batch_size=8, lr=1e-2, device="cpu")


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_hands_shards(tmp_path_factory.mktemp("hands"), crop_size=32)


def test_two_ranks_pretrain_signbert_and_finetune_hma_past_the_second_step(shards, tmp_path):
    """MANO's unused ``body_pose`` parameter made DDP stop at step 2 ("Expected to have finished
    reduction in the prior iteration"). One torchrun launch runs both stages (the benchmark's
    ``ddp_models``: batch 1, 2 epochs, CPU-sized models); a stage's error is printed by its rank."""
    done = GPU_READY.ddp_steps_ok({"hands": shards}, tmp_path, ("pretrain", "hma"))
    assert done == {"pretrain": True, "hma": True}
    for stage in ("pretrain", "hma"):
        log = pd.read_csv(tmp_path / stage / "log.csv")
        assert len(log) == 2 and log["samples"].sum() >= 3  # >= 3 steps of batch 1 on each rank
    assert (tmp_path / "pretrain" / "signbert.pt").is_file() and (tmp_path / "hma" / "predictions.h5").is_file()
    # the ranks' gathered feasibility (4 val clips: one batch, one rank has none) is one process's
    model = SignBERT(SignBERTConfig(**GPU_READY.SIGNBERT))
    model.load_state_dict(torch.load(tmp_path / "pretrain" / CHECKPOINT, weights_only=True)["model"])
    alone = feasibility(model, HandTokens(shards, "val", 4), PretrainObjective(), seed=0, device="cpu")
    last = pd.read_csv(tmp_path / "pretrain" / "log.csv").iloc[-1]
    assert {key: last[key] for key in FEASIBILITY_KEYS} == pytest.approx(alone, rel=1e-12, nan_ok=True)


def test_a_cpu_checkpoint_resumes_with_an_fp16_gradient_scaler(tmp_path):
    """A run saved with AMP off (CPU: an empty scaler state) goes on where a GPU's fp16 scaler is enabled."""
    fit(TinyNet(), classification_step, TinyData(32), tmp_path, replace(CFG, epochs=1, amp="off"), progress=False)
    state = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    assert state["scaler"] == {}
    model = TinyNet()
    optimizer = make_optimizer(model.parameters(), CFG)
    scaler = torch.amp.GradScaler("cpu", enabled=True)  # what a CUDA run with amp: fp16 makes
    restore_run(state, model, optimizer, make_schedule(optimizer, CFG), scaler)
    assert torch.equal(model.state_dict()["net.0.weight"], state["model"]["net.0.weight"])
    assert scaler.get_scale() == 2.0**16  # an fp16 scaler's initial scale
    gpu_state = {**state, "scaler": scaler.state_dict()}  # and back: a GPU run's scaler state on CPU
    restore_run(gpu_state, model, optimizer, make_schedule(optimizer, CFG), torch.amp.GradScaler("cuda", enabled=False))


def test_a_run_resumes_on_another_device(tmp_path, caplog):
    """The device is no part of a run's identity: a run killed on CPU goes on under ``device: auto``
    (a GPU's) and ends where one uninterrupted run ends."""
    torch.manual_seed(0)
    whole = fit(TinyNet(), classification_step, TinyData(32), tmp_path / "whole", CFG, progress=False)
    calls = []

    def killed_in_epoch_2(model, batch):
        calls.append(1)
        if len(calls) > 4:  # 32 samples in batches of 8: four steps an epoch
            raise KeyboardInterrupt("killed")
        return classification_step(model, batch)

    torch.manual_seed(0)
    with pytest.raises(KeyboardInterrupt):
        fit(TinyNet(), killed_in_epoch_2, TinyData(32), tmp_path / "moved", CFG, progress=False)
    with caplog.at_level(logging.INFO):
        moved = fit(TinyNet(), classification_step, TinyData(32), tmp_path / "moved", replace(CFG, device="auto"),
                    progress=False)
    assert "resuming after epoch 1 of 2" in caplog.text
    assert moved["train_loss"].tolist() == whole["train_loss"].tolist()


@pytest.mark.parametrize("written, amp", [(False, "off"), (True, "fp16"), ("bf16", "bf16"), (None, "fp16")])
def test_amp_and_determinism_are_settings(written, amp):
    training = train_config({"amp": written, "deterministic": False})
    assert training.amp == amp and training.deterministic is False  # YAML reads `amp: off` as false
    assert autocast_dtype(training.amp, torch.device("cpu")) is None  # float32 on CPU, whatever amp says
    assert autocast_dtype(training.amp, torch.device("cuda", 0)) == AMP[amp]
    with pytest.raises(ValueError, match="amp: 'fp8' unknown; known: off, fp16, bf16"):
        train_config({"amp": "fp8"})


def test_deterministic_false_lets_cudnn_autotune():
    set_determinism(False)
    assert torch.backends.cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()
    set_determinism(True)
    assert not torch.backends.cudnn.benchmark and torch.are_deterministic_algorithms_enabled()


def test_batchnorm_is_synchronised_across_gpus_only():
    def net():
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Sequential(nn.BatchNorm1d(4)))

    synced = sync_batchnorm(net(), torch.device("cuda", 0), world=2)
    assert sum(isinstance(m, nn.SyncBatchNorm) for m in synced.modules()) == 2
    assert list(synced.state_dict()) == list(net().state_dict())  # the checkpoint keys stay
    for device, world in ((torch.device("cpu"), 2), (torch.device("cuda", 0), 1)):
        assert not any(isinstance(m, nn.SyncBatchNorm) for m in sync_batchnorm(net(), device, world).modules())


def test_loader_workers_default_to_the_jobs_threads_but_one_on_cuda():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        assert loader_workers(None, "cuda") == 3 and loader_workers(None, "cpu") == 0
        assert loader_workers(2, "cpu") == 2
    finally:
        torch.set_num_threads(threads)


def test_a_pretraining_step_waits_for_the_gpu_at_most_twice(shards, tmp_path):
    """``float(loss)`` per step, boolean-mask gathers, ``chosen.any()`` and the hand model's walk
    down a device tensor made ~24 waits per step; now the epoch's metrics are read once."""
    per_step, calls = syncs_per_pretrain_step(shards, tmp_path, steps=4)
    assert per_step <= 2, calls


def test_a_finetuning_step_never_waits_for_the_gpu_to_log_its_metrics(shards, tmp_path):
    """The finetune stage's step read every loss term and the training accuracy with ``float``
    (2 waits per step for SignBERT); now they stay on the device and ``fit`` reads the epoch's
    sums once: 2 reads in the 4 steps, all at the epoch's end."""
    per_step, calls = syncs_per_finetune_step(shards, tmp_path, steps=4)
    assert per_step <= 0.5, calls
