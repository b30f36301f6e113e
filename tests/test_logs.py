"""Job logs: what a failing or crashing job leaves in its log file."""

import subprocess
import sys

from conftest import repo_env

CRASH = """
import ctypes, logging, sys
from signpipe.logs import log_to
with log_to(sys.argv[1]):
    logging.getLogger("job").info("writing shard 3")
    ctypes.string_at(0)  # a segfault in C code, as HDF5 on a full disk
"""


def test_a_crash_in_c_code_leaves_its_traceback_in_the_log(tmp_path):
    job = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path / "job.log")], env=repo_env(),
                         capture_output=True, text=True)
    assert job.returncode != 0
    log = (tmp_path / "job.log").read_text()
    assert "writing shard 3" in log and "Segmentation fault" in log and "string_at" in log



def test_progress_off_a_terminal_is_a_few_log_lines(caplog):
    from signpipe.logs import LoggedProgress, track

    now = [0.0]
    steps = LoggedProgress(range(1000), None, "epoch 1/3", "batch", clock=lambda: now[0])
    with caplog.at_level("INFO", logger="signpipe.logs"):
        for k in steps:
            now[0] += 0.1  # 100 s in all: a line per 10% (10 s apart)
            steps.set_postfix(loss=f"{1 / (k + 1):.3f}")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 10 and lines[0].startswith("epoch 1/3: 100/1000 batch (10%), 10 batch/s")
    assert lines[-1].startswith("epoch 1/3: 1000/1000 batch (100%)") and lines[-1].endswith("loss=0.001")
    caplog.clear()
    now[0] = 0.0
    with caplog.at_level("INFO", logger="signpipe.logs"):
        for _ in LoggedProgress(range(1000), None, "fast", "batch", clock=lambda: now[0]):
            now[0] += 0.001  # one second in all: quieter than PROGRESS_QUIET, no line
        for _ in LoggedProgress(iter(range(50)), None, "slow", "video", clock=lambda: now[0]):
            now[0] += 30.0  # no total: a line every PROGRESS_SECONDS
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 25 and all(line.startswith("slow: ") for line in lines)
    assert isinstance(track(range(3)), LoggedProgress)  # pytest's stderr is not a terminal
    assert list(track(range(3), disable=True)) == [0, 1, 2]
