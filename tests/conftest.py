"""Shared fixtures: the real data beside the repo (../shared/data) and small generated videos."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SIGNPIPE_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The SLURM file first, then the other files holding a ``slow`` test, the rest in their order:
    under ``make test``'s parallel workers (xdist, one file per worker at a time, each worker handed
    two files ahead) the minutes-long runs start at once and overlap the many short tests instead
    of one ending the run alone; the SLURM file, mostly waiting on its daemons, is the longest."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path.name != "test_slurm.py", item.path not in slow))


def benchmark(name: str) -> ModuleType:
    """A module of benchmarks/ loaded by its path: putting that folder on sys.path would shadow
    test packages of the same name (benchmarks/slurm.py and tests/slurm/)."""
    path = REPO / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"benchmarks_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def repo_env() -> dict[str, str]:
    """Environment for a Python subprocess that must import this checkout's signpipe."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real clips, the real WLASL index); tests that need it skip without it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (set SIGNPIPE_SHARED_DATA)")
    return SHARED_DATA


def write_video(path: Path, frames: int = 12, width: int = 96, height: int = 64, fps: int = 25,
                faststart: bool = False) -> Path:
    """An H.264 MP4 whose frame i shows a bright bar at column 4*i (so frame order is checkable).

    ``faststart`` puts the header first, as web videos do, so a cut file still opens.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            image = np.full((height, width, 3), 40, np.uint8)
            x = (i * 4) % (width - 8)
            image[:, x:x + 8] = 230
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
