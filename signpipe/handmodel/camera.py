"""The weak-perspective camera of the hand-model-aware decoders (SignBERT eq. 5, HMA eq. 5).

``J2D = c_s * Pi(c_r J3D) + c_o`` with Pi the orthographic projection (keep x, y). A camera is
one (..., 9) tensor so a network can predict it with a linear layer:

- ``[..., 0:6]`` the rotation c_r in the 6D representation of Zhou et al. (CVPR 2019, "On the
  Continuity of Rotation Representations in Neural Networks"): two 3-vectors that Gram-Schmidt
  turns into the first two columns of the matrix. Every input gives a true rotation (orthonormal,
  det +1); a free 3x3 "rotation" regressed directly is not one (it can shear and mirror; an
  unofficial SignBERT+ does that). The camera stores the offset from the identity's 6D vector,
  so an all-zero camera (a fresh linear head) is the identity rotation rather than the
  degenerate zero vector.
- ``[..., 6:8]`` the translation c_o in image units.
- ``[..., 8]`` log c_s: the scale is ``exp`` of it, so it is always positive and gradient steps act
  on it relatively, the same whether the image unit is a pixel or a normalised crop.

Camera frame: image x right, y down, depth z away from the camera (OpenCV convention).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

CAMERA_DIM = 9
IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


def rotation_from_6d(x: Tensor) -> Tensor:
    """(..., 6) -> (..., 3, 3) rotation matrices; columns b1, b2, b1 x b2 by Gram-Schmidt."""
    a1, a2 = x[..., :3], x[..., 3:6]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    return torch.stack([b1, b2, torch.cross(b1, b2, dim=-1)], dim=-1)


def rotation_to_6d(rotation: Tensor) -> Tensor:
    """(..., 3, 3) rotation matrices -> (..., 6): their first two columns (inverse of rotation_from_6d)."""
    return torch.cat([rotation[..., :, 0], rotation[..., :, 1]], dim=-1)


def make_camera(rotation: Tensor, translation: Tensor, scale: Tensor) -> Tensor:
    """Pack (..., 3, 3) rotation, (..., 2) translation and (...) positive scale into a (..., 9) camera."""
    offset = rotation_to_6d(rotation) - rotation.new_tensor(IDENTITY_6D)
    return torch.cat([offset, translation, scale.log()[..., None]], dim=-1)


def camera_rotation(camera: Tensor) -> Tensor:
    """(..., 9) camera -> (..., 3, 3) rotation c_r."""
    return rotation_from_6d(camera[..., :6] + camera.new_tensor(IDENTITY_6D))


def camera_scale(camera: Tensor) -> Tensor:
    """(..., 9) camera -> (...) scale c_s = exp(camera[..., 8]) > 0."""
    return camera[..., 8].exp()


def apply_camera(points: Tensor, camera: Tensor) -> Tensor:
    """(..., N, 3) points, (..., 9) camera -> (..., N, 3): image x, y and scaled depth z.

    The first two coordinates are the weak-perspective projection; depth orders surfaces for drawing.
    """
    rotated = points @ camera_rotation(camera).transpose(-1, -2)
    image = camera_scale(camera)[..., None, None] * rotated
    return torch.cat([image[..., :2] + camera[..., None, 6:8], image[..., 2:]], dim=-1)


def weak_perspective_project(points: Tensor, camera: Tensor) -> Tensor:
    """(..., N, 3) points, (..., 9) camera -> (..., N, 2) image points ``c_s * Pi(c_r X) + c_o``."""
    return apply_camera(points, camera)[..., :2]
