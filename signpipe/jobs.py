"""What every stage does around its per-video work: which errors skip one video, worker processes.

A stage loops over the videos of a shard. An exception raised for one video (a library bug, a
corrupt file, odd metadata) costs that video only: the stage records it (``failures.csv``,
``quality.csv``, a shard attribute) and goes on. Errors that say the job itself cannot go on,
such as a full disk, memory exhausted, an interrupt or a crashed worker pool, stop it.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import BrokenExecutor, ProcessPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

JOB_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.ENOMEM}
"""errno values of an OSError that concern the job, not one video: disk full, quota, read-only, memory."""
PR_SET_PDEATHSIG = 1
"""prctl(2) option: the signal this process gets when the thread that started it exits."""


def fails_the_job(err: BaseException) -> bool:
    """Whether ``err``, raised while working on one video, must stop the job instead of skipping the video.

    True for what is not an ``Exception`` (KeyboardInterrupt, SystemExit), MemoryError, a broken
    worker pool, and OSErrors of :data:`JOB_ERRNOS` (disk full, ...).
    """
    return (not isinstance(err, Exception) or isinstance(err, (MemoryError, BrokenExecutor))
            or (isinstance(err, OSError) and err.errno in JOB_ERRNOS))


def describe(err: BaseException) -> str:
    """``"Type: message"`` of an exception, as failure lists record it."""
    return f"{type(err).__name__}: {err}"


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this (worker) process with SIGKILL as soon as its parent dies, even by kill -9.

    Linux only (prctl PR_SET_PDEATHSIG; elsewhere nothing happens). The signal fires when the
    parent *thread* that started this process exits, so a pool must be used and shut down by the
    thread that made it, as the stages do; a pool made in a short-lived thread loses its workers
    with that thread. A parent that died before the signal was armed is caught by its pid.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        log.warning("cannot tie worker %d to its parent (prctl: %s); it may outlive a killed job",
                    os.getpid(), os.strerror(ctypes.get_errno()))
    if os.getppid() != parent_pid:
        os._exit(1)


def _init_worker(parent_pid: int, initializer: Callable[..., None] | None, initargs: Sequence[Any]) -> None:
    die_with_parent(parent_pid)
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, initializer: Callable[..., None] | None = None,
                 initargs: Sequence[Any] = ()) -> ProcessPoolExecutor:
    """A pool of ``workers`` spawned processes that die with the job (:func:`die_with_parent`).

    Spawned, not forked: a process that has run MediaPipe graphs cannot be forked safely (the
    child's heap is corrupt). Spawned children import ``__main__`` again, so a script that makes a
    pool keeps its body under ``if __name__ == "__main__"`` (as ``workflow/scripts/pose.py`` does).
    """
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker,
                               initargs=(os.getpid(), initializer, tuple(initargs)))
