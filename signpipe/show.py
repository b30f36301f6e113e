"""`signpipe show`: a PNG contact sheet of one video from any signpipe HDF5 artifact.

Given one shard, its siblings are found by the results layout
(``results/<ds>/{frames,keypoints,hands}/<shard>.h5``) and everything that exists is drawn for
evenly spaced frames: the stored frame with the 133 keypoints and both hand boxes, then the
left and the right hand crop with their 21-joint poses. A keypoint dataset has no frames and its
hands shards no crops: its skeletons and boxes are drawn on a blank canvas of the nominal frame
the keypoints shard records, without crop rows. Box outlines tell how a box was found:
thick where the hand was detected, thin where it was interpolated, red where it was
extrapolated from the arm. A glance shows whether extraction and cropping worked.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

from signpipe.figures import save_image
from signpipe.hands import BOX_SOURCES, DETECTED, INTERPOLATED, has_crops, read_crops
from signpipe.inspect import index_table, open_hdf5
from signpipe.keypoints import HAND_EDGES, HAND_SLICES, PARTS, skeleton_edges
from signpipe.keypoints.quality import DETECTION_THRESHOLD
from signpipe.names import video_file
from signpipe.shards import decode_jpeg

log = logging.getLogger(__name__)

STAGES = ("frames", "keypoints", "hands")
ARRAYS = {"frames": ("jpeg",), "keypoints": ("xy", "score"), "hands": ("pose", "box", "box_source")}
"""The arrays ``show`` reads from each stage's shard."""
CELL = 240
"""Width in pixels of one frame's column; crops are drawn CELL x CELL."""
HEADER = 76
"""Height of the text strip above the sheet (three lines)."""
LABEL = 20
"""Height of the strip under each row that names the frame or the hand."""
HAND_NAMES = ("left", "right")
HAND_COLOURS = ((255, 140, 0), (0, 170, 255))
"""RGB of the signer's (left, right) hand: orange, blue."""
BODY_COLOUR, FACE_COLOUR, EXTRAPOLATED_COLOUR = (255, 255, 255), (190, 190, 190), (230, 30, 30)
BACKDROP = (40, 40, 40)


def _stage(path: Path) -> str:
    """The stage of a signpipe shard from its ``schema`` attr ("signpipe/<stage>/<version>")."""
    with open_hdf5(path) as f:
        schema = str(f.attrs.get("schema", ""))
    parts = schema.split("/")
    if len(parts) != 3 or parts[0] != "signpipe" or parts[1] not in STAGES:
        raise ValueError(f"{path}: not a signpipe frames, keypoints or hands shard (schema {schema!r})")
    return parts[1]


def siblings(path: str | os.PathLike) -> dict[str, Path]:
    """The shards of the same dataset and shard number that exist, by stage.

    ``results/<ds>/keypoints/3.h5`` -> the existing ones of ``results/<ds>/{frames,keypoints,hands}/3.h5``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    found = {_stage(path): path}
    if path.parent.name in STAGES:
        for stage in STAGES:
            other = path.parent.parent / stage / path.name
            if stage not in found and other.is_file():
                found[stage] = other
    return {stage: found[stage] for stage in STAGES if stage in found}


def _entry(f: h5py.File, video_id: str) -> Mapping[str, Any] | None:
    index = index_table(f)
    rows = index[index["video_id"] == video_id]
    return None if rows.empty else rows.iloc[0].to_dict()


def _missing(path: Path, video_id: str) -> ValueError:
    with open_hdf5(path) as f:
        ids = index_table(f)["video_id"].tolist()
    shown = ", ".join(ids[:8]) + (", ..." if len(ids) > 8 else "")
    return ValueError(f"{path}: no video {video_id!r}; it holds {len(ids)} videos: {shown or 'none'}")


def _load(files: dict[str, Path], video_id: str, count: int, named: Path) -> dict[str, Any]:
    """What the sheet draws, for ``count`` evenly spaced frames of the video (``named``: the file the user gave)."""
    data: dict[str, Any] = {"absent": []}
    for stage, path in files.items():
        with open_hdf5(path) as f:
            entry = _entry(f, video_id)
            if entry is None:
                data["absent"].append(stage)
                continue
            absent = [name for name in ARRAYS[stage] if name not in f]
            if absent:
                raise ValueError(f"{path}: a {stage} shard without {', '.join(absent)} (it holds "
                                 f"{', '.join(f) or 'nothing'}); damaged, or written by another tool?")
            if "times" not in data:
                length = int(entry["length"])
                data["entry"], data["length"] = entry, length
                data["times"] = np.unique(np.linspace(0, length - 1, count).round().astype(int)) if length else []
            start = int(entry["start"])
            rows = [start + t for t in data["times"]]  # siblings hold the same frames (DESIGN §3)
            if stage == "frames":
                data["images"] = [decode_jpeg(f["jpeg"][r]) for r in rows]
                data["source_size"] = (int(entry["src_width"]), int(entry["src_height"]))
            elif stage == "keypoints":
                data["xy"], data["score"] = f["xy"][rows], f["score"][rows]
                if "src_width" in entry:  # imported keypoints: the nominal frame
                    data.setdefault("source_size", (int(entry["src_width"]), int(entry["src_height"])))
            else:
                if has_crops(f):
                    data["crops"] = [read_crops(f["crop"], slice(r, r + 1))[0] for r in rows]
                data["pose"], data["box"], data["box_source"] = f["pose"][rows], f["box"][rows], f["box_source"][rows]
                data["crop_size"] = json.loads(f.attrs["config"])["crop_size"]
                data.setdefault("source_size", (int(entry["src_width"]), int(entry["src_height"])))
                sources = f["box_source"][start:start + int(entry["length"])]
                data["box_counts"] = [np.bincount(sources[:, hand], minlength=len(BOX_SOURCES)) for hand in range(2)]
    if "times" not in data:
        raise _missing(named, video_id)
    return data


def _points(xy: np.ndarray, scale: float) -> np.ndarray:
    return np.round(xy * scale * 16).astype(np.int32)


def _draw_skeleton(canvas: np.ndarray, xy: np.ndarray, score: np.ndarray, scale: float) -> None:
    """The 133 keypoints (source pixels) of one frame on ``canvas``, scaled by ``scale``."""
    seen = score > DETECTION_THRESHOLD
    p = _points(xy, scale)
    colour_of = np.array([BODY_COLOUR] * len(xy))
    colour_of[PARTS["face"]] = FACE_COLOUR
    for hand, part in enumerate(HAND_SLICES):
        colour_of[part] = HAND_COLOURS[hand]
    for a, b in skeleton_edges():
        if seen[a] and seen[b]:
            cv2.line(canvas, tuple(p[a]), tuple(p[b]), tuple(int(c) for c in colour_of[b]), 1, cv2.LINE_AA, 4)
    for k in np.flatnonzero(seen):
        radius = 1 if PARTS["face"].start <= k < PARTS["face"].stop else 2
        cv2.circle(canvas, tuple(p[k]), radius * 16, tuple(int(c) for c in colour_of[k]), -1, cv2.LINE_AA, 4)


def _draw_box(canvas: np.ndarray, box: np.ndarray, source: int, hand: int, scale: float) -> None:
    x0, y0, x1, y1 = _points(box, scale)
    colour = HAND_COLOURS[hand] if source in (DETECTED, INTERPOLATED) else EXTRAPOLATED_COLOUR
    cv2.rectangle(canvas, (x0, y0), (x1, y1), colour, 2 if source == DETECTED else 1, cv2.LINE_AA, 4)
    cv2.putText(canvas, "LR"[hand], (int(x0 / 16) + 3, int(y0 / 16) + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                colour, 1, cv2.LINE_AA)


def _text(canvas: np.ndarray, text: str, x: int, y: int, colour=(230, 230, 230), size: float = 0.45) -> None:
    cv2.putText(canvas, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, size, colour, 1, cv2.LINE_AA)


def _frame_cell(data: dict[str, Any], i: int, height: int) -> np.ndarray:
    """One frame (or a blank of the source's shape) with keypoints and boxes, CELL wide."""
    if "images" in data:
        cell = cv2.resize(data["images"][i], (CELL, height), interpolation=cv2.INTER_AREA)
    else:
        cell = np.full((height, CELL, 3), BACKDROP, np.uint8)
    scale = CELL / data["source_size"][0]
    if "xy" in data:
        _draw_skeleton(cell, data["xy"][i], data["score"][i], scale)
    if "box" in data:
        for hand in range(2):
            _draw_box(cell, data["box"][i, hand], int(data["box_source"][i, hand]), hand, scale)
    return cell


def _crop_cell(data: dict[str, Any], i: int, hand: int) -> np.ndarray:
    """One hand's crop with its pose (crop pixels), CELL x CELL, outlined by how its box was found."""
    cell = cv2.resize(data["crops"][i][hand], (CELL, CELL), interpolation=cv2.INTER_LINEAR)
    pose = data["pose"][i, hand]
    seen = pose[:, 2] > DETECTION_THRESHOLD
    p = _points(pose[:, :2], CELL / data["crop_size"])
    for a, b in HAND_EDGES:
        if seen[a] and seen[b]:
            cv2.line(cell, tuple(p[a]), tuple(p[b]), HAND_COLOURS[hand], 2, cv2.LINE_AA, 4)
    for k in np.flatnonzero(seen):
        cv2.circle(cell, tuple(p[k]), 3 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)
    source = int(data["box_source"][i, hand])
    colour = HAND_COLOURS[hand] if source in (DETECTED, INTERPOLATED) else EXTRAPOLATED_COLOUR
    cv2.rectangle(cell, (0, 0), (CELL - 1, CELL - 1), colour, 3 if source == DETECTED else 1)
    return cell


def _label(text: str, colour=(230, 230, 230)) -> np.ndarray:
    strip = np.full((LABEL, CELL, 3), BACKDROP, np.uint8)
    _text(strip, text, 4, LABEL - 6, colour)
    return strip


def sheet_size(columns: int, frame_shape: tuple[int, int], crops: bool) -> tuple[int, int]:
    """(width, height) of a sheet of ``columns`` frames of shape (width, height), with or without crop rows."""
    height = HEADER + round(CELL * frame_shape[1] / frame_shape[0]) + LABEL
    return columns * CELL, height + (2 * (CELL + LABEL) if crops else 0)


def contact_sheet(path: str | os.PathLike, video_id: str, out: str | os.PathLike | None = None,
                  frames: int = 8) -> Path:
    """Write the PNG contact sheet of ``video_id`` (see the module docstring); returns its path.

    Raises ValueError listing the file's first video ids when ``video_id`` is not in it.
    """
    files = siblings(path)
    if frames < 1:
        raise ValueError(f"--frames: at least 1, got {frames}")
    data = _load(files, str(video_id), frames, Path(path))
    if "source_size" not in data:
        xy = data["xy"][data["score"] > 0]
        data["source_size"] = tuple(int(1.05 * v) + 1 for v in (xy.max(axis=0) if len(xy) else (CELL, CELL)))
    shape = (data["images"][0].shape[1], data["images"][0].shape[0]) if data.get("images") else data["source_size"]
    width, height = sheet_size(len(data["times"]), shape, "crops" in data)
    row_height = round(CELL * shape[1] / shape[0])
    sheet = np.full((height, width, 3), BACKDROP, np.uint8)
    entry = data["entry"]
    _text(sheet, f"{video_id}   label {entry['label']}   split {entry['split']}   {data['length']} frames   "
                 f"shard {Path(path).name}   drawn: {', '.join(s for s in files if s not in data['absent'])}",
          8, 20, size=0.55)
    notes = []
    if "box_counts" in data:
        for hand in range(2):
            counts = ", ".join(f"{n} {name}" for name, n in zip(BOX_SOURCES, data["box_counts"][hand]) if n)
            notes.append(f"{HAND_NAMES[hand]} boxes: {counts}")
    if data["absent"]:
        notes.append(f"not in {', '.join(data['absent'])}")
    _text(sheet, "   ".join(notes), 8, 44)
    if "box" in data:
        _text(sheet, "boxes: thick = detected, thin = interpolated, red = extrapolated", 8, 66, (170, 170, 170))
    for i, t in enumerate(data["times"]):
        x, y = i * CELL, HEADER
        column = [_frame_cell(data, i, row_height), _label(f"frame {t}")]
        if "crops" in data:
            for hand in range(2):
                source = BOX_SOURCES[int(data["box_source"][i, hand])]
                column += [_crop_cell(data, i, hand), _label(f"{HAND_NAMES[hand]}: {source}", HAND_COLOURS[hand])]
        block = np.concatenate(column)
        sheet[y:y + len(block), x:x + CELL] = block
    return save_image(sheet, out if out else video_file(".", video_id, ".png"))


def _show(args: argparse.Namespace) -> None:
    print(contact_sheet(args.file, args.video_id, args.out, args.frames))


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``show`` subcommand to signpipe's command line."""
    parser = subparsers.add_parser(
        "show", help="draw one video of an HDF5 artifact as a PNG contact sheet",
        description="Draw evenly spaced frames of one video with its 133 keypoints and hand boxes, "
                    "and both hand crops with their poses, from FILE and its sibling shards "
                    "(results/<ds>/{frames,keypoints,hands}/<shard>.h5), whichever exist.",
    )
    parser.add_argument("file", help="a frames, keypoints or hands shard (e.g. results/demo/hands/0.h5)")
    parser.add_argument("video_id", help="the video to draw (see `signpipe inspect FILE`)")
    parser.add_argument("--out", type=Path, default=None, help="PNG to write (default: VIDEO_ID.png)")
    parser.add_argument("--frames", type=int, default=8, help="frames to draw, evenly spaced (default 8)")
    parser.set_defaults(func=_show)


NO_SHEETS = "no_{split}_videos.png"
"""What ``sample_sheets`` writes instead when no shard holds a video of the split."""


def sample_sheets(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, count: int = 4,
                  split: str = "test") -> list[Path]:
    """Contact sheets of ``count`` videos of ``split`` in any of the shards ``paths``, across classes.

    Writes ``out_dir/<video_id>.png``, for ``snakemake --report``: a reader sees at a glance whether
    extraction and cropping worked. The videos are picked by :func:`across_classes` (classes spread
    over the label range, the first video by id of each), so a sheet set shows several signs, not
    the first class's repeats. When no shard holds a video of ``split``, writes one PNG that says
    so (``NO_SHEETS``) instead of leaving the folder silently empty.
    """
    out_dir = Path(out_dir)
    found, splits = [], Counter()
    for path in paths:
        with open_hdf5(path) as f:
            index = index_table(f)
        chosen = index.loc[index["split"] == split]
        found += [(video_id, int(label), path) for video_id, label in zip(chosen["video_id"], chosen["label"])]
        splits.update(index["split"])
    out_dir.mkdir(parents=True, exist_ok=True)
    if not found:
        held = ", ".join(f"{name} {n}" for name, n in sorted(splits.items())) or "no videos"
        reason = f"no {split} videos in {len(paths)} shards (they hold {held}): no contact sheets to draw"
        log.warning("%s: %s", out_dir, reason)
        return [_notice(out_dir / NO_SHEETS.format(split=split), reason)]
    picked = across_classes([(video_id, label) for video_id, label, _ in found], count)
    where = {video_id: path for video_id, _, path in found}
    return [contact_sheet(where[video_id], video_id, video_file(out_dir, video_id, ".png")) for video_id in picked]


def across_classes(videos: Sequence[tuple[str, int]], count: int) -> list[str]:
    """``count`` video ids of (video_id, label) pairs, sorted by id: the first video (by id) of
    ``count`` classes spread evenly over the sorted labels, then second videos if there are fewer
    classes than ``count``."""
    by_class: dict[int, list[str]] = {}
    for video_id, label in sorted(videos, key=lambda v: (v[1], v[0])):
        by_class.setdefault(label, []).append(video_id)
    labels = sorted(by_class)
    spread = dict.fromkeys(labels[int(k)] for k in np.linspace(0, len(labels) - 1, min(count, len(labels))).round())
    order = [*spread, *(label for label in labels if label not in spread)]
    ranked = sorted(((rank, order.index(label), video_id) for label in labels
                     for rank, video_id in enumerate(by_class[label])))
    return sorted(video_id for *_, video_id in ranked[:count])


def _notice(out: Path, text: str) -> Path:
    """A PNG strip that shows ``text``: the placeholder of a sheet that could not be drawn."""
    strip = np.full((HEADER, max(4 * CELL, 8 * len(text) + 16), 3), BACKDROP, np.uint8)
    _text(strip, text, 8, HEADER // 2 + 5, size=0.55)
    return save_image(strip, out)
