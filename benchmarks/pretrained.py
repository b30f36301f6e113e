"""Pretrained weights from local files: how exactly each loader reproduces torchvision's network.

Random torchvision networks (``weights=None``: nothing is downloaded) are saved to a temporary
folder, as a user saves ImageNet or Kinetics weights, and loaded through ``finetune.<model>.checkpoint``'s
loaders (``signpipe.models.pretrained``):

- ``glenet_inflation_max_abs_diff``: a torchvision ResNet (50; ``--smoke``: 18) inflated into
  GLE-Net's P3D-ResNet; on a clip of T identical frames (float64, BN in eval mode) the largest
  |difference| between the res5 features of the interior frame, in both streams, and the 2D
  net's res5 features of that frame. ``..._used_bn``: the same with BN statistics of a used net
  (BN scales and biases random, running statistics averaged over a batch of random images), not
  BN's fresh 0 and 1.
- ``hma_load_max_abs_diff``: HMA's encoder from a torchvision ResNet-34 (``--smoke``: 18) against
  the torchvision net on random images (float32; an exact copy gives 0).
- ``rgb3d_load_max_abs_diff``: rgb3d from torchvision's r3d_18, mc3_18, r2plus1d_18
  (``--smoke``: r3d_18), the features before the classifier on a random clip, the largest over archs.
- ``load_s``: seconds of the three loaders together (reading the files and mapping the tensors).

Goal: every diff < 1e-4. Prints one JSON line last.
Run: python benchmarks/pretrained.py [--size 64] [--frames 16] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torchvision.models import video

from signpipe.models.glenet import DEPTHS, GLENet, GLENetConfig
from signpipe.models.hma import HMA, HMAConfig
from signpipe.models.pretrained import load_p3d, load_resnet2d, load_video_resnet
from signpipe.models.rgb3d import ARCHS, RGB3D


def used_bn(net: torch.nn.Module, size: int) -> torch.nn.Module:
    """BN of a used net: random scales and biases, running statistics of a batch of random images."""
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
                module.reset_running_stats()
                module.momentum = None
        net.train()(torch.randn(8, 3, size, size))
    return net.eval()


def res5(net: torchvision.models.ResNet, images: torch.Tensor) -> torch.Tensor:
    x = net.maxpool(net.relu(net.bn1(net.conv1(images))))
    return net.layer4(net.layer3(net.layer2(net.layer1(x))))


def interior_frame(frames: int) -> int:
    """A res5 time step (of T/4) whose receptive field never reads temporal padding: conv1 (5, pad 2)
    is exact on input frames 2..T-3; pool1 and pool2 (3, stride 2, pad 1) keep the steps j with
    2j-1..2j+1 exact."""
    lo, hi = 2, frames - 3
    for _ in range(2):
        lo, hi = (lo + 2) // 2, (hi - 1) // 2
    if lo > hi:
        raise ValueError(f"--frames {frames}: too few for a res5 step away from the temporal padding; give >= 16")
    return (lo + hi) // 2


def glenet_diff(depth: int, size: int, frames: int, folder: Path, used: bool) -> tuple[float, float]:
    """(max |P3D res5 - 2D res5| over both streams, load seconds) for a torchvision ResNet of ``depth``."""
    reference = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    if used:
        reference = used_bn(reference, size)
    path = folder / f"resnet{depth}.pth"
    torch.save(reference.state_dict(), path)
    model = GLENet(10, GLENetConfig(depth=depth))
    kind, blocks = DEPTHS[depth]
    started = time.perf_counter()
    load_p3d(model, path, "finetune.glenet.checkpoint", kind == "bottleneck", blocks)
    seconds = time.perf_counter() - started
    reference, model = reference.double(), model.double().eval()
    frame = torch.randn(1, 3, size, size, dtype=torch.float64)
    t = interior_frame(frames)
    with torch.no_grad():
        expected = res5(reference, frame)[0]
        pool2 = model.shared(frame.unsqueeze(2).repeat(1, 1, frames, 1, 1))
        streams = (model.global_stream(pool2)[1]["res5"], model.local_stream(pool2)[1]["res5"])
    return max(float((s[0, :, t] - expected).abs().max()) for s in streams), seconds


def hma_diff(arch: str, size: int, folder: Path) -> tuple[float, float]:
    reference = getattr(torchvision.models, arch)(weights=None).eval()
    path = folder / f"{arch}.pth"
    torch.save(reference.state_dict(), path)
    model = HMA(10, HMAConfig(arch=arch)).eval()
    started = time.perf_counter()
    load_resnet2d(model.encoder.resnet, path, "finetune.hma.checkpoint")
    seconds = time.perf_counter() - started
    images = torch.randn(4, 3, size, size)
    with torch.no_grad():
        expected = torch.flatten(reference.avgpool(res5(reference, images)), 1)
        return float((model.encoder.resnet(images) - expected).abs().max()), seconds


def rgb3d_diff(arch: str, size: int, frames: int, folder: Path) -> tuple[float, float]:
    reference = getattr(video, arch)(weights=None).eval()
    path = folder / f"{arch}.pth"
    torch.save(reference.state_dict(), path)
    model = RGB3D(10, arch).eval()
    started = time.perf_counter()
    load_video_resnet(model.net, path, "finetune.rgb3d.checkpoint")
    seconds = time.perf_counter() - started
    reference.fc = model.net.fc = torch.nn.Identity()
    clip = torch.randn(1, 3, frames, size, size)
    with torch.no_grad():
        return float((model.net(clip) - reference(clip)).abs().max()), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64, help="image side (pixels)")
    parser.add_argument("--frames", type=int, default=16, help="frames of GLE-Net's clip (>= 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true", help="ResNet-18s and r3d_18 only, 32 px: seconds")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    size = 32 if args.smoke else args.size
    glenet_depth, hma_arch = (18, "resnet18") if args.smoke else (50, "resnet34")
    archs = ARCHS[:1] if args.smoke else ARCHS
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        glenet, glenet_s = glenet_diff(glenet_depth, size, args.frames, folder, used=False)
        glenet_used, _ = glenet_diff(glenet_depth, size, args.frames, folder, used=True)
        hma, hma_s = hma_diff(hma_arch, size, folder)
        rgb3d = [rgb3d_diff(arch, size // 2, 8, folder) for arch in archs]
    print(json.dumps({
        "glenet_depth": glenet_depth, "hma_arch": hma_arch, "rgb3d_archs": list(archs), "size": size,
        "frames": args.frames, "smoke": args.smoke,
        "glenet_inflation_max_abs_diff": glenet, "glenet_inflation_max_abs_diff_used_bn": glenet_used,
        "hma_load_max_abs_diff": hma, "rgb3d_load_max_abs_diff": max(d for d, _ in rgb3d),
        "glenet_load_s": round(glenet_s, 3), "hma_load_s": round(hma_s, 3),
        "rgb3d_load_s": round(sum(s for _, s in rgb3d), 3),
        "load_s": round(glenet_s + hma_s + sum(s for _, s in rgb3d), 3),
    }))


if __name__ == "__main__":
    main()
