"""Saving figures: every PNG signpipe draws is written atomically through :func:`save_figure`."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from signpipe.shards import atomic_path


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a matplotlib figure as PNG under a temporary name, then rename it onto ``path``
    (a killed job leaves the old picture or none); the figure is closed if pyplot made it."""
    with atomic_path(path, ".png") as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return Path(path)


def save_image(rgb: Any, path: str | os.PathLike) -> Path:
    """Write an RGB image (H, W, 3) uint8 as PNG, atomically like :func:`save_figure`."""
    import cv2

    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: cannot encode an image of shape {getattr(rgb, 'shape', None)} as PNG")
    with atomic_path(path, ".png") as tmp:
        Path(tmp).write_bytes(encoded.tobytes())
    return Path(path)
