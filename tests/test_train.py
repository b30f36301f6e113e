"""The shared training loop on a tiny real problem: learning, resume after a kill, atomic checkpoints, DDP."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from signpipe.predictions import SplitPredictions, read_predictions, write_predictions
from signpipe.train import (
    CHECKPOINT, TrainConfig, code_digest, fit, input_fingerprint, predict, resolve_device, save_checkpoint,
)


class TinyData(torch.utils.data.Dataset):
    """Two Gaussian blobs in 8-D, one per class, with a per-epoch random jitter like clip sampling."""

    def __init__(self, n: int = 96, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.label = rng.integers(0, 2, n)
        self.x = (rng.normal(size=(n, 8)) + self.label[:, None] * 1.5).astype(np.float32)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        jitter = np.random.default_rng([self.epoch, i]).normal(scale=0.05, size=8).astype(np.float32)
        return {"x": torch.from_numpy(self.x[i] + jitter), "label": int(self.label[i]), "video_id": f"v{i:03d}"}


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 2))

    def forward(self, x):
        return self.net(x)


def forward(model, batch):
    return model(batch["x"])


def classification_step(model, batch):
    logits = forward(model, batch)
    loss = nn.functional.cross_entropy(logits, batch["label"])
    return loss, {"train_acc": float((logits.argmax(1) == batch["label"]).float().mean())}


CFG = TrainConfig(epochs=4, batch_size=16, lr=1e-2, lr_step=3, device="cpu")


def test_fit_learns_and_logs(tmp_path):
    data = TinyData()
    history = fit(TinyNet(), classification_step, data, tmp_path, CFG,
                  evaluate=lambda m: {"val_acc": float((predict(m, data, forward)[0].argmax(1) == data.label).mean())},
                  progress=False)
    assert len(history) == 4 and history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    assert history["val_acc"].iloc[-1] > 0.8
    assert history["lr"].tolist() == pytest.approx([1e-2, 1e-2, 1e-2, 1e-3])  # x0.1 after lr_step epochs
    logged = pd.read_csv(tmp_path / "log.csv")
    assert logged["epoch"].tolist() == [1, 2, 3, 4] and "samples_per_s" in logged
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resume_after_a_kill_ends_where_an_uninterrupted_run_ends(tmp_path):
    torch.manual_seed(0)
    straight = TinyNet()
    init = {k: v.clone() for k, v in straight.state_dict().items()}
    fit(straight, classification_step, TinyData(), tmp_path / "a", CFG, progress=False)

    first = TinyNet()
    first.load_state_dict(init)
    fit(first, classification_step, TinyData(), tmp_path / "b", TrainConfig(**{**CFG.__dict__, "epochs": 2}),
        progress=False)  # the job is "killed" after two epochs
    resumed = TinyNet()  # a new process: fresh weights, then the checkpoint
    history = fit(resumed, classification_step, TinyData(), tmp_path / "b", CFG, progress=False)
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    (tmp_path / "b" / "log.csv").unlink()  # Snakemake removes declared outputs before a rerun
    again = fit(TinyNet(), classification_step, TinyData(), tmp_path / "b", CFG, progress=False)
    assert len(again) == 4  # finished runs do no more work
    assert len(pd.read_csv(tmp_path / "b" / "log.csv")) == 4  # but write their log again


def test_checkpoint_of_other_inputs_or_settings_is_not_resumed(tmp_path):
    first = fit(TinyNet(), classification_step, TinyData(), tmp_path, TrainConfig(**{**CFG.__dict__, "epochs": 2}),
                progress=False, fingerprint="inputs-a")
    longer = fit(TinyNet(), classification_step, TinyData(), tmp_path, TrainConfig(**{**CFG.__dict__, "epochs": 3}),
                 progress=False, fingerprint="inputs-a")
    assert longer["epoch"].tolist() == [1, 2, 3]
    assert longer["seconds"].iloc[:2].tolist() == first["seconds"].tolist()  # continued, not retrained
    other_inputs = fit(TinyNet(), classification_step, TinyData(), tmp_path, TrainConfig(**{**CFG.__dict__, "epochs": 1}),
                       progress=False, fingerprint="inputs-b")
    assert other_inputs["epoch"].tolist() == [1]  # a fresh run, not "already past epoch 1"
    other_lr = fit(TinyNet(), classification_step, TinyData(), tmp_path,
                   TrainConfig(**{**CFG.__dict__, "epochs": 2, "lr": 5e-3}), progress=False, fingerprint="inputs-b")
    assert other_lr["epoch"].tolist() == [1, 2] and other_lr["lr"].iloc[0] == 5e-3


def test_input_fingerprint_follows_files_and_settings(tmp_path):
    a = tmp_path / "a.h5"
    a.write_bytes(b"1")
    first = input_fingerprint([a], {"hidden": 64})
    assert input_fingerprint([a], {"hidden": 64}) == first != input_fingerprint([a], {"hidden": 32})
    a.write_bytes(b"22")
    assert input_fingerprint([a], {"hidden": 64}) != first


def test_code_digest_follows_every_source_file(tmp_path):
    (tmp_path / "models").mkdir()
    model = tmp_path / "models" / "net.py"
    model.write_text("WIDTH = 64\n")
    (tmp_path / "notes.txt").write_text("not code")
    first = code_digest(tmp_path)
    (tmp_path / "notes.txt").write_text("still not code")
    assert code_digest(tmp_path) == first
    model.write_text("WIDTH = 32\n")
    assert code_digest(tmp_path) != first
    assert code_digest() == code_digest()  # the installed signpipe package


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path):
    path = tmp_path / CHECKPOINT
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises(Exception):
        save_checkpoint(path, {"epoch": 2, "bad": lambda: None})  # cannot be pickled
    assert torch.load(path, weights_only=False)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [CHECKPOINT]


def test_predictions_roundtrip(tmp_path):
    data = TinyData(20)
    logits, labels, ids = predict(TinyNet(), data, forward, batch_size=7)
    assert logits.shape == (20, 2) and ids[:2] == ["v000", "v001"] and (labels == data.label).all()
    write_predictions(tmp_path / "p.h5", {"test": SplitPredictions(logits, labels, ids)}, "tiny", 2, {"a": 1})
    splits, attrs = read_predictions(tmp_path / "p.h5")
    np.testing.assert_array_equal(splits["test"].logits, logits)
    assert splits["test"].video_id == ids and attrs["model"] == "tiny"
    with pytest.raises(ValueError, match="expected 3"):
        write_predictions(tmp_path / "q.h5", {"val": SplitPredictions(logits, labels, ids)}, "tiny", 3)


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


def test_torchrun_two_processes(tmp_path):
    """DistributedDataParallel through torchrun on CPU (gloo): the same code, two ranks."""
    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_port", "29517", str(tests / "ddp_fit.py"), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ranks 2 epochs 2" in proc.stdout
    assert torch.load(tmp_path / CHECKPOINT, weights_only=False)["epoch"] == 2
