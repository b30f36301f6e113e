"""Decode stage throughput against a bare PyAV loop over the same files.

Prints one JSON line last: {"decode_fps", "raw_pyav_fps", "ratio", ...}.
- decode_fps: frames/s of signpipe.decode.decode_shard (decode, clip, resize, JPEG, HDF5 write).
- raw_pyav_fps: frames/s of a bare loop that decodes every frame with PyAV (same threading,
  thread_type AUTO) and converts it to an RGB array -- the least any pipeline must do to
  get pixels out of a video.
Files: the real clips in ../shared/data/clips (when present) plus a synthetic corpus.
Run: python benchmarks/decode.py [--repeats 5] [--copies 20] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import av

from signpipe.decode import decode_shard
from videos import benchmark_videos

REPO = Path(__file__).resolve().parents[1]


def raw_loop(paths: list[str]) -> int:
    frames = 0
    for path in paths:
        with av.open(path) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                frame.to_ndarray(format="rgb24")
                frames += 1
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs of each; medians are reported")
    parser.add_argument("--copies", type=int, default=10, help="times each real clip is listed")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--short-side", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.copies = 1, 1
    size = {"num_classes": 2, "signers": 3, "frames": 12} if args.smoke else {"num_classes": 10, "signers": 4}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths, manifest = benchmark_videos(tmp, args.data, args.copies, **size)
        clips = sorted((args.data / "clips").glob("*.mp4"))

        raw_loop(paths)  # warm the page cache and libraries
        stage, raw = [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            frames = raw_loop(paths)
            raw.append(frames / (time.perf_counter() - start))
            start = time.perf_counter()
            stats = decode_shard(manifest, 0, tmp / "frames.h5", tmp / "failures.csv",
                                 short_side=args.short_side, threads=args.threads, progress=False)
            stage.append(stats["frames"] / (time.perf_counter() - start))
            assert stats["frames"] == frames and stats["failed"] == 0

    result = {
        "decode_fps": round(statistics.median(stage), 1),
        "raw_pyav_fps": round(statistics.median(raw), 1),
        "ratio": round(statistics.median(stage) / statistics.median(raw), 3),
        "videos": len(paths), "frames": frames, "real_clips": len(clips),
        "short_side": args.short_side, "threads": args.threads, "repeats": args.repeats,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
