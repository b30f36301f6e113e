"""MediaPipe's native log into the job's log file, once per message kind; the console keeps progress and errors.

MediaPipe (its C++ graph, absl/glog logging and TensorFlow Lite) writes straight to file
descriptor 2, beneath Python's ``logging``: on a real run 1,720 of 2,438 console lines were
``inference_feedback_manager.cc:114] ... Disabling support for feedback tensors`` and its kin,
and none reached ``results/logs/pose/*.log``. :func:`native_log` points fd 2 of the job (and so
of the worker processes it spawns, which inherit it) at a pipe read by a thread of the job:

- a native line (glog/absl ``W0000 00:00:... 123 file.cc:114] text``, or TensorFlow Lite's
  ``INFO: text``) goes to the log file the first time its kind is seen (``file.cc:114``, or
  the text), with a note that repeats are not shown; errors (``E``, ``F``, ``ERROR:``) go to the
  console too;
- anything else (a worker's Python traceback or warning) goes to the console unchanged.

Python's own ``sys.stderr`` (logging, tqdm) keeps writing to the console directly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator

log = logging.getLogger("signpipe.native")

NATIVE_LINE = re.compile(r"^(?P<level>[IWEF])\d{4} [\d:.]+\s+\d+ (?P<kind>[^\s\]]+:\d+)\] ?(?P<text>.*)$")
"""A glog/absl line: level letter, date, time, thread, ``file:line]`` and the message."""
PLAIN_LINE = re.compile(r"^(?P<level>INFO|WARNING|ERROR|FATAL): (?P<text>.*)$")
"""TensorFlow Lite's and absl's own ``LEVEL: message`` lines."""
LEVELS = {"I": logging.INFO, "W": logging.WARNING, "E": logging.ERROR, "F": logging.CRITICAL,
          "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR, "FATAL": logging.CRITICAL}


def classify(line: str) -> tuple[str, int, str] | None:
    """(kind, logging level, message) of a native log line, None for any other line."""
    match = NATIVE_LINE.match(line)
    if match:
        return match["kind"], LEVELS[match["level"]], f"{match['kind']}] {match['text']}"
    match = PLAIN_LINE.match(line)
    if match:
        return match["text"], LEVELS[match["level"]], line
    return None


def _file_handlers() -> list[logging.Handler]:
    """The root logger's handlers that do not write to the console (the job's log file)."""
    return [h for h in logging.getLogger().handlers
            if isinstance(h, logging.FileHandler) or not isinstance(h, logging.StreamHandler)]


def _pump(read_fd: int, console) -> None:
    """Read the pipe line by line until every writer has closed it; route each line (see the module doc)."""
    seen: set[str] = set()
    with os.fdopen(read_fd, "r", encoding="utf-8", errors="replace", newline="\n") as pipe:
        for line in pipe:
            text = line.rstrip("\n")
            found = classify(text)
            if found is None:
                console.write(line)
                console.flush()
                continue
            kind, level, message = found
            if kind in seen:
                continue
            seen.add(kind)
            record = log.makeRecord(log.name, level, __file__, 0, "%s (MediaPipe native log; repeats of this kind "
                                    "are not shown)", (message,), None)
            for handler in _file_handlers():
                if record.levelno >= handler.level:
                    handler.handle(record)
            if level >= logging.ERROR:
                console.write(f"{message}\n")
                console.flush()


@contextlib.contextmanager
def native_log(enabled: bool = True) -> Iterator[None]:
    """For the block, route what native code writes to stderr as the module doc says (nothing when not
    ``enabled``). Worker processes started inside the block inherit the pipe; the block must outlive them."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    console_fd = os.dup(2)
    read_fd, write_fd = os.pipe()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    console = os.fdopen(console_fd, "w", buffering=1, encoding="utf-8", errors="replace")
    python_stderr = sys.stderr
    moved = [h for h in logging.getLogger().handlers
             if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is python_stderr]
    sys.stderr = console
    for handler in moved:
        handler.setStream(console)
    reader = threading.Thread(target=_pump, args=(read_fd, console), name="native-log", daemon=True)
    reader.start()
    try:
        yield
    finally:
        os.dup2(console_fd, 2)  # drops this process's write end: the reader ends once the workers' are gone
        reader.join(timeout=10)
        for handler in moved:
            handler.setStream(python_stderr)
        sys.stderr = python_stderr
        if not reader.is_alive():
            console.close()
