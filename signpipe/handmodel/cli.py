"""Command line of the hand model: ``signpipe handmodel build`` and ``signpipe show-hand``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from signpipe.handmodel.defaults import ASSET_PATH, DEFAULT_SEED, DEFAULT_VIEW, NUM_BETAS, NUM_PCA, SIDES


def _floats(text: str) -> list[float]:
    """Parse a comma-separated list of numbers such as ``1,-0.5,2``."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _padded(values: list[float] | None, size: int, name: str) -> list[float]:
    """The first values of a length-``size`` vector, the rest zero."""
    values = values or []
    if len(values) > size:
        raise SystemExit(f"--{name}: at most {size} values, got {len(values)}")
    return values + [0.0] * (size - len(values))


def build(args: argparse.Namespace) -> None:
    """``signpipe handmodel build``: regenerate the open hand asset."""
    import numpy as np

    from signpipe.handmodel.asset import build_asset, save_asset

    asset = build_asset(args.seed)
    path = save_asset(asset, args.out)
    explained = float(np.sum(asset["explained_variance"][:NUM_PCA]))
    print(f"{path}: {len(asset['v_template'])} vertices, {len(asset['f'])} faces, "
          f"{os.path.getsize(path) / 1024:.0f} KiB; first {NUM_PCA} pose components explain "
          f"{100 * explained:.1f}% of the sampled articulations (seed {args.seed})")


def show(args: argparse.Namespace) -> None:
    """``signpipe show-hand``: PNG of the hand for given parameters and of the first PCA components."""
    import torch

    from signpipe.handmodel.layer import HandModel
    from signpipe.handmodel.render import show_hand

    if len(args.rotation) != 3:
        raise SystemExit(f"--rotation: three angles x,y,z, got {len(args.rotation)}")
    theta = torch.tensor(_padded(args.theta, args.num_pca, "theta"))
    beta = torch.tensor(_padded(args.beta, NUM_BETAS, "beta"))
    model = HandModel(args.side, args.mano_dir, args.num_pca)
    path = show_hand(model, args.out, theta, beta, tuple(args.rotation), args.components)
    print(path)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``handmodel`` and ``show-hand`` subcommands to signpipe's command line."""
    handmodel = subparsers.add_parser(
        "handmodel", help="manage signpipe's open hand model asset",
        description="signpipe's open hand: a MANO-format hand built from anatomical proportions and "
                    "joint limits (not learned from scans), used when hand_model.mano_dir is not set.",
    )
    actions = handmodel.add_subparsers(dest="action", required=True, metavar="ACTION")
    build_parser = actions.add_parser(
        "build", help="regenerate the open hand asset",
        description="Rebuild the open hand (mesh, skinning, joint regressor, shape directions, pose "
                    "PCA from sampled articulations) deterministically from a seed and write it as .npz.",
    )
    build_parser.add_argument("--out", type=Path, default=ASSET_PATH,
                              help=f"where to write the asset (default: the shipped {ASSET_PATH.name})")
    build_parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                              help=f"seed of the articulation sampling (default {DEFAULT_SEED})")
    build_parser.set_defaults(func=build)

    show_parser = subparsers.add_parser(
        "show-hand", help="render the hand model to a PNG",
        description="Render the hand mesh and its 21 joints for the given parameters, with a grid of "
                    "the first pose PCA components at -2 and +2, so you can see the hand prior.",
    )
    show_parser.add_argument("--side", choices=SIDES, default="right", help="which hand (default right)")
    show_parser.add_argument("--mano-dir", default=None,
                             help="folder with the licensed MANO_RIGHT.pkl / MANO_LEFT.pkl "
                                  "(config key hand_model.mano_dir); default: signpipe's open hand")
    show_parser.add_argument("--num-pca", type=int, default=NUM_PCA,
                             help=f"pose PCA coefficients of the layer (default {NUM_PCA}, as SignBERT)")
    show_parser.add_argument("--theta", type=_floats, default=None, metavar="T0,T1,...",
                             help="first pose PCA coefficients, the rest 0 (default: all 0, the mean pose)")
    show_parser.add_argument("--beta", type=_floats, default=None, metavar="B0,B1,...",
                             help=f"first of the {NUM_BETAS} shape coefficients, the rest 0 (default: all 0)")
    show_parser.add_argument("--rotation", type=_floats, default=list(DEFAULT_VIEW), metavar="X,Y,Z",
                             help="camera rotation as x,y,z Euler angles in degrees "
                                  "(default 180,0,0: palm towards the viewer, fingers up)")
    show_parser.add_argument("--components", type=int, default=6,
                             help="how many pose PCA components to show in the grid (default 6, 0 for none)")
    show_parser.add_argument("--out", type=Path, default=Path("hand.png"), help="PNG to write (default hand.png)")
    show_parser.set_defaults(func=show)
