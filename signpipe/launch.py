"""Multi-GPU training jobs: a job that holds N GPUs runs its stage as N torchrun processes.

A cluster job asks for `gpus` GPUs (the rule's `gpu` resource); the stage's script calls
:func:`on_ranks`, which starts ``torchrun --standalone --nproc_per_node N`` on this node and
waits for it. Each rank calls the same stage function with the same arguments; `signpipe.train.fit`
reads torchrun's ``RANK``/``WORLD_SIZE`` and trains data-parallel (one GPU per rank). With one
process, or inside a rank already, the function is simply called.

On a workstation Snakemake runs as many ``gpu`` jobs at once as the profile declares GPUs
(``resources: gpu: N``); each job then claims GPUs no other job holds (:func:`claim_gpus`, a lock
file per GPU) and sees only those (``CUDA_VISIBLE_DEVICES``), so two GPUs run two jobs, not two
on ``cuda:0``. Under SLURM the scheduler has already given the job its GPUs.

    python -m signpipe.launch CALL   (what each rank runs: CALL is the pickled call on_ranks wrote)
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
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


GPU_LOCKS = "SIGNPIPE_GPU_LOCKS"
"""Environment variable naming the folder of the GPU lock files (default: one per user in the temp folder)."""
CLAIM_POLL_S = 5.0


def machine_gpus() -> list[str]:
    """The GPUs a job may use on this machine: ``CUDA_VISIBLE_DEVICES`` when set, else every GPU
    ``nvidia-smi`` lists (asking torch would fix CUDA's view of the devices before the job's is
    set); none without a driver."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d for d in visible.split(",") if d.strip() and d.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    listing = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True)
    return [str(i) for i, line in enumerate(listing.stdout.splitlines()) if line.startswith("GPU ")]


@contextlib.contextmanager
def claim_gpus(count: int, pool: Sequence[str] | None = None, lock_dir: str | os.PathLike | None = None,
               poll_s: float = CLAIM_POLL_S) -> Iterator[list[str]]:
    """Hold ``count`` GPUs of ``pool`` (default :func:`machine_gpus`) that no other job holds, and
    set ``CUDA_VISIBLE_DEVICES`` to them while the block runs (restored after).

    One lock file per GPU in ``lock_dir`` (``$SIGNPIPE_GPU_LOCKS``, else ``signpipe-gpus-<uid>`` in
    the temp folder); a lock ends with its process, so a killed job frees its GPUs. Waits while
    every GPU is held. No claim (the block runs as it is) for ``count`` 0, a machine without GPUs,
    or a SLURM job, whose GPUs the scheduler already chose.
    """
    pool = machine_gpus() if pool is None else list(pool)
    if count <= 0 or not pool or "SLURM_JOB_ID" in os.environ:
        yield pool[:count]
        return
    if count > len(pool):
        raise RuntimeError(f"the job asks for {count} GPUs and this machine has {len(pool)}: lower the stage's gpus")
    folder = Path(lock_dir or os.environ.get(GPU_LOCKS) or Path(tempfile.gettempdir()) / f"signpipe-gpus-{os.getuid()}")
    folder.mkdir(parents=True, exist_ok=True)
    held: list[tuple[str, Any]] = []
    try:
        while len(held) < count:
            for gpu in pool:
                if len(held) == count or gpu in (g for g, _ in held):
                    continue
                handle = open(folder / f"gpu{gpu}.lock", "w")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held.append((gpu, handle))
                except BlockingIOError:
                    handle.close()
            if len(held) < count:
                time.sleep(poll_s)
        gpus = [gpu for gpu, _ in held]
        before = os.environ.get("CUDA_VISIBLE_DEVICES")
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        log.info("GPUs %s (CUDA_VISIBLE_DEVICES) for this job", ",".join(gpus))
        try:
            yield gpus
        finally:
            if before is None:
                os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            else:
                os.environ["CUDA_VISIBLE_DEVICES"] = before
    finally:
        for _, handle in held:
            handle.close()  # closing the file releases its lock


def on_ranks(target: str, processes: int, *args: Any, **kwargs: Any) -> Any:
    """Call ``target`` ("module:function") with the arguments, as ``processes`` torchrun ranks.

    The job first claims ``processes`` GPUs (:func:`claim_gpus`; none on a machine without).
    ``processes`` <= 1, or a call from inside a torchrun rank: a plain call, its result returned.
    Otherwise the ranks run in child processes on this node (one per GPU the job holds; on CPU,
    gloo) and None is returned; a rank that fails fails the call with torchrun's exit code. A
    ``threads`` keyword (the job's CPU threads) is shared among the ranks.
    """
    if "WORLD_SIZE" in os.environ:
        return _resolve(target)(*args, **kwargs)
    with claim_gpus(processes):
        return _run_ranks(target, processes, *args, **kwargs)


def _run_ranks(target: str, processes: int, *args: Any, **kwargs: Any) -> Any:
    if processes <= 1:
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
