"""``signpipe show-hand``: a PNG of the hand model, so a person can see the prior.

One panel shows the mesh and the 21 joints for given parameters; a grid beside it shows each of
the first pose PCA components at -2 and +2 (standard deviations for the open hand).
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from scipy.spatial.transform import Rotation

from signpipe.handmodel.camera import apply_camera, make_camera
from signpipe.handmodel.defaults import DEFAULT_VIEW, NUM_BETAS
from signpipe.handmodel.layer import HandModel
from signpipe.keypoints.layout import HAND_EDGES
from signpipe.figures import save_figure

FINGER_COLOURS = ("tab:red", "tab:orange", "tab:green", "tab:blue", "tab:purple")


def view_camera(rotation_deg: tuple[float, float, float] = DEFAULT_VIEW) -> torch.Tensor:
    """(9,) camera with the given rotation (x, y, z Euler degrees), unit scale, no translation."""
    matrix = torch.tensor(Rotation.from_euler("xyz", rotation_deg, degrees=True).as_matrix(), dtype=torch.float32)
    return make_camera(matrix, torch.zeros(2), torch.ones(()))


def draw_hand(ax: Axes, model: HandModel, theta: torch.Tensor, beta: torch.Tensor,
              camera: torch.Tensor, joints: bool = True) -> None:
    """Draw one hand into ``ax``: shaded triangles far to near, then bones and joints."""
    with torch.no_grad():
        out = model(theta, beta, camera)
        vertices = apply_camera(out.vertices, camera).numpy()
    triangles = vertices[model.faces.numpy()]
    normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
    shade = np.abs(normals[:, 2]) / np.maximum(np.linalg.norm(normals, axis=1), 1e-12)
    order = np.argsort(-triangles[:, :, 2].mean(axis=1))
    colours = matplotlib.colormaps["copper"](0.35 + 0.6 * shade[order])
    ax.add_collection(PolyCollection(triangles[order, :, :2], facecolors=colours, edgecolors="none"))
    if joints:
        points = out.joints2d.numpy()
        for a, b in HAND_EDGES:
            ax.plot(*points[[a, b]].T, color=FINGER_COLOURS[(b - 1) // 4], lw=1.5)
        ax.scatter(*points.T, s=8, color="k", zorder=3)
    ax.autoscale_view()
    ax.set_aspect("equal")
    ax.invert_yaxis()
    ax.axis("off")


def show_hand(model: HandModel, out: str | os.PathLike, theta: torch.Tensor | None = None,
              beta: torch.Tensor | None = None, rotation_deg: tuple[float, float, float] = DEFAULT_VIEW,
              components: int = 6) -> Path:
    """Write a PNG: the hand for (theta, beta) seen under ``rotation_deg``, and the first
    ``components`` pose PCA components at -2 / +2 with everything else at the mean."""
    theta = torch.zeros(model.num_pca) if theta is None else theta
    beta = torch.zeros(NUM_BETAS) if beta is None else beta
    camera = view_camera(rotation_deg)
    components = min(components, model.num_pca)
    columns = 1 + components
    fig = Figure(figsize=(3 * columns, 6))
    draw_hand(fig.add_subplot(1, columns, 1), model, theta, beta, camera)
    fig.axes[0].set_title(f"{model.side} hand ({'MANO' if model.licensed else 'open hand'})")
    for k in range(components):
        for row, value in enumerate((-2.0, 2.0)):
            ax = fig.add_subplot(2, columns, row * columns + k + 2)
            draw_hand(ax, model, torch.zeros(model.num_pca).index_fill(0, torch.tensor([k]), value),
                      beta, camera, joints=False)
            ax.set_title(f"theta[{k}] = {value:+.0f}", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, out)
