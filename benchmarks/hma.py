"""HMA on the synthetic corpus (CPU): the paper's Table 1 ablation and how well the decoded hands fit.

    python benchmarks/hma.py [--classes 10 --signers 6 --repeats 3 --epochs 20 --seeds 3 ...]

Builds the corpus and its hands shards in a temporary folder (synth -> manifest -> decode ->
sidecar pose -> hands), then fine-tunes HMA three ways per seed with the same schedule:
``full`` (eq. 9: L_cla + 0.1 L_spa + 0.1 L_tem + 0.1 L_reg), ``cls_only`` (L_cla alone, Table 1's
first row) and ``no_tem`` (without L_tem, its third row). ``pck20_projected`` is the share of
confident val-split pseudo-label joints (c >= epsilon, wrist-relative as eq. 6, wrist excluded)
that the full model's projected joints hit within 0.2 of the hand box side (the stored crop);
``pck20_untrained`` is the same for a freshly built model, the level a fit must beat. Prints
one JSON line last; accuracies are test-split means over the seeds.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean

import pandas as pd
import torch
from torch.utils.data import DataLoader

from signpipe.finetune import finetune
from signpipe.models.hma import SPEC, HMAConfig, build, projected_pck

sys.path.insert(0, str(Path(__file__).resolve().parent))
from signbert import hands_shards  # noqa: E402  (the same corpus pipeline as the SignBERT benchmark)

VARIANTS = {
    "full": {"ce": 1.0, "spa": 0.1, "tem": 0.1, "reg": 0.1},
    "cls_only": {"ce": 1.0, "spa": 0.0, "tem": 0.0, "reg": 0.0},
    "no_tem": {"ce": 1.0, "spa": 0.1, "tem": 0.0, "reg": 0.1},
}
"""Table 1's rows measured here: loss weights per variant."""


def val_pck(model: torch.nn.Module, shards: list[Path], settings: dict, fraction: float = 0.2) -> float:
    """PCK@fraction of the hand box on the val split (centred clips): projected vs pseudo-label joints."""
    config = HMAConfig.from_settings(settings)
    data = SPEC.dataset({"hands": shards}, "val", False, settings)
    threshold = 2.0 * fraction / config.crop_fraction  # box side = stored crop = 2 / crop_fraction normalised units
    correct = counted = 0
    model.eval()
    with torch.no_grad():
        for batch in DataLoader(data, batch_size=8):
            out = model(batch["crop"])
            c, n = projected_pck(out.joints2d, batch["pose"], threshold, config.epsilon)
            correct, counted = correct + c, counted + n
    return correct / max(counted, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--signers", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=32, help="frames per generated video")
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--crop", type=int, default=64, help="hands stage crop side")
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--size", type=int, default=48, help="encoder input side")
    parser.add_argument("--num-frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    model = {"arch": args.arch, "width": args.width, "size": args.size, "gcn_layers": [[32, 1], [64, 2]]}
    common = {"batch_size": args.batch_size, "device": "cpu", "epochs": args.epochs, "lr": args.lr,
              "num_frames": args.num_frames}
    variants = args.variants.split(",")
    with tempfile.TemporaryDirectory(prefix="signpipe-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        shards = hands_shards(root, args)
        data_s = time.perf_counter() - started
        settings = {**model, "num_frames": args.num_frames}
        torch.manual_seed(0)
        untrained = val_pck(build(args.classes, settings), shards, settings)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
        pck = []
        for seed in range(args.seeds):
            for name in variants:
                out = root / f"{name}-{seed}"
                cfg = {**common, "seed": seed, "hma": {**model, "loss_weights": VARIANTS[name]}}
                result = finetune("hma", {"hands": shards}, out, args.classes, cfg)
                result["samples_per_s"] = float(pd.read_csv(out / "log.csv")["samples_per_s"].mean())
                runs[name].append(result)
                if name == "full":
                    trained = build(args.classes, settings)
                    trained.load_state_dict(torch.load(out / "checkpoint.pt", weights_only=True)["model"])
                    pck.append(val_pck(trained, shards, settings))
                print(json.dumps({"seed": seed, "variant": name, **{k: round(v, 4) for k, v in result.items()},
                                  **({"pck20_projected": round(pck[-1], 4)} if name == "full" else {})}), flush=True)
        videos = len(pd.read_csv(root / "manifest.csv"))
    print(json.dumps({
        "videos": videos, "classes": args.classes, "crop": args.crop, "model": model, "epochs": args.epochs,
        "num_frames": args.num_frames, "seeds": args.seeds, "data_s": round(data_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        **{f"acc_{name}": round(mean(r["test_acc"] for r in runs[name]), 4) for name in variants},
        **{f"val_acc_{name}": round(mean(r["val_acc"] for r in runs[name]), 4) for name in variants},
        **{f"acc_{name}_per_seed": [round(r["test_acc"], 4) for r in runs[name]] for name in variants},
        "pck20_projected": round(mean(pck), 4) if pck else None, "pck20_untrained": round(untrained, 4),
        "train_samples_per_s": round(mean(r["samples_per_s"] for rs in runs.values() for r in rs), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }))


if __name__ == "__main__":
    main()
