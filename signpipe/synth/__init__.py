"""A deterministic synthetic isolated-sign corpus: the embedded, offline demo of signpipe.

A drawn upper-body signer (cv2, antialiased) performs classes defined by manual parameters
(hand shape, motion, location, hands, palm, repetitions) and a facial expression; some
classes form confusing pairs that differ only in the face. Each clip is a real H.264 MP4
with a COCO-WholeBody 133 keypoint sidecar carrying detector-like noise.

Modules: ``classes`` (the vocabulary), ``pose`` (the clean pose), ``render`` (drawing and
MP4), ``corpus`` (noise, files, :func:`make_corpus`).
"""

from signpipe.synth.corpus import make_corpus

__all__ = ["make_corpus"]
