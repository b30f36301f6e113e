"""Logging for pipeline jobs: one log file per job (Snakemake's `log:`), also echoed to stderr;
progress of long loops as a tqdm bar on a terminal and as a few log lines otherwise (:func:`track`)."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tqdm import tqdm

log = logging.getLogger(__name__)

T = TypeVar("T")
PROGRESS_PERCENT = 10
"""A line each time another 10% of a loop is done ..."""
PROGRESS_SECONDS = 60.0
"""... or a minute has passed since the last line, whichever comes first ..."""
PROGRESS_QUIET = 5.0
"""... but never two lines within 5 seconds, so short loops (a training epoch) stay quiet."""


@contextlib.contextmanager
def log_to(path: str | os.PathLike, append: bool = False) -> Iterator[logging.Logger]:
    """Send `logging` records to ``path`` (``append``: after what it holds) and stderr for the block;
    log an exception before re-raising it.

    A crash inside C code (HDF5, FFmpeg, MediaPipe) writes the Python traceback of every thread to
    the log too (faulthandler), unless the process already sends it elsewhere.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(path, mode="a" if append else "w"), logging.StreamHandler(sys.stderr)]
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    crash_to_log = not faulthandler.is_enabled()
    if crash_to_log:
        faulthandler.enable(handlers[0].stream, all_threads=True)
    try:
        yield root
    except BaseException:
        root.exception("job failed")
        raise
    finally:
        if crash_to_log:
            faulthandler.disable()
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()


class LoggedProgress:
    """Iterates ``iterable`` and logs "desc: n/total unit (p%), r unit/s, postfix" now and then
    (``PROGRESS_*``): the progress a job log keeps instead of one tqdm line per step."""

    def __init__(self, iterable: Iterable[T], total: int | None, desc: str, unit: str,
                 percent: float = PROGRESS_PERCENT, seconds: float = PROGRESS_SECONDS, quiet: float = PROGRESS_QUIET,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.iterable, self.desc, self.unit, self.clock = iterable, desc, unit, clock
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.percent, self.seconds, self.quiet = percent, seconds, quiet
        self.postfix = ""

    def set_postfix(self, **values: Any) -> None:
        """Text after the count in the next line (as tqdm's ``set_postfix``)."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def __iter__(self) -> Iterator[T]:
        started = last = self.clock()
        next_share = self.percent
        done = 0
        for item in self.iterable:
            yield item
            done += 1
            now = self.clock()
            share = 100.0 * done / self.total if self.total else None
            due = now - last >= self.seconds or (share is not None and share >= next_share)
            if due and now - last >= self.quiet:
                of = f"/{self.total} {self.unit} ({share:.0f}%)" if share is not None else f" {self.unit}"
                rate = done / (now - started) if now > started else 0.0
                log.info("%s: %d%s, %.3g %s/s%s", self.desc, done, of, rate, self.unit,
                         f", {self.postfix}" if self.postfix else "")
                last = now
            if share is not None:
                while share >= next_share:
                    next_share += self.percent


def track(iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
          disable: bool = False, leave: bool = True) -> Iterable[T]:
    """A tqdm bar over ``iterable`` when stderr is a terminal; else :class:`LoggedProgress`
    (a job log under Snakemake or a cluster keeps a few lines, not one per step). ``disable``:
    iterate silently."""
    if disable:
        return tqdm(iterable, total=total, disable=True)
    if sys.stderr.isatty():
        return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave)
    return LoggedProgress(iterable, total, desc, unit)
