"""The Snakemake DAG: lint, schema errors, profiles, and one end-to-end run on a tiny synthetic corpus."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pandas as pd
import pytest
import torch

from conftest import write_video
from signpipe.predictions import read_predictions
from signpipe.shards import read_index, shard_of

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

TINY = """\
results: results
datasets:
  tiny:
    adapter: synthetic
    num_classes: 3
    signers: 3
    repeats: 1
    frames: 10
    width: 96
    height: 72
    num_shards: 2
    pose: {backend: sidecar}
decode: {short_side: 64, jpeg_quality: 80, threads: 1}
pose: {threads: 1}
hands: {crop_size: 32, threads: 1}
device: cpu
pretrain:
  epochs: 1
  batch_size: 4
  threads: 1
  model: {hidden: 16, layers: 1, heads: 2, feedforward: 32, gcn_channels: 8}
finetune: {epochs: 1, batch_size: 4, threads: 1}
"""


def snakemake(*args: str, cwd: Path = REPO, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def jobs_planned(dry_run_output: str) -> dict[str, int]:
    """The 'Job stats' table of a dry run as {rule: count}."""
    lines = dry_run_output.splitlines()
    start = lines.index("Job stats:") + 3
    counts = {}
    for line in lines[start:]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def test_lint_is_clean():
    proc = snakemake("--lint", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Lints for" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profiles_dry_run(profile, tmp_path):
    """The default config.yaml plans the whole demo DAG under each profile (in a fresh workdir)."""
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    proc = snakemake("-n", "--profile", str(REPO / "workflow" / "profiles" / profile), cwd=tmp_path)
    counts = jobs_planned(proc.stdout + proc.stderr)
    assert counts["synth"] == 1 and counts["manifest"] == 1
    assert counts["decode"] == counts["pose"] == counts["hands"] == 4


STAGE_RULES = {
    "decode": {"synth", "manifest", "shard_manifest", "decode", "failures"},
    "pose": {"pose", "pose_quality"},
    "hands": {"hands"},
    "pretrain": {"pretrain"},
    "finetune": {"finetune"},
}


@pytest.mark.parametrize("stage", list(STAGE_RULES))
def test_stage_target_runs_every_dataset_up_to_it(stage, tmp_path):
    """`snakemake upto_<stage>` plans that stage and the ones before it, with the dataset-level lists
    (manifest and missing, failures, pose quality), and nothing after it."""
    (tmp_path / "config.yaml").write_text(TINY)
    planned = jobs_planned(snakemake("-n", f"upto_{stage}", cwd=tmp_path).stdout)
    stages = list(STAGE_RULES)
    expected = set().union(*(STAGE_RULES[s] for s in stages[:stages.index(stage) + 1]))
    assert set(planned) == expected | {f"upto_{stage}"}, planned
    assert planned["manifest"] == planned["failures"] == 1 and planned["decode"] == 2
    if "pose_quality" in expected:
        assert planned["pose_quality"] == 1 and planned["pose"] == 2


@pytest.mark.parametrize(
    "config, names",
    [
        ("datasets:\n  d: {adapter: synthetic, num_clases: 3}\n", "num_clases"),
        ("datasets:\n  d: {adapter: wlasl, videos: v}\n", "'index' is a required property"),
        ("datasets:\n  d: {adapter: synthetic}\ndecode: {short_side: big}\n", "short_side"),
        ("datasets:\n  d: {adapter: youtube}\n", "youtube"),
        ("datasets:\n  d: {adapter: synthetic}\nfinetune: {stgcn: {subsett: '133'}}\n",
         "config finetune.stgcn: unknown key 'subsett'"),
        ("datasets:\n  d: {adapter: synthetic}\nfinetune: {stgcn: {subset: '72'}}\n",
         "config finetune.stgcn.subset: '72' is not allowed; choose one of '27', '59', '133'"),
        ("datasets:\n  d: {adapter: synthetic}\npretrain: {datasets: [bda]}\n", "config pretrain.datasets: no dataset 'bda'"),
        ("datasets:\n  d: {adapter: synthetic}\nfusion: {combos: [[signbert, stgcn]]}\n",
         "'stgcn' in ['signbert', 'stgcn'] is not in finetune.models"),
        ("datasets:\n  d: {adapter: synthetic}\nfusion: {subsets: {e: {x: x.txt}}}\n", "config fusion.subsets: no dataset 'e'"),
        ("datasets:\n  d: {adapter: synthetic}\ndecodee: {}\n", "config (top level): unknown key 'decodee'"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, config, names):
    (tmp_path / "bad.yaml").write_text(config)
    proc = snakemake("-n", "--configfile", "bad.yaml", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert names in proc.stdout + proc.stderr
    assert len((proc.stdout + proc.stderr).splitlines()) < 25  # the key and what is allowed, not the schema
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_end_to_end_rerun_and_forcerun(tmp_path):
    (tmp_path / "config.yaml").write_text(TINY)
    snakemake("--cores", "2", "--configfile", "config.yaml", cwd=tmp_path)
    results = tmp_path / "results" / "tiny"
    manifest = pd.read_csv(results / "manifest.csv", dtype={"video_id": str})
    assert len(manifest) == 3 * 3 and set(manifest["split"]) == {"train", "val", "test"}
    assert pd.read_csv(results / "failures.csv").empty
    seen = []
    for shard in (0, 1):
        with h5py.File(results / "frames" / f"{shard}.h5") as f:
            index = read_index(f)
            seen += index["video_id"].tolist()
            assert set(manifest.set_index("video_id").loc[index["video_id"], "shard"]) <= {shard}
            assert len(f["jpeg"]) == index["length"].sum() and f["height"][:].max() <= 64
    assert sorted(seen) == sorted(manifest["video_id"])
    assert (tmp_path / "results" / "logs" / "decode" / "tiny" / "0.log").exists()
    assert (tmp_path / "results" / "benchmarks" / "decode" / "tiny" / "0.tsv").exists()
    quality = pd.read_csv(results / "keypoints" / "quality.csv", dtype={"video_id": str})
    assert sorted(quality["video_id"]) == sorted(manifest["video_id"]) and (quality["rate_body"] == 1).all()
    with h5py.File(results / "keypoints" / "0.h5") as f, h5py.File(results / "frames" / "0.h5") as frames:
        assert read_index(f)["length"].tolist() == read_index(frames)["length"].tolist()
        assert f.attrs["pose_backend"] == "sidecar"

    splits, _ = read_predictions(results / "models" / "signbert" / "predictions.h5")
    assert set(splits) == {"val", "test"}
    assert sorted(splits["test"].video_id) == sorted(manifest.loc[manifest["split"] == "test", "video_id"])
    assert (tmp_path / "results" / "pretrain" / "feasibility.json").exists()
    assert (tmp_path / "results" / "pretrain" / "reconstruction.png").stat().st_size > 0
    table = pd.read_csv(results / "fusion" / "table.csv")
    assert table.shape[0] >= 1 and "confusing" in " ".join(table.columns)
    assert (tmp_path / "results" / "tables" / "summary.md").exists()
    test_ids = sorted(manifest.loc[manifest["split"] == "test", "video_id"])  # from every shard, not shard 0
    assert sorted(p.stem for p in (results / "sheets").glob("*.png")) == test_ids[:4]

    again = snakemake("-n", "--configfile", "config.yaml", cwd=tmp_path)
    assert "Nothing to be done" in again.stdout + again.stderr
    # Thread counts size jobs but change no output: every stage's threads changed reruns nothing.
    (tmp_path / "threads.yaml").write_text(TINY.replace("threads: 1", "threads: 2"))
    assert TINY.count("threads: 1") == 5
    again = snakemake("-n", "--configfile", "threads.yaml", cwd=tmp_path)
    assert "Nothing to be done" in again.stdout + again.stderr

    forced = snakemake("-n", "--configfile", "config.yaml", "--forcerun", "decode", cwd=tmp_path)
    counts = jobs_planned(forced.stdout + forced.stderr)
    assert counts.get("decode") == 2 and counts.get("pose") == 2
    assert "manifest" not in counts and "synth" not in counts
    before = (results / "manifest.csv").stat().st_mtime_ns
    snakemake("--cores", "2", "--configfile", "config.yaml", "--forcerun", "decode", cwd=tmp_path)
    assert (results / "manifest.csv").stat().st_mtime_ns == before

    # The run's own benchmark records forecast a WLASL2000-sized corpus (signpipe cost).
    from signpipe.cli import main as signpipe_main

    assert signpipe_main(["cost", str(tmp_path / "results"), "--videos", "21083", "--nodes", "4", "--gpus", "2"]) == 0
    forecast = pd.read_csv(tmp_path / "results" / "cost.csv").set_index("rule")
    assert {"decode", "pose", "hands", "pretrain", "finetune", "total"} <= set(forecast.index)
    assert forecast.loc["finetune", "gpu_hours"] > 0 and forecast.loc["decode", "cpu_hours"] > 0

    # --forcerun finetune trains again: a finished checkpoint is never taken as it is.
    checkpoint = results / "models" / "signbert" / "checkpoint.pt"
    trained = checkpoint.stat().st_mtime_ns
    snakemake("--cores", "2", "--configfile", "config.yaml", "--forcerun", "finetune", cwd=tmp_path)
    log = (tmp_path / "results" / "logs" / "finetune" / "tiny" / "signbert.log").read_text()
    assert checkpoint.stat().st_mtime_ns != trained and "resuming" not in log and "training it again" in log
    assert (results / "models" / "signbert" / "figures").is_dir()

    # A changed pose option of one dataset reruns its pose jobs only.
    (tmp_path / "config.yaml").write_text(
        TINY.replace("pose: {backend: sidecar}", "pose: {backend: sidecar, sidecar_column: keypoints2}"))
    changed = snakemake("-n", "--configfile", "config.yaml", cwd=tmp_path)
    counts = jobs_planned(changed.stdout + changed.stderr)
    assert counts.get("pose") == 2 and "decode" not in counts and "manifest" not in counts

    # A changed decode param reruns decode (Snakemake's params trigger), not the manifest.
    (tmp_path / "config.yaml").write_text(TINY.replace("short_side: 64", "short_side: 48"))
    changed = snakemake("-n", "--configfile", "config.yaml", cwd=tmp_path)
    counts = jobs_planned(changed.stdout + changed.stderr)
    assert counts.get("decode") == 2 and "manifest" not in counts


LISTED = """\
results: results
datasets:
  signs:
    adapter: folder
    root: signs
    pattern: '(?P<signer>P\\d+)_.*'
    splits: {train: [P01], val: [P02], test: [P03]}
    num_shards: 4
  listed: {adapter: csv, manifest: listed.csv, num_shards: 4}
decode: {short_side: 32, jpeg_quality: 80, threads: 1}
device: cpu
"""


def test_new_and_repaired_videos_rerun_their_shards_only(tmp_path):
    """Adding a video to a folder class, a csv-listed video appearing, and a failed video replaced by
    a good one rerun the manifest and the decode of their own shards; the other shards stay cached."""
    (tmp_path / "config.yaml").write_text(LISTED)
    for name in ("hello/P01_a", "hello/P03_a", "world/P01_a", "world/P02_a"):
        write_video(tmp_path / "signs" / f"{name}.mp4", frames=4, width=48, height=32)
    write_video(tmp_path / "clips" / "a.mp4", frames=4, width=48, height=32)
    (tmp_path / "clips" / "c.mp4").write_text("not a video")  # fails to decode
    (tmp_path / "listed.csv").write_text(
        "video_id,path,label,split\na,clips/a.mp4,0,train\nb,clips/b.mp4,1,test\nc,clips/c.mp4,1,val\n")
    frames = {(ds, k): tmp_path / "results" / ds / "frames" / f"{k}.h5" for ds in ("signs", "listed") for k in range(4)}
    targets = [str(path.relative_to(tmp_path)) for path in frames.values()]
    targets += ["results/signs/manifest.csv", "results/listed/manifest.csv", "results/listed/failures.csv"]
    snakemake("--cores", "1", *targets, cwd=tmp_path)
    assert list(pd.read_csv(tmp_path / "results" / "listed" / "failures.csv")["video_id"]) == ["c"]
    assert "Nothing to be done" in snakemake("-n", *targets, cwd=tmp_path).stdout

    write_video(tmp_path / "signs" / "hello" / "P02_new.mp4", frames=4, width=48, height=32)  # added
    write_video(tmp_path / "clips" / "b.mp4", frames=4, width=48, height=32)  # recovered
    write_video(tmp_path / "clips" / "c.mp4", frames=4, width=48, height=32)  # repaired
    changed = {("signs", shard_of("hello__P02_new", 4)), ("listed", shard_of("b", 4)), ("listed", shard_of("c", 4))}
    planned = jobs_planned(snakemake("-n", *targets, cwd=tmp_path).stdout)
    assert planned["manifest"] == 2 and planned["shard_manifest"] == planned["decode"] == len(changed)
    before = {key: path.stat().st_mtime_ns for key, path in frames.items()}
    snakemake("--cores", "1", *targets, cwd=tmp_path)
    assert {key for key, path in frames.items() if path.stat().st_mtime_ns != before[key]} == changed
    for ds, video_id in [("signs", "hello__P02_new"), ("listed", "b"), ("listed", "c")]:
        with h5py.File(frames[ds, shard_of(video_id, 4)]) as f:
            assert read_index(f).set_index("video_id").loc[video_id, "length"] == 4
    assert pd.read_csv(tmp_path / "results" / "listed" / "failures.csv").empty
    assert pd.read_csv(tmp_path / "results" / "listed" / "missing.csv").empty
    assert "Nothing to be done" in snakemake("-n", *targets, cwd=tmp_path).stdout

    # A class sorted before the others renumbers their labels (stored in every shard): all rerun.
    write_video(tmp_path / "signs" / "again" / "P01_a.mp4", frames=4, width=48, height=32)
    planned = jobs_planned(snakemake("-n", *targets, cwd=tmp_path).stdout)
    manifest = pd.read_csv(tmp_path / "results" / "signs" / "manifest.csv")
    assert planned["decode"] == len(set(manifest["shard"]) | {shard_of("again__P01_a", 4)})


KEYPOINTS = """\
results: results
datasets:
  asl:
    adapter: gislr
    index: {index}
    # The shared slice has one participant, so it cannot be split by signer: the lists name sequences
    # (one per sign in val, two per sign in test). A pipeline check, not a signer-independent result.
    split_by: sequence
    splits: {{val: [1330949181, 1339088376], test: [205531021, 2228978721, 1638390970, 3324678948]}}
    default_split: train
    width: 480
    height: 640
    num_shards: 2
hands: {{crop_size: 32, threads: 1}}
device: cpu
pretrain:
  epochs: 1
  batch_size: 4
  num_frames: 8
  threads: 1
  model: {{hidden: 16, layers: 1, heads: 2, feedforward: 32, gcn_channels: 8}}
finetune: {{models: [signbert, stgcn], epochs: 1, batch_size: 4, num_frames: 8, threads: 1}}
fusion: {{combos: [[signbert, stgcn]]}}
"""


@pytest.fixture
def gislr_config(shared_data, tmp_path) -> Path:
    index = shared_data / "gislr" / "train.csv"
    if not index.is_file():
        pytest.skip(f"real Kaggle ASL Signs slice not found at {index}")
    (tmp_path / "config.yaml").write_text(KEYPOINTS.format(index=index))
    return tmp_path


def test_keypoint_dataset_plans_an_import_and_no_decode(gislr_config):
    """A keypoint dataset's DAG: the pose stage imports each shard; nothing decodes; a pixel model is refused."""
    planned = jobs_planned(snakemake("-n", cwd=gislr_config).stdout)
    assert planned["pose_import"] == planned["hands"] == 2 and "decode" not in planned and "pose" not in planned
    text = (gislr_config / "config.yaml").read_text().replace("models: [signbert, stgcn]", "models: [signbert, stgcn, hma]")
    (gislr_config / "config.yaml").write_text(text)
    proc = snakemake("-n", cwd=gislr_config, check=False)
    assert proc.returncode != 0
    assert "config finetune.models: 'hma' needs hand crops, but dataset 'asl' (adapter gislr)" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_keypoint_dataset_end_to_end(gislr_config):
    """The issue's proof: the shared gislr slice runs manifest -> pose import -> hands (no crops) -> pretrain ->
    finetune (signbert, stgcn) -> fuse -> tables, and a rerun has nothing to do."""
    snakemake("--cores", "2", cwd=gislr_config)
    results = gislr_config / "results" / "asl"
    manifest = pd.read_csv(results / "manifest.csv", dtype={"video_id": str})
    assert len(manifest) == 20 and manifest["split"].value_counts().to_dict() == {"train": 14, "test": 4, "val": 2}
    assert not (results / "frames").exists()
    assert pd.read_csv(results / "failures.csv").empty
    quality = pd.read_csv(results / "keypoints" / "quality.csv", dtype={"video_id": str})
    assert sorted(quality["video_id"]) == sorted(manifest["video_id"]) and (quality["rate_face"] > 0.5).all()
    for shard in (0, 1):
        with h5py.File(results / "hands" / f"{shard}.h5") as hands, h5py.File(results / "keypoints" / f"{shard}.h5") as kp:
            assert "crop" not in hands and not hands.attrs["crops"]
            assert kp.attrs["pose_backend"] == "import gislr"
            assert read_index(hands)["length"].tolist() == read_index(kp)["length"].tolist()
    for model in ("signbert", "stgcn"):
        splits, _ = read_predictions(results / "models" / model / "predictions.h5")
        assert sorted(splits["test"].video_id) == sorted(manifest.loc[manifest["split"] == "test", "video_id"])
    assert (gislr_config / "results" / "pretrain" / "signbert.pt").stat().st_size > 0
    summary = (gislr_config / "results" / "tables" / "summary.md").read_text()
    assert "signbert+stgcn" in summary
    assert len(list((results / "sheets").glob("*.png"))) == 4
    assert "Nothing to be done" in snakemake("-n", cwd=gislr_config).stdout


def cross_corpus_config(shared_data: Path, tmp_path: Path) -> dict:
    """docs/signbert.md's cross-corpus block, on the shared gislr slice split in two: 8 sequences as the
    unlabeled corpus, 12 as the labeled one (2 val, 2 test), with tiny sizes."""
    import yaml

    doc = (REPO / "docs" / "signbert.md").read_text().split("## Pre-training on unlabeled corpora", 1)[1]
    config = yaml.safe_load(doc.split("```yaml\n", 1)[1].split("```", 1)[0])
    index = shared_data / "gislr" / "train.csv"
    table = pd.read_csv(index, dtype=str)
    table["path"] = [str(index.parent / p) for p in table["path"]]
    table.iloc[:12].to_csv(tmp_path / "mine.csv", index=False)
    table.iloc[12:].drop(columns="sign").to_csv(tmp_path / "kaggle.csv", index=False)
    config["datasets"]["kaggle"].update(index=str(tmp_path / "kaggle.csv"), num_shards=2)
    config["datasets"]["mine"].update(index=str(tmp_path / "mine.csv"), num_shards=2, split_by="sequence",
                                      splits={"val": [1330949181, 1339088376], "test": [205531021, 1638390970]})
    tiny = {"epochs": 1, "batch_size": 4, "num_frames": 8, "threads": 1}
    config["pretrain"].update(tiny, model={"hidden": 16, "layers": 1, "heads": 2, "feedforward": 32, "gcn_channels": 8})
    config["finetune"].update(tiny)
    config.update(results="results", device="cpu", hands={"crop_size": 32, "threads": 1})
    return config


@pytest.mark.slow
def test_cross_corpus_pretraining_end_to_end(shared_data, tmp_path):
    """The issue's proof: docs/signbert.md's config pre-trains on an unlabeled corpus (manifest -> pose import
    -> hands -> pretrain only) and fine-tunes on a labeled one; signbert.pt records each dataset's train
    sequences (no val or test video of the labeled one), and nothing is fine-tuned or tabled on the other."""
    import yaml

    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cross_corpus_config(shared_data, tmp_path)))
    proc = snakemake("-n", "results/kaggle/models/signbert/predictions.h5", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "datasets.kaggle: role: pretrain (no labels) feeds pretrain only" in proc.stdout + proc.stderr
    snakemake("--cores", "2", cwd=tmp_path)
    results = tmp_path / "results"
    kaggle = pd.read_csv(results / "kaggle" / "manifest.csv")
    assert len(kaggle) == 8 and set(kaggle["split"]) == {"train"} and set(kaggle["label"]) == {-1}
    assert sorted(p.name for p in (results / "kaggle" / "hands").glob("*.h5")) == ["0.h5", "1.h5"]
    assert not (results / "kaggle" / "models").exists() and not (results / "kaggle" / "fusion").exists()
    mine = pd.read_csv(results / "mine" / "manifest.csv")
    state = torch.load(results / "pretrain" / "signbert.pt")
    assert state["datasets"] == {"kaggle": 8, "mine": int((mine["split"] == "train").sum())} == {"kaggle": 8, "mine": 8}
    splits, _ = read_predictions(results / "mine" / "models" / "signbert" / "predictions.h5")
    assert len(splits["test"].video_id) == 2
    summary = pd.read_csv(results / "tables" / "summary.csv")
    assert "kaggle" not in summary.to_csv() and "mine" in summary.to_csv()
