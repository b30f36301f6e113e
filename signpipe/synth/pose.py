"""The clean pose of the drawn signer in the COCO-WholeBody 133 layout (DESIGN §4).

Geometry lives in body units (nominal shoulder width = 1), origin at the base of the neck,
x to the image right (the signer's LEFT: the signer faces the camera), y down, z toward the
camera; the projection to the image is orthographic. Each arm is a 3D two-bone chain solved
by inverse kinematics toward its wrist target, each hand is 21 joints from finger-chain
kinematics rotated at the wrist, and the face is the 68 iBUG points on the head ellipse.
The left side is computed as a mirrored right side, so both hands are built by the same code.
Signs are made with the right hand dominant; a left-handed signer's clip is the mirror image of
the whole pose (:func:`mirror_pose`), as a left-handed person signs.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from signpipe.keypoints.layout import FLIP_PERMUTATION, NUM_KEYPOINTS, PARTS
from signpipe.synth.classes import EXPRESSIONS, HAND_SHAPES, LOCATIONS, PALMS, SignClass

SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 120), (198, 134, 66),
              (141, 85, 36), (110, 70, 45), (234, 192, 134))
HAIR_COLOURS = ((30, 25, 20), (70, 45, 25), (120, 80, 40), (200, 170, 110), (90, 90, 95), (15, 15, 15))

# Hand geometry, right hand, palm facing the camera (+z), fingers up (-y), thumb medial (+x).
FINGER_BASES = np.array([[0.080, -0.250, 0.0], [0.027, -0.262, 0.0], [-0.026, -0.252, 0.0], [-0.074, -0.228, 0.0]])
FINGER_LENGTHS = np.array([[0.100, 0.060, 0.045], [0.110, 0.070, 0.050], [0.100, 0.065, 0.045], [0.080, 0.050, 0.040]])
THUMB_BASE = np.array([0.055, -0.055, 0.015])
THUMB_LENGTHS = np.array([0.120, 0.090, 0.070])
THUMB_CURL = np.array([-0.8, 0.0, 0.6])
"""A flexing thumb turns across the palm (toward the pinky) and in front of it."""
REST_ROLL, SIGN_ROLL, REST_YAW = 172.0, 12.0, -90.0
ARM_POLE = np.array([-0.3, 1.0, -0.4])
"""Elbows bend out, down and back (right arm)."""


@dataclass(frozen=True)
class Signer:
    """A signer's body proportions, colours, signing speed and placement in the frame."""

    index: int
    shoulder_width: float
    upper_arm: float
    forearm: float
    head_size: float
    hand_size: float
    speed: float
    warp: float
    scale: float  # pixels per body unit
    center: tuple[float, float]  # neck base in pixels
    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    clothes: tuple[int, int, int]
    background: tuple[int, int, int]


@dataclass(frozen=True)
class Variation:
    """What differs between two repeats of a sign by the same signer."""

    amplitude: float
    offset: tuple[float, float, float]
    timing: tuple[float, float, float, float]  # fractions of the clip: rest, move in, move out, rest
    duration: float
    sway: tuple[float, float, float, float]  # body x, head x, head tilt (deg), phase
    blink: float  # time of a blink in [0, 1], or -1


@dataclass
class Pose:
    """The clean pose of one clip; ``xy`` is computed for every point, on screen or not.

    xy (T, 133, 2) image pixels; z (T, 133) depth in body units (larger is nearer);
    visible (T, 133) bool, False for points off the image and the legs and feet;
    head (T, 5) ellipse of the head: centre x, y, half axes, tilt in degrees (pixels).
    """

    xy: np.ndarray
    z: np.ndarray
    visible: np.ndarray
    head: np.ndarray


def _colour(rng: np.random.Generator, sat: tuple[float, float], val: tuple[float, float]) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(rng.random(), rng.uniform(*sat), rng.uniform(*val))
    return int(255 * r), int(255 * g), int(255 * b)


DARK_BACKDROP = (0.3, 50.0)
"""A dark backdrop: the drawn light one scaled to at most 0.3 of its brightness and at least 50
grey levels (mean of R, G, B) below the signer's skin, so the hands stay visible on it."""

LIGHT_BACKDROP = 30.0
"""Where a corpus mixes backdrops, a light one is at least 30 grey levels above the signer's skin
(lifted toward white where the draw gives less; white for the lightest skins), so a moving hand
darkens it as it brightens a dark one: without it, a light-skinned signer on a mid-grey draw shows
the dark backdrop's polarity."""


def make_signer(index: int, seed: int, width: int, height: int, dark_backdrop: float = 0.0) -> Signer:
    """Signer ``index`` of the corpus made with ``seed``, placed in a ``width`` x ``height`` frame.

    Backdrops are light, except that a ``dark_backdrop`` share of the signers (every
    1/share-th, :func:`in_share`) stand on a dark one (:data:`DARK_BACKDROP`): on a light backdrop
    a moving hand darkens the pixels it covers, on a dark one it brightens them, and a pixel model
    trained on one polarity only fails on the other. Their clothes are lightened where the
    torso would not stand out. With a share above 0, every light backdrop is also kept above the
    skin (:data:`LIGHT_BACKDROP`), so each signer shows the polarity of its kind; share 0 keeps
    the drawn colours. The random draws are the same whatever the share, so every signer's body,
    motion and keypoints are too.
    """
    rng = np.random.default_rng([seed, 0x5167E2, index])
    skin = np.clip(np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))]) + rng.normal(0, 6, 3), 0, 255)
    clothes = _colour(rng, (0.45, 0.9), (0.3, 0.8))
    background = _colour(rng, (0.05, 0.3), (0.55, 0.95))
    if in_share(index, dark_backdrop):
        factor, below_skin = DARK_BACKDROP
        factor = max(0.0, min(factor, (np.mean(skin) - below_skin) / np.mean(background)))
        background = tuple(int(c * factor) for c in background)
        if abs(np.mean(background) - np.mean(clothes)) < 60:  # keep the torso readable on the backdrop
            clothes = tuple(int(c) for c in np.array(clothes) + 0.6 * (255 - np.array(clothes)))
    else:
        if abs(np.mean(background) - np.mean(clothes)) < 60:  # keep the torso readable on the backdrop
            shift = -0.45 * np.array(background) if np.mean(clothes) > 127 else 0.6 * (255 - np.array(background))
            background = tuple(int(c) for c in np.array(background) + shift)
        above_skin = np.mean(background) - np.mean(skin)
        if dark_backdrop > 0 and above_skin < LIGHT_BACKDROP:
            lift = min(1.0, (LIGHT_BACKDROP - above_skin) / (255.0 - np.mean(background)))
            background = tuple(int(np.ceil(c + lift * (255 - c))) for c in background)
            if abs(np.mean(background) - np.mean(clothes)) < 60:  # the lifted backdrop met light clothes
                clothes = tuple(int(c) for c in 0.4 * np.array(clothes))
    scale = min(0.38 * height, 0.3 * width) * rng.uniform(0.88, 1.08)
    arm = rng.uniform(0.93, 1.07)
    return Signer(
        index=index,
        shoulder_width=rng.uniform(0.9, 1.1),
        upper_arm=0.8 * arm,
        forearm=0.68 * arm,
        head_size=rng.uniform(0.92, 1.08),
        hand_size=rng.uniform(0.9, 1.1),
        speed=rng.uniform(0.85, 1.2),
        warp=rng.uniform(-0.4, 0.4),
        scale=scale,
        center=(width * (0.5 + rng.uniform(-0.06, 0.06)), height * rng.uniform(0.38, 0.44)),
        skin=tuple(int(c) for c in skin),
        hair=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
        clothes=clothes,
        background=background,
    )


def make_variation(rng: np.random.Generator) -> Variation:
    """Random small differences of one repeat: amplitude, position, timing, sway, a blink."""
    return Variation(
        amplitude=rng.uniform(0.85, 1.15),
        offset=tuple(rng.normal(0, [0.03, 0.03, 0.02])),
        timing=tuple(rng.uniform([0.06, 0.14, 0.14, 0.04], [0.14, 0.2, 0.2, 0.12])),
        duration=rng.uniform(0.92, 1.08),
        sway=(rng.uniform(0, 0.02), rng.uniform(0, 0.02), rng.uniform(-3, 3), rng.uniform(0, 2 * np.pi)),
        blink=rng.uniform(0.1, 0.9) if rng.random() < 0.5 else -1.0,
    )


def num_frames(frames: int, signer: Signer, variation: Variation) -> int:
    """Frame count of a clip: ``frames`` stretched by the signer's speed and the repeat, within ±25%."""
    wanted = round(frames * variation.duration / signer.speed)
    return int(np.clip(wanted, int(np.ceil(0.75 * frames)), int(0.25 * frames) + frames))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def timeline(signer: Signer, variation: Variation, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Envelope (T,) in [0, 1] (0 at rest, 1 while signing) and sign phase (T,) in [0, 1].

    The phase runs through the sign once, time-warped by the signer (faster or slower in the middle).
    """
    t = np.linspace(0.0, 1.0, length)
    rest_in, move_in, move_out, rest_out = variation.timing
    a, b = rest_in, rest_in + move_in
    d = 1.0 - rest_out
    c = d - move_out
    envelope = _smoothstep((t - a) / (b - a)) * (1.0 - _smoothstep((t - c) / (d - c)))
    phase = np.clip((t - b) / (c - b), 0.0, 1.0)
    phase = phase + signer.warp * np.sin(2 * np.pi * phase) / (2 * np.pi)
    return envelope, phase


def _triangle(u: np.ndarray) -> np.ndarray:
    return 2 * np.abs(2 * (u % 1.0) - 1) - 1


def motion_path(motion: str, phase: np.ndarray, reps: int, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Offset (T, 3) of the right wrist from the sign's location, and extra palm rotation (T,) in degrees."""
    a, k, p = 0.2 * amplitude, reps, phase
    zero = np.zeros_like(p)
    if motion == "circle":
        x, y, z = a * np.sin(2 * np.pi * k * p), -a * np.cos(2 * np.pi * k * p), zero
    elif motion == "hline":
        x, y, z = a * np.cos(np.pi * k * p), zero, zero
    elif motion == "vline":
        x, y, z = zero, -a * np.cos(np.pi * k * p), zero
    elif motion == "diag":
        x, y, z = 0.8 * a * np.cos(np.pi * k * p), -0.8 * a * np.cos(np.pi * k * p), zero
    elif motion == "arc":
        x, y, z = -a * np.cos(np.pi * k * p), -0.9 * a * np.abs(np.sin(np.pi * k * p)), zero
    elif motion == "tap":
        bump = np.abs(np.sin(2 * np.pi * k * p))
        x, y, z = zero, 0.6 * a * bump - 0.3 * a, -0.4 * a * bump
    elif motion == "zigzag":
        x, y, z = a * np.cos(np.pi * k * p), 0.35 * a * _triangle(3 * k * p), zero
    elif motion == "twist":
        x, y, z = zero, zero, zero
    else:
        raise ValueError(f"unknown motion {motion!r}")
    twist = 70.0 * np.sin(2 * np.pi * k * p) if motion == "twist" else zero
    return np.stack([x, y, z], axis=-1), twist


def two_bone_ik(shoulder: np.ndarray, target: np.ndarray, upper: float, lower: float,
                pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elbow and wrist (T, 3) of an arm reaching from ``shoulder`` (3,) toward ``target`` (T, 3).

    The wrist lands on the target when it is in reach (else as near as the arm allows); the
    elbow bends toward ``pole``.
    """
    d = target - shoulder
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    direction = d / np.maximum(dist, 1e-9)
    dist = np.clip(dist, abs(upper - lower) + 1e-3, 0.995 * (upper + lower))
    along = (upper**2 - lower**2 + dist**2) / (2 * dist)
    height = np.sqrt(np.maximum(upper**2 - along**2, 0.0))
    normal = pole - np.sum(pole * direction, axis=-1, keepdims=True) * direction
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
    return shoulder + along * direction + height * normal, shoulder + dist * direction


def _chain(base: np.ndarray, first: np.ndarray, curl: np.ndarray, flex: np.ndarray,
           lengths: np.ndarray) -> np.ndarray:
    """The 3 joints (T, 3, 3) after ``base`` of a finger: segment k points along ``first`` (T, 3)
    turned toward ``curl`` (T, 3) by the summed flexions ``flex[:, :k+1]`` (T, 3), in radians."""
    angles = np.cumsum(flex, axis=1)[..., None]
    steps = np.cos(angles) * first[:, None] + np.sin(angles) * curl[:, None]
    return base + np.cumsum(lengths[None, :, None] * steps, axis=1)


def hand_joints(angles: np.ndarray, roll: np.ndarray, yaw: np.ndarray, size: float) -> np.ndarray:
    """The 21 joints (T, 21, 3) of a right hand relative to its wrist, in body units.

    angles (T, 21): a HAND_SHAPES row per frame (degrees); yaw (T,) turns the palm about the
    finger axis (0: palm toward the camera); roll (T,) turns the hand in the image plane
    (0: fingers up, 90: fingers toward the image right).
    """
    rad = np.radians(angles)
    length = len(angles)
    joints = np.zeros((length, 21, 3))
    palm_normal = np.broadcast_to([0.0, 0.0, 1.0], (length, 3))
    for f in range(4):
        spread = rad[:, 4 * f]
        first = np.stack([np.sin(spread), -np.cos(spread), np.zeros(length)], axis=-1)
        joints[:, 5 + 4 * f] = FINGER_BASES[f]
        joints[:, 6 + 4 * f:9 + 4 * f] = _chain(FINGER_BASES[f], first, palm_normal, rad[:, 4 * f + 1:4 * f + 4],
                                                FINGER_LENGTHS[f])
    abduction, elevation = rad[:, 16], rad[:, 17]
    first = np.stack([np.sin(abduction) * np.cos(elevation), -np.cos(abduction) * np.cos(elevation),
                      np.sin(elevation)], axis=-1)
    curl = THUMB_CURL - np.sum(first * THUMB_CURL, axis=-1, keepdims=True) * first
    curl /= np.linalg.norm(curl, axis=-1, keepdims=True)
    joints[:, 1] = THUMB_BASE
    joints[:, 2:5] = _chain(THUMB_BASE, first, curl, rad[:, 18:21], THUMB_LENGTHS)
    r, w = np.radians(roll), np.radians(yaw)
    zeros, ones = np.zeros(length), np.ones(length)
    spin = np.stack([np.cos(w), zeros, np.sin(w), zeros, ones, zeros, -np.sin(w), zeros, np.cos(w)], -1)
    turn = np.stack([np.cos(r), -np.sin(r), zeros, np.sin(r), np.cos(r), zeros, zeros, zeros, ones], -1)
    rotation = turn.reshape(-1, 3, 3) @ spin.reshape(-1, 3, 3)
    return size * np.einsum("tij,tkj->tki", rotation, joints)


def face_landmarks(expression: np.ndarray, eye_open: np.ndarray) -> np.ndarray:
    """The 68 iBUG 300-W face points (T, 68, 2) on a unit head ellipse (x right, y down).

    expression (T, 6): the EXPRESSIONS parameters scaled by intensity; eye_open (T,) in [0, 1].
    Index 0 of the jaw and eye 36-41 are on the image left (the signer's right).
    """
    mouth_open, lips_round, smile, puff, brows_up, frown = (expression[:, i:i + 1] for i in range(6))
    length = len(expression)

    def columns(*values) -> np.ndarray:
        return np.concatenate([np.broadcast_to(v, (length, 1)) for v in values], axis=1)

    points = np.zeros((length, 68, 2))
    angle = np.radians(np.linspace(-100, 100, 17))
    cheek = np.exp(-(((np.abs(np.degrees(angle)) - 55) / 25) ** 2))
    chin = np.exp(-(((np.arange(17) - 8) / 2.5) ** 2))
    points[:, :17, 0] = 0.97 * np.sin(angle) * (1 + 0.2 * puff * cheek)
    points[:, :17, 1] = 0.97 * np.cos(angle) + 0.25 * mouth_open * chin
    ramp = np.linspace(0, 1, 5)
    brow_u = np.linspace(0.78, 0.16, 5) - 0.05 * frown * ramp
    brow_v = -0.30 - 0.07 * np.sin(np.linspace(0.3, 2.8, 5)) - 0.12 * brows_up + 0.08 * frown * ramp
    points[:, 17:22, 0], points[:, 17:22, 1] = -brow_u, brow_v
    points[:, 22:27, 0], points[:, 22:27, 1] = brow_u[:, ::-1], brow_v[:, ::-1]
    points[:, 27:31, 0], points[:, 27:31, 1] = 0.0, np.linspace(-0.12, 0.25, 4)
    points[:, 31:36, 0], points[:, 31:36, 1] = np.linspace(-0.17, 0.17, 5), [0.30, 0.32, 0.33, 0.32, 0.30]
    lid = 0.085 * (1 + 0.4 * brows_up) * eye_open[:, None]
    eye_u = np.array([-0.58, -0.47, -0.33, -0.22, -0.33, -0.47])
    eye_v = np.array([0.0, -1.0, -1.0, 0.0, 0.8, 0.8])
    mirror = [3, 2, 1, 0, 5, 4]
    points[:, 36:42, 0], points[:, 36:42, 1] = eye_u, -0.05 + lid * eye_v
    points[:, 42:48, 0], points[:, 42:48, 1] = -eye_u[mirror], -0.05 + lid * eye_v[mirror]
    half = 0.3 * (1 + 0.3 * smile - 0.4 * lips_round - 0.3 * puff)
    gap = 0.22 * mouth_open + 0.04 * np.maximum(smile, 0)
    corner = 0.01 - 0.08 * smile
    upper = (0.07 + 0.03 * lips_round) * (1 - 0.5 * puff)
    lower = (0.09 + 0.03 * lips_round) * (1 - 0.5 * puff)
    points[:, 48:60, 0] = np.array([-1, -0.6, -0.25, 0, 0.25, 0.6, 1, 0.6, 0.25, 0, -0.25, -0.6]) * half
    points[:, 48:60, 1] = 0.55 + columns(corner, -0.8 * upper, -upper - 0.01, -upper + 0.015, -upper - 0.01,
                                         -0.8 * upper, corner, gap + 0.8 * lower, gap + lower, gap + lower,
                                         gap + lower, gap + 0.8 * lower)
    points[:, 60:68, 0] = np.array([-0.85, -0.35, 0, 0.35, 0.85, 0.35, 0, -0.35]) * half
    points[:, 60:68, 1] = 0.55 + columns(corner, 0.0, 0.0, 0.0, corner, gap, gap, gap)
    return points


def _side(signer: Signer, cls: SignClass, variation: Variation, envelope: np.ndarray, phase: np.ndarray,
          mirrored: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shoulder (3,), elbow (T, 3) and the 21 hand joints (T, 21, 3) of the right arm, or of the
    left arm built as a mirrored right arm (x flipped back at the end)."""
    length = len(envelope)
    shoulder = np.array([-0.5 * signer.shoulder_width, 0.05, 0.0])
    reach = signer.upper_arm + signer.forearm
    rest = shoulder + [-0.04, 0.93 * reach, 0.08]
    moving = not mirrored or cls.hands != "one"
    offset, twist = motion_path(cls.motion, phase, cls.reps, variation.amplitude)
    if mirrored and cls.hands == "alt":
        offset, twist = -offset, -twist
    location = np.array(LOCATIONS[cls.location]) * [signer.shoulder_width, 1.0, 1.0]
    jitter = np.array(variation.offset) * ([-1.0, 1.0, 1.0] if mirrored else 1.0)
    amount = envelope[:, None] if moving else np.zeros((length, 1))
    target = rest + amount * (location + jitter + offset - rest)
    elbow, wrist = two_bone_ik(shoulder, target, signer.upper_arm, signer.forearm, ARM_POLE)
    rest_shape = np.array(HAND_SHAPES["relaxed"])
    shape = rest_shape + amount * (np.array(HAND_SHAPES[cls.shape]) - rest_shape)
    roll = REST_ROLL + amount[:, 0] * (SIGN_ROLL - REST_ROLL)
    yaw = REST_YAW + amount[:, 0] * (PALMS[cls.palm] - REST_YAW + twist)
    hand = wrist[:, None] + hand_joints(shape, roll, yaw, signer.hand_size)
    flip = np.array([-1.0, 1.0, 1.0]) if mirrored else np.ones(3)
    return shoulder * flip, elbow * flip, hand * flip


def clean_pose(cls: SignClass, signer: Signer, variation: Variation, length: int, width: int,
               height: int, face_scale: float = 1.0) -> Pose:
    """The noise-free pose (the drawn truth) of ``signer`` signing ``cls`` over ``length`` frames.

    Two classes with the same manual parameters get identical body and hand points for the same
    signer and variation; only the face differs. ``face_scale`` enlarges the head about its
    centre (1: natural proportions; the legible-face corpus's 2.4 makes the face as tall as the
    upper arm, so a 64-px model input shows it at about 30 px).
    """
    envelope, phase = timeline(signer, variation, length)
    t = np.linspace(0.0, 1.0, length)
    body_x, head_x, tilt, sway_phase = variation.sway
    wave = np.sin(2 * np.pi * t + sway_phase)
    units = np.zeros((length, NUM_KEYPOINTS, 3))
    for mirrored, (shoulder_i, elbow_i, wrist_i, hip_i), hand in (
        (False, (6, 8, 10, 12), PARTS["right_hand"]), (True, (5, 7, 9, 11), PARTS["left_hand"]),
    ):
        shoulder, elbow, joints = _side(signer, cls, variation, envelope, phase, mirrored)
        units[:, shoulder_i] = shoulder
        units[:, elbow_i] = elbow
        units[:, wrist_i] = joints[:, 0]
        units[:, hand] = joints
        units[:, hip_i] = [0.36 * signer.shoulder_width * (1 if mirrored else -1), 1.45, 0.0]
    head_a, head_b = 0.21 * signer.head_size, 0.28 * signer.head_size
    head_center = np.stack([head_x * wave, np.full(length, -(0.16 + head_b))], axis=-1)
    head_tilt = np.radians(tilt * wave)
    intensity = envelope[:, None] * np.array(EXPRESSIONS[cls.expression])
    blink = np.exp(-(((t - variation.blink) * length / 1.2) ** 2)) if variation.blink >= 0 else np.zeros(length)
    ears = np.broadcast_to([[1.0, -0.02], [-1.0, -0.02]], (length, 2, 2))  # left ear on the image right
    head_a, head_b = head_a * face_scale, head_b * face_scale                        # the centre stays put
    local = np.concatenate([face_landmarks(intensity, 1.0 - blink), ears], axis=1) * [head_a, head_b]
    cos, sin = np.cos(head_tilt)[:, None], np.sin(head_tilt)[:, None]
    rotated = np.stack([cos * local[..., 0] - sin * local[..., 1], sin * local[..., 0] + cos * local[..., 1]], -1)
    units[:, PARTS["face"], :2] = head_center[:, None] + rotated[:, :68]
    units[:, PARTS["face"], 2] = 0.2
    units[:, 3:5, :2] = head_center[:, None] + rotated[:, 68:]
    face = PARTS["face"].start
    units[:, 0] = units[:, face + 30]  # nose tip
    units[:, 1, :2] = units[:, face + 42:face + 48, :2].mean(axis=1)  # left eye: image right
    units[:, 2, :2] = units[:, face + 36:face + 42, :2].mean(axis=1)
    units[:, :, 0] += body_x * wave[:, None]
    cx, cy = signer.center
    xy = units[..., :2] * signer.scale + [cx, cy]
    visible = (xy[..., 0] >= 0) & (xy[..., 0] < width) & (xy[..., 1] >= 0) & (xy[..., 1] < height)
    visible[:, 13:23] = False
    xy[:, 13:23] = 0.0
    head = np.stack([head_center[:, 0] * signer.scale + cx + body_x * wave * signer.scale,
                     head_center[:, 1] * signer.scale + cy,
                     np.full(length, head_a * signer.scale), np.full(length, head_b * signer.scale),
                     np.degrees(head_tilt)], axis=-1)
    return Pose(xy=xy, z=units[..., 2], visible=visible, head=head)


def in_share(index: int, share: float) -> bool:
    """Whether signer ``index`` is among a ``share`` of the signers (who sign left-handed, who
    stand on a dark backdrop): every (1 / share)-th signer, so any run of signers (a split) holds
    its share, rounded."""
    return int((index + 1) * share + 1e-9) > int(index * share + 1e-9)


def mirror_pose(pose: Pose, width: int) -> Pose:
    """The mirror image of a clip's pose in a ``width``-pixel frame: x flipped, left and right
    points swapped (``FLIP_PERMUTATION``), the head tilted the other way."""
    xy = pose.xy[:, FLIP_PERMUTATION].copy()
    xy[..., 0] = width - 1 - xy[..., 0]
    head = pose.head.copy()
    head[:, 0] = width - 1 - head[:, 0]
    head[:, 4] = -head[:, 4]
    return Pose(xy=xy, z=pose.z[:, FLIP_PERMUTATION], visible=pose.visible[:, FLIP_PERMUTATION], head=head)
