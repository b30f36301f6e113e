"""Dataset adapters: one ``datasets:`` config block -> the manifest of DESIGN §2.

An adapter (one module per dataset format) reads its index files and returns the rows it
found with their video on disk, and the rows whose video is absent. Everything the adapters
share lives here, in one place: resolving config paths, finding video files, checking the
rows, assigning shards with :func:`signpipe.shards.shard_of`, and writing the two CSVs.

Manifest conventions (docs/datasets.md): ``video_id`` str (leading zeros kept), ``path``
absolute, ``label`` int >= 0, ``gloss`` str, ``split`` one of train/val/test, ``signer``
str ('' when unknown), ``frame_start`` 0-based inclusive, ``frame_end`` 0-based exclusive
or -1 for "to the end of the video". Adapter extras follow as further columns.

The keypoint adapters (:data:`KEYPOINT_ADAPTERS`) list sequences of keypoint files instead of
videos (``path`` is the file; extras ``width``, ``height``: the nominal frame); their datasets skip
decode in the workflow, and nothing here imports their readers or torch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from signpipe.names import VIDEO_ID_RULE, video_file, video_id_problem
from signpipe.shards import shard_of, write_csv

log = logging.getLogger(__name__)

MANIFEST_COLUMNS = ["video_id", "path", "label", "gloss", "split", "signer", "frame_start", "frame_end", "shard"]
MISSING_COLUMNS = ["video_id", "path", "reason", "label", "gloss", "split"]
SPLITS = ("train", "val", "test")
DEFAULT_NUM_SHARDS = 4
"""``num_shards`` of a dataset whose config block has none (the schema's default)."""
VAL_FROM_TRAIN = 0.0
"""``val_from_train`` of a dataset whose block has none (the schema's default): no val split drawn."""
VAL_SEED = 0
"""Seed of the draw of :func:`val_from_train`: the same manifest always gives the same split."""
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
"""Default video file extensions, in order of preference when one name has several."""
BBOX_COLUMNS = ["bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1"]
"""Extra columns of adapters that know the signer's box: pixels of the source video."""
KEYPOINT_ADAPTERS = ("gislr", "pose", "arrays", "pyskl")
"""Adapters whose corpora ship keypoints, not videos (``signpipe.keypoints.sources.FORMATS``): their
datasets skip decode, import their keypoints in the pose stage and get hands shards without crops."""
NOMINAL_FRAME = (512, 512)
"""(width, height) of the nominal frame of a keypoint dataset without ``width``/``height`` keys
(the schema's defaults): normalised coordinates become pixels of it."""
FRAME_COLUMNS = ["width", "height"]
"""Extra columns of the keypoint adapters: each sequence's nominal frame in pixels."""
ROLES = ("labeled", "pretrain")
DEFAULT_ROLE = "labeled"
"""``role`` of a dataset whose block has none (the schema's default): its train split is pre-trained
on, and every model of ``finetune.models`` is fine-tuned and tested on it."""
UNLABELED_ADAPTERS = ("folder", "csv", "gislr", "pose", "arrays")
"""Adapters that can list their media without labels, so their datasets may say ``role: pretrain``."""
NO_LABEL = -1
"""``label`` of every row of a ``role: pretrain`` dataset (its ``gloss`` is '' and its ``split`` train)."""
SPLIT_KEYS = ("splits", "default_split", "classes")
"""Keys that label or split a dataset: a ``role: pretrain`` dataset has none of them."""

Adapter = Callable[[Mapping[str, Any], str, Path | None], tuple[pd.DataFrame, pd.DataFrame]]
"""``load(cfg, where, corpus_dir) -> (rows, missing)``; ``where`` is the config location for
messages (``datasets.wlasl100``); rows hold MANIFEST_COLUMNS but ``shard``, plus extras."""


def adapters() -> dict[str, Adapter]:
    """The known adapters by their ``adapter:`` name (each ``load(cfg, where, corpus_dir)``)."""
    # Imported here, not at the top: the adapter modules import the helpers of this module.
    from signpipe.datasets import arrays, csvfile, folder, gislr, msasl, posefile, pyskl, synthetic, wlasl

    return {"wlasl": wlasl.load, "msasl": msasl.load, "folder": folder.load,
            "csv": csvfile.load, "synthetic": synthetic.load, "gislr": gislr.load, "pose": posefile.load,
            "arrays": arrays.load, "pyskl": pyskl.load}


def is_keypoint_dataset(cfg: Mapping[str, Any]) -> bool:
    """Whether a ``datasets:`` block's adapter yields keypoints (no videos, no frames, no crops)."""
    return cfg.get("adapter") in KEYPOINT_ADAPTERS


def dataset_role(cfg: Mapping[str, Any], where: str) -> str:
    """A ``datasets:`` block's checked ``role``: ``labeled`` (the default) or ``pretrain`` (no labels, no
    splits: every sequence feeds SignBERT's pre-training and nothing else)."""
    role = cfg.get("role", DEFAULT_ROLE)
    if role not in ROLES:
        raise ValueError(f"{where}.role: must be one of {', '.join(ROLES)}, got {role!r}")
    if role == "pretrain":
        if cfg.get("adapter") not in UNLABELED_ADAPTERS:
            raise ValueError(f"{where}.role: adapter {cfg.get('adapter')} lists labeled videos only, so it cannot be "
                             f"role: pretrain; drop the key (its train split is pre-trained on anyway) or list the "
                             f"media with one of {', '.join(UNLABELED_ADAPTERS)}")
        stray = [key for key in SPLIT_KEYS if key in cfg]
        if stray:
            raise ValueError(f"{where}.{stray[0]}: a role: pretrain dataset has no labels or splits (every sequence "
                             "is pre-trained on); remove the key, or hold some out with val_from_train")
    return role


def unlabeled(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of a ``role: pretrain`` dataset: label NO_LABEL, gloss '', split train, whatever the index said."""
    return rows.assign(label=NO_LABEL, gloss="", split="train")


def nominal_frame(cfg: Mapping[str, Any], where: str) -> tuple[int, int]:
    """(width, height) of a keypoint dataset's nominal frame: its ``width``/``height`` keys or NOMINAL_FRAME."""
    size = tuple(cfg.get(key, default) for key, default in zip(FRAME_COLUMNS, NOMINAL_FRAME))
    for key, value in zip(FRAME_COLUMNS, size):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{where}.{key}: the nominal frame's {key} must be a positive integer (pixels), "
                             f"got {value!r}")
    return size


def build_manifest(
    cfg: Mapping[str, Any], corpus_dir: str | os.PathLike | None = None, name: str | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(manifest, missing) for one dataset's config block.

    ``name`` is the dataset's key under ``datasets:``; it only makes error messages point at
    the right place (``datasets.wlasl100.index: ...``). Relative config paths are resolved
    against the current working directory (the Snakemake workdir).
    """
    where = f"datasets.{name or cfg.get('adapter', '?')}"
    known = adapters()
    adapter = cfg.get("adapter")
    if adapter not in known:
        raise ValueError(f"{where}.adapter: unknown adapter {adapter!r}; known: {', '.join(sorted(known))}")
    num_shards = cfg.get("num_shards", DEFAULT_NUM_SHARDS)
    if isinstance(num_shards, bool) or not isinstance(num_shards, int) or num_shards < 1:
        raise ValueError(f"{where}.num_shards: must be a positive integer, got {num_shards!r}")
    labeled = dataset_role(cfg, where) != "pretrain"
    rows, missing = known[adapter](cfg, where, Path(corpus_dir) if corpus_dir is not None else None)
    if not labeled:
        rows, missing = unlabeled(rows), unlabeled(missing)
    manifest = _checked_manifest(rows, num_shards, where, labeled)
    fraction = cfg.get("val_from_train", VAL_FROM_TRAIN)
    if fraction:
        manifest = val_from_train(manifest, fraction, where)
    return manifest, _checked_missing(missing)


def val_from_train(manifest: pd.DataFrame, fraction: float, where: str = "datasets",
                   seed: int = VAL_SEED) -> pd.DataFrame:
    """The manifest with about ``fraction`` of its train videos moved to ``val``, for a corpus without
    a val split (NMFs-CSL, SLR500), so that plateau schedules and ``fusion.weights: val`` have one.

    Signer-disjoint when every train video has a signer and there are two or more: whole signers,
    drawn in a seeded order, until the fraction is reached (one signer at least, one left in
    train). Otherwise stratified by class: each class gives ``fraction`` of its videos (largest
    remainders rounded up, one video always left in train), drawn seeded. The same manifest and
    fraction always give the same split. A manifest that has val videos already is an error.
    """
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise ValueError(f"{where}.val_from_train: a share of the train videos in (0, 1), e.g. 0.1; got {fraction!r}")
    if (manifest["split"] == "val").any():
        raise ValueError(f"{where}.val_from_train: the corpus has {int((manifest['split'] == 'val').sum())} val "
                         f"videos already; remove the key (it draws a val split only for corpora without one)")
    rng = np.random.default_rng(seed)
    train = manifest.loc[manifest["split"] == "train"]
    signers = sorted(train["signer"].unique())
    if len(signers) >= 2 and "" not in signers:
        counts = train["signer"].value_counts()
        chosen: list[str] = []
        for signer in rng.permutation(signers)[:-1]:
            if chosen and counts[chosen].sum() >= fraction * len(train):
                break
            chosen.append(str(signer))
        moved = train.index[train["signer"].isin(chosen)]
        how = f"signers {', '.join(sorted(chosen))}"
    else:
        sizes = train.groupby("label").size()
        share = sizes * fraction
        take = np.floor(share).astype(int)
        extra = int(round(fraction * len(train))) - int(take.sum())
        order = sorted(sizes.index, key=lambda label: (-(share[label] - take[label]), rng.random()))
        for label in order[:max(extra, 0)]:
            take[label] += 1
        take = np.minimum(take, sizes - 1)
        moved = pd.Index(np.concatenate([rng.permutation(train.index[train["label"] == label])[:take[label]]
                                         for label in sizes.index]))
        how = "stratified by class (no signers)"
    manifest = manifest.copy()
    manifest.loc[moved, "split"] = "val"
    log.info("%s.val_from_train: %d of %d train videos to val, %s", where, len(moved), len(train), how)
    return manifest


def write_manifest(
    cfg: Mapping[str, Any],
    manifest_csv: str | os.PathLike,
    missing_csv: str | os.PathLike,
    corpus_dir: str | os.PathLike | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Build the manifest and write it and missing.csv (always, maybe header only) atomically."""
    manifest, missing = build_manifest(cfg, corpus_dir, name)
    write_csv(manifest, manifest_csv)
    write_csv(missing, missing_csv)
    per_split = ", ".join(f"{split} {int((manifest['split'] == split).sum())}" for split in SPLITS)
    log.info("%s: %d videos (%s) in %s; %d missing, listed in %s",
             name or cfg["adapter"], len(manifest), per_split, manifest_csv, len(missing), missing_csv)
    return manifest


def write_shard_manifest(
    cfg: Mapping[str, Any],
    shard: int,
    manifest_csv: str | os.PathLike,
    corpus_dir: str | os.PathLike | None = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Build the manifest and write the rows of one shard (maybe header only) atomically.

    The per-shard stages read this file, not manifest.csv, so that a video added to one shard
    reruns that shard only (see ``manifest_listing``).
    """
    manifest, _ = build_manifest(cfg, corpus_dir, name)
    rows = manifest.loc[manifest["shard"] == shard].reset_index(drop=True)
    write_csv(rows, manifest_csv)
    log.info("%s: shard %d: %d of %d videos in %s", name or cfg["adapter"], shard, len(rows), len(manifest),
             manifest_csv)
    return rows


@dataclass(frozen=True)
class Listing:
    """Digests of what a manifest lists now: ``manifest`` of all of it, ``shards[k]`` of shard k's rows."""

    manifest: str
    shards: tuple[str, ...]


def manifest_listing(cfg: Mapping[str, Any], corpus_dir: str | os.PathLike | None = None,
                     name: str | None = None) -> Listing:
    """Digests of the manifest that ``cfg`` gives now: its rows and the size and mtime of each video.

    As rule params they rerun the manifest, and only the shards whose rows changed, when a video is
    added, replaced or recovered. A build error is digested instead of raised, so that the
    manifest job runs and reports it in its log.
    """
    num_shards = cfg.get("num_shards", DEFAULT_NUM_SHARDS)
    num_shards = num_shards if isinstance(num_shards, int) and num_shards > 0 else 1
    try:
        manifest, missing = build_manifest(cfg, corpus_dir, name)
    except Exception as error:  # any failure: the manifest job, not the DAG, reports it
        failed = f"error: {error}"
        return Listing(failed, (failed,) * num_shards)
    stats = {path: _stat(path) for path in manifest["path"].unique()}
    files = manifest.assign(
        size=manifest["path"].map(lambda p: stats[p][0]), mtime_ns=manifest["path"].map(lambda p: stats[p][1]))
    groups = dict(tuple(files.groupby("shard", sort=False)))
    shards = tuple(_rows_digest(groups.get(k, files.iloc[:0])) for k in range(num_shards))
    whole = _sha1("".join(shards) + missing.to_csv(index=False))
    return Listing(f"{len(manifest)} videos, {len(missing)} missing, sha1 {whole}", shards)


def _rows_digest(rows: pd.DataFrame) -> str:
    """'<n> videos sha1 <hex>' of manifest rows as CSV."""
    return f"{len(rows)} videos sha1 {_sha1(rows.to_csv(index=False))}"


def _stat(path: str) -> tuple[int, int]:
    """(size, mtime in ns) of a file; (-1, -1) when it is gone."""
    try:
        info = os.stat(path)
    except OSError:
        return -1, -1
    return info.st_size, info.st_mtime_ns


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest.csv or missing.csv back with its types.

    ``video_id`` '05237' (and a pyskl ``frame_dir``) stays a str, an unknown ``signer`` stays '', and
    a gloss such as 'null' is not taken for a missing value (only empty cells are).
    """
    text_columns = ["video_id", "path", "reason", "gloss", "split", "signer", "frame_dir"]
    table = pd.read_csv(path, dtype=dict.fromkeys(text_columns, str), keep_default_na=False, na_values=[""])
    present = [c for c in text_columns if c in table.columns]
    table[present] = table[present].fillna("")
    return table


# -- helpers shared by the adapters -------------------------------------------------------


def required(cfg: Mapping[str, Any], key: str, where: str) -> Any:
    """``cfg[key]``, or a ValueError naming the missing key."""
    if cfg.get(key) is None:
        raise ValueError(f"{where}.{key}: required key is missing")
    return cfg[key]


def flag(cfg: Mapping[str, Any], key: str, where: str, default: bool) -> bool:
    """A true/false config key."""
    value = cfg.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{where}.{key}: expected true or false, got {value!r}")
    return value


def resolve(value: str | os.PathLike, base: Path | None = None) -> Path:
    """An absolute, normalised path (``~`` expanded; relative ones against ``base`` or the cwd)."""
    return Path(os.path.abspath(os.path.join(base or os.getcwd(), os.path.expanduser(value))))


def config_path(cfg: Mapping[str, Any], key: str, where: str, kind: str = "file",
                base: Path | None = None) -> Path:
    """The existing file (``kind='file'``) or directory (``'dir'``) that config key ``key`` names."""
    path = resolve(str(required(cfg, key, where)), base)
    return existing(path, f"{where}.{key}", kind)


def text_lines(path: Path) -> list[str]:
    """The non-empty lines of a text file, stripped: a ``classes`` file's names in label order."""
    return [line.strip() for line in utf8_text(path).splitlines() if line.strip()]


def utf8_text(path: Path, data: bytes | None = None) -> str:
    """The text of a label file (``data``: its bytes, when already read); a file that is not UTF-8 is a
    one-line ValueError naming it, the line and the byte, and how to convert it."""
    data = path.read_bytes() if data is None else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise ValueError(f"{path}: line {line} is not UTF-8 (byte 0x{data[err.start]:02x}); a latin-1 or "
                         f"Windows file? save it as UTF-8, e.g. iconv -f latin1 -t utf-8 {path.name} > "
                         f"{path.stem}.utf8{path.suffix}") from None


def existing(path: Path, what: str, kind: str = "file") -> Path:
    """``path`` if it is an existing file/dir, else an error that names ``what`` and the path."""
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} does not exist")
    if not (path.is_dir() if kind == "dir" else path.is_file()):
        raise ValueError(f"{what}: {path} is not a {'directory' if kind == 'dir' else 'file'}")
    return path


def video_extensions(cfg: Mapping[str, Any], where: str) -> tuple[str, ...]:
    """The ``extensions`` config key as lower-case '.ext' strings (default VIDEO_EXTENSIONS)."""
    values = cfg.get("extensions") or VIDEO_EXTENSIONS
    if isinstance(values, str) or not all(isinstance(v, str) and v.strip(".") for v in values):
        raise ValueError(f"{where}.extensions: expected a list such as [mp4, mkv], got {values!r}")
    return tuple("." + v.lower().lstrip(".") for v in values)


def videos_by_stem(directory: Path, extensions: Sequence[str]) -> dict[str, str]:
    """Video files directly in ``directory`` (their paths) by file name without extension.

    One listing of the directory instead of a stat per id and extension (WLASL has 21k ids).
    When a name exists with several extensions, the earliest in ``extensions`` wins.
    """
    rank = {ext: i for i, ext in enumerate(extensions)}
    best: dict[str, tuple[int, str]] = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            stem, ext = os.path.splitext(entry.name)
            r = rank.get(ext.lower())
            if r is not None and (stem not in best or r < best[stem][0]) and entry.is_file():
                best[stem] = (r, entry.path)
    return {stem: path for stem, (_, path) in best.items()}


def locate_videos(rows: pd.DataFrame, stems: pd.Series, directory: Path,
                  extensions: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Set ``path`` to the file ``{directory}/{stem}.{ext}`` of each row; split off rows without one.

    A missing row's ``path`` is the file expected with the first extension.
    """
    found = stems.map(videos_by_stem(directory, extensions))
    expected = stems[found.isna()].map(lambda stem: str(video_file(directory, stem, extensions[0])))
    rows = rows.assign(path=found.fillna(expected))
    return split_missing(rows, found.notna(), "video file not found")


def no_missing() -> pd.DataFrame:
    """An empty missing table."""
    return pd.DataFrame(columns=MISSING_COLUMNS)


def split_missing(rows: pd.DataFrame, present: pd.Series,
                  reason: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows where ``present``, MISSING_COLUMNS table of the others with ``reason``)."""
    missing = rows.loc[~present].assign(reason=reason)[MISSING_COLUMNS]
    return rows.loc[present].reset_index(drop=True), missing.reset_index(drop=True)


def youtube_id(url: str) -> str | None:
    """The 11-character video id of a YouTube URL (watch?v=, youtu.be/, embed/), else None."""
    match = re.search(r"(?:[?&]v=|youtu\.be/|youtube\.com/embed/)([\w-]{11})", url)
    return match.group(1) if match else None


def check_video_ids(ids: Sequence[Any] | pd.Series, what: str,
                    row_name: Callable[[int], str] = lambda i: f"row {i + 1}") -> None:
    """A ValueError naming ``what`` and the rows (``row_name(position)``) whose video id cannot be a file name.

    Ids become file names (``sheets/<video_id>.png``), so each must follow ``names.VIDEO_ID_RULE``:
    an empty id, '../x' or '/tmp/x' would write outside ``results/``.
    """
    bad = [(i, v, problem) for i, v in enumerate(ids) if (problem := video_id_problem(v))]
    if bad:
        shown = "; ".join(f"{row_name(i)}: video_id {'' if pd.isna(v) else v!r} {problem}"
                          for i, v, problem in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise ValueError(f"{what}: {shown}{more}. Video ids become file names, so they must hold "
                         f"{VIDEO_ID_RULE}; fix or rename them there")


def to_int(values: pd.Series, what: str) -> pd.Series:
    """``values`` as int64, or a ValueError naming ``what`` and the offending values."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna() | (numbers != numbers.round())
    if bad.any():
        raise ValueError(f"{what}: not an integer: {examples(values[bad])}")
    return numbers.astype("int64")


def examples(values: Sequence[Any] | pd.Series, limit: int = 5) -> str:
    """A short list of values for an error message: 'a, b, c (and 12 more)'."""
    values = list(values)
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" (and {len(values) - limit} more)" if len(values) > limit else "")


def _checked_manifest(rows: pd.DataFrame, num_shards: int, where: str, labeled: bool = True) -> pd.DataFrame:
    """Check the adapter's rows against the manifest contract, add ``shard``, order them (``labeled``
    False: a ``role: pretrain`` dataset, whose labels are all NO_LABEL)."""
    absent = [c for c in MANIFEST_COLUMNS if c != "shard" and c not in rows.columns]
    if absent:
        raise ValueError(f"{where}: adapter rows lack columns {absent}")
    rows = rows.reset_index(drop=True)
    check_video_ids(rows["video_id"], where, lambda i: f"video {rows['path'][i] or i + 1}")
    rows["video_id"] = rows["video_id"].astype(str)
    duplicated = rows["video_id"][rows["video_id"].duplicated()].unique()
    if len(duplicated):
        raise ValueError(f"{where}: video_id is not unique: {examples(sorted(duplicated))}")
    for column in ("label", "frame_start", "frame_end"):
        rows[column] = to_int(rows[column], f"{where}: {column}")
    negative = rows.loc[(rows["label"] < 0) & labeled, "video_id"]
    if len(negative):
        raise ValueError(f"{where}: label must be >= 0; videos {examples(negative)}")
    bad_split = rows.loc[~rows["split"].isin(SPLITS)]
    if len(bad_split):
        raise ValueError(f"{where}: split must be one of {', '.join(SPLITS)}; got "
                         f"{examples(sorted(bad_split['split'].astype(str).unique()))} "
                         f"(videos {examples(bad_split['video_id'])})")
    start, end = rows["frame_start"], rows["frame_end"]
    bad_frames = rows.loc[(start < 0) | ((end != -1) & (end <= start)), "video_id"]
    if len(bad_frames):
        raise ValueError(f"{where}: need 0 <= frame_start < frame_end (or frame_end -1); "
                         f"videos {examples(bad_frames)}")
    for column in ("path", "gloss", "signer"):
        rows[column] = rows[column].fillna("").astype(str)
    rows["shard"] = rows["video_id"].map(lambda v: shard_of(v, num_shards)).astype("int64")
    extras = [c for c in rows.columns if c not in MANIFEST_COLUMNS]
    return rows[MANIFEST_COLUMNS + extras].sort_values("video_id").reset_index(drop=True)


def _checked_missing(missing: pd.DataFrame) -> pd.DataFrame:
    """The missing table with exactly MISSING_COLUMNS, sorted by video_id."""
    missing = missing.reindex(columns=MISSING_COLUMNS)
    missing["video_id"] = missing["video_id"].astype(str)
    return missing.sort_values("video_id").reset_index(drop=True)
