"""Logging for pipeline jobs: one log file per job (Snakemake's `log:`), also echoed to stderr."""

from __future__ import annotations

import contextlib
import faulthandler
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def log_to(path: str | os.PathLike) -> Iterator[logging.Logger]:
    """Send `logging` records to ``path`` and stderr for the block; log an exception before re-raising it.

    A crash inside C code (HDF5, FFmpeg, MediaPipe) writes the Python traceback of every thread to
    the log too (faulthandler), unless the process already sends it elsewhere.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handlers = [logging.FileHandler(path, mode="w"), logging.StreamHandler(sys.stderr)]
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
