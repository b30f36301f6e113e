"""Late fusion and tables on hand-made predictions files."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from signpipe.fusion import (DEFAULT_RULE, RULES, class_names, confusion_matrix, fuse, fused_probabilities,
                             fusion_table, inverse_temperature, softmax, summary, top_confusions)
from signpipe.predictions import SplitPredictions, write_predictions


def _write(path, splits: dict[str, tuple[list[list[float]], list[int], list[str]]], name: str) -> str:
    """A predictions file whose logits are the log of the given probabilities (softmax gives them back)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_predictions(path, {s: SplitPredictions(np.log(np.array(p)), np.array(y), ids)
                             for s, (p, y, ids) in splits.items()}, name, len(splits["test"][0][0]))
    return str(path)


IDS = ["v0", "v1", "v2", "v3"]


def test_fusion_sums_softmax_scores_in_video_order(tmp_path) -> None:
    # A is right on v0, v1; B on v0, v2 (its rows stored in another order); summed: v0, v1, v2
    a = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.1, 0.8, 0.1]]
    b = [[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]]
    labels = [0, 1, 2, 0]
    order = [3, 2, 1, 0]
    paths = {"a": _write(tmp_path / "a.h5", {"test": (a, labels, IDS)}, "a"),
             "b": _write(tmp_path / "b.h5", {"test": ([b[i] for i in order], [labels[i] for i in order],
                                                      [IDS[i] for i in order])}, "b")}
    table = fuse(paths, [["a"], ["a", "b"]], tmp_path / "out", weights="equal")   # the papers' rule
    assert table["method"].tolist() == ["a", "b", "a+b"]
    assert table["instance_top1"].tolist() == [50.0, 50.0, 75.0]
    # per class: a+b gets classes 1, 2 and half of class 0 -> (0.5 + 1 + 1) / 3
    assert table["class_top1"].iloc[2] == pytest.approx(250 / 3)
    assert table["weights"].tolist() == ["1", "1", "1:1"] and table["rule"].tolist() == ["sum"] * 3
    assert (tmp_path / "out" / "confusion.png").stat().st_size > 0
    np.testing.assert_allclose(softmax(np.log(np.array(a))), a)


def test_weights_are_chosen_on_val_and_applied_once_to_test(tmp_path) -> None:
    # A is confident (0.9), B less so (0.75). Where they disagree, val favours B and test favours A:
    # val needs B's weight > 1.6, so the grid picks 2, which then costs accuracy on test.
    def probs(p: float, right: list[bool], labels: list[int]) -> list[list[float]]:
        return [[p if (c == y) == ok else 1 - p for c in range(2)] for ok, y in zip(right, labels)]

    labels = [0, 1, 0, 1]
    both = [True, True, False, False]
    a = {"val": (probs(0.9, [True, True, False, False], labels), labels, IDS),
         "test": (probs(0.9, [True] * 4, labels), labels, IDS)}
    b = {"val": (probs(0.75, [True] * 4, labels), labels, IDS),
         "test": (probs(0.75, both, labels), labels, IDS)}
    paths = {"a": _write(tmp_path / "a.h5", a, "a"), "b": _write(tmp_path / "b.h5", b, "b")}
    equal = fuse(paths, [["a", "b"]], tmp_path / "equal", weights="equal").set_index("method")
    val = fuse(paths, [["a", "b"]], tmp_path / "val", weights="val").set_index("method")
    assert equal.loc["a+b", "weights"] == "1:1" and equal.loc["a+b", "instance_top1"] == 100.0
    assert val.loc["a+b", "weights"] == "1:2"            # chosen on val, where it reaches 100%
    assert val.loc["a+b", "instance_top1"] == 50.0       # ... and applied once to test, where it hurts
    assert val.loc["a", "instance_top1"] == 100.0        # single models are never weighted


def test_val_weights_can_leave_out_a_model_that_only_hurts_on_val(tmp_path) -> None:
    """Weight 0 is in the grid: B (confident, right only where A is) costs A two val videos at any
    weight > 0, so val leaves it out and the combo's row is A's."""
    labels = [0, 1, 0, 1]
    a = [[0.6, 0.4], [0.4, 0.6], [0.6, 0.4], [0.4, 0.6]]                  # right on all, unsure
    b = [[0.99, 0.01], [0.01, 0.99], [0.01, 0.99], [0.99, 0.01]]          # right on v0, v1; sure
    paths = {"a": _write(tmp_path / "a.h5", {s: (a, labels, IDS) for s in ("val", "test")}, "a"),
             "b": _write(tmp_path / "b.h5", {s: (b, labels, IDS) for s in ("val", "test")}, "b")}
    table = fuse(paths, [["a", "b"]], tmp_path / "out", weights="val").set_index("method")
    assert table.loc["a+b", "weights"] == "1:0"
    assert table.loc["a+b", "instance_top1"] == table.loc["a", "instance_top1"] == 100.0


def _sharp_and_weak(rng: np.random.Generator, n: int, classes: int) -> tuple[np.ndarray, ...]:
    """Labels (n,), logits (n, C) of A, right 60 % with a flat softmax (top ~0.25), and of B,
    near chance with a sharp one (top ~0.9): the demo's SignBERT beside a collapsed pixel model."""
    labels = rng.integers(0, classes, n)
    a_class = np.where(rng.random(n) < 0.6, labels, rng.integers(0, classes, n))
    a = np.eye(classes)[a_class] * 1.2 + rng.normal(0, 0.1, (n, classes))
    b = np.eye(classes)[rng.integers(0, classes, n)] * 5.0 + rng.normal(0, 0.1, (n, classes))
    return labels, a, b


def test_calibrated_fusion_is_not_dragged_down_by_a_sharp_near_chance_model(tmp_path) -> None:
    """The papers' sum follows whichever softmax is sharper, here a near-chance model's; the
    temperatures fitted on val flatten it and sharpen the good one, so the combo keeps A's accuracy."""
    rng = np.random.default_rng(0)
    splits = {split: _sharp_and_weak(rng, 300, 10) for split in ("val", "test")}
    paths = {}
    for index, name in ((1, "a"), (2, "b")):
        paths[name] = str(tmp_path / f"{name}.h5")
        write_predictions(paths[name], {s: SplitPredictions(v[index], v[0], [f"v{i}" for i in range(300)])
                                        for s, v in splits.items()}, name, 10)
    equal = fuse(paths, [["a", "b"]], tmp_path / "equal", weights="equal").set_index("method")["instance_top1"]
    calibrated = fuse(paths, [["a", "b"]], tmp_path / "calibrated").set_index("method")   # the default
    assert equal["b"] < 15 and equal["a"] > 50
    assert equal["a+b"] < equal["a"] - 20                         # the papers' rule: dragged toward B
    assert calibrated.loc["a+b", "instance_top1"] >= calibrated.loc["a", "instance_top1"] - 2
    assert calibrated.loc["a+b", "rule"] == "product"
    w_a, w_b = map(float, calibrated.loc["a+b", "weights"].split(":"))
    assert w_a > 1 > w_b                                          # A sharpened (T < 1), B flattened (T > 1)


def test_inverse_temperature_minimises_the_val_nll() -> None:
    """1/T is the minimum of the negative log-likelihood of softmax(z / T), found on a fine grid too."""
    rng = np.random.default_rng(1)
    labels, a, b = _sharp_and_weak(rng, 200, 10)

    def nll(z: np.ndarray, beta: float) -> float:
        return float(-np.log(softmax(beta * z)[np.arange(len(labels)), labels]).mean())

    grid = np.exp(np.linspace(np.log(0.01), np.log(100), 4001))
    for z in (a, b, 3 * a):
        brute = grid[np.argmin([nll(z, beta) for beta in grid])]
        assert inverse_temperature(z, labels) == pytest.approx(brute, rel=0.01)
    assert inverse_temperature(3 * a, labels) == pytest.approx(inverse_temperature(a, labels) / 3, rel=0.01)
    assert inverse_temperature(np.zeros((0, 10)), np.zeros(0, np.int64)) == 1.0


def test_without_val_videos_calibrated_uses_t_1_and_says_so(tmp_path, caplog) -> None:
    """A corpus without val videos: the combo multiplies the raw probabilities (T = 1) and a warning names the fix."""
    a = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.1, 0.4], [0.1, 0.8, 0.1]]
    b = [[0.7, 0.2, 0.1], [0.4, 0.35, 0.25], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]]
    labels = [0, 1, 2, 0]
    paths = {name: _write(tmp_path / f"{name}.h5", {"val": ([], [], []), "test": (p, labels, IDS)}, name)
             for name, p in (("a", a), ("b", b))}
    table = fuse(paths, [["a", "b"]], tmp_path / "out", weights="calibrated").set_index("method")
    assert table.loc["a+b", "weights"] == "1:1" and table.loc["a+b", "rule"] == "product"
    assert table.loc["a+b", "instance_top1"] == 75.0                  # argmax of a * b: v0, v1, v2 right
    assert "no val videos" in caplog.text and "val_from_train" in caplog.text


def test_fused_probabilities_sum_and_product_rules() -> None:
    """sum: weighted mean of softmax scores; product: the product of softmax(w z), renormalised."""
    z1, z2 = np.log([[0.7, 0.2, 0.1]]), np.log([[0.1, 0.3, 0.6]])
    np.testing.assert_allclose(fused_probabilities([z1, z2], (1.0, 3.0)), [[0.25, 0.275, 0.475]])
    product = softmax(2 * z1) * softmax(0.5 * z2)
    np.testing.assert_allclose(fused_probabilities([z1, z2], (2.0, 0.5), "product"), product / product.sum())
    with pytest.raises(ValueError, match="expected sum or product"):
        fused_probabilities([z1], (1.0,), "mean")


def test_mismatched_videos_name_the_model_and_ids(tmp_path) -> None:
    probs = [[0.9, 0.1]] * 4
    paths = {"a": _write(tmp_path / "a.h5", {"test": (probs, [0] * 4, IDS)}, "a"),
             "b": _write(tmp_path / "b.h5", {"test": (probs[:3], [0] * 3, IDS[:3])}, "b")}
    with pytest.raises(ValueError, match=r"b: its test predictions .* missing 1 \(v3\)"):
        fuse(paths, [["a", "b"]], tmp_path / "out")
    with pytest.raises(ValueError, match=r"a\+c names c, which has no predictions"):
        fuse(paths, [["a", "c"]], tmp_path / "out")
    with pytest.raises(ValueError, match="no 'val' split"):
        fuse({"a": paths["a"], "c": paths["a"]}, [["a", "c"]], tmp_path / "out", weights="val")
    with pytest.raises(ValueError, match="expected one of equal, val, calibrated, got 'mean'"):
        fuse({"a": paths["a"]}, [], tmp_path / "out", weights="mean")


def test_tables_have_a_row_per_model_and_combo_and_subset_columns(tmp_path) -> None:
    probs = np.full((4, 6), 0.1)
    probs[np.arange(4), [0, 1, 2, 4]] = 0.5              # right on v0-v2, wrong on v3 (label 3)
    labels = [0, 1, 2, 3]
    for model in ("signbert", "stgcn"):
        _write(tmp_path / "demo" / "models" / model / "predictions.h5", {"test": (probs.tolist(), labels, IDS)}, model)
    (tmp_path / "confusing.txt").write_text("2\n3\n")
    table = fuse(tmp_path / "demo" / "models", [["signbert", "stgcn"]], tmp_path / "demo" / "fusion",
                 subsets={"confusing": tmp_path / "confusing.txt"}, weights="equal")
    assert table["method"].tolist() == ["signbert (H)", "stgcn (P)", "signbert+stgcn (H+P)"]
    assert list(table.columns) == ["method", "models", "weights", "rule", "n_test",
                                   *[f"{n}_top{k}" for n in ("instance", "class") for k in (1, 2, 5)],
                                   *[f"{n}_top{k}" for n in ("confusing", "rest") for k in (1, 2, 5)]]
    assert table["confusing_top1"].tolist() == [50.0] * 3 and table["rest_top1"].tolist() == [100.0] * 3
    md = (tmp_path / "demo" / "fusion" / "table.md").read_text().splitlines()
    assert md[0].startswith("| method | models | weights | rule | n_test | P-I top-1 |") and len(md) == 5
    assert "| signbert+stgcn (H+P) | signbert+stgcn | 1:1 | sum | 4 | 75.00 |" in md[4]

    other = tmp_path / "other.csv"
    pd.DataFrame({"method": ["stgcn (P)"], "instance_top1": [10.0], "instance_top5": [20.0],
                  "class_top1": [5.0], "class_top5": [15.0]}).to_csv(other, index=False)
    wide = summary({"demo": tmp_path / "demo" / "fusion" / "table.csv", "other": other}, tmp_path / "tables")
    assert wide["method"].tolist() == ["signbert (H)", "stgcn (P)", "signbert+stgcn (H+P)"]
    # demo has a subset: total (P-I) top-1/2/5 and each subset's top-1/2/5, as GLE-Net's Table 5
    assert list(wide.columns)[:13] == ["method", *[f"demo {c}" for c in (
        "instance_top1", "instance_top2", "instance_top5", "class_top1", "class_top5", "confusing_top1",
        "confusing_top2", "confusing_top5", "rest_top1", "rest_top2", "rest_top5")], "other instance_top1"]
    assert wide["demo confusing_top2"].tolist() == [50.0] * 3        # v2 right; v3 (label 3) ranks fifth: ties go to lower labels
    assert wide["other instance_top1"].isna().tolist() == [True, False, True]
    header = (tmp_path / "tables" / "summary.md").read_text().splitlines()[0]
    assert "demo P-I top-1" in header and "demo confusing top-1" in header and "other P-C top-5" in header


def test_html_table_has_the_papers_columns_rounded_and_the_training_note(tmp_path) -> None:
    """table.html is what the report shows: P-I/P-C names, 2 decimals, each model's epochs, the notes;
    the CSV keeps machine names without float noise (100 * 0.55 is 55.00000000000001)."""
    probs = np.full((20, 2), 0.1)
    labels = [0] * 20
    probs[np.arange(11), 0] = 0.9                     # 11 of 20 right: 55 %
    probs[11:, 1] = 0.9
    path = tmp_path / "models" / "m" / "predictions.h5"
    path.parent.mkdir(parents=True)
    write_predictions(path, {"test": SplitPredictions(np.log(probs), np.array(labels), [f"v{i}" for i in range(20)])},
                      "m", 2, {"train": {"streams": {"epochs": 3}, "joint": {"epochs": 1}}})
    fuse(tmp_path / "models", [], tmp_path / "fusion", notes=["A synthetic corpus."])
    page = (tmp_path / "fusion" / "table.html").read_text()
    assert "<th>P-I top-1</th>" in page and "<th>P-C top-5</th>" in page and "instance_top1" not in page
    assert "<td>55.00</td>" in page
    assert "Trained for: m 4 epochs in 2 phases (joint 1, streams 3)." in page and "<p>A synthetic corpus.</p>" in page
    assert "55.00000000000001" not in (tmp_path / "fusion" / "table.csv").read_text()
    assert pd.read_csv(tmp_path / "fusion" / "table.csv")["instance_top1"].tolist() == [55.0]


def test_confusions_are_named_by_gloss(tmp_path) -> None:
    manifest = tmp_path / "manifest.csv"
    pd.DataFrame({"video_id": ["a", "b", "c"], "label": [1, 0, 1], "gloss": ["world", "hello", "world"]}).to_csv(
        manifest, index=False)
    assert class_names(manifest, 3) == ["hello", "world", "2"]
    counts = confusion_matrix(np.eye(3)[[1, 1, 0, 2]], np.array([0, 0, 0, 1]))
    assert top_confusions(counts, ["hello", "world", "2"]) == ["hello → world: 2 of 3", "world → 2: 1 of 1"]


def test_schema_fusion_weights_are_the_librarys() -> None:
    """The schema's default and choices of fusion.weights are signpipe.fusion's."""
    schema = yaml.safe_load((Path(__file__).parents[1] / "workflow" / "schemas" / "config.schema.yaml").read_text())
    weights = schema["properties"]["fusion"]["properties"]["weights"]
    assert weights["default"] == DEFAULT_RULE == inspect.signature(fusion_table).parameters["weights"].default
    assert set(weights["enum"]) == set(RULES)
