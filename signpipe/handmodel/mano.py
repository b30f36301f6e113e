"""The MANO model format: its joint order, fingertip vertices and the licensed pickles.

A model is a dict of numpy arrays with MANO's keys (``MODEL_KEYS``) plus ``tip_vertices``, the
five fingertip vertices in ``FINGERS`` order (MANO has 16 kinematic joints and no fingertips).
``smplx.MANO`` runs any such dict, whatever its vertex count.

The official ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl`` hold chumpy arrays. ``read_mano_pickle`` loads
them without chumpy: chumpy classes resolve to a stand-in that keeps their pickled state, whose
``x`` is the plain array. Only the classes these files need are resolved at all (a pickle can
otherwise run arbitrary code).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

from signpipe.keypoints.layout import FINGERS, HAND_JOINT_NAMES

MANO_JOINT_NAMES: tuple[str, ...] = ("wrist",) + tuple(
    f"{finger}{k}" for finger in ("index", "middle", "pinky", "ring", "thumb") for k in (1, 2, 3)
)
"""MANO's 16 kinematic joints in its own order; the names match ``HAND_JOINT_NAMES``
(thumb1 is the CMC joint, finger 1-3 are MCP, PIP, DIP)."""

MANO_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 0, 10, 11, 0, 13, 14)
"""Parent of each joint of ``MANO_JOINT_NAMES`` (the first row of ``kintree_table``)."""

MANO_FINGERTIPS: dict[str, int] = {"thumb": 734, "index": 333, "middle": 443, "ring": 555, "pinky": 678}
"""Fingertip vertices of the licensed 778-vertex mesh, as both papers pick them (HMA, SignBERT §3.2)."""

MANO_FILES: dict[str, str] = {"right": "MANO_RIGHT.pkl", "left": "MANO_LEFT.pkl"}

MODEL_KEYS: tuple[str, ...] = (
    "v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f",
    "hands_components", "hands_mean",
)
"""The arrays ``smplx.MANO`` reads from a model."""

AXIS_MIRROR = np.array([-1.0, 1.0, 1.0])
"""Mirroring across the y-z plane turns a right hand into a left one."""


def to_hand_order() -> list[int]:
    """Indices into [16 MANO joints, 5 tips in FINGERS order] that give the 21 ``HAND_JOINT_NAMES``."""
    names = list(MANO_JOINT_NAMES) + [f"{finger}4" for finger in FINGERS]
    return [names.index(name) for name in HAND_JOINT_NAMES]


class _ChumpyStandIn:
    """Takes the place of a chumpy object while unpickling; keeps its state (the array is ``x``)."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.state = state


SPARSE_FORMATS: tuple[str, ...] = ("csc", "csr", "coo")
"""Sparse formats a MANO pickle may hold (``J_regressor`` is a ``csc_matrix``)."""


class _MANOUnpickler(pickle.Unpickler):
    """Resolves only the constructors a MANO pickle needs: numpy arrays, the sparse matrix classes
    of ``SPARSE_FORMATS`` and chumpy objects (as stand-ins); no function with side effects."""

    ALLOWED = {
        (module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    } | {
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"), ("_codecs", "encode"),
    } | {(module, name) for module in ("__builtin__", "builtins") for name in ("object", "set", "frozenset")}
    SPARSE = {
        (module, f"{fmt}_{kind}") for fmt in SPARSE_FORMATS for kind in ("matrix", "array")
        for module in ("scipy.sparse", f"scipy.sparse.{fmt}", f"scipy.sparse._{fmt}")
    }
    """Sparse classes by every module path scipy has pickled them under (``scipy.sparse.csc`` before 1.8)."""

    def find_class(self, module: str, name: str) -> Any:
        if module.split(".")[0] == "chumpy":
            return _ChumpyStandIn
        if (module, name) in self.SPARSE:
            return getattr(scipy.sparse, name)
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"unexpected class {module}.{name} in a MANO pickle; only numpy arrays, "
                                     "sparse matrices and chumpy arrays are loaded (is it the licensed MANO file?)")


def _plain(value: Any, key: str, path: Path) -> np.ndarray:
    """A pickled value as a numpy array: chumpy stand-ins give their ``x``, sparse matrices densify."""
    if isinstance(value, _ChumpyStandIn):
        if "x" not in value.state:
            raise ValueError(f"{path}: {key} is a chumpy expression, not a stored array")
        return _plain(value.state["x"], key, path)
    if scipy.sparse.issparse(value):
        return np.asarray(value.todense())
    return np.asarray(value)


def read_mano_pickle(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The ``MODEL_KEYS`` arrays of a MANO pickle (Python 2 or 3, chumpy or plain), chumpy not needed."""
    path = Path(path)
    with open(path, "rb") as f:
        try:
            data = _MANOUnpickler(f, encoding="latin1").load()
        except pickle.UnpicklingError as error:
            raise pickle.UnpicklingError(f"{path}: {error}") from None
    missing = [key for key in MODEL_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path}: not a MANO model, keys missing: {missing}")
    return {key: _plain(data[key], key, path) for key in MODEL_KEYS}


def fix_left_shapedirs(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Undo the known sign bug of the official left ``shapedirs`` (smplx issue #48).

    The left template is the right one mirrored in x, but the released left ``shapedirs`` are a copy
    of the right ones, so the same beta gives a differently shaped left hand. When the left x-columns
    look like the right's (not their negation), they are negated; an already fixed file is kept.
    """
    x_left, x_right = left["shapedirs"][:, 0], right["shapedirs"][:, 0]
    if np.abs(x_left - x_right).sum() >= np.abs(x_left + x_right).sum():
        return left
    shapedirs = left["shapedirs"].copy()
    shapedirs[:, 0] *= -1
    return {**left, "shapedirs": shapedirs}


def mirror_model(model: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The mirror image (x -> -x) of a hand model: a right hand becomes a left one and back.

    Geometry flips x; a joint rotation R becomes M R M (M = diag(-1, 1, 1)), whose axis-angle is
    (wx, -wy, -wz), and a pose-blend feature (R - I)_ij changes sign by m_i m_j.
    """
    num_joints = len(model["kintree_table"][0])
    rotvec_sign = np.tile([1.0, -1.0, -1.0], num_joints - 1)
    feature_sign = np.tile(np.outer(AXIS_MIRROR, AXIS_MIRROR).ravel(), num_joints - 1)
    return {
        **model,
        "v_template": model["v_template"] * AXIS_MIRROR,
        "shapedirs": model["shapedirs"] * AXIS_MIRROR[:, None],
        "posedirs": model["posedirs"] * AXIS_MIRROR[:, None] * feature_sign,
        "f": model["f"][:, ::-1].copy(),
        "hands_components": model["hands_components"] * rotvec_sign,
        "hands_mean": model["hands_mean"] * rotvec_sign,
    }


def load_mano(mano_dir: str | os.PathLike, side: str) -> dict[str, np.ndarray]:
    """The licensed MANO model of one side from ``hand_model.mano_dir``, left shapedirs fixed.

    The left hand needs ``MANO_RIGHT.pkl`` too, to tell whether its file carries the shapedirs bug.
    """
    mano_dir = Path(mano_dir)
    needed = [MANO_FILES[side]] + (["MANO_RIGHT.pkl"] if side == "left" else [])
    missing = [name for name in needed if not (mano_dir / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"hand_model.mano_dir = {mano_dir}: missing {', '.join(missing)}. Put MANO_RIGHT.pkl and "
            "MANO_LEFT.pkl from the licensed MANO release (https://mano.is.tue.mpg.de, mano_v1_2/models/) "
            "in that folder, or unset hand_model.mano_dir to use signpipe's open hand."
        )
    model = read_mano_pickle(mano_dir / MANO_FILES[side])
    if side == "left":
        model = fix_left_shapedirs(model, read_mano_pickle(mano_dir / MANO_FILES["right"]))
    model["tip_vertices"] = np.array([MANO_FINGERTIPS[finger] for finger in FINGERS])
    return model
