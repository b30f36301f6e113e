"""NMFs-CSL (GLE-Net §3), read by the ``folder`` adapter: its class subsets and split for the config.

The corpus has 1,067 Chinese sign words, each performed 3 times by 10 signers (32,010 videos).
Its first 610 labels are the *confusing* words, pairs that share the hands and differ only in
non-manual features (face, mouth, head); the other 457 are *normal*. GLE-Net's Table 5 reports
top-k on all test videos and on each subset. ``signpipe nmfs-subsets OUT_DIR`` writes the two
label lists that ``fusion.subsets`` takes (docs/datasets.md shows the whole config).

The split is signer-independent, 8 signers for training and 2 for test (§5.1), so 25,608 and
6,402 videos; the paper does not name the signers. ``signpipe nmfs-split OUT_DIR`` writes the
``folder`` adapter's ``splits`` from the train and test lists shipped with the corpus (the
signer of each listed file read with the adapter's ``pattern``), or from test signers given.

Labels are the ``folder`` adapter's: the position of a class in the ``classes`` file, else in the
sorted folder names. The subsets are right only when that order is the corpus's own label
order (class 0 first); ``nmfs-split`` writes that ``classes`` file from a list that carries labels.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

NUM_CLASSES = 1067
"""Words of NMFs-CSL (§3)."""
CONFUSING = 610
"""The confusing words are labels 0 .. CONFUSING - 1 (§3: 610 NMF-aware confusing words)."""
SUBSET_FILES = {"confusing": "confusing.txt", "normal": "normal.txt"}
SPLIT_SIGNERS = {"train": 8, "test": 2}
"""Signers per split (§5.1); with 3 repetitions of every word, 25,608 train and 6,402 test videos."""
REPEATS = 3
"""Repetitions of every word by every signer (§3)."""


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


def read_list(path: str | os.PathLike, pattern: re.Pattern) -> list[tuple[str, str, int | None]]:
    """(class folder, signer, label or None) of each line ``<class folder>/.../<file> [label]`` of a
    train or test list; the signer is ``pattern``'s group ``signer`` on the file name without extension."""
    rows, unmatched = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if not fields:
            continue
        name = PurePosixPath(fields[0].replace("\\", "/"))
        match = pattern.match(name.stem)
        if match is None:
            unmatched.append(fields[0])
            continue
        rows.append((name.parts[0], match["signer"], int(fields[1]) if len(fields) > 1 else None))
    if unmatched:
        raise ValueError(f"{path}: --pattern {pattern.pattern!r} does not match {len(unmatched)} file names, "
                         f"e.g. {', '.join(unmatched[:3])}")
    return rows


def classes_in_label_order(rows: Sequence[tuple[str, str, int | None]]) -> list[str] | None:
    """The class folders ordered by the labels a list gives them (0- or 1-based), or None without
    labels; raises ValueError when a folder has two labels or the labels leave gaps."""
    labelled = {(folder, label) for folder, _, label in rows if label is not None}
    if not labelled:
        return None
    label_of: dict[str, int] = {}
    for folder, label in sorted(labelled):
        if label_of.setdefault(folder, label) != label:
            raise ValueError(f"class folder {folder!r} has labels {label_of[folder]} and {label}")
    order = sorted(label_of, key=label_of.get)
    first = min(label_of.values())
    if [label_of[folder] - first for folder in order] != list(range(len(order))):
        raise ValueError(f"the labels of the {len(order)} class folders are not consecutive from {first}")
    return order


def split_config(lists: Sequence[str | os.PathLike] | None = None, pattern: str | None = None,
                 test: Sequence[str] = (), val: Sequence[str] = ()) -> tuple[dict, list[str], list[str] | None]:
    """The ``folder`` adapter's split keys, notes on how they compare with §5.1, and the class
    folders in label order (None when unknown).

    From ``lists`` (the corpus's train and test lists, with ``pattern``): the signers of each; a
    signer in both is an error, since the split would not be by signer. Else from ``test``: those
    signers are test, every other signer train (``default_split``). ``val`` signers move from train
    to val (the paper has none; the plateau schedule then decays on validation loss).
    """
    from signpipe.datasets.folder import name_pattern

    if bool(lists) == bool(test):
        raise ValueError("give either --lists TRAIN TEST (the corpus's own lists) or --test SIGNER ...")
    notes, classes = [], None
    if lists:
        regex = name_pattern({"pattern": pattern}, "nmfs-split")   # --pattern, checked as the adapter checks it
        rows = {split: read_list(path, regex) for split, path in zip(("train", "test"), lists)}
        signers = {split: sorted({signer for _, signer, _ in split_rows}) for split, split_rows in rows.items()}
        both = sorted(set(signers["train"]) & set(signers["test"]))
        if both:
            raise ValueError(f"signers {', '.join(both)} are in both lists: these lists do not split by signer "
                             f"(check --pattern)")
        for split, split_rows in rows.items():
            expected = SPLIT_SIGNERS[split] * REPEATS * NUM_CLASSES
            if (len(signers[split]), len(split_rows)) != (SPLIT_SIGNERS[split], expected):
                notes.append(f"{split}: {len(signers[split])} signers, {len(split_rows)} videos; "
                             f"the paper has {SPLIT_SIGNERS[split]} signers, {expected} videos")
        classes = classes_in_label_order(rows["train"] + rows["test"])
        splits = {"train": signers["train"], "test": signers["test"]}
        extra = {}
    else:
        if len(test) != SPLIT_SIGNERS["test"]:
            notes.append(f"{len(test)} test signers; the paper has {SPLIT_SIGNERS['test']}")
        splits, extra = {"test": sorted(map(str, test))}, {"default_split": "train"}
    val = sorted(map(str, val))
    wrong = sorted(set(val) - set(splits["train"])) if lists else sorted(set(val) & set(splits["test"]))
    if wrong:
        raise ValueError(f"--val {', '.join(wrong)}: " + ("not training signers of the lists" if lists
                                                          else "already test signers"))
    if val:
        splits["val"] = val
        if lists:
            splits["train"] = [signer for signer in splits["train"] if signer not in val]
    return {"splits": splits, **extra}, notes, classes


def write_split(out_dir: str | os.PathLike, lists: Sequence[str | os.PathLike] | None = None,
                pattern: str | None = None, test: Sequence[str] = (), val: Sequence[str] = ()
                ) -> tuple[dict[str, Path], list[str]]:
    """Write ``split.yaml`` (the adapter's ``splits`` and, from test signers, ``default_split``) and,
    when the lists carry labels, ``classes.txt`` (class folders in label order) into ``out_dir``;
    returns their paths and the notes of :func:`split_config`."""
    import yaml

    keys, notes, classes = split_config(lists, pattern, test, val)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    texts = {"split": ("split.yaml", yaml.safe_dump(keys, default_flow_style=None, sort_keys=False))}
    if classes is not None:
        texts["classes"] = ("classes.txt", "".join(f"{folder}\n" for folder in classes))
    paths = {}
    for name, (file, text) in texts.items():
        path = out / file
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        paths[name] = path
    return paths, notes


def _command(args: argparse.Namespace) -> None:
    paths = write_subsets(args.out, args.classes, args.confusing)
    for name, path in paths.items():
        print(f"{name}: {path}")
    print("fusion.subsets.<dataset>: {" + ", ".join(f"{name}: {path}" for name, path in paths.items()) + "}")


def _split_command(args: argparse.Namespace) -> None:
    paths, notes = write_split(args.out, args.lists, args.pattern, args.test or (), args.val or ())
    for note in notes:
        print(f"note: {note}")
    print(f"datasets.<dataset>: add the keys of {paths['split']}:")
    print(paths["split"].read_text(encoding="utf-8"), end="")
    if "classes" in paths:
        print(f"classes: {paths['classes']}")


def register(sub: argparse._SubParsersAction) -> None:
    """The ``nmfs-subsets`` and ``nmfs-split`` subcommands."""
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
    split = sub.add_parser(
        "nmfs-split", help="write NMFs-CSL's signer split (and class order) for the folder adapter",
        description="Write split.yaml, the folder adapter's splits for NMFs-CSL: from the train and test "
        "lists shipped with the corpus (--lists, signers read with --pattern; then also classes.txt when the "
        "lists carry labels), or from the test signers (--test; the others train). The paper: 8 train, 2 test "
        "signers, not named.",
    )
    split.add_argument("out", help="folder to write split.yaml (and classes.txt) into")
    split.add_argument("--lists", nargs=2, metavar=("TRAIN", "TEST"),
                       help="the corpus's train and test lists, one '<class folder>/.../<file> [label]' a line")
    split.add_argument("--pattern", help="the folder adapter's pattern: a regex with (?P<signer>...) matched "
                       "against each listed file name without extension")
    split.add_argument("--test", nargs="+", metavar="SIGNER", help="the test signers (the others train)")
    split.add_argument("--val", nargs="+", metavar="SIGNER", help="training signers to hold out for validation")
    split.set_defaults(func=_split_command)
