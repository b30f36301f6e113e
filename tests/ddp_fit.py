"""Run by tests/test_train.py under `torchrun --nproc_per_node 2`: fit on CPU with gloo.

The plateau schedule follows rank 0's validation loss (constant, so it decays after every epoch
but the first); the other rank has no validation and must decay alike."""

import sys

import torch

from test_train import TinyData, TinyNet, classification_step
from signpipe.train import TrainConfig, fit

history = fit(TinyNet(), classification_step, TinyData(64), sys.argv[1],
              TrainConfig(epochs=3, batch_size=8, device="cpu", lr=1e-2, schedule="plateau", patience=0),
              evaluate=lambda model: {"val_loss": 1.0}, progress=False)
rank = int(torch.distributed.get_rank())
print(f"rank {rank} lr " + " ".join(f"{lr:.0e}" for lr in history["lr"]), flush=True)
if rank == 0:
    print("ranks", torch.distributed.get_world_size(), "epochs", len(history))
