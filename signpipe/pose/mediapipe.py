"""``mediapipe`` backend: MediaPipe Holistic (mediapipe 0.10.21) on the decoded frames, offline.

The graph is Holistic's own (``holistic_landmark_cpu.binarypb``, with the side inputs and
thresholds ``mediapipe.solutions.holistic.Holistic`` gives it), built through MediaPipe's
``SolutionBase`` so that signpipe controls two things ``Holistic`` hides:

- the pose landmark model file. The wheel bundles only ``pose_landmark_full.tflite``
  (model_complexity 1); for 0 and 2 ``Holistic`` downloads ``pose_landmark_lite``/``_heavy``
  from Google Cloud Storage into site-packages. signpipe never downloads: complexity 0 and 2
  need the file in ``pose.mediapipe.model_dir``, and the graph loads it from there by
  absolute path (every other model comes from the wheel);
- the outputs: only the four landmark lists are observed (no world landmarks or masks).

Each clip's frames run in order through a graph in tracking mode (each frame starts from
the previous frame's landmarks, which are smoothed over time); the graph is restarted after
every clip, so no tracking or smoothing state passes from one video to the next.

Scores: pose keypoints get BlazePose's per-landmark visibility. Holistic gives no
per-landmark confidence for the face and hands (its face and hand presence scores are not
outputs of the graph), so their keypoints score 1.0 in frames where the part was found.
Anything not found has score 0 and xy 0. Landmarks, normalised to the stored frame, are
returned in source-video pixels. The index map is ``signpipe.keypoints.mediapipe_map``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mediapipe
import numpy as np
# Imported for its side effect: it registers the option protos of Holistic's calculators,
# without which SolutionBase would silently drop those options from the graph.
from mediapipe.python.solutions import holistic  # noqa: F401
from mediapipe.calculators.core.constant_side_packet_calculator_pb2 import ConstantSidePacketCalculatorOptions
from mediapipe.python.solution_base import SolutionBase

from signpipe.keypoints.mediapipe_map import mediapipe_to_wholebody
from signpipe.pose import Backend, Clip, Keypoints, empty_keypoints, file_sha256

RESOURCE_ROOT = Path(mediapipe.__file__).resolve().parent.parent
"""The folder MediaPipe resolves its ``mediapipe/modules/...`` resource paths against."""
GRAPH = "mediapipe/modules/holistic_landmark/holistic_landmark_cpu.binarypb"
POSE_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}
"""Pose landmark model of each model_complexity; the wheel ships only complexity 1's."""
POSE_MODEL_NODE = ("poselandmarkcpu__poselandmarkbyroicpu__poselandmarkmodelloader__switchcontainer__"
                   "ConstantSidePacketCalculator_{}.packet")
"""The graph node holding the pose model path of complexity ``c``, numbered ``c + 1``."""
BUNDLED_MODELS = (
    "mediapipe/modules/pose_detection/pose_detection.tflite",
    "mediapipe/modules/holistic_landmark/hand_recrop.tflite",
    "mediapipe/modules/hand_landmark/hand_landmark_full.tflite",
    "mediapipe/modules/face_detection/face_detection_short_range.tflite",
)
"""The wheel's models that Holistic's CPU graph loads whatever the options (besides pose and face landmarks)."""
FACE_MODELS = {False: "mediapipe/modules/face_landmark/face_landmark.tflite",
               True: "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite"}
"""Face landmark model without / with refine_face_landmarks."""
PARTS = ("pose", "face", "left_hand", "right_hand")
"""Holistic's landmark outputs, ``<part>_landmarks``; left/right are the signer's (mediapipe_map)."""
SCORES = "pose: BlazePose visibility; face, hands: 1.0 where Holistic found the part; 0 and xy 0 where not found"
"""What the scores mean, for the keypoints shard's attrs."""



def options(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``pose.mediapipe`` block of ``cfg`` with its defaults, checked."""
    block = dict(cfg.get("mediapipe") or {})
    unknown = set(block) - {"model_complexity", "min_detection_confidence", "min_tracking_confidence",
                            "refine_face_landmarks", "model_dir"}
    if unknown:
        raise ValueError(f"pose.mediapipe: unknown option(s) {', '.join(sorted(unknown))}")
    opts = {"model_complexity": block.get("model_complexity", 1),
            "min_detection_confidence": float(block.get("min_detection_confidence", 0.5)),
            "min_tracking_confidence": float(block.get("min_tracking_confidence", 0.5)),
            "refine_face_landmarks": bool(block.get("refine_face_landmarks", False)),
            "model_dir": block.get("model_dir")}
    if opts["model_complexity"] not in POSE_MODELS or isinstance(opts["model_complexity"], bool):
        raise ValueError(f"pose.mediapipe.model_complexity: must be 0, 1 or 2, got {opts['model_complexity']!r}")
    for key in ("min_detection_confidence", "min_tracking_confidence"):
        if not 0.0 <= opts[key] <= 1.0:
            raise ValueError(f"pose.mediapipe.{key}: must be in [0, 1], got {opts[key]}")
    return opts


def pose_model(complexity: int, model_dir: str | None) -> Path:
    """The pose landmark model file for ``complexity``: from ``model_dir`` when it holds it, else the wheel's.

    Raises ValueError naming the config keys when the file is nowhere signpipe may look
    (MediaPipe would download it; signpipe runs offline).
    """
    name = POSE_MODELS[complexity]
    if model_dir and (Path(model_dir) / name).is_file():
        return (Path(model_dir) / name).resolve()
    if complexity == 1:
        return RESOURCE_ROOT / "mediapipe/modules/pose_landmark" / name
    where = (f"pose.mediapipe.model_dir ({model_dir}) has no {name}" if model_dir
             else "pose.mediapipe.model_dir is not set")
    raise ValueError(
        f"pose.mediapipe.model_complexity {complexity} needs {name}, which the mediapipe {mediapipe.__version__} "
        f"wheel does not ship (it bundles only {POSE_MODELS[1]}, model_complexity 1), and signpipe never downloads "
        f"models at run time; {where}. Put {name} (https://storage.googleapis.com/mediapipe-assets/{name}) in a "
        "folder named by pose.mediapipe.model_dir, or use model_complexity 1.")


def open_holistic(opts: Mapping[str, Any], pose_model_path: Path) -> SolutionBase:
    """Holistic's graph in tracking mode with the given options, loading the pose model from ``pose_model_path``."""
    complexity = opts["model_complexity"]
    packet = ConstantSidePacketCalculatorOptions.ConstantSidePacket(string_value=str(pose_model_path))
    return SolutionBase(
        binary_graph_path=GRAPH,
        side_inputs={"model_complexity": complexity, "smooth_landmarks": True, "enable_segmentation": False,
                     "smooth_segmentation": True, "refine_face_landmarks": opts["refine_face_landmarks"],
                     "use_prev_landmarks": True},
        calculator_params={
            "poselandmarkcpu__posedetectioncpu__TensorsToDetectionsCalculator.min_score_thresh":
                opts["min_detection_confidence"],
            "poselandmarkcpu__poselandmarkbyroicpu__tensorstoposelandmarksandsegmentation__"
            "ThresholdingCalculator.threshold": opts["min_tracking_confidence"],
            POSE_MODEL_NODE.format(complexity + 1): [packet],
        },
        outputs=[f"{part}_landmarks" for part in PARTS],
    )


def landmarks(result: Any) -> dict[str, np.ndarray | None]:
    """Per part, (N, 3) float32 (x, y normalised to the frame; score) of a Holistic result, None where not found.

    ``result`` is what ``process`` returns, from signpipe's graph or ``Holistic`` itself.
    """
    parts: dict[str, np.ndarray | None] = {}
    for part in PARTS:
        found = getattr(result, f"{part}_landmarks")
        if found is None:
            parts[part] = None
        elif part == "pose":
            parts[part] = np.array([(p.x, p.y, p.visibility) for p in found.landmark], np.float32)
        else:
            points = np.ones((len(found.landmark), 3), np.float32)
            points[:, :2] = [(p.x, p.y) for p in found.landmark]
            parts[part] = points
    return parts


def make_backend(cfg: Mapping[str, Any]) -> Backend:
    opts = options(cfg)
    model_path = pose_model(opts["model_complexity"], opts["model_dir"])
    # Two graphs take the clips in turn. After each clip its graph is restarted (``reset``),
    # which clears all Holistic carries from frame to frame -- the tracking ROIs and the
    # landmark and visibility smoothing filters -- so nothing passes to the next video. The
    # restart reloads every model in the graph's own threads (~0.3 s); meanwhile the other
    # graph runs the next clip. Holistic keeps about one core busy, so on a machine with a
    # second core the restart costs no time. (A black frame in between would clear the
    # tracking ROIs and landmark filter but not the visibility filter.) The graphs start with
    # the first clip, so a backend that extracts nothing runs no MediaPipe threads.
    graphs: list[SolutionBase] = []
    models = [RESOURCE_ROOT / GRAPH, model_path, RESOURCE_ROOT / FACE_MODELS[opts["refine_face_landmarks"]],
              *(RESOURCE_ROOT / m for m in BUNDLED_MODELS)]

    def extract(clip: Clip) -> Keypoints:
        if not graphs:
            graphs.extend(open_holistic(opts, model_path) for _ in range(2))
        graph = graphs[0]
        kp = empty_keypoints(clip.num_frames)
        sx, sy = clip.scale
        try:
            for t, frame in enumerate(clip.frames()):
                parts = landmarks(graph.process(frame))
                xy, score = mediapipe_to_wholebody(parts)
                height, width = frame.shape[:2]
                kp.xy[t], kp.score[t] = xy * np.float32([width * sx, height * sy]), np.clip(score, 0.0, 1.0)
                kp.people[t] = parts["pose"] is not None
        finally:
            graph.reset()
            graphs.reverse()
        return kp

    provenance = {
        "backend": "mediapipe", "version": mediapipe.__version__, "model": "Holistic (CPU graph, tracking mode)",
        **{k: v for k, v in opts.items() if v is not None},
        "models": json.dumps({p.name: file_sha256(p) for p in models}),
        "scores": SCORES, "people": "single person (Holistic)",
    }

    def close() -> None:
        for graph in graphs:
            graph.close()

    return Backend(extract, provenance, close)
