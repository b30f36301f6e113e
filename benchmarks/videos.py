"""Input shared by the decode and pose benchmarks: a small synthetic corpus plus the real clips."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from signpipe.synth import make_corpus


def benchmark_videos(tmp: Path, data: Path, copies: int, num_classes: int, signers: int,
                     frames: int = 32) -> tuple[list[str], Path]:
    """Video paths (synthetic corpus, then each real clip of ``data/clips`` ``copies`` times) and a
    one-shard manifest of them at ``tmp/manifest.csv``."""
    corpus = make_corpus(tmp / "synth", num_classes=num_classes, signers=signers, repeats=1, frames=frames,
                         val_signers=1, test_signers=1, progress=False)
    paths = [str(tmp / "synth" / p) for p in corpus["path"]]
    paths += [str(p) for p in sorted((data / "clips").glob("*.mp4"))] * copies
    manifest = tmp / "manifest.csv"
    pd.DataFrame({"video_id": [f"v{i:03d}" for i in range(len(paths))], "path": paths, "label": 0,
                  "split": "train", "frame_start": 0, "frame_end": -1, "shard": 0}).to_csv(manifest, index=False)
    return paths, manifest
