"""One run per results folder: a lock file that names its run, for runs Snakemake cannot see.

Snakemake locks its working directory (``.snakemake/locks``), so two runs started from two
folders with the same absolute ``results:`` both run, and both rewrite every output. The
workflow's ``onstart`` hook takes ``{results}/.signpipe.lock`` (created with O_EXCL, so two runs
starting at once cannot both win) holding the run's pid, host, working directory and start
time; ``onsuccess`` and ``onerror`` remove it. A lock whose run is gone (same host, pid no longer
alive: the run was killed with -9 or the machine rebooted) is stale and taken over with a
warning. A lock of another host cannot be checked from here: the error says how to remove it.
Dry runs (``-n``) and the jobs themselves take no lock.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = ".signpipe.lock"
HOST = socket.gethostname()
HALF_WRITTEN_S = 60
"""An empty or unreadable lock older than this was left by a run killed while writing it: stale."""


class RunLocked(RuntimeError):
    """Another live run holds the results folder; the message names it."""


def lock_path(results: str | os.PathLike) -> Path:
    """The lock file of a results folder."""
    return Path(results) / LOCK_NAME


def acquire(results: str | os.PathLike, pid: int | None = None) -> Path:
    """Take the lock of ``results`` for process ``pid`` (default: this one) or raise :class:`RunLocked`."""
    path = lock_path(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    me = {"pid": pid or os.getpid(), "host": HOST, "workdir": os.getcwd(),
          "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            other = _read(path)
            if not other and _age(path) < HALF_WRITTEN_S:
                time.sleep(0.2)  # another run is between creating and writing it
                other = _read(path)
            if other.get("pid") == me["pid"] and other.get("host") == HOST:
                return path  # this run already holds it
            if not _stale(other) and (other or _age(path) < HALF_WRITTEN_S):
                raise RunLocked(
                    f"results folder {path.parent} is in use by another signpipe run: pid {other.get('pid')} on "
                    f"{other.get('host')}, started {other.get('started')} in {other.get('workdir')}; wait for it "
                    f"to finish, or, if that run is gone (killed on another machine), remove {path}") from None
            log.warning("%s: taking over the lock of a run that is gone (pid %s on %s, started %s)", path,
                        other.get("pid"), other.get("host"), other.get("started"))
            path.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return path
    raise RunLocked(f"{path}: could not take the lock (another run keeps taking it)")


def release(results: str | os.PathLike, pid: int | None = None) -> None:
    """Remove the lock of ``results`` if process ``pid`` (default: this one) of this host holds it."""
    path = lock_path(results)
    holder = _read(path)
    if holder.get("pid") == (pid or os.getpid()) and holder.get("host") == HOST:
        path.unlink(missing_ok=True)


def _read(path: Path) -> dict:
    """The lock's fields; {} for a lock being written or unreadable (never stale by itself: see _stale)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _age(path: Path) -> float:
    """Seconds since ``path`` was last written (0 if it is gone)."""
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return 0.0


def _stale(holder: dict) -> bool:
    """Whether a lock's run is certainly gone: on this host, with a pid that is no longer alive."""
    pid = holder.get("pid")
    if holder.get("host") != HOST or not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's process
        return False
    return False
