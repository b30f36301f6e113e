"""Training loader: fixed-length clips from signpipe shards as a PyTorch ``Dataset``.

Temporal sampling follows SignBERT and HMA: 32 frames, random during training and centred at
test. A clip of L frames is cut into ``num_frames`` equal segments and one frame is taken from
each: a uniformly random one in training, the middle one at test. Every sample thus spans the
whole sign at the same relative time scale in training and at test (``sampling="segments"``).
``sampling="window"`` takes ``num_frames`` consecutive frames instead: a random window in
training, the centred one at test. Clips shorter than ``num_frames`` come out stretched by
default (``short_clips="repeat"``: each frame repeated, in order, ``num_frames / L`` times on
average); with ``short_clips="pad"`` they keep their L frames, followed by padding slots
(the last frame again) that ``valid`` marks False, for models that mask them. ``frames`` says
which frames were taken; the dataset logs how many clips of its split were stretched or padded.

Mirroring (``mirror``: the probability, in training, that a clip is flipped left-right;
``dominant_hand``: flip every clip whose left hand moves more, in training and at test) swaps
the signer's left and right: x is negated and left and right points trade places
(:data:`signpipe.keypoints.layout.FLIP_PERMUTATION`), per array by :attr:`ShardDataset.mirrors`.

Files are opened lazily in the process that reads (each DataLoader worker opens its own
handles), so ``num_workers > 0`` is safe. Sampling is deterministic: the random frames of
item ``i`` are a hash of ``(seed, epoch, i)``, whatever worker reads it and in whatever order;
call :meth:`ShardDataset.set_epoch` before each epoch (as with ``DistributedSampler``). The
epoch lives in shared memory, so it reaches persistent DataLoader workers too.

A DataLoader hands whole batches to :meth:`ShardDataset.__getitems__`, which samples and reads
them vectorised; uncompressed numeric arrays (poses, keypoints, boxes) are read from the
memory-mapped shard (:class:`MappedArray`), so a batch of pose clips costs within about twice
what indexing one in-memory array costs (docs/hands.md has the numbers).
"""

from __future__ import annotations

import logging
import mmap
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from signpipe.hands import decode_crops
from signpipe.keypoints.layout import FLIP_PERMUTATION, LEFT_WRIST, RIGHT_WRIST
from signpipe.shards import VLEN_BYTES, decode_jpeg, read_index

log = logging.getLogger(__name__)

NUM_FRAMES = 32
"""Frames per sample (SignBERT, HMA)."""
DEFAULT_ARRAYS = {"keypoints": ("xy", "score"), "hands": ("pose",), "frames": ("jpeg",)}
"""The stages the loader reads, and the arrays it returns when none are named."""
SAMPLINGS = ("segments", "window")
"""Temporal sampling: one frame per equal segment (SignBERT, HMA), or consecutive frames."""
SHORT_CLIPS = ("repeat", "pad")
"""Clips shorter than ``num_frames``: stretched by repeating frames, or padded and masked."""
CACHE_MB = 16
"""HDF5 chunk cache per array and open file, in MiB (h5py's default is 1), for arrays read through h5py."""


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser of uint64 values: a cheap hash whose outputs look independent."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def random_offsets(seed: int, epoch: int, items: np.ndarray, num_frames: int) -> np.ndarray:
    """Uniform numbers in [0, 1), (B, num_frames), a function of (seed, epoch, item, slot) only.

    A counter-based hash rather than a generator per item: seeding numpy's generator costs
    about 30 us, more than reading the clip.
    """
    key = _splitmix64(_splitmix64(np.array([seed & (2**64 - 1)], np.uint64)) + np.uint64(epoch & (2**64 - 1)))
    per_item = _splitmix64(key + np.asarray(items, np.uint64))
    bits = _splitmix64(per_item[:, None] * np.uint64(num_frames) + np.arange(num_frames, dtype=np.uint64))
    return (bits >> np.uint64(11)).astype(np.float64) * 2.0**-53


def sample_frames(lengths: np.ndarray | int, num_frames: int = NUM_FRAMES,
                  offsets: np.ndarray | None = None, sampling: str = "segments") -> np.ndarray:
    """Frame indices (..., num_frames) int64, ascending, of clips of ``lengths`` frames.

    segments: one frame per equal segment, at ``offsets`` (..., num_frames) in [0, 1) within it
    (random offsets in training), or its middle when ``offsets`` is None (test). window:
    ``num_frames`` consecutive frames starting at ``offsets[..., 0]`` of the possible starts, or
    the centred window. Clips shorter than ``num_frames`` repeat frames (both ways alike).
    """
    lengths = np.asarray(lengths, np.int64)[..., None]
    if sampling == "window":
        spare = np.maximum(lengths - num_frames, 0)
        start = spare // 2 if offsets is None else (offsets[..., :1] * (spare + 1)).astype(np.int64)
        return np.where(lengths >= num_frames, start + np.arange(num_frames),
                        sample_frames(lengths[..., 0], num_frames, offsets))
    if sampling != "segments":
        raise ValueError(f"sampling={sampling!r}: use one of {', '.join(SAMPLINGS)}")
    offsets = np.full(num_frames, 0.5) if offsets is None else offsets
    return np.minimum(((np.arange(num_frames) + offsets) * (lengths / num_frames)).astype(np.int64), lengths - 1)


def padded_frames(lengths: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``short_clips="pad"``: clips shorter than the N slots of ``frames`` (B, N) take their frames
    0..L-1 and then padding (the last frame again). Returns frames (B, N) and valid (B, N) bool."""
    lengths = np.asarray(lengths, np.int64)[:, None]
    slots = np.arange(frames.shape[1])
    short = lengths < frames.shape[1]
    return np.where(short, np.minimum(slots, lengths - 1), frames), ~short | (slots < lengths)


def mirror_keypoints(xy: np.ndarray) -> np.ndarray:
    """xy (..., 133, 2) of the mirrored signer: x negated (mirrored about x = 0; models that
    read keypoints centre them) and left and right points swapped; undetected (0, 0) stay 0."""
    out = xy[..., FLIP_PERMUTATION, :].copy()
    out[..., 0] *= -1
    return out


def mirror_scores(score: np.ndarray) -> np.ndarray:
    """score (..., 133) of the mirrored signer (left and right points swapped)."""
    return score[..., FLIP_PERMUTATION]


def wrist_activity(arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """(B, 2) path length of the left and right wrist (keypoints ``xy``, ``score``) over the frames
    of each clip, counted between consecutive frames where the wrist is detected."""
    wrists = arrays["xy"][:, :, [LEFT_WRIST, RIGHT_WRIST]]
    seen = arrays["score"][:, :, [LEFT_WRIST, RIGHT_WRIST]] > 0
    step = np.linalg.norm(np.diff(wrists, axis=1), axis=-1) * (seen[:, 1:] & seen[:, :-1])
    return step.sum(axis=1)


class MappedArray:
    """One uncompressed chunked array of several shards, read as numpy views of the memory-mapped files.

    HDF5 tells where each chunk lies in its file (``chunk_iter``), so row r of shard s starts at
    byte ``offset[s, r // chunk_rows] + (r % chunk_rows) * row_bytes``: a batch of clips is one
    numpy gather per shard, shared through the OS page cache by every worker, without the
    per-call cost of the HDF5 library (h5py spends tens of microseconds on any read, more than
    copying a 32-frame pose clip). Rows are gathered as single opaque items of ``row_bytes``
    (one memcpy each) and viewed as the array's dtype afterwards.
    """

    def __init__(self, datasets: Sequence[h5py.Dataset], buffers: Sequence[np.ndarray]) -> None:
        first = datasets[0]
        self.dtype, self.shape, self.chunk_rows = first.dtype, first.shape[1:], first.chunks[0]
        self.row = np.dtype((np.void, first.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))))
        counts = [-(-len(ds) // self.chunk_rows) for ds in datasets]
        self.base = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        self.offsets = np.full(sum(counts), -1, np.int64)
        for ds, base in zip(datasets, self.base):
            def add(info: Any, base: int = int(base)) -> None:
                self.offsets[base + info.chunk_offset[0] // self.chunk_rows] = info.byte_offset

            ds.id.chunk_iter(add)
        if (self.offsets < 0).any():
            raise ValueError(f"{first.name}: some chunks were never written")
        self.rows = [np.ndarray((len(buffer) - self.row.itemsize + 1,), self.row, buffer, strides=(1,))
                     for buffer in buffers]

    @staticmethod
    def fits(datasets: Sequence[h5py.Dataset]) -> bool:
        """Whether arrays can be mapped: chunked alike along time, no filters (compression), fixed-size native dtype."""
        return all(hasattr(ds.id, "chunk_iter") and ds.chunks is not None and ds.chunks[0] == datasets[0].chunks[0]
                   and ds.id.get_create_plist().get_nfilters() == 0
                   and ds.dtype.kind in "biuf" and ds.dtype.isnative for ds in datasets)

    def take(self, shards: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Rows ``rows`` (B, N) of shards ``shards`` (B,) as a new array (B, N, ...)."""
        chunk, within = np.divmod(rows, self.chunk_rows)
        start = self.offsets[self.base[shards][:, None] + chunk] + within * self.row.itemsize
        if (shards == shards[0]).all():
            out = self.rows[shards[0]][start]
        else:
            out = np.empty(rows.shape, self.row)
            for shard in np.unique(shards):
                mine = np.flatnonzero(shards == shard)
                out[mine] = self.rows[shard][start[mine]]
        return out.view(self.dtype).reshape(*rows.shape, *self.shape)


def _stage(f: h5py.File, path: Path) -> str:
    parts = str(f.attrs.get("schema", "")).split("/")
    if len(parts) != 3 or parts[0] != "signpipe" or parts[1] not in DEFAULT_ARRAYS:
        raise ValueError(f"{path}: not a signpipe keypoints, hands or frames shard (schema {f.attrs.get('schema')!r})")
    return parts[1]


ShardPaths = Union[str, os.PathLike, Sequence[Union[str, os.PathLike]], Mapping[str, Sequence[Union[str, os.PathLike]]]]
"""Shards of one stage (a path or several) or of several, ``{stage: paths}``."""


def _by_stage(shards: ShardPaths) -> dict[str, list[Path]]:
    """``{stage: paths}`` of shards given as a path, a list (one stage, read from the files) or a
    mapping (each file checked to be of its stage); every file is opened once."""
    if isinstance(shards, Mapping):
        given: dict[str | None, list[Path]] = {stage: [Path(p) for p in paths] for stage, paths in shards.items()}
    else:
        paths = [Path(shards)] if isinstance(shards, (str, os.PathLike)) else [Path(p) for p in shards]
        if not paths:
            raise ValueError("ShardDataset: no shards given")
        given = {None: paths}
    grouped: dict[str, list[Path]] = {}
    for stage, paths in given.items():
        if not paths:
            raise ValueError(f"ShardDataset: no {stage} shards given")
        for path in paths:
            with h5py.File(path, "r") as f:
                found = _stage(f, path)
            if stage is not None and found != stage:
                raise ValueError(f"{path}: a {found} shard given as {stage}")
            grouped.setdefault(found, []).append(path)
    if None in given and len(grouped) > 1:
        raise ValueError(f"ShardDataset: shards of different stages {sorted(grouped)} in one list; "
                         f"give them as {{stage: paths}} to read several stages")
    return grouped


class ShardDataset(Dataset):
    """Fixed-length clips of the videos in one or more shards of one or more stages.

    An item is a dict: one tensor per array in ``arrays``, sampled at ``frames`` (e.g. ``pose``
    (N, 2, 21, 3) float32 from a hands shard, ``xy`` (N, 133, 2) and ``score`` (N, 133) from a
    keypoints shard, ``crop`` (N, 2, S, S, 3) uint8 decoded from JPEG, ``jpeg`` (N, H, W, 3) uint8 decoded
    from a frames shard), plus ``label`` (int),
    ``video_id`` (str), ``frames`` (N,) int64 (the frame indices) and ``length`` (frames of the
    video). ``split`` keeps only those splits (a name or several); ``train`` picks random
    (True) or centred (False) sampling. Uncompressed numeric arrays are read through
    :class:`MappedArray` unless ``memory_map`` is False; other arrays (JPEG, compressed) through
    h5py with a chunk cache of ``cache_mb`` MiB per array. Frames of different videos may differ
    in size; a batch of them stacks only if they agree (``signpipe.clips`` resizes per video).

    Several stages (``shards`` as ``{stage: paths}``, ``arrays`` as ``{stage: names}`` or names
    found in exactly one stage) give one sample per video with the arrays of every stage at the
    same frames: the frames are drawn once. Every video must be in every stage with the same
    number of frames; one that is not is an error naming the video and both files.

    ``sampling``, ``short_clips``, ``mirror`` and ``dominant_hand``: see the module docstring.
    Every item also has ``valid`` (N,) bool (False on padding) and ``mirrored`` (bool).
    """

    mirrors: Mapping[str, Any] = {"xy": mirror_keypoints, "score": mirror_scores}
    """Array name -> its values (B, N, ...) of the mirrored signer; only these arrays can be mirrored."""

    def __init__(self, shards: ShardPaths, arrays: Sequence[str] | Mapping[str, Sequence[str]] | None = None,
                 split: str | Sequence[str] | None = None, num_frames: int = NUM_FRAMES, train: bool = False,
                 seed: int = 0, memory_map: bool = True, cache_mb: float = CACHE_MB, sampling: str = "segments",
                 short_clips: str = "repeat", mirror: float = 0.0, dominant_hand: bool = False) -> None:
        for name, value, allowed in (("sampling", sampling, SAMPLINGS), ("short_clips", short_clips, SHORT_CLIPS)):
            if value not in allowed:
                raise ValueError(f"{name}={value!r}: use one of {', '.join(allowed)}")
        self.sampling, self.short_clips, self.mirror, self.dominant_hand = sampling, short_clips, mirror, dominant_hand
        self.sources = _by_stage(shards)
        self.paths = [path for paths in self.sources.values() for path in paths]
        self.num_frames, self.train, self.seed = num_frames, train, seed
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.memory_map, self.cache_bytes = memory_map, int(cache_mb * (1 << 20))
        self.stage_arrays = _arrays_by_stage(self.sources, arrays)
        self.arrays = [name for names in self.stage_arrays.values() for name in names]
        unmirrored = [name for name in self.arrays if name not in self.mirrors]
        if (mirror > 0 or dominant_hand) and unmirrored:
            raise ValueError(f"mirror/dominant_hand: cannot mirror {', '.join(unmirrored)}; this loader "
                             f"mirrors only {', '.join(self.mirrors)}")
        tables = {stage: _index(paths) for stage, paths in self.sources.items()}
        primary, *others = self.sources
        index = tables[primary]
        for stage in others:
            _check_aligned(index, tables[stage], self.sources[primary], self.sources[stage])
        if split is not None:
            index = index[index["split"].isin([split] if isinstance(split, str) else list(split))]
        empty = index["length"] <= 0
        for stage in others:  # a video a later stage could not process (0 frames there) is skipped too
            empty |= index["video_id"].map(tables[stage].set_index("video_id")["length"]).to_numpy() <= 0
        if empty.any():
            log.warning("skipping %d videos without frames: %s", int(empty.sum()),
                        ", ".join(index["video_id"][empty][:5]))
        self.index = index[~empty].reset_index(drop=True)
        self._length, self._label = (self.index[c].to_numpy(np.int64) for c in ("length", "label"))
        self._where = {primary: (self.index["shard"].to_numpy(np.int64), self.index["start"].to_numpy(np.int64))}
        for stage in others:
            other = tables[stage].set_index("video_id").loc[self.index["video_id"]]
            self._where[stage] = (other["shard"].to_numpy(np.int64), other["start"].to_numpy(np.int64))
        self._video_ids = self.index["video_id"].tolist()
        short = int((self._length < num_frames).sum())
        if short:
            log.info("%s: %d of %d videos shorter than %d frames, %s", split or "all splits", short, len(self),
                     num_frames, "stretched (frames repeated)" if short_clips == "repeat" else "padded (masked)")
        self._handles: dict[str, MappedArray | list[h5py.Dataset]] = {}
        self._files: list[h5py.File] = []
        self._pid = -1

    def __len__(self) -> int:
        return len(self.index)

    @property
    def epoch(self) -> int:
        """The epoch whose random clips are drawn."""
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Draw the random clips of ``epoch`` from now on, in this process and in its DataLoader
        workers (also persistent ones: the value is in shared memory). Call it before iterating."""
        self._epoch.fill_(int(epoch))

    def frames(self, items: np.ndarray) -> np.ndarray:
        """Frame indices (B, N) of ``items`` (B,) for the current epoch (random in training, centred at test)."""
        offsets = random_offsets(self.seed, self.epoch, items, self.num_frames) if self.train else None
        return sample_frames(self._length[items], self.num_frames, offsets, self.sampling)

    def flips(self, items: np.ndarray, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B,) bool: which clips to mirror; random ones with probability ``mirror`` in training
        (a hash of seed, epoch and item, as the frames), and with ``dominant_hand`` those whose
        left hand is the more active (:meth:`activity`)."""
        flip = np.zeros(len(items), bool)
        if self.dominant_hand:
            activity = self.activity(arrays)
            flip = activity[:, 0] > activity[:, 1]
        if self.train and self.mirror > 0:
            draw = random_offsets(self.seed ^ 0x5EED_F11B, self.epoch, items, 1)[:, 0]
            flip ^= draw < self.mirror
        return flip

    def activity(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """(B, 2) how much the left and the right hand move in each clip (:func:`wrist_activity`)."""
        return wrist_activity(arrays)

    def _arrays(self) -> dict[str, MappedArray | list[h5py.Dataset]]:
        """Every requested array over all shards, opened once per process: mapped where it can be."""
        if self._pid != os.getpid():  # a forked worker must not use its parent's handles
            self._handles, self._files, self._pid = {}, [], os.getpid()
            for stage, paths in self.sources.items():
                files = [h5py.File(path, "r", rdcc_nbytes=self.cache_bytes) for path in paths]
                self._files += files
                buffers = None
                for name in self.stage_arrays[stage]:
                    datasets = [f[name] for f in files]
                    if self.memory_map and MappedArray.fits(datasets):
                        buffers = buffers or [_map(path) for path in paths]
                        self._handles[name] = MappedArray(datasets, buffers)
                    else:
                        self._handles[name] = datasets
        return self._handles

    def read(self, items: np.ndarray, frames: np.ndarray, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The arrays of videos ``items`` (B,) at ``frames`` (B, N): name -> (B, N, ...); only
        ``names`` when given (a subclass reads the others its own way, e.g. ``signpipe.clips``).

        Mapped arrays are gathered in one step per shard; the others are read per video, one
        h5py read of the span its frames cover (JPEG rows decoded once each).
        """
        handles, out = self._arrays(), {}
        for stage, stage_names in self.stage_arrays.items():
            shard, start = self._where[stage]
            rows, shards = start[items, None] + frames, shard[items]
            for name in stage_names if names is None else [n for n in stage_names if n in names]:
                ds = handles[name]
                out[name] = (ds.take(shards, rows) if isinstance(ds, MappedArray)
                             else np.stack([_read_rows(ds[s], r) for s, r in zip(shards, rows)]))
        return out

    def __getitems__(self, items: Sequence[int]) -> list[dict[str, Any]]:
        """Samples of a batch of items, sampled and read together (the DataLoader calls this)."""
        items = np.asarray(items, np.int64)
        frames = self.frames(items)
        valid = np.ones(frames.shape, bool)
        if self.short_clips == "pad":
            frames, valid = padded_frames(self._length[items], frames)
        arrays = self.read(items, frames)
        flip = self.flips(items, arrays) if self.mirror > 0 or self.dominant_hand else np.zeros(len(items), bool)
        if flip.any():
            arrays = {name: np.where(flip.reshape(-1, *[1] * (values.ndim - 1)), self.mirrors[name](values), values)
                      for name, values in arrays.items()}
        return [{**{name: torch.from_numpy(np.ascontiguousarray(values[k])) for name, values in arrays.items()},
                 "label": int(self._label[item]), "video_id": self._video_ids[item],
                 "frames": torch.from_numpy(frames[k]), "valid": torch.from_numpy(valid[k]),
                 "mirrored": bool(flip[k]), "length": int(self._length[item])}
                for k, item in enumerate(items)]

    def __getitem__(self, item: int) -> dict[str, Any]:
        if not -len(self) <= item < len(self):
            raise IndexError(f"item {item} out of range for {len(self)} videos")
        return self.__getitems__([item % len(self)])[0]

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (spawned workers) without open files; each process opens its own."""
        state = dict(self.__dict__)
        state.update(_handles={}, _files=[], _pid=-1)
        return state


def _index(paths: Sequence[Path]) -> pd.DataFrame:
    """The ``/index`` tables of shards, one row per video, with the shard's number and ``path``."""
    tables = []
    for number, path in enumerate(paths):
        with h5py.File(path, "r") as f:
            tables.append(read_index(f)[["video_id", "start", "length", "label", "split"]].assign(shard=number))
    index = pd.concat(tables, ignore_index=True)
    index["path"] = [str(paths[k]) for k in index["shard"]]
    return index


def _arrays_by_stage(sources: Mapping[str, Sequence[Path]],
                     arrays: Sequence[str] | Mapping[str, Sequence[str]] | None) -> dict[str, list[str]]:
    """The arrays to read per stage; names alone are looked up in the stages' shards."""
    have = {}
    for stage, paths in sources.items():
        with h5py.File(paths[0], "r") as f:
            have[stage] = sorted(name for name in f if name != "index")
    if arrays is None:
        wanted = {stage: list(DEFAULT_ARRAYS[stage]) for stage in sources}
    elif isinstance(arrays, Mapping):
        wanted = {stage: list(arrays.get(stage, ())) for stage in sources}
    else:
        wanted = {stage: [] for stage in sources}
        for name in arrays:
            holders = [stage for stage in sources if name in have[stage]] or [next(iter(sources))]
            if len(holders) > 1:
                raise ValueError(f"array {name!r} is in {' and '.join(holders)} shards; name it per stage")
            wanted[holders[0]].append(name)
    for stage, names in wanted.items():
        unknown = [name for name in names if name not in have[stage]]
        if unknown or not any(wanted.values()):
            raise ValueError(f"{sources[stage][0]}: no array {', '.join(unknown) or '(none named)'}; "
                             f"it has {', '.join(have[stage])}")
    return wanted


def _check_aligned(index: pd.DataFrame, other: pd.DataFrame, paths: Sequence[Path], other_paths: Sequence[Path]) -> None:
    """Every video in both tables with the same number of frames; else an error naming it and both files."""
    merged = index.merge(other, on="video_id", how="outer", suffixes=("", "_other"), indicator="side")
    lengths = merged["length"].to_numpy(), merged["length_other"].to_numpy()
    bad = (merged["side"] != "both") | ((lengths[0] != lengths[1]) & (np.minimum(*lengths) > 0))
    for row in merged[bad].head(1).itertuples():
        if row.side == "left_only":
            raise ValueError(f"video {row.video_id}: in {row.path} but in none of {_names(other_paths)}")
        if row.side == "right_only":
            raise ValueError(f"video {row.video_id}: in {row.path_other} but in none of {_names(paths)}")
        raise ValueError(f"video {row.video_id}: {int(row.length)} frames in {row.path} but {int(row.length_other)} "
                         f"in {row.path_other}; rerun the later stage for this shard")


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(map(str, paths[:3])) + (f" (+{len(paths) - 3} more)" if len(paths) > 3 else "")


def _map(path: Path) -> np.ndarray:
    """The bytes of a file, memory-mapped read-only."""
    with open(path, "rb") as f:
        return np.frombuffer(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)


def decode_frames(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Frames (n, H, W, 3) uint8 from n JPEG rows of a frames shard's ``jpeg`` array (one video: one size)."""
    return np.stack([decode_jpeg(row) for row in rows])


JPEG_DECODERS = {"crop": decode_crops, "jpeg": decode_frames}
"""JPEG array name -> decoder of its rows: hands crops, full frames."""


def _read_rows(ds: h5py.Dataset, rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` (N,) ascending of an h5py array with one read of their span; JPEG rows decoded once each."""
    lo = int(rows[0])
    span = ds[lo:int(rows[-1]) + 1]
    if ds.dtype != VLEN_BYTES:
        return span[rows - lo]
    unique, where = np.unique(rows - lo, return_inverse=True)
    return JPEG_DECODERS[ds.name.rsplit("/", 1)[-1]](span[unique])[where]
