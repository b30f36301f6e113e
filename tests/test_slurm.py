"""The SLURM profile on a real single-node cluster (tests/slurm): every job through sbatch, the
same tables as a local run, and a cancelled job failed and rerun."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from slurm.cluster import missing, single_node_cluster
from test_benchmarks import run_smoke
from test_workflow import TINY, jobs_planned

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow" / "profiles" / "slurm"
FAST_CHECKS = ["--slurm-status-command", "squeue"]
"""This cluster has no accounting: squeue, not sacct (the profile's other settings as they are)."""

pytestmark = [pytest.mark.slow, pytest.mark.skipif(bool(missing()), reason=(
    f"SLURM is not installed here (missing: {', '.join(missing())}); `apt-get install slurm-wlm munge` "
    "as root brings it, as .ci/run does"))]


def snakemake(cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args], cwd=cwd,
                          env={**(env or os.environ), "PYTHONUNBUFFERED": "1"}, capture_output=True, text=True,
                          timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def squeue(env: dict[str, str]) -> list[tuple[str, str, str]]:
    """(job id, state, comment) of every job the cluster remembers (MinJobAge keeps finished ones)."""
    out = subprocess.run(["squeue", "--states=all", "-h", "-o", "%i|%T|%k"], env=env, capture_output=True,
                         text=True, check=True).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line]


def submitted_ids(output: str) -> set[str]:
    """SLURM job ids the executor reports ('Job 3 has been submitted with SLURM jobid 17 (log: ...)')."""
    return set(re.findall(r"has been submitted with SLURM jobid (\d+)", output))


def test_the_tiny_demo_through_slurm_equals_a_local_run(tmp_path):
    local, remote = tmp_path / "local", tmp_path / "slurm"
    for folder in (local, remote):
        folder.mkdir()
        (folder / "config.yaml").write_text(TINY)
    snakemake(local, "--cores", "2", "--configfile", "config.yaml")

    with single_node_cluster(tmp_path / "cluster") as env:
        started = time.monotonic()
        proc = snakemake(remote, "--profile", str(PROFILE), "--configfile", "config.yaml", *FAST_CHECKS, env=env)
        wall = time.monotonic() - started
        jobs = squeue(env)
        ids = submitted_ids(proc.stdout + proc.stderr)
        planned = sum(count for rule, count in jobs_planned(proc.stdout + proc.stderr).items() if rule != "all")
        assert ids and ids == {job_id for job_id, _, _ in jobs}, (ids, jobs)
        assert all(state == "COMPLETED" for _, state, _ in jobs), jobs
        comments = {comment.split("_wildcards")[0] for _, _, comment in jobs}
        assert {"rule_pretrain", "rule_finetune", "rule_fuse", "rule_tables"} <= comments, comments
        grouped = sum(count for rule, count in jobs_planned(proc.stdout + proc.stderr).items()
                      if rule in ("shard_manifest", "decode", "pose", "hands"))
        # the per-shard steps of both shards are one group job (the profile's groups); the rest one job each
        assert grouped == 8 and len(ids) == planned - grouped + 1, (len(ids), planned)

        for table in ("tables/summary.csv", "tiny/fusion/table.csv"):
            pd.testing.assert_frame_equal(pd.read_csv(remote / "results" / table), pd.read_csv(local / "results" / table))

        # A job cancelled with scancel fails the run; the next invocation reruns it.
        cancelled: list[str] = []

        def cancel_finetune() -> None:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not cancelled:
                for job_id, state, comment in squeue(env):
                    if comment.startswith("rule_finetune") and state == "RUNNING" and job_id not in ids:
                        subprocess.run(["scancel", job_id], env=env, check=True)
                        cancelled.append(job_id)
                time.sleep(0.5)

        watcher = threading.Thread(target=cancel_finetune)
        watcher.start()
        failed = snakemake(remote, "--profile", str(PROFILE), "--configfile", "config.yaml", *FAST_CHECKS,
                           "--forcerun", "finetune", env=env, check=False)
        watcher.join()
        assert cancelled, "the finetune job was never seen running"
        assert failed.returncode != 0 and "Error in rule finetune" in failed.stdout + failed.stderr
        assert (cancelled[0], "CANCELLED") in {(job_id, state) for job_id, state, _ in squeue(env)}
        again = snakemake(remote, "--profile", str(PROFILE), "--configfile", "config.yaml", *FAST_CHECKS, env=env)
        assert jobs_planned(again.stdout + again.stderr).get("finetune") == 1
        assert "Nothing to be done" in snakemake(remote, "-n", "--configfile", "config.yaml", env=env).stdout
    print(f"slurm run: {len(ids)} jobs in {wall:.0f} s")


def test_the_slurm_benchmark_smoke(tmp_path):
    """benchmarks/slurm.py --smoke, here rather than in test_benchmarks.py: one test cluster at a time."""
    run_smoke(REPO / "benchmarks" / "slurm.py", tmp_path)
