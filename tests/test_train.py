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
    CHECKPOINT, CURVE_NAMES, TrainConfig, code_digest, curves_figure, eval_loader, fit, input_fingerprint, predict,
    resolve_device, save_checkpoint, shard_of, train_config,
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
    calls = []

    def killed_in_epoch_3(model, batch):
        calls.append(1)
        if len(calls) > 2 * 6:  # 96 samples in batches of 16: six steps an epoch
            raise KeyboardInterrupt("killed")
        return classification_step(model, batch)

    with pytest.raises(KeyboardInterrupt):
        fit(first, killed_in_epoch_3, TinyData(), tmp_path / "b", CFG, progress=False)
    assert torch.load(tmp_path / "b" / CHECKPOINT)["epoch"] == 2
    resumed = TinyNet()  # a new process: fresh weights, then the checkpoint
    history = fit(resumed, classification_step, TinyData(), tmp_path / "b", CFG, progress=False)
    assert history["epoch"].tolist() == [1, 2, 3, 4]
    for key, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=0)
    (tmp_path / "b" / "log.csv").unlink()  # Snakemake removes declared outputs before a rerun
    again = TinyNet()
    history = fit(again, classification_step, TinyData(), tmp_path / "b", CFG, progress=False)
    assert len(history) == 4 and len(pd.read_csv(tmp_path / "b" / "log.csv")) == 4
    assert history["seconds"].tolist() != pd.DataFrame(torch.load(tmp_path / "a" / CHECKPOINT)["history"])[
        "seconds"].tolist()  # a finished run is trained again (--forcerun), not taken as it is
    reused = TinyNet()
    fit(reused, classification_step, TinyData(), tmp_path / "b", CFG, progress=False, reuse_finished=True)
    for key, value in again.state_dict().items():  # unless reuse_finished (an earlier phase)
        torch.testing.assert_close(reused.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoint_of_other_inputs_or_settings_is_not_resumed(tmp_path):
    fit(TinyNet(), classification_step, TinyData(), tmp_path, TrainConfig(**{**CFG.__dict__, "epochs": 3}),
        progress=False, fingerprint="inputs-a")
    state = torch.load(tmp_path / CHECKPOINT)
    state["epoch"], state["history"] = 2, state["history"][:2]  # as if killed after epoch 2 of 3
    save_checkpoint(tmp_path / CHECKPOINT, state)
    fewer = fit(TinyNet(), classification_step, TinyData(), tmp_path, TrainConfig(**{**CFG.__dict__, "epochs": 2}),
                progress=False, fingerprint="inputs-a")
    assert fewer["seconds"].tolist() != [row["seconds"] for row in state["history"]]  # not "resuming after 2 of 2"
    other_inputs = fit(TinyNet(), classification_step, TinyData(), tmp_path, TrainConfig(**{**CFG.__dict__, "epochs": 1}),
                       progress=False, fingerprint="inputs-b")
    assert other_inputs["epoch"].tolist() == [1]  # a fresh run, not "already past epoch 1"
    other_lr = fit(TinyNet(), classification_step, TinyData(), tmp_path,
                   TrainConfig(**{**CFG.__dict__, "epochs": 2, "lr": 5e-3}), progress=False, fingerprint="inputs-b")
    assert other_lr["epoch"].tolist() == [1, 2] and other_lr["lr"].iloc[0] == 5e-3


def test_lowering_the_epochs_of_a_finished_run_trains_afresh(tmp_path):
    """Issue: 'resuming after epoch 5 of 2' reused the longer-trained model."""
    torch.manual_seed(0)
    fit(TinyNet(), classification_step, TinyData(), tmp_path / "long", TrainConfig(**{**CFG.__dict__, "epochs": 4}),
        progress=False)
    shared = tmp_path / "long"
    torch.manual_seed(0)
    short = TinyNet()
    fit(short, classification_step, TinyData(), shared, TrainConfig(**{**CFG.__dict__, "epochs": 2}), progress=False)
    torch.manual_seed(0)
    fresh = TinyNet()
    fit(fresh, classification_step, TinyData(), tmp_path / "fresh", TrainConfig(**{**CFG.__dict__, "epochs": 2}),
        progress=False)
    for key, value in fresh.state_dict().items():
        torch.testing.assert_close(short.state_dict()[key], value, rtol=0, atol=0)
    assert torch.load(shared / CHECKPOINT)["epoch"] == 2


def test_checkpoints_load_without_running_code(tmp_path):
    """A planted pickle in checkpoint.pt must not run: checkpoints are read with weights_only."""
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    with open(tmp_path / CHECKPOINT, "wb") as f:
        pickle.dump({"run": Payload()}, f)
    history = fit(TinyNet(), classification_step, TinyData(), tmp_path, TrainConfig(**{**CFG.__dict__, "epochs": 1}),
                  progress=False)
    assert not marker.exists() and history["epoch"].tolist() == [1]


@pytest.mark.parametrize("schedule", ["plateau", "cosine"])
def test_schedules_and_sgd(tmp_path, schedule):
    cfg = TrainConfig(epochs=4, batch_size=16, lr=1e-2, optimizer="sgd", schedule=schedule, patience=0,
                      lr_gamma=0.5, device="cpu")
    seen = []

    def evaluate(model):
        seen.append(len(seen))
        return {"val_loss": 1.0}  # never improves: a plateau schedule decays after every epoch but the first

    history = fit(TinyNet(), classification_step, TinyData(), tmp_path, cfg, evaluate=evaluate, progress=False)
    if schedule == "plateau":
        assert history["lr"].tolist() == pytest.approx([1e-2, 1e-2, 5e-3, 2.5e-3])
    else:
        assert history["lr"].tolist() == pytest.approx([1e-2 * (1 + np.cos(np.pi * e / 4)) / 2 for e in range(4)])
    state = torch.load(tmp_path / CHECKPOINT)
    assert "momentum_buffer" in next(iter(state["optimizer"]["state"].values()))


def test_plateau_steps_on_the_validation_loss_after_it_is_computed(tmp_path):
    """The decay must follow this epoch's val loss, not the previous one's."""
    losses = iter([1.0, 0.5, 0.9, 0.9, 0.9])
    cfg = TrainConfig(epochs=5, batch_size=16, lr=1e-2, schedule="plateau", patience=1, lr_gamma=0.1, device="cpu")
    history = fit(TinyNet(), classification_step, TinyData(), tmp_path, cfg,
                  evaluate=lambda m: {"val_loss": next(losses)}, progress=False)
    # best 0.5 at epoch 2; epochs 3 and 4 do not improve -> decay after epoch 4 (patience 1), lr of epoch 5 lower
    assert history["lr"].tolist() == pytest.approx([1e-2, 1e-2, 1e-2, 1e-2, 1e-3])


def test_train_config_names_a_bad_choice():
    with pytest.raises(ValueError, match="optimizer: 'adamw' unknown; known: adam, sgd"):
        train_config({"optimizer": "adamw"})


def test_input_fingerprint_follows_files_and_settings(tmp_path):
    a = tmp_path / "a.h5"
    a.write_bytes(b"1")
    first = input_fingerprint([a], {"hidden": 64})
    assert input_fingerprint([a], {"hidden": 64}) == first != input_fingerprint([a], {"hidden": 32})
    a.write_bytes(b"22")
    assert input_fingerprint([a], {"hidden": 64}) != first


def test_code_digest_follows_code_not_docstrings_or_comments(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg"
    (package / "models").mkdir(parents=True)
    for init in (package / "__init__.py", package / "models" / "__init__.py"):
        init.write_text("")
    model = package / "models" / "net.py"
    model.write_text('"""A net."""\nWIDTH = 64\n')
    (package / "other.py").write_text("X = 1\n")
    (package / "notes.txt").write_text("not code")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = code_digest(["fakepkg.models.net"])
    package_digest = code_digest(["fakepkg.models"])  # a package: all of its files
    (package / "notes.txt").write_text("still not code")
    (package / "other.py").write_text("X = 2\n")  # not a module of this run
    model.write_text('"""A net, documented better."""\n# a comment\n\nWIDTH = 64  # channels\n')
    assert code_digest(["fakepkg.models.net"]) == first and code_digest(["fakepkg.models"]) == package_digest
    model.write_text('"""A net."""\nWIDTH = 32\n')
    assert code_digest(["fakepkg.models.net"]) != first and code_digest(["fakepkg.models"]) != package_digest
    with pytest.raises(ValueError, match="no module"):
        code_digest(["fakepkg.nothing"])


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path):
    path = tmp_path / CHECKPOINT
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises(Exception):
        save_checkpoint(path, {"epoch": 2, "bad": lambda: None})  # cannot be pickled
    assert torch.load(path)["epoch"] == 1
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


def test_evaluation_shards_are_whole_batches_each_sample_once_in_order():
    for length, batch, world in ((13, 4, 2), (3, 4, 2), (64, 8, 3), (0, 4, 2), (10, 1, 4)):
        shards = [shard_of(length, batch, rank, world) for rank in range(world)]
        assert [i for shard in shards for i in shard] == list(range(length))
        assert all(shard.start % batch == 0 for shard in shards)  # one process's batches, not new ones
    assert [len(shard_of(13, 4, rank, 2)) for rank in (0, 1)] == [8, 5]


def test_evaluation_uses_the_training_workers_but_no_more_than_it_has_batches_to_spare():
    cpu = torch.device("cpu")
    assert eval_loader(TinyData(20), 8, cpu, num_workers=4).num_workers == 2  # 3 batches
    assert eval_loader(TinyData(5), 8, cpu, num_workers=4).num_workers == 0  # one batch: the main process loads it
    model = TinyNet()
    logits, _, ids = predict(model, TinyData(20), forward, batch_size=8, num_workers=2)
    np.testing.assert_array_equal(logits, predict(model, TinyData(20), forward, batch_size=8)[0])
    assert ids == [f"v{i:03d}" for i in range(20)]  # in dataset order


def test_device_choice():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")


def test_torchrun_two_ranks_share_the_schedule_draw_their_own_masks_log_the_mean_and_evaluate_their_shards(tmp_path):
    """DistributedDataParallel through torchrun on CPU (gloo): the same code, two ranks. Evaluation
    runs on both ranks, each on its share of an odd-sized set, and gives what one process gives
    with the checkpoint's weights (rank 0's BatchNorm statistics on every rank)."""
    from ddp_fit import VAL_BATCH, VAL_SIZE, NormNet, ReadLog

    tests = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(tests / "ddp_fit.py"), str(tmp_path)],  # standalone: a free port, not a fixed one
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ranks 2 epochs 3" in proc.stdout
    state = torch.load(tmp_path / CHECKPOINT)
    assert state["epoch"] == 3
    # every rank steps the plateau schedule on the same validation loss
    assert "rank 0 lr 1e-02 1e-02 1e-03" in proc.stdout and "rank 1 lr 1e-02 1e-02 1e-03" in proc.stdout
    assert "same draws on both ranks: False" in proc.stdout  # masks and dropout seeded per rank
    assert "rank column 0.5 0.5 0.5" in proc.stdout  # training metrics: the mean over both ranks
    gathered = torch.load(tmp_path / "eval.pt", weights_only=False)
    assert gathered["read"] == [list(range(8)), list(range(8, VAL_SIZE))]  # each rank its whole batches, once
    model = NormNet()
    model.load_state_dict(state["model"])
    logits, labels, ids = predict(model, ReadLog(VAL_SIZE, seed=1), forward, batch_size=VAL_BATCH, device="cpu")
    np.testing.assert_array_equal(gathered["logits"], logits)  # to the bit: the same batches, the same weights
    assert gathered["ids"] == ids and (gathered["labels"] == labels).all()
    accuracy = float((logits.argmax(1) == labels).mean())
    assert pd.read_csv(tmp_path / "log.csv")["val_acc"].iloc[-1] == pytest.approx(accuracy, abs=1e-12)  # CSV digits


def test_curves_name_terms_use_percent_integer_epochs_and_named_phases():
    """curves.png as a reader needs it: loss terms named as the papers do, accuracy in % on an axis
    that says so, integer epoch ticks on a 2-epoch run, legends below the data, every phase named."""
    history = pd.DataFrame({"epoch": [1, 1], "train_loss": [2.0, 1.0], "mu_loss": [0.5, 0.4], "spa_loss": [3.0, 2.0],
                            "val_acc": [0.25, 0.5], "phase": ["streams", "joint"]})
    fig = curves_figure(history, "glenet on demo")
    losses, metrics = fig.axes
    assert [t.get_text() for t in losses.get_legend().get_texts()] == [
        CURVE_NAMES["train_loss"], r"$L_{\mu}$: mutual promotion", CURVE_NAMES["spa_loss"]]
    assert metrics.get_ylabel() == "accuracy (%)" and list(metrics.lines[0].get_ydata()) == [25.0, 50.0]
    assert all(float(t).is_integer() for t in losses.get_xticks() if 0.5 <= t <= 2.5)
    legend = losses.get_legend().get_window_extent()
    assert legend.y1 < losses.get_window_extent().y0  # below the panel, not over the lines
    assert {t.get_text() for t in losses.texts} == {"phase: streams", "phase: joint"}
    pretrain = curves_figure(pd.DataFrame({"train_loss": [3.0], "pck20_input": [0.84], "pck20_output": [0.22]}))
    assert "reconstruction PCK@20 22.0% vs masked input 84.0%, below the input" in pretrain._suptitle.get_text()
    assert pretrain.axes[1].get_ylabel() == "PCK / AUC (%)"
