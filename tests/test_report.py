"""`snakemake --report` of a finished tiny run: what a reader of the report sees."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from test_workflow import TINY, snakemake

MODELS = """\
finetune:
  models: [signbert, glenet, hma]
  epochs: 1
  batch_size: 4
  threads: 1
  glenet: {depth: 10, width: 8, short_side: 36, crop: 32, test_crop: 32, num_frames: 8, flip: false}
  hma: {arch: resnet18, width: 16, size: 32, num_frames: 8, gcn_layers: [[16, 1], [32, 2]]}
fusion: {combos: [[signbert, hma]]}
"""


def report_data(html: str) -> tuple[dict, dict]:
    """The report's ``categories`` (category -> subcategory -> files) and ``results`` (file -> caption,
    mime type, data URI), as the page's script defines them."""
    found = {name: json.loads(re.search(rf"var {name} = (\{{.*?\}});\n", html, re.S).group(1))
             for name in ("categories", "results")}
    return found["categories"], found["results"]


def embedded(entry: dict) -> str:
    """The text of a file embedded in the report as a base64 data URI."""
    return base64.b64decode(entry["data_uri"].split("base64,", 1)[1]).decode("utf-8")


@pytest.mark.slow
def test_report_shows_tables_captions_and_no_other_category(tmp_path: Path) -> None:
    """A tiny run of SignBERT, GLE-Net and HMA: the report shows each accuracy table as HTML with the
    papers' column names and what the models trained for, each model figure with its own caption,
    the pre-training caption with this run's numbers, and every file in a named category."""
    assert "finetune: {epochs: 1, batch_size: 4, threads: 1}\n" in TINY
    (tmp_path / "config.yaml").write_text(TINY.replace("finetune: {epochs: 1, batch_size: 4, threads: 1}\n", MODELS))
    snakemake("--cores", "2", cwd=tmp_path)
    snakemake("--report", "report.html", cwd=tmp_path)
    categories, results = report_data((tmp_path / "report.html").read_text())

    assert "Other" not in categories and all("Other" not in subs for subs in categories.values())
    assert set(categories["Accuracy"]) == {"tiny", "all datasets"}
    table = embedded(results["results/tiny/fusion/table.html"])
    assert results["results/tiny/fusion/table.html"]["mime_type"] == "text/html"
    for column in ("<th>P-I top-1</th>", "<th>P-C top-5</th>", "<th>confusing top-1</th>"):
        assert column in table
    assert "<td>signbert+hma (H+H)</td>" in table and "instance_top1" not in table
    assert "Trained for: signbert 1 epoch; glenet 2 epochs in 2 phases (joint 1, streams 1); hma 1 epoch." in table
    assert "synthetic corpus" in table
    assert re.search(r"<td>\d+\.\d\d</td>", table) and not re.search(r"<td>\d+\.\d{3,}</td>", table)
    summary = embedded(results["results/tables/summary.html"])
    assert "<th>tiny P-I top-1</th>" in summary and "<th>tiny rest top-5</th>" in summary
    assert not any(path.endswith(".csv") for subs in categories.values() for files in subs.values() for path in files)

    hands = results["results/tiny/models/hma/figures/hands.png"]["caption"]
    saliency = results["results/tiny/models/glenet/figures/saliency.png"]["caption"]
    assert "What HMA" in hands and "pseudo-label" in hands and "saliency" not in hands
    assert "GLE-Net's local stream" in saliency and "Eq. 6" in saliency and "HMA" not in saliency
    pretrain = results["results/pretrain/curves.png"]["caption"]
    feasibility = json.loads((tmp_path / "results" / "pretrain" / "feasibility.json").read_text())
    assert f"{feasibility['pck20_output']}" in pretrain and "should end above" not in pretrain
