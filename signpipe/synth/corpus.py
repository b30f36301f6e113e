"""Writing the synthetic corpus: videos, keypoint sidecars with detector-like noise, tables."""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import zipfile
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from signpipe.jobs import die_with_parent
from signpipe.keypoints.layout import HAND_SLICES
from signpipe.logs import track
from signpipe.names import video_file
from signpipe.shards import atomic_path, write_csv
from signpipe.synth.classes import SignClass, make_classes, make_hand_shape_classes, with_nuisance
from signpipe.synth.pose import (
    Pose, Signer, clean_pose, in_share, make_signer, make_variation, mirror_pose, num_frames,
)
from signpipe.synth.render import render, write_video

CORPUS_COLUMNS = ["video_id", "path", "keypoints", "label", "gloss", "split", "signer", "frame_start",
                  "frame_end", "repeat", "num_frames"]


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to make one clip, independent of every other clip."""

    video_id: str
    sign: SignClass
    signer: int
    repeat: int
    split: str
    frames: int
    width: int
    height: int
    fps: float
    seed: int
    hand_miss: float = 0.0
    hand_miss_burst: float = 8.0
    left_handed: float = 0.0
    face_scale: float = 1.0
    hand_shapes: bool = False
    dark_backdrop: float = 0.0


HAND_SIZES = (0.8, 1.25)
"""Range of the signers' hand sizes in the hand-shape corpus (the demo's signers: 0.9-1.1)."""


def video_rng(spec: VideoSpec, stream: int) -> np.random.Generator:
    """Random stream ``stream`` of one clip (0: its variation, 1: detector noise, 2: the hand-shape
    corpus's nuisance parameters), from the seed and a
    stable hash of the clip id (not Python's ``hash``), so a clip never depends on the others."""
    return np.random.default_rng([spec.seed, zlib.crc32(spec.video_id.encode("utf-8")), stream])


def video_pose(spec: VideoSpec) -> tuple[Signer, Pose]:
    """The signer and the clean pose (the drawn truth) of one clip; mirrored for a left-handed signer."""
    signer = make_signer(spec.signer, spec.seed, spec.width, spec.height, spec.dark_backdrop)
    sign = spec.sign
    if spec.hand_shapes:  # the class is the hand; where and how it moves is drawn per video
        sign = with_nuisance(sign, video_rng(spec, 2))
        size = np.random.default_rng([spec.seed, 0x4A5D, spec.signer]).uniform(*HAND_SIZES)
        signer = replace(signer, hand_size=float(size))
    variation = make_variation(video_rng(spec, 0))
    length = num_frames(spec.frames, signer, variation)
    pose = clean_pose(sign, signer, variation, length, spec.width, spec.height, spec.face_scale)
    return signer, mirror_pose(pose, spec.width) if in_share(spec.signer, spec.left_handed) else pose


def missed_hands(length: int, rng: np.random.Generator, miss: float, burst: float) -> np.ndarray:
    """(T, 2) bool: frames where a detector misses each hand, as a two-state Markov chain per hand
    whose stationary share of misses is ``miss`` and whose runs of misses last ``burst`` frames
    on average (real detectors lose a hand for stretches: in motion blur, at the frame edge)."""
    leave = 1.0 / max(burst, 1.0)                              # miss -> hit
    enter = min(miss * leave / max(1.0 - miss, 1e-9), 1.0)     # hit -> miss: keeps the share at ``miss``
    missed = np.zeros((length, 2), bool)
    state = rng.random(2) < miss
    draws = rng.random((length, 2))
    for t in range(length):
        missed[t] = state
        state = np.where(state, draws[t] >= leave, draws[t] < enter)
    return missed


def detector_noise(pose: Pose, rng: np.random.Generator, width: int, height: int, hand_miss: float = 0.0,
                   hand_miss_burst: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints as a pose detector would report them: the clean pose plus noise.

    Gaussian jitter of 0.7% of the larger image side (1.8 px at 256 x 192); about 3% of the
    points with a low score (0.1-0.5) and 4x the error; in a third of the clips one hand lost
    for 2-5 frames; other scores uniform in 0.75-1. With ``hand_miss`` > 0 each hand is also
    missed in that share of the frames, in bursts (:func:`missed_hands`). Off-image points,
    legs and feet get score 0 and xy 0.
    Returns xy (T, 133, 2) float32 in video pixels and score (T, 133) float32 in [0, 1].
    """
    sigma = 0.007 * max(width, height)
    shape = pose.visible.shape
    xy = pose.xy + rng.normal(0.0, sigma, pose.xy.shape)
    score = rng.uniform(0.75, 1.0, shape)
    weak = rng.random(shape) < 0.03
    score[weak] = rng.uniform(0.1, 0.5, weak.sum())
    xy[weak] += rng.normal(0.0, 4 * sigma, (weak.sum(), 2))
    detected = pose.visible.copy()
    if rng.random() < 0.33:
        span = int(rng.integers(2, 6))
        start = int(rng.integers(0, max(len(detected) - span, 1)))
        detected[start:start + span, HAND_SLICES[rng.integers(2)]] = False
    if hand_miss > 0:
        missed = missed_hands(len(detected), rng, hand_miss, hand_miss_burst)
        for hand, part in enumerate(HAND_SLICES):
            detected[missed[:, hand], part] = False
    xy = np.clip(xy, 0.0, [width - 1, height - 1])
    xy[~detected] = 0.0
    score[~detected] = 0.0
    return xy.astype(np.float32), score.astype(np.float32)


def write_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Save arrays as a compressed ``.npz`` whose bytes depend only on the arrays (fixed zip dates)."""
    with atomic_path(path, ".npz") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def make_video(spec: VideoSpec, out_dir: Path) -> dict:
    """Draw, encode and annotate one clip; return its corpus row."""
    signer, pose = video_pose(spec)
    video = video_file("videos", spec.video_id, ".mp4")
    keypoints = video_file("keypoints", spec.video_id, ".npz")
    write_video(render(pose, signer, spec.width, spec.height), out_dir / video, spec.fps)
    xy, score = detector_noise(pose, video_rng(spec, 1), spec.width, spec.height, spec.hand_miss, spec.hand_miss_burst)
    write_npz(out_dir / keypoints, xy=xy, score=score)
    return {"video_id": spec.video_id, "path": video.as_posix(), "keypoints": keypoints.as_posix(),
            "label": spec.sign.label, "gloss": spec.sign.gloss, "split": spec.split, "signer": spec.signer,
            "frame_start": 0, "frame_end": -1, "repeat": spec.repeat, "num_frames": len(pose.xy)}


def _make_video_job(job: tuple[VideoSpec, Path]) -> dict:
    return make_video(*job)


def signer_splits(signers: int, val_signers: int, test_signers: int) -> list[str]:
    """Split of each signer: the last ``test_signers`` test, the ``val_signers`` before them val."""
    if signers < 1:
        raise ValueError(f"signers={signers}: need at least 1 signer")
    for name, value in (("val_signers", val_signers), ("test_signers", test_signers)):
        if value < 0:
            raise ValueError(f"{name}={value}: must be 0 or more")
    if val_signers + test_signers > signers - 1:
        raise ValueError(f"val_signers + test_signers = {val_signers + test_signers}: must leave at least one "
                         f"of the {signers} signers for training (lower val_signers/test_signers or raise signers)")
    train = signers - val_signers - test_signers
    return ["train"] * train + ["val"] * val_signers + ["test"] * test_signers


def _check_at_least(name: str, value: float, low: float) -> None:
    if not value >= low:
        raise ValueError(f"{name}={value}: must be at least {low}")


def corpus_specs(num_classes: int = 20, signers: int = 8, repeats: int = 3, frames: int = 32,
                 width: int = 256, height: int = 192, fps: float = 25.0, val_signers: int = 1,
                 test_signers: int = 1, seed: int = 0, hand_miss: float = 0.0, hand_miss_burst: float = 8.0,
                 left_handed: float = 0.0, face_scale: float = 1.0, confusing_pairs: int | None = None,
                 hand_shapes: bool = False, dark_backdrop: float = 0.0) -> list[VideoSpec]:
    """The clips of a corpus, ordered by signer, class, repeat; raises ValueError naming a bad argument."""
    for name, value, low in (("frames", frames, 8), ("repeats", repeats, 1), ("seed", seed, 0), ("fps", fps, 1),
                             ("hand_miss_burst", hand_miss_burst, 1)):
        _check_at_least(name, value, low)
    if not 0 <= hand_miss < 1:
        raise ValueError(f"hand_miss={hand_miss}: must be in [0, 1)")
    for name, share in (("left_handed", left_handed), ("dark_backdrop", dark_backdrop)):
        if not 0 <= share <= 1:
            raise ValueError(f"{name}={share}: must be in [0, 1]")
    if not 0.5 <= face_scale <= 3:
        raise ValueError(f"face_scale={face_scale}: must be in [0.5, 3] (1: natural proportions)")
    for name, value in (("width", width), ("height", height)):
        _check_at_least(name, value, 32)
        if value % 2:
            raise ValueError(f"{name}={value}: must be even (H.264 yuv420p)")
    splits = signer_splits(signers, val_signers, test_signers)
    classes = make_hand_shape_classes(num_classes, seed) if hand_shapes else make_classes(num_classes, seed, confusing_pairs)
    digits_s, digits_c = (max(2, len(str(n - 1))) for n in (signers, num_classes))
    digits_r = len(str(repeats - 1))
    return [
        VideoSpec(f"s{s:0{digits_s}d}_c{c.label:0{digits_c}d}_r{r:0{digits_r}d}", c, s, r, splits[s],
                  frames, width, height, fps, seed, hand_miss, hand_miss_burst, left_handed, face_scale, hand_shapes,
                  dark_backdrop)
        for s in range(signers) for c in classes for r in range(repeats)
    ]


def make_corpus(out_dir: str | Path, num_classes: int = 20, signers: int = 8, repeats: int = 3,
                frames: int = 32, width: int = 256, height: int = 192, fps: float = 25.0,
                val_signers: int = 1, test_signers: int = 1, seed: int = 0, hand_miss: float = 0.0,
                hand_miss_burst: float = 8.0, left_handed: float = 0.0, face_scale: float = 1.0,
                confusing_pairs: int | None = None, hand_shapes: bool = False, dark_backdrop: float = 0.0,
                workers: int = 1, progress: bool = True) -> pd.DataFrame:
    """Generate the synthetic ISLR corpus under ``out_dir`` and return its table (one row per clip).

    Writes ``videos/{video_id}.mp4`` (H.264), ``keypoints/{video_id}.npz`` (``xy`` (T, 133, 2)
    float32 in video pixels, ``score`` (T, 133) float32), ``classes.csv`` (label, gloss,
    confusing_with), ``confusing.txt`` (labels in a confusing pair) and, last, ``corpus.csv``.
    Clip ids are ``s{signer}_c{label}_r{repeat}`` (0-based). A clip has ``frames`` frames
    stretched by its signer's speed and its repeat's timing, within ±25% (``num_frames``
    column). Splits are by signer: the last ``test_signers`` are test, the ``val_signers``
    before them val. The same arguments give the same files whatever ``workers`` is.

    Real detectors: ``hand_miss`` (0) is the share of frames in which each hand's keypoints are
    missed, in bursts of ``hand_miss_burst`` frames on average (real MediaPipe landmarks of short
    signs: about half the hand tokens); ``left_handed`` (0) the share of signers who sign with
    the left hand (every 1/share-th signer; their clips are mirror images).

    Backdrops: ``dark_backdrop`` (0) is the share of signers on a dark backdrop (every
    1/share-th signer, :func:`~signpipe.synth.pose.make_signer`); the others stand on a light one,
    darkened only where bright clothes would not stand out on it and, with a share above 0, at
    least 30 levels above the signer's skin. A pixel model that subtracts the
    clip's mean sees a moving hand brighten a dark backdrop and darken a light one, so a corpus
    where one polarity is a single held-out signer's tests a domain no training signer shows;
    the demo draws half its signers dark (every other one), so each split holds both
    polarities (the test signer s07 dark, the val signer s06 light) and so does every run of
    two signers. Only colours change: bodies, motion and keypoints are those of share 0.

    A legible-face corpus, where the face can matter (GLE-Net's NMFs, benchmarks/glenet.py):
    ``face_scale`` (1) enlarges every head about its centre, ``confusing_pairs`` (None: about a
    quarter of the classes, :func:`~signpipe.synth.classes.num_pairs`) sets how many class pairs
    share all manual parameters and differ only in the face (``num_classes // 2``: every class).

    ``hand_shapes`` (False) makes the hand-shape corpus instead of the demo's signs: classes
    differ only by hand shape and palm orientation (:func:`~signpipe.synth.classes.make_hand_shape_classes`),
    every video draws its motion, location, hands and repetitions at random, and the signers'
    hand sizes spread over ``HAND_SIZES``; a benchmark of hand models (HMA) reads it.
    """
    _check_at_least("workers", workers, 1)
    specs = corpus_specs(num_classes, signers, repeats, frames, width, height, fps, val_signers, test_signers, seed,
                         hand_miss, hand_miss_burst, left_handed, face_scale, confusing_pairs, hand_shapes,
                         dark_backdrop)
    out_dir = Path(out_dir)
    jobs = [(spec, out_dir) for spec in specs]
    with contextlib.ExitStack() as stack:
        if workers > 1:
            pool = stack.enter_context(multiprocessing.Pool(workers, die_with_parent, (os.getpid(),)))
            results = pool.imap(_make_video_job, jobs, chunksize=4)
        else:
            results = map(_make_video_job, jobs)
        rows = list(track(results, total=len(jobs), desc="synth videos", unit="video", disable=not progress))
    classes = [spec.sign for spec in specs if spec.signer == 0 and spec.repeat == 0]
    table = pd.DataFrame([{"label": c.label, "gloss": c.gloss, "confusing_with": c.confusing_with} for c in classes])
    write_csv(table, out_dir / "classes.csv")
    with atomic_path(out_dir / "confusing.txt", ".txt") as tmp:
        tmp.write_text("".join(f"{c.label}\n" for c in classes if c.confusing_with >= 0))
    corpus = pd.DataFrame(rows, columns=CORPUS_COLUMNS)
    write_csv(corpus, out_dir / "corpus.csv")
    return corpus
