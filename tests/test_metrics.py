"""Metrics on small cases computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from signpipe.metrics import REST, accuracies, label_rank, read_classes, topk_accuracy

# 4 samples, 3 classes. Ranks of the label, by hand:
#   s0 label 0: [0.9, 0.1, 0.0]  -> rank 0
#   s1 label 1: [0.5, 0.2, 0.3]  -> rank 2
#   s2 label 2: [0.4, 0.4, 0.4]  -> all tie; classes 0 and 1 have lower index -> rank 2
#   s3 label 0: [0.3, 0.3, 0.1]  -> tie with class 1, lower index wins -> rank 0
SCORES = np.array([[0.9, 0.1, 0.0], [0.5, 0.2, 0.3], [0.4, 0.4, 0.4], [0.3, 0.3, 0.1]])
LABELS = np.array([0, 1, 2, 0])


def test_rank_breaks_ties_by_class_index() -> None:
    assert label_rank(SCORES, LABELS).tolist() == [0, 2, 2, 0]
    # label 1 tied with class 0 (lower index) ranks second, tied with class 2 (higher) first
    assert label_rank(np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]), np.array([1, 1])).tolist() == [1, 0]


def test_topk_per_instance_and_per_class() -> None:
    assert topk_accuracy(SCORES, LABELS, 1) == 0.5
    assert topk_accuracy(SCORES, LABELS, 2) == 0.5
    # per class: class 0 -> 2/2, class 1 -> 0/1, class 2 -> 0/1 -> mean 1/3
    assert topk_accuracy(SCORES, LABELS, 1, per_class=True) == pytest.approx(1 / 3)


def test_topk_beyond_the_number_of_classes_is_always_right() -> None:
    assert topk_accuracy(SCORES, LABELS, 5) == 1.0
    assert topk_accuracy(SCORES, LABELS, 3, per_class=True) == 1.0


def test_classes_missing_from_the_test_set_are_left_out_of_the_class_mean() -> None:
    # 4 classes, class 3 never appears: the mean runs over classes 0-2 only
    scores = np.hstack([SCORES, np.zeros((4, 1))])
    assert topk_accuracy(scores, LABELS, 1, per_class=True) == pytest.approx(1 / 3)
    assert math.isnan(topk_accuracy(scores[:0], LABELS[:0], 1))


def test_bad_labels_are_reported() -> None:
    with pytest.raises(ValueError, match="labels must lie"):
        label_rank(SCORES, np.array([0, 1, 2, 3]))


def test_subsets_and_their_rest(tmp_path) -> None:
    path = tmp_path / "confusing.txt"
    path.write_text("# face-only pairs\n2\n\n1\n")
    assert read_classes(path).tolist() == [1, 2]
    out = accuracies(SCORES, LABELS, {"confusing": read_classes(path)})
    assert out["instance_top1"] == 50.0 and out["class_top1"] == pytest.approx(100 / 3)
    assert out["confusing_top1"] == 0.0 and out["confusing_top5"] == 100.0   # samples 1 and 2
    assert out["confusing_top2"] == 0.0                                       # both ranked third
    assert out[f"{REST}_top1"] == 100.0                                       # samples 0 and 3
    assert list(accuracies(SCORES, LABELS)) == [f"{n}_top{k}" for n in ("instance", "class") for k in (1, 2, 5)]
    path.write_text("two\n")
    with pytest.raises(ValueError, match=r"confusing.txt:1: expected one integer"):
        read_classes(path)


def test_subsets_report_top1_2_5_as_gle_net_table5() -> None:
    # label ranks by hand: s0 (label 2) 1, s1 (label 1) 1, s2 (label 0) 2, s3 (label 2) 1
    scores = np.array([[0.1, 0.6, 0.3], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5], [0.6, 0.1, 0.3]])
    labels = np.array([2, 1, 0, 2])
    out = accuracies(scores, labels, {"confusing": [2]})
    assert list(out)[6:] == [f"{n}_top{k}" for n in ("confusing", REST) for k in (1, 2, 5)]
    assert [out[f"confusing_top{k}"] for k in (1, 2, 5)] == [0.0, 100.0, 100.0]   # samples 0 and 3
    assert [out[f"{REST}_top{k}"] for k in (1, 2, 5)] == [0.0, 50.0, 100.0]       # samples 1 and 2
    assert out["instance_top2"] == 75.0
