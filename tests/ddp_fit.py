"""Run by tests/test_train.py under `torchrun --nproc_per_node 2`: fit on CPU with gloo."""

import sys

import torch

from test_train import TinyData, TinyNet, classification_step
from signpipe.train import TrainConfig, fit

history = fit(TinyNet(), classification_step, TinyData(64), sys.argv[1],
              TrainConfig(epochs=2, batch_size=8, device="cpu", lr=1e-2), progress=False)
if int(torch.distributed.get_rank()) == 0:
    print("ranks", torch.distributed.get_world_size(), "epochs", len(history))
