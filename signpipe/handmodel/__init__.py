"""The hand model layer (DESIGN §5): MANO or signpipe's open MANO-format hand, and its camera.

>>> from signpipe.handmodel import HandModel
>>> out = HandModel("right")(theta, beta, camera)   # out.joints3d (..., 21, 3), out.joints2d (..., 21, 2)

Names are imported on first use, so ``signpipe --help`` does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "HandModel": "layer", "HandOutput": "layer", "hand_model_data": "layer",
    "CAMERA_DIM": "camera", "apply_camera": "camera", "camera_rotation": "camera",
    "camera_scale": "camera", "make_camera": "camera",
    "rotation_from_6d": "camera", "rotation_to_6d": "camera", "weak_perspective_project": "camera",
    "NUM_BETAS": "defaults", "NUM_PCA": "defaults", "PAPER_NUM_PCA": "defaults",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
