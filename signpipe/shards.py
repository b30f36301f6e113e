"""HDF5 shards: the one on-disk schema of every stage (DESIGN §3), sharding and atomic writes.

A shard holds many videos. Per-frame arrays of all its videos are concatenated along the
first axis and ``/index`` says where each video starts and how long it is, so opening a
shard and reading one clip costs a single slice instead of a walk over thousands of groups.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import time
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import simplejpeg

import signpipe

log = logging.getLogger(__name__)

VLEN_BYTES = h5py.vlen_dtype(np.uint8)
"""dtype of an array whose rows are encoded bytes (JPEG frames)."""

INDEX_FIELDS: list[tuple[str, Any]] = [
    ("video_id", h5py.string_dtype("utf-8")),
    ("start", np.int64),
    ("length", np.int64),
    ("label", np.int64),
    ("split", h5py.string_dtype("utf-8")),
]


def shard_of(video_id: str, num_shards: int) -> int:
    """Stable shard of a video: ``crc32(video_id) % num_shards`` (independent of the other videos)."""
    return zlib.crc32(str(video_id).encode("utf-8")) % num_shards


def _default_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _default_file_mode()
"""Mode of files we write: what open() would give (mkstemp's temp files are private, 0600)."""


HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname().split(".")[0]) or "host"
"""This machine's name as temp file names carry it."""
STALE_AFTER = 3600
"""Seconds without a write after which a temp file whose writer cannot be checked (another host's,
or one named without its pid) counts as left by a killed job."""


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    return True


def remove_stale_temp_files(path: str | os.PathLike, suffix: str = "") -> list[Path]:
    """Remove the temp files of ``path`` (:func:`atomic_path`) that no live writer holds; return them.

    A temp file names its writer, ``.{name}.{pid}@{host}.XXXXXXXX{suffix}.tmp``: on this host it
    is stale once that pid is gone; a file of another host, or of an older signpipe (no pid),
    once it was not written for :data:`STALE_AFTER` seconds.
    """
    path = Path(path)
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(?:(\d+)@([A-Za-z0-9-]+)\.)?[a-z0-9_]{{8}}"
                         rf"{re.escape(suffix)}\.tmp")
    removed = []
    for tmp in path.parent.glob(glob.escape(f".{path.name}.") + "*.tmp"):
        match = pattern.fullmatch(tmp.name)
        if not match:
            continue
        pid, host = match.groups()
        try:
            if host == HOST and _writer_alive(int(pid)):
                continue
            if host != HOST and time.time() - tmp.stat().st_mtime <= STALE_AFTER:
                continue
            tmp.unlink()
        except FileNotFoundError:  # its writer just finished, or another cleaner was first
            continue
        log.info("removed %s, left by a killed writer of %s", tmp, path)
        removed.append(tmp)
    return removed


def check_space(folder: str | os.PathLike, needed: int, what: str) -> None:
    """Raise OSError(ENOSPC) naming ``folder`` unless its disk has ``needed`` bytes free for ``what``."""
    free = shutil.disk_usage(folder).free
    if free < needed:
        mb = 1 << 20
        raise OSError(errno.ENOSPC, f"no space left on {folder} for {what} ({math.ceil(needed / mb)} MB needed, "
                                    f"{free // mb} MB free); free space there or move the results to a "
                                    "larger disk, then rerun")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    A killed or failing writer leaves the old file (or none), never a half-written one; the temp
    files that killed writers leave behind are removed when the next one starts
    (:func:`remove_stale_temp_files`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path, suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{HOST}.", suffix=suffix + ".tmp",
                               dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, FILE_MODE)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_csv(frame: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a CSV atomically."""
    with atomic_path(path, ".csv") as tmp:
        frame.to_csv(tmp, index=False)


def concat_csvs(paths: Sequence[str | os.PathLike], out_csv: str | os.PathLike,
                columns: Sequence[str]) -> pd.DataFrame:
    """Join per-shard tables (failures, quality) into one dataset-level CSV, sorted by video_id."""
    parts = [pd.read_csv(p, dtype={"video_id": str}, keep_default_na=False) for p in paths]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(columns))
    table = table.sort_values("video_id", kind="stable").reset_index(drop=True)
    write_csv(table, out_csv)
    return table


class ShardWriter:
    """Append videos to a new shard; the file appears under its final name only on success.

    ``arrays`` declares every per-frame array up front (name -> (dtype, per-frame shape)), so
    a shard with no videos is still a complete, readable file. ``index_extra`` adds columns to
    ``/index`` (e.g. a video's fps) beyond the five of DESIGN §3; ``attrs`` adds file attributes
    (e.g. the pose backend's provenance). Each video is checked to fit on the disk before it is
    written (:func:`check_space`): a full disk fails with a message, not inside HDF5.

    >>> with ShardWriter(out, "frames", 1, {"jpeg": (VLEN_BYTES, ())}) as w:
    ...     w.add("69241", label=3, split="train", jpeg=encoded_frames)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        stage: str,
        version: int,
        arrays: Mapping[str, tuple[Any, tuple[int, ...]]],
        config: Mapping[str, Any] | None = None,
        source: Sequence[str] | str = (),
        index_extra: Sequence[tuple[str, Any]] = (),
        chunk_frames: int = 64,
        compression: str | None = None,
        attrs: Mapping[str, str] | None = None,
    ) -> None:
        self.path = Path(path)
        self.stage, self.version = stage, version
        self.arrays = dict(arrays)
        self.attrs = {
            "schema": f"signpipe/{stage}/{version}",
            "created_by": f"signpipe {signpipe.__version__}",
            "config": json.dumps(dict(config or {}), sort_keys=True, default=str),
            "source": json.dumps([source] if isinstance(source, str) else list(source)),
            **dict(attrs or {}),
        }
        self.index_dtype = np.dtype(INDEX_FIELDS + list(index_extra))
        self.chunk_frames, self.compression = chunk_frames, compression
        self._rows: list[tuple] = []
        self._total = 0
        self._row_bytes = {name: np.dtype(dtype).itemsize * int(np.prod(tail, dtype=np.int64))
                           for name, (dtype, tail) in self.arrays.items()}
        # Free space kept beyond a video's own bytes: what HDF5 may hold unwritten (its chunk
        # cache, 1 MB per array) and the index written at the end.
        self._reserve = (len(self.arrays) + 1) << 20

    def __enter__(self) -> ShardWriter:
        self._atomic = atomic_path(self.path, ".h5")
        tmp = self._atomic.__enter__()
        self.file = h5py.File(tmp, "w")
        for name, (dtype, tail) in self.arrays.items():
            chunk_bytes = max(np.dtype(dtype).itemsize * int(np.prod(tail, dtype=np.int64)), 1)
            rows = max(1, min(self.chunk_frames, (1 << 20) // chunk_bytes))
            self.file.create_dataset(
                name, shape=(0, *tail), maxshape=(None, *tail), dtype=dtype,
                chunks=(rows, *tail), compression=self.compression,
            )
        return self

    def add(self, video_id: str, label: int, split: str, extra: Mapping[str, Any] | None = None,
            **arrays: Any) -> None:
        """Append one video: every declared array with the same number of frames T."""
        missing = set(self.arrays) - set(arrays)
        unknown = set(arrays) - set(self.arrays)
        if missing or unknown:
            raise ValueError(f"video {video_id}: arrays missing {sorted(missing)}, unknown {sorted(unknown)}")
        lengths = {name: len(a) for name, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"video {video_id}: arrays differ in frame count {lengths}")
        length = next(iter(lengths.values()), 0)
        needed = sum(sum(len(v) for v in values) if self.arrays[name][0] == VLEN_BYTES
                     else length * self._row_bytes[name] for name, values in arrays.items())
        check_space(self.path.parent, needed + self._reserve, f"video {video_id} of {self.path.name}")
        for name, values in arrays.items():
            ds = self.file[name]
            ds.resize(self._total + length, axis=0)
            if length:
                if ds.dtype == VLEN_BYTES:
                    _write_vlen(ds, self._total, values)
                else:
                    ds[self._total:self._total + length] = values
        extra = dict(extra or {})
        row = [str(video_id), self._total, length, int(label), str(split)]
        row += [extra.get(name, 0) for name in self.index_dtype.names[len(INDEX_FIELDS):]]
        self._rows.append(tuple(row))
        self._total += length

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            try:
                if exc_type is None:
                    self.file.create_dataset("index", data=np.array(self._rows, dtype=self.index_dtype))
                    self.file.attrs.update(self.attrs)
            finally:
                self.file.close()
        except BaseException as err:  # closing flushes, so it can fail too: the temp file must still go
            self._atomic.__exit__(type(err), err, err.__traceback__)
            raise
        self._atomic.__exit__(exc_type, exc, tb)


def _write_vlen(ds: h5py.Dataset, start: int, values: Sequence[bytes]) -> None:
    """Write byte strings as rows ``start:start+len(values)`` of a vlen dataset.

    Goes through the low-level API: h5py's ``ds[a:b] = rows`` turns rows of equal length into
    a 2-D array and refuses them, which JPEG frames of a static scene can hit.
    """
    rows = np.empty(len(values), dtype=object)
    for i, buf in enumerate(values):
        rows[i] = np.frombuffer(buf, dtype=np.uint8)
    file_space = ds.id.get_space()
    file_space.select_hyperslab((start,), (len(values),))
    ds.id.write(h5py.h5s.create_simple((len(values),)), file_space, rows)


def decode_jpeg(row: np.ndarray | bytes) -> np.ndarray:
    """One stored JPEG row (a frame, or a hands crop pair) as an RGB image (H, W, 3) uint8."""
    return simplejpeg.decode_jpeg(row, colorspace="RGB")


def read_index(f: h5py.File) -> pd.DataFrame:
    """The ``/index`` table of an open shard as a DataFrame with str columns decoded."""
    table = pd.DataFrame(f["index"][()])
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(lambda v: v.decode("utf-8") if isinstance(v, bytes) else v)
    return table


def read_video(f: h5py.File, name: str, row: Mapping[str, Any]) -> np.ndarray:
    """The frames of one video (an ``/index`` row) from array ``name``."""
    start, length = int(row["start"]), int(row["length"])
    return f[name][start:start + length]


def read_config(f: h5py.File) -> dict[str, Any]:
    """The params that made a shard (its ``config`` attribute)."""
    return json.loads(f.attrs.get("config", "{}"))
