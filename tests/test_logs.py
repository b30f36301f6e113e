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

