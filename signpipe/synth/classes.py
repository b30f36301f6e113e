"""The sign vocabulary of the synthetic corpus: manual parameters, facial expressions, classes.

A class is a combination of MANUAL parameters (hand shape, motion, location, which hands move,
palm orientation, repetitions) and one facial EXPRESSION. Classes with distinct manual
parameters are told apart by the hands; a confusing pair shares every manual parameter and
differs only in the face, like the confusing words of NMFs-CSL.

The hand-shape vocabulary (:func:`make_hand_shape_classes`) is another corpus mode: its classes
differ only by hand shape and palm orientation, the parameters a hand model describes, and each
video draws its motion, location, hands and repetitions at random (:func:`with_nuisance`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

import numpy as np

HAND_SHAPES: dict[str, tuple[float, ...]] = {
    # Degrees. Per finger (index, middle, ring, pinky): spread, MCP, PIP, DIP flexion;
    # then the thumb: abduction from the finger axis, elevation off the palm, 3 flexions.
    "relaxed": (4, 15, 20, 10,   0, 18, 22, 10,   -3, 22, 25, 12,   -7, 25, 28, 14,   35, 30, 10, 10, 10),
    "flat":    (3, 0, 0, 0,      0, 0, 0, 0,      -3, 0, 0, 0,      -6, 0, 0, 0,      12, 20, 5, 5, 0),
    "five":    (14, 0, 0, 0,     2, 0, 0, 0,      -10, 0, 0, 0,     -22, 0, 0, 0,     65, 10, 0, 0, 0),
    "fist":    (2, 90, 100, 60,  0, 90, 100, 60,  -2, 90, 100, 60,  -4, 90, 100, 60,  20, 40, 40, 30, 20),
    "point":   (4, 0, 0, 0,      0, 90, 100, 60,  -2, 90, 100, 60,  -4, 90, 100, 60,  20, 40, 40, 30, 20),
    "v":       (12, 0, 0, 0,     -8, 0, 0, 0,     -2, 90, 100, 60,  -4, 90, 100, 60,  20, 40, 40, 30, 20),
    "thumb":   (2, 90, 100, 60,  0, 90, 100, 60,  -2, 90, 100, 60,  -4, 90, 100, 60,  20, 0, 0, 0, 0),
    "claw":    (12, 15, 80, 60,  2, 15, 80, 60,   -8, 15, 80, 60,   -16, 15, 80, 60,  50, 30, 10, 30, 30),
    "o":       (2, 40, 60, 40,   0, 45, 60, 40,   -2, 50, 60, 40,   -4, 55, 60, 40,   35, 45, 35, 25, 20),
    "y":       (2, 90, 100, 60,  0, 90, 100, 60,  -2, 90, 100, 60,  -20, 0, 0, 0,     80, 10, 0, 0, 0),
    "l":       (2, 0, 0, 0,      0, 90, 100, 60,  -2, 90, 100, 60,  -4, 90, 100, 60,  85, 5, 0, 0, 0),
}
"""Hand-shape templates (21 joint angles); "relaxed" is the rest shape, not a class shape."""

MOTIONS: tuple[str, ...] = ("circle", "hline", "vline", "diag", "arc", "tap", "zigzag", "twist")

LOCATIONS: dict[str, tuple[float, float, float]] = {
    "neutral": (-0.32, 0.55, 0.45),
    "chest": (-0.18, 0.35, 0.30),
    "face": (-0.42, -0.30, 0.30),
    "high": (-0.50, -0.25, 0.35),
}
"""Centre of the dominant (signer's right) wrist in body units: x to the image right, y down,
z toward the camera; the other hand mirrors x."""

HANDS: tuple[str, ...] = ("one", "sym", "alt")
"""one: right hand only, the left rests; sym: the left mirrors the right; alt: the left does the
mirror's opposite (parallel left-right moves, alternating up-down moves, opposite twists)."""

PALMS: dict[str, float] = {"out": 0.0, "side": 90.0, "in": -180.0}
"""Rotation of the palm about the finger axis in degrees (0: palm faces the camera)."""

REPS: tuple[int, ...] = (1, 2)

EXPRESSIONS: dict[str, tuple[float, ...]] = {
    # mouth open, lips round, smile/stretch, cheeks puffed, brows raised, frown
    "neutral":  (0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "open":     (1.0, 0.0, 0.0, 0.0, 0.0, 0.0),
    "round":    (0.3, 1.0, 0.0, 0.0, 0.0, 0.0),
    "stretch":  (0.15, 0.0, 1.0, 0.0, 0.0, 0.0),
    "puff":     (0.0, 0.0, 0.0, 1.0, 0.0, 0.0),
    "surprise": (0.5, 0.0, 0.0, 0.0, 1.0, 0.0),
    "frown":    (0.0, 0.0, -1.0, 0.0, 0.0, 1.0),
}
"""Facial expressions; every one has its own mouth, so a confusing pair always differs there."""

MANUAL_SPACE: tuple[tuple, ...] = (
    tuple(s for s in HAND_SHAPES if s != "relaxed"), MOTIONS, tuple(LOCATIONS), HANDS, tuple(PALMS), REPS,
)


@dataclass(frozen=True)
class SignClass:
    """One sign: its label, gloss, manual parameters, expression and confusing partner (-1: none)."""

    label: int
    gloss: str
    shape: str
    motion: str
    location: str
    hands: str
    palm: str
    reps: int
    expression: str
    confusing_with: int = -1

    @property
    def manual(self) -> tuple:
        """The manual parameters: equal for the two classes of a confusing pair."""
        return (self.shape, self.motion, self.location, self.hands, self.palm, self.reps)


def num_pairs(num_classes: int) -> int:
    """Confusing pairs in a vocabulary of ``num_classes``: about 25% of the classes are paired."""
    return (num_classes + 4) // 8


def max_classes() -> int:
    """The largest vocabulary: every manual combination used once, some of them twice (paired)."""
    combos = int(np.prod([len(axis) for axis in MANUAL_SPACE]))
    n = combos
    while n + 1 - num_pairs(n + 1) <= combos:
        n += 1
    return n


def make_classes(num_classes: int, seed: int = 0, pairs: int | None = None) -> list[SignClass]:
    """Draw ``num_classes`` classes from ``seed``: distinct manual combinations, ``pairs`` of them
    (None: :func:`num_pairs`) in face-only pairs.

    The same arguments always give the same list, sorted by label.
    """
    if not 2 <= num_classes <= max_classes():
        raise ValueError(f"num_classes={num_classes}: must be between 2 and {max_classes()}")
    if pairs is not None and not 0 <= pairs <= num_classes // 2:
        raise ValueError(f"confusing_pairs={pairs}: must be between 0 and num_classes // 2 = {num_classes // 2}")
    rng = np.random.default_rng([seed, 0xC1A55])
    pairs = num_pairs(num_classes) if pairs is None else pairs
    combos = list(itertools.product(*MANUAL_SPACE))
    picked = [combos[i] for i in rng.choice(len(combos), size=num_classes - pairs, replace=False)]
    names = list(EXPRESSIONS)
    weights = np.array([3.0] + [1.0] * (len(names) - 1))
    specs: list[tuple[tuple, str, int]] = []  # (manual, expression, group)
    for group, manual in enumerate(picked):
        if group < pairs:
            first, second = rng.choice(len(names), size=2, replace=False)
            specs += [(manual, names[first], group), (manual, names[second], group)]
        else:
            specs.append((manual, names[rng.choice(len(names), p=weights / weights.sum())], group))
    order = rng.permutation(len(specs))
    label_of = {int(spec_index): label for label, spec_index in enumerate(order)}
    partner = {}
    for group in range(pairs):
        a, b = 2 * group, 2 * group + 1
        partner[label_of[a]], partner[label_of[b]] = label_of[b], label_of[a]
    classes = []
    for label, spec_index in enumerate(order):
        manual, expression, _ = specs[spec_index]
        shape, motion, location, hands, palm, reps = manual
        gloss = f"{motion}-{shape}-{location}-{hands}-{palm}-x{reps}"
        if expression != "neutral":
            gloss += f"+{expression}"
        classes.append(SignClass(label, gloss, shape, motion, location, hands, palm, int(reps), expression,
                                 partner.get(label, -1)))
    return classes


NUISANCE_MOTIONS: tuple[str, ...] = tuple(m for m in MOTIONS if m != "twist")
"""Motions a hand-shape video draws from; not ``twist``, which turns the palm (the class)."""


def make_hand_shape_classes(num_classes: int, seed: int = 0) -> list[SignClass]:
    """``num_classes`` classes told apart only by (hand shape, palm orientation), drawn from ``seed``.

    Their motion, location, hands and repetitions are placeholders that every video replaces
    (:func:`with_nuisance`); the face stays neutral. Glosses are ``{shape}-{palm}``.
    """
    combos = list(itertools.product(MANUAL_SPACE[0], PALMS))
    if not 2 <= num_classes <= len(combos):
        raise ValueError(f"num_classes={num_classes}: the hand-shape vocabulary has between 2 and {len(combos)}")
    rng = np.random.default_rng([seed, 0x5A4E])
    picked = [combos[i] for i in rng.choice(len(combos), size=num_classes, replace=False)]
    return [SignClass(label, f"{shape}-{palm}", shape, NUISANCE_MOTIONS[0], "neutral", "one", palm, 1, "neutral")
            for label, (shape, palm) in enumerate(picked)]


def with_nuisance(sign: SignClass, rng: np.random.Generator) -> SignClass:
    """``sign`` with a random motion, location, hands and repetitions: one video of a hand-shape class."""
    return replace(sign, motion=NUISANCE_MOTIONS[rng.integers(len(NUISANCE_MOTIONS))],
                   location=tuple(LOCATIONS)[rng.integers(len(LOCATIONS))], hands=HANDS[rng.integers(len(HANDS))],
                   reps=int(REPS[rng.integers(len(REPS))]))
