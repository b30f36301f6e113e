"""SignBERT on the synthetic corpus (CPU): pre-training and fine-tuning throughput, peak memory,
the feasibility PCK of §4.3, and test accuracy with and without pre-training (the question of
the paper's Table 4).

    python benchmarks/signbert.py [--classes 10 --signers 6 --repeats 3 ...]

Builds the corpus and its hands shards in a temporary folder (synth -> manifest -> decode ->
sidecar pose -> hands), pre-trains on its train split, fine-tunes from the pre-trained encoder
and from scratch with the same schedule, once per seed, and prints one JSON line last (test
accuracies are means over the seeds).

    python benchmarks/signbert.py --ablation mask --ablation mirror --ablation head --ablation sampling \
        --ablation rec_scale

runs the ablations of issues #18 and #17 instead, each alone or together, on small corpora (see
``--ablation-*``) and small models, each variant with seeds 0..N-1 (pre-training and fine-tuning
seed alike), and prints ``{ablation: {variant: {metric: mean, metric_per_seed: [...]}}}``:

- mask (#18): ``mask: all`` vs ``present`` on a corpus whose detector misses each hand in half
  the frames, in bursts; ``pck20_output_masked_present`` (PCK@20 of the reconstruction on the
  masked tokens, with the same present-only masking of the val clips for both models) and the
  fine-tuned test ``acc``;
- mirror (#18): fine-tuning from scratch with no mirroring, random mirroring (0.5) and
  dominant-hand normalisation, when a third of the signers (the test signer among them) are
  left-handed; ``acc``;
- head, sampling, rec_scale (#17): ``joint`` vs ``per_hand``, ``segments`` vs ``window``, 1 vs
  128, on the hand-drop corpus; ``pck20_output`` of the pre-training and the fine-tuned ``acc``.

    python benchmarks/signbert.py --low-data [--unlabeled-scale 10 --shots 1 3 5 all ...]

asks SignBERT's own question (issue #30): pre-train on an unlabeled corpus ``--unlabeled-scale``
times the labeled one, of other signers (its own synthetic seed; every clip train, no label, as a
``role: pretrain`` dataset), then fine-tune on k train clips per class of the labeled corpus,
pre-trained and from scratch, seeds 0..N-1 (the seed also draws the k clips), and prints
``{"1": {pretrained_top1, scratch_top1, pretrained_std, scratch_std}, ..., "all": {...}}`` (top-1 in
%) with the pre-training's reconstruction PCK beside it. ``--smoke``: tiny sizes, seconds, the
same code and keys.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

import h5py
import numpy as np
import pandas as pd
import torch

from signpipe.datasets import write_manifest
from signpipe.decode import decode_shard
from signpipe.finetune import finetune
from signpipe.hands import crop_shard
from signpipe.models.signbert import HandTokens, SignBERT, SignBERTConfig, clip_options
from signpipe.pose import extract_shard
from signpipe.pretrain import PretrainObjective, feasibility, pretrain
from signpipe.synth import make_corpus

PRETRAIN_EPOCHS, PRETRAIN_LR, PRETRAIN_LR_STEP = 240, 1e-3, 180
"""The pre-training schedule: the paper's lr, but this corpus has 15 batches of 8 per epoch, so
the paper's 20-epoch step (thousands of batches on its four corpora) would decay the learning
rate after 300 steps, long before the reconstruction converges; here the decay comes after
2,700 steps (epoch 180) of 3,600."""


ABLATIONS: dict[str, dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {
    "mask": {"all": ({"mask": "all"}, {}), "present": ({"mask": "present"}, {})},
    "mirror": {"none": ({}, {}), "mirror": ({}, {"mirror": 0.5}), "dominant_hand": ({}, {"dominant_hand": True})},
    "head": {"joint": ({}, {"head": "joint"}), "per_hand": ({}, {"head": "per_hand"})},
    "sampling": {"segments": ({"sampling": "segments"}, {"sampling": "segments"}),
                 "window": ({"sampling": "window"}, {"sampling": "window"})},
    "rec_scale": {"1": ({"rec_scale": 1.0}, {}), "128": ({"rec_scale": 128.0}, {})},
}
"""Per ablation, per variant: (pre-training keys, fine-tuning keys) over the defaults. The mirror
ablation fine-tunes from scratch (mirroring is a fine-tuning augmentation there)."""
PRETRAIN_DEFAULTS = {"mask": "present", "sampling": "segments", "rec_scale": 1.0}


def hands_shards(root: Path, args: argparse.Namespace, **corpus: Any) -> list[Path]:
    """The synthetic corpus (``corpus``: more ``make_corpus`` arguments; 160 x 120 video unless it
    names ``width`` and ``height``) through the data stages; returns its hands shards."""
    corpus = {"width": 160, "height": 120, **corpus}
    make_corpus(root / "corpus", num_classes=args.classes, signers=args.signers, repeats=args.repeats,
                frames=args.frames, progress=False, **corpus)
    write_manifest({"adapter": "synthetic", "num_shards": args.shards}, root / "manifest.csv", root / "missing.csv",
                   corpus_dir=root / "corpus")
    paths = []
    for shard in range(args.shards):
        frames, keypoints, hands = (root / f"{stage}{shard}.h5" for stage in ("frames", "keypoints", "hands"))
        decode_shard(root / "manifest.csv", shard, frames, root / "failures.csv", short_side=corpus["height"],
                     progress=False)
        extract_shard(root / "manifest.csv", frames, keypoints, root / "quality.csv", {"backend": "sidecar"},
                      progress=False)
        crop_shard(frames, keypoints, hands, crop_size=args.crop, progress=False)
        paths.append(hands)
    return paths


def reconstruction_on_present(out_dir: Path, shards: list[Path], arch: dict[str, Any], num_frames: int,
                              seed: int) -> float:
    """PCK@20 of a pre-trained model (``out_dir/checkpoint.pt``) on the masked tokens of the val
    clips, masked among the present hands with a fixed seed: the same test for any ``mask``."""
    model = SignBERT(SignBERTConfig(**arch))
    model.load_state_dict(torch.load(out_dir / "checkpoint.pt", weights_only=False)["model"])
    measured = feasibility(model, HandTokens(shards, "val", num_frames), PretrainObjective(mask="present"), seed,
                           device="cpu")
    return measured["pck20_output_masked"]


def summary(runs: list[dict[str, float]]) -> dict[str, Any]:
    """Means over seeds, and the values per seed."""
    return {**{key: round(mean(run[key] for run in runs), 4) for key in runs[0]},
            **{f"{key}_per_seed": [round(run[key], 4) for run in runs] for key in runs[0]}}


def ablations(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The asked ablations (module docstring); each pre-training run once per seed, shared by the
    variants that need the same one."""
    arch = {"hidden": args.hidden, "layers": args.layers, "heads": 4, "feedforward": 2 * args.hidden,
            "gcn_channels": 32}
    common = {"batch_size": args.batch_size, "device": "cpu", "num_frames": 32}
    corpora = {"drops": {"hand_miss": args.ablation_hand_miss, "hand_miss_burst": args.ablation_burst},
               "left_handed": {"left_handed": args.ablation_left_handed}}
    shards: dict[str, list[Path]] = {}
    pretrained: dict[str, tuple[Path, dict[str, float]]] = {}
    out: dict[str, Any] = {}
    for ablation in args.ablation:
        corpus = "left_handed" if ablation == "mirror" else "drops"
        if corpus not in shards:
            (root / corpus).mkdir()
            shards[corpus] = hands_shards(root / corpus, args, **corpora[corpus])
        results: dict[str, Any] = {}
        for variant, (pre_keys, tune_keys) in ABLATIONS[ablation].items():
            runs = []
            for seed in range(args.finetune_seeds):
                encoder, run = None, {}
                if ablation != "mirror":
                    keys = {**PRETRAIN_DEFAULTS, **pre_keys}
                    name = f"{corpus}-" + "-".join(f"{k}={v}" for k, v in sorted(keys.items())) + f"-seed{seed}"
                    if name not in pretrained:
                        folder = root / "pretrain" / name
                        measured = pretrain(shards[corpus], folder / "signbert.pt",
                                            {**common, **keys, "seed": seed, "epochs": args.pretrain_epochs,
                                             "lr": args.pretrain_lr, "lr_step": args.lr_step, "model": arch})
                        pretrained[name] = folder, measured
                    folder, measured = pretrained[name]
                    encoder = folder / "signbert.pt"
                    run = ({"pck20_output_masked_present": reconstruction_on_present(
                        folder, shards[corpus], arch, common["num_frames"], seed)} if ablation == "mask"
                           else {"pck20_output": measured["pck20_output"]})
                tuning = {**common, "epochs": args.finetune_epochs, "lr_step": args.finetune_epochs, "seed": seed,
                          "signbert": {"model": arch, **clip_options(pre_keys), **tune_keys}}
                target = root / "finetune" / f"{ablation}-{variant}-{seed}"
                run["acc"] = finetune("signbert", shards[corpus], target, args.classes, tuning,
                                      pretrained=encoder)["test_acc"]
                runs.append(run)
            results[variant] = summary(runs)
        out[ablation] = results
    return {"ablation_corpora": {k: corpora[k] for k in sorted({"left_handed" if a == "mirror" else "drops"
                                                                 for a in args.ablation})},
            "model": arch, "seeds": args.finetune_seeds, "pretrain_epochs": args.pretrain_epochs,
            "finetune_epochs": args.finetune_epochs, **out}


def relabeled(shards: list[Path], out_dir: Path, split_of: Any) -> list[Path]:
    """Copies of hands shards whose ``/index`` rows get ``split_of(index) -> (split, label)`` arrays."""
    import shutil

    out_dir.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in shards:
        copy = out_dir / path.name
        shutil.copy(path, copy)
        with h5py.File(copy, "r+") as f:
            index = f["index"][...]
            index["split"], index["label"] = split_of(index)
            f["index"][...] = index
        copies.append(copy)
    return copies


def k_shot(shards: list[Path], out_dir: Path, k: int | None, seed: int) -> list[Path]:
    """Copies of labeled hands shards keeping ``k`` train clips per class (drawn with ``seed``; None:
    all); the others get split ``unused``, which no loader reads. Val and test are untouched."""
    index = pd.concat([HandTokens(path).index.assign(shard_path=str(path)) for path in shards])
    train = index[index["split"] == "train"]
    keep = set(train["video_id"]) if k is None else {
        video for _, group in train.groupby("label")
        for video in np.random.default_rng(seed).permutation(group["video_id"].to_numpy())[:k]}

    def split_of(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ids = np.array([v.decode() if isinstance(v, bytes) else v for v in rows["video_id"]])
        unused = (rows["split"] == b"train") & ~np.isin(ids, list(keep))
        return np.where(unused, b"unused", rows["split"]), rows["label"]

    return relabeled(shards, out_dir, split_of)


def low_data(root: Path, args: argparse.Namespace) -> dict[str, Any]:
    """The --low-data comparison (module docstring): per k, mean and std of test top-1 (%) over seeds."""
    arch = {"hidden": args.hidden, "layers": args.layers, "heads": 4, "feedforward": 2 * args.hidden,
            "gcn_channels": 32}
    common = {"batch_size": args.batch_size, "device": "cpu", "num_frames": args.frames}
    labeled = hands_shards(root / "labeled", args)
    unlabeled_args = argparse.Namespace(**{**vars(args), "repeats": args.repeats * args.unlabeled_scale})
    corpus = hands_shards(root / "unlabeled", unlabeled_args, seed=args.unlabeled_seed)
    corpus = relabeled(corpus, root / "unlabeled-pretrain",
                       lambda rows: (np.full(len(rows), b"train"), np.full(len(rows), -1)))
    encoder = root / "pretrain" / "signbert.pt"
    measured = pretrain(corpus, encoder, {**common, "seed": 0, "epochs": args.pretrain_epochs, "lr": args.pretrain_lr,
                                          "lr_step": args.lr_step, "model": arch,
                                          "val_every": args.pretrain_epochs})  # measured once, after the last
    sequences = torch.load(encoder)["sequences"]
    tuning = {**common, "epochs": args.finetune_epochs, "lr_step": args.finetune_epochs, "signbert": {"model": arch}}
    out: dict[str, Any] = {}
    for shots in args.shots:
        k = None if shots == "all" else int(shots)
        top1: dict[str, list[float]] = {"pretrained": [], "scratch": []}
        for seed in range(args.finetune_seeds):
            shards = k_shot(labeled, root / f"k{shots}-{seed}", k, seed)
            for start, weights in (("pretrained", encoder), ("scratch", None)):
                result = finetune("signbert", shards, root / f"k{shots}-{seed}-{start}", args.classes,
                                  {**tuning, "seed": seed}, pretrained=weights)
                top1[start].append(100 * result["test_acc"])
        out[shots] = {**{f"{start}_top1": round(mean(v), 2) for start, v in top1.items()},
                      **{f"{start}_std": round(float(np.std(v)), 2) for start, v in top1.items()}}
    return {"labeled_videos": len(pd.read_csv(root / "labeled" / "manifest.csv")), "unlabeled_sequences": sequences,
            "model": arch, "pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs,
            "seeds": args.finetune_seeds, **{key: round(measured[key], 4) for key in ("pck20_input", "pck20_output",
                                                                                     "pck20_input_masked",
                                                                                     "pck20_output_masked")},
            **out}


SMOKE = {"classes": 3, "signers": 4, "repeats": 2, "frames": 8, "crop": 16, "hidden": 16, "layers": 1,
         "pretrain_epochs": 1, "finetune_epochs": 1, "finetune_seeds": 1, "unlabeled_scale": 2, "batch_size": 4,
         "shots": ["1", "all"]}
"""--smoke: the sizes of a run of seconds (the same code path and JSON keys)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--signers", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--crop", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--pretrain-epochs", type=int, default=PRETRAIN_EPOCHS)
    parser.add_argument("--pretrain-lr", type=float, default=PRETRAIN_LR)
    parser.add_argument("--lr-step", type=int, default=PRETRAIN_LR_STEP,
                        help="pre-training epochs before the x0.1 decay (paper: 20 epochs of four large corpora)")
    parser.add_argument("--finetune-epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--finetune-seeds", type=int, default=3,
                        help="fine-tune both ways with seeds 0..N-1 and report mean test accuracy (30 test videos "
                             "make one run's gap noise)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ablation", action="append", choices=list(ABLATIONS), default=[],
                        help="run this ablation (repeatable) instead of pretrained vs scratch")
    parser.add_argument("--ablation-hand-miss", type=float, default=0.5,
                        help="share of frames each hand is missed in, the corpus of mask/head/sampling/rec_scale")
    parser.add_argument("--ablation-burst", type=float, default=8.0, help="mean frames of a run of misses")
    parser.add_argument("--ablation-left-handed", type=float, default=1 / 3,
                        help="share of left-handed signers, the corpus of the mirror ablation")
    parser.add_argument("--low-data", action="store_true",
                        help="pre-train on a larger unlabeled corpus, fine-tune on k clips per class (issue #30)")
    parser.add_argument("--shots", nargs="+", default=["1", "3", "5", "all"], help="--low-data: train clips per class")
    parser.add_argument("--unlabeled-scale", type=int, default=10,
                        help="--low-data: the unlabeled corpus has this many times the labeled one's repeats")
    parser.add_argument("--unlabeled-seed", type=int, default=1, help="--low-data: its synthetic seed (other signers)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: " + json.dumps(SMOKE))
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    mode = low_data if args.low_data else ablations if args.ablation else None
    if mode is not None:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="signpipe-bench-") as tmp:
            result = mode(Path(tmp), args)
        print(json.dumps({"classes": args.classes, "signers": args.signers, "repeats": args.repeats,
                          "frames": args.frames, "total_s": round(time.perf_counter() - started, 1), **result}))
        return
    arch = {"hidden": args.hidden, "layers": args.layers, "heads": 4, "feedforward": 2 * args.hidden,
            "gcn_channels": 32}
    common = {"batch_size": args.batch_size, "device": "cpu", "seed": 0, "num_frames": 32}
    with tempfile.TemporaryDirectory(prefix="signpipe-bench-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        shards = hands_shards(root, args)
        data_s = time.perf_counter() - started
        measured = pretrain(shards, root / "pretrain" / "signbert.pt",
                            {**common, "epochs": args.pretrain_epochs, "lr": args.pretrain_lr, "lr_step": args.lr_step,
                             "model": arch})
        pretrain_log = pd.read_csv(root / "pretrain" / "log.csv")
        tuning = {**common, "epochs": args.finetune_epochs, "lr_step": args.finetune_epochs,
                  "signbert": {"model": arch}}
        runs: dict[str, list[dict[str, float]]] = {"pretrained": [], "scratch": []}
        for seed in range(args.finetune_seeds):
            for start, encoder in (("pretrained", root / "pretrain" / "signbert.pt"), ("scratch", None)):
                out = root / f"{start}-{seed}"
                runs[start].append(finetune("signbert", shards, out, args.classes, {**tuning, "seed": seed},
                                            pretrained=encoder))
                runs[start][-1]["samples_per_s"] = float(pd.read_csv(out / "log.csv")["samples_per_s"].mean())
        videos = len(pd.read_csv(root / "manifest.csv"))
    print(json.dumps({
        "videos": videos, "classes": args.classes, "crop": args.crop, "model": arch,
        "pretrain_epochs": args.pretrain_epochs, "finetune_epochs": args.finetune_epochs, "data_s": round(data_s, 1),
        "total_s": round(time.perf_counter() - started, 1),
        "pretrain_samples_per_s": round(float(pretrain_log["samples_per_s"].mean()), 2),
        "finetune_samples_per_s": round(mean(r["samples_per_s"] for r in runs["pretrained"] + runs["scratch"]), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "pck20_input": round(measured["pck20_input"], 4), "pck20_output": round(measured["pck20_output"], 4),
        "auc_input": round(measured["auc_input"], 4), "auc_output": round(measured["auc_output"], 4),
        "pck20_input_masked": round(measured["pck20_input_masked"], 4),
        "pck20_output_masked": round(measured["pck20_output_masked"], 4),
        **{f"acc_{start}": round(mean(r["test_acc"] for r in runs[start]), 4) for start in runs},
        **{f"val_acc_{start}": round(mean(r["val_acc"] for r in runs[start]), 4) for start in runs},
        "finetune_seeds": args.finetune_seeds,
        **{f"acc_{start}_per_seed": [round(r["test_acc"], 4) for r in runs[start]] for start in runs},
    }))


if __name__ == "__main__":
    main()
