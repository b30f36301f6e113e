"""NMFs-CSL (GLE-Net §3), read by the ``folder`` adapter: its class subsets as files for the tables.

The corpus has 1,067 Chinese sign words, each performed 3 times by 10 signers (32,010 videos).
Its first 610 labels are the *confusing* words, pairs that share the hands and differ only in
non-manual features (face, mouth, head); the other 457 are *normal*. GLE-Net's Table 5 reports
top-k on all test videos and on each subset. ``signpipe nmfs-subsets OUT_DIR`` writes the two
label lists that ``fusion.subsets`` takes (docs/datasets.md shows the whole config).

Labels are the ``folder`` adapter's: the position of a class in the ``classes`` file, else in the
sorted folder names. The subsets are right only when that order is the corpus's own label
order (class 0 first), which sorted zero-padded folder names give.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

NUM_CLASSES = 1067
"""Words of NMFs-CSL (§3)."""
CONFUSING = 610
"""The confusing words are labels 0 .. CONFUSING - 1 (§3: 610 NMF-aware confusing words)."""
SUBSET_FILES = {"confusing": "confusing.txt", "normal": "normal.txt"}


def subset_labels(num_classes: int = NUM_CLASSES, confusing: int = CONFUSING) -> dict[str, range]:
    """``{"confusing": 0..confusing-1, "normal": confusing..num_classes-1}``."""
    if not 0 < confusing < num_classes:
        raise ValueError(f"--confusing {confusing}: needs 0 < confusing < classes ({num_classes})")
    return {"confusing": range(confusing), "normal": range(confusing, num_classes)}


def write_subsets(out_dir: str | os.PathLike, num_classes: int = NUM_CLASSES,
                  confusing: int = CONFUSING) -> dict[str, Path]:
    """Write ``confusing.txt`` and ``normal.txt`` (one label per line, a ``#`` header saying
    what they are) into ``out_dir``; returns their paths by subset name."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, labels in subset_labels(num_classes, confusing).items():
        path = out / SUBSET_FILES[name]
        header = (f"# NMFs-CSL {name} words: labels {labels.start}-{labels.stop - 1} of {num_classes} "
                  f"(GLE-Net, TOMM 2021, §3); written by `signpipe nmfs-subsets`\n")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(header + "".join(f"{label}\n" for label in labels))
        tmp.replace(path)
        paths[name] = path
    return paths


def _command(args: argparse.Namespace) -> None:
    paths = write_subsets(args.out, args.classes, args.confusing)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print("fusion.subsets.<dataset>: {" + ", ".join(f"{name}: {path}" for name, path in paths.items()) + "}")


def register(sub: argparse._SubParsersAction) -> None:
    """The ``nmfs-subsets`` subcommand."""
    parser = sub.add_parser(
        "nmfs-subsets", help="write NMFs-CSL's confusing / normal class lists for fusion.subsets",
        description="Write confusing.txt (labels 0..confusing-1) and normal.txt (the rest), one label "
        "per line, as GLE-Net's NMFs-CSL subsets (Table 5); point fusion.subsets at them.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("out", help="folder to write confusing.txt and normal.txt into")
    parser.add_argument("--classes", type=int, default=NUM_CLASSES, help="number of classes")
    parser.add_argument("--confusing", type=int, default=CONFUSING, help="the first this many labels are confusing")
    parser.set_defaults(func=_command)
