"""The hand model layer: (theta, beta, camera) -> 21 joints in 3D and their 2D projection.

Both papers decode a latent vector through MANO (SignBERT eq. 2-5, HMA eq. 1-5): pose PCA
coefficients theta, shape beta, and a weak-perspective camera. ``HandModel`` always runs
``smplx.MANO``; the model it runs is the licensed MANO when ``hand_model.mano_dir`` is set, else
signpipe's open hand (``asset.py``). The five fingertips are mesh vertices (MANO has 16 joints).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import smplx
import torch
from smplx.utils import Struct
from torch import Tensor, nn

from signpipe.handmodel.asset import load_asset
from signpipe.handmodel.camera import CAMERA_DIM, weak_perspective_project
from signpipe.handmodel.defaults import NUM_BETAS, NUM_PCA, SIDES
from signpipe.handmodel.mano import load_mano, mirror_model, to_hand_order


def hand_model_data(side: str, mano_dir: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The MANO-format model of one hand: licensed MANO from ``mano_dir``, else the open hand
    (stored as a right hand; the left is its mirror image)."""
    if side not in SIDES:
        raise ValueError(f"hand side must be one of {SIDES}, got {side!r}")
    if mano_dir:
        return load_mano(mano_dir, side)
    right = load_asset()
    return right if side == "right" else mirror_model(right)


@dataclass
class HandOutput:
    """Output of ``HandModel``; ``...`` is the leading shape of the inputs.

    joints3d: (..., 21, 3) joints in ``HAND_JOINT_NAMES`` order, model frame, wrist at the origin
    joints2d: (..., 21, 2) their weak-perspective projection ``c_s * Pi(c_r J3D) + c_o``
    vertices: (..., V, 3) the mesh, model frame, wrist at the origin
    """

    joints3d: Tensor
    joints2d: Tensor
    vertices: Tensor


class HandModel(nn.Module):
    """MANO as a layer: theta (..., num_pca), beta (..., 10), camera (..., 9) -> ``HandOutput``.

    theta are pose PCA coefficients around the mean pose (theta = 0 is the mean hand), beta the
    shape coefficients, camera the (..., 9) weak-perspective camera of ``camera.py``. The leading
    shapes broadcast. The global orientation of MANO stays zero: the camera rotation c_r turns the
    hand, about the wrist, since joints and vertices are made wrist-relative. Constant tensors are
    buffers, so the layer follows ``.to(device)``; everything is differentiable.
    """

    def __init__(self, side: str = "right", mano_dir: str | os.PathLike | None = None,
                 num_pca: int = NUM_PCA) -> None:
        super().__init__()
        model = hand_model_data(side, mano_dir)
        components = model["hands_components"]
        if not 1 <= num_pca <= len(components):
            raise ValueError(f"num_pca must be in 1..{len(components)}, got {num_pca}")
        self.side, self.num_pca, self.licensed = side, num_pca, bool(mano_dir)
        # smplx prints a warning for every model with 10 shape coefficients, which MANO always has.
        with contextlib.redirect_stdout(io.StringIO()):
            self.mano = smplx.MANO(
                model_path="", is_rhand=side == "right", data_struct=Struct(**model), use_pca=False,
                flat_hand_mean=False, num_betas=NUM_BETAS, create_global_orient=False,
                create_hand_pose=False, create_betas=False, create_transl=False,
            )
        self.register_buffer("pose_components", torch.tensor(components[:num_pca], dtype=torch.float32))
        self.register_buffer("tip_vertices", torch.as_tensor(model["tip_vertices"], dtype=torch.long))
        self.register_buffer("joint_order", torch.tensor(to_hand_order(), dtype=torch.long))

    @classmethod
    def from_config(cls, config: Mapping[str, Any], side: str) -> HandModel:
        """The layer configured by ``config["hand_model"]`` (keys ``mano_dir``, ``num_pca``)."""
        options = config.get("hand_model") or {}
        return cls(side, options.get("mano_dir"), options.get("num_pca") or NUM_PCA)

    @property
    def faces(self) -> Tensor:
        """(F, 3) triangles of the mesh."""
        return self.mano.faces_tensor

    def forward(self, theta: Tensor, beta: Tensor, camera: Tensor) -> HandOutput:
        """theta (..., num_pca), beta (..., 10), camera (..., 9) -> joints3d, joints2d, vertices."""
        for name, value, size in (("theta", theta, self.num_pca), ("beta", beta, NUM_BETAS),
                                  ("camera", camera, CAMERA_DIM)):
            if value.shape[-1] != size:
                raise ValueError(f"{name} must have {size} values in its last axis, got {tuple(value.shape)}")
        lead = torch.broadcast_shapes(theta.shape[:-1], beta.shape[:-1], camera.shape[:-1])
        theta, beta, camera = (v.expand(*lead, v.shape[-1]).reshape(-1, v.shape[-1])
                               for v in (theta, beta, camera))
        # theta is projected here, not by smplx, which treats 45 PCA coefficients as raw axis-angle.
        out = self.mano(betas=beta, global_orient=theta.new_zeros(len(theta), 3),
                        hand_pose=theta @ self.pose_components)
        joints = torch.cat([out.joints, out.vertices[:, self.tip_vertices]], dim=1)[:, self.joint_order]
        wrist = joints[:, :1]
        joints, vertices = joints - wrist, out.vertices - wrist
        return HandOutput(
            joints3d=joints.reshape(*lead, *joints.shape[1:]),
            joints2d=weak_perspective_project(joints, camera).reshape(*lead, -1, 2),
            vertices=vertices.reshape(*lead, *vertices.shape[1:]),
        )
