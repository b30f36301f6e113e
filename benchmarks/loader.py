"""Random access to 32-frame hand-pose samples: signpipe shards against per-video pickles and memory.

Prints one JSON line last: {"h5_samples_per_s", "pickle_samples_per_s", "memory_samples_per_s",
"vs_pickle", "vs_memory", ...}.
- h5: ``signpipe.data.ShardDataset.read`` on hands shards (the loader's own read path: files kept
  open, uncompressed pose chunks memory-mapped); ``h5py_samples_per_s`` is the same with
  ``memory_map=False`` (one h5py slice read per sample, 16 MiB chunk cache).
- pickle: one pickle file per video, ``{"keypoints": (T, 2, 21, 3), "label"}``, as OpenHands and
  pyskl-style pipelines store poses: open, unpickle, take the frames.
- memory: all poses in one in-memory numpy array, indexed at the same rows.
All three read the same videos in the same random order at the same frames (training sampling
of signpipe.data). The corpus is generated: pose arrays (T, 2, 21, 3) float32 with T uniform in
[40, 200], no videos rendered. "Warm" numbers are medians of --repeats passes with the files in
the OS page cache; "cold" numbers first evict every file of that format from the page cache
with posix_fadvise(DONTNEED) (no root needed) and re-open the files.
Run: python benchmarks/loader.py [--videos 2000] [--repeats 5] [--chunk-frames 256] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from signpipe.data import ShardDataset, sample_frames
from signpipe.hands import hand_arrays
from signpipe.shards import ShardWriter, shard_of


def make_poses(videos: int, seed: int) -> list[np.ndarray]:
    """Smooth random hand trajectories (T, 2, 21, 3) float32 with detector-like jitter and scores."""
    rng = np.random.default_rng(seed)
    poses = []
    for length in rng.integers(40, 201, videos):
        t = np.linspace(0, 1, length)[:, None, None, None]
        base = rng.uniform(40, 200, (1, 2, 21, 2))
        path = 30 * np.sin(2 * np.pi * (rng.uniform(0.5, 2) * t + rng.random((1, 2, 21, 2))))
        xy = base + path + rng.normal(0, 1.5, (length, 2, 21, 2))
        score = rng.uniform(0.6, 1.0, (length, 2, 21, 1))
        poses.append(np.concatenate([xy, score], axis=-1).astype(np.float32))
    return poses


def write_corpus(root: Path, poses: list[np.ndarray], shards: int, chunk_frames: int) -> list[Path]:
    """Hands shards (pose, box, box_source; no crops) and one pickle per video; returns the shard paths."""
    (root / "pickles").mkdir(parents=True)
    arrays = {name: spec for name, spec in hand_arrays(256, "jpeg").items() if name != "crop"}
    paths = [root / "hands" / f"{s}.h5" for s in range(shards)]
    writers = [ShardWriter(p, "hands", 1, arrays, chunk_frames=chunk_frames) for p in paths]
    for w in writers:
        w.__enter__()
    for i, pose in enumerate(poses):
        video_id = f"v{i:05d}"
        box = np.tile(np.float32([10, 10, 110, 110]), (len(pose), 2, 1))
        writers[shard_of(video_id, shards)].add(video_id, i % 100, "train", pose=pose, box=box,
                                                box_source=np.zeros((len(pose), 2), np.uint8))
        with open(root / "pickles" / f"{video_id}.pkl", "wb") as f:
            pickle.dump({"keypoints": pose, "label": i % 100}, f, protocol=pickle.HIGHEST_PROTOCOL)
    for w in writers:
        w.__exit__(None, None, None)
    return paths


def evict(paths: list[Path]) -> None:
    """Drop the files' pages from the OS page cache (written back first: dirty pages cannot be dropped)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def rate(read: Callable[[np.ndarray, np.ndarray], np.ndarray], batches: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Samples per second of ``read(videos (B,), frames (B, 32))`` over ``batches``."""
    start = time.perf_counter()
    for videos, frames in batches:
        read(videos, frames)
    return sum(len(v) for v, _ in batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--chunk-frames", type=int, default=256, help="rows per HDF5 chunk (ShardWriter)")
    parser.add_argument("--batch-size", type=int, default=64, help="samples per read, as a DataLoader asks")
    parser.add_argument("--passes", type=int, default=2, help="random passes over all videos per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; medians are reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.videos, args.shards, args.passes, args.repeats = 64, 2, 1, 1

    poses = make_poses(args.videos, args.seed)
    lengths = np.array([len(p) for p in poses])
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        root = Path(tmp)
        shard_paths = write_corpus(root, poses, args.shards, args.chunk_frames)
        pickle_paths = sorted((root / "pickles").glob("*.pkl"))

        def dataset(memory_map: bool) -> ShardDataset:
            return ShardDataset(shard_paths, ["pose"], train=True, seed=args.seed, memory_map=memory_map)

        h5 = dataset(True)
        item_of = np.empty(args.videos, np.int64)  # corpus video -> dataset item
        item_of[[int(v[1:]) for v in h5.index["video_id"]]] = np.arange(len(h5))
        memory = np.concatenate(poses)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

        rng = np.random.default_rng(args.seed)
        order = np.concatenate([rng.permutation(args.videos) for _ in range(args.passes)])
        frames = sample_frames(lengths[order], 32, rng.random((len(order), 32)))

        def batches(size: int) -> list[tuple[np.ndarray, np.ndarray]]:
            return [(order[k:k + size], frames[k:k + size]) for k in range(0, len(order), size)]

        def read_pickles(videos: np.ndarray, frames: np.ndarray) -> np.ndarray:
            out = []
            for video, these in zip(videos, frames):
                with open(pickle_paths[video], "rb") as f:
                    out.append(pickle.load(f)["keypoints"][these])
            return np.stack(out)

        def shard_reader(data: ShardDataset) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
            return lambda videos, frames: data.read(item_of[videos], frames)["pose"]

        readers = {
            "h5": shard_reader(h5),
            "h5py": shard_reader(dataset(False)),
            "pickle": read_pickles,
            "memory": lambda videos, frames: memory[starts[videos, None] + frames],
        }
        videos, first = batches(args.batch_size)[0]
        for reader in readers.values():  # the same answer from every format
            np.testing.assert_array_equal(reader(videos, first), readers["memory"](videos, first))

        warm = {(name, size): [] for name in readers for size in (args.batch_size, 1)}
        for _ in range(args.repeats):
            for (name, size), runs in warm.items():
                rate(readers[name], batches(size)[:20])  # warm up
                runs.append(rate(readers[name], batches(size)))

        cold = {}
        for name, paths in (("h5", shard_paths), ("h5py", shard_paths), ("pickle", pickle_paths)):
            evict(paths)
            reader = read_pickles if name == "pickle" else shard_reader(dataset(name == "h5"))
            cold[name] = rate(reader, batches(args.batch_size)[:-(-args.videos // args.batch_size)])

        getitems = []
        for epoch in range(args.repeats):
            h5.set_epoch(epoch)
            start = time.perf_counter()
            for k in range(0, len(h5), args.batch_size):
                h5.__getitems__(range(k, min(k + args.batch_size, len(h5))))
            getitems.append(len(h5) / (time.perf_counter() - start))

        sizes = {"h5_mb": sum(p.stat().st_size for p in shard_paths) / 1e6,
                 "pickle_mb": sum(p.stat().st_size for p in pickle_paths) / 1e6}

    med = {key: statistics.median(values) for key, values in warm.items()}
    batch, one = (lambda name: med[name, args.batch_size]), (lambda name: med[name, 1])
    result = {
        "h5_samples_per_s": round(batch("h5")),
        "pickle_samples_per_s": round(batch("pickle")),
        "memory_samples_per_s": round(batch("memory")),
        "vs_pickle": round(batch("h5") / batch("pickle"), 2),
        "vs_memory": round(batch("h5") / batch("memory"), 2),
        "batch_size": args.batch_size,
        "h5py_samples_per_s": round(batch("h5py")),
        "single_h5_samples_per_s": round(one("h5")),
        "single_pickle_samples_per_s": round(one("pickle")),
        "single_memory_samples_per_s": round(one("memory")),
        "single_vs_pickle": round(one("h5") / one("pickle"), 2),
        "single_vs_memory": round(one("h5") / one("memory"), 2),
        "cold_h5_samples_per_s": round(cold["h5"]),
        "cold_h5py_samples_per_s": round(cold["h5py"]),
        "cold_pickle_samples_per_s": round(cold["pickle"]),
        "getitems_samples_per_s": round(statistics.median(getitems)),
        "videos": args.videos, "frames": int(lengths.sum()), "shards": args.shards,
        "chunk_frames": args.chunk_frames, "samples_per_run": len(order), "repeats": args.repeats,
        **{key: round(value, 1) for key, value in sizes.items()},
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
