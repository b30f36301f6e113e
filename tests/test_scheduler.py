"""Snakemake's scheduler never runs more threads at once than --cores (the pinned version).

Snakemake 9.15 took a lone ready job without reserving its cores but freed them when it ended,
so after the demo's single 2-thread synth job `--cores 2` ran several 2-thread trainings at
once (issue #27). These tests run a tiny workflow of that shape and check the recorded start
and end times of every job.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# One 2-thread job alone first (as synth is in the demo), then N independent 2-thread jobs and
# two 1-thread ones that all become ready at once. Each job records its start and end time.
WORKFLOW = """\
N = {n}

rule all:
    input:
        expand("done/work_{{i}}.txt", i=range(N)),
        expand("done/light_{{i}}.txt", i=range(2)),

rule first:
    output: "first.txt"
    threads: 2
    shell: "echo 2 $(date +%s.%N) > {{output}}.tmp; sleep {sleep}; echo $(date +%s.%N) >> {{output}}.tmp; mv {{output}}.tmp {{output}}"

rule work:
    input: "first.txt"
    output: "done/work_{{i}}.txt"
    threads: 2
    shell: "echo 2 $(date +%s.%N) > {{output}}.tmp; sleep {sleep}; echo $(date +%s.%N) >> {{output}}.tmp; mv {{output}}.tmp {{output}}"

rule light:
    input: "first.txt"
    output: "done/light_{{i}}.txt"
    threads: 1
    shell: "echo 1 $(date +%s.%N) > {{output}}.tmp; sleep {sleep}; echo $(date +%s.%N) >> {{output}}.tmp; mv {{output}}.tmp {{output}}"
"""


def run_jobs(workdir: Path, n: int, cores: int, sleep: float = 1.5) -> list[tuple[int, float, float]]:
    """Run the workflow with `--cores cores`; every job as (threads, start, end)."""
    (workdir / "Snakefile").write_text(WORKFLOW.format(n=n, sleep=sleep))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", str(cores), "--quiet", "all"],
                          cwd=workdir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = []
    for path in [workdir / "first.txt", *sorted((workdir / "done").glob("*.txt"))]:
        first, last = path.read_text().split("\n")[:2]
        threads, start = first.split()
        jobs.append((int(threads), float(start), float(last)))
    return jobs


def peak_threads(jobs: list[tuple[int, float, float]]) -> int:
    """The most threads running at one instant (a job ending frees its threads before one starts)."""
    events = sorted([(start, 1, threads) for threads, start, _ in jobs] + [(end, 0, -threads) for threads, _, end in jobs])
    running = peak = 0
    for _, _, change in events:
        running += change
        peak = max(peak, running)
    return peak


def test_two_thread_jobs_never_overlap_under_two_cores(tmp_path):
    """N 2-thread jobs after a lone 2-thread job, plus 1-thread ones, under --cores 2: at most 2
    threads run at any time, so no two 2-thread jobs overlap and none overlaps a 1-thread one."""
    jobs = run_jobs(tmp_path, n=4, cores=2)
    assert len(jobs) == 7
    assert peak_threads(jobs) <= 2, sorted(jobs, key=lambda job: job[1])


def test_peak_threads_counts_overlaps():
    """The measure itself: two overlapping 2-thread jobs peak at 4, back-to-back ones at 2."""
    assert peak_threads([(2, 0.0, 2.0), (2, 1.0, 3.0)]) == 4
    assert peak_threads([(2, 0.0, 1.0), (2, 1.0, 2.0), (1, 2.0, 3.0), (1, 2.5, 3.5)]) == 2
