"""How quickly the workflow starts: a no-op rerun of the finished demo, a dry run of a large DAG,
and whether parsing the Snakefile imports torch.

Prints one JSON line last: {"noop_demo_s", "noop_demo_cpu_s", "noop_empty_s", "noop_empty_cpu_s",
"noop_own_cpu_s", "dryrun_512_shards_s", "dryrun_jobs", "snakefile_imports_torch", ...}.
- noop_demo_s: wall time of ``snakemake --cores 2`` in a folder whose demo is finished (median
  of --repeats); ``--workdir`` names it (default: the repository, after ``make demo``). Without
  a finished demo there, it says so and stops: run ``make demo`` first. noop_demo_cpu_s: the
  CPU seconds (user + sys) of that run, what its wall time is on an idle machine (on a busy one
  the wall time waits for the CPU).
- noop_empty_s / noop_empty_cpu_s: the same for a workflow of one empty rule: Snakemake's own
  start-up (its imports and executor plugins), which no Snakefile of ours can cut.
  noop_own_cpu_s = noop_demo_cpu_s - noop_empty_cpu_s: what our Snakefile (config validation,
  signpipe imports, input functions) and the demo's DAG add.
- dryrun_512_shards_s: ``snakemake -n`` of a generated config with one ``csv`` dataset of
  --videos listed videos in 512 shards and all three models (WLASL2000-sized: 1,545 jobs).
- snakefile_imports_torch: ``python -X importtime -m snakemake -n`` lists every module the
  Snakefile pulled in; true when torch (or torchvision, mediapipe, cv2) is among them, with
  ``heavy_imports`` naming them.
Exits 77 (skipped) when the demo is not finished. Run: python benchmarks/dag.py [--workdir .] [--repeats 3]
[--videos 21083] [--shards 512] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "torchvision", "mediapipe", "cv2")


def cpu_of_children() -> float:
    """User + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snakemake(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """Run snakemake with ``args`` in ``cwd``; (wall seconds, stdout + stderr, CPU seconds). Fails loudly."""
    started, cpu = time.perf_counter(), cpu_of_children()
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed in {cwd}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout + proc.stderr, cpu_of_children() - cpu


def median_runs(args: list[str], cwd: Path, repeats: int) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``repeats`` runs of snakemake ``args`` in ``cwd``."""
    runs = [snakemake(args, cwd) for _ in range(repeats)]
    return (round(statistics.median(r[0] for r in runs), 2), round(statistics.median(r[2] for r in runs), 2))


def large_config(root: Path, videos: int, shards: int = 512) -> Path:
    """A config with one csv dataset of ``videos`` rows in ``shards`` shards (the videos need not exist for a dry run)."""
    rows = ["video_id,path,label,split"] + [f"{k:05d},videos/{k:05d}.mp4,{k % 2000},{('train', 'val', 'test')[k % 3]}"
                                           for k in range(videos)]
    (root / "list.csv").write_text("\n".join(rows) + "\n")
    config = root / "config.yaml"
    config.write_text(
        f"datasets:\n  big: {{adapter: csv, manifest: list.csv, num_shards: {shards}}}\n"
        "finetune: {models: [signbert, stgcn, rgb3d]}\n"
        "fusion: {combos: [[signbert, stgcn], [signbert, rgb3d]]}\n")
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=REPO, help="folder with a finished demo (config.yaml, results/)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--videos", type=int, default=21083, help="WLASL2000 lists 21,083 videos")
    parser.add_argument("--shards", type=int, default=512, help="shards of the generated dataset")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.videos, args.shards = 1, 300, 16
    snakefile = ["-m", "snakemake", "-s", str(REPO / "Snakefile")]
    result: dict[str, object] = {"cores": os.cpu_count(), "load_1min": round(os.getloadavg()[0], 2)}

    _, out, _ = snakemake([*snakefile, "-n", "--cores", "2"], args.workdir)
    if "Nothing to be done" not in out:
        print(f"the demo in {args.workdir} is not finished (a dry run plans jobs): run `make demo` first", file=sys.stderr)
        sys.exit(77)  # skipped: what it measures is absent
    result["noop_demo_s"], result["noop_demo_cpu_s"] = median_runs([*snakefile, "--cores", "2"], args.workdir,
                                                                   args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Snakefile").write_text("rule all:\n    input: []\n")
        result["noop_empty_s"], result["noop_empty_cpu_s"] = median_runs(
            ["-m", "snakemake", "-s", str(Path(tmp) / "Snakefile"), "--cores", "2"], Path(tmp), args.repeats)
    result["noop_own_cpu_s"] = round(result["noop_demo_cpu_s"] - result["noop_empty_cpu_s"], 2)

    with tempfile.TemporaryDirectory() as tmp:
        config = large_config(Path(tmp), args.videos, args.shards)
        times = []
        for _ in range(args.repeats):
            seconds, out, _ = snakemake([*snakefile, "-n", "--cores", "2", "--configfile", str(config)], Path(tmp))
            times.append(seconds)
        result["dryrun_512_shards_s"] = round(statistics.median(times), 2)
        total = [line.split() for line in out.splitlines() if line.startswith("total")]
        result["dryrun_jobs"] = int(total[-1][1]) if total else None
        _, out, _ = snakemake(["-X", "importtime", *snakefile, "-n", "--cores", "2", "--configfile", str(config)],
                              Path(tmp))
    imported = {line.split("|")[-1].strip().split(".")[0] for line in out.splitlines() if line.startswith("import time:")}
    heavy = sorted(name for name in HEAVY if name in imported)
    result["heavy_imports"] = heavy
    result["snakefile_imports_torch"] = bool(heavy)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
