"""A real single-node SLURM cluster in a temporary folder, for tests and benchmarks.

munged, slurmctld and slurmd run in the foreground as children of this process, with every
state, spool, log, pid and socket file under one folder; clients (sbatch, squeue, srun inside
jobs) find the cluster through ``SLURM_CONF``. :func:`single_node_cluster` stops every daemon it
started by pid, also when the block fails. Debian's ``slurm-wlm`` and ``munge`` provide the
daemons (``.ci/run`` installs them); :func:`missing` says what is absent.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).parent
DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "srun", "scancel", "sinfo")
MUNGE_KEY = Path("/etc/munge/munge.key")


SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
"""Where srun inside a job looks: slurmd does not hand SLURM_CONF to job steps, so the test
cluster's config is put here while it runs (and removed after), never over an existing one."""
OURS = "# A single-node SLURM cluster for tests/test_slurm.py"


def missing() -> list[str]:
    """What a cluster needs and this machine lacks (programs, the munge key, root, a free
    /etc/slurm/slurm.conf)."""
    absent = [name for name in DAEMONS if shutil.which(name) is None
              and not Path("/usr/sbin", name).exists()]
    if not MUNGE_KEY.exists():
        absent.append(str(MUNGE_KEY))
    if os.geteuid() != 0:
        absent.append("root (the daemons run as root)")
    if SYSTEM_CONF.exists() and not SYSTEM_CONF.read_text().startswith(OURS):
        absent.append(f"{SYSTEM_CONF} free (this machine has a SLURM config of its own)")
    return absent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    """Most of this machine's memory, the node's RealMemory."""
    total_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                    if line.startswith("MemTotal:"))
    return int(total_kb / 1024 * 0.8)


def write_config(folder: Path, sockets: Path) -> Path:
    """slurm.conf for a cluster whose files live under ``folder``, its sockets under ``sockets``."""
    for sub in (folder / "state", sockets / "spool"):
        sub.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname().split(".")[0]
    text = (HERE / "slurm.conf.in").read_text().format(
        dir=folder, sockets=sockets, host=host, ctld_port=_free_port(), d_port=_free_port(), cpus=os.cpu_count(),
        memory_mb=_memory_mb())
    path = folder / "slurm.conf"
    path.write_text(text)
    return path


def _sbin(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _stop(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the daemon by its pid, SIGKILL it if it does not go."""
    if process.poll() is not None:
        return
    os.kill(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()


def _wait_for(check, what: str, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    tail = log.read_text()[-3000:] if log.exists() else "(no log)"
    raise RuntimeError(f"SLURM test cluster: {what} within {timeout:.0f} s; {log}:\n{tail}")


@contextlib.contextmanager
def single_node_cluster(folder: str | os.PathLike) -> Iterator[dict[str, str]]:
    """Start munged, slurmctld and slurmd under ``folder``; yield the environment for clients
    (``SLURM_CONF``); stop them all by pid on exit, whatever happened."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    # A Unix socket's path has at most 107 bytes, and slurmd names a job step's socket in its spool
    # folder: a pytest worker's tmp_path is too deep for it (the job fails to launch).
    sockets = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    try:
        conf = write_config(folder, sockets)
    except BaseException:
        shutil.rmtree(sockets, ignore_errors=True)
        raise
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[subprocess.Popen] = []
    try:
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(conf, SYSTEM_CONF)
        started.append(subprocess.Popen(
            [_sbin("munged"), "--foreground", "--force", f"--key-file={MUNGE_KEY}", f"--socket={sockets}/munge.socket",
             f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log", f"--seed-file={folder}/munged.seed"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        _wait_for(lambda: (sockets / "munge.socket").exists(), "munged did not open its socket", folder / "munged.log")
        started.append(subprocess.Popen([_sbin("slurmctld"), "-D", "-i", "-f", str(conf)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
        started.append(subprocess.Popen([_sbin("slurmd"), "-D", "-f", str(conf)], env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))

        def idle() -> bool:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=env, capture_output=True, text=True)
            return out.returncode == 0 and out.stdout.strip() in ("idle", "mix")

        _wait_for(idle, "the node did not become idle", folder / "slurmctld.log")
        yield env
    finally:
        subprocess.run(["scancel", "--full", "--quiet", "--user", "root"], env=env, capture_output=True)
        for process in reversed(started):
            _stop(process)
        if SYSTEM_CONF.exists() and SYSTEM_CONF.read_text() == conf.read_text():
            SYSTEM_CONF.unlink()
        shutil.rmtree(sockets, ignore_errors=True)
