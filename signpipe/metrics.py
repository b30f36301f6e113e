"""Recognition accuracy: top-k per instance and per class, on all classes or a subset of them.

The papers report both: *per-instance* top-k is the fraction of test samples whose
label is among the k highest scores; *per-class* top-k is the mean, over classes, of each
class's own per-instance top-k. Per-class accuracy averages over the classes PRESENT in the
evaluated samples only (a class with no test sample has no accuracy; counting it as 0 or 1
would move the mean by a choice, not a measurement).

Ties are broken deterministically by class index: among equal scores the lower class index
ranks higher, as a stable sort of the negated scores orders them. A prediction that ties the
label with a lower-indexed class thus counts as wrong at top-1; ties never count as right by
luck of the floating point order. With k at least the number of classes every sample is right.

Subsets (NMFs-CSL's confusing / normal words; the demo's face-only pairs) are lists of class
labels in a text file, one integer per line; a subset's accuracy is computed on the samples
whose label is in it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

TOP_K = (1, 2, 5)
"""The k of every reported top-k."""
REST = "rest"
"""Name of the implicit subset of classes that are in no given subset (NMFs-CSL's 'normal')."""


def label_rank(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Rank (N,) int64 of each sample's label among its scores (N, C); 0 = best.

    rank = classes scoring strictly higher + classes scoring equal with a lower index.
    """
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, np.int64)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} do not match: expected (N, C) and (N,)")
    if len(labels) and (labels.min() < 0 or labels.max() >= scores.shape[1]):
        raise ValueError(f"labels must lie in [0, {scores.shape[1]}), got {labels.min()}..{labels.max()}")
    own = scores[np.arange(len(labels)), labels][:, None]
    lower = np.arange(scores.shape[1])[None, :] < labels[:, None]
    return ((scores > own) | ((scores == own) & lower)).sum(axis=1)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int, per_class: bool = False) -> float:
    """Top-k accuracy in [0, 1] of scores (N, C) against labels (N,); NaN for no samples.

    per_class: the mean of each present class's top-k accuracy instead of the sample mean.
    """
    correct = label_rank(scores, labels) < k
    if not len(correct):
        return float("nan")
    if not per_class:
        return float(correct.mean())
    labels = np.asarray(labels, np.int64)
    present, inverse = np.unique(labels, return_inverse=True)
    return float((np.bincount(inverse, weights=correct) / np.bincount(inverse)).mean())


def read_classes(path: str | os.PathLike) -> np.ndarray:
    """Sorted class labels (int64) listed in a text file, one per line; blank lines and ``#`` comments skipped."""
    labels = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                labels.append(int(text))
            except ValueError:
                raise ValueError(f"{path}:{number}: expected one integer class label per line, got {text!r}") from None
    return np.unique(np.asarray(labels, np.int64))


def accuracies(scores: np.ndarray, labels: np.ndarray, subsets: Mapping[str, Sequence[int]] | None = None,
               top_k: Sequence[int] = TOP_K) -> dict[str, float]:
    """Every reported number (in %) of one model on one split.

    Keys: ``instance_top{k}`` and ``class_top{k}`` for k in top_k, then for each subset, and for
    :data:`REST` (classes in no subset) when subsets are given, ``{name}_top{k}`` for k in top_k
    (per instance, on the samples of the subset's classes; NaN if none): GLE-Net's Table 5
    reports top-1/2/5 on the total, confusing and normal words alike.
    """
    labels = np.asarray(labels, np.int64)
    out = {}
    for per_class, name in ((False, "instance"), (True, "class")):
        for k in top_k:
            out[f"{name}_top{k}"] = 100 * topk_accuracy(scores, labels, k, per_class)
    if subsets:
        if REST in subsets:
            raise ValueError(f"subset name {REST!r} is reserved for the classes in no subset; rename it")
        named = {name: np.asarray(classes, np.int64) for name, classes in subsets.items()}
        listed = np.concatenate(list(named.values()))
        named[REST] = np.setdiff1d(np.arange(np.asarray(scores).shape[1]), listed)
        for name, classes in named.items():
            keep = np.isin(labels, classes)
            for k in top_k:
                out[f"{name}_top{k}"] = 100 * topk_accuracy(np.asarray(scores)[keep], labels[keep], k)
    return out
