"""A deterministic synthetic isolated-sign corpus: the embedded, offline demo of signpipe.

A drawn upper-body signer (cv2, antialiased) performs classes defined by manual parameters
(hand shape, motion, location, hands, palm, repetitions) and a facial expression; some
classes form confusing pairs that differ only in the face. Each clip is a real H.264 MP4
with a COCO-WholeBody 133 keypoint sidecar carrying detector-like noise.

Modules: ``classes`` (the vocabulary), ``pose`` (the clean pose), ``render`` (drawing and
MP4), ``corpus`` (noise, files, :func:`make_corpus`).
"""

import inspect
from collections.abc import Mapping
from typing import Any

from signpipe.synth.corpus import make_corpus

CORPUS_KEYS = tuple(name for name in inspect.signature(make_corpus).parameters
                    if name not in ("out_dir", "workers", "progress"))
"""The keys of a ``synthetic`` dataset block that define its corpus (what the synth rule depends on)."""


def corpus_options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The corpus-defining keys of a dataset block (not adapter, num_shards or pose)."""
    return {key: cfg[key] for key in CORPUS_KEYS if key in cfg}


__all__ = ["CORPUS_KEYS", "corpus_options", "make_corpus"]
