"""`signpipe predict` against the pipeline: what recognising one new video costs, cold and warm.

Prints one JSON line last: {"cold_start_s", "per_video_s", "pipeline_per_video_s", "ratio", ...}.
- cold_start_s: from nothing imported to the first video's answer: importing signpipe.predict,
  opening the run, loading the model(s) (and the pose backend), the first video through every stage.
- per_video_s: the warm time per video of the other videos (decode -> pose -> hands -> model).
- pipeline_per_video_s: what the DAG's per-video stages cost for the same videos, from their
  Snakemake benchmark records (``results/benchmarks/<stage>/<ds>/<shard>.tsv``, wall seconds ``s``,
  divided by the videos of that shard), summed over the stages the method reads (decode and pose
  always; hands when a model reads hands); the model's own forward pass is part of training there
  and is not counted.
- ratio: per_video_s / pipeline_per_video_s (goal <= 1.2: predict adds nothing the stages do not cost).

Full run: the first --videos test videos (by id) of a finished demo (`make demo`, --workdir). With
--smoke a tiny synthetic run (3 classes, ST-GCN, 1 epoch) is built by Snakemake in a temp folder
and its 3 test videos are timed: the same code path and keys, in about a minute.
Run: python benchmarks/predict.py [--workdir .] [--dataset demo] [--model stgcn] [--videos 20] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SMOKE = """\
results: results
datasets:
  tiny: {adapter: synthetic, num_classes: 3, signers: 3, repeats: 1, frames: 10, width: 96, height: 72,
         num_shards: 1, pose: {backend: sidecar}}
decode: {short_side: 64, jpeg_quality: 80, threads: 1}
pose: {threads: 1}
hands: {crop_size: 32, threads: 1}
device: cpu
finetune: {models: [stgcn], pretrained: false, epochs: 1, batch_size: 4, threads: 1, stgcn: {layers: [[8, 1]]}}
"""


def build_smoke_run(root: Path) -> None:
    """The tiny run of --smoke: synth -> decode -> pose -> finetune stgcn, with benchmark records."""
    (root / "config.yaml").write_text(SMOKE)
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                           "results/tiny/models/stgcn/predictions.h5"], cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"the smoke run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


RULES = {"frames": "decode", "keypoints": "pose", "hands": "hands"}
"""The rule that writes each stage's shards (a keypoint run's keypoints: pose_import)."""


def pipeline_seconds(results: Path, ds: str, manifest, video_ids: list[str], stages: list[str],
                     keypoint_run: bool = False) -> float:
    """Mean over ``video_ids`` of the per-video wall time of ``stages`` from the shards' benchmark records."""
    import pandas as pd

    per_shard = manifest.groupby("shard").size()
    shards = manifest.set_index("video_id").loc[video_ids, "shard"]
    total = 0.0
    for stage in stages:
        rule = "pose_import" if keypoint_run and stage == "keypoints" else RULES[stage]
        for shard in shards:
            record = results / "benchmarks" / rule / ds / f"{shard}.tsv"
            if not record.is_file():
                raise SystemExit(f"{record}: no benchmark record of the {rule} job of shard {shard}; finish the run first")
            total += float(pd.read_csv(record, sep="\t")["s"].iloc[-1]) / int(per_shard[shard])
    return total / len(video_ids)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=REPO, help="folder with a finished run (results/)")
    parser.add_argument("--dataset", default="demo")
    parser.add_argument("--model", default="stgcn", help="a model of the run or a fusion A+B")
    parser.add_argument("--videos", type=int, default=20, help="test videos to predict")
    parser.add_argument("--smoke", action="store_true", help="a tiny run built here, 3 videos")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    tmp = tempfile.TemporaryDirectory(prefix="signpipe-bench-predict-") if args.smoke else None
    if tmp is not None:
        build_smoke_run(Path(tmp.name))
        args.workdir, args.dataset, args.model, args.videos = Path(tmp.name), "tiny", "stgcn", 3
    results = args.workdir / "results"
    run = results / args.dataset
    if not (run / "manifest.csv").is_file():
        raise SystemExit(f"{run}: no finished run; run `make demo` first (or give --workdir, --dataset)")

    started = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    from signpipe.datasets import read_manifest
    from signpipe.predict import Recogniser

    manifest = read_manifest(run / "manifest.csv")
    video_ids = sorted(manifest.loc[manifest["split"] == "test", "video_id"])[:args.videos]
    paths = manifest.set_index("video_id").loc[video_ids, "path"].tolist()
    times = []
    with Recogniser(run, args.model, device="cpu") as recogniser:
        last = started
        for prediction in recogniser(paths, progress=False):
            if prediction.reason:
                raise SystemExit(f"video {prediction.video_id}: {prediction.reason}")
            now = time.perf_counter()
            times.append(now - last)
            last = now
        stages, keypoint_run = list(recogniser.stages.stages), recogniser.run.adapter is not None
    cold, warm = times[0], times[1:] or times
    per_video = sum(warm) / len(warm)
    pipeline = pipeline_seconds(results, args.dataset, manifest, video_ids, stages, keypoint_run)
    print(json.dumps({"cold_start_s": round(cold, 3), "per_video_s": round(per_video, 4),
                      "pipeline_per_video_s": round(pipeline, 4), "ratio": round(per_video / pipeline, 3),
                      "videos": len(video_ids), "model": args.model,
                      "stages": [RULES[stage] for stage in stages], "dataset": args.dataset,
                      "smoke": args.smoke, "torch_threads": torch.get_num_threads()}))
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
