"""`signpipe predict` on a finished tiny run: the run's own logits back, fusion with the run's
weights, bad videos as rows, one-line errors, keypoint runs from their files, the Snakemake target."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from signpipe.cli import main
from signpipe.fusion import fuse_scores, softmax
from signpipe.predict import Recogniser
from signpipe.predictions import read_predictions
from test_workflow import KEYPOINTS, TINY, jobs_planned, snakemake

pytestmark = pytest.mark.slow  # every test reads a finished run of the DAG (built once per module)

RUN = TINY[:TINY.index("pretrain:")] + """\
pretrain:
  model: {hidden: 16, layers: 1, heads: 2, feedforward: 32, gcn_channels: 8}
finetune:
  models: [signbert, stgcn, rgb3d]
  pretrained: false
  epochs: 1
  batch_size: 4
  threads: 1
  stgcn: {layers: [[8, 1], [16, 2]]}
  rgb3d: {size: 16, num_frames: 4}
fusion: {combos: [[signbert, stgcn]], weights: val}
predict:
  new: {dataset: tiny, videos: new, model: signbert+stgcn, top: 2}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A finished run of three models (SignBERT, ST-GCN, 3D-CNN) and their fusion on a tiny synthetic corpus."""
    root = tmp_path_factory.mktemp("predict")
    (root / "config.yaml").write_text(RUN)
    snakemake("--cores", "2", "results/tiny/fusion/table.csv", cwd=root)
    return root


def run_test_videos(run: Path, model: str = "stgcn") -> tuple[list[str], list[Path]]:
    """The run's test videos (ids, files), in the order of the model's predictions.h5."""
    ids = read_predictions(run / "models" / model / "predictions.h5")[0]["test"].video_id
    return ids, [run / "corpus" / "videos" / f"{video_id}.mp4" for video_id in ids]


@pytest.mark.parametrize("model", ["signbert", "stgcn", "rgb3d"])
def test_predict_reproduces_the_run_logits(workdir, model):
    """Predict's decode -> pose -> hands -> model gives, on the run's test videos, the logits its finetune wrote."""
    run = workdir / "results" / "tiny"
    expected = read_predictions(run / "models" / model / "predictions.h5")[0]["test"]
    ids, files = run_test_videos(run, model)
    with Recogniser(run, model, device="cpu") as recogniser:
        got = list(recogniser(files, progress=False))
    assert [p.video_id for p in got] == ids and not any(p.reason for p in got)
    logits = np.stack([p.logits[model] for p in got])
    assert np.abs(logits - expected.logits).max() <= 1e-4
    assert np.allclose(np.stack([p.scores for p in got]), softmax(expected.logits), atol=1e-5)


@pytest.mark.parametrize("rule", ["sum", "product"])
def test_fusion_uses_the_run_fusion_weights(workdir, rule):
    """A+B: the models' scores fused with the weights and rule of the run's fusion table: ``sum``, the
    softmax scores over the weights' sum; ``product``, softmax of the weighted logits (``calibrated``)."""
    run = workdir / "results" / "tiny"
    table = run / "fusion" / "table.csv"
    original = table.read_text()
    rows = pd.read_csv(table, dtype={"weights": str})
    rows.loc[rows["models"] == "signbert+stgcn", ["weights", "rule"]] = ["1:0.25", rule]  # as if val had chosen them
    rows.to_csv(table, index=False)
    try:
        ids, files = run_test_videos(run)
        with Recogniser(run, "signbert+stgcn", device="cpu") as recogniser:
            got = np.stack([p.scores for p in recogniser(files, progress=False)])
            assert recogniser.weights == (1.0, 0.25) and recogniser.rule == rule
    finally:
        table.write_text(original)
    logits = [read_predictions(run / "models" / m / "predictions.h5")[0]["test"].logits for m in ("signbert", "stgcn")]
    expected = (fuse_scores([softmax(z) for z in logits], (1.0, 0.25)) / 1.25 if rule == "sum"
                else softmax(logits[0] + 0.25 * logits[1]))
    assert np.abs(got - expected).max() <= 1e-5


def test_corrupt_video_is_a_row_and_the_others_are_predicted(workdir, tmp_path, capsys):
    run = workdir / "results" / "tiny"
    ids, files = run_test_videos(run)
    folder = tmp_path / "new"
    folder.mkdir()
    for path in files[:2]:
        shutil.copy(path, folder / path.name)
        shutil.copy(run / "corpus" / "keypoints" / f"{path.stem}.npz", folder / f"{path.stem}.npz")  # its sidecar
    shutil.copy(files[2], folder / "lost.mp4")  # no sidecar: the run's pose backend has nothing to read
    data = files[2].read_bytes()
    (folder / "cut.mp4").write_bytes(data[: len(data) // 3])  # truncated: its index (moov) is gone
    (folder / "notes.mp4").write_text("not a video")
    out = tmp_path / "out.json"
    assert main(["predict", str(run), str(folder), "--model", "stgcn", "--top", "2", "--json", str(out),
                 "--sheet", str(tmp_path / "sheet.png"), "--device", "cpu"]) == 0
    rows = {row["video"]: row for row in json.loads(out.read_text())}
    assert sorted(rows) == sorted([*ids[:2], "cut", "lost", "notes"])
    assert rows["lost"]["top"] == [] and rows["lost"]["reason"].startswith("no sidecar keypoints")
    for video_id in ids[:2]:
        assert rows[video_id]["reason"] == "" and len(rows[video_id]["top"]) == 2
        assert (tmp_path / f"sheet-{video_id}.png").stat().st_size > 0
    for bad in ("cut", "notes"):
        assert rows[bad]["top"] == [] and rows[bad]["reason"].startswith("cannot decode (")
        assert not (tmp_path / f"sheet-{bad}.png").exists()
    printed = capsys.readouterr().out
    assert "cut" in printed and "cannot decode" in printed


def test_unknown_model_names_the_run_models(workdir, capsys):
    run = workdir / "results" / "tiny"
    assert main(["predict", str(run), str(run_test_videos(run)[1][0]), "--model", "signbert+unknown"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "no model 'unknown'" in err and "its models: rgb3d, signbert, stgcn" in err


def test_missing_checkpoint_is_one_line_naming_it(workdir, capsys):
    run = workdir / "results" / "tiny"
    checkpoint = run / "models" / "stgcn" / "checkpoint.pt"
    moved = checkpoint.with_name("moved.pt")
    checkpoint.rename(moved)
    try:
        assert main(["predict", str(run), str(run_test_videos(run)[1][0]), "--model", "stgcn"]) == 1
    finally:
        moved.rename(checkpoint)
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{checkpoint}: missing" in err


def test_snakemake_predict_target_writes_its_csv_once(workdir):
    """predict.new: a folder of new videos -> results/tiny/predict/new.csv, cached like every rule."""
    run = workdir / "results" / "tiny"
    ids, files = run_test_videos(run)
    (workdir / "new").mkdir(exist_ok=True)
    for path in files:
        shutil.copy(path, workdir / "new" / path.name)
        shutil.copy(run / "corpus" / "keypoints" / f"{path.stem}.npz", workdir / "new" / f"{path.stem}.npz")
    snakemake("--cores", "1", "results/tiny/predict/new.csv", cwd=workdir)
    table = pd.read_csv(run / "predict" / "new.csv", dtype={"video": str}, keep_default_na=False)
    assert table["video"].tolist() == sorted(ids)
    assert list(table.columns) == ["video", "path", "class_1", "p_1", "class_2", "p_2", "reason"]
    with Recogniser(run, "signbert+stgcn", device="cpu") as recogniser:
        best = [p.top(recogniser.run.classes, 1)[0] for p in recogniser([workdir / "new"], progress=False)]
    assert table["class_1"].tolist() == [name for _, name, _ in best]
    assert np.allclose(table["p_1"], [p for _, _, p in best], atol=1e-4)
    again = snakemake("-n", "results/tiny/predict/new.csv", cwd=workdir)
    assert "Nothing to be done" in again.stdout + again.stderr
    assert (table["reason"] == "").all()
    (workdir / "new" / files[0].name).unlink()  # a changed folder reruns the target
    again = snakemake("-n", "results/tiny/predict/new.csv", cwd=workdir)
    assert jobs_planned(again.stdout + again.stderr).get("predict") == 1


def test_keypoint_run_predicts_from_parquet(shared_data, tmp_path, capsys):
    """The shared gislr slice: predict reads the run's .parquet files through its adapter's import and gets
    the run's ST-GCN test logits; a video is refused with the file types the run takes."""
    index = shared_data / "gislr" / "train.csv"
    if not index.is_file():
        pytest.skip(f"real Kaggle ASL Signs slice not found at {index}")
    config = KEYPOINTS.format(index=index).replace("models: [signbert, stgcn]", "models: [stgcn]")
    config = config.replace("fusion: {combos: [[signbert, stgcn]]}", "fusion: {combos: []}")
    (tmp_path / "config.yaml").write_text(config)
    snakemake("--cores", "2", "results/asl/models/stgcn/predictions.h5", cwd=tmp_path)
    run = tmp_path / "results" / "asl"
    expected = read_predictions(run / "models" / "stgcn" / "predictions.h5")[0]["test"]
    manifest = pd.read_csv(run / "manifest.csv", dtype={"video_id": str}).set_index("video_id")
    files = [Path(manifest.loc[video_id, "path"]) for video_id in expected.video_id]
    assert all(path.suffix == ".parquet" for path in files)
    with Recogniser(run, "stgcn", device="cpu") as recogniser:
        got = list(recogniser(files, progress=False))
    assert [p.video_id for p in got] == expected.video_id
    assert np.abs(np.stack([p.logits["stgcn"] for p in got]) - expected.logits).max() <= 1e-4
    assert main(["predict", str(run), str(tmp_path / "clip.mp4"), "--model", "stgcn"]) == 1
    assert "is a keypoint run (gislr); it predicts from .parquet files, not videos" in capsys.readouterr().err
