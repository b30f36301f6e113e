"""Keypoint file readers (signpipe.keypoints.sources): real GISLR parquet and .pose files, generated
arrays and pyskl pickles, and every bad input yielding its reason while the other sequences come out."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pose_format import Pose
from pose_format.numpy import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions
from pose_format.utils.openpose_135 import BODY_135_POINTS

from signpipe.keypoints import PARTS
from signpipe.keypoints.mediapipe_map import FACE_MESH_68
from signpipe.keypoints.openpose_map import openpose_to_wholebody
from signpipe.keypoints.sources import FORMATS, KeypointSequence, load_pyskl, read_sequences
from signpipe.keypoints.sources.arrays import HOLISTIC_543

WIDTH, HEIGHT = 640, 480
LEFT_WRIST, RIGHT_WRIST, NOSE = 91, 112, 0


def read_all(fmt, rows, cfg):
    return dict(read_sequences(fmt, rows, cfg))


# --- gislr -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def gislr_files(shared_data) -> list[Path]:
    files = sorted((shared_data / "gislr" / "train_landmark_files").glob("*/*.parquet"))
    if not files:
        pytest.skip(f"no GISLR parquet files under {shared_data / 'gislr'}")
    return files


def test_gislr_real_files_match_the_parquet_rows(gislr_files):
    rows = [{"video_id": f.stem, "path": str(f)} for f in gislr_files]
    out = list(read_sequences("gislr", rows, {"width": WIDTH, "height": HEIGHT}))
    assert [vid for vid, _ in out] == [r["video_id"] for r in rows]
    hands_seen = 0
    for (vid, seq), path in zip(out, gislr_files):
        assert isinstance(seq, KeypointSequence), seq
        table = pd.read_parquet(path)
        frames = np.sort(table["frame"].unique())
        assert seq.xy.shape == (len(frames), 133, 2) and seq.score.shape == (len(frames), 133)
        assert seq.xy.dtype == seq.score.dtype == np.float32 and seq.fps is None
        t = np.searchsorted(frames, table["frame"].to_numpy())
        for kind, source, target in [("right_hand", 0, RIGHT_WRIST), ("left_hand", 8, LEFT_WRIST + 8),
                                     ("pose", 0, NOSE), ("face", FACE_MESH_68[8], PARTS["face"].start + 8)]:
            rows_of = (table["type"] == kind) & (table["landmark_index"] == source)
            x, y = table.loc[rows_of, "x"].to_numpy(), table.loc[rows_of, "y"].to_numpy()
            found = ~np.isnan(x)
            np.testing.assert_array_equal(seq.score[t[rows_of], target], found.astype(np.float32))
            np.testing.assert_allclose(seq.xy[t[rows_of], target], np.where(found[:, None],
                                       np.stack([x * WIDTH, y * HEIGHT], -1), 0), rtol=1e-5)
        hands = seq.score[:, 91:] > 0
        hands_seen += hands.sum()
        inside = seq.xy[:, 91:][hands]
        assert ((inside >= 0) & (inside <= [WIDTH, HEIGHT])).mean() > 0.95
    assert hands_seen > 0
    assert seq.score[:, [18, 21]].max() == 0  # the small toes have no MediaPipe counterpart


def test_gislr_bad_files_yield_reasons_and_the_rest_comes_out(gislr_files, tmp_path):
    good = pq.read_table(gislr_files[0])
    pq.write_table(good.drop_columns(["type"]), tmp_path / "nocolumn.parquet")
    pq.write_table(good.slice(0, 0), tmp_path / "empty.parquet")
    index = good.column("landmark_index").to_numpy().copy()
    index[0] = 500
    pq.write_table(good.set_column(good.schema.get_field_index("landmark_index"), "landmark_index",
                                   pa.array(index, pa.int16())), tmp_path / "range.parquet")
    (tmp_path / "garbage.parquet").write_bytes(b"not parquet")
    names = ["nocolumn", "empty", "range", "garbage", "missing"]
    rows = [{"video_id": "first", "path": str(gislr_files[0])}]
    rows += [{"video_id": n, "path": str(tmp_path / f"{n}.parquet")} for n in names]
    rows += [{"video_id": "last", "path": str(gislr_files[1])}]
    out = read_all("gislr", rows, {"width": WIDTH, "height": HEIGHT})
    assert list(out) == ["first", *names, "last"]
    assert isinstance(out["first"], KeypointSequence) and isinstance(out["last"], KeypointSequence)
    for name, reason in [("nocolumn", "missing column(s) type"), ("empty", "empty sequence"),
                         ("range", "landmark_index 500 out of range for type face"),
                         ("garbage", ""), ("missing", "cannot read")]:
        assert isinstance(out[name], ValueError), name
        assert f"{name}.parquet" in str(out[name]) and reason in str(out[name])


def test_gislr_streams_one_file_at_a_time(gislr_files, tmp_path):
    paths = [tmp_path / f"{i}.parquet" for i in range(2)]
    for source, path in zip(gislr_files, paths):
        path.write_bytes(source.read_bytes())
    sequences = read_sequences("gislr", [{"video_id": p.stem, "path": str(p)} for p in paths],
                               {"width": WIDTH, "height": HEIGHT})
    assert isinstance(next(sequences)[1], KeypointSequence)
    paths[1].unlink()  # not opened yet: the reader reaches it only now
    video_id, error = next(sequences)
    assert video_id == "1" and "cannot read" in str(error)


def test_gislr_needs_the_nominal_frame(gislr_files):
    with pytest.raises(ValueError, match="width and height"):
        read_sequences("gislr", [{"video_id": "a", "path": str(gislr_files[0])}], {})


# --- arrays ------------------------------------------------------------------------------------

def test_holistic_543_arrays_read_like_the_gislr_parquet(gislr_files, tmp_path):
    table = pd.read_parquet(gislr_files[2])
    frames = np.sort(table["frame"].unique())
    offsets = dict(zip(HOLISTIC_543, np.cumsum([0, *HOLISTIC_543.values()])))
    array = np.full((len(frames), 543, 3), np.nan, np.float32)
    column = table["type"].map(offsets).to_numpy() + table["landmark_index"].to_numpy()
    array[np.searchsorted(frames, table["frame"]), column] = table[["x", "y", "z"]].to_numpy()
    np.save(tmp_path / "a.npy", array)
    cfg = {"width": WIDTH, "height": HEIGHT}
    from_array = read_all("arrays", [{"video_id": "a", "path": str(tmp_path / "a.npy")}],
                          {**cfg, "layout": "mediapipe-holistic-543"})["a"]
    from_parquet = read_all("gislr", [{"video_id": "a", "path": str(gislr_files[2])}], cfg)["a"]
    np.testing.assert_allclose(from_array.xy, from_parquet.xy, rtol=1e-6)
    np.testing.assert_array_equal(from_array.score, from_parquet.score)


def test_hands_126_flat_and_per_point_agree_and_zeros_are_missing(tmp_path):
    rng = np.random.default_rng(0)
    hands = rng.uniform(0.1, 0.9, (6, 42, 3)).astype(np.float32)
    hands[2, :21] = 0.0  # left hand not found, written as zeros
    np.save(tmp_path / "flat.npy", hands.reshape(6, 126))
    np.savez(tmp_path / "points.npz", keypoints=hands, fps=np.float64(30))
    cfg = {"layout": "mediapipe-hands-126", "width": WIDTH, "height": HEIGHT}
    out = read_all("arrays", [{"video_id": n, "path": str(tmp_path / n)} for n in ("flat.npy", "points.npz")], cfg)
    flat, points = out["flat.npy"], out["points.npz"]
    np.testing.assert_array_equal(flat.xy, points.xy)
    assert flat.fps is None and points.fps == 30.0
    np.testing.assert_allclose(flat.xy[:, 112 + 5], hands[:, 21 + 5, :2] * [WIDTH, HEIGHT], rtol=1e-6)
    assert flat.score[2, 91:112].max() == 0 and flat.score[3, 91:112].min() == 1
    assert flat.score[:, :91].max() == 0


def test_coco_and_openpose_arrays_in_pixels(tmp_path):
    rng = np.random.default_rng(1)
    coco = np.concatenate([rng.uniform(0, 500, (4, 133, 2)), rng.uniform(0, 1, (4, 133, 1))], -1)
    coco[1, 7, 2] = 0.0
    coco[2, 9, 0] = np.nan
    np.save(tmp_path / "coco.npy", coco)
    people = rng.uniform(1, 500, (4, 137, 3)).astype(np.float32)
    people[..., 2] = rng.uniform(0.1, 1, (4, 137))
    np.save(tmp_path / "op.npy", people)
    out = read_all("arrays", [{"video_id": "c", "path": str(tmp_path / "coco.npy")}],
                   {"layout": "coco-wholebody-133"})["c"]
    np.testing.assert_allclose(out.xy[0], coco[0, :, :2], rtol=1e-6)
    assert out.score[1, 7] == 0 and out.xy[1, 7].tolist() == [0, 0]
    assert out.score[2, 9] == 0 and out.xy[2, 9].tolist() == [0, 0]
    got = read_all("arrays", [{"video_id": "o", "path": str(tmp_path / "op.npy")}], {"layout": "openpose-137"})["o"]
    for t in range(4):  # the same frame as OpenPose's JSON arrays, through the per-frame map
        body, left, right, face = np.split(people[t], [25, 46, 67])
        xy, score = openpose_to_wholebody({"pose_keypoints_2d": body.ravel().tolist(),
                                           "hand_left_keypoints_2d": left.ravel().tolist(),
                                           "hand_right_keypoints_2d": right.ravel().tolist(),
                                           "face_keypoints_2d": face.ravel().tolist()})
        np.testing.assert_array_equal(got.xy[t], xy)
        np.testing.assert_array_equal(got.score[t], score)


def test_arrays_shape_mismatch_names_expected_and_got_and_the_rest_comes_out(tmp_path):
    np.save(tmp_path / "good.npy", np.ones((3, 543, 3), np.float32) * 0.5)
    np.save(tmp_path / "wrong.npy", np.ones((3, 133, 3), np.float32))
    np.save(tmp_path / "empty.npy", np.ones((0, 543, 3), np.float32))
    np.savez(tmp_path / "two.npz", a=np.ones((3, 543, 3)), b=np.ones(2))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    names = ["wrong", "good", "empty", "two", "objects"]
    rows = [{"video_id": n, "path": str(tmp_path / f"{n}.{'npz' if n == 'two' else 'npy'}")} for n in names]
    out = read_all("arrays", rows, {"layout": "mediapipe-holistic-543", "width": 10, "height": 10})
    assert isinstance(out["good"], KeypointSequence) and out["good"].xy.shape == (3, 133, 2)
    assert "expected shape (T, 543, 2) or (T, 543, 3)" in str(out["wrong"]) and "got (3, 133, 3)" in str(out["wrong"])
    assert "wrong.npy" in str(out["wrong"])
    assert "empty sequence" in str(out["empty"]) and "no array" in str(out["two"])
    assert isinstance(out["objects"], ValueError)
    with pytest.raises(ValueError, match="layout must be one of"):
        read_sequences("arrays", rows, {"layout": "mediapipe-543"})


# --- pose --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pose_dir(shared_data) -> Path:
    folder = shared_data / "pose"
    if not (folder / "mediapipe.pose").is_file():
        pytest.skip(f"no .pose files in {folder}")
    return folder


def _component(pose: Pose, name: str) -> tuple[np.ma.MaskedArray, np.ndarray, list[str]]:
    start = 0
    for component in pose.header.components:
        if component.name == name:
            stop = start + len(component.points)
            return pose.body.data[:, 0, start:stop], pose.body.confidence[:, 0, start:stop], component.points
        start += len(component.points)
    raise KeyError(name)


@pytest.mark.parametrize("name", ["mediapipe", "hand_estimation_6fb01565"])
def test_real_pose_files_map_by_point_names(pose_dir, name):
    path = pose_dir / f"{name}.pose"
    pose = Pose.read(path.read_bytes())
    seq = read_all("pose", [{"video_id": name, "path": str(path)}], {})[name]
    width, height = pose.header.dimensions.width, pose.header.dimensions.height
    assert seq.xy.shape == (len(pose.body.data), 133, 2) and seq.fps == pytest.approx(pose.body.fps)
    assert seq.size == (width, height)
    for component, point, target in [("RIGHT_HAND_LANDMARKS", "WRIST", RIGHT_WRIST),
                                     ("RIGHT_HAND_LANDMARKS", "PINKY_TIP", 132),
                                     ("LEFT_HAND_LANDMARKS", "INDEX_FINGER_TIP", LEFT_WRIST + 8),
                                     ("POSE_LANDMARKS", "LEFT_WRIST", 9),
                                     ("FACE_LANDMARKS", "152", PARTS["face"].start + 8)]:
        data, confidence, points = _component(pose, component)
        i = points.index(point)
        found = ~np.ma.getmaskarray(data[:, i, 0]) & (confidence[:, i] > 0)
        assert (seq.score[:, target] > 0).tolist() == found.tolist(), (component, point)
        np.testing.assert_allclose(seq.xy[found, target], np.ma.getdata(data[found, i, :2]), rtol=1e-6)
        assert (seq.xy[~found, target] == 0).all()
    hands = seq.xy[:, 91:][seq.score[:, 91:] > 0]  # MediaPipe places a hand cut by the frame's edge a little outside
    margin = 0.1 * np.array([width, height])
    assert len(hands) and ((hands >= -margin) & (hands <= [width, height] + margin)).all()


def test_pose_world_landmarks_are_ignored(pose_dir):
    path = pose_dir / "hand_estimation_6fb01565.pose"
    pose = Pose.read(path.read_bytes())
    seq = read_all("pose", [{"video_id": "h", "path": str(path)}], {})["h"]
    image, _, _ = _component(pose, "POSE_LANDMARKS")
    world, _, _ = _component(pose, "POSE_WORLD_LANDMARKS")
    np.testing.assert_allclose(seq.xy[:, NOSE], image[:, 0, :2], rtol=1e-6)
    assert not np.allclose(seq.xy[:, NOSE], world[:, 0, :2])


def _write_pose(path: Path, components: list[PoseHeaderComponent], data: np.ndarray,
                size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    header = PoseHeader(0.2, PoseHeaderDimensions(*size), components)
    body = NumPyPoseBody(25.0, np.ma.masked_invalid(data[:, None, :, :2]), np.ones(data.shape[:2], np.float32)[:, None])
    with open(path, "wb") as f:
        Pose(header, body).write(f)
    return path


def _component_of(name: str, points: list[str]) -> PoseHeaderComponent:
    return PoseHeaderComponent(name, points, [], [(255, 0, 0)], "XYC")


def test_openpose_body_135_by_point_names(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.uniform(10, 400, (3, len(BODY_135_POINTS), 2)).astype(np.float32)
    path = _write_pose(tmp_path / "op.pose", [_component_of("BODY_135", BODY_135_POINTS)], data)
    seq = read_all("pose", [{"video_id": "op", "path": str(path)}], {})["op"]
    at = {name: i for i, name in enumerate(BODY_135_POINTS)}
    for name, targets in [("LWrist", (9, LEFT_WRIST)), ("RBigToe", (20,)), ("LThumb4FingerTip", (LEFT_WRIST + 4,)),
                          ("RPinky1Knuckles", (RIGHT_WRIST + 17,)), ("FaceContour8", (23 + 8,)),
                          ("LEyeBrow4", (23 + 22,)), ("REyeBrow0", (23 + 17,)), ("IMouth7", (23 + 67,))]:
        for target in targets:
            np.testing.assert_allclose(seq.xy[:, target], data[:, at[name]], rtol=1e-6, err_msg=name)
    assert (seq.score > 0).all()


def test_unknown_components_and_damaged_files_yield_reasons(pose_dir, tmp_path):
    unknown = _write_pose(tmp_path / "unknown.pose", [_component_of("FOO", ["a", "b"])], np.ones((2, 2, 2)))
    (tmp_path / "damaged.pose").write_bytes((pose_dir / "mediapipe.pose").read_bytes()[:300])
    rows = [{"video_id": "unknown", "path": str(unknown)}, {"video_id": "damaged", "path": str(tmp_path / "damaged.pose")},
            {"video_id": "real", "path": str(pose_dir / "mediapipe.pose")}]
    out = read_all("pose", rows, {})
    assert "unknown components FOO" in str(out["unknown"]) and "unknown.pose" in str(out["unknown"])
    assert "damaged.pose" in str(out["damaged"])
    assert isinstance(out["real"], KeypointSequence)


def test_normalised_pose_coordinates_become_pixels(tmp_path):
    points = [f"face-{i}" for i in range(68)]
    data = np.full((2, 68, 2), 0.5, np.float32)
    with_size = _write_pose(tmp_path / "a.pose", [_component_of("FACE", points)], data)
    without = _write_pose(tmp_path / "b.pose", [_component_of("FACE_133", points)], data, size=(1, 1))
    out = read_all("pose", [{"video_id": "a", "path": str(with_size)}, {"video_id": "b", "path": str(without)}],
                   {"width": 100, "height": 50})
    assert out["a"].xy[0, 23].tolist() == [WIDTH / 2, HEIGHT / 2] and out["a"].size == (WIDTH, HEIGHT)
    assert out["b"].xy[0, 23].tolist() == [50, 25] and out["b"].size is None


# --- pyskl -------------------------------------------------------------------------------------

def _annotation(frame_dir: str, frames: int, people: int = 2, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"frame_dir": frame_dir, "label": seed, "img_shape": (360, 640), "total_frames": frames,
            "keypoint": rng.uniform(0, 300, (people, frames, 133, 2)).astype(np.float32),
            "keypoint_score": rng.uniform(0, 1, (people, frames, 133)).astype(np.float32)}


def test_pyskl_is_refused_without_trust_pickle(tmp_path):
    path = tmp_path / "x.pkl"
    path.write_bytes(pickle.dumps({"split": {}, "annotations": []}))
    for call in (lambda: load_pyskl(path, False), lambda: read_sequences("pyskl", [{"video_id": "a", "path": str(path)}], {})):
        with pytest.raises(ValueError, match="trust_pickle") as err:
            call()
        assert "runs code" in str(err.value)
    assert load_pyskl(path, True) == {"split": {}, "annotations": []}


def test_pyskl_first_person_and_bad_annotations(tmp_path):
    bad = _annotation("bad", 5, seed=2)
    bad["keypoint_score"] = bad["keypoint_score"][:, :4]
    annotations = [_annotation("a", 7, seed=0), bad, _annotation("c", 3, people=1, seed=3)]
    annotations[0]["keypoint_score"][0, 1, 5] = 0.0
    path = tmp_path / "skeleton.pkl"
    path.write_bytes(pickle.dumps({"split": {"train": ["a", "bad"], "test": ["c"]}, "annotations": annotations}))
    rows = [{"video_id": v, "path": str(path)} for v in ("a", "bad", "gone", "c")]
    out = read_all("pyskl", rows, {"trust_pickle": True})
    a = out["a"]
    np.testing.assert_array_equal(a.score[0], annotations[0]["keypoint_score"][0, 0])
    np.testing.assert_array_equal(a.xy[2], annotations[0]["keypoint"][0, 2])
    assert a.score[1, 5] == 0 and a.xy[1, 5].tolist() == [0, 0] and a.size == (640, 360) and a.fps is None
    assert "disagree" in str(out["bad"]) and "frame_dir bad" in str(out["bad"])
    assert "no annotation with frame_dir 'gone'" in str(out["gone"])
    assert out["c"].xy.shape == (3, 133, 2)


def test_formats_and_unknown_format():
    assert FORMATS == ("gislr", "pose", "arrays", "pyskl")
    with pytest.raises(ValueError, match="unknown keypoint format"):
        read_sequences("csv", [], {})



# --- one damaged file never costs the shard (issue #25, item 6) --------------------------------

def _gislr_damaged(good: pa.Table, folder: Path) -> dict[str, str]:
    """Damaged copies of a real parquet, as found in the wild -> the reason each must give."""
    frame = good.column("frame").to_numpy().astype(np.float64)
    field = good.schema.get_field_index("frame")
    nan_frame = frame.copy()
    nan_frame[5] = np.nan
    pq.write_table(good.set_column(field, "frame", pa.array(nan_frame)), folder / "nanframe.parquet")
    huge = good.column("frame").to_numpy().astype(np.int64)
    huge[-1] = 2 ** 31  # one frame number written as garbage: 13 TiB to allocate
    pq.write_table(good.set_column(field, "frame", pa.array(huge)), folder / "hugeframe.parquet")
    gap = good.column("frame").to_numpy().astype(np.int64)
    gap[gap == gap.max()] += 10 ** 6
    pq.write_table(good.set_column(field, "frame", pa.array(gap)), folder / "gap.parquet")
    codes = {"face": 0, "left_hand": 1, "pose": 2, "right_hand": 3}
    kind = pa.array([codes[k] for k in good.column("type").to_pylist()], pa.int8())
    pq.write_table(good.set_column(good.schema.get_field_index("type"), "type", kind), folder / "inttype.parquet")
    x = pa.array([str(v) for v in good.column("x").to_pylist()])
    pq.write_table(good.set_column(good.schema.get_field_index("x"), "x", x), folder / "textx.parquet")
    return {"nanframe": "missing or fractional frame number", "hugeframe": "frame numbers jump from",
            "gap": "frame numbers jump from", "inttype": "column type must hold the strings",
            "textx": "column x must hold numbers, got string"}


def test_damaged_keypoint_files_each_give_one_reason_and_the_rest_is_read(gislr_files, tmp_path):
    good = pq.read_table(gislr_files[0])
    reasons = _gislr_damaged(good, tmp_path)
    rows = [{"video_id": n, "path": str(tmp_path / f"{n}.parquet")} for n in reasons]
    rows.append({"video_id": "last", "path": str(gislr_files[1])})
    out = read_all("gislr", rows, {"width": WIDTH, "height": HEIGHT})
    assert isinstance(out.pop("last"), KeypointSequence)
    for name, error in out.items():
        assert isinstance(error, ValueError), name
        text = str(error)
        assert f"{name}.parquet" in text and reasons[name] in text and len(text) <= 300 and "\n" not in text, text

    points = np.full((4, 543, 3), 0.5, np.float32)
    (tmp_path / "zero.npy").write_bytes(b"")
    np.savez(tmp_path / "whole.npz", keypoints=points)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "whole.npz").read_bytes()[:300])
    np.savez(tmp_path / "twofps.npz", keypoints=points, fps=np.array([25, 30]))
    names = {"zero": ("npy", "EOFError"), "cut": ("npz", "BadZipFile"), "twofps": ("npz", "fps must be one"),
             "whole": ("npz", None)}
    rows = [{"video_id": n, "path": str(tmp_path / f"{n}.{ext}")} for n, (ext, _) in names.items()]
    out = read_all("arrays", rows, {"layout": "mediapipe-holistic-543", "width": 10, "height": 10})
    assert isinstance(out.pop("whole"), KeypointSequence)
    for name, error in out.items():
        assert isinstance(error, ValueError) and f"{name}.np" in str(error) and names[name][1] in str(error), error

    annotation = _annotation("a", 3)
    for name, data, reason in [("nosplit", {"annotations": [annotation]}, "expected a 'split' dict"),
                               ("texts", {"split": {"train": ["a"]}, "annotations": ["a"]}, "annotation 0 is not a dict"),
                               ("nolabel", {"split": {}, "annotations": [{**annotation, "keypoint": "oops"}]}, "")]:
        (tmp_path / f"{name}.pkl").write_bytes(pickle.dumps(data))
        out = read_all("pyskl", [{"video_id": "a", "path": str(tmp_path / f"{name}.pkl")}], {"trust_pickle": True})
        assert isinstance(out["a"], ValueError) and f"{name}.pkl" in str(out["a"]) and reason in str(out["a"])
        if name != "nolabel":
            with pytest.raises(ValueError, match=reason):  # listing the corpus: one line naming the pickle
                load_pyskl(tmp_path / f"{name}.pkl", True)


def test_a_damaged_parquet_is_a_failures_row_and_the_shard_is_written(gislr_files, tmp_path):
    from signpipe.pose.importer import import_shard

    reasons = _gislr_damaged(pq.read_table(gislr_files[0]), tmp_path)
    rows = [{"video_id": "first", "path": str(gislr_files[0])}]
    rows += [{"video_id": n, "path": str(tmp_path / f"{n}.parquet")} for n in reasons]
    manifest = pd.DataFrame(rows).assign(label=0, gloss="x", split="train", signer="", frame_start=0, frame_end=-1,
                                         shard=0)
    manifest.to_csv(tmp_path / "0.csv", index=False)
    quality = import_shard(tmp_path / "0.csv", tmp_path / "kp.h5", tmp_path / "q.csv", tmp_path / "f.csv",
                           {"adapter": "gislr", "width": WIDTH, "height": HEIGHT}, progress=False)
    assert quality["video_id"].tolist() == ["first"]
    failures = pd.read_csv(tmp_path / "f.csv")
    assert failures["video_id"].tolist() == list(reasons)
    assert all(reasons[v] in r for v, r in zip(failures["video_id"], failures["reason"]))


def test_a_reason_is_one_line_of_at_most_300_characters():
    from signpipe.keypoints.sources.sequence import file_error

    error = file_error(Path("a.parquet"), TypeError("could not convert\n" + "0.5" * 5000))
    assert str(error).startswith("a.parquet: TypeError: could not convert 0.5") and len(str(error)) == 300
    assert "\n" not in str(error) and str(error).endswith("...")


# --- hand slots in detection order (issue #25, item 12) -----------------------------------------

def _hands_126(sequence: KeypointSequence, detection_order: bool) -> np.ndarray:
    """(T, 126) MediaPipe-Hands array (normalised x, y, z; zeros where missing) of a real sequence's hands;
    ``detection_order`` packs the detected hands into the first slots, as MediaPipe Hands returns them."""
    hands = np.zeros((len(sequence.xy), 2, 21, 3), np.float32)
    for slot, part in enumerate(("left_hand", "right_hand")):
        found = sequence.score[:, PARTS[part]] > 0
        hands[:, slot, :, :2] = np.where(found[..., None], sequence.xy[:, PARTS[part]] / [WIDTH, HEIGHT], 0)
    if detection_order:
        present = (hands != 0).any(axis=(2, 3))
        hands = np.stack([np.concatenate([frame[p], frame[~p]]) for frame, p in zip(hands, present)])
    return hands.reshape(len(hands), 126)


def test_hands_in_detection_order_are_put_on_their_sides(gislr_files, tmp_path):
    """Real GISLR hands (this signer signs with the right hand) written as a detection-order MediaPipe-Hands
    corpus: read as left_right, the right hand lands in the left slot; hands_order: detection puts it back."""
    truth = read_all("gislr", [{"video_id": f.stem, "path": str(f)} for f in gislr_files],
                     {"width": WIDTH, "height": HEIGHT})
    truth.pop("468121184")  # the one whose Holistic 'left' hand sits on the signer's right (next test)
    rows = []
    for video_id, sequence in truth.items():
        np.save(tmp_path / f"{video_id}.npy", _hands_126(sequence, detection_order=True))
        rows.append({"video_id": video_id, "path": str(tmp_path / f"{video_id}.npy")})
    cfg = {"layout": "mediapipe-hands-126", "width": WIDTH, "height": HEIGHT}
    as_given = read_all("arrays", rows, cfg)
    ordered = read_all("arrays", rows, {**cfg, "hands_order": "detection"})
    hands = slice(PARTS["left_hand"].start, PARTS["right_hand"].stop)
    right_frames = wrong_before = right_after = 0
    for video_id, sequence in truth.items():
        has_right = sequence.score[:, PARTS["right_hand"]].max(axis=1) > 0
        right_frames += has_right.sum()
        wrong_before += (as_given[video_id].score[has_right][:, PARTS["left_hand"]].max(axis=1) > 0).sum()
        same = (ordered[video_id].score[:, hands] == sequence.score[:, hands]).all(axis=1)
        same &= np.abs(ordered[video_id].xy[:, hands] - sequence.xy[:, hands]).max(axis=(1, 2)) < 1e-3
        right_after += (same & has_right).sum()
    assert right_frames > 200 and wrong_before == right_frames  # every right hand was called left
    assert right_after == right_frames  # each one is back on the signer's right
    with pytest.raises(ValueError, match="hands_order: detection applies to layout mediapipe-hands-126 only"):
        read_sequences("arrays", rows, {**cfg, "layout": "coco-wholebody-133", "hands_order": "detection"})


def test_order_hands_by_side_continuity_and_midline():
    from signpipe.keypoints.sources.arrays import order_hands

    def frame(*wrists):
        hands = np.full((2, 21, 3), np.nan, np.float32)
        for slot, x in enumerate(wrists):
            hands[slot] = [x, 50, 1]
        return hands.reshape(42, 3)

    # two hands: the one further right is the left; then a lone hand near the previous right stays right
    # although it is right of the midline; a lone hand after a gap goes by the midline
    points = np.stack([frame(52, 80), frame(56), frame(np.nan), frame(56), frame(30)])
    ordered = order_hands(points, width=100).reshape(5, 2, 21, 3)
    assert ordered[0, :, 0, 0].tolist() == [80, 52]
    assert np.isnan(ordered[1, 0, 0, 0]) and ordered[1, 1, 0, 0] == 56
    assert ordered[3, 0, 0, 0] == 56 and np.isnan(ordered[3, 1, 0, 0])
    assert np.isnan(ordered[4, 0, 0, 0]) and ordered[4, 1, 0, 0] == 30  # far from the previous left: midline


def test_quality_warns_when_the_left_hand_sits_on_the_signers_right(gislr_files, caplog):
    """Real Holistic sequences: hands on their sides score 0; the same with the hand slots swapped, and the
    one real file whose 'left' hand is on the signer's right, are reported."""
    from signpipe.keypoints.quality import swapped_hands, swapped_hands_problem

    sequences = read_all("gislr", [{"video_id": f.stem, "path": str(f)} for f in gislr_files],
                         {"width": WIDTH, "height": HEIGHT})
    odd = sequences.pop("468121184")
    left, right = PARTS["left_hand"], PARTS["right_hand"]
    judged_total = 0
    for sequence in sequences.values():
        share, judged = swapped_hands(sequence.xy, sequence.score)
        assert share == 0
        judged_total += judged
        swap = np.r_[0:left.start, right.start:right.stop, left.start:left.stop]
        share, judged = swapped_hands(sequence.xy[:, swap], sequence.score[:, swap])
        assert judged == 0 or share == 1
    assert judged_total > 200
    share, judged = swapped_hands(odd.xy, odd.score)
    assert share == 1 and judged == 13
    assert "left hand sits on the signer's right side" in swapped_hands_problem(share, judged)
    assert swapped_hands_problem(0.2, 50) == "" and swapped_hands_problem(1.0, 2) == ""


def test_quality_csv_reports_swapped_hands(gislr_files, tmp_path, caplog):
    from signpipe.pose.importer import import_shard

    files = {f.stem: f for f in gislr_files}
    rows = [{"video_id": v, "path": str(files[v])} for v in ("468121184", "903150607")]
    pd.DataFrame(rows).assign(label=0, gloss="x", split="train", signer="", frame_start=0, frame_end=-1,
                              shard=0).to_csv(tmp_path / "0.csv", index=False)
    with caplog.at_level("WARNING"):
        quality = import_shard(tmp_path / "0.csv", tmp_path / "kp.h5", tmp_path / "q.csv", tmp_path / "f.csv",
                               {"adapter": "gislr", "width": WIDTH, "height": HEIGHT}, progress=False)
    assert quality.set_index("video_id")["swapped_hands"].to_dict() == {"468121184": 1.0, "903150607": 0.0}
    assert pd.read_csv(tmp_path / "q.csv")["swapped_hands"].tolist() == [1.0, 0.0]
    warned = [r.getMessage() for r in caplog.records if "signer's right side" in r.getMessage()]
    assert len(warned) == 1 and warned[0].startswith("video 468121184:")


@pytest.mark.parametrize("name, frames", [("mediapipe", 170), ("hand_estimation_6fb01565", 5)])
def test_truncated_pose_file_is_refused_with_a_reason(pose_dir, tmp_path, name, frames):
    """pose-format 0.1 reads a cut body as fewer frames whose confidences are coordinate bytes; 0.2 too
    when the cut falls on a frame boundary. Both are refused (issue #25 item 3)."""
    data = (pose_dir / f"{name}.pose").read_bytes()
    whole = read_all("pose", [{"video_id": "a", "path": str(pose_dir / f"{name}.pose")}], {})["a"]
    assert isinstance(whole, KeypointSequence) and len(whole.xy) == frames
    cut = tmp_path / "cut.pose"
    cut.write_bytes(data[: len(data) // 2 + len(data) // 4])
    error = read_all("pose", [{"video_id": "a", "path": str(cut)}], {})["a"]
    assert isinstance(error, ValueError) and "cut.pose: truncated or damaged: the header declares" in str(error)
    assert f"{frames} frames" in str(error)
