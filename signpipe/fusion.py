"""Fuse stage: late fusion of models' predictions and the paper-style accuracy tables.

Late fusion as SignBERT and HMA do it: sum the softmax scores of the fused models per test
sample; a combo's prediction is the class of the highest sum. Optionally each model gets a
weight, chosen on the VALIDATION split by a small grid search and then applied once to test
(never tuned on test: LESSONS 5); the chosen weights are written into the table.

Everything here reads only ``predictions.h5`` files (``signpipe.predictions``), so it works
for any set of models. Outputs of one dataset (:func:`fuse`): ``table.csv`` / ``table.md``
(one row per model alone and per combo; per-instance and per-class top-1/2/5, each class
subset's top-1/2/5, in %; a model whose predictions hold streams, as GLE-Net's, gets a row per
stream, ``glenet:global``, ``glenet:local``) and ``confusion.png`` (the best row's confusion matrix); across
datasets (:func:`summary`): ``summary.csv`` / ``summary.md`` in the papers' layout.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from signpipe.figures import save_figure
from signpipe.metrics import accuracies, read_classes
from signpipe.predictions import SplitPredictions, read_predictions
from signpipe.shards import atomic_path, write_csv

log = logging.getLogger(__name__)

WEIGHT_GRID = (0.25, 0.5, 1.0, 2.0, 4.0)
"""Weights tried for every model but the first (whose weight stays 1) when weights are chosen on val."""
PAPER_NAMES = {"signbert": "H", "stgcn": "P", "rgb3d": "R", "glenet": "GLE-Net", "hma": "H"}
"""The papers' letter of each model: hands (SignBERT, HMA), pose (full keypoints), RGB."""
TABLE = "table.csv"
TABLE_MD = "table.md"
CONFUSION = "confusion.png"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax (N, C) -> (N, C) float64, stable for large logits."""
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def find_predictions(predictions: str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike]
                     ) -> dict[str, Path]:
    """Model name -> predictions.h5: from a folder of ``<model>/predictions.h5``, a list of such
    files (the model is the parent folder's name) or an explicit mapping."""
    if isinstance(predictions, Mapping):
        return {name: Path(path) for name, path in predictions.items()}
    paths = (sorted(Path(predictions).glob("*/predictions.h5")) if isinstance(predictions, (str, os.PathLike))
             else [Path(p) for p in predictions])
    if not paths:
        raise FileNotFoundError(f"{predictions}: no <model>/predictions.h5 found")
    return {path.parent.name: path for path in paths}


def with_streams(models: Mapping[str, Mapping[str, SplitPredictions]]) -> dict[str, dict[str, SplitPredictions]]:
    """The models, each followed by its streams as models of their own, ``<model>:<stream>``
    (GLE-Net's ``glenet:global``, ``glenet:local``), when its predictions hold them: a row per
    stream shows what each contributes to the model's summed prediction."""
    out: dict[str, dict[str, SplitPredictions]] = {}
    for name, splits in models.items():
        out[name] = dict(splits)
        streams = dict.fromkeys(stream for split in splits.values() for stream in split.streams)
        for stream in streams:
            out[f"{name}:{stream}"] = {split: SplitPredictions(p.streams[stream], p.label, p.video_id)
                                       for split, p in splits.items() if stream in p.streams}
    return out


def aligned(models: Mapping[str, Mapping[str, SplitPredictions]], split: str
            ) -> tuple[dict[str, np.ndarray], np.ndarray, list[str]]:
    """Softmax scores (N, C) of every model on ``split`` in one sample order, the labels (N,) and ids.

    The first model fixes the order; every other model must hold the same video ids with the
    same labels, else the error names the model and the ids it lacks or adds.
    """
    names = list(models)
    for name in names:
        if split not in models[name]:
            raise ValueError(f"{name}: predictions have no {split!r} split (have {', '.join(models[name])})")
    ref = models[names[0]][split]
    scores = {}
    for name in names:
        own = models[name][split]
        where = {video: i for i, video in enumerate(own.video_id)}
        missing = [v for v in ref.video_id if v not in where]
        extra = sorted(set(own.video_id) - set(ref.video_id))
        if missing or extra:
            raise ValueError(f"{name}: its {split} predictions do not cover the same videos as {names[0]}'s: "
                             f"missing {len(missing)} ({', '.join(missing[:5])}), extra {len(extra)} "
                             f"({', '.join(extra[:5])}); rerun finetune for {name}")
        order = np.array([where[v] for v in ref.video_id], np.int64)
        if not np.array_equal(own.label[order], ref.label):
            raise ValueError(f"{name}: {split} labels differ from {names[0]}'s for the same videos")
        scores[name] = softmax(own.logits[order])
    return scores, np.asarray(ref.label, np.int64), list(ref.video_id)


def fuse_scores(scores: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted sum (N, C) of softmax scores (N, C) per model; equal weights when None."""
    weights = [1.0] * len(scores) if weights is None else weights
    return sum(w * s for w, s in zip(weights, scores))


def choose_weights(scores: Sequence[np.ndarray], labels: np.ndarray,
                   grid: Sequence[float] = WEIGHT_GRID) -> tuple[float, ...]:
    """Per-model weights maximising per-instance top-1 of the fused scores on these (validation) samples.

    The first model's weight is 1, the others range over ``grid``. Ties go to the weights
    closest to equal (smallest sum of |log2 w|), then to the smaller weights, so the choice is
    deterministic and falls back to plain summing when the grid cannot tell.
    """
    candidates = sorted(((1.0, *rest) for rest in itertools.product(grid, repeat=len(scores) - 1)),
                        key=lambda w: (sum(abs(math.log2(x)) for x in w), w))
    best, best_correct = candidates[0], -1
    for weights in candidates:
        correct = int((fuse_scores(scores, weights).argmax(axis=1) == labels).sum())
        if correct > best_correct:
            best, best_correct = weights, correct
    return tuple(best)


def method_name(combo: Sequence[str]) -> str:
    """``signbert+stgcn``, with the papers' letters appended when every model has one: ``(H+P)``."""
    name = "+".join(combo)
    if all(model in PAPER_NAMES for model in combo):
        name += " (" + "+".join(PAPER_NAMES[model] for model in combo) + ")"
    return name


def fusion_table(models: Mapping[str, Mapping[str, SplitPredictions]], combos: Sequence[Sequence[str]],
                 subsets: Mapping[str, Sequence[int]] | None = None, weights: str = "equal"
                 ) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """The test accuracy of each model alone, then of each combo of two or more models.

    weights: ``equal`` (sum of softmax scores) or ``val`` (:func:`choose_weights` on val, applied
    to test). Returns the table (columns: method, models, weights, n_test, then the keys of
    :func:`signpipe.metrics.accuracies`), each row's fused test scores (N, C) and the test labels.
    """
    if weights not in ("equal", "val"):
        raise ValueError(f"fusion.weights: expected equal or val, got {weights!r}")
    for combo in combos:
        unknown = [m for m in combo if m not in models]
        if unknown:
            raise ValueError(f"fusion.combos: {'+'.join(combo)} names {', '.join(unknown)}, which has no "
                             f"predictions (have {', '.join(models)}); add it to finetune.models")
    test, labels, _ = aligned(models, "test")
    val = aligned(models, "val") if weights == "val" else None
    rows, fused = [], {}
    combos = [[m] for m in models] + [list(c) for c in combos if len(c) > 1]
    for combo in dict.fromkeys(map(tuple, combos)):
        chosen = choose_weights([val[0][m] for m in combo], val[1]) if val and len(combo) > 1 else (1.0,) * len(combo)
        scores = fuse_scores([test[m] for m in combo], chosen)
        name = method_name(combo)
        fused[name] = scores
        rows.append({"method": name, "models": "+".join(combo), "weights": ":".join(f"{w:g}" for w in chosen),
                     "n_test": len(labels), **accuracies(scores, labels, subsets)})
    return pd.DataFrame(rows), fused, labels


def markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """A pipe table; floats with ``digits`` decimals, NaN as an empty cell."""
    def cell(value: object) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |",
             "|" + "|".join("---" if table[c].dtype == object else "---:" for c in table.columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _write_text(text: str, path: Path) -> None:
    with atomic_path(path, path.suffix) as tmp:
        Path(tmp).write_text(text)


def plot_confusion(scores: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str = "") -> None:
    """PNG of the row-normalised confusion matrix (true class down, predicted across) of scores (N, C)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    classes = scores.shape[1]
    matrix = np.zeros((classes, classes))
    np.add.at(matrix, (labels, scores.argmax(axis=1)), 1)
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(12, 3 + classes * 0.2)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    fig.tight_layout()
    save_figure(fig, path)


def fuse(predictions: str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike],
         combos: Sequence[Sequence[str]], out_dir: str | os.PathLike,
         subsets: Mapping[str, str | os.PathLike] | None = None, weights: str = "equal") -> pd.DataFrame:
    """Write ``out_dir/table.csv``, ``table.md`` and ``confusion.png`` for one dataset's models.

    predictions: see :func:`find_predictions`; subsets: name -> class-list file (e.g.
    ``confusing``: the demo's ``corpus/confusing.txt``); the classes in no subset are reported
    as ``rest`` (NMFs-CSL's 'normal'). The confusion matrix is the best row's by test per-instance
    top-1 (a picture, not a selection: every row stays in the table).
    """
    out_dir = Path(out_dir)
    models = with_streams({name: read_predictions(path)[0] for name, path in find_predictions(predictions).items()})
    classes = {name: read_classes(path) for name, path in (subsets or {}).items()}
    table, fused, labels = fusion_table(models, combos, classes, weights)
    write_csv(table, out_dir / TABLE)
    _write_text(markdown(_pretty(table)), out_dir / TABLE_MD)
    best = table.loc[table["instance_top1"].idxmax()]
    plot_confusion(fused[best["method"]], labels, out_dir / CONFUSION,
                   f"{best['method']}: test top-1 {best['instance_top1']:.1f}% (weights {best['weights']})")
    log.info("%s\n%s", out_dir / TABLE_MD, markdown(_pretty(table)))
    return table


SUMMARY_COLUMNS = ("instance_top1", "instance_top5", "class_top1", "class_top5")
"""The columns each dataset gets in the summary, as SignBERT's WLASL/MSASL tables: P-I and P-C top-1/5."""
SUBSET_SUMMARY_COLUMNS = ("instance_top1", "instance_top2", "instance_top5", "class_top1", "class_top5")
"""The columns of a dataset with class subsets: GLE-Net's Table 5 adds top-2 to the total (P-I),
as to each subset."""
SHORT = {"instance": "P-I", "class": "P-C"}


def _short(column: str) -> str:
    """``instance_top1`` -> ``P-I top-1``; ``confusing_top1`` -> ``confusing top-1``."""
    part, k = column.rsplit("_top", 1)
    return f"{SHORT.get(part, part)} top-{k}"


def _pretty(table: pd.DataFrame) -> pd.DataFrame:
    """Metric columns renamed for reading: ``instance_top1`` -> ``P-I top-1``."""
    return table.rename(columns={c: _short(c) for c in table.columns if "_top" in c})


def summary(tables: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike) -> pd.DataFrame:
    """``out_dir/summary.csv`` and ``summary.md``: one row per method, per dataset its columns.

    tables: dataset -> its ``table.csv``. Each dataset contributes per-instance and per-class
    top-1/top-5 and, where it has class subsets, per-instance top-2 and every subset's top-k
    columns (top-1/2/5: GLE-Net's Table 5, total / confusing / normal). A method missing from a
    dataset leaves empty cells. Column names are ``<dataset> <column>`` in the CSV and
    ``<dataset> P-I top-1`` etc. in the markdown.
    """
    out_dir = Path(out_dir)
    parts = []
    for ds, path in tables.items():
        table = pd.read_csv(path)
        subset_columns = [c for c in table.columns if "_top" in c and not c.startswith(("instance_", "class_"))]
        columns = list(SUBSET_SUMMARY_COLUMNS if subset_columns else SUMMARY_COLUMNS) + subset_columns
        parts.append(table.set_index("method")[columns].rename(columns={c: f"{ds} {c}" for c in columns}))
    if not parts:
        raise ValueError("summary: no tables given")
    methods = list(dict.fromkeys(m for part in parts for m in part.index))  # first-seen order, as in the tables
    wide = pd.concat([part.reindex(methods) for part in parts], axis=1).rename_axis("method").reset_index()
    write_csv(wide, out_dir / "summary.csv")
    pretty = wide.rename(columns={c: f"{c.split(' ', 1)[0]} {_short(c.split(' ', 1)[1])}" for c in wide.columns
                                  if c != "method"})
    _write_text(markdown(pretty), out_dir / "summary.md")
    return wide

