"""Pose stage throughput (mediapipe backend) against a bare Holistic loop over the same frames.

Prints one JSON line last: {"stage_fps", "raw_fps", "ratio", "cpu_ratio", "stage_fps_threads2", ...}.
- stage_fps: frames/s of signpipe.pose.extract_shard with pose.backend mediapipe and
  threads=1, all of it: opening the frames shard, reading and decoding each JPEG, Holistic,
  the map to 133 keypoints, restarting the graph after every clip (no tracking state leaks
  between videos), writing the keypoints shard and quality CSV, and making the backend.
- raw_fps: frames/s of a bare loop over the same frames, decoded to RGB arrays in memory
  beforehand: one ``mediapipe.solutions.holistic.Holistic`` (same settings: tracking mode,
  model_complexity 1, thresholds 0.5) calling ``process`` on every frame of every clip in a
  row, with no restart between clips and nothing done with the results -- the least any
  pipeline must spend to run Holistic on these frames.
- ratio: median over repeats of stage / raw, each pair run back to back (the stage should
  keep >= 0.9).
- cpu_ratio: the same ratio in CPU time (all threads of this process) instead of wall time:
  what the stage costs in compute, less sensitive to other load on the machine. It counts
  the graph restarts after every clip, which the stage runs in background threads and wall
  time hides when a core is free.
- stage_fps_threads2: extract_shard with threads=2 (two worker processes, each with its graphs).
Runs are interleaved (raw, stage, stage with 2 threads) and medians reported, since the
machine may be shared; cpu_count says how many cores the machine has. Frames: the real clips
in ../shared/data/clips (listed --copies times) plus a small synthetic corpus, decoded once by
signpipe.decode.decode_shard (short side 256).
Run: python benchmarks/pose.py [--repeats 3] [--copies 2] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import pandas as pd
import simplejpeg
from mediapipe.python.solutions.holistic import Holistic

from signpipe.decode import decode_shard
from signpipe.keypoints.quality import PART_NAMES
from signpipe.pose import extract_shard
from signpipe.shards import read_index
from videos import benchmark_videos

REPO = Path(__file__).resolve().parents[1]


def decoded_clips(frames_h5: Path) -> list[list]:
    """Every clip of a frames shard as a list of RGB (H, W, 3) uint8 arrays."""
    with h5py.File(frames_h5) as f:
        jpeg = f["jpeg"]
        return [[simplejpeg.decode_jpeg(bytes(jpeg[i]), colorspace="RGB")
                 for i in range(row.start, row.start + row.length)] for row in read_index(f).itertuples()]


def raw_loop(clips: list[list]) -> tuple[float, float]:
    """Frames per wall second and per CPU second of Holistic.process over all frames, one graph, no restarts."""
    frames = sum(len(c) for c in clips)
    with Holistic(static_image_mode=False, model_complexity=1) as holistic:
        start, cpu = time.perf_counter(), time.process_time()
        for clip in clips:
            for image in clip:
                holistic.process(image)
        return frames / (time.perf_counter() - start), frames / (time.process_time() - cpu)


def stage(manifest: Path, frames_h5: Path, out: Path, threads: int, frames: int) -> tuple[float, float, pd.DataFrame]:
    """Frames per wall second and per CPU second (this process only) of the pose stage, and its quality table."""
    start, cpu = time.perf_counter(), time.process_time()
    quality = extract_shard(manifest, frames_h5, out / "kp.h5", out / "quality.csv", {"backend": "mediapipe"},
                            threads=threads, progress=False)
    return frames / (time.perf_counter() - start), frames / (time.process_time() - cpu), quality


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each; medians are reported")
    parser.add_argument("--copies", type=int, default=2, help="times each real clip is listed")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.copies = 1, 0
    size = {"num_classes": 2, "signers": 3, "frames": 8} if args.smoke else {"num_classes": 4, "signers": 3}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths, manifest = benchmark_videos(tmp, args.data, args.copies, **size)
        real = sorted((args.data / "clips").glob("*.mp4"))
        decode_shard(manifest, 0, tmp / "frames.h5", tmp / "failures.csv", progress=False)
        clips = decoded_clips(tmp / "frames.h5")
        frames = sum(len(c) for c in clips)

        raw, one, two, raw_cpu, one_cpu = [], [], [], [], []
        for _ in range(args.repeats):
            fps, cpu = raw_loop(clips)
            raw.append(fps)
            raw_cpu.append(cpu)
            fps, cpu, quality = stage(manifest, tmp / "frames.h5", tmp, 1, frames)
            one.append(fps)
            one_cpu.append(cpu)
            two.append(stage(manifest, tmp / "frames.h5", tmp, 2, frames)[0])

    result = {
        "stage_fps": round(statistics.median(one), 2),
        "raw_fps": round(statistics.median(raw), 2),
        "ratio": round(statistics.median(a / b for a, b in zip(one, raw)), 3),
        "cpu_ratio": round(statistics.median(a / b for a, b in zip(one_cpu, raw_cpu)), 3),
        "stage_fps_threads2": round(statistics.median(two), 2),
        "runs": {"stage": [round(x, 2) for x in one], "raw": [round(x, 2) for x in raw],
                 "stage_threads2": [round(x, 2) for x in two]},
        "videos": len(clips), "frames": frames, "real_clips": len(real), "copies": args.copies,
        "detection_rate": {p: round(float(quality[f"rate_{p}"].mean()), 3) for p in PART_NAMES},
        "repeats": args.repeats, "cpu_count": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
