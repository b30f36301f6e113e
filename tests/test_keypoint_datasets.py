"""Keypoint datasets (issue #15): adapters that list sequences, the pose import, hands without crops,
inspect/show on them, and the refusal of models that need pixels. Real files from ../shared/data
(the Kaggle ASL Signs slice, two .pose files) and small corpora generated in tmp."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pandas as pd
import pytest
import yaml

from signpipe.config import ConfigError, check_config
from signpipe.datasets import (
    KEYPOINT_ADAPTERS,
    adapters,
    build_manifest,
    manifest_listing,
    read_manifest,
    write_manifest,
    write_shard_manifest,
)
from signpipe.hands import crop_shard, has_crops, hand_poses
from signpipe.inspect import describe
from signpipe.keypoints import NUM_KEYPOINTS
from signpipe.keypoints.sources import FORMATS
from signpipe.keypoints.sources.arrays import LAYOUTS
from signpipe.models.signbert import HandTokens
from signpipe.pose.importer import import_shard
from signpipe.shards import read_index, read_video, shard_of
from signpipe.show import contact_sheet, sheet_size

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
SIGNS = {"hello": 11, "thankyou": 9}  # the real slice: 20 sequences of participant 4718


@pytest.fixture(scope="module")
def gislr(shared_data: Path) -> Path:
    root = shared_data / "gislr"
    if not (root / "train.csv").is_file():
        pytest.skip(f"real Kaggle ASL Signs slice not found at {root}")
    return root


def kaggle_corpus(root: Path, slice_dir: Path, participants: list[str]) -> pd.DataFrame:
    """A Kaggle-layout corpus in ``root``: the real slice's parquets dealt round-robin to ``participants``."""
    real = pd.read_csv(slice_dir / "train.csv", dtype=str)
    rows = []
    for i, row in enumerate(real.itertuples()):
        participant = participants[i % len(participants)]
        path = f"train_landmark_files/{participant}/{row.sequence_id}.parquet"
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(slice_dir / row.path, root / path)
        rows.append({"path": path, "participant_id": participant, "sequence_id": row.sequence_id, "sign": row.sign})
    table = pd.DataFrame(rows)
    table.to_csv(root / "train.csv", index=False)
    return table


def gislr_block(index: Path, **extra) -> dict:
    return {"adapter": "gislr", "index": str(index), "num_shards": 2, "width": 480, "height": 640, **extra}


def test_keypoint_adapters_are_the_readers_formats():
    """The DAG's torch-free list of keypoint adapters is the readers' list, and each is an adapter and in the schema."""
    assert KEYPOINT_ADAPTERS == FORMATS
    assert set(KEYPOINT_ADAPTERS) <= set(adapters())
    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    datasets = schema["properties"]["datasets"]["additionalProperties"]
    assert set(KEYPOINT_ADAPTERS) <= set(datasets["properties"]["adapter"]["enum"])
    layouts = [branch["then"]["properties"]["layout"]["enum"] for branch in datasets["allOf"]
               if "layout" in branch["then"].get("properties", {})]
    assert layouts == [list(LAYOUTS)]


def test_gislr_lists_the_real_slice(gislr):
    """20 sequences: ids are the sequence ids, labels the sorted signs, signer the participant, the nominal frame."""
    block = gislr_block(gislr / "train.csv", split_by="sequence", splits={"val": [1330949181], "test": ["205531021"]},
                        default_split="train")
    manifest, missing = build_manifest(block, name="asl")
    assert missing.empty and len(manifest) == 20
    assert manifest.groupby("gloss")["label"].first().to_dict() == {"hello": 0, "thankyou": 1}
    assert manifest["gloss"].value_counts().to_dict() == SIGNS
    assert set(manifest["signer"]) == {"4718"} and manifest["path"].map(lambda p: Path(p).is_file()).all()
    assert manifest.set_index("video_id").loc[["1330949181", "205531021"], "split"].tolist() == ["val", "test"]
    assert (manifest["width"] == 480).all() and (manifest["height"] == 640).all()


def test_gislr_splits_by_participant_classes_and_missing_files(gislr, tmp_path):
    table = kaggle_corpus(tmp_path, gislr, ["16069", "2044", "4718"])
    splits = {"train": [16069], "val": ["2044"], "test": ["4718"]}
    (tmp_path / "map.json").write_text('{"thankyou": 0, "hello": 7, "yes": 1}')
    gone = table.iloc[0]
    (tmp_path / gone["path"]).unlink()
    manifest, missing = build_manifest(gislr_block(tmp_path / "train.csv", splits=splits,
                                                   classes=str(tmp_path / "map.json")), name="kaggle")
    assert manifest.groupby("signer")["split"].unique().map(list).to_dict() == {
        "16069": ["train"], "2044": ["val"], "4718": ["test"]}
    assert manifest.groupby("gloss")["label"].first().to_dict() == {"hello": 7, "thankyou": 0}
    assert missing["video_id"].tolist() == [gone["sequence_id"]]
    assert missing["reason"].tolist() == ["keypoint file not found"]

    with pytest.raises(ValueError, match=r"datasets.kaggle.splits: participants '4718' are in no split"):
        build_manifest(gislr_block(tmp_path / "train.csv", splits={"train": [16069, 2044]}), name="kaggle")
    (tmp_path / "few.txt").write_text("hello\n")
    with pytest.raises(ValueError, match=r"signs 'thankyou' .* are not in the classes file"):
        build_manifest(gislr_block(tmp_path / "train.csv", splits=splits, classes=str(tmp_path / "few.txt")))


def test_gislr_listing_digests_change_for_the_new_sequences_shard_only(gislr, tmp_path):
    table = kaggle_corpus(tmp_path, gislr, ["1", "2", "3"])
    block = gislr_block(tmp_path / "train.csv", splits={"train": [1], "val": [2], "test": [3]}, num_shards=4)
    before = manifest_listing(block)
    assert not before.manifest.startswith("error")
    new = {"path": "train_landmark_files/2/77.parquet", "participant_id": "2", "sequence_id": "77", "sign": "hello"}
    shutil.copy(tmp_path / table["path"][0], tmp_path / new["path"])
    pd.concat([table, pd.DataFrame([new])]).to_csv(tmp_path / "train.csv", index=False)
    after = manifest_listing(block)
    changed = [k for k in range(4) if before.shards[k] != after.shards[k]]
    assert changed == [shard_of("77", 4)] and before.manifest != after.manifest


def test_pose_and_arrays_adapters(shared_data, tmp_path):
    """``pose``: the real .pose files listed by a CSV; ``arrays``: a folder per class with a declared layout."""
    pose_dir = shared_data / "pose"
    if not (pose_dir / "mediapipe.pose").is_file():
        pytest.skip(f"real .pose files not found at {pose_dir}")
    (tmp_path / "poses.csv").write_text(
        f"video_id,path,label,split,gloss,signer\na,{pose_dir / 'mediapipe.pose'},0,train,x,s1\n"
        f"b,{pose_dir / 'hand_estimation_6fb01565.pose'},1,test,y,s2\nc,{tmp_path / 'gone.pose'},1,val,y,s3\n")
    manifest, missing = build_manifest({"adapter": "pose", "manifest": str(tmp_path / "poses.csv")}, name="p")
    assert manifest["video_id"].tolist() == ["a", "b"] and manifest["gloss"].tolist() == ["x", "y"]
    assert missing["reason"].tolist() == ["keypoint file not found"]

    for name in ("hello/P01_1", "hello/P02_1", "bye/P01_2"):
        (tmp_path / "arrays" / name).parent.mkdir(parents=True, exist_ok=True)
        np.save(tmp_path / "arrays" / f"{name}.npy", np.zeros((3, 133, 3), np.float32))
    block = {"adapter": "arrays", "root": str(tmp_path / "arrays"), "pattern": r"(?P<signer>P\d+)_.*",
             "splits": {"train": ["P01"], "test": ["P02"]}, "layout": "coco-wholebody-133"}
    manifest, _ = build_manifest(block, name="arr")
    assert manifest["video_id"].tolist() == ["bye__P01_2", "hello__P01_1", "hello__P02_1"]
    assert manifest["label"].tolist() == [0, 1, 1] and manifest["path"].str.endswith(".npy").all()
    with pytest.raises(ValueError, match="datasets.arr.layout: 'holistic' is not one of"):
        build_manifest({**block, "layout": "holistic"}, name="arr")
    with pytest.raises(ValueError, match="set either manifest"):
        build_manifest({**block, "manifest": str(tmp_path / "poses.csv")}, name="arr")


def pyskl_pickle(path: Path) -> dict:
    """A small pyskl skeleton pickle: three 133-point sequences, one with a frame_dir that is no file name."""
    rng = np.random.default_rng(0)
    annotations = [{"frame_dir": name, "label": label, "img_shape": (360, 640), "total_frames": 6,
                    "keypoint": rng.uniform(0, 300, (1, 6, NUM_KEYPOINTS, 2)).astype(np.float32),
                    "keypoint_score": np.full((1, 6, NUM_KEYPOINTS), 0.9, np.float32)}
                   for name, label in (("00335", 0), ("cat/01", 1), ("dog 02", 1))]
    data = {"split": {"train": ["00335", "cat/01"], "test": ["dog 02"], "extra": ["00335"]}, "annotations": annotations}
    path.write_bytes(pickle.dumps(data))
    return data


def test_pyskl_needs_trust_and_lists_splits_with_safe_ids(tmp_path):
    pyskl_pickle(tmp_path / "wlasl.pkl")
    block = {"adapter": "pyskl", "pickle": str(tmp_path / "wlasl.pkl")}
    with pytest.raises(ValueError, match="unpickling runs code.*trust_pickle"):
        build_manifest(block, name="sk")
    (tmp_path / "glosses.txt").write_text("book\ncat\n")
    block.update(trust_pickle=True, classes=str(tmp_path / "glosses.txt"))
    write_manifest(block, tmp_path / "manifest.csv", tmp_path / "missing.csv", name="sk")
    manifest = read_manifest(tmp_path / "manifest.csv")
    assert manifest["video_id"].tolist() == ["00335", "cat_01", "dog_02"]
    assert manifest["frame_dir"].tolist() == ["00335", "cat/01", "dog 02"]  # kept as text for the reader
    assert manifest["split"].tolist() == ["train", "train", "test"] and manifest["gloss"].tolist() == ["book", "cat", "cat"]
    assert (manifest["width"] == 640).all() and (manifest["height"] == 360).all()
    quality = import_shard(tmp_path / "manifest.csv", tmp_path / "kp.h5", tmp_path / "q.csv", tmp_path / "f.csv",
                           block, progress=False)
    assert quality["error"].fillna("").eq("").all()  # "cat_01" is read by its frame_dir "cat/01"
    with h5py.File(tmp_path / "kp.h5") as f:
        assert read_index(f)["video_id"].tolist() == ["00335", "cat_01", "dog_02"]
    manifest, _ = build_manifest({**block, "splits": {"train": "extra"}}, name="sk")
    assert manifest["video_id"].tolist() == ["00335"]
    with pytest.raises(ValueError, match="the pickle's splits are"):
        build_manifest({**block, "splits": {"train": "xsub_train"}}, name="sk")


def test_import_writes_the_keypoints_shard_and_lists_bad_sequences(gislr, tmp_path):
    """Real sequences are imported with the usual schema; a parquet without coordinates and an empty one
    land in the failures CSV with their reason, and the rest of the shard is written."""
    table = kaggle_corpus(tmp_path, gislr, ["4718"]).iloc[:3]
    bad = pd.read_parquet(tmp_path / table["path"].iloc[0])
    broken = {"path": "train_landmark_files/4718/11.parquet", "participant_id": "4718", "sequence_id": "11",
              "sign": "hello"}
    bad.drop(columns=["x", "y"]).to_parquet(tmp_path / broken["path"])
    empty = {**broken, "path": "train_landmark_files/4718/12.parquet", "sequence_id": "12"}
    bad.iloc[:0].to_parquet(tmp_path / empty["path"])
    pd.concat([table, pd.DataFrame([broken, empty])]).to_csv(tmp_path / "train.csv", index=False)
    block = gislr_block(tmp_path / "train.csv", splits={"train": [4718]}, num_shards=1)
    write_shard_manifest(block, 0, tmp_path / "0.csv", name="asl")
    quality = import_shard(tmp_path / "0.csv", tmp_path / "kp.h5", tmp_path / "q.csv", tmp_path / "f.csv", block,
                           progress=False)

    failures = pd.read_csv(tmp_path / "f.csv", dtype={"video_id": str})
    assert failures["video_id"].tolist() == ["11", "12"] and set(failures["stage"]) == {"pose"}
    assert "x" in failures["reason"][0] and failures["reason"].str.contains("parquet").all()
    good = sorted(table["sequence_id"])
    assert quality["video_id"].tolist() == good and (quality["rate_face"] > 0.5).all()
    with h5py.File(tmp_path / "kp.h5") as f:
        index = read_index(f)
        assert index["video_id"].tolist() == good
        assert f.attrs["pose_backend"] == "import gislr" and (f.attrs["width"], f.attrs["height"]) == (480, 640)
        assert (index["src_width"] == 480).all() and (index["src_height"] == 640).all()
        for entry in index.to_dict("records"):
            frames = pd.read_parquet(tmp_path / table.set_index("sequence_id").loc[entry["video_id"], "path"])
            assert entry["length"] == frames["frame"].nunique()
            xy, score = read_video(f, "xy", entry), read_video(f, "score", entry)
            assert xy.shape[1:] == (NUM_KEYPOINTS, 2) and ((score == 0) | (score == 1)).all()
            assert (xy[score == 0] == 0).all()
            face = xy[:, 23:91][score[:, 23:91] > 0]
            assert (face[:, 0] > 0).all() and (face[:, 0] < 480).all() and (face[:, 1] < 640).all()


@pytest.fixture(scope="module")
def imported(gislr, tmp_path_factory) -> Path:
    """results/asl/{keypoints,hands}/0.h5 of the real slice, imported and with hands without crops."""
    root = tmp_path_factory.mktemp("results") / "asl"
    block = gislr_block(gislr / "train.csv", split_by="sequence", splits={"test": [1638390970, 205531021]},
                        default_split="train", num_shards=1)
    write_shard_manifest(block, 0, root / "manifest" / "0.csv", name="asl")
    import_shard(root / "manifest" / "0.csv", root / "keypoints" / "0.h5", root / "keypoints" / "0.quality.csv",
                 root / "keypoints" / "0.failures.csv", block, progress=False)
    crop_shard(None, root / "keypoints" / "0.h5", root / "hands" / "0.h5", crop_size=64, progress=False)
    return root


def test_hands_without_frames_hold_poses_and_boxes_only(imported):
    with h5py.File(imported / "hands" / "0.h5") as hands, h5py.File(imported / "keypoints" / "0.h5") as kp:
        assert not has_crops(hands) and "crop" not in hands
        index = read_index(hands)
        assert index[["video_id", "length"]].equals(read_index(kp)[["video_id", "length"]])
        entry = index.iloc[0].to_dict()
        expected = hand_poses(read_video(kp, "xy", entry), read_video(kp, "score", entry), (480, 640), 64)
        np.testing.assert_allclose(read_video(hands, "pose", entry), expected.pose)
        np.testing.assert_allclose(read_video(hands, "box", entry), expected.box)
        detected = hands["pose"][..., 2] > 0
        assert detected.any() and (np.abs(hands["pose"][..., :2][detected]) < 64 * 4).all()
    clips = HandTokens([imported / "hands" / "0.h5"], "train", num_frames=8)
    sample = clips[0]
    assert tuple(sample["pose"].shape) == (8, 2, 21, 3)


def test_inspect_and_show_handle_a_keypoint_dataset(imported, tmp_path):
    report = describe(imported / "hands" / "0.h5")
    assert "@crops: False" in report and "no crops" in report
    assert "@width: 480" in describe(imported / "keypoints" / "0.h5")
    out = contact_sheet(imported / "hands" / "0.h5", "1638390970", tmp_path / "sheet.png", frames=4)
    image = cv2.imread(str(out))
    assert (image.shape[1], image.shape[0]) == sheet_size(4, (480, 640), crops=False)
    assert image.std() > 5  # skeletons drawn on the blank canvas


def config_with(adapter_block: dict, models: list[str]) -> dict:
    return {"datasets": {"asl": adapter_block}, "finetune": {"models": models}}


@pytest.mark.parametrize("model, needs", [("rgb3d", "video frames"), ("glenet", "video frames"),
                                          ("hma", "hand crops")])
def test_models_that_need_pixels_are_refused_on_keypoint_datasets(model, needs):
    block = {"adapter": "gislr", "index": "train.csv", "splits": {"train": [1]}}
    with pytest.raises(ConfigError) as error:
        check_config(config_with(block, ["signbert", model]), SCHEMA_PATH)
    assert str(error.value).startswith(f"config finetune.models: {model!r} needs {needs}, but dataset 'asl' "
                                       "(adapter gislr) has keypoints only")
    check_config(config_with(block, ["signbert", "stgcn"]), SCHEMA_PATH)
    check_config(config_with({"adapter": "csv", "manifest": "m.csv"}, [model]), SCHEMA_PATH)


def test_pretraining_loss_with_a_hand_no_frame_detected():
    """Kaggle's slice detects the left hand in 2% of frames: a batch where it never is still trains on the other."""
    import torch

    from signpipe.models.signbert import SignBERT
    from signpipe.pretrain import PretrainObjective, mask_tokens, pretraining_loss
    from test_signbert import TINY, random_pose

    pose = random_pose(2, 8)
    pose[..., 2] = 0.9
    pose[:, :, 0] = 0  # left hand: never detected
    objective = PretrainObjective(mask="present")
    assert not mask_tokens(pose, objective, torch.Generator().manual_seed(1)).chosen[:, :, 0].any()
    loss, metrics = pretraining_loss(SignBERT(TINY), pose, objective, torch.Generator().manual_seed(1))
    loss.backward()
    assert torch.isfinite(loss) and metrics["rec_loss"] > 0


def test_labels_never_shift_silently(gislr, shared_data, tmp_path):
    """Issue #25 item 4: an empty gislr sign, a fractional or zero-size pyskl annotation and a CSV width the
    readers would ignore are refused with the file, the row and the value, instead of renumbering labels."""
    table = kaggle_corpus(tmp_path, gislr, ["4718"])
    table.loc[3, "sign"] = ""
    table.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(ValueError, match=r"datasets.asl.index: .*train.csv: line\(s\) 5 have an empty sign "
                                         rf"\(sequence_id '{table.loc[3, 'sequence_id']}'\)"):
        build_manifest(gislr_block(tmp_path / "train.csv", split_by="sequence", default_split="train"), name="asl")

    data = pyskl_pickle(tmp_path / "sk.pkl")
    block = {"adapter": "pyskl", "pickle": str(tmp_path / "sk.pkl"), "trust_pickle": True}
    assert build_manifest(block, name="sk")[0]["label"].tolist() == [0, 1, 1]
    for key, value, message in [("label", 1.7, "label must be an integer class index, got 1.7"),
                                ("img_shape", (0, 0), r"img_shape must be \(height, width\) in positive pixels, "
                                                      r"got \(0, 0\)")]:
        changed = [dict(a) for a in data["annotations"]]
        changed[1][key] = value
        (tmp_path / "bad.pkl").write_bytes(pickle.dumps({**data, "annotations": changed}))
        with pytest.raises(ValueError, match=rf"bad.pkl: annotation 1 \(frame_dir 'cat/01'\): {message}"):
            build_manifest({**block, "pickle": str(tmp_path / "bad.pkl")}, name="sk")

    pose = shared_data / "pose" / "mediapipe.pose"
    (tmp_path / "poses.csv").write_text(f"video_id,path,label,split,width\na,{pose},0,train,512\nb,{pose},0,test,1920\n")
    with pytest.raises(ValueError, match=r"poses.csv: video_id 'b' has width 1920 .*dataset's width key \(512\)"):
        build_manifest({"adapter": "pose", "manifest": str(tmp_path / "poses.csv")}, name="p")
    (tmp_path / "poses.csv").write_text(f"video_id,path,label,split,width\na,{pose},0,train,1920\nb,{pose},0,test,1920\n")
    manifest, _ = build_manifest({"adapter": "pose", "manifest": str(tmp_path / "poses.csv"), "width": 1920}, name="p")
    assert manifest["width"].tolist() == [1920, 1920]  # a column that agrees with the key is fine


def test_label_files_that_are_not_utf8_and_repeated_frame_dirs_are_one_line(gislr, tmp_path):
    """Issue #25 item 11: the file, the line and the fix instead of "'utf-8' codec can't decode"; a
    pyskl frame_dir used twice is said as such, not as a file-name clash."""
    table = kaggle_corpus(tmp_path, gislr, ["4718"])
    table.loc[2, "sign"] = "caf\u00e9"
    (tmp_path / "train.csv").write_bytes(table.to_csv(index=False).encode("latin-1"))
    with pytest.raises(ValueError, match=r"train.csv: line 4 is not UTF-8 \(byte 0xe9\); a latin-1 .*iconv"):
        build_manifest(gislr_block(tmp_path / "train.csv", split_by="sequence", default_split="train"), name="asl")
    (tmp_path / "list.csv").write_bytes("video_id,path,label,split,gloss\na,x.pose,0,train,ni\u00f1o\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"list.csv: line 2 is not UTF-8 \(byte 0xf1\)"):
        build_manifest({"adapter": "pose", "manifest": str(tmp_path / "list.csv")}, name="p")

    data = pyskl_pickle(tmp_path / "sk.pkl")
    data["annotations"][2]["frame_dir"] = "00335"
    (tmp_path / "sk.pkl").write_bytes(pickle.dumps(data))
    with pytest.raises(ValueError, match=r"sk.pkl: frame_dir '00335' is in several annotations"):
        build_manifest({"adapter": "pyskl", "pickle": str(tmp_path / "sk.pkl"), "trust_pickle": True,
                        "splits": {"train": "extra"}}, name="sk")
