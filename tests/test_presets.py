"""The paper presets (configs/paper/): each is a valid config whose only blanks are paths, and each
plans its whole DAG (snakemake -n, the README's command) on a generated stand-in corpus."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import write_video
from signpipe.config import check_config
from signpipe.datasets import build_manifest
from test_workflow import jobs_planned

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
PRESETS = sorted((REPO / "configs" / "paper").glob("*.yaml"))
FILL = "FILL_ME/"
"""Prefix of every value the user fills in."""
PATH_KEYS = {"index", "videos", "index_dir", "root", "config", "checkpoint", "dir", "confusing", "normal"}
"""Keys whose values are paths: the only blanks a preset may have."""
GLOSSES = ("hello", "world", "thanks")


def blanks(node, keys=()):
    """(key path, value) of every FILL_ME value in a config."""
    if isinstance(node, dict):
        return [found for key, value in node.items() for found in blanks(value, (*keys, key))]
    if isinstance(node, list):
        return [found for k, value in enumerate(node) for found in blanks(value, (*keys, k))]
    return [(keys, node)] if isinstance(node, str) and node.startswith(FILL) else []


def preset(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_there_is_a_preset_per_paper_row():
    names = {path.stem for path in PRESETS}
    assert {"signbert_wlasl2000", "signbert_msasl1000", "signbert_nmfs_csl", "glenet_nmfs_csl"} <= names
    assert {"hma_nmfs_csl", "hma_slr500", "hma_msasl1000", "hma_wlasl2000"} <= names


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_is_valid_and_its_only_blanks_are_paths(path):
    cfg = preset(path)
    check_config(cfg, SCHEMA)
    found = blanks(cfg)
    assert found, "a preset points at the user's data"
    assert {keys[-1] for keys, _ in found} <= PATH_KEYS
    assert cfg["results"] == f"results/{path.stem}", "presets never share (and overwrite) a results folder"
    assert f"--configfile configs/paper/{path.name} --replace-workflow-config" in path.read_text()


def stand_in_file(value: str, root: Path, folder: bool) -> str:
    """A stand-in for a FILL_ME path outside a dataset block: a folder, or a file of class labels."""
    target = root / value[len(FILL):]
    if folder:
        target.mkdir(parents=True, exist_ok=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("0\n")
    return str(target)


def stand_in_dataset(block: dict, root: Path) -> dict:
    """The dataset block pointed at a small generated corpus in the adapter's own layout:
    three glosses, a few tiny videos."""
    filled = dict(block)
    if block["adapter"] == "wlasl":
        ids = [f"{k:05d}" for k in range(len(GLOSSES) * 3)]
        splits = ["train", "val", "test"] * len(GLOSSES)
        index = [{"gloss": gloss, "instances": [
            {"video_id": ids[3 * g + k], "url": "http://x/y.mp4", "bbox": [0, 0, 10, 10], "fps": 25,
             "frame_start": 1, "frame_end": -1, "instance_id": k, "signer_id": k, "source": "x",
             "split": splits[k], "variation_id": 0} for k in range(3)]} for g, gloss in enumerate(GLOSSES)]
        (root / "wlasl").mkdir(parents=True)
        (root / "wlasl" / "WLASL_v0.3.json").write_text(json.dumps(index))
        nslt = {ids[3 * g + k]: {"subset": splits[k], "action": [g, 1, -1]} for g in range(len(GLOSSES)) for k in range(3)}
        (root / "wlasl" / f"nslt_{block['subset']}.json").write_text(json.dumps(nslt))
        videos = [root / "wlasl" / "videos" / f"{video_id}.mp4" for video_id in ids]
        filled.update(index=str(root / "wlasl" / "WLASL_v0.3.json"), videos=str(root / "wlasl" / "videos"))
    elif block["adapter"] == "msasl":
        videos = []
        for split in ("train", "val", "test"):
            samples = [{"clean_text": gloss, "label": label, "signer_id": label, "url": "https://youtu.be/abcdefghijk",
                        "start_time": 0.0, "end_time": 1.0, "fps": 25.0, "width": 96.0, "height": 64.0,
                        "box": [0, 0, 1, 1]} for label, gloss in enumerate(GLOSSES)]
            (root / "msasl").mkdir(parents=True, exist_ok=True)
            (root / "msasl" / f"MSASL_{split}.json").write_text(json.dumps(samples))
            videos += [root / "msasl" / "clips" / f"{split}_{k:05d}.mp4" for k in range(len(samples))]
        filled.update(index_dir=str(root / "msasl"), videos=str(root / "msasl" / "clips"))
    else:  # folder: one class folder per gloss, a video of one train and one test signer, named by `pattern`
        signers = [block["splits"]["train"][0], block["splits"]["test"][0]]
        names = [next(name for name in (f"{signer}_0", f"{signer}_s1_00_0_color")
                      if (match := re.match(block["pattern"], name)) and match["signer"] == signer)
                 for signer in signers]
        videos = [root / "folder" / f"{k:06d}" / f"{name}.{block['extensions'][0]}"
                  for k in range(len(GLOSSES)) for name in names]
        filled.update(root=str(root / "folder"))
    for path in videos:
        write_video(path, frames=4, width=32, height=32)
    return filled


def fill(cfg: dict, root: Path) -> dict:
    """The preset with every blank pointed at a stand-in and its results under ``root``."""
    cfg = json.loads(json.dumps(cfg))
    cfg["datasets"] = {name: stand_in_dataset(block, root / name) for name, block in cfg["datasets"].items()}
    for keys, value in blanks(cfg):
        node = cfg
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = stand_in_file(value, root / "files", folder=keys[-1] == "dir")
    cfg["results"] = str(root / "results")
    return cfg


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_preset_plans_its_dag_on_a_stand_in_corpus(path, tmp_path):
    cfg = fill(preset(path), tmp_path)
    assert not blanks(cfg)
    for name, block in cfg["datasets"].items():
        manifest, missing = build_manifest(block, name=name)
        assert len(manifest) >= 6 and missing.empty, f"the stand-in of {name} is a corpus its adapter reads"
    filled = tmp_path / path.name
    filled.write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", "--configfile", str(filled),
                           "--replace-workflow-config"], cwd=REPO, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    counts = jobs_planned(out)
    models = cfg["finetune"]["models"]
    assert counts["finetune_model"] == len(models) * len(cfg["datasets"])
    assert counts.get("pretrain_signbert", 0) == ("signbert" in models)  # only SignBERT's presets pre-train
    assert counts["fuse"] == len(cfg["datasets"]) and counts["tables"] == 1
    assert "/demo/" not in out, "the demo's config.yaml stays out of a preset's run"


def test_rgb3d_without_checkpoint_warns_that_h_plus_r_stays_below_the_paper(caplog):
    """The presets leave rgb3d's Kinetics checkpoint as an optional fill: a run without it says what it costs."""
    from signpipe.models.rgb3d import build

    build(3, {"arch": "r3d_18", "checkpoint": None})
    assert "H+R will not reach their numbers" in caplog.text
