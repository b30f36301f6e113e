"""``mmpose`` backend: live top-down COCO-WholeBody inference with MMPose (optional).

Options (``pose.mmpose``): ``config`` and ``checkpoint`` of a wholebody top-down model (e.g.
RTMPose or HRNet trained on COCO-WholeBody), optional ``det_config`` / ``det_checkpoint`` of an
MMDetection person detector, ``batch_size`` (frames per forward pass, default 16). The device
is ``pose.device`` (``auto``: CUDA when present).

Boxes. With a detector, every person it finds (COCO class 0, score > ``DET_SCORE``) is posed and
the signer is chosen among them. Without one, the first batch uses the whole frame as the box;
every later batch uses the signer's keypoint box in the last frame of the batch before, enlarged
by ``BOX_ENLARGE`` (the whole frame again when that frame had no confident keypoints). The box
is thus refreshed once per batch; ``batch_size: 1`` follows the previous frame exactly.

MMPose's results go through ``mmpose.structures.split_instances``, the function that writes the
demo's prediction files, and then through the ``mmpose-json`` import's conversion
(``instance_person`` + ``select_signer``): CI tests that path on real MMPose files, since mmcv's
compiled ops do not build against signpipe's torch. The stack (mmpose 1.3.2, mmdet 3.3.0, mmcv
2.1.0, mmengine 0.10) lives in its own environment, ``workflow/envs/mmpose.yaml``, and is
imported only here, when the backend is chosen.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.pose import Backend, Clip, Keypoints, file_sha256
from signpipe.pose.mmpose_json import instance_person
from signpipe.pose.track import POLICY, Person, select_signer

DET_SCORE = 0.3
"""Detector score above which a box counts as a person (MMPose's demo default)."""
BOX_ENLARGE = 1.25
"""Side scale of the previous keypoint box when no detector is configured."""
INSTALL_HINT = ("the mmpose backend needs the optional MMPose stack (mmpose 1.3.2, mmdet 3.3.0, mmcv 2.1.0 "
                "with its compiled ops, mmengine 0.10), which cannot live beside signpipe's torch: use the "
                "pinned conda env workflow/envs/mmpose.yaml (`snakemake --cores all --use-conda` builds it), "
                "or install the `mmpose` extra into a python 3.10 / torch 2.1 environment as that file's comments say")


def model_paths(options: Mapping[str, Any]) -> dict[str, Path]:
    """The model files named in ``pose.mmpose`` (config, checkpoint, optional det_config/det_checkpoint), checked to exist."""
    paths = {}
    for key in ("config", "checkpoint", "det_config", "det_checkpoint"):
        if not options.get(key):
            if key.startswith("det_"):
                continue
            raise ValueError(f"pose.mmpose.{key}: not set; the mmpose backend needs the local path of a "
                             "COCO-WholeBody top-down model's config (.py) and checkpoint (.pth)")
        path = Path(options[key]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"pose.mmpose.{key}: {path} does not exist")
        paths[key] = path
    if ("det_config" in paths) != ("det_checkpoint" in paths):
        raise ValueError("pose.mmpose.det_config and pose.mmpose.det_checkpoint: set both (a person detector) "
                         "or neither (whole-frame, then tracked keypoint boxes)")
    return paths


def import_stack(detector: bool) -> None:
    """Import the MMPose stack (and MMDetection with mmcv's ops when a detector is used), or say how to get it."""
    try:
        import mmcv  # noqa: F401
        import mmengine  # noqa: F401
        import mmpose.apis  # noqa: F401
        if detector:
            import mmcv.ops  # noqa: F401
            import mmdet.apis  # noqa: F401
    except (ImportError, AssertionError) as err:  # the OpenMMLab packages assert on each other's versions
        raise ImportError(f"pose.backend mmpose: {err}; {INSTALL_HINT}") from err


def resolve_device(device: str, cuda_available: bool) -> str:
    """``auto`` -> ``cuda:0`` when CUDA is present, else ``cpu``; ``cuda`` -> ``cuda:0``; others as given."""
    if device == "auto":
        return "cuda:0" if cuda_available else "cpu"
    return "cuda:0" if device == "cuda" else device



def chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def enlarged_box(box: np.ndarray | None, size: tuple[int, int], factor: float = BOX_ENLARGE) -> np.ndarray:
    """(x0, y0, x1, y1) scaled by ``factor`` about its centre and clipped to a (width, height) frame; the whole frame for None."""
    width, height = size
    if box is None:
        return np.array([0, 0, width, height], np.float32)
    centre = (np.asarray(box[:2], np.float64) + box[2:4]) / 2
    half = (np.asarray(box[2:4], np.float64) - box[:2]) * factor / 2
    lo, hi = np.maximum(centre - half, 0), np.minimum(centre + half, [width, height])
    return np.concatenate([lo, hi]).astype(np.float32)


def person_boxes(bboxes: np.ndarray, labels: np.ndarray, scores: np.ndarray,
                 threshold: float = DET_SCORE) -> np.ndarray:
    """The (N, 4) person boxes of one frame's detections: COCO class 0 with a score above ``threshold``."""
    keep = (np.asarray(labels) == 0) & (np.asarray(scores) > threshold)
    return np.asarray(bboxes, np.float32).reshape(-1, 4)[keep]


def instance_people(instances: Sequence[Mapping[str, Any]], keep_boxes: bool) -> list[Person]:
    """MMPose's instances of one frame (``split_instances`` dicts) as People.

    Without a detector the instance's box is the crop signpipe gave the model, not a detection,
    so it is dropped and the person's box comes from its confident keypoints (a frame with
    fewer than two of them then counts as having nobody).
    """
    return [instance_person(inst if keep_boxes else {k: v for k, v in inst.items() if k != "bbox"})
            for inst in instances]


def signer_keypoints(frames: Sequence[Sequence[Mapping[str, Any]]], frame_size: tuple[int, int],
                     scale: tuple[float, float], keep_boxes: bool = True) -> Keypoints:
    """The signer's track from MMPose's per-frame instances in stored-frame pixels, in source pixels.

    frame_size: the stored frames' (width, height); scale: (sx, sy) from stored to source pixels
    (the choice of signer does not change under that scaling: IoU and centrality are invariant).
    """
    xy, score, people = select_signer([instance_people(f, keep_boxes) for f in frames], frame_size)
    return Keypoints(xy * np.asarray(scale, np.float32), score, people)


def make_backend(cfg: Mapping[str, Any]) -> Backend:
    options = cfg.get("mmpose") or {}
    paths = model_paths(options)
    detector_used = "det_config" in paths
    import_stack(detector_used)

    import mmcv
    import mmengine
    import mmpose
    import torch
    from mmengine.dataset import Compose, pseudo_collate
    from mmengine.registry import init_default_scope
    from mmpose.apis import init_model
    from mmpose.structures import split_instances

    device = resolve_device(str(cfg.get("device", "auto")), torch.cuda.is_available())
    batch_size = int(options.get("batch_size", 16))
    model = init_model(str(paths["config"]), str(paths["checkpoint"]), device=device)
    if model.dataset_meta.get("num_keypoints") != NUM_KEYPOINTS:
        raise ValueError(f"pose.mmpose.config: {paths['config']} predicts {model.dataset_meta.get('num_keypoints')} "
                         "keypoints; signpipe needs a COCO-WholeBody (133 keypoints) model")
    scope = model.cfg.get("default_scope", "mmpose")
    pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
    provenance = {"backend": "mmpose", "version": mmpose.__version__, "mmcv": mmcv.__version__,
                  "mmengine": mmengine.__version__, "config": str(paths["config"]),
                  "checkpoint": str(paths["checkpoint"]), "checkpoint_sha256": file_sha256(paths["checkpoint"]),
                  "device": device, "batch_size": batch_size, "people": POLICY,
                  "detector": f"none: whole frame, then the previous batch's signer keypoint box x{BOX_ENLARGE}"}
    detect = None
    if detector_used:
        import mmdet
        from mmdet.apis import inference_detector, init_detector
        from mmpose.utils import adapt_mmdet_pipeline

        detector = init_detector(str(paths["det_config"]), str(paths["det_checkpoint"]), device=device)
        detector.cfg = adapt_mmdet_pipeline(detector.cfg)
        provenance.update(mmdet=mmdet.__version__, detector=str(paths["det_config"]), det_score=DET_SCORE,
                          det_checkpoint=str(paths["det_checkpoint"]),
                          det_checkpoint_sha256=file_sha256(paths["det_checkpoint"]))

        def detect(images: list[np.ndarray]) -> list[np.ndarray]:
            """Per image, the (N, 4) person boxes the detector finds."""
            found = [d.pred_instances.cpu().numpy() for d in inference_detector(detector, images)]
            return [person_boxes(p.bboxes, p.labels, p.scores) for p in found]

    def estimate(images: list[np.ndarray], boxes: list[np.ndarray]) -> list[list[dict]]:
        """Per image, MMPose's instances for its (N, 4) boxes, all boxes of the batch in one forward pass."""
        init_default_scope(scope)
        data, owner = [], []
        for i, (image, frame_boxes) in enumerate(zip(images, boxes)):
            for crop in frame_boxes:
                data.append(pipeline({"img": image, "bbox": crop[None], "bbox_score": np.ones(1, np.float32),
                                      **model.dataset_meta}))
                owner.append(i)
        instances: list[list[dict]] = [[] for _ in images]
        if data:
            with torch.no_grad():
                results = model.test_step(pseudo_collate(data))
            for i, sample in zip(owner, results):
                instances[i] += split_instances(sample.pred_instances)
        return instances

    def extract(clip: Clip) -> Keypoints:
        frame_size = (round(clip.source_size[0] / clip.scale[0]), round(clip.source_size[1] / clip.scale[1]))
        frames: list[list[dict]] = []
        box = None
        for batch in chunks(clip.frames(), batch_size):
            images = [np.ascontiguousarray(rgb[..., ::-1]) for rgb in batch]  # MMPose/MMDet take BGR
            if detect:
                boxes = detect(images)
            else:
                boxes = [enlarged_box(box, frame_size)[None]] * len(images)
            frames += estimate(images, boxes)
            if not detect:
                last = instance_people(frames[-1], keep_boxes=False)
                box = last[0].bounds() if last else None
        return signer_keypoints(frames, frame_size, clip.scale, keep_boxes=detector_used)

    return Backend(extract, provenance)
