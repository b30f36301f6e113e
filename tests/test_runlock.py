"""One run per results folder (issue #25 item 8): two runs from different working directories with the
same absolute ``results:`` are not locked against each other by Snakemake, so signpipe locks the folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from signpipe.runlock import HOST, RunLocked, acquire, lock_path, release
from test_workflow import TINY, snakemake


@pytest.fixture
def other_run():
    """A live process standing in for another run's Snakemake."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_the_lock_names_the_other_run_and_is_taken_over_once_it_is_gone(tmp_path, other_run, caplog):
    results = tmp_path / "results"
    acquire(results, pid=other_run.pid)
    holder = json.loads(lock_path(results).read_text())
    assert holder["pid"] == other_run.pid and holder["host"] == HOST
    with pytest.raises(RunLocked, match=rf"is in use by another signpipe run: pid {other_run.pid} on {HOST}, "
                                        rf"started .* in {Path.cwd()}"):
        acquire(results)
    release(results)  # not ours: stays
    assert lock_path(results).exists()
    other_run.kill()
    other_run.wait()  # killed with -9: its lock is stale
    assert acquire(results) == lock_path(results)
    assert "taking over the lock of a run that is gone" in caplog.text
    assert json.loads(lock_path(results).read_text())["pid"] != other_run.pid
    release(results)
    assert not lock_path(results).exists()


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    lock_path(tmp_path).write_text(json.dumps({"pid": 1, "host": "elsewhere", "workdir": "/w", "started": "t"}))
    with pytest.raises(RunLocked, match=rf"pid 1 on elsewhere, started t in /w; .* remove {lock_path(tmp_path)}"):
        acquire(tmp_path)


def test_a_second_snakemake_run_on_the_same_results_stops_before_any_job(tmp_path, other_run):
    results = tmp_path / "shared_results"
    acquire(results, pid=other_run.pid)
    workdir = tmp_path / "second"
    workdir.mkdir()
    (workdir / "config.yaml").write_text(TINY.replace("results: results", f"results: {results}"))
    proc = snakemake("--cores", "1", cwd=workdir, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"results folder {results} is in use by another signpipe run: pid {other_run.pid}" in out, out
    assert [p.name for p in results.iterdir()] == [".signpipe.lock"]  # no job ran
