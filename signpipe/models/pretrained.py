"""Pretrained weights for the pixel models, from local files only (nothing is ever downloaded).

The papers start their pixel networks from pretrained weights: HMA's hand encoder is an ImageNet
ResNet-34, GLE-Net's P3D-ResNet-50 is inflated from ImageNet (§5.1: "All backbones are pretrained
on ImageNet or Kinetics"; conv1 inflated as I3D does), and the RGB partner of SignBERT and HMA is
Kinetics-pretrained. A user saves torchvision's weights on a machine with internet and names the
file in ``finetune.<model>.checkpoint``; the loaders here map its tensors into signpipe's networks:

- :func:`load_resnet2d`: a torchvision ResNet state dict into a 2D trunk of torchvision's names
  (HMA's encoder), an exact copy without ``fc``;
- :func:`load_p3d`: a torchvision ResNet state dict **inflated** into a pseudo-3D ResNet
  (:func:`inflate_resnet`), or a state dict of the network itself (a run's ``checkpoint.pt``);
- :func:`load_video_resnet`: torchvision's ``r3d_18`` / ``mc3_18`` / ``r2plus1d_18`` state dicts
  (Kinetics-400) into rgb3d.

Each returns the ``init`` that ``predictions.h5`` records (:data:`INITS`); a paper model that
trains from random weights gets a warning in the job log (:func:`warn_if_random`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

log = logging.getLogger(__name__)

INITS = ("random", "imagenet", "kinetics", "file")
"""How a model's weights started: random, a torchvision ImageNet (2D) or Kinetics (video) state
dict, or a state dict of the signpipe network itself (``file``, e.g. an earlier run's checkpoint)."""
PAPER_INIT = {
    "hma": "ImageNet weights for its ResNet-34, as is common (the paper names the net, not its init; "
           "torchvision ResNet34_Weights.IMAGENET1K_V1, resnet34-b627a593.pth)",
    "glenet": "an ImageNet ResNet-50 inflated to P3D (torchvision ResNet50_Weights.IMAGENET1K_V1, "
              "resnet50-0676ba61.pth)",
    "rgb3d": "Kinetics-400 weights (torchvision R3D_18_Weights.KINETICS400_V1, r3d_18-b3b3357e.pth)",
}
"""What each paper model starts from in its paper, with the torchvision weights a user downloads elsewhere."""
CONV1_FRAMES = 5
"""GLE-Net §5.1: the 2D 7x7 conv1 becomes 5x7x7 (I3D's inflation: the kernel repeated over 5
frames and divided by 5, so a clip of identical frames gives the 2D response)."""
SHIFT = 16.0
"""Standard deviations added by the BN between a P3D block's spatial and temporal conv (it has no
2D counterpart) so that the ReLU after it passes every value above -16 sigma; the BN after the
temporal conv takes the shift off again (:func:`inflate_resnet`)."""


def read_state_dict(path: str | os.PathLike, key: str) -> dict[str, Tensor]:
    """The tensors of a local state dict file (a bare state dict, or a checkpoint holding one under
    ``model`` or ``state_dict``; a ``module.`` prefix of DataParallel is dropped). ``key``: the
    config key that named the file, for the one-line errors."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{key}: {path} does not exist; give the path of a local state dict "
                                f"(saved from torchvision on a machine with internet), or null for random weights")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{key}: {path} is not a torch state dict ({error})") from error
    for wrapper in ("model", "state_dict"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping):
        raise ValueError(f"{key}: {path} holds a {type(state).__name__}, not a state dict")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()
            if isinstance(v, Tensor)}


def is_torchvision_resnet(state: Mapping[str, Tensor]) -> bool:
    """Whether a state dict is a torchvision 2D ResNet's (conv1 (C, 3, 7, 7), layer1..layer4)."""
    conv1 = state.get("conv1.weight")
    return conv1 is not None and conv1.ndim == 4 and any(k.startswith("layer4.") for k in state)


def _copy(model: nn.Module, tensors: Mapping[str, Tensor], key: str, path: str | os.PathLike) -> None:
    """Load ``tensors`` into ``model``; a missing name or another shape is a one-line error."""
    own = model.state_dict()
    wrong = sorted(k for k in own if k not in tensors or tensors[k].shape != own[k].shape)
    if wrong:
        example = wrong[0]
        got = tuple(tensors[example].shape) if example in tensors else "absent"
        raise ValueError(f"{key}: {path} does not fit the network ({len(wrong)} tensors missing or of "
                         f"another shape, e.g. {example} {tuple(own[example].shape)}: {got}); check arch/depth/width")
    model.load_state_dict({k: tensors[k].to(own[k].dtype) for k in own})


def load_resnet2d(trunk: nn.Module, path: str | os.PathLike, key: str) -> str:
    """A torchvision ResNet state dict (its ``fc`` dropped) into ``trunk``, a module with
    torchvision's ResNet names (HMA's encoder): an exact copy. A state dict of the whole signpipe
    model (``encoder.resnet.`` names) loads too. Returns the init: imagenet or file."""
    state = read_state_dict(path, key)
    prefix = "encoder.resnet."
    if any(k.startswith(prefix) for k in state):
        _copy(trunk, {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, key, path)
        return "file"
    _copy(trunk, {k: v for k, v in state.items() if not k.startswith("fc.")}, key, path)
    return "imagenet"


def load_video_resnet(net: nn.Module, path: str | os.PathLike, key: str) -> str:
    """A torchvision video ResNet state dict (r3d_18, mc3_18, r2plus1d_18) into ``net``, its classifier
    kept only when of the same shape; an rgb3d run's own checkpoint (``net.`` names) loads too.
    Returns the init: kinetics or file."""
    state = read_state_dict(path, key)
    init = "kinetics"
    if any(k.startswith("net.") for k in state):
        state, init = {k[len("net."):]: v for k, v in state.items() if k.startswith("net.")}, "file"
    own = net.state_dict()
    for name in ("fc.weight", "fc.bias"):
        if name in own and (name not in state or state[name].shape != own[name].shape):
            state[name] = own[name]  # another class count: the classifier stays as built
    _copy(net, state, key, path)
    return init


# ---------------------------------------------------------------- inflation into the P3D-ResNet

def inflate_conv1(weight: Tensor, frames: int = CONV1_FRAMES) -> Tensor:
    """I3D's inflation: (C, 3, k, k) -> (C, 3, frames, k, k), the kernel repeated and divided by ``frames``."""
    return weight.unsqueeze(2).repeat(1, 1, frames, 1, 1) / frames


def _bn(out: dict[str, Tensor], target: str, state: Mapping[str, Tensor], source: str) -> None:
    for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
        if f"{source}.{name}" in state:
            out[f"{target}.{name}"] = state[f"{source}.{name}"]


def _pointwise(out: dict[str, Tensor], target: str, state: Mapping[str, Tensor], source: str) -> None:
    out[f"{target}.weight"] = state[f"{source}.weight"].unsqueeze(2)                       # 1x1 -> 1x1x1


def _p3d(out: dict[str, Tensor], conv: str, outer: str, state: Mapping[str, Tensor], source_conv: str,
         source_bn: str, eps: float) -> None:
    """A 2D 3x3 conv and its BN -> a P3D conv (1x3x3, BN, ReLU, 3x1x1) and the BN after it.

    The spatial conv is the 2D kernel; the inner BN normalises with the 2D BN's running statistics
    and adds :data:`SHIFT` (so its ReLU passes everything); the temporal conv is the identity
    (centre tap 1); the outer BN removes the shift and applies the 2D BN's scale and bias. In eval
    mode and in training mode (both BNs affine in the same input) the block equals the 2D one per frame.
    """
    weight = state[f"{source_conv}.weight"]
    channels = weight.shape[0]
    out[f"{conv}.0.weight"] = weight.unsqueeze(2)
    out[f"{conv}.1.weight"] = torch.ones(channels)
    out[f"{conv}.1.bias"] = torch.full((channels,), SHIFT)
    out[f"{conv}.1.running_mean"] = state[f"{source_bn}.running_mean"]
    out[f"{conv}.1.running_var"] = state[f"{source_bn}.running_var"]
    out[f"{conv}.1.num_batches_tracked"] = state[f"{source_bn}.num_batches_tracked"]
    temporal = torch.zeros(channels, channels, 3, 1, 1)
    temporal[torch.arange(channels), torch.arange(channels), 1] = 1.0
    out[f"{conv}.3.weight"] = temporal
    out[f"{outer}.weight"] = state[f"{source_bn}.weight"]
    out[f"{outer}.bias"] = state[f"{source_bn}.bias"]
    out[f"{outer}.running_mean"] = torch.full((channels,), SHIFT)
    out[f"{outer}.running_var"] = torch.full((channels,), 1.0 - eps)
    out[f"{outer}.num_batches_tracked"] = state[f"{source_bn}.num_batches_tracked"]


def _block(out: dict[str, Tensor], target: str, state: Mapping[str, Tensor], source: str, bottleneck: bool,
           eps: float) -> None:
    """One torchvision block (``layerL.i``) -> one P3D block (signpipe.models.glenet's layout)."""
    if bottleneck:   # body: 0 conv 1x1, 1 BN, 2 ReLU, 3 P3D, 4 BN, 5 ReLU, 6 conv 1x1, 7 BN
        _pointwise(out, f"{target}.body.0", state, f"{source}.conv1")
        _bn(out, f"{target}.body.1", state, f"{source}.bn1")
        _p3d(out, f"{target}.body.3", f"{target}.body.4", state, f"{source}.conv2", f"{source}.bn2", eps)
        _pointwise(out, f"{target}.body.6", state, f"{source}.conv3")
        _bn(out, f"{target}.body.7", state, f"{source}.bn3")
    else:            # body: 0 P3D, 1 BN, 2 ReLU, 3 P3D, 4 BN
        _p3d(out, f"{target}.body.0", f"{target}.body.1", state, f"{source}.conv1", f"{source}.bn1", eps)
        _p3d(out, f"{target}.body.3", f"{target}.body.4", state, f"{source}.conv2", f"{source}.bn2", eps)
    if f"{source}.downsample.0.weight" in state:
        _pointwise(out, f"{target}.shortcut.0", state, f"{source}.downsample.0")
        _bn(out, f"{target}.shortcut.1", state, f"{source}.downsample.1")


def inflate_resnet(state: Mapping[str, Tensor], shared: str, streams: Sequence[str], bottleneck: bool,
                   blocks: Sequence[int], eps: float = 1e-5) -> dict[str, Tensor]:
    """The tensors of a P3D-ResNet from a torchvision 2D ResNet's (GLE-Net §5.1).

    ``shared``: the prefix of the stages 1-2 (conv1 5x7x7 + BN, res2); ``streams``: the prefixes of
    every copy of stages 3-5 (res3..res5), each filled from the same layer2..layer4. ``blocks``:
    blocks per stage (res2..res5). conv1 is inflated by :func:`inflate_conv1`, 1x1 convs gain a
    time axis of 1, each 3x3 conv becomes a P3D conv as :func:`_p3d` says; classifiers are not
    filled. With BN in eval mode, a clip of identical frames gives the 2D net's features per frame
    away from conv1's temporal padding.
    """
    out: dict[str, Tensor] = {f"{shared}.conv1.0.weight": inflate_conv1(state["conv1.weight"])}
    _bn(out, f"{shared}.conv1.1", state, "bn1")
    for i in range(blocks[0]):
        _block(out, f"{shared}.res2.{i}", state, f"layer1.{i}", bottleneck, eps)
    for stream in streams:
        for stage, count in zip(("res3", "res4", "res5"), blocks[1:]):
            layer = f"layer{int(stage[-1]) - 1}"
            for i in range(count):
                _block(out, f"{stream}.{stage}.{i}", state, f"{layer}.{i}", bottleneck, eps)
    return out


def load_p3d(model: nn.Module, path: str | os.PathLike, key: str, bottleneck: bool, blocks: Sequence[int]) -> str:
    """Weights for a pseudo-3D ResNet with ``shared`` stages and streams of ``res3..res5`` (GLE-Net,
    its one-stream baseline): a torchvision 2D ResNet inflated into every stream
    (:func:`inflate_resnet`; returns imagenet), or a state dict of the network itself (every tensor
    of a matching name and shape; classifiers of another class count skipped; returns file)."""
    state = read_state_dict(path, key)
    own = model.state_dict()
    if is_torchvision_resnet(state):
        streams = [name for name, module in model.named_children() if hasattr(module, "res3")]
        try:
            tensors = inflate_resnet(state, "shared", streams, bottleneck, blocks)
        except KeyError as missing:
            raise ValueError(f"{key}: {path} is a torchvision ResNet of another depth than the network's "
                             f"(no {missing}); set depth to the file's") from None
        wrong = sorted(k for k, v in tensors.items() if k not in own or own[k].shape != v.shape)
        if wrong:
            raise ValueError(f"{key}: {path} does not fit the network (e.g. {wrong[0]}); check depth and width")
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in tensors.items()}, strict=False)
        log.info("%s: %d of %d tensors inflated from the 2D ResNet %s", key, len(tensors), len(own), path)
        return "imagenet"
    kept = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not kept:
        first = next(iter(own))
        raise ValueError(f"{key}: {path} is neither a torchvision ResNet nor a state dict of this network "
                         f"(no tensor like {first} {tuple(own[first].shape)})")
    model.load_state_dict(kept, strict=False)
    log.info("%s: %d of %d tensors from %s", key, len(kept), len(own), path)
    return "file"


def warn_if_random(model_name: str, init: str | None) -> None:
    """The job log's warning when a paper model (:data:`PAPER_INIT`) trains from random weights."""
    if init == "random" and model_name in PAPER_INIT:
        log.warning("%s: no finetune.%s.checkpoint, so it trains from random weights; the paper's start: %s; "
                    "a random start lands below the paper's numbers (docs/presets.md)",
                    model_name, model_name, PAPER_INIT[model_name])
