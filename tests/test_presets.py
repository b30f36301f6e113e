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
from signpipe.config import ConfigError, check_config
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
def test_preset_is_valid_and_its_only_blanks_are_paths(path, tmp_path):
    """The schema accepts the preset (its errors come first), the first blank is named by its key, and
    with the blanks filled it passes."""
    cfg = preset(path)
    found = blanks(cfg)
    assert found, "a preset points at the user's data"
    assert {keys[-1] for keys, _ in found} <= PATH_KEYS
    first = ".".join(map(str, found[0][0]))
    with pytest.raises(ConfigError, match=rf"^config {re.escape(first)}: '{re.escape(found[0][1])}' is a blank"):
        check_config(cfg, SCHEMA)
    check_config(fill(cfg, tmp_path), SCHEMA)
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
    assert counts["finetune"] == len(models) * len(cfg["datasets"])
    assert counts.get("pretrain", 0) == ("signbert" in models)  # only SignBERT's presets pre-train
    assert counts["fuse"] == len(cfg["datasets"]) and counts["tables"] == 1
    assert "/demo/" not in out, "the demo's config.yaml stays out of a preset's run"


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.stem)
def test_every_pixel_model_of_a_preset_lists_its_checkpoint_as_a_fill_and_random_init_warns(path, caplog):
    """The papers start HMA, GLE-Net and the RGB partner from pretrained weights signpipe cannot
    download: every preset has their checkpoint line as an optional fill, docs/presets.md lists it
    under the preset, and a run without it warns, naming the torchvision weights to save."""
    from signpipe.models.pretrained import PAPER_INIT, warn_if_random

    cfg = preset(path)
    pixel = [name for name in cfg["finetune"]["models"] if name in PAPER_INIT]
    assert pixel, "every preset trains a pixel model (rgb3d at least)"
    text, docs = path.read_text(), (REPO / "docs" / "presets.md").read_text()
    section = docs[docs.index(f"`{path.name}`", docs.index("## What you fill in")):]
    section = section[:section.index("\n")]  # the preset's one line
    for name in pixel:
        assert "checkpoint" in cfg["finetune"][name] and cfg["finetune"][name]["checkpoint"] is None
        weights = re.search(r"torchvision (\S+),", PAPER_INIT[name]).group(1)          # e.g. R3D_18_Weights.KINETICS400_V1
        assert weights in text, f"{path.name}: the {name} checkpoint line names {weights}"
        assert f"finetune.{name}.checkpoint" in section and weights in section
        caplog.clear()
        warn_if_random(name, "random")
        assert f"{name}: no finetune.{name}.checkpoint, so it trains from random weights" in caplog.text
        assert weights in caplog.text


def test_an_unfilled_preset_stops_before_any_job_naming_the_key(tmp_path):
    """Issue #25 item 9: the WLASL preset as shipped gives the one line docs/presets.md promises, not
    an InputFunctionException traceback; a blank of the pose backend is caught as early."""
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--nolock", "--configfile",
                           str(REPO / "configs" / "paper" / "signbert_wlasl2000.yaml"), "--replace-workflow-config"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config datasets.wlasl2000.index: 'FILL_ME/WLASL/WLASL_v0.3.json' is a blank of the preset" in out, out
    assert "Traceback" not in out and "InputFunctionException" not in out and "MissingInput" not in out

    cfg = fill(preset(REPO / "configs" / "paper" / "signbert_wlasl2000.yaml"), tmp_path)
    cfg["pose"]["mmpose"]["config"] = "FILL_ME/models/wholebody.py"
    with pytest.raises(ConfigError, match=r"^config pose.mmpose.config: 'FILL_ME/models/wholebody.py' is a blank"):
        check_config(cfg, SCHEMA)
    cfg["pose"]["mmpose"]["config"] = str(tmp_path / "gone.py")
    with pytest.raises(ConfigError, match=r"^config pose.mmpose.config: .*gone.py does not exist .*the mmpose pose "
                                          r"backend of dataset 'wlasl2000' reads it"):
        check_config(cfg, SCHEMA)
    cfg["datasets"]["wlasl2000"]["pose"] = {"backend": "openpose", "openpose": {"dir": str(tmp_path / "none")}}
    with pytest.raises(ConfigError, match=r"^config datasets.wlasl2000.pose.openpose.dir: .*none does not exist"):
        check_config(cfg, SCHEMA)
    cfg["datasets"]["wlasl2000"]["pose"]["openpose"]["dir"] = str(tmp_path)
    check_config(cfg, SCHEMA)  # the dataset's backend is openpose: the global mmpose paths are not read
