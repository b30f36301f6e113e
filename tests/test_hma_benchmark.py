"""benchmarks/hma.py's corpus: rendered at the video size it asks for (its default is 480 x 360,
where the hand is about 60 px and the encoder can read the fingers; docs/hma.md, Numbers)."""

from __future__ import annotations

from argparse import Namespace

import h5py

from conftest import benchmark


def test_hands_shards_renders_and_decodes_at_the_asked_video_size(tmp_path):
    """``width``/``height`` reach the generator and the decoder keeps them (not the 160 x 120 default)."""
    args = Namespace(classes=2, signers=3, repeats=1, frames=8, shards=1, crop=16)
    shards = benchmark("signbert").hands_shards(tmp_path, args, hand_shapes=True, width=192, height=144)
    assert [path.name for path in shards] == ["hands0.h5"]
    with h5py.File(tmp_path / "frames0.h5", "r") as frames:
        assert set(frames["width"][:].tolist()) == {192} and set(frames["height"][:].tolist()) == {144}
