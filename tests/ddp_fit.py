"""Run by tests/test_train.py under `torchrun --nproc_per_node 2`: fit on CPU with gloo.

The plateau schedule follows the validation loss (constant, so it decays after every epoch but
the first): both ranks must decay alike. Each step draws a number from the global stream (as
masking and dropout do) and logs its rank: the ranks must draw differently, and log.csv must
hold the mean over both ranks (0.5). Every epoch both ranks evaluate an odd-sized validation set
with ``predict``, each its share of the batches, recording the samples it read; rank 0 saves the
last epoch's gathered predictions and what each rank read to ``<out>/eval.pt``."""

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from test_train import TinyData, TinyNet, classification_step, forward
from signpipe.train import TrainConfig, fit, predict

VAL_SIZE, VAL_BATCH = 13, 4
"""Four batches, the last of one sample: rank 0 evaluates samples 0-7, rank 1 samples 8-12."""


class NormNet(TinyNet):
    """TinyNet with BatchNorm: after an epoch each rank's running statistics differ (DDP hands out
    rank 0's buffers before each step, then each rank updates them with its own batch)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))


class ReadLog(TinyData):
    """TinyData that records which samples this process read."""

    def __init__(self, n: int, seed: int = 0):
        super().__init__(n, seed)
        self.read: list[int] = []

    def __getitem__(self, i: int) -> dict:
        self.read.append(int(i))
        return super().__getitem__(i)


if __name__ == "__main__":
    draws = []
    val = ReadLog(VAL_SIZE, seed=1)
    last = {}

    def step(model, batch):
        loss, metrics = classification_step(model, batch)
        draws.append(float(torch.rand(())))
        return loss, {**metrics, "rank": torch.tensor(float(dist.get_rank()))}

    def evaluate(model):
        val.read.clear()
        logits, labels, ids = predict(model, val, forward, batch_size=VAL_BATCH, device="cpu")
        last.update(logits=logits, labels=labels, ids=ids, read=list(val.read))
        return {"val_loss": 1.0, "val_acc": float((logits.argmax(1) == labels).mean())}

    history = fit(NormNet(), step, TinyData(64), sys.argv[1],
                  TrainConfig(epochs=3, batch_size=8, device="cpu", lr=1e-2, schedule="plateau", patience=0),
                  evaluate=evaluate, progress=False)
    rank = int(dist.get_rank())
    print(f"rank {rank} lr " + " ".join(f"{lr:.0e}" for lr in history["lr"]), flush=True)
    every = [None, None]
    dist.all_gather_object(every, draws)
    read = [None, None]
    dist.all_gather_object(read, last.get("read", []))  # none: this rank never evaluated
    if rank == 0:
        print("ranks", dist.get_world_size(), "epochs", len(history))
        print("same draws on both ranks:", every[0] == every[1])
        print("rank column", " ".join(f"{value:g}" for value in history["rank"]))
        torch.save({**last, "read": read}, Path(sys.argv[1]) / "eval.pt")
