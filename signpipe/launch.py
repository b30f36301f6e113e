"""Multi-GPU training jobs: a job that holds N GPUs runs its stage as N torchrun processes.

A cluster job asks for `gpus` GPUs (the rule's `gpu` resource); the stage's script calls
:func:`on_ranks`, which starts ``torchrun --standalone --nproc_per_node N`` on this node and
waits for it. Each rank calls the same stage function with the same arguments; `signpipe.train.fit`
reads torchrun's ``RANK``/``WORLD_SIZE`` and trains data-parallel (one GPU per rank). With one
process, or inside a rank already, the function is simply called.

    python -m signpipe.launch CALL   (what each rank runs: CALL is the pickled call on_ranks wrote)
"""

from __future__ import annotations

import importlib
import logging
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from signpipe.logs import log_to

log = logging.getLogger(__name__)


def _resolve(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def _job_log() -> str | None:
    """The file the root logger writes to (the last one `log_to` added): each rank appends to it."""
    files = [handler.baseFilename for handler in logging.getLogger().handlers
             if isinstance(handler, logging.FileHandler)]
    return files[-1] if files else None


def on_ranks(target: str, processes: int, *args: Any, **kwargs: Any) -> Any:
    """Call ``target`` ("module:function") with the arguments, as ``processes`` torchrun ranks.

    ``processes`` <= 1, or a call from inside a torchrun rank: a plain call, its result returned.
    Otherwise the ranks run in child processes on this node (one per GPU the job holds; on CPU,
    gloo) and None is returned; a rank that fails fails the call with torchrun's exit code. A
    ``threads`` keyword (the job's CPU threads) is shared among the ranks.
    """
    if processes <= 1 or "WORLD_SIZE" in os.environ:
        return _resolve(target)(*args, **kwargs)
    if kwargs.get("threads"):
        kwargs = {**kwargs, "threads": max(1, int(kwargs["threads"]) // processes)}
    with tempfile.TemporaryDirectory(prefix="signpipe-ranks-") as tmp:
        call = Path(tmp) / "call.pkl"
        with open(call, "wb") as f:  # written and read by this job only: a private folder
            pickle.dump({"target": target, "args": args, "kwargs": kwargs, "log": _job_log()}, f)
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", "-m", "signpipe.launch", str(call)]
        log.info("%s on %d ranks: %s", target, processes, " ".join(command))
        status = subprocess.run(command).returncode
    if status != 0:
        raise RuntimeError(f"{target} on {processes} ranks: torchrun exited with status {status} (each rank's "
                           "error is in the log above)")
    return None


def _rank_main(call_file: str) -> None:
    with open(call_file, "rb") as f:
        call = pickle.load(f)
    rank = os.environ.get("RANK", "?")
    if call["log"] is None:
        _resolve(call["target"])(*call["args"], **call["kwargs"])
        return
    with log_to(call["log"], append=True) as root:
        for handler in root.handlers:
            handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s rank {rank} %(name)s: %(message)s"))
        _resolve(call["target"])(*call["args"], **call["kwargs"])


if __name__ == "__main__":
    _rank_main(sys.argv[1])
