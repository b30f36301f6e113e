"""Defaults of the hand model, importable without torch (the command line builds its help from them)."""

from __future__ import annotations

from pathlib import Path

PAPER_NUM_PCA = {"signbert": 25, "hma": 6}
"""Pose PCA coefficients theta per paper: SignBERT theta in R^25 (eq. 2), HMA theta in R^6 (eq. 1)."""
NUM_PCA = PAPER_NUM_PCA["signbert"]
NUM_BETAS = 10
"""Shape coefficients beta (both papers: beta in R^10)."""
SIDES = ("left", "right")

ASSET_PATH = Path(__file__).with_name("open_hand.npz")
"""The shipped open hand asset."""
DEFAULT_SEED = 0
"""Seed of the articulation sampling that the shipped asset was built with."""

DEFAULT_VIEW = (180.0, 0.0, 0.0)
"""Camera rotation (x, y, z Euler degrees) of ``show-hand``: palm towards the viewer, fingers up."""
