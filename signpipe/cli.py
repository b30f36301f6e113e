"""The `signpipe` command: tools around the pipeline's artifacts (the pipeline itself runs under Snakemake)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import signpipe

EPILOG = """\
The pipeline itself runs with Snakemake from the repository root:
  snakemake --cores all                     run every stage for the datasets in config.yaml
  snakemake -n                              show what would run
  snakemake --cores all upto_hands         every dataset up to one stage (upto_decode, upto_pose, ...)
  snakemake --cores all --forcerun decode   redo one stage and what depends on it
See README.md and docs/ for datasets, the HDF5 schema and backends."""


def _synth(args: argparse.Namespace) -> None:
    from signpipe.synth import make_corpus

    corpus = make_corpus(
        args.out, num_classes=args.classes, signers=args.signers, repeats=args.repeats,
        frames=args.frames, width=args.width, height=args.height, fps=args.fps,
        val_signers=args.val_signers, test_signers=args.test_signers, seed=args.seed,
        workers=args.workers,
    )
    splits = corpus["split"].value_counts().to_dict()
    print(f"{len(corpus)} videos in {args.out} ({splits})")


def _inspect(args: argparse.Namespace) -> None:
    from signpipe.inspect import describe

    for path in args.files:
        print(describe(path))


def _export_keypoints(args: argparse.Namespace) -> None:
    from signpipe.keypoints.export import export_keypoints

    written = export_keypoints(args.shard, args.format, args.out, force=args.force)
    print(f"{len(written)} file(s) written to {args.out}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="signpipe", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"signpipe {signpipe.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    synth = sub.add_parser(
        "synth", help="write a synthetic ISLR corpus (MP4s + 133-keypoint sidecars)",
        description="Write a deterministic synthetic sign corpus: a drawn signer whose classes are "
        "two-hand trajectories and hand shapes, some class pairs differing only in the mouth. "
        "Splits are signer-independent. This is the pipeline's embedded demo.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    synth.add_argument("out", help="output folder (videos/, keypoints/, corpus.csv, classes.csv)")
    synth.add_argument("--classes", type=int, default=20, help="number of classes")
    synth.add_argument("--signers", type=int, default=8, help="number of signers")
    synth.add_argument("--repeats", type=int, default=3, help="videos per signer and class")
    synth.add_argument("--frames", type=int, default=32, help="frames per video (about)")
    synth.add_argument("--width", type=int, default=256)
    synth.add_argument("--height", type=int, default=192)
    synth.add_argument("--fps", type=float, default=25.0)
    synth.add_argument("--val-signers", type=int, default=1, help="signers held out for validation")
    synth.add_argument("--test-signers", type=int, default=1, help="signers held out for test")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=1, help="processes")
    synth.set_defaults(func=_synth)

    inspect = sub.add_parser(
        "inspect", help="print the tree, attrs and per-array stats of HDF5 artifacts",
        description="Print what a signpipe HDF5 file holds: its schema and provenance attrs, the "
        "number of videos per split, and every array with shape, dtype, chunking and stats.",
    )
    inspect.add_argument("files", nargs="+", help="HDF5 files (e.g. results/demo/frames/0.h5)")
    inspect.set_defaults(func=_inspect)

    export = sub.add_parser("export", help="write pipeline artifacts in other tools' formats",
                            description="Write pipeline artifacts in other tools' formats.")
    export_sub = export.add_subparsers(dest="what", required=True, metavar="WHAT")
    keypoints = export_sub.add_parser(
        "keypoints", help="a keypoints shard as .pose files, a pyskl pickle or .npz files",
        description="Write the 133 COCO-WholeBody keypoints of every video of a keypoints shard "
        "(results/<dataset>/keypoints/<shard>.h5) for other tools. pose: one <video_id>.pose per "
        "video in OUT (pose-format, COCO-WholeBody components BODY/FACE/LEFT_HAND/RIGHT_HAND, "
        "missing points masked). pyskl: one pickle OUT with {split: {name: [ids]}, annotations: "
        "[{frame_dir, label, img_shape, keypoint (1,T,133,2), keypoint_score (1,T,133), ...}]}, "
        "splits and labels from the shard's index, for pyskl/MMAction2 skeleton training. npz: one "
        "<video_id>.npz per video in OUT with keypoints (T,133,3) = x, y, score, and fps/width/"
        "height when known (read back with the arrays adapter, layout coco-wholebody-133). "
        "Coordinates are pixels of the source video; score 0 marks a missing point.",
    )
    from signpipe.keypoints.export import EXPORT_FORMATS

    keypoints.add_argument("shard", metavar="SHARD", help="keypoints shard (HDF5)")
    keypoints.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="output format")
    keypoints.add_argument("out", metavar="OUT", help="output folder (pose, npz) or pickle file (pyskl)")
    keypoints.add_argument("--force", action="store_true",
                           help="overwrite output files that exist (never the input shard)")
    keypoints.set_defaults(func=_export_keypoints)

    from signpipe.handmodel.cli import register as register_handmodel

    register_handmodel(sub)

    from signpipe.show import register as register_show

    register_show(sub)

    from signpipe.predict import register as register_predict

    register_predict(sub)

    from signpipe.cost import register as register_cost

    register_cost(sub)

    from signpipe.datasets.nmfs_csl import register as register_nmfs_subsets

    register_nmfs_subsets(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `signpipe` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, ValueError, OSError) as err:
        print(f"signpipe {args.command}: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
