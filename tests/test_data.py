"""The training loader on real shards: temporal sampling, determinism, memory-mapped reads, workers."""

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from signpipe.data import ShardDataset, mirror_keypoints, mirror_scores, padded_frames, random_offsets, sample_frames
from signpipe.keypoints.layout import FLIP_PERMUTATION, keypoint_names
from signpipe.models import stgcn
from signpipe.datasets import write_manifest
from signpipe.decode import decode_shard
from signpipe.hands import crop_shard, read_crops
from signpipe.pose import extract_shard
from signpipe.shards import read_index
from signpipe.synth import make_corpus


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Keypoints and hands shards (two of each) of a tiny synthetic corpus; hands chunked by 8 frames
    so that clips cross chunk boundaries."""
    root = tmp_path_factory.mktemp("data")
    make_corpus(root / "corpus", num_classes=4, signers=3, repeats=1, frames=12, width=96, height=72, progress=False)
    write_manifest({"adapter": "synthetic", "num_shards": 2}, root / "manifest.csv", root / "missing.csv",
                   corpus_dir=root / "corpus")
    out = {"keypoints": [], "hands": []}
    for shard in (0, 1):
        frames, keypoints, hands = (root / f"{stage}{shard}.h5" for stage in ("frames", "keypoints", "hands"))
        decode_shard(root / "manifest.csv", shard, frames, root / "failures.csv", short_side=48, progress=False)
        extract_shard(root / "manifest.csv", frames, keypoints, root / "quality.csv", {"backend": "sidecar"},
                      progress=False)
        crop_shard(frames, keypoints, hands, crop_size=16, chunk_frames=8, progress=False)
        out["keypoints"].append(keypoints)
        out["hands"].append(hands)
    return out


def test_centre_sampling_takes_the_middle_of_equal_segments():
    np.testing.assert_array_equal(sample_frames(64, 32), np.arange(1, 64, 2))
    np.testing.assert_array_equal(sample_frames(32, 32), np.arange(32))
    short = sample_frames(10, 32)  # stretched: every frame, in order, about 3.2 times each
    assert short.shape == (32,) and set(short) == set(range(10)) and (np.diff(short) >= 0).all()
    assert np.bincount(short).min() >= 3 and np.bincount(short).max() <= 4
    np.testing.assert_array_equal(sample_frames(1, 4), [0, 0, 0, 0])


def test_random_sampling_stays_within_its_segments():
    offsets = random_offsets(0, 0, np.arange(500), 32)
    assert offsets.shape == (500, 32) and 0 <= offsets.min() and offsets.max() < 1
    assert abs(offsets.mean() - 0.5) < 0.01 and abs(np.corrcoef(offsets[:, 0], offsets[:, 1])[0, 1]) < 0.1
    frames = sample_frames(np.full(500, 100), 32, offsets)
    segment = np.arange(32) * 100 / 32
    assert ((frames >= np.floor(segment)) & (frames < segment + 100 / 32)).all()
    assert len({tuple(f) for f in frames}) == 500  # every item gets its own clip


def test_items_are_the_shard_rows_at_the_sampled_frames(shards):
    data = ShardDataset(shards["keypoints"], num_frames=8)
    indexes = [read_index(h5py.File(path)) for path in shards["keypoints"]]
    assert len(data) == sum(len(index) for index in indexes)
    for item in (0, len(data) - 1):
        sample = data[item]
        shard = int(data.index.at[item, "shard"])
        row = indexes[shard].set_index("video_id").loc[sample["video_id"]]
        assert sample["label"] == row["label"] and sample["length"] == row["length"]
        assert sample["xy"].shape == (8, 133, 2) and sample["score"].shape == (8, 133)
        with h5py.File(shards["keypoints"][shard]) as f:
            expected = f["xy"][row["start"]:row["start"] + row["length"]][sample["frames"].numpy()]
        np.testing.assert_array_equal(sample["xy"].numpy(), expected)
    np.testing.assert_array_equal(data[0]["frames"], sample_frames(data[0]["length"], 8))


def test_split_filter_and_array_choice(shards):
    train = ShardDataset(shards["hands"], split="train")
    both = ShardDataset(shards["hands"], split=["val", "test"])
    assert set(train.index["split"]) == {"train"} and set(both.index["split"]) == {"val", "test"}
    assert len(train) + len(both) == len(ShardDataset(shards["hands"]))
    sample = ShardDataset(shards["hands"], arrays=["pose", "box", "crop"], num_frames=4)[0]
    assert sample["pose"].shape == (4, 2, 21, 3) and sample["pose"].dtype == torch.float32
    assert sample["box"].shape == (4, 2, 4)
    assert sample["crop"].shape == (4, 2, 16, 16, 3) and sample["crop"].dtype == torch.uint8
    with h5py.File(shards["hands"][0]) as f:
        start = int(read_index(f).set_index("video_id").loc[sample["video_id"], "start"])
        frames = sample["frames"].numpy()
        expected = read_crops(f["crop"], slice(start, start + frames[-1] + 1))[frames]
    np.testing.assert_array_equal(sample["crop"].numpy(), expected)
    with pytest.raises(ValueError, match="no array nope; it has box, box_source, crop, pose"):
        ShardDataset(shards["hands"], arrays=["pose", "nope"])
    with pytest.raises(ValueError, match="different stages"):
        ShardDataset([shards["hands"][0], shards["keypoints"][0]])


def test_same_seed_same_clips_new_epoch_new_clips(shards):
    def clips(seed, epoch, train=True):
        data = ShardDataset(shards["hands"], train=train, seed=seed, num_frames=6)
        data.set_epoch(epoch)
        return np.stack([data[k]["frames"].numpy() for k in range(len(data))])

    assert (clips(1, 0) == clips(1, 0)).all()
    assert (clips(1, 0) != clips(1, 1)).any(axis=1).mean() > 0.5
    assert (clips(1, 0) != clips(2, 0)).any(axis=1).mean() > 0.5
    assert (clips(1, 0, train=False) == clips(1, 5, train=False)).all()


def test_memory_mapped_reads_equal_h5py_reads(shards):
    mapped = ShardDataset(shards["hands"], arrays=["pose", "box", "box_source"], train=True, num_frames=12)
    plain = ShardDataset(shards["hands"], arrays=["pose", "box", "box_source"], train=True, num_frames=12,
                         memory_map=False)
    items = np.random.default_rng(0).permutation(len(mapped))  # a batch spanning both shards
    a, b = mapped.__getitems__(items), plain.__getitems__(items)
    assert type(mapped._arrays()["pose"]).__name__ == "MappedArray"
    assert type(plain._arrays()["pose"]).__name__ == "list"
    for x, y, item in zip(a, b, items):
        assert x["video_id"] == y["video_id"] == mapped[int(item)]["video_id"]
        for name in ("pose", "box", "box_source", "frames"):
            np.testing.assert_array_equal(x[name].numpy(), y[name].numpy())


def test_dataloader_with_two_workers_matches_one_process(shards):
    data = ShardDataset(shards["hands"], train=True, seed=3, num_frames=8)
    data[0]  # open the files in this process first: the workers must open their own

    def epoch(number, workers):
        data.set_epoch(number)
        loader = DataLoader(data, batch_size=3, shuffle=False, num_workers=workers)
        batches = list(loader)
        return (sum((b["video_id"] for b in batches), []), torch.cat([b["frames"] for b in batches]),
                torch.cat([b["pose"] for b in batches]), torch.cat([b["label"] for b in batches]))

    ids, frames, pose, labels = epoch(0, 2)
    ids1, frames1, pose1, labels1 = epoch(0, 0)
    assert ids == ids1 == data.index["video_id"].tolist()
    assert torch.equal(frames, frames1) and torch.equal(pose, pose1) and torch.equal(labels, labels1)
    assert pose.shape == (len(data), 8, 2, 21, 3)
    assert not torch.equal(epoch(1, 2)[1], frames)


def test_persistent_workers_see_the_new_epoch(shards):
    data = ShardDataset(shards["hands"], train=True, seed=3, num_frames=8)
    loader = DataLoader(data, batch_size=4, num_workers=2, persistent_workers=True)
    seen = []
    for number in (0, 1, 0):
        data.set_epoch(number)
        seen.append(torch.cat([batch["frames"] for batch in loader]))
    expected = []
    for number in (0, 1):
        data.set_epoch(number)
        expected.append(torch.stack([data[k]["frames"] for k in range(len(data))]))
    assert torch.equal(seen[0], expected[0]) and torch.equal(seen[1], expected[1]) and torch.equal(seen[2], seen[0])
    assert not torch.equal(seen[0], seen[1])


def test_several_stages_give_aligned_samples(shards):
    """Hands and keypoints of one video at the same frames: the hands poses are the keypoints' hands in crop pixels."""
    both = ShardDataset({"hands": shards["hands"], "keypoints": shards["keypoints"]}, ["pose", "box", "xy", "score"],
                        train=True, seed=5, num_frames=6)
    hands_only = ShardDataset(shards["hands"], ["pose"], train=True, seed=5, num_frames=6)
    assert both.stage_arrays == {"hands": ["pose", "box"], "keypoints": ["xy", "score"]}
    assert len(both) == len(hands_only)
    for item in (0, len(both) - 1):
        sample, alone = both[item], hands_only[item]
        assert sample["video_id"] == alone["video_id"]
        np.testing.assert_array_equal(sample["frames"], alone["frames"])  # sampled once, for every stage
        np.testing.assert_array_equal(sample["pose"], alone["pose"])
        with h5py.File(shards["keypoints"][0]) as f0, h5py.File(shards["keypoints"][1]) as f1:
            for f in (f0, f1):
                index = read_index(f).set_index("video_id")
                if sample["video_id"] in index.index:
                    start = int(index.loc[sample["video_id"], "start"])
                    np.testing.assert_array_equal(sample["xy"], f["xy"][start + sample["frames"].numpy()])
        # the detected right wrist, mapped through the hand box, lands on the crop pose's wrist
        score = sample["score"][:, 112]
        box = sample["box"][:, 1]  # (x0, y0, x1, y1) of the right hand in source pixels
        crop = sample["pose"][:, 1, 0, :2]
        scale = (box[:, 2] - box[:, 0]) / 16
        back = torch.stack([box[:, 0] + crop[:, 0] * scale, box[:, 1] + crop[:, 1] * scale], -1)
        seen = score > 0
        assert torch.allclose(back[seen], sample["xy"][:, 112][seen].float(), atol=1.0)


def test_a_video_that_disagrees_across_stages_names_it_and_both_files(shards, tmp_path):
    import shutil

    broken = tmp_path / "hands0.h5"
    shutil.copy(shards["hands"][0], broken)
    with h5py.File(broken, "r+") as f:
        index = f["index"][...]
        video = index["video_id"][0].decode()
        index["length"][0] -= 1
        f["index"][...] = index
    with pytest.raises(ValueError, match=rf"video {video}: \d+ frames in .*keypoints0.h5 but \d+ in .*hands0.h5"):
        ShardDataset({"keypoints": shards["keypoints"], "hands": [broken, shards["hands"][1]]})
    with pytest.raises(ValueError, match=r"video \w+: in .*keypoints1.h5 but in none of .*hands0.h5"):
        ShardDataset({"keypoints": shards["keypoints"], "hands": [shards["hands"][0]]})
    with pytest.raises(ValueError, match="a hands shard given as keypoints"):
        ShardDataset({"keypoints": shards["hands"]})


def test_window_sampling_takes_consecutive_frames():
    np.testing.assert_array_equal(sample_frames(100, 32, sampling="window"), np.arange(34, 66))  # centred
    offsets = random_offsets(0, 0, np.arange(300), 32)
    frames = sample_frames(np.full(300, 100), 32, offsets, "window")
    assert (np.diff(frames, axis=1) == 1).all() and frames.min() == 0 and frames.max() == 99
    assert len(set(frames[:, 0])) > 50  # random starts over the 69 possible
    np.testing.assert_array_equal(sample_frames(10, 32, sampling="window"), sample_frames(10, 32))  # short: stretched
    with pytest.raises(ValueError, match="sampling='random'"):
        sample_frames(10, 32, sampling="random")


def test_padding_keeps_the_frames_of_short_clips_and_marks_the_rest():
    lengths = np.array([5, 40])
    frames, valid = padded_frames(lengths, sample_frames(lengths, 8))
    np.testing.assert_array_equal(frames[0], [0, 1, 2, 3, 4, 4, 4, 4])
    np.testing.assert_array_equal(valid[0], [True] * 5 + [False] * 3)
    np.testing.assert_array_equal(frames[1], sample_frames(40, 8))
    assert valid[1].all()


def test_mirroring_keypoints_swaps_left_and_right_and_negates_x():
    names = keypoint_names()
    assert sorted(FLIP_PERMUTATION) == list(range(133))
    assert all(FLIP_PERMUTATION[FLIP_PERMUTATION[i]] == i for i in range(133))
    for name in ("left_wrist", "left_eye", "left_hip", "left_heel", "left_hand_thumb4", "left_hand_wrist"):
        assert names[FLIP_PERMUTATION[names.index(name)]] == name.replace("left", "right")
    assert FLIP_PERMUTATION[0] == 0  # the nose
    face = 23
    assert FLIP_PERMUTATION[face + 36] == face + 45 and FLIP_PERMUTATION[face + 48] == face + 54  # eye, mouth corners
    assert FLIP_PERMUTATION[face + 8] == face + 8 and FLIP_PERMUTATION[face + 30] == face + 30  # chin, nose tip
    xy = np.random.default_rng(0).normal(size=(2, 3, 133, 2))
    mirrored = mirror_keypoints(xy)
    np.testing.assert_array_equal(mirrored[..., names.index("right_wrist"), 0], -xy[..., names.index("left_wrist"), 0])
    np.testing.assert_array_equal(mirrored[..., names.index("right_wrist"), 1], xy[..., names.index("left_wrist"), 1])
    np.testing.assert_array_equal(mirror_keypoints(mirrored), xy)
    score = np.arange(133.0)
    assert mirror_scores(score)[names.index("right_hand_index4")] == names.index("left_hand_index4")


def test_stgcn_clips_mirror_with_their_probability_in_training_only(shards, caplog):
    plain = stgcn.dataset({"keypoints": shards["keypoints"]}, "train", True, {"num_frames": 8})
    flipped = stgcn.dataset({"keypoints": shards["keypoints"]}, "train", True, {"num_frames": 8, "mirror": 1.0})
    a, b = plain[0], flipped[0]
    assert not a["mirrored"] and b["mirrored"]
    np.testing.assert_array_equal(b["xy"].numpy(), mirror_keypoints(a["xy"].numpy()))
    np.testing.assert_array_equal(b["score"].numpy(), mirror_scores(a["score"].numpy()))
    half = stgcn.dataset({"keypoints": shards["keypoints"]}, "train", True, {"num_frames": 8, "mirror": 0.5})
    draws = []
    for epoch in range(20):
        half.set_epoch(epoch)
        draws.append(half.flips(np.arange(len(half)), {}).mean())
    assert 0.3 < np.mean(draws) < 0.7
    test = stgcn.dataset({"keypoints": shards["keypoints"]}, "test", False, {"num_frames": 8, "mirror": 1.0})
    assert not test[0]["mirrored"]
    with pytest.raises(ValueError, match="cannot mirror jpeg"):
        ShardDataset(shards["keypoints"][0].parent / "frames0.h5", mirror=0.5)
    with caplog.at_level("INFO"):
        ShardDataset(shards["keypoints"], split="val", num_frames=64)
    assert "val: " in caplog.text and "shorter than 64 frames, stretched (frames repeated)" in caplog.text
