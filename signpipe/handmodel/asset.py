"""signpipe's open hand: a MANO-format right hand built from anatomical tables, not from scans.

MANO is learned from about a thousand registered hand scans and is licence-gated. This asset has
MANO's format and kinematic tree but is *constructed*: a skeleton from published segment-length
proportions, tubes around the digits and an elliptic palm as the mesh, rigid skinning blended at
the joints, a joint regressor that averages the ring of vertices around each joint centre, ten
shape directions that change bone lengths and thicknesses, zero pose correctives, and a pose PCA
computed from articulations sampled inside anatomical joint limits with coupled distal flexion.
``build_asset`` makes it deterministically from a seed; ``signpipe handmodel build`` writes it.

Model frame (metres, right hand): wrist at the origin, fingers along +y, thumb on +x, palm facing
+z; positive flexion curls a digit towards its pad. The left hand is the mirror image
(``mano.mirror_model``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from signpipe.handmodel.defaults import ASSET_PATH, DEFAULT_SEED
from signpipe.handmodel.mano import MANO_JOINT_NAMES, MANO_PARENTS, MODEL_KEYS
from signpipe.keypoints.layout import FINGERS, HAND_JOINT_NAMES
from signpipe.shards import atomic_path

NUM_SAMPLES = 20000
"""Sampled articulations the pose PCA is computed from."""

HAND_LENGTH = 0.189
"""Wrist crease to middle fingertip in metres, an adult mean; beta[0] = 1 makes it 5% longer."""

BONE_FRACTIONS: dict[str, tuple[float, float, float, float]] = {
    "thumb": (0.118, 0.251, 0.196, 0.158),
    "index": (0.463, 0.245, 0.143, 0.097),
    "middle": (0.446, 0.266, 0.170, 0.108),
    "ring": (0.421, 0.244, 0.165, 0.107),
    "pinky": (0.414, 0.204, 0.117, 0.093),
}
"""Bone length / hand length of each digit's bones in ``HAND_EDGES`` order: wrist -> base joint
(thumb CMC, finger MCP), then the three segments to the tip. After the segment-length
coefficients of Buchholz, Armstrong & Goldstein (1992)."""

BASE_ANGLES = {"thumb": 45.0, "index": 15.0, "middle": 2.0, "ring": -12.0, "pinky": -26.0}
"""Direction wrist -> base joint in the palm plane, degrees from +y towards the thumb (+x)."""

DIGIT_ANGLES = {
    "thumb": ((40.0, 25.0), (32.0, 20.0), (28.0, 15.0)),
    "index": ((6.0, 0.0),) * 3,
    "middle": ((0.0, 0.0),) * 3,
    "ring": ((-6.0, 0.0),) * 3,
    "pinky": ((-12.0, 0.0),) * 3,
}
"""(azimuth towards +x, elevation towards the palm side +z) in degrees of each digit's three bones
after the base joint: straight, slightly spread fingers and a thumb resting beside the palm."""

THUMB_PRONATION = 60.0
"""Degrees the thumb pad is turned from the palm normal towards the fingers."""

RADII = {
    "thumb": (0.075, 0.062, 0.055, 0.045),
    "index": (0.052, 0.047, 0.040, 0.032),
    "middle": (0.054, 0.048, 0.041, 0.033),
    "ring": (0.050, 0.045, 0.038, 0.031),
    "pinky": (0.043, 0.039, 0.033, 0.027),
}
"""Tube radius / hand length at the base joint, the next two joints and the tip of each digit."""

PALM = {"half_width": (0.16, 0.20), "half_thickness": (0.09, 0.07)}
"""Palm half width and half thickness / hand length at the wrist and at the knuckles."""

JOINT_LIMITS = {
    "mcp_flexion": (-20.0, 90.0), "mcp_spread": (-10.0, 20.0), "pip_flexion": (0.0, 105.0),
    "dip_flexion": (-5.0, 80.0), "cmc_flexion": (-20.0, 50.0), "cmc_abduction": (-20.0, 35.0),
    "thumb_mcp_flexion": (-10.0, 60.0), "thumb_ip_flexion": (-15.0, 80.0),
}
"""Active ranges of motion in degrees, within the normal ranges reported by the AAOS and by Lin,
Wu & Huang (2000); spread is MCP abduction away from the middle finger."""

DIP_PER_PIP = 2.0 / 3.0
"""Coupled flexion of the distal joint, DIP = 2/3 PIP (Rijpkema & Girard 1991; Lin et al. 2000)."""

SPREAD_SIGN = {"index": -1.0, "middle": -1.0, "ring": 1.0, "pinky": 1.0}
"""Rotation sign about the palm normal that spreads each finger away from the middle one."""

RING_SIDES = {"digit": 8, "palm": 16}
PALM_RINGS = 6
KNUCKLES = [HAND_JOINT_NAMES.index(f"{finger}1") for finger in FINGERS[1:]]

Part = tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, np.ndarray]]
"""A closed piece of mesh: vertices (n, 3), triangles (m, 3), skinning weights (n, 16) and, per
MANO joint it is centred on, the indices of that joint's ring of vertices."""


@dataclass(frozen=True)
class Anatomy:
    """The numbers the mesh is linear in, metres: bone lengths (5, 4) as in ``BONE_FRACTIONS``, a
    lateral spread factor of the base joints, digit radii (5, 4) and palm half widths and half
    thicknesses (2,) at the wrist and the knuckles."""

    lengths: np.ndarray
    spread: float
    radii: np.ndarray
    palm_width: np.ndarray
    palm_thickness: np.ndarray


def default_anatomy() -> Anatomy:
    """The mean hand of the tables above."""
    return Anatomy(
        lengths=HAND_LENGTH * np.array([BONE_FRACTIONS[f] for f in FINGERS]),
        spread=1.0,
        radii=HAND_LENGTH * np.array([RADII[f] for f in FINGERS]),
        palm_width=HAND_LENGTH * np.array(PALM["half_width"]),
        palm_thickness=HAND_LENGTH * np.array(PALM["half_thickness"]),
    )


def _scaled(values: np.ndarray, rows: list[int], cols: list[int], factor: float) -> np.ndarray:
    out = values.copy()
    out[np.ix_(rows, cols)] *= factor
    return out


FINGER_ROWS, PHALANX_COLS = [1, 2, 3, 4], [1, 2, 3]
SHAPE_DIRECTIONS: dict[str, tuple[float, Callable[[Anatomy, float], Anatomy]]] = {
    "size": (0.05, lambda a, e: Anatomy(
        a.lengths * (1 + e), a.spread, a.radii * (1 + e), a.palm_width * (1 + e), a.palm_thickness * (1 + e))),
    "palm_length": (0.04, lambda a, e: replace(a, lengths=_scaled(a.lengths, list(range(5)), [0], 1 + e))),
    "palm_breadth": (0.05, lambda a, e: replace(a, spread=a.spread * (1 + e), palm_width=a.palm_width * (1 + e))),
    "finger_length": (0.04, lambda a, e: replace(a, lengths=_scaled(a.lengths, FINGER_ROWS, PHALANX_COLS, 1 + e))),
    "thumb_length": (0.05, lambda a, e: replace(a, lengths=_scaled(a.lengths, [0], PHALANX_COLS, 1 + e))),
    "thickness": (0.08, lambda a, e: replace(a, radii=a.radii * (1 + e))),
    "palm_thickness": (0.10, lambda a, e: replace(a, palm_thickness=a.palm_thickness * (1 + e))),
    "digit_ratio": (0.03, lambda a, e: replace(
        a, lengths=_scaled(_scaled(a.lengths, [1], PHALANX_COLS, 1 + e), [3], PHALANX_COLS, 1 - e))),
    "pinky_length": (0.05, lambda a, e: replace(a, lengths=_scaled(a.lengths, [4], PHALANX_COLS, 1 + e))),
    "distal_proportion": (0.05, lambda a, e: replace(
        a, lengths=_scaled(_scaled(a.lengths, list(range(5)), [3], 1 + e), list(range(5)), [1], 1 - e))),
}
"""beta[k] = 1 changes the k-th named proportion by the given relative amount (about one
population standard deviation): the ten MANO shape coefficients of the open hand."""


def _unit(azimuth: float, elevation: float = 0.0) -> np.ndarray:
    az, el = np.radians(azimuth), np.radians(elevation)
    return np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])


BONE_DIRECTIONS = np.array([[_unit(BASE_ANGLES[f])] + [_unit(*a) for a in DIGIT_ANGLES[f]] for f in FINGERS])
"""(5, 4, 3) unit directions of the bones of ``BONE_FRACTIONS``; fixed, so the mesh is linear in ``Anatomy``."""


def _pad_direction(finger: str, direction: np.ndarray) -> np.ndarray:
    """Unit direction a digit's pad faces, perpendicular to its bone: the palm normal for fingers,
    turned ``THUMB_PRONATION`` towards the fingers for the thumb."""
    z = np.array([0.0, 0.0, 1.0])
    if finger == "thumb":
        towards_fingers = np.cross(z, direction)
        angle = np.radians(THUMB_PRONATION)
        z = np.cos(angle) * z + np.sin(angle) * towards_fingers / np.linalg.norm(towards_fingers)
    pad = z - z.dot(direction) * direction
    return pad / np.linalg.norm(pad)


def skeleton(anatomy: Anatomy) -> np.ndarray:
    """The rest joints (21, 3) in ``HAND_JOINT_NAMES`` order (wrist, then four joints per digit)."""
    joints = np.zeros((21, 3))
    for f in range(5):
        base = anatomy.lengths[f, 0] * BONE_DIRECTIONS[f, 0] * np.array([anatomy.spread, 1.0, 1.0])
        steps = anatomy.lengths[f, 1:, None] * BONE_DIRECTIONS[f, 1:]
        joints[1 + 4 * f] = base
        joints[2 + 4 * f:5 + 4 * f] = base + np.cumsum(steps, axis=0)
    return joints


@dataclass
class _Ring:
    centre: np.ndarray
    radii: tuple[float, float]
    u: np.ndarray
    direction: np.ndarray
    weights: dict[int, float]
    joint: int | None = None
    """MANO joint this ring is centred on (its vertices' mean is that joint), if any."""


def _tube(rings: list[_Ring], start: np.ndarray, end: np.ndarray, start_weights: dict[int, float],
          sides: int) -> Part:
    """A closed tube through ``rings``, capped by apex vertices ``start`` and ``end`` (the last
    vertex); triangles face outwards."""
    phi = 2 * np.pi * np.arange(sides) / sides
    vertices, weights, joint_rings = [], [], {}
    for i, ring in enumerate(rings):
        w = np.cross(ring.direction, ring.u)
        vertices.append(ring.centre + ring.radii[0] * np.cos(phi)[:, None] * ring.u
                        + ring.radii[1] * np.sin(phi)[:, None] * w)
        weights += [ring.weights] * sides
        if ring.joint is not None:
            joint_rings[ring.joint] = i * sides + np.arange(sides)
    vertices += [start[None], end[None]]
    weights += [start_weights, rings[-1].weights]
    k, k1 = np.arange(sides), (np.arange(sides) + 1) % sides
    faces = []
    for i in range(len(rings) - 1):
        a, b = i * sides, (i + 1) * sides
        faces += [np.stack([a + k, a + k1, b + k1], 1), np.stack([a + k, b + k1, b + k], 1)]
    first, last = len(rings) * sides, len(rings) * sides + 1
    final = (len(rings) - 1) * sides
    faces += [np.stack([k1, k, np.full(sides, first)], 1),
              np.stack([final + k, final + k1, np.full(sides, last)], 1)]
    dense = np.zeros((len(weights), len(MANO_JOINT_NAMES)))
    for row, entry in enumerate(weights):
        for joint, value in entry.items():
            dense[row, joint] = value
    return np.concatenate(vertices), np.concatenate(faces), dense, joint_rings


def _palm(anatomy: Anatomy, joints: np.ndarray) -> Part:
    """The palm: an elliptic tube from the wrist to the centre of the four knuckles, skinned to the wrist."""
    knuckles = joints[KNUCKLES].mean(axis=0)
    x, y = np.eye(3)[0], np.eye(3)[1]
    rings = []
    for t in np.linspace(0.0, 1.0, PALM_RINGS):
        radii = ((1 - t) * anatomy.palm_width[0] + t * anatomy.palm_width[1],
                 (1 - t) * anatomy.palm_thickness[0] + t * anatomy.palm_thickness[1])
        rings.append(_Ring(t * knuckles, radii, x, y, {0: 1.0}, joint=0 if t == 0 else None))
    start = -0.5 * anatomy.palm_thickness[0] * y
    end = knuckles + 0.5 * anatomy.palm_thickness[1] * y
    return _tube(rings, start, end, {0: 1.0}, RING_SIDES["palm"])


def _digit(anatomy: Anatomy, joints: np.ndarray, f: int) -> Part:
    """One digit: a tube from its base joint to its tip, each bone skinned to the joint it leaves,
    rings at the joints shared half and half with the parent; the tip is the last vertex."""
    finger = FINGERS[f]
    mano = [MANO_JOINT_NAMES.index(f"{finger}{k}") for k in (1, 2, 3)]
    parents = [MANO_PARENTS[mano[0]]] + mano[:2]
    points, radii, bones = joints[1 + 4 * f:5 + 4 * f], anatomy.radii[f], BONE_DIRECTIONS[f, 1:]
    rings = []
    for k in range(3):
        at_joint = bones[k] if k == 0 else (bones[k - 1] + bones[k]) / np.linalg.norm(bones[k - 1] + bones[k])
        mid_point = (points[k] + points[k + 1]) / 2 if k < 2 else points[3] - radii[3] * bones[2]
        mid_radius = (radii[k] + radii[k + 1]) / 2 if k < 2 else radii[3]
        rings.append(_Ring(points[k], (radii[k],) * 2, _pad_direction(finger, at_joint), at_joint,
                           {parents[k]: 0.5, mano[k]: 0.5}, joint=mano[k]))
        rings.append(_Ring(mid_point, (mid_radius,) * 2, _pad_direction(finger, bones[k]), bones[k],
                           {mano[k]: 1.0}))
    start = points[0] - 0.6 * radii[0] * bones[0]
    return _tube(rings, start, points[3], {parents[0]: 1.0}, RING_SIDES["digit"])


def build_mesh(anatomy: Anatomy) -> dict[str, np.ndarray]:
    """Template vertices, faces, skinning weights, joint regressor and tip vertices of a hand.

    Palm first, then the digits in ``FINGERS`` order. Each joint is the mean of the ring of
    vertices centred on it, so the regressor recovers the skeleton exactly.
    """
    joints = skeleton(anatomy)
    parts = [_palm(anatomy, joints)] + [_digit(anatomy, joints, f) for f in range(5)]
    vertices, faces, weights, regressor, tips, offset = [], [], [], {}, [], 0
    for part_vertices, part_faces, part_weights, joint_rings in parts:
        vertices.append(part_vertices)
        faces.append(part_faces + offset)
        weights.append(part_weights)
        regressor.update({joint: ring + offset for joint, ring in joint_rings.items()})
        offset += len(part_vertices)
        tips.append(offset - 1)
    j_regressor = np.zeros((len(MANO_JOINT_NAMES), offset))
    for joint, ring in regressor.items():
        j_regressor[joint, ring] = 1.0 / len(ring)
    return {
        "v_template": np.concatenate(vertices), "f": np.concatenate(faces), "weights": np.concatenate(weights),
        "J_regressor": j_regressor, "tip_vertices": np.array(tips[1:]),
    }


def joint_axes() -> np.ndarray:
    """(15, 3, 3) rest-frame axes (flexion, abduction, twist) of MANO joints 1-15.

    Twist is along the bone leaving the joint, abduction about the pad normal, flexion about their
    cross product so that a positive angle curls the digit towards its pad.
    """
    axes = np.zeros((len(MANO_JOINT_NAMES) - 1, 3, 3))
    for j, name in enumerate(MANO_JOINT_NAMES[1:]):
        finger, k = name[:-1], int(name[-1])
        twist = BONE_DIRECTIONS[FINGERS.index(finger), k]
        pad = _pad_direction(finger, twist)
        axes[j] = [np.cross(twist, pad), pad, twist]
    return axes


def _lerp(limits: tuple[float, float], t: np.ndarray) -> np.ndarray:
    return limits[0] + (limits[1] - limits[0]) * np.clip(t, 0.0, 1.0)


def _curls(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Curl in [0, 1] per digit: mostly extended or flexed (as in handshapes), sometimes in between."""
    mode = rng.choice(3, size=shape, p=[0.4, 0.4, 0.2])
    return np.select([mode == 0, mode == 1], [rng.uniform(0.0, 0.2, shape), rng.uniform(0.8, 1.0, shape)],
                     rng.random(shape))


def sample_articulations(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, 15, 3) angles in degrees (flexion, abduction, twist) of MANO joints 1-15.

    Each finger curls as a unit (MCP and PIP together, DIP = 2/3 PIP) except in one draw of five
    where MCP and PIP move independently (flat-bent and claw shapes); the ring and little fingers
    often follow their neighbour; spread shrinks as a finger flexes; the thumb opposes with CMC
    flexion coupled to pronation. A few degrees of noise on every axis keep all 45 directions.
    """
    angles = rng.normal(0.0, 3.0, (n, len(MANO_JOINT_NAMES), 3))
    curl = _curls(rng, (n, 4))
    follows = rng.random((n, 2)) < (0.3, 0.6)
    curl[:, 2] = np.where(follows[:, 0], curl[:, 1], curl[:, 2])
    curl[:, 3] = np.where(follows[:, 1], curl[:, 2], curl[:, 3])
    spread = rng.uniform(-0.3, 1.0, n)
    for i, finger in enumerate(FINGERS[1:]):
        mcp, pip, dip = (MANO_JOINT_NAMES.index(f"{finger}{k}") for k in (1, 2, 3))
        c = curl[:, i]
        mcp_flexion = _lerp((0.0, 90.0), c) + rng.normal(0, 10, n)
        angles[:, mcp, 0] = np.clip(mcp_flexion, *JOINT_LIMITS["mcp_flexion"])
        pip_curl = np.where(rng.random(n) < 0.2, rng.random(n), c + rng.normal(0, 0.1, n))
        angles[:, pip, 0] = _lerp(JOINT_LIMITS["pip_flexion"], pip_curl)
        dip_flexion = DIP_PER_PIP * angles[:, pip, 0] + rng.normal(0, 5, n)
        angles[:, dip, 0] = np.clip(dip_flexion, *JOINT_LIMITS["dip_flexion"])
        reach = 0.0 if finger == "middle" else JOINT_LIMITS["mcp_spread"][1]
        abduction = np.clip(spread * reach * (1 - 0.7 * c) + angles[:, mcp, 1], *JOINT_LIMITS["mcp_spread"])
        angles[:, mcp, 1] = SPREAD_SIGN[finger] * abduction
    cmc, mcp, ip = (MANO_JOINT_NAMES.index(f"thumb{k}") for k in (1, 2, 3))
    angles[:, cmc, 0] = np.clip(_lerp(JOINT_LIMITS["cmc_flexion"], rng.random(n)) + rng.normal(0, 8, n),
                                *JOINT_LIMITS["cmc_flexion"])
    angles[:, cmc, 1] = rng.uniform(*JOINT_LIMITS["cmc_abduction"], n)
    angles[:, cmc, 2] += 0.4 * angles[:, cmc, 0]
    thumb_curl = _curls(rng, (n,))
    thumb_mcp_flexion = _lerp((0.0, 60.0), thumb_curl) + rng.normal(0, 8, n)
    angles[:, mcp, 0] = np.clip(thumb_mcp_flexion, *JOINT_LIMITS["thumb_mcp_flexion"])
    angles[:, ip, 0] = _lerp(JOINT_LIMITS["thumb_ip_flexion"], thumb_curl + rng.normal(0, 0.2, n))
    return angles[:, 1:]


def articulation_rotvecs(angles: np.ndarray) -> np.ndarray:
    """(n, 15, 3) joint angles in degrees -> (n, 45) MANO axis-angle pose, R = R_flex R_abd R_twist."""
    axes = joint_axes()
    rotvecs = np.zeros(angles.shape)
    for j in range(angles.shape[1]):
        rotation = Rotation.identity(len(angles))
        for a in range(3):
            rotation = rotation * Rotation.from_rotvec(np.radians(angles[:, j, a])[:, None] * axes[j, a])
        rotvecs[:, j] = rotation.as_rotvec()
    return rotvecs.reshape(len(angles), -1)


def pose_pca(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 45) poses -> mean (45,), components (45, 45) and explained variance ratio (45,).

    Components are scaled by their standard deviation, so theta ~ N(0, I) reproduces the sampled
    distribution and the papers' ||theta||^2 regulariser is its negative log-density. Signs are
    fixed (largest entry positive) so a rebuild gives the same basis.
    """
    mean = poses.mean(axis=0)
    _, singular, basis = np.linalg.svd(poses - mean, full_matrices=False)
    variance = singular**2 / (len(poses) - 1)
    basis *= np.sign(basis[np.arange(len(basis)), np.abs(basis).argmax(axis=1)])[:, None]
    return mean, basis * np.sqrt(variance)[:, None], variance / variance.sum()


def build_asset(seed: int = DEFAULT_SEED) -> dict[str, np.ndarray]:
    """The open right hand in MANO format (``MODEL_KEYS`` + ``tip_vertices``) plus build info."""
    anatomy = default_anatomy()
    mesh = build_mesh(anatomy)
    shapedirs = np.stack([
        build_mesh(step(anatomy, eps))["v_template"] - mesh["v_template"]
        for eps, step in SHAPE_DIRECTIONS.values()
    ], axis=-1)
    poses = articulation_rotvecs(sample_articulations(np.random.default_rng(seed), NUM_SAMPLES))
    mean, components, explained = pose_pca(poses)
    num_joints = len(MANO_JOINT_NAMES)
    return {
        "v_template": mesh["v_template"].astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((len(mesh["v_template"]), 3, 9 * (num_joints - 1)), np.float32),
        "J_regressor": mesh["J_regressor"].astype(np.float32),
        "weights": mesh["weights"].astype(np.float32),
        "kintree_table": np.stack([MANO_PARENTS, np.arange(num_joints)]).astype(np.int64),
        "f": mesh["f"].astype(np.int32),
        "hands_components": components.astype(np.float32),
        "hands_mean": mean.astype(np.float32),
        "tip_vertices": mesh["tip_vertices"].astype(np.int64),
        "explained_variance": explained.astype(np.float32),
        "shape_names": np.array(list(SHAPE_DIRECTIONS)),
        "seed": np.array(seed),
    }


def save_asset(asset: dict[str, np.ndarray], path: str | os.PathLike = ASSET_PATH) -> Path:
    """Write an asset as a compressed ``.npz``, atomically."""
    with atomic_path(path, ".npz") as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **asset)
    return Path(path)


def load_asset(path: str | os.PathLike = ASSET_PATH) -> dict[str, np.ndarray]:
    """The model arrays (``MODEL_KEYS`` + ``tip_vertices``) of an asset file, the shipped one by default."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: open hand asset missing; regenerate it with `signpipe handmodel build`")
    with np.load(path) as data:
        return {key: data[key] for key in MODEL_KEYS + ("tip_vertices",)}
