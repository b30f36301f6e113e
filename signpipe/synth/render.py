"""Drawing the synthetic signer from its clean pose, and writing the clip as H.264 MP4.

Every shape is drawn from the 133 keypoints of :class:`~signpipe.synth.pose.Pose` (plus its
head ellipse), so the video shows exactly the pose stored in the sidecar before noise. The
geometry of a whole clip is computed at once with numpy; the per-frame loop only issues the
cv2 calls (antialiased, at 1/16 pixel), which keeps a 32-frame clip at a few milliseconds.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from signpipe.keypoints.layout import PARTS
from signpipe.shards import atomic_path
from signpipe.synth.pose import Pose, Signer

SHIFT = 4
"""Sub-pixel bits of the cv2 coordinates."""
AA = cv2.LINE_AA
RIM = cv2.LINE_8
"""Dark rims are drawn aliased (4x cheaper); the fills over them are antialiased."""
FACE = PARTS["face"].start
HANDS = (PARTS["right_hand"].start, PARTS["left_hand"].start)
ARMS = ((6, 8, 10), (5, 7, 9))
"""Shoulder, elbow, wrist of the right and the left arm (same order as HANDS)."""
FINGERS = [[1, 2, 3, 4]] + [[4 * f + k for k in range(1, 5)] for f in range(1, 5)]
"""Local joint chains drawn as fingers: thumb (from its base), index, middle, ring, pinky."""
FINGER_WIDTHS = (0.05, 0.045, 0.047, 0.044, 0.038)
PALM_THICKNESS = 0.03
EYE_WHITE, IRIS, MOUTH = (245, 245, 245), (50, 35, 25), (90, 25, 35)


def _fixed(xy: np.ndarray) -> np.ndarray:
    """Pixel coordinates as cv2 fixed-point int32."""
    return np.round(np.asarray(xy) * (1 << SHIFT)).astype(np.int32)


def _shade(colour: tuple[int, int, int], factor: float, red: float = 0.0) -> tuple[int, int, int]:
    r, g, b = (np.array(colour, float) * factor + [red, 0, 0]).clip(0, 255)
    return int(r), int(g), int(b)


def background(signer: Signer, width: int, height: int) -> np.ndarray:
    """Backdrop (H, W, 3) uint8: the signer's colour with a soft vertical gradient."""
    ramp = np.linspace(1.08, 0.82, height)[:, None, None]
    row = np.clip(np.array(signer.background, float)[None, None] * ramp, 0, 255)
    return np.ascontiguousarray(np.broadcast_to(row, (height, width, 3)), dtype=np.uint8)


def _on_head(head: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Image points (T, N, 2) of head-frame points ``u, v`` (N,) (unit ellipse, y down) per frame."""
    cx, cy, a, b, tilt = (head[:, i:i + 1] for i in range(5))
    cos, sin = np.cos(np.radians(tilt)), np.sin(np.radians(tilt))
    x, y = a * u, b * v
    return np.stack([cx + cos * x - sin * y, cy + sin * x + cos * y], axis=-1)


def _arc(head: np.ndarray, start: float, stop: float, count: int, radius: float = 1.0,
         lift: float = 0.0) -> np.ndarray:
    angles = np.radians(np.linspace(start, stop, count))
    return _on_head(head, radius * np.cos(angles), radius * np.sin(angles) - lift)


def _palms(pose: Pose, scale: float) -> np.ndarray:
    """Outline candidates (T, 2, 16, 2) of both palms (right, left), thickened along the palm normal."""
    out = []
    for start in HANDS:
        xy = pose.xy[:, start:start + 21]
        joints = np.concatenate([xy, pose.z[:, start:start + 21, None] * scale], axis=-1)
        normal = np.cross(joints[:, 5] - joints[:, 0], joints[:, 17] - joints[:, 0])
        normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-9)
        thick = (PALM_THICKNESS * scale * normal[:, :2])[:, None]
        across = 0.35 * (xy[:, 5] - xy[:, 17])
        palm = np.stack([xy[:, 0] + across, xy[:, 1], xy[:, 2], xy[:, 5], xy[:, 9], xy[:, 13], xy[:, 17],
                         xy[:, 0] - across], axis=1)
        out.append(np.concatenate([palm + thick, palm - thick], axis=1))
    return np.stack(out, axis=1)


def _layers(pose: Pose) -> np.ndarray:
    """Drawing order (T, 2, 6) of each hand's parts, far first: -1 is the palm, 0-4 the fingers."""
    order = []
    for start in HANDS:
        z = pose.z[:, start:start + 21]
        depth = [z[:, [0, 5, 9, 13, 17]].mean(axis=1)] + [z[:, chain].mean(axis=1) for chain in FINGERS]
        order.append(np.argsort(np.stack(depth, axis=1), axis=1, kind="stable") - 1)
    return np.stack(order, axis=1)


def render(pose: Pose, signer: Signer, width: int, height: int) -> np.ndarray:
    """All frames (T, H, W, 3) RGB uint8 of a clip: backdrop, torso, head and face, arms, hands."""
    s, length = signer.scale, len(pose.xy)
    skin, clothes, hair = signer.skin, signer.clothes, signer.hair
    skin_dark, cloth_dark, sleeve = _shade(skin, 0.6), _shade(clothes, 0.55), _shade(clothes, 0.9)
    lips, brow = _shade(skin, 0.78, 40), _shade(hair, 0.8)
    edge = max(1, round(0.012 * s))
    feature, thin = max(1, round(0.03 * s)), max(1, round(0.015 * s))
    arm_widths = (max(1, round(0.17 * s)), max(1, round(0.13 * s)))
    finger_widths = [max(1, round(w * s)) for w in FINGER_WIDTHS]

    xy, head = pose.xy, pose.head
    face = xy[:, FACE:FACE + 68]
    neck = (xy[:, 5] + xy[:, 6]) / 2 - [0, 0.05 * s]
    chin = face[:, 7:10].mean(axis=1)
    pts = _fixed(xy)
    neck_poly = _fixed(np.stack([neck + [-0.085 * s, 0], chin + [-0.08 * s, -0.1 * s],
                                 chin + [0.08 * s, -0.1 * s], neck + [0.085 * s, 0]], axis=1))
    torso = _fixed(np.stack([xy[:, 6], neck + [-0.12 * s, 0], neck + [0, 0.12 * s], neck + [0.12 * s, 0], xy[:, 5],
                             xy[:, 5] + [0.02 * s, 0.5 * s], xy[:, 11], xy[:, 12], xy[:, 6] + [-0.02 * s, 0.5 * s]],
                            axis=1))
    hair_back = _fixed(_arc(head, 0, 360, 40, 1.07, 0.1))
    face_poly = _fixed(np.concatenate([face[:, :17], _arc(head, -10, -170, 24, 0.97)], axis=1))
    fringe_u = np.linspace(0.98, -0.98, 12)
    cap = _fixed(np.concatenate([_arc(head, -175, -5, 24, 1.02),
                                 _on_head(head, fringe_u, -0.5 - 0.1 * (1 - fringe_u**2))], axis=1))
    ear_axes = _fixed(np.array([0.14 * head[0, 2], 0.24 * head[0, 3]])).tolist()
    eyes = [face[:, 36:42], face[:, 42:48]]
    opening = [np.linalg.norm(e[:, [1, 2]].mean(1) - e[:, [4, 5]].mean(1), axis=-1) / 2 for e in eyes]
    iris = [np.minimum(0.3 * np.linalg.norm(e[:, 0] - e[:, 3], axis=-1), o) for e, o in zip(eyes, opening)]
    iris_r = (np.stack(iris, 1) * (1 << SHIFT)).astype(int)
    iris_c = _fixed(np.stack([e.mean(axis=1) for e in eyes], axis=1))
    open_eye = np.stack(opening, axis=1) > 0.3
    palms = _fixed(_palms(pose, s))
    arms = np.ascontiguousarray(pts[:, np.array(ARMS)])
    layers = _layers(pose)
    arm_order = np.argsort(pose.z[:, [10, 9]], axis=1, kind="stable")
    shoulder_r = round(0.1 * s * (1 << SHIFT))

    backdrop = background(signer, width, height)
    frames = np.empty((length, height, width, 3), np.uint8)
    for t in range(length):
        img = frames[t]
        img[:] = backdrop
        p = pts[t]
        f = p[FACE:FACE + 68]
        cv2.polylines(img, [neck_poly[t]], True, skin_dark, 2 * edge, RIM, SHIFT)
        cv2.fillPoly(img, [neck_poly[t]], skin, AA, SHIFT)
        cv2.polylines(img, [torso[t]], True, cloth_dark, 2 * edge, RIM, SHIFT)
        cv2.fillPoly(img, [torso[t]], clothes, AA, SHIFT)
        cv2.circle(img, p[5].tolist(), shoulder_r, clothes, -1, AA, SHIFT)
        cv2.circle(img, p[6].tolist(), shoulder_r, clothes, -1, AA, SHIFT)
        cv2.fillPoly(img, [hair_back[t]], hair, AA, SHIFT)
        for ear in (p[3].tolist(), p[4].tolist()):
            cv2.ellipse(img, ear, ear_axes, head[t, 4], 0, 360, skin, -1, AA, SHIFT)
            cv2.ellipse(img, ear, ear_axes, head[t, 4], 0, 360, skin_dark, 1, AA, SHIFT)
        cv2.polylines(img, [face_poly[t]], True, skin_dark, 2 * edge, RIM, SHIFT)
        cv2.fillPoly(img, [face_poly[t]], skin, AA, SHIFT)
        cv2.fillPoly(img, [cap[t]], hair, AA, SHIFT)
        cv2.polylines(img, [f[17:22], f[22:27]], False, brow, feature, AA, SHIFT)
        cv2.fillPoly(img, [f[36:42], f[42:48]], EYE_WHITE, AA, SHIFT)
        for k in range(2):
            if open_eye[t, k]:
                cv2.circle(img, iris_c[t, k].tolist(), int(iris_r[t, k]), IRIS, -1, AA, SHIFT)
        cv2.polylines(img, [f[36:40], f[42:46]], False, (40, 30, 30), thin, AA, SHIFT)
        cv2.polylines(img, [f[27:31], f[31:36]], False, skin_dark, thin, AA, SHIFT)
        cv2.fillPoly(img, [f[48:60]], lips, AA, SHIFT)
        cv2.fillPoly(img, [f[60:68]], MOUTH, AA, SHIFT)
        cv2.polylines(img, [f[60:65]], False, MOUTH, 1, AA, SHIFT)
        for side in arm_order[t]:
            arm = arms[t, side]
            for line, width_px, colour in ((arm[:2], arm_widths[0], clothes), (arm[1:], arm_widths[1], sleeve)):
                cv2.polylines(img, [line], False, cloth_dark, width_px + 2 * edge, RIM, SHIFT)
                cv2.polylines(img, [line], False, colour, width_px, AA, SHIFT)
            hand = p[HANDS[side]:HANDS[side] + 21]
            for part in layers[t, side]:
                if part < 0:
                    hull = cv2.convexHull(palms[t, side])
                    cv2.polylines(img, [hull], True, skin_dark, 2 * edge, RIM, SHIFT)
                    cv2.fillPoly(img, [hull], skin, AA, SHIFT)
                else:
                    chain = hand[FINGERS[part]]
                    cv2.polylines(img, [chain], False, skin_dark, finger_widths[part] + 2 * edge, RIM, SHIFT)
                    cv2.polylines(img, [chain], False, skin, finger_widths[part], AA, SHIFT)
    return frames


def write_video(frames: np.ndarray, path: str | Path, fps: float) -> None:
    """Write frames (T, H, W, 3) RGB uint8 as H.264 yuv420p MP4, atomically.

    One encoder thread, so the bytes depend only on the frames (and parallel clips do not
    oversubscribe the cores); preset ultrafast, since the drawings are simple.
    """
    with atomic_path(path, ".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.codec_context.thread_count = 1
            stream.options = {"crf": "20", "preset": "ultrafast"}
            for rgb in frames:
                yuv = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
                for packet in stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuv420p")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
