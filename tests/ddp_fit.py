"""Run by tests/test_train.py under `torchrun --nproc_per_node 2`: fit on CPU with gloo.

The plateau schedule follows rank 0's validation loss (constant, so it decays after every epoch
but the first); the other rank has no validation and must decay alike. Each step draws a number
from the global stream (as masking and dropout do) and logs its rank: the ranks must draw
differently, and log.csv must hold the mean over both ranks (0.5)."""

import sys

import torch
import torch.distributed as dist

from test_train import TinyData, TinyNet, classification_step
from signpipe.train import TrainConfig, fit

draws = []


def step(model, batch):
    loss, metrics = classification_step(model, batch)
    draws.append(float(torch.rand(())))
    return loss, {**metrics, "rank": torch.tensor(float(dist.get_rank()))}


history = fit(TinyNet(), step, TinyData(64), sys.argv[1],
              TrainConfig(epochs=3, batch_size=8, device="cpu", lr=1e-2, schedule="plateau", patience=0),
              evaluate=lambda model: {"val_loss": 1.0}, progress=False)
rank = int(dist.get_rank())
print(f"rank {rank} lr " + " ".join(f"{lr:.0e}" for lr in history["lr"]), flush=True)
every = [None, None]
dist.all_gather_object(every, draws)
if rank == 0:
    print("ranks", dist.get_world_size(), "epochs", len(history))
    print("same draws on both ranks:", every[0] == every[1])
    print("rank column", " ".join(f"{value:g}" for value in history["rank"]))
