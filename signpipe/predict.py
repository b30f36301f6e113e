"""`signpipe predict`: recognise new sign videos with a finished run.

A finished run (``results/<ds>``) records everything recognition needs: each stage's settings in
the ``config`` attr of its shards (decode short side and JPEG quality, the pose backend and its
model, the hand crop size; docs/hdf5.md), each model's settings in its ``predictions.h5`` and its
weights in ``checkpoint.pt`` (the last phase's, for a model with phases), the class names in
``manifest.csv`` (``gloss`` per ``label``) and the fusion weights in ``fusion/table.csv``.

Each new video goes through the pipeline's own stage functions, one video at a time, into
one-video shards laid out like a run (``<work>/frames/0.h5``, ``keypoints/0.h5``, ``hands/0.h5``):
:func:`signpipe.decode.decode_shard`, :func:`signpipe.pose.extract_shard` (the backend made once),
:func:`signpipe.hands.crop_shard`; then through each model's own test-time dataset (centred
clips) and forward pass, the models loaded once. So a video of the run's test split gets the
logits the run wrote for it. A keypoint run (gislr, pose, arrays, pyskl) takes its adapter's
files instead of videos, imported by :func:`signpipe.pose.importer.import_shard`.

A video that cannot be decoded (or whose keypoints or hand crops fail) is a row with its
reason, as in the run's ``failures.csv``; the other videos are predicted.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from signpipe.datasets import MANIFEST_COLUMNS, VIDEO_EXTENSIONS, read_manifest
from signpipe.logs import track
from signpipe.names import MAX_ID_BYTES
from signpipe.shards import read_config, write_csv

log = logging.getLogger(__name__)

STAGES = ("frames", "keypoints", "hands")
"""The per-video stages, in the order a video goes through them."""
GISLR_SUFFIXES = (".parquet",)
PYSKL_SUFFIXES = (".pkl", ".pickle")


def input_suffixes(adapter: str | None) -> tuple[str, ...]:
    """File types a run predicts from: videos, or what a keypoint run's adapter reads."""
    if adapter is None:
        return VIDEO_EXTENSIONS
    from signpipe.datasets.arrays import EXTENSIONS as ARRAY_EXTENSIONS  # imports its readers: only when asked
    from signpipe.datasets.posefile import EXTENSIONS as POSE_EXTENSIONS

    return {"gislr": GISLR_SUFFIXES, "pose": POSE_EXTENSIONS, "arrays": ARRAY_EXTENSIONS, "pyskl": PYSKL_SUFFIXES}[adapter]
TOP_K = 5
SHARD = "0.h5"
"""The one shard of each stage in the work folder."""
SPLIT, UNKNOWN_LABEL = "new", -1
"""Split and label of a new video in its shards (the model's test-time clip does not depend on either)."""


@dataclass
class Run:
    """What a finished run recorded: its folder, each stage's settings, the class names and models.

    ``adapter`` is the keypoint adapter of a keypoint run (its keypoints shards were imported), None for videos.
    """

    folder: Path
    settings: dict[str, dict[str, Any]]
    classes: list[str]
    models: list[str]
    adapter: str | None = None
    manifest: pd.DataFrame = field(default_factory=pd.DataFrame)


def _first_shard(folder: Path, stage: str) -> Path | None:
    """``<folder>/<stage>/<k>.h5`` of the lowest shard number k, None without any."""
    shards = sorted((p for p in (folder / stage).glob("*.h5") if p.stem.isdigit()), key=lambda p: int(p.stem))
    return shards[0] if shards else None


def open_run(folder: str | os.PathLike) -> Run:
    """The settings a finished dataset folder (``results/<ds>``) recorded; an error names what is missing."""
    folder = Path(folder)
    manifest_csv = folder / "manifest.csv"
    if not manifest_csv.is_file():
        raise FileNotFoundError(f"{folder}: no manifest.csv; RUN is a finished dataset folder of the pipeline "
                                "(results/<ds>, after snakemake ran)")
    settings, backend = {}, ""
    for stage in STAGES:
        shard = _first_shard(folder, stage)
        if shard is not None:
            with h5py.File(shard, "r") as f:
                settings[stage] = read_config(f)
                backend = str(f.attrs.get("pose_backend", "")) if stage == "keypoints" else backend
    if "keypoints" not in settings:
        raise FileNotFoundError(f"{folder}/keypoints: no keypoints shard; the run's pose stage has not finished "
                                "(run snakemake for this dataset first)")
    adapter = backend.split(" ", 1)[1] if backend.startswith("import ") else None
    if adapter is None and "frames" not in settings:
        raise FileNotFoundError(f"{folder}/frames: no frames shard; the run's decode stage has not finished")
    manifest = read_manifest(manifest_csv)
    names = manifest.drop_duplicates("label").set_index("label")["gloss"]
    classes = [str(names.get(label) or label) for label in range(int(manifest["label"].max()) + 1)]
    models = sorted(p.parent.name for p in (folder / "models").glob("*/predictions.h5"))
    return Run(folder, settings, classes, models, adapter, manifest)


# -- models ----------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """One trained model of a run, ready for test-time clips: its spec, weights, settings, the
    training settings of its last phase (``signpipe.train.TrainConfig``: batch size, loader workers,
    autocast) and device."""

    name: str
    spec: Any
    model: Any
    settings: dict[str, Any]
    training: Any
    device: str


def method_models(run: Run, method: str | None) -> list[str]:
    """The models of ``method`` (``NAME`` or ``A+B``); None: the run's best row of ``fusion/table.csv``
    (test per-instance top-1), or its one model. An unknown name lists the run's models."""
    if method is None:
        table = run.folder / "fusion" / "table.csv"
        if table.is_file():
            rows = pd.read_csv(table)
            return str(rows.loc[rows["instance_top1"].idxmax(), "models"]).split("+")
        if len(run.models) != 1:
            raise ValueError(f"{run.folder}: no fusion/table.csv to pick the best method from; name one with "
                             f"--model (the run's models: {', '.join(run.models) or 'none'})")
        return list(run.models)
    names = [name.strip() for name in method.split("+")]
    unknown = [name for name in names if name not in run.models]
    if unknown:
        raise ValueError(f"--model {method}: the run {run.folder} has no model {unknown[0]!r} (no "
                         f"models/{unknown[0]}/predictions.h5); its models: {', '.join(run.models) or 'none'}")
    if len(set(names)) != len(names):
        raise ValueError(f"--model {method}: a model named twice")
    return names


def fusion_weights(run: Run, names: Sequence[str]) -> tuple[tuple[float, ...], str]:
    """The weights and rule (``sum`` or ``product``, :func:`signpipe.fusion.fused_probabilities`) the
    run's fuse stage gave the models of ``names`` (``fusion/table.csv``); equal weights and the
    papers' sum of softmax scores for one model or a combo the table does not hold."""
    table = run.folder / "fusion" / "table.csv"
    if len(names) > 1 and table.is_file():
        rows = pd.read_csv(table, dtype={"weights": str}).set_index("models")
        key = "+".join(names)
        if key in rows.index:
            rule = str(rows.loc[key, "rule"]) if "rule" in rows.columns else "sum"  # tables before the rule column
            return tuple(float(w) for w in str(rows.loc[key, "weights"]).split(":")), rule
        log.warning("%s has no row %s; its models are fused with equal weights", table, key)
    return (1.0,) * len(names), "sum"


def load_model(run: Run, name: str, device: str = "auto") -> LoadedModel:
    """Model ``name`` of the run, built from the settings of its ``predictions.h5`` with the weights of its
    last ``checkpoint.pt``; no pre-trained file is read (the checkpoint holds every weight)."""
    import torch

    from signpipe.models import model_spec
    from signpipe.predictions import read_predictions
    from signpipe.train import CHECKPOINT, train_config

    folder = run.folder / "models" / name
    _, attrs = read_predictions(folder / "predictions.h5")
    config = json.loads(attrs["config"])
    spec = model_spec(name)
    checkpoint = folder / spec.phases[-1].name / CHECKPOINT if spec.phases else folder / CHECKPOINT
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: missing; predict needs the weights the finetune stage wrote "
                                f"(rerun it: snakemake --cores all --forcerun finetune)")
    training = config.pop("train", {})
    # Weights come from the checkpoint: the files a model starts from in training are not needed.
    settings = {**config, "pretrained": None, "checkpoint": None}
    quiet = logging.getLogger("signpipe.models")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the build's "starts from random weights" warnings do not hold here
    try:
        model = spec.build(int(attrs["num_classes"]), settings)
    finally:
        quiet.setLevel(level)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state["model"])
    last = train_config(training[spec.phases[-1].name] if spec.phases else training.get("main", {}))
    model.eval()
    return LoadedModel(name, spec, model, settings, last, device)


# -- one video through the stages ------------------------------------------------------------


def video_id_of(path: Path, taken: set[str]) -> str:
    """A video id from a file name: its stem with characters outside the id rule replaced, made unique."""
    stem = re.sub(r"[^\w.-]", "_", path.stem).lstrip(".") or "video"
    stem = stem.encode("utf-8")[:MAX_ID_BYTES - 8].decode("utf-8", "ignore")
    video_id, n = stem, 1
    while video_id in taken:
        n += 1
        video_id = f"{stem}-{n}"
    taken.add(video_id)
    return video_id


def _sidecar(run: Run, path: Path, column: str) -> str:
    """The sidecar keypoints file of a video for a run whose pose backend is ``sidecar``: the run's own
    (the video is in its manifest), else ``<video>.npz`` beside it or ``../keypoints/<stem>.npz`` (the
    synthetic corpus's layout); '' when there is none (the pose stage then names the missing column)."""
    if column in run.manifest:
        same = run.manifest[run.manifest["path"] == str(path)]
        if len(same) and same.iloc[0][column]:
            return str(same.iloc[0][column])
    for candidate in (path.with_suffix(".npz"), path.parent.parent / "keypoints" / f"{path.stem}.npz"):
        if candidate.is_file():
            return str(candidate)
    return ""


class Stages:
    """decode -> pose -> hands of one video at a time into one-video shards of ``work``, with the run's settings.

    ``stages``: those the models read (keypoints whenever hands are read; frames for every video run).
    The pose backend is made once (its model loaded once) and closed by :meth:`close`.
    """

    def __init__(self, run: Run, stages: Sequence[str], work: str | os.PathLike) -> None:
        from signpipe.pose import make_backend

        self.run, self.work = run, Path(work)
        wanted = set(stages) | ({"keypoints"} if "hands" in stages else set())
        if run.adapter is None:
            wanted.add("frames")
        else:
            wanted.add("keypoints")
            if "frames" in wanted:
                raise ValueError(f"{run.folder} is a keypoint run ({run.adapter}): it has no frames for a pixel model")
        self.stages = [stage for stage in STAGES if stage in wanted]
        missing = [stage for stage in self.stages if stage not in run.settings]
        if missing:
            raise FileNotFoundError(f"{run.folder}/{missing[0]}: no shard to read the {missing[0]} stage's settings "
                                    "from; finish the run first")
        for stage in (*self.stages, "manifest"):
            (self.work / stage).mkdir(parents=True, exist_ok=True)
        self.backend = None
        if run.adapter is None and "keypoints" in self.stages:
            try:
                self.backend = make_backend(run.settings["keypoints"])
            except (ValueError, FileNotFoundError, OSError) as err:
                raise type(err)(f"{run.folder}: the run's pose backend cannot be made: {err}") from None

    def paths(self) -> dict[str, Path]:
        """The one-video shard of each stage."""
        return {stage: self.work / stage / SHARD for stage in self.stages}

    def _manifest(self, path: Path, video_id: str) -> tuple[Path, dict[str, Any]]:
        """The one-row manifest of a video (its stages read it) and the row."""
        row = {"video_id": video_id, "path": str(path), "label": UNKNOWN_LABEL, "gloss": "", "split": SPLIT, "signer": "",
               "frame_start": 0, "frame_end": -1, "shard": 0}
        pose = self.run.settings["keypoints"]
        if self.run.adapter is not None:
            row.update(width=pose.get("width"), height=pose.get("height"))
        elif pose.get("backend") == "sidecar":
            column = pose.get("sidecar_column", "keypoints")
            row[column] = _sidecar(self.run, path, column)
        out = self.work / "manifest" / "0.csv"
        write_csv(pd.DataFrame([row], columns=[*MANIFEST_COLUMNS, *[k for k in row if k not in MANIFEST_COLUMNS]]), out)
        return out, row

    def __call__(self, path: str | os.PathLike, video_id: str) -> str:
        """Run the stages on one video; '' when every stage wrote it, else the reason it failed."""
        from signpipe.decode import decode_shard
        from signpipe.hands import crop_shard
        from signpipe.pose import extract_shard

        path = Path(path).resolve()
        manifest, row = self._manifest(path, video_id)
        shards = self.paths()
        failures = self.work / "failures.csv"
        quality = self.work / "quality.csv"
        if self.run.adapter is not None:
            from signpipe.pose.importer import import_shard

            import_shard(manifest, shards["keypoints"], quality, failures, self.run.settings["keypoints"], progress=False)
            failed = pd.read_csv(failures)
            if len(failed):
                return f"cannot import ({failed['reason'].iloc[0]})"
        else:
            decode = self.run.settings["frames"]
            stats = decode_shard(manifest, 0, shards["frames"], failures, short_side=decode["short_side"],
                                 jpeg_quality=decode["jpeg_quality"], threads=1, progress=False)
            if stats["failed"]:
                return f"cannot decode ({pd.read_csv(failures)['reason'].iloc[0]})"
            column = self.run.settings["keypoints"].get("sidecar_column", "keypoints")
            if self.backend is not None and self.run.settings["keypoints"].get("backend") == "sidecar" and not row[column]:
                return (f"no sidecar keypoints ({path.stem}.npz beside the video or in ../keypoints/); the run's "
                        "pose backend is sidecar")
            if "keypoints" in shards:
                table = extract_shard(manifest, shards["frames"], shards["keypoints"], quality,
                                      self.run.settings["keypoints"], threads=1, progress=False, backend=self.backend)
                error = table["error"].iloc[0]
                if isinstance(error, str) and error:
                    return f"keypoints failed ({error})"
        if "hands" in shards:
            hands = {k: v for k, v in self.run.settings["hands"].items()
                     if k in ("crop_size", "box_scale", "smooth_sigma", "storage", "jpeg_quality", "fill")}
            crop_shard(shards.get("frames"), shards["keypoints"], shards["hands"], progress=False, **hands)
            with h5py.File(shards["hands"], "r") as f:
                failed = json.loads(f.attrs.get("failures", "{}"))
            if failed:
                return f"hand crops failed ({failed[video_id]})"
        return ""

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()


# -- predictions ------------------------------------------------------------------------------


@dataclass
class Prediction:
    """One input's answer: ``scores`` (C,) the probabilities of the method (a model's softmax, or the
    combo's fused probabilities, :func:`signpipe.fusion.fused_probabilities`), ``logits`` per model
    (C,); both None with a ``reason``."""

    video_id: str
    path: str
    scores: np.ndarray | None = None
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    reason: str = ""

    def top(self, classes: Sequence[str], k: int) -> list[tuple[int, str, float]]:
        """(label, class name, probability) of the ``k`` best classes, best first."""
        if self.scores is None:
            return []
        order = np.argsort(-self.scores, kind="stable")[:k]
        return [(int(c), classes[c], float(self.scores[c])) for c in order]


def input_files(run: Run, paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The files to predict: each path; the files of the run's input type in a folder given (videos
    for a video run, the adapter's keypoint files for a keypoint run), sorted; the ``path`` column of
    a ``.csv`` given (relative paths from the CSV's folder)."""
    suffixes = input_suffixes(run.adapter)
    files = []
    for path in map(Path, paths):
        if path.suffix.lower() == ".csv":
            listed = pd.read_csv(path, dtype=str, keep_default_na=False)
            if "path" not in listed:
                raise ValueError(f"{path}: a CSV of inputs needs a 'path' column (one video or keypoint file per row)")
            files += [path.parent / p for p in listed["path"] if p]
        elif path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes)
            if not found:
                raise FileNotFoundError(f"{path}: no {', '.join(suffixes)} files in this folder")
            files += found
        else:
            files.append(path)
    if run.adapter and run.adapter != "pyskl":
        wrong = [p for p in files if p.suffix.lower() not in suffixes]
        if wrong:
            raise ValueError(f"{wrong[0]}: {run.folder} is a keypoint run ({run.adapter}); it predicts from "
                             f"{', '.join(suffixes)} files, not videos")
    return files


def _pyskl_inputs(run: Run, files: Sequence[Path]) -> list[tuple[Path, str]]:
    """(pickle, frame_dir) of every annotation of the given pyskl pickles (a pyskl run's inputs)."""
    from signpipe.keypoints.sources import load_pyskl

    trust = bool(run.settings["keypoints"].get("trust_pickle", False))
    return [(path, str(a["frame_dir"])) for path in files for a in load_pyskl(path, trust)["annotations"]]


class Recogniser:
    """The run's models of one method, loaded once, and the stages that feed them; call it on inputs."""

    def __init__(self, run: str | os.PathLike | Run, method: str | None = None, device: str = "auto",
                 work: str | os.PathLike | None = None) -> None:
        self.run = run if isinstance(run, Run) else open_run(run)
        self.names = method_models(self.run, method)
        self.method = "+".join(self.names)
        self.weights, self.rule = fusion_weights(self.run, self.names)
        self.models = [load_model(self.run, name, device) for name in self.names]
        self._tmp = tempfile.TemporaryDirectory(prefix="signpipe-predict-") if work is None else None
        stages = sorted({stage for m in self.models for stage in m.spec.stages})
        try:
            self.stages = Stages(self.run, stages, work if work is not None else self._tmp.name)
        except BaseException:
            if self._tmp is not None:
                self._tmp.cleanup()
            raise

    def predict_one(self, path: str | os.PathLike, video_id: str) -> Prediction:
        """One input through the stages and the models."""
        from signpipe.fusion import fused_probabilities
        from signpipe.train import predict

        reason = self.stages(path, video_id)
        if reason:
            return Prediction(video_id, str(path), reason=reason)
        shards = self.stages.paths()
        logits = {}
        for m in self.models:
            data = m.spec.dataset({stage: [shards[stage]] for stage in m.spec.stages}, SPLIT, False, m.settings)
            if not len(data):
                return Prediction(video_id, str(path), reason="no frames")
            logits[m.name] = predict(m.model, data, m.spec.forward, m.training.batch_size, m.device,
                                     num_workers=m.training.num_workers, amp=m.training.amp)[0][0]
        fused = fused_probabilities([logits[m.name][None] for m in self.models], self.weights, self.rule)[0]
        return Prediction(video_id, str(path), fused, logits)

    def __call__(self, paths: Sequence[str | os.PathLike], progress: bool = True) -> Iterator[Prediction]:
        """Predictions of the inputs in order, one at a time (a progress bar on a terminal)."""
        files = input_files(self.run, paths)
        if self.run.adapter == "pyskl":
            items = [(path, frame_dir) for path, frame_dir in _pyskl_inputs(self.run, files)]
        else:
            taken: set[str] = set()
            items = [(path, video_id_of(path, taken)) for path in files]
        for path, video_id in track(items, total=len(items), disable=not progress, desc=f"predict {self.method}",
                                    unit="video"):
            try:
                yield self.predict_one(path, video_id)
            except Exception as err:  # noqa: BLE001 - one input's error is its row, as in the stages
                from signpipe.jobs import describe, fails_the_job

                if fails_the_job(err):
                    raise
                yield Prediction(video_id, str(path), reason=describe(err))

    def close(self) -> None:
        self.stages.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Recogniser:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def table(predictions: Sequence[Prediction], classes: Sequence[str], k: int = TOP_K) -> pd.DataFrame:
    """One row per input: ``video``, ``path``, ``class_1``, ``p_1`` .. ``class_k``, ``p_k``, ``reason``."""
    rows = []
    for p in predictions:
        row: dict[str, Any] = {"video": p.video_id, "path": p.path}
        top = p.top(classes, k)
        for i in range(k):
            row[f"class_{i + 1}"] = top[i][1] if i < len(top) else ""
            row[f"p_{i + 1}"] = round(top[i][2], 4) if i < len(top) else math.nan
        row["reason"] = p.reason
        rows.append(row)
    columns = ["video", "path", *[f"{c}_{i + 1}" for i in range(k) for c in ("class", "p")], "reason"]
    return pd.DataFrame(rows, columns=columns)


def records(predictions: Sequence[Prediction], classes: Sequence[str], k: int, method: str) -> list[dict[str, Any]]:
    """The JSON of ``--json``: per input its id, path, method, top-k (label, class, p) and reason."""
    return [{"video": p.video_id, "path": p.path, "method": method, "reason": p.reason,
             "top": [{"label": label, "class": name, "p": round(prob, 6)} for label, name, prob in p.top(classes, k)]}
            for p in predictions]


def text_table(predictions: Sequence[Prediction], classes: Sequence[str], k: int) -> str:
    """The terminal table: video, then ``class p`` per rank, or the reason of a failed input."""
    k = min(k, len(classes))
    header = ["video", *[f"top-{i + 1}" for i in range(k)]]
    lines = []
    for p in predictions:
        cells = [f"{name} {prob:.2f}" for _, name, prob in p.top(classes, k)] or [p.reason]
        lines.append([p.video_id, *cells])
    widths = [max(len(str(row[i])) for row in [header, *lines] if i < len(row)) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(widths[i]) if i < len(widths) - 1 else str(cell)
                               for i, cell in enumerate(row)).rstrip() for row in [header, *lines])


def draw_sheet(recogniser: Recogniser, prediction: Prediction, out: str | os.PathLike, k: int = 3) -> Path:
    """The contact sheet of the input just predicted (``signpipe show``'s: frames, skeletons, boxes,
    crops) with its top-``k`` classes in a panel beside it."""
    import cv2

    from signpipe.figures import save_image
    from signpipe.show import contact_sheet

    out = Path(out)
    shard = recogniser.stages.paths().get("hands") or recogniser.stages.paths()["keypoints"]
    contact_sheet(shard, prediction.video_id, out)
    sheet = cv2.cvtColor(cv2.imread(str(out)), cv2.COLOR_BGR2RGB)
    panel = np.full((sheet.shape[0], 440, 3), 40, np.uint8)
    lines = [f"predicted ({recogniser.method})", ""] + [f"{i + 1}. {prob:.2f}  {name}" for i, (_, name, prob)
                                                        in enumerate(prediction.top(recogniser.run.classes, k))]
    for i, line in enumerate(lines):
        cv2.putText(panel, line[:42], (10, 24 + 24 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (230, 230, 230), 1, cv2.LINE_AA)
    return save_image(np.concatenate([sheet, panel], axis=1), out)


def sheet_path(out: str | os.PathLike, video_id: str, many: bool) -> Path:
    """``--sheet OUT.png``: OUT.png for one input, ``OUT-<video_id>.png`` beside it for several."""
    out = Path(out)
    return out.with_name(f"{out.stem}-{video_id}{out.suffix or '.png'}") if many else out


def predict_videos(run: str | os.PathLike, videos: Sequence[str | os.PathLike], method: str | None = None,
                   top: int = TOP_K, json_out: str | os.PathLike | None = None, sheet: str | os.PathLike | None = None,
                   csv_out: str | os.PathLike | None = None, device: str = "auto",
                   progress: bool = True) -> tuple[list[Prediction], Recogniser]:
    """Predict every input of ``videos`` (files or folders) with ``method`` of ``run``; write the top-``top``
    table to ``csv_out`` and ``json_out`` and a contact sheet per input to ``sheet`` when given.
    Returns the predictions and the (closed) recogniser (its run, method, weights)."""
    if top < 1:
        raise ValueError(f"--top: at least 1, got {top}")
    with Recogniser(run, method, device) as recogniser:
        many = len(videos) > 1 or any(Path(v).is_dir() or Path(v).suffix.lower() == ".csv" for v in videos)
        predictions = []
        for prediction in recogniser(videos, progress):
            predictions.append(prediction)
            if sheet is not None and prediction.scores is not None:
                draw_sheet(recogniser, prediction, sheet_path(sheet, prediction.video_id, many))
    classes = recogniser.run.classes
    if csv_out is not None:
        write_csv(table(predictions, classes, top), csv_out)
    if json_out is not None:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(records(predictions, classes, top, recogniser.method), indent=1) + "\n")
    return predictions, recogniser


STAGE_LOGGERS = ("signpipe.decode", "signpipe.pose", "signpipe.hands", "signpipe.data")
"""Loggers whose per-shard summaries would print a few lines per video; predict keeps their warnings only."""


def _predict(args: argparse.Namespace) -> None:
    loggers = [logging.getLogger(name) for name in STAGE_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:  # the levels come back: a caller in the same process (a notebook, a test) keeps its logs
        predictions, recogniser = predict_videos(args.run, args.videos, args.model, args.top, args.json, args.sheet,
                                                 args.csv, args.device)
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
    weights = (f" (weights {':'.join(f'{w:g}' for w in recogniser.weights)})" if len(recogniser.names) > 1 else "")
    print(f"{recogniser.run.folder}: {recogniser.method}{weights}")
    print(text_table(predictions, recogniser.run.classes, args.top))


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``signpipe predict`` to the CLI."""
    parser = sub.add_parser(
        "predict", help="recognise new sign videos with a finished run (top-K classes per video)",
        description="Run new videos through a finished run's own stages and models: decode, pose, hands with the "
        "settings the run recorded in its shards, then the model's test-time clip and its trained weights "
        "(models/<model>/checkpoint.pt); a fusion A+B combines the models' scores with the run's "
        "fusion weights and rule (fusion/table.csv). Prints video and top-K classes with probabilities; a video "
        "that cannot be decoded gets a row with its reason. A keypoint run (gislr, pose, arrays, pyskl) "
        "takes its adapter's files (.parquet, .pose, .npy/.npz, .pkl) instead of videos.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN", help="a finished dataset folder, e.g. results/demo")
    parser.add_argument("videos", metavar="VIDEO", nargs="+", help="video files or folders of them")
    parser.add_argument("--model", metavar="NAME|A+B", default=None,
                        help="a model of the run, or a fusion of several; default: the run's best fusion-table row")
    parser.add_argument("--top", type=int, default=TOP_K, help="classes per video")
    parser.add_argument("--json", metavar="OUT", default=None, help="also write the table as JSON")
    parser.add_argument("--csv", metavar="OUT", default=None, help="also write the table as CSV")
    parser.add_argument("--sheet", metavar="OUT.png", default=None,
                        help="a contact sheet (frames, skeletons, top-3); several videos: OUT-<video>.png")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.set_defaults(func=_predict)
