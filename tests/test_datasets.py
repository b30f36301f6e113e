"""Dataset adapters on the real WLASL index files and on small corpora built in tmp."""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from signpipe.datasets import (
    DEFAULT_NUM_SHARDS,
    MANIFEST_COLUMNS,
    MISSING_COLUMNS,
    build_manifest,
    manifest_listing,
    read_manifest,
    write_manifest,
    write_shard_manifest,
)
from signpipe.shards import shard_of

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
WLASL = DATA / "wlasl"
INDEX = WLASL / "WLASL_v0.3.json"

# Found in the files themselves (and re-derived from them below).
WLASL_SPLITS = {"train": 14289, "val": 3916, "test": 2878}  # 21,083 instances of 2,000 glosses
WLASL100_SPLITS = {"train": 1442, "val": 338, "test": 258}  # nslt_100.json: 2,038 videos
NSLT2000_NOT_IN_INDEX = {  # nslt_2000.json: 21,095 videos, these 12 absent from WLASL_v0.3.json
    "09500", "12209", "13422", "16096", "20065", "20138",
    "39347", "47639", "48251", "51153", "57839", "60721",
}
# leading zero; plain; YouTube 2150..2249; handspeak 2..-1; youtu.be 3..-1
PRESENT = ["05237", "69241", "70212", "27212", "67233"]


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return path


@pytest.fixture(scope="module")
def wlasl_files() -> Path:
    if not INDEX.exists():
        pytest.skip(f"real WLASL index not found at {INDEX} (shared test data, not in the repo)")
    return WLASL


@pytest.fixture(scope="module")
def index_json(wlasl_files: Path) -> list[dict]:
    """The real index, parsed once for the expected values."""
    return json.loads(INDEX.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def some_videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A videos folder with empty files of a few real ids (one .mkv) and an unrelated file."""
    videos = tmp_path_factory.mktemp("wlasl_videos")
    for video_id in PRESENT:
        touch(videos / f"{video_id}{'.mkv' if video_id == '70212' else '.mp4'}")
    touch(videos / "README.txt")
    return videos


@pytest.fixture(scope="module")
def full(wlasl_files: Path, some_videos: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return build_manifest({"adapter": "wlasl", "index": str(INDEX), "videos": str(some_videos), "num_shards": 8},
                          name="wlasl")


@pytest.fixture(scope="module")
def wlasl100(wlasl_files: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """WLASL100 with every one of its videos present."""
    videos = tmp_path_factory.mktemp("wlasl100_videos")
    for video_id in json.loads((WLASL / "nslt_100.json").read_text()):
        touch(videos / f"{video_id}.mp4")
    return build_manifest({"adapter": "wlasl", "index": str(INDEX), "videos": str(videos), "subset": 100,
                           "num_shards": 4}, name="wlasl100")


def test_wlasl_all_instances(full, index_json):
    manifest, missing = full
    instances = [(label, entry["gloss"], inst)
                 for label, entry in enumerate(index_json) for inst in entry["instances"]]
    assert len(index_json) == 2000 and len(instances) == 21083
    assert list(manifest.columns[:len(MANIFEST_COLUMNS)]) == MANIFEST_COLUMNS
    assert list(missing.columns) == MISSING_COLUMNS
    assert list(manifest["video_id"]) == sorted(PRESENT)
    assert len(missing) == 21083 - len(PRESENT) and set(missing["reason"]) == {"video file not found"}
    both = pd.concat([manifest[["video_id", "label", "gloss", "split"]], missing])
    assert both["video_id"].is_unique and len(both) == 21083
    assert both["gloss"].nunique() == 2000 and both["label"].between(0, 1999).all()
    expected = {inst["video_id"]: (label, gloss, inst["split"]) for label, gloss, inst in instances}
    found = both[["video_id", "label", "gloss", "split"]].itertuples(index=False)
    assert all(expected[row[0]] == tuple(row[1:]) for row in found)
    assert dict(Counter(both["split"])) == WLASL_SPLITS == dict(Counter(i["split"] for _, _, i in instances))
    videos = Path(manifest["path"][0]).parent
    assert missing.set_index("video_id").loc["00295", "path"] == str(videos / "00295.mp4")  # the expected file


def test_wlasl_row_contents(full, some_videos):
    manifest, _ = full
    row = manifest.set_index("video_id").loc["70212"]
    assert row["path"] == str(some_videos / "70212.mkv")  # other extensions are found by stem
    assert (row["gloss"], row["label"], row["split"], row["signer"]) == ("book", 0, "val", "121")
    assert [row[c] for c in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")] == [110, 25, 274, 240]
    assert (row["fps"], row["source"], row["instance_id"], row["variation_id"]) == (25, "northtexas", 5, 0)
    assert row["url"].endswith("hjS0dQDgbjo")
    assert all(Path(p).is_absolute() for p in manifest["path"])


def test_wlasl_frames_of_preprocessed_videos(full):
    """preprocess.py cut YouTube 70212 to its frames 2150..2249; it copied 27212 and 67233 whole."""
    frames = full[0].set_index("video_id")[["frame_start", "frame_end"]]
    assert tuple(frames.loc["70212"]) == (0, -1)
    assert tuple(frames.loc["27212"]) == (1, -1)  # index: frame_start 2, frame_end -1
    assert tuple(frames.loc["69241"]) == (0, -1)  # index: 1, -1
    assert tuple(frames.loc["67233"]) == (2, -1)  # YouTube, index: 3, -1 (preprocess.py ignores the start)


def test_wlasl_frames_of_raw_videos(wlasl_files, tmp_path):
    """trimmed: false -> raw downloads (YouTube by YouTube id); the index's ranges apply to all."""
    for name in ("hjS0dQDgbjo.mp4", "69241.mp4", "27212.mp4"):
        touch(tmp_path / name)
    manifest, _ = build_manifest({"adapter": "wlasl", "index": str(INDEX), "videos": str(tmp_path),
                                  "trimmed": False, "num_shards": 2})
    rows = manifest.set_index("video_id")
    assert tuple(rows.loc["70212", ["frame_start", "frame_end"]]) == (2149, 2249)  # 1-based incl. -> 0-based excl.
    assert rows.loc["70212", "path"] == str(tmp_path / "hjS0dQDgbjo.mp4")
    assert tuple(rows.loc["69241", ["frame_start", "frame_end"]]) == (0, -1)
    assert tuple(rows.loc["27212", ["frame_start", "frame_end"]]) == (1, -1)
    shared = rows.loc[rows["path"] == str(tmp_path / "hjS0dQDgbjo.mp4")]  # one long YouTube video, many signs
    assert len(shared) > 1 and (shared["frame_end"] > shared["frame_start"]).all()


def test_wlasl100(wlasl100):
    manifest, missing = wlasl100
    nslt = json.loads((WLASL / "nslt_100.json").read_text())
    assert len(missing) == 0 and len(manifest) == len(nslt) == 2038
    assert dict(Counter(manifest["split"])) == dict(Counter(v["subset"] for v in nslt.values())) == WLASL100_SPLITS
    assert set(manifest["label"]) == set(range(100))
    assert (manifest["label"] == manifest["video_id"].map(lambda v: nslt[v]["action"][0])).all()
    assert manifest.set_index("video_id").loc["05237", "gloss"] == "basketball"


def test_wlasl2000_ids_not_in_index(wlasl_files, some_videos):
    manifest, missing = build_manifest({"adapter": "wlasl", "index": str(INDEX), "videos": str(some_videos),
                                        "subset": str(WLASL / "nslt_2000.json"), "num_shards": 8})
    nslt = json.loads((WLASL / "nslt_2000.json").read_text())
    assert len(nslt) == 21095 and len(manifest) + len(missing) == 21095
    absent = missing.loc[missing["reason"] == "not in index"]
    assert set(absent["video_id"]) == NSLT2000_NOT_IN_INDEX
    row = absent.set_index("video_id").loc["09500"]
    assert (row["label"], row["gloss"], row["split"]) == (1658, "caterpillar", "test")
    assert row["path"] == str(some_videos / "09500.mp4")
    assert list(manifest["video_id"]) == sorted(PRESENT)


def test_shards_and_leading_zeros_survive_the_csv(wlasl100, tmp_path, caplog):
    manifest, _ = wlasl100
    assert (manifest["shard"] == [shard_of(v, 4) for v in manifest["video_id"]]).all()
    assert set(manifest["shard"]) == {0, 1, 2, 3}
    cfg = {"adapter": "wlasl", "index": str(INDEX), "videos": str(Path(manifest["path"][0]).parent),
           "subset": 100, "num_shards": 4}
    with caplog.at_level(logging.INFO, logger="signpipe.datasets"):
        written = write_manifest(cfg, tmp_path / "out" / "manifest.csv", tmp_path / "out" / "missing.csv",
                                 name="wlasl100")
    assert "wlasl100: 2038 videos (train 1442, val 338, test 258)" in caplog.text
    back = read_manifest(tmp_path / "out" / "manifest.csv")
    pd.testing.assert_frame_equal(back, written, check_dtype=False)
    assert "05237" in set(back["video_id"]) and back["signer"].map(type).eq(str).all()
    assert list(read_manifest(tmp_path / "out" / "missing.csv").columns) == MISSING_COLUMNS  # header only
    assert not list(tmp_path.joinpath("out").glob(".*"))  # no temp files left behind


# -- config errors (a tiny WLASL-format index: no need for the real one) --------------------


def tiny_wlasl(root: Path) -> Path:
    entries = [{"gloss": g, "instances": [
        {"video_id": f"{k:05d}", "url": "http://x/y.mp4", "bbox": [0, 0, 10, 10], "fps": 25, "frame_start": 1,
         "frame_end": -1, "instance_id": 0, "signer_id": 1, "source": "x", "split": "train", "variation_id": 0}]}
        for k, g in enumerate(["hello", "world"])]
    (root / "WLASL_v0.3.json").write_text(json.dumps(entries))
    (root / "videos").mkdir()
    return root / "WLASL_v0.3.json"


def test_config_errors_name_the_key(tmp_path, monkeypatch):
    index = tiny_wlasl(tmp_path)
    cfg = {"adapter": "wlasl", "index": str(index), "videos": str(tmp_path / "videos"), "num_shards": 2}
    known = "arrays, csv, folder, gislr, msasl, pose, pyskl, synthetic, wlasl"
    with pytest.raises(ValueError, match=rf"datasets.x.adapter: unknown adapter 'wlasi'; known: {known}"):
        build_manifest({**cfg, "adapter": "wlasi"}, name="x")
    with pytest.raises(FileNotFoundError, match=rf"datasets.wlasl100.index: {tmp_path}/nope.json does not exist"):
        build_manifest({**cfg, "index": str(tmp_path / "nope.json")}, name="wlasl100")
    with pytest.raises(ValueError, match=r"datasets.x.videos: required key is missing"):
        build_manifest({k: v for k, v in cfg.items() if k != "videos"}, name="x")
    with pytest.raises(ValueError, match=r"datasets.x.num_shards: must be a positive integer, got 0"):
        build_manifest({**cfg, "num_shards": 0}, name="x")
    with pytest.raises(FileNotFoundError, match=rf"datasets.x.subset: {tmp_path}/nslt_300.json does not exist"):
        build_manifest({**cfg, "subset": 300}, name="x")
    with pytest.raises(ValueError, match=r"datasets.x.trimmed: expected true or false"):
        build_manifest({**cfg, "trimmed": "yes"}, name="x")
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the working directory
    manifest, missing = build_manifest({**cfg, "index": "WLASL_v0.3.json", "videos": "videos"})
    assert list(missing["path"]) == [str(tmp_path / "videos" / "00000.mp4"), str(tmp_path / "videos" / "00001.mp4")]


def test_subset_with_other_class_order_is_refused(tmp_path):
    index = tiny_wlasl(tmp_path)
    (tmp_path / "nslt_2.json").write_text(json.dumps({"00000": {"subset": "val", "action": [1, 1, 20]}}))
    with pytest.raises(ValueError, match=r"datasets.x.subset: nslt_2.json gives 1 videos a class other"):
        build_manifest({"adapter": "wlasl", "index": str(index), "videos": str(tmp_path / "videos"),
                        "subset": 2, "num_shards": 2}, name="x")


# -- MS-ASL ---------------------------------------------------------------------------------


def msasl_sample(label: int, text: str, url: str, **extra) -> dict:
    sample = {"org_text": text, "clean_text": text, "text": text, "label": label, "signer_id": 7, "signer": 7,
              "url": url, "start_time": 1.0, "end_time": 2.5, "start": 30, "end": 75, "fps": 30.0,
              "width": 640.0, "height": 360.0, "box": [0.1, 0.25, 0.9, 0.75], "file": text}
    sample.update(extra)
    return {k: v for k, v in sample.items() if v is not None}


@pytest.fixture
def msasl_dir(tmp_path: Path) -> Path:
    url = "https://www.youtube.com/watch?v=abcdefghijk"
    files = {
        "train": [msasl_sample(0, "hello", url), msasl_sample(150, "again", url),
                  msasl_sample(3, "eat", url, start=None, end=None)],  # frames from times x fps
        "val": [msasl_sample(1, "world", "https://youtu.be/ABCDEFGHIJK")],
        "test": [msasl_sample(2, "nice", url, clean_text=None)],  # gloss from text
    }
    for split, samples in files.items():
        (tmp_path / f"MSASL_{split}.json").write_text(json.dumps(samples))
    for name in ("train_00000.mp4", "train_00002.mp4", "val_00000.mp4", "abcdefghijk.mp4"):
        touch(tmp_path / "videos" / name)
    return tmp_path


def test_msasl_clips(msasl_dir):
    cfg = {"adapter": "msasl", "index_dir": str(msasl_dir), "videos": str(msasl_dir / "videos"), "num_shards": 2}
    manifest, missing = build_manifest(cfg)
    assert list(manifest["video_id"]) == ["train_00000", "train_00002", "val_00000"]
    assert list(missing["video_id"]) == ["test_00000", "train_00001"]
    assert missing.set_index("video_id").loc["test_00000", "gloss"] == "nice"
    row = manifest.set_index("video_id").loc["train_00000"]
    assert (row["label"], row["gloss"], row["split"], row["signer"], row["frame_start"], row["frame_end"]) == \
        (0, "hello", "train", "7", 0, -1)
    assert [row[c] for c in ("bbox_x0", "bbox_y0", "bbox_x1", "bbox_y1")] == pytest.approx([160, 36, 480, 324])
    manifest, missing = build_manifest({**cfg, "subset": 100})
    assert "train_00001" not in set(manifest["video_id"]) | set(missing["video_id"])  # label 150 >= 100
    with pytest.raises(ValueError, match=r"datasets.msasl.subset: must be one of 100, 200, 500, 1000"):
        build_manifest({**cfg, "subset": 300})


def test_msasl_youtube_videos(msasl_dir):
    manifest, missing = build_manifest({"adapter": "msasl", "index_dir": str(msasl_dir),
                                        "videos": str(msasl_dir / "videos"), "trimmed": False, "num_shards": 2})
    rows = manifest.set_index("video_id")
    assert set(rows.index) == {"train_00000", "train_00001", "train_00002", "test_00000"}
    assert (rows["path"] == str(msasl_dir / "videos" / "abcdefghijk.mp4")).all()
    assert tuple(rows.loc["train_00000", ["frame_start", "frame_end"]]) == (30, 75)
    assert tuple(rows.loc["train_00002", ["frame_start", "frame_end"]]) == (30, 75)  # 1.0 s, 2.5 s at 30 fps
    assert missing.set_index("video_id").loc["val_00000", "path"] == str(msasl_dir / "videos" / "ABCDEFGHIJK.mp4")


# -- folder ---------------------------------------------------------------------------------

SLR_PATTERN = r"(?P<signer>P\d+)_s\d+_\d+_(?P<rep>\d+)_color"


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    for gloss in ("你好", "thank you"):
        for signer in ("P01", "P02", "P03"):
            touch(tmp_path / "root" / gloss / f"{signer}_s1_00_0_color.avi")
    touch(tmp_path / "root" / "thank you" / "P01_s1_00_1_color.mp4")
    touch(tmp_path / "root" / "thank you" / "notes.txt")
    return tmp_path / "root"


def test_folder(class_tree):
    cfg = {"adapter": "folder", "root": str(class_tree), "pattern": SLR_PATTERN, "num_shards": 3,
           "splits": {"train": ["P01"], "val": ["P02"], "test": ["P03"]}}
    manifest, missing = build_manifest(cfg, name="slr")
    assert len(manifest) == 7 and len(missing) == 0
    assert dict(zip(manifest["gloss"], manifest["label"])) == {"thank you": 0, "你好": 1}  # sorted class names
    row = manifest.set_index("video_id").loc["thank_you__P01_s1_00_1_color"]
    assert (row["signer"], row["split"], row["rep"], row["frame_end"]) == ("P01", "train", "1", -1)
    assert "/" not in "".join(manifest["video_id"])
    assert dict(Counter(manifest["split"])) == {"train": 3, "val": 2, "test": 2}


def test_folder_classes_and_signers(class_tree, tmp_path):
    cfg = {"adapter": "folder", "root": str(class_tree), "pattern": SLR_PATTERN, "num_shards": 3,
           "splits": {"train": ["P01"], "test": ["P03"]}}
    with pytest.raises(ValueError, match=r"datasets.slr.splits: signers 'P02' are in no split"):
        build_manifest(cfg, name="slr")
    (tmp_path / "classes.txt").write_text("你好\nthank you\nbye\n")
    manifest, _ = build_manifest({**cfg, "default_split": "val", "classes": str(tmp_path / "classes.txt")})
    assert dict(zip(manifest["gloss"], manifest["label"])) == {"你好": 0, "thank you": 1}
    assert set(manifest.loc[manifest["signer"] == "P02", "split"]) == {"val"}
    (tmp_path / "classes.txt").write_text("你好\n")
    with pytest.raises(ValueError, match=r"datasets.slr.classes: .* does not list the class folders 'thank you'"):
        build_manifest({**cfg, "default_split": "val", "classes": str(tmp_path / "classes.txt")}, name="slr")
    with pytest.raises(ValueError, match=r"datasets.slr.pattern: .* does not match 7 file names"):
        build_manifest({**cfg, "pattern": r"(?P<signer>S\d+)"}, name="slr")
    with pytest.raises(ValueError, match=r"datasets.slr.splits: signer 'P01' is in both train and test"):
        build_manifest({**cfg, "splits": {"train": ["P01"], "test": ["P01"]}}, name="slr")


# -- csv and synthetic ----------------------------------------------------------------------


def test_csv_relative_paths_defaults_and_missing(tmp_path, monkeypatch):
    touch(tmp_path / "data" / "clips" / "a.mp4")
    touch(tmp_path / "elsewhere" / "b.mp4")
    (tmp_path / "data" / "mine.csv").write_text(
        "video_id,path,label,split,gloss,take\n"
        "007,clips/a.mp4,2,train,hello,1\n"
        f"b,{tmp_path / 'elsewhere' / 'b.mp4'},0,test,,2\n"
        "c,clips/c.mp4,1,val,world,3\n")
    monkeypatch.chdir(tmp_path)
    manifest, missing = build_manifest({"adapter": "csv", "manifest": "data/mine.csv"}, name="mine")
    assert list(manifest["video_id"]) == ["007", "b"]
    assert list(manifest["shard"]) == [shard_of("007", DEFAULT_NUM_SHARDS), shard_of("b", DEFAULT_NUM_SHARDS)]
    assert list(manifest["path"]) == [str(tmp_path / "data" / "clips" / "a.mp4"), str(tmp_path / "elsewhere" / "b.mp4")]
    assert list(manifest["gloss"]) == ["hello", "0"] and list(manifest["signer"]) == ["", ""]
    assert list(manifest["frame_start"]) == [0, 0] and list(manifest["frame_end"]) == [-1, -1]
    assert list(manifest["take"]) == [1, 2]  # extras kept
    assert missing.to_dict("records") == [{"video_id": "c", "path": str(tmp_path / "data" / "clips" / "c.mp4"),
                                           "reason": "video file not found", "label": 1, "gloss": "world",
                                           "split": "val"}]


@pytest.mark.parametrize("rows, message", [
    ("a,a.mp4,1,dev", r"datasets.mine: split must be one of train, val, test; got 'dev'"),
    ("a,a.mp4,-1,train", r"datasets.mine: label must be >= 0; videos 'a'"),
    ("a,a.mp4,x,train", r"datasets.mine: label: not an integer: 'x'"),
    ("a,a.mp4,1,train\na,a.mp4,2,val", r"datasets.mine: video_id is not unique: 'a'"),
])
def test_csv_rejects_bad_rows(tmp_path, rows, message):
    touch(tmp_path / "a.mp4")
    (tmp_path / "mine.csv").write_text("video_id,path,label,split\n" + rows + "\n")
    with pytest.raises(ValueError, match=message):
        build_manifest({"adapter": "csv", "manifest": str(tmp_path / "mine.csv"), "num_shards": 2}, name="mine")


@pytest.mark.parametrize("video_id, problem", [
    ("../../x", r"contains '/'"),
    ("/tmp/x", r"contains '/'"),
    ("..", r"starts with '.'"),
    (".hidden", r"starts with '.'"),
    ("a\\b", r"contains '\\\\'"),
    ("a b", r"contains ' '"),
    ("", r"is empty"),
    ("x" * 201, r"is longer than 200 bytes"),
])
def test_csv_rejects_ids_that_are_no_file_names(tmp_path, video_id, problem):
    """Ids become file names (sheets/<video_id>.png): '../../x' would write outside results/."""
    touch(tmp_path / "a.mp4")
    (tmp_path / "mine.csv").write_text(f"video_id,path,label,split\nok_1,a.mp4,0,train\n{video_id},a.mp4,1,test\n")
    shown = re.escape(repr(video_id))
    with pytest.raises(ValueError, match=rf"datasets.mine.manifest: {tmp_path}/mine.csv: line 3: video_id {shown} "
                                         rf"{problem}\. Video ids become file names"):
        build_manifest({"adapter": "csv", "manifest": str(tmp_path / "mine.csv"), "num_shards": 2}, name="mine")


def test_csv_with_a_nul_byte_is_refused(tmp_path):
    """pandas would cut 'a<NUL>b' to 'a' without a word."""
    (tmp_path / "mine.csv").write_bytes(b"video_id,path,label,split\nok,a.mp4,0,train\na\x00b,a.mp4,1,test\n")
    with pytest.raises(ValueError, match=r"mine.csv: line 3 holds a NUL byte"):
        build_manifest({"adapter": "csv", "manifest": str(tmp_path / "mine.csv")}, name="mine")


def test_file_name_ids_are_accepted(tmp_path):
    ids = ["05237", "train_00042", "你好__P01_s1_00_0_color", "thank_you__sub__P01.take-2", "-x", "x" * 200]
    for video_id in ids:
        touch(tmp_path / f"{video_id}.mp4")
    (tmp_path / "mine.csv").write_text("video_id,path,label,split\n"
                                       + "".join(f"{v},{v}.mp4,0,train\n" for v in ids))
    manifest, _ = build_manifest({"adapter": "csv", "manifest": str(tmp_path / "mine.csv")}, name="mine")
    assert sorted(manifest["video_id"]) == sorted(ids)


def test_wlasl_index_with_unsafe_ids_names_the_instance(tmp_path):
    index = tiny_wlasl(tmp_path)
    entries = json.loads(index.read_text())
    entries[1]["instances"] += [{**entries[1]["instances"][0], "video_id": v} for v in ("../../etc/x", "a\0b")]
    index.write_text(json.dumps(entries))
    cfg = {"adapter": "wlasl", "index": str(index), "videos": str(tmp_path / "videos"), "num_shards": 2}
    with pytest.raises(ValueError, match=rf"datasets.w.index: {index}: gloss 'world' instance 1: "
                                         r"video_id '../../etc/x' contains '/'; gloss 'world' instance 2: "
                                         r"video_id 'a\\x00b' contains '\\x00'"):
        build_manifest(cfg, name="w")
    (tmp_path / "nslt_2.json").write_text(json.dumps({"/tmp/x": {"subset": "val", "action": [1, 1, 20]}}))
    del entries[1]["instances"][1:]
    index.write_text(json.dumps(entries))
    with pytest.raises(ValueError, match=r"datasets.w.subset: .*nslt_2.json: entry 1: video_id '/tmp/x' contains '/'"):
        build_manifest({**cfg, "subset": 2}, name="w")


def test_folder_classes_file_must_name_folders(class_tree, tmp_path):
    (tmp_path / "classes.txt").write_text("你好\nthank you\n../root/你好\n")
    cfg = {"adapter": "folder", "root": str(class_tree), "pattern": SLR_PATTERN, "default_split": "train",
           "splits": {}, "classes": str(tmp_path / "classes.txt")}
    with pytest.raises(ValueError, match=r"datasets.slr.classes: .*classes.txt lists '../root/你好', which are not "
                                         r"folder names"):
        build_manifest(cfg, name="slr")


def test_adapter_rows_with_unsafe_ids_name_the_video(tmp_path):
    """The last check before any manifest is written, whatever the adapter: ids from file names too."""
    touch(tmp_path / "root" / ".hidden" / "P01_s1_00_0_color.mp4")
    (tmp_path / "classes.txt").write_text(".hidden\n")
    cfg = {"adapter": "folder", "root": str(tmp_path / "root"), "pattern": SLR_PATTERN, "default_split": "train",
           "splits": {}, "classes": str(tmp_path / "classes.txt")}
    with pytest.raises(ValueError, match=r"datasets.slr: video .*/.hidden/P01_s1_00_0_color.mp4: video_id "
                                         r"'.hidden__P01_s1_00_0_color' starts with '.'"):
        build_manifest(cfg, name="slr")


def test_synthetic(tmp_path):
    corpus = tmp_path / "corpus"
    rows = []
    for k in range(3):
        touch(corpus / "videos" / f"s{k}.mp4")
        touch(corpus / "keypoints" / f"s{k}.npz")
        rows.append(f"s{k},videos/s{k}.mp4,keypoints/s{k}.npz,{k},g{k},train,{k % 2},0,-1,{k}")
    (corpus / "videos" / "s2.mp4").unlink()
    (corpus / "corpus.csv").write_text(
        "video_id,path,keypoints,label,gloss,split,signer,frame_start,frame_end,repeat\n" + "\n".join(rows) + "\n")
    cfg = {"adapter": "synthetic", "num_classes": 3, "num_shards": 2}
    manifest, missing = build_manifest(cfg, corpus_dir=corpus, name="demo")
    assert list(manifest["video_id"]) == ["s0", "s1"] and list(missing["video_id"]) == ["s2"]
    assert list(manifest["keypoints"]) == [str(corpus / "keypoints" / f"s{k}.npz") for k in range(2)]
    assert list(manifest["signer"]) == ["0", "1"] and list(manifest["repeat"]) == [0, 1]
    assert list(manifest.columns) == MANIFEST_COLUMNS + ["keypoints", "repeat"]
    with pytest.raises(ValueError, match=r"datasets.demo: the synthetic adapter needs corpus_dir"):
        build_manifest(cfg, name="demo")


# -- what the manifest lists: the rerun trigger of the manifest and of each shard ------------


def test_listing_follows_added_recovered_and_replaced_videos(class_tree, tmp_path):
    folder = {"adapter": "folder", "root": str(class_tree), "pattern": SLR_PATTERN, "num_shards": 4,
              "splits": {"train": ["P01"], "val": ["P02"], "test": ["P03"]}}
    before = manifest_listing(folder, name="slr")
    assert manifest_listing(folder, name="slr") == before and len(before.shards) == 4
    assert before.manifest.startswith("7 videos, 0 missing, sha1 ")

    touch(class_tree / "你好" / "P02_s1_00_1_color.avi")  # added to a class: its shard only
    after = manifest_listing(folder, name="slr")
    changed = [k for k in range(4) if after.shards[k] != before.shards[k]]
    assert after.manifest != before.manifest and changed == [shard_of("你好__P02_s1_00_1_color", 4)]

    video = class_tree / "thank you" / "P03_s1_00_0_color.avi"
    video.write_bytes(b"a good video now")  # a failed video replaced: same name, other size and mtime
    replaced = manifest_listing(folder, name="slr")
    changed = [k for k in range(4) if replaced.shards[k] != after.shards[k]]
    assert changed == [shard_of("thank_you__P03_s1_00_0_color", 4)]

    (tmp_path / "mine.csv").write_text("video_id,path,label,split\na,a.mp4,0,train\nb,b.mp4,1,test\n")
    listed = {"adapter": "csv", "manifest": str(tmp_path / "mine.csv"), "num_shards": 4}
    touch(tmp_path / "a.mp4")
    before = manifest_listing(listed)
    assert before.manifest.startswith("1 videos, 1 missing")
    touch(tmp_path / "b.mp4")  # a listed video that appears later
    after = manifest_listing(listed)
    assert [k for k in range(4) if after.shards[k] != before.shards[k]] == [shard_of("b", 4)]
    assert after.manifest.startswith("2 videos, 0 missing")


def test_listing_of_a_broken_config_is_its_error(tmp_path):
    """The DAG is still built; the manifest job reports the error in its log."""
    listing = manifest_listing({"adapter": "csv", "manifest": str(tmp_path / "nope.csv"), "num_shards": 2}, name="x")
    assert listing.manifest == f"error: datasets.x.manifest: {tmp_path}/nope.csv does not exist"
    assert listing.shards == (listing.manifest,) * 2


def test_shard_manifest_holds_its_shard_only(class_tree, tmp_path):
    cfg = {"adapter": "folder", "root": str(class_tree), "pattern": SLR_PATTERN, "num_shards": 4,
           "splits": {"train": ["P01"], "val": ["P02"], "test": ["P03"]}}
    whole, _ = build_manifest(cfg)
    for shard in range(4):
        written = write_shard_manifest(cfg, shard, tmp_path / f"{shard}.csv")
        back = read_manifest(tmp_path / f"{shard}.csv")
        assert list(back.columns) == list(whole.columns) and (back["shard"] == shard).all()
        expected = list(whole.loc[whole["shard"] == shard, "video_id"])
        assert list(back["video_id"]) == list(written["video_id"]) == expected


# -- val_from_train ---------------------------------------------------------------------------


def corpus_without_val(root: Path, signers: bool) -> dict:
    """A csv corpus of 5 classes x 8 train videos (8 signers, one video each per class when known) and a test split."""
    lines = ["video_id,path,label,split,signer"]
    for label in range(5):
        for k in range(8):
            touch(root / f"c{label}_{k}.mp4")
            lines.append(f"c{label}_{k},c{label}_{k}.mp4,{label},train,{f'P{k}' if signers else ''}")
        touch(root / f"t{label}.mp4")
        lines.append(f"t{label},t{label}.mp4,{label},test,{'P9' if signers else ''}")
    (root / "index.csv").write_text("\n".join(lines) + "\n")
    return {"adapter": "csv", "manifest": str(root / "index.csv"), "val_from_train": 0.1}


def test_val_from_train_moves_whole_signers_deterministically(tmp_path):
    cfg = corpus_without_val(tmp_path, signers=True)
    manifest, _ = build_manifest(cfg, name="nmfs")
    again, _ = build_manifest(cfg, name="nmfs")
    pd.testing.assert_frame_equal(manifest, again)                                    # seeded: the same split
    val, train = manifest[manifest["split"] == "val"], manifest[manifest["split"] == "train"]
    assert len(val) == 5 and len(train) == 35                                         # one signer of 8: 5 of 40
    assert not set(val["signer"]) & set(train["signer"])                               # signer-disjoint
    assert set(val["video_id"]).isdisjoint(train["video_id"])
    assert (manifest["split"] == "test").sum() == 5                                   # test untouched
    plain, _ = build_manifest({**cfg, "val_from_train": 0}, name="nmfs")
    assert set(plain["split"]) == {"train", "test"}


def test_val_from_train_without_signers_is_stratified_by_class(tmp_path):
    cfg = corpus_without_val(tmp_path, signers=False)
    manifest, _ = build_manifest({**cfg, "val_from_train": 0.25}, name="slr")
    val = manifest[manifest["split"] == "val"]
    assert val["label"].value_counts().to_dict() == {label: 2 for label in range(5)}  # 0.25 of each class's 8
    again, _ = build_manifest({**cfg, "val_from_train": 0.25}, name="slr")
    assert list(again.loc[again["split"] == "val", "video_id"]) == list(val["video_id"])
    with pytest.raises(ValueError, match=r"datasets.slr.val_from_train: a share of the train videos in \(0, 1\)"):
        build_manifest({**cfg, "val_from_train": 1.5}, name="slr")


def test_val_from_train_refuses_a_corpus_with_a_val_split(tmp_path):
    cfg = corpus_without_val(tmp_path, signers=True)
    text = (tmp_path / "index.csv").read_text().replace("c0_0.mp4,0,train", "c0_0.mp4,0,val")
    (tmp_path / "index.csv").write_text(text)
    with pytest.raises(ValueError, match="datasets.x.val_from_train: the corpus has 1 val videos already"):
        build_manifest(cfg, name="x")
