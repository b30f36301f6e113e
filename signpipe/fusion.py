"""Fuse stage: late fusion of models' predictions and the paper-style accuracy tables.

Three rules (``fusion.weights``), each fixed before test is read:

- ``equal``: the papers' rule (SignBERT, HMA): sum the softmax scores of the fused models per
  test sample; a combo's prediction is the class of the highest sum.
- ``val``: the same sum, each model weighted by a small grid search on the VALIDATION split
  (weight 0 leaves a model out), applied once to test.
- ``calibrated`` (the default): each model's temperature T is fitted on the validation split
  (temperature scaling: minimum negative log-likelihood), then the calibrated probabilities are
  multiplied (the product rule): the prediction is argmax of sum_m z_m / T_m over the models'
  logits z_m. A plain sum lets the sharpest softmax win, and sharpness is not accuracy: in the
  demo the 20-class SignBERT is right 53 % of the time on val with a top probability of 0.27,
  while a model right 10 % of the time on test puts 0.63 on its (wrong) top class.

Nothing is tuned on test (a weight tuned on the test split reports a number no new data would
reach); the weights used are written into the table.

Everything here reads only ``predictions.h5`` files (``signpipe.predictions``), so it works
for any set of models. Outputs of one dataset (:func:`fuse`): ``table.csv`` / ``table.md`` /
``table.html`` (one row per model alone and per combo; per-instance and per-class top-1/2/5,
each class subset's top-1/2/5, in %; the HTML for ``snakemake --report``, with the papers'
column names and a note on what the run trained) and ``confusion.png`` (the best row's
confusion matrix, with gloss names); a model whose predictions hold streams, as
GLE-Net's, gets a row per stream, ``glenet:global``, ``glenet:local``; across datasets (:func:`summary`): ``summary.csv`` /
``summary.md`` / ``summary.html`` in the papers' layout.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signpipe.figures import save_figure
from signpipe.metrics import accuracies, read_classes
from signpipe.predictions import SplitPredictions, read_predictions
from signpipe.shards import atomic_path, write_csv

log = logging.getLogger(__name__)

WEIGHT_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)
"""Weights tried for every model but the first (whose weight stays 1) when weights are chosen on
val; 0 leaves the model out of the combo (the row is then the other models' fusion)."""
RULES = ("equal", "val", "calibrated")
"""``fusion.weights``: the papers' sum of softmax scores, that sum weighted on val, the product of
the val-calibrated probabilities."""
DEFAULT_RULE = "calibrated"
TEMPERATURE_RANGE = (0.01, 100.0)
"""The bounds of 1/T: a model all right on val would otherwise get an infinite weight."""
WEIGHT_DIGITS = 3
"""Significant digits of a calibrated weight 1/T: the table holds the weight that was applied."""
PAPER_NAMES = {"signbert": "H", "stgcn": "P", "rgb3d": "R", "glenet": "GLE-Net", "hma": "H"}
"""The papers' letter of each model: hands (SignBERT, HMA), pose (full keypoints), RGB."""
TABLE = "table.csv"
TABLE_MD = "table.md"
TABLE_HTML = "table.html"
CSV_DIGITS = 4
"""Decimals of the accuracies (%) in the CSVs: enough for any test split, without float noise (55.00000000000001)."""
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
    """Logits (N, C) of every model on ``split`` in one sample order, the labels (N,) and ids.

    The first model fixes the order; every other model must hold the same video ids with the
    same labels, else the error names the model and the ids it lacks or adds.
    """
    names = list(models)
    for name in names:
        if split not in models[name]:
            raise ValueError(f"{name}: predictions have no {split!r} split (have {', '.join(models[name])})")
    ref = models[names[0]][split]
    logits = {}
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
        logits[name] = np.asarray(own.logits[order], np.float64)
    return logits, np.asarray(ref.label, np.int64), list(ref.video_id)


def fuse_scores(scores: Sequence[np.ndarray], weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted sum (N, C) of softmax scores (N, C) per model; equal weights when None."""
    weights = [1.0] * len(scores) if weights is None else weights
    return sum(w * s for w, s in zip(weights, scores))


def choose_weights(scores: Sequence[np.ndarray], labels: np.ndarray,
                   grid: Sequence[float] = WEIGHT_GRID) -> tuple[float, ...]:
    """Per-model weights maximising per-instance top-1 of the fused scores on these (validation) samples.

    The first model's weight is 1, the others range over ``grid``. Ties go to the weights
    closest to equal (smallest sum of |log2 w|, a 0 counting as farther than any other
    weight), then to the smaller weights, so the choice is deterministic and falls back to plain
    summing when the grid cannot tell.
    """
    candidates = sorted(((1.0, *rest) for rest in itertools.product(grid, repeat=len(scores) - 1)),
                        key=lambda w: (sum(abs(math.log2(x)) if x > 0 else math.inf for x in w), w))
    best, best_correct = candidates[0], -1
    for weights in candidates:
        correct = int((fuse_scores(scores, weights).argmax(axis=1) == labels).sum())
        if correct > best_correct:
            best, best_correct = weights, correct
    return tuple(best)


def inverse_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """1/T minimising the negative log-likelihood of softmax(logits / T) (N, C) on these
    (validation) labels (N,): temperature scaling, rounded to :data:`WEIGHT_DIGITS` digits.

    The NLL is convex in 1/T with derivative mean(E_p[z] - z_label), which grows with 1/T, so
    bisection on its sign finds the minimum within :data:`TEMPERATURE_RANGE`; 1 without samples.
    """
    z = np.asarray(logits, np.float64)
    if not len(z):
        return 1.0
    right = z[np.arange(len(z)), np.asarray(labels, np.int64)]

    def slope(beta: float) -> float:
        return float(((softmax(beta * z) * z).sum(axis=1) - right).mean())

    low, high = (math.log(b) for b in TEMPERATURE_RANGE)
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if slope(math.exp(mid)) < 0 else (low, mid)
    return float(f"{math.exp((low + high) / 2):.{WEIGHT_DIGITS}g}")


def fused_probabilities(logits: Sequence[np.ndarray], weights: Sequence[float], rule: str = "sum") -> np.ndarray:
    """Probabilities (N, C) of a combo from its models' logits (N, C): ``sum``, the weighted sum of
    softmax scores over the weights' sum; ``product``, softmax(sum_m w_m z_m), the renormalised
    product of the models' softmax(w_m z_m) (``calibrated``'s rule, w_m = 1/T_m)."""
    if rule == "product":
        return softmax(sum(w * np.asarray(z, np.float64) for w, z in zip(weights, logits)))
    if rule != "sum":
        raise ValueError(f"fusion rule: expected sum or product, got {rule!r}")
    return fuse_scores([softmax(z) for z in logits], weights) / sum(weights)


def fit_rule(weights: str, val_logits: Sequence[np.ndarray], val_labels: np.ndarray) -> tuple[str, tuple[float, ...]]:
    """The rule and weights of ``fusion.weights`` for a combo, from its models' val logits (N, C)
    and labels (N,), for :func:`fused_probabilities`: ``equal`` ('sum', 1 each), ``val`` ('sum',
    :func:`choose_weights`), ``calibrated`` ('product', :func:`inverse_temperature` per model)."""
    if weights == "equal":
        return "sum", (1.0,) * len(val_logits)
    if weights == "val":
        return "sum", choose_weights([softmax(z) for z in val_logits], val_labels)
    return "product", tuple(inverse_temperature(z, val_labels) for z in val_logits)


def method_name(combo: Sequence[str]) -> str:
    """``signbert+stgcn``, with the papers' letters appended when every model has one: ``(H+P)``."""
    name = "+".join(combo)
    if all(model in PAPER_NAMES for model in combo):
        name += " (" + "+".join(PAPER_NAMES[model] for model in combo) + ")"
    return name


def fusion_table(models: Mapping[str, Mapping[str, SplitPredictions]], combos: Sequence[Sequence[str]],
                 subsets: Mapping[str, Sequence[int]] | None = None, weights: str = DEFAULT_RULE
                 ) -> tuple[pd.DataFrame, dict[str, np.ndarray], np.ndarray]:
    """The test accuracy of each model alone, then of each combo of two or more models.

    weights: one of :data:`RULES`; ``equal`` sums softmax scores, ``val`` weights that sum with
    :func:`choose_weights` on val, ``calibrated`` multiplies the probabilities at the
    temperatures of :func:`inverse_temperature` on val; both are applied once to test. Returns
    the table (columns: method, models, weights, rule (``sum`` or ``product``, as
    :func:`fused_probabilities` reads them), n_test, then the keys of
    :func:`signpipe.metrics.accuracies`), each row's fused test probabilities (N, C) and the test labels.
    """
    if weights not in RULES:
        raise ValueError(f"fusion.weights: expected one of {', '.join(RULES)}, got {weights!r}")
    for combo in combos:
        unknown = [m for m in combo if m not in models]
        if unknown:
            raise ValueError(f"fusion.combos: {'+'.join(combo)} names {', '.join(unknown)}, which has no "
                             f"predictions (have {', '.join(models)}); add it to finetune.models")
    test, labels, _ = aligned(models, "test")
    combos = [[m] for m in models] + [list(c) for c in combos if len(c) > 1]
    val = aligned(models, "val") if weights != "equal" and any(len(c) > 1 for c in combos) else None
    if val and not len(val[1]):
        log.warning("fusion.weights: %s has no val videos to choose weights on; the combos use %s "
                    "(set val_from_train in the dataset's block)", weights, "equal weights" if weights == "val" else "T = 1")
    rows, fused = [], {}
    for combo in dict.fromkeys(map(tuple, combos)):
        rule, chosen = (("sum", (1.0,) * len(combo)) if len(combo) == 1 or val is None
                        else fit_rule(weights, [val[0][m] for m in combo], val[1]))
        scores = fused_probabilities([test[m] for m in combo], chosen, rule)
        name = method_name(combo)
        fused[name] = scores
        rows.append({"method": name, "models": "+".join(combo), "weights": ":".join(f"{w:g}" for w in chosen),
                     "rule": rule, "n_test": len(labels), **accuracies(scores, labels, subsets)})
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


HTML_STYLE = ("body{font-family:sans-serif;font-size:13px;margin:8px}"
              "table{border-collapse:collapse}th,td{padding:3px 8px;border-bottom:1px solid #ddd}"
              "th{background:#f3f3f3;text-align:center}td{text-align:right}td:first-child{text-align:left}"
              "p{max-width:60em;color:#333}")


def html(table: pd.DataFrame, title: str, notes: Sequence[str] = (), digits: int = 2) -> str:
    """A standalone HTML page of ``table`` (floats with ``digits`` decimals, NaN empty), its title
    and notes below: what ``snakemake --report`` shows inline (it offers CSVs only as downloads)."""
    import html as escape

    body = table.to_html(index=False, border=0, na_rep="", float_format=lambda v: f"{v:.{digits}f}")
    paragraphs = "".join(f"<p>{escape.escape(note)}</p>" for note in notes if note)
    head = f"<meta charset='utf-8'><title>{escape.escape(title)}</title><style>{HTML_STYLE}</style>"
    return (f"<!DOCTYPE html><html><head>{head}</head><body><h3>{escape.escape(title)}</h3>{body}{paragraphs}"
            "</body></html>\n")


COLUMN_NOTE = ("P-I: per-instance accuracy (share of test videos), P-C: per-class accuracy (mean over the classes "
               "present in test), in %; top-k: the label is among the k highest scores. Letters as in the papers: "
               "H = hands (SignBERT, HMA), P = full-body pose (ST-GCN), R = RGB frames (3D-CNN).")


def training_note(attrs: Mapping[str, Mapping[str, Any]]) -> str:
    """What each model trained for, from its predictions.h5 attrs (``config`` JSON, ``train`` per
    phase): ``Trained for: signbert 2 epochs; glenet 2 epochs in 2 phases (joint 1, streams 1).``;
    '' when none say."""
    parts = []
    for name, own in attrs.items():
        try:
            phases = {phase: int(cfg["epochs"]) for phase, cfg in json.loads(own.get("config", "{}"))["train"].items()}
        except (TypeError, ValueError, KeyError, AttributeError):
            continue
        total = sum(phases.values())
        parts.append(f"{name} {total} epoch{'s' if total != 1 else ''}" + (
            f" in {len(phases)} phases ({', '.join(f'{phase} {n}' for phase, n in phases.items())})"
            if len(phases) > 1 else ""))
    return "Trained for: " + "; ".join(parts) + "." if parts else ""


def _write_text(text: str, path: Path) -> None:
    with atomic_path(path, path.suffix) as tmp:
        Path(tmp).write_text(text)


NAMED_CLASSES = 50
"""Up to this many classes the confusion matrix names every class on its axes; above, it lists
the top confusions by name beside the matrix."""
TOP_CONFUSIONS = 12


def confusion_matrix(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Counts (C, C): true class down, predicted class (argmax of scores (N, C)) across."""
    matrix = np.zeros((scores.shape[1],) * 2)
    np.add.at(matrix, (labels, scores.argmax(axis=1)), 1)
    return matrix


def top_confusions(matrix: np.ndarray, names: Sequence[str], count: int = TOP_CONFUSIONS) -> list[str]:
    """The ``count`` largest off-diagonal cells of a count matrix (C, C), as ``true → predicted: n of m``."""
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    cells = [(int(t), int(p)) for t, p in zip(*np.unravel_index(np.argsort(-off, axis=None, kind="stable"), off.shape))
             if off[t, p] > 0][:count]
    return [f"{names[t]} → {names[p]}: {off[t, p]:g} of {matrix[t].sum():g}" for t, p in cells]


def plot_confusion(scores: np.ndarray, labels: np.ndarray, path: str | os.PathLike, title: str = "",
                   names: Sequence[str] | None = None) -> None:
    """PNG of the row-normalised confusion matrix (true class down, predicted across) of scores (N, C).

    ``names`` (C,): the glosses; up to :data:`NAMED_CLASSES` classes they label the axes, above
    that the most frequent confusions are listed by name beside the matrix.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    classes = scores.shape[1]
    names = [str(n) for n in names] if names is not None else [str(c) for c in range(classes)]
    if len(names) != classes:
        raise ValueError(f"{path}: {len(names)} class names for {classes} classes")
    counts = confusion_matrix(scores, labels)
    matrix = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    named = classes <= NAMED_CLASSES
    side = min(12, max(3.0, classes * (0.28 if named else 0.2)))
    labels_in = min(3.0, 0.07 * max(map(len, names))) if named else 0.5  # room for the tick labels, inches
    fig, ax = plt.subplots(figsize=(side + labels_in + 2 + (0 if named else 4), side + labels_in + 1))
    image = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1, interpolation="nearest")
    if named:
        ax.set_xticks(range(classes), names, rotation=90, fontsize=7)
        ax.set_yticks(range(classes), names, fontsize=7)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        lines = top_confusions(counts, names) or ["no confusions"]
        fig.text(0.70, 0.92, "most frequent confusions\n(true → predicted)\n\n" + "\n".join(lines),
                 va="top", fontsize=11, family="monospace")
        fig.subplots_adjust(right=0.66)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    if named:
        fig.tight_layout()
    save_figure(fig, path)


def class_names(manifest: str | os.PathLike, classes: int) -> list[str]:
    """Gloss of each label 0..classes-1 from a dataset's ``manifest.csv`` (the label as text where
    the manifest has no gloss for it)."""
    table = pd.read_csv(manifest, usecols=["label", "gloss"], dtype={"gloss": str}, keep_default_na=False)
    glosses = table.drop_duplicates("label").set_index("label")["gloss"]
    return [str(glosses.get(c, "")) or str(c) for c in range(classes)]


def fuse(predictions: str | os.PathLike | Sequence[str | os.PathLike] | Mapping[str, str | os.PathLike],
         combos: Sequence[Sequence[str]], out_dir: str | os.PathLike,
         subsets: Mapping[str, str | os.PathLike] | None = None, weights: str = DEFAULT_RULE,
         manifest: str | os.PathLike | None = None, notes: Sequence[str] = ()) -> pd.DataFrame:
    """Write ``out_dir/table.csv``, ``table.md``, ``table.html`` and ``confusion.png`` for one dataset's models.

    predictions: see :func:`find_predictions`; subsets: name -> class-list file (e.g.
    ``confusing``: the demo's ``corpus/confusing.txt``); the classes in no subset are reported
    as ``rest`` (NMFs-CSL's 'normal'). The confusion matrix is the best row's by test per-instance
    top-1 (a picture, not a selection: every row stays in the table), with the glosses of
    ``manifest`` (the dataset's manifest.csv) when given. ``notes``: sentences the HTML shows
    under the table after the column key and each model's epochs.
    """
    out_dir = Path(out_dir)
    read = {name: read_predictions(path) for name, path in find_predictions(predictions).items()}
    models = with_streams({name: splits for name, (splits, _) in read.items()})
    classes = {name: read_classes(path) for name, path in (subsets or {}).items()}
    table, fused, labels = fusion_table(models, combos, classes, weights)
    write_csv(table.round(CSV_DIGITS), out_dir / TABLE)
    pretty = _pretty(table.drop(columns="models"))
    _write_text(markdown(_pretty(table)), out_dir / TABLE_MD)
    num_classes = next(iter(fused.values())).shape[1]
    _write_text(html(pretty, f"Test accuracy (%): {len(labels)} test videos, {num_classes} classes",
                     [COLUMN_NOTE, training_note({name: attrs for name, (_, attrs) in read.items()}), *notes]),
                out_dir / TABLE_HTML)
    best = table.loc[table["instance_top1"].idxmax()]
    plot_confusion(fused[best["method"]], labels, out_dir / CONFUSION,
                   f"{best['method']}: test top-1 {best['instance_top1']:.1f}% (weights {best['weights']})",
                   class_names(manifest, num_classes) if manifest else None)
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


def summary(tables: Mapping[str, str | os.PathLike], out_dir: str | os.PathLike,
            notes: Sequence[str] = ()) -> pd.DataFrame:
    """``out_dir/summary.csv``, ``summary.md`` and ``summary.html`` (with ``notes`` under it): one
    row per method, per dataset its columns.

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
    write_csv(wide.round(CSV_DIGITS), out_dir / "summary.csv")
    pretty = wide.rename(columns={c: f"{c.split(' ', 1)[0]} {_short(c.split(' ', 1)[1])}" for c in wide.columns
                                  if c != "method"})
    _write_text(markdown(pretty), out_dir / "summary.md")
    _write_text(html(pretty, f"Test accuracy (%) of every method on {', '.join(tables)}",
                     [COLUMN_NOTE, "Empty cells: the method was not run on that dataset.", *notes]),
                out_dir / "summary.html")
    return wide

