"""Cost of the manifest's rerun trigger: ``signpipe.datasets.manifest_listing`` on WLASL-sized folders.

Every Snakemake run takes this listing once per dataset, while it builds the DAG, so it must stay
well under a second or two. Files: one empty video per instance of the real WLASL index in
../shared/data/wlasl (21,083), else as many made-up ids (--smoke: 500 made-up ids).
Prints one JSON line last: {"videos", "seconds_min", "seconds_median"}.
Run: python benchmarks/listing.py [--repeats 5] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from signpipe.datasets import manifest_listing

INDEX = Path(__file__).resolve().parents[2] / "shared" / "data" / "wlasl" / "WLASL_v0.3.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.repeats = 1
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        videos.mkdir()
        if INDEX.is_file() and not args.smoke:
            entries = json.loads(INDEX.read_text(encoding="utf-8"))
            ids = [instance["video_id"] for entry in entries for instance in entry["instances"]]
            cfg = {"adapter": "wlasl", "index": str(INDEX), "videos": str(videos), "num_shards": 8}
        else:
            ids = [f"{k:05d}" for k in range(500 if args.smoke else 21083)]
            (Path(tmp) / "list.csv").write_text("video_id,path,label,split\n" + "".join(
                f"{v},videos/{v}.mp4,{k % 2000},train\n" for k, v in enumerate(ids)))
            cfg = {"adapter": "csv", "manifest": str(Path(tmp) / "list.csv"), "num_shards": 8}
        for video_id in ids:
            (videos / f"{video_id}.mp4").touch()
        seconds = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            listing = manifest_listing(cfg)
            seconds.append(time.perf_counter() - start)
        print(listing.manifest)
        print(json.dumps({"videos": len(ids), "adapter": cfg["adapter"], "seconds_min": round(min(seconds), 3),
                          "seconds_median": round(statistics.median(seconds), 3)}))


if __name__ == "__main__":
    main()
