"""Every benchmark runs: `python benchmarks/<name>.py --smoke` exits 0 with its JSON line last.

A benchmark is any benchmarks/*.py with a ``__main__`` block (helpers such as videos.py have
none), so one added later is picked up. One that needs what this machine lacks (SLURM, the
shared data, a finished demo) exits 77 with the reason on stderr, and its test skips with it.
The keys its docstring promises ("Prints one JSON line last: {"a", "b", ...}") must be in the line.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import repo_env

REPO = Path(__file__).resolve().parents[1]
SKIPPED = 77  # a benchmark's exit status when what it measures is absent here
BENCHMARKS = sorted(path for path in (REPO / "benchmarks").glob("*.py") if "__main__" in path.read_text())


def promised_keys(source: str) -> list[str]:
    """The keys named in the docstring's 'Prints one JSON line last: {...}' (empty when it names none)."""
    match = re.search(r"Prints one JSON line last: \{([^}]*)\}", source)
    return re.findall(r'"(\w+)"', match.group(1)) if match else []


def all_keys(result: dict) -> set[str]:
    """Keys at any depth (train_loop's promised keys are per model)."""
    return set(result) | {key for value in result.values() if isinstance(value, dict) for key in all_keys(value)}


ELSEWHERE = {"slurm"}
"""Benchmarks whose smoke runs in another test file: the SLURM one (in tests/test_slurm.py) starts a test cluster, which holds
/etc/slurm/slurm.conf while it runs, so it runs after test_slurm.py's cluster on the same pytest
worker, never beside it on another."""
HERE = [path for path in BENCHMARKS if path.stem not in ELSEWHERE]


def run_smoke(path: Path, tmp_path: Path) -> None:
    """``python <path> --smoke`` exits 0 (or 77: skip) with a JSON line last holding its promised keys."""
    env = {**repo_env(), "OMP_NUM_THREADS": "1", "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    # Its own process group, killed whole on a timeout: the SLURM benchmark's daemons go with it.
    with subprocess.Popen([sys.executable, str(path), "--smoke"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            pytest.fail(f"{path.name} --smoke ran over 300 s:\n{stdout[-3000:]}\n{stderr[-3000:]}")
    if proc.returncode == SKIPPED:
        pytest.skip(f"{path.name}: {stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"{path.name} --smoke failed:\n{stdout[-3000:]}\n{stderr[-3000:]}"
    last = stdout.strip().splitlines()[-1]
    result = json.loads(last)
    assert isinstance(result, dict) and result, last
    missing = [key for key in promised_keys(path.read_text()) if key not in all_keys(result)]
    assert not missing, f"{path.name}: keys its docstring promises are not in {last}: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("path", HERE, ids=[path.stem for path in HERE])
def test_benchmark_smoke(path, tmp_path):
    run_smoke(path, tmp_path)


def test_benchmarks_found():
    """The glob finds the benchmarks and leaves their helper modules out."""
    names = {path.stem for path in BENCHMARKS}
    assert {"train_loop", "dag", "decode", "loader"} <= names and "videos" not in names
    assert set(ELSEWHERE) <= names
    assert os.path.isfile(REPO / "benchmarks" / "videos.py")
