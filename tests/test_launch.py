"""A training job that holds N GPUs runs its stage as N torchrun ranks (signpipe.launch), here on CPU with gloo."""

import math

import pandas as pd
import pytest

from signpipe.launch import on_ranks
from signpipe.logs import log_to
from signpipe.predictions import read_predictions
from test_stgcn import _shard

CFG = {"epochs": 1, "batch_size": 4, "device": "cpu", "seed": 0,
       "stgcn": {"subset": "27", "layers": [[16, 1], [16, 2]], "num_frames": 8}}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    path = tmp_path_factory.mktemp("keypoints") / "0.h5"
    _shard(path)
    return [path]


def test_one_process_is_a_plain_call(shards, tmp_path):
    result = on_ranks("signpipe.finetune:finetune", 1, "stgcn", shards, tmp_path, 3, CFG, threads=1)
    assert set(result) == {"val_acc", "test_acc"}  # a plain call returns the stage's result


def test_two_ranks_split_the_training_data_and_rank_zero_writes_the_predictions(shards, tmp_path):
    single = on_ranks("signpipe.finetune:finetune", 1, "stgcn", shards, tmp_path / "one", 3, CFG, threads=1)
    assert single
    with log_to(tmp_path / "job.log"):
        assert on_ranks("signpipe.finetune:finetune", 2, "stgcn", shards, tmp_path / "two", 3, CFG, threads=2) is None
    one, two = (pd.read_csv(tmp_path / run / "log.csv") for run in ("one", "two"))
    # each rank trains on its half (DistributedSampler pads to equal halves); the log counts both ranks
    assert two["samples"].iloc[0] == 2 * math.ceil(one["samples"].iloc[0] / 2)
    splits, attrs = read_predictions(tmp_path / "two" / "predictions.h5")
    assert attrs["model"] == "stgcn" and set(splits) == {"val", "test"}
    text = (tmp_path / "job.log").read_text()
    assert "rank 0 of 2" in text and "rank 1 of 2" in text  # both ranks log into the job's log


def test_a_failing_rank_fails_the_job(tmp_path):
    with pytest.raises(RuntimeError, match="2 ranks: torchrun exited with status"):
        on_ranks("signpipe.finetune:finetune", 2, "no-such-model", [], tmp_path, 3, CFG)
