"""A training job that holds N GPUs runs its stage as N torchrun ranks (signpipe.launch), here on CPU with gloo."""

import contextlib
import math
import os
import signal
import time

import numpy as np
import pandas as pd
import pytest
import torch

from signpipe.finetune import accuracy, phase_settings, predictions
from signpipe.launch import claim_gpus, on_ranks
from signpipe.logs import log_to
from signpipe.models import model_spec
from signpipe.predictions import read_predictions
from signpipe.train import CHECKPOINT, train_config
from test_stgcn import _shard

CFG = {"epochs": 1, "batch_size": 4, "device": "cpu", "seed": 0,
       "stgcn": {"subset": "27", "layers": [[16, 1], [16, 2]], "num_frames": 8}}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    path = tmp_path_factory.mktemp("keypoints") / "0.h5"
    _shard(path, videos=17, val=5)  # val: batches of 4 and 1; test: one batch of 3, none for rank 0
    return [path]


def test_one_rank_is_a_plain_call_two_ranks_split_training_and_evaluation(shards, tmp_path):
    """One process: the stage's result. Two ranks: each trains on its half and evaluates its share
    of the val and test batches; rank 0 writes predictions.h5 with what one process makes of the
    checkpoint, to the bit."""
    single = on_ranks("signpipe.finetune:finetune", 1, "stgcn", shards, tmp_path / "one", 3, CFG, threads=1)
    assert set(single) == {"val_acc", "test_acc"}  # a plain call returns the stage's result
    with log_to(tmp_path / "job.log"):
        assert on_ranks("signpipe.finetune:finetune", 2, "stgcn", shards, tmp_path / "two", 3, CFG, threads=2) is None
    one, two = (pd.read_csv(tmp_path / run / "log.csv") for run in ("one", "two"))
    # each rank trains on its half (DistributedSampler pads to equal halves); the log counts both ranks
    assert two["samples"].iloc[0] == 2 * math.ceil(one["samples"].iloc[0] / 2)
    splits, attrs = read_predictions(tmp_path / "two" / "predictions.h5")
    assert attrs["model"] == "stgcn" and set(splits) == {"val", "test"}
    text = (tmp_path / "job.log").read_text()
    assert "rank 0 of 2" in text and "rank 1 of 2" in text  # both ranks log into the job's log
    # the ranks' gathered evaluation is what one process makes of the checkpoint
    spec = model_spec("stgcn")
    settings = phase_settings(spec, CFG)["main"]
    model = spec.build(3, settings)
    model.load_state_dict(torch.load(tmp_path / "two" / CHECKPOINT, weights_only=True)["model"])
    for split in ("val", "test"):
        alone = predictions(spec, model, spec.dataset({"keypoints": shards}, split, False, settings),
                            train_config(settings))
        np.testing.assert_array_equal(splits[split].logits, alone.logits)  # to the bit: same batches, same weights
        assert splits[split].video_id == alone.video_id
        if split == "val":  # the log's last validation accuracy too
            assert two["val_acc"].iloc[-1] == pytest.approx(accuracy(alone.logits, alone.label), abs=1e-12)


def test_a_failing_rank_fails_the_job(tmp_path):
    """Any target fails alike; a light one (the ranks import no torch) keeps the launch short."""
    with pytest.raises(RuntimeError, match="json:loads on 2 ranks: torchrun exited with status"):
        on_ranks("json:loads", 2, "not json")


def test_each_job_claims_its_own_gpu_and_sees_only_it(tmp_path, monkeypatch):
    """Two GPUs run two jobs: each job's CUDA_VISIBLE_DEVICES is its slot, the next job waits for a free one."""
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    with claim_gpus(1, lock_dir=tmp_path) as first:
        assert first == ["2"] and os.environ["CUDA_VISIBLE_DEVICES"] == "2"
        pool = ["2", "3"]  # what a second job's process sees (this one's CUDA_VISIBLE_DEVICES is now 2)
        with claim_gpus(1, pool, lock_dir=tmp_path) as second:  # a second job, while the first runs
            assert second == ["3"] and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                with _deadline(0.3):
                    with claim_gpus(1, pool, lock_dir=tmp_path, poll_s=0.05):  # a third job waits
                        pass
            assert time.monotonic() - started >= 0.3
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"  # restored
    with claim_gpus(2, lock_dir=tmp_path) as both:  # the first job's GPU is free again
        assert both == ["2", "3"] and os.environ["CUDA_VISIBLE_DEVICES"] == "2,3"


def test_no_gpu_claim_without_gpus_or_under_slurm(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with claim_gpus(1, lock_dir=tmp_path) as gpus:
        assert gpus == []  # a machine without GPUs: the job runs on CPU as it is
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with claim_gpus(1, lock_dir=tmp_path):
        with claim_gpus(1, lock_dir=tmp_path) as again:  # SLURM gave each job its GPU: no lock
            assert again == ["0"] and os.environ["CUDA_VISIBLE_DEVICES"] == "0"
    assert not list(tmp_path.iterdir())


@contextlib.contextmanager
def _deadline(seconds):
    def expire(*_):
        raise TimeoutError
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
