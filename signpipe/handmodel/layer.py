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
from smplx.lbs import batch_rigid_transform, batch_rodrigues
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
    vertices: (..., V, 3) the mesh, model frame, wrist at the origin; None when not asked for
    """

    joints3d: Tensor
    joints2d: Tensor
    vertices: Tensor | None


class HandModel(nn.Module):
    """MANO as a layer: theta (..., num_pca), beta (..., 10), camera (..., 9) -> ``HandOutput``.

    theta are pose PCA coefficients around the mean pose (theta = 0 is the mean hand), beta the
    shape coefficients, camera the (..., 9) weak-perspective camera of ``camera.py``. The leading
    shapes broadcast. The global orientation of MANO stays zero: the camera rotation c_r turns the
    hand, about the wrist, since joints and vertices are made wrist-relative. Constant tensors are
    buffers, so the layer follows ``.to(device)``; the layer has nothing to train and every
    output is differentiable in theta, beta and camera.
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
        # smplx still creates a ``body_pose`` parameter, which nothing here uses: frozen, it is no
        # parameter DistributedDataParallel waits a gradient for (it stopped at step 2), and its
        # checkpoint key stays.
        self.mano.requires_grad_(False)
        self.register_buffer("pose_components", torch.tensor(components[:num_pca], dtype=torch.float32))
        self.register_buffer("tip_vertices", torch.as_tensor(model["tip_vertices"], dtype=torch.long))
        self.register_buffer("joint_order", torch.tensor(to_hand_order(), dtype=torch.long))
        self._register_sparse_skinning()

    def _register_sparse_skinning(self) -> None:
        """Buffers for :meth:`_joints`: MANO restricted to its 16 joints and the 5 tip vertices.

        The joints are the regressor applied to the shaped template, which is linear in beta, so
        their template and shape directions are precomputed; the tips need only their own rows
        of the template, shape and pose directions and skinning weights.
        """
        mano, tips = self.mano, self.tip_vertices
        self.register_buffer("joint_template", mano.J_regressor @ mano.v_template)
        self.register_buffer("joint_shapedirs", torch.einsum("jv,vcl->jcl", mano.J_regressor, mano.shapedirs))
        self.register_buffer("tip_template", mano.v_template[tips])
        self.register_buffer("tip_shapedirs", mano.shapedirs[tips])
        posedirs = mano.posedirs.reshape(len(mano.posedirs), -1, 3)[:, tips]
        self.register_buffer("tip_posedirs", posedirs.reshape(len(posedirs), -1))
        self.register_buffer("tip_weights", mano.lbs_weights[tips])
        # The kinematic tree as a host array: smplx walks it joint by joint with Python indexing,
        # which on the GPU buffer waits for the GPU at every joint (15 times per call).
        self.parents = mano.parents.cpu().numpy().copy()

    @classmethod
    def from_config(cls, config: Mapping[str, Any], side: str) -> HandModel:
        """The layer configured by ``config["hand_model"]`` (keys ``mano_dir``, ``num_pca``)."""
        options = config.get("hand_model") or {}
        return cls(side, options.get("mano_dir"), options.get("num_pca") or NUM_PCA)

    @property
    def faces(self) -> Tensor:
        """(F, 3) triangles of the mesh."""
        return self.mano.faces_tensor

    def _joints(self, beta: Tensor, full_pose: Tensor) -> Tensor:
        """(B, 21, 3) MANO's 16 joints then the 5 tips, as ``smplx`` computes them, without the mesh.

        Skinning only what the joints need makes a pose-only forward pass (the decoders') about
        as cheap as the rest of the network; the tests hold it equal to the mesh path.
        """
        batch = len(beta)
        joints = self.joint_template + torch.einsum("bl,jcl->bjc", beta, self.joint_shapedirs)
        tips = self.tip_template + torch.einsum("bl,jcl->bjc", beta, self.tip_shapedirs)
        rotations = batch_rodrigues(full_pose.reshape(-1, 3)).reshape(batch, -1, 3, 3)
        pose_feature = (rotations[:, 1:] - torch.eye(3, dtype=beta.dtype, device=beta.device)).reshape(batch, -1)
        tips = tips + (pose_feature @ self.tip_posedirs).reshape(batch, -1, 3)
        posed, transforms = batch_rigid_transform(rotations, joints, self.parents, dtype=beta.dtype)
        skinning = torch.einsum("vj,bjrc->bvrc", self.tip_weights, transforms)
        tips = (skinning[..., :3, :3] @ tips[..., None]).squeeze(-1) + skinning[..., :3, 3]
        return torch.cat([posed, tips], dim=1)

    def forward(self, theta: Tensor, beta: Tensor, camera: Tensor, vertices: bool = True) -> HandOutput:
        """theta (..., num_pca), beta (..., 10), camera (..., 9) -> joints3d, joints2d, vertices.

        ``vertices=False`` skips the mesh (``HandOutput.vertices`` is None) and skins the joints
        alone: the same joints, far cheaper, for losses that only see joints.
        """
        for name, value, size in (("theta", theta, self.num_pca), ("beta", beta, NUM_BETAS),
                                  ("camera", camera, CAMERA_DIM)):
            if value.shape[-1] != size:
                raise ValueError(f"{name} must have {size} values in its last axis, got {tuple(value.shape)}")
        # Skinning chains 4x4 transforms down each finger: it runs in the layer's own precision
        # even inside a mixed-precision region, whatever the dtype of the network's outputs.
        with torch.autocast(theta.device.type, enabled=False):
            dtype = self.pose_components.dtype
            return self._run(theta.to(dtype), beta.to(dtype), camera.to(dtype), vertices)

    def _run(self, theta: Tensor, beta: Tensor, camera: Tensor, vertices: bool) -> HandOutput:
        lead = torch.broadcast_shapes(theta.shape[:-1], beta.shape[:-1], camera.shape[:-1])
        theta, beta, camera = (v.expand(*lead, v.shape[-1]).reshape(-1, v.shape[-1])
                               for v in (theta, beta, camera))
        # theta is projected here, not by smplx, which treats 45 PCA coefficients as raw axis-angle.
        hand_pose = theta @ self.pose_components
        mesh = None
        if vertices:
            out = self.mano(betas=beta, global_orient=theta.new_zeros(len(theta), 3), hand_pose=hand_pose)
            joints, mesh = torch.cat([out.joints, out.vertices[:, self.tip_vertices]], dim=1), out.vertices
        else:
            full_pose = torch.cat([theta.new_zeros(len(theta), 3), hand_pose], dim=1) + self.mano.pose_mean
            joints = self._joints(beta, full_pose)
        joints = joints[:, self.joint_order]
        wrist = joints[:, :1]
        joints = joints - wrist
        return HandOutput(
            joints3d=joints.reshape(*lead, *joints.shape[1:]),
            joints2d=weak_perspective_project(joints, camera).reshape(*lead, -1, 2),
            vertices=None if mesh is None else (mesh - wrist).reshape(*lead, *mesh.shape[1:]),
        )
