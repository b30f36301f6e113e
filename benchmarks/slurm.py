"""What the SLURM executor adds per job, on a real single-node cluster (tests/slurm).

Prints one JSON line last: {"jobs", "local_wall_s", "slurm_wall_s", "overhead_per_job_s", "settings"}.
The tiny demo of tests/test_workflow.py runs once locally (snakemake --cores 2) and once through
--profile workflow/profiles/slurm on a cluster started for the run; overhead_per_job_s =
(slurm_wall_s - local_wall_s) / jobs. The profile's status-check settings apply, except that the
cluster has no accounting (squeue, not sacct); --init and --interval override them.
Needs root, slurm-wlm and munge (otherwise it exits 77, skipped, with a message).
Run: python benchmarks/slurm.py [--init 20] [--interval 10] [--smoke]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(1, str(REPO / "tests"))  # after this script's folder, whose slurm.py shadows tests/slurm
_spec = importlib.util.spec_from_file_location("slurm_cluster", REPO / "tests" / "slurm" / "cluster.py")
cluster = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cluster)

from test_workflow import TINY, jobs_planned  # noqa: E402


def run(cwd: Path, args: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - started, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--init", type=int, default=None, help="seconds before the first status check (profile: 20)")
    parser.add_argument("--interval", type=int, default=None, help="seconds between status checks (profile: 10)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the benchmark runs (its numbers mean nothing)")
    args = parser.parse_args()
    if cluster.missing():
        print(f"no SLURM here (missing: {', '.join(cluster.missing())}); apt-get install slurm-wlm munge as root",
              file=sys.stderr)
        sys.exit(77)  # skipped: the service is absent
    # --smoke: the tiny demo up to its manifest (2 jobs) instead of the whole DAG.
    targets = ["results/tiny/manifest.csv"] if args.smoke else []
    checks = ["--slurm-status-command", "squeue"]
    if args.init is not None:
        checks += ["--slurm-init-seconds-before-status-checks", str(args.init)]
    if args.interval is not None:
        checks += ["--seconds-between-status-checks", str(args.interval)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name in ("local", "slurm"):
            (root / name).mkdir()
            (root / name / "config.yaml").write_text(TINY)
        local_wall, _ = run(root / "local", [*targets, "--cores", "2", "--configfile", "config.yaml"])
        with cluster.single_node_cluster(root / "cluster") as env:
            slurm_wall, out = run(root / "slurm", [*targets, "--profile", str(REPO / "workflow" / "profiles" / "slurm"),
                                                   "--configfile", "config.yaml", *checks], env)
    jobs = sum(count for rule, count in jobs_planned(out).items() if rule != "all")
    print(json.dumps({"jobs": jobs, "local_wall_s": round(local_wall, 1), "slurm_wall_s": round(slurm_wall, 1),
                      "overhead_per_job_s": round((slurm_wall - local_wall) / jobs, 2),
                      "settings": " ".join(checks) or "profile defaults"}))


if __name__ == "__main__":
    main()
