"""A deterministic synthetic isolated-sign corpus: the embedded, offline demo of signpipe.

A drawn upper-body signer (cv2, antialiased) performs classes defined by manual parameters
(hand shape, motion, location, hands, palm, repetitions) and a facial expression; some
classes form confusing pairs that differ only in the face. Each clip is a real H.264 MP4
with a COCO-WholeBody 133 keypoint sidecar carrying detector-like noise.

Modules: ``classes`` (the vocabulary), ``pose`` (the clean pose), ``render`` (drawing and
MP4), ``corpus`` (noise, files, :func:`make_corpus`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CORPUS_KEYS = ("num_classes", "signers", "repeats", "frames", "width", "height", "fps", "val_signers",
               "test_signers", "seed", "hand_miss", "hand_miss_burst", "left_handed", "face_scale", "confusing_pairs",
               "hand_shapes", "dark_backdrop")
"""The keys of a ``synthetic`` dataset block that define its corpus (what the synth rule depends
on): the parameters of :func:`make_corpus` but its output folder and run options. Written out so
the Snakefile reads them without importing the renderer (cv2, PyAV)."""


def corpus_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The corpus-defining keys of a dataset block (not adapter, num_shards or pose)."""
    return {key: cfg[key] for key in CORPUS_KEYS if key in cfg}


def __getattr__(name: str) -> Any:
    """``make_corpus`` (:func:`signpipe.synth.corpus.make_corpus`), imported on first use."""
    if name == "make_corpus":
        from signpipe.synth.corpus import make_corpus

        return make_corpus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CORPUS_KEYS", "corpus_options", "make_corpus"]
