"""Importing a Kaggle ASL Signs corpus: the pose import stage against reading its parquet files alone.

Generates ``--sequences`` parquet files in the competition's layout (``train.csv`` +
``train_landmark_files/<participant>/<sequence>.parquet``: ``frame, row_id, type, landmark_index,
x, y, z``, one row per frame and landmark) from the real slice in ../shared/data/gislr: lengths
drawn from the slice's, frames taken from its sequences, and each hand missing (NaN) over random
stretches of frames, as MediaPipe leaves it. Files are kept in ``--data`` for the next run.
Then, each in a fresh process so its peak memory is its own:

- read only: ``pandas.read_parquet`` of every file, nothing else;
- import: ``signpipe.pose.importer.import_shard`` of all of them as one shard (the pose stage of a
  keypoint dataset: read, map to 133 points, write the keypoints shard and quality.csv).

The manifest (``signpipe.datasets.write_shard_manifest`` through the ``gislr`` adapter) is timed too.
Prints one JSON line last: {"sequences_per_s", "parquet_read_only_per_s", "ratio", "peak_rss_mb",
"sequences", "read_only_peak_rss_mb", "listing_s"}; ``ratio`` = import / read-only throughput.
Run: python benchmarks/ingest.py [--sequences 5000] [--data /tmp/signpipe-ingest] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SLICE = Path(__file__).resolve().parents[2] / "shared" / "data" / "gislr"
PARTICIPANTS = 21
"""Participants of the generated corpus (the competition's count); sequences are dealt round-robin."""


def real_sequences() -> list[pd.DataFrame]:
    """The slice's sequences, each with all 543 landmarks per frame in a fixed order."""
    table = pd.read_csv(SLICE / "train.csv")
    return [pd.read_parquet(SLICE / path) for path in table["path"]]


def generate(data: Path, count: int) -> pd.DataFrame:
    """``count`` sequences in ``data`` (those already there are kept); returns train.csv's rows."""
    real = real_sequences()
    landmarks = real[0].loc[real[0]["frame"] == real[0]["frame"].iloc[0], ["type", "landmark_index"]]
    per_frame = len(landmarks)
    kinds, indices = landmarks["type"].to_numpy(), landmarks["landmark_index"].to_numpy(np.int16)
    coords = [seq[["x", "y", "z"]].to_numpy().reshape(-1, per_frame, 3) for seq in real]
    lengths = [len(c) for c in coords]
    hands = {hand: kinds == hand for hand in ("left_hand", "right_hand")}
    signs = ["hello", "thankyou", *(f"sign{k:03d}" for k in range(248))]
    rows = []
    for k in range(count):
        participant, sequence = 1000 + k % PARTICIPANTS, 10_000_000 + k
        path = f"train_landmark_files/{participant}/{sequence}.parquet"
        rows.append({"path": path, "participant_id": participant, "sequence_id": sequence,
                     "sign": signs[k % len(signs)]})
        if (data / path).exists():
            continue
        rng = np.random.default_rng(k)
        source = coords[rng.integers(len(coords))]
        length = int(rng.choice(lengths))
        xyz = source[(rng.integers(len(source)) + np.arange(length)) % len(source)].copy()
        for mask in hands.values():  # a hand lost over a random stretch (or all) of the sequence
            lost = slice(*sorted(rng.integers(0, length + 1, 2)))
            xyz[lost, mask] = np.nan
        first = int(rng.integers(0, 100))
        frame = np.repeat(np.arange(first, first + length, dtype=np.int16), per_frame)
        kind, index = np.tile(kinds, length), np.tile(indices, length)
        row_id = [f"{f}-{t}-{i}" for f, t, i in zip(frame.tolist(), kind.tolist(), index.tolist())]
        flat = xyz.reshape(-1, 3)
        table = pa.table({"frame": frame, "row_id": row_id, "type": kind, "landmark_index": index,
                          "x": flat[:, 0], "y": flat[:, 1], "z": flat[:, 2]})
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, data / path)
    return pd.DataFrame(rows)


def phase(name: str, args: list[str]) -> dict:
    """Run one measured phase in a fresh interpreter; its JSON line."""
    out = subprocess.run([sys.executable, __file__, "--phase", name, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM). Not ``getrusage``'s ru_maxrss: Linux carries that
    over exec from the forking parent, which here holds the generator's arrays."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise OSError("no VmHWM in /proc/self/status (Linux only)")


def read_only(index: Path) -> dict:
    table = pd.read_csv(index)
    start = time.perf_counter()
    for path in table["path"]:
        pd.read_parquet(index.parent / path)
    return {"seconds": time.perf_counter() - start, "peak_rss_mb": peak_rss_mb()}


def run_import(index: Path, work: Path) -> dict:
    from signpipe.datasets import write_shard_manifest
    from signpipe.pose.importer import import_shard

    cfg = {"adapter": "gislr", "index": str(index), "splits": {"train": list(range(1000, 1000 + PARTICIPANTS))},
           "num_shards": 1, "width": 512, "height": 512}
    start = time.perf_counter()
    write_shard_manifest(cfg, 0, work / "0.csv", name="bench")
    listed = time.perf_counter()
    import_shard(work / "0.csv", work / "0.h5", work / "0.quality.csv", work / "0.failures.csv", cfg, progress=False)
    failed = len(pd.read_csv(work / "0.failures.csv"))
    return {"seconds": time.perf_counter() - listed, "listing_s": listed - start, "peak_rss_mb": peak_rss_mb(),
            "failed": failed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=5000)
    parser.add_argument("--data", type=Path, default=Path("/tmp/signpipe-ingest"),
                        help="where the generated corpus is kept (about 0.4 MB per sequence)")
    parser.add_argument("--phase", choices=["read", "import"], help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.sequences, args.data = 20, args.data / "smoke"
    if args.phase == "read":
        print(json.dumps(read_only(args.index)))
        return
    if args.phase == "import":
        print(json.dumps(run_import(args.index, args.work)))
        return
    if not (SLICE / "train.csv").is_file():
        print(f"the real Kaggle ASL Signs slice is not at {SLICE} (shared test data)", file=sys.stderr)
        sys.exit(77)  # skipped: its input is absent
    args.data.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = generate(args.data, args.sequences)
    print(f"corpus: {args.sequences} sequences in {args.data} ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    index = args.data / f"train-{args.sequences}.csv"
    rows.to_csv(index, index=False)
    work = args.data / f"run-{args.sequences}"
    work.mkdir(exist_ok=True)
    read = phase("read", ["--index", str(index)])
    imported = phase("import", ["--index", str(index), "--work", str(work)])
    if imported["failed"]:
        sys.exit(f"{imported['failed']} sequences failed to import; see {work / '0.failures.csv'}")
    read_rate, import_rate = args.sequences / read["seconds"], args.sequences / imported["seconds"]
    print(json.dumps({"sequences_per_s": round(import_rate, 1), "parquet_read_only_per_s": round(read_rate, 1),
                      "ratio": round(import_rate / read_rate, 3), "peak_rss_mb": round(imported["peak_rss_mb"], 1),
                      "sequences": args.sequences, "read_only_peak_rss_mb": round(read["peak_rss_mb"], 1),
                      "listing_s": round(imported["listing_s"], 2)}))


if __name__ == "__main__":
    main()
