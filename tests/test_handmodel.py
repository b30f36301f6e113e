"""The hand model layer: MANO pickles without chumpy, the open hand, the camera, the CLI."""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse
import torch

from signpipe.handmodel import (
    CAMERA_DIM,
    NUM_BETAS,
    HandModel,
    camera_rotation,
    make_camera,
    rotation_from_6d,
    rotation_to_6d,
    weak_perspective_project,
)
from signpipe.handmodel.asset import ASSET_PATH, BONE_FRACTIONS, SHAPE_DIRECTIONS, build_asset, load_asset
from signpipe.handmodel.cli import register
from signpipe.handmodel.mano import MANO_FINGERTIPS, MODEL_KEYS, mirror_model, read_mano_pickle
from signpipe.keypoints.layout import FINGERS, HAND_EDGES, HAND_JOINT_NAMES

MIRROR = torch.tensor([-1.0, 1.0, 1.0])
J = {name: i for i, name in enumerate(HAND_JOINT_NAMES)}


def random_inputs(model: HandModel, n: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, model.num_pca, generator=g), torch.randn(n, NUM_BETAS, generator=g),
            torch.randn(n, CAMERA_DIM, generator=g))


def flat_theta(model: HandModel) -> torch.Tensor:
    """theta of the flat rest template (pose = 0), exact with all 45 components."""
    components = model.pose_components.double()
    return torch.linalg.solve(components.T, -model.mano.pose_mean[3:].double()).float()


def bone_lengths(joints: torch.Tensor) -> torch.Tensor:
    return torch.stack([(joints[..., b, :] - joints[..., a, :]).norm(dim=-1) for a, b in HAND_EDGES], -1)


# --- camera ---------------------------------------------------------------------------------

def test_rotation_from_6d_is_a_rotation_for_random_inputs():
    rotation = rotation_from_6d(torch.randn(10000, 6, dtype=torch.float64) * 10)
    eye = torch.eye(3, dtype=torch.float64).expand_as(rotation)
    assert torch.allclose(rotation.transpose(-1, -2) @ rotation, eye, atol=1e-10)
    assert torch.allclose(torch.linalg.det(rotation), torch.ones(10000, dtype=torch.float64), atol=1e-10)


def test_6d_round_trip_keeps_a_rotation():
    rotation = rotation_from_6d(torch.randn(100, 6))
    assert torch.allclose(rotation_from_6d(rotation_to_6d(rotation)), rotation, atol=1e-6)


def test_projection_of_known_rotations_is_exact():
    points = torch.eye(3)  # x, y, z unit vectors
    rot_z90 = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    camera = make_camera(rot_z90, torch.tensor([5.0, -3.0]), torch.tensor(2.0))
    expected = torch.tensor([[5.0, -1.0], [3.0, -3.0], [5.0, -3.0]])  # x -> y, y -> -x, z -> depth
    assert torch.allclose(weak_perspective_project(points, camera), expected, atol=1e-6)
    rot_x90 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    camera = make_camera(rot_x90, torch.zeros(2), torch.tensor(0.5))
    expected = torch.tensor([[0.5, 0.0], [0.0, 0.0], [0.0, -0.5]])  # y -> depth, z -> -y
    assert torch.allclose(weak_perspective_project(points, camera), expected, atol=1e-6)


def test_zero_camera_is_the_identity_and_scale_stays_positive():
    points = torch.randn(5, 3)
    assert torch.allclose(weak_perspective_project(points, torch.zeros(CAMERA_DIM)), points[:, :2])
    camera = torch.zeros(CAMERA_DIM)
    camera[8] = -30.0
    assert torch.all(weak_perspective_project(torch.ones(1, 3), camera) > 0)


def test_make_camera_round_trips():
    rotation = rotation_from_6d(torch.randn(4, 6))
    camera = make_camera(rotation, torch.randn(4, 2), torch.rand(4) + 0.1)
    assert torch.allclose(camera_rotation(camera), rotation, atol=1e-6)


# --- the open hand --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hands() -> dict[str, HandModel]:
    return {side: HandModel(side, num_pca=45) for side in ("left", "right")}


def test_gradients_reach_theta_beta_and_every_camera_parameter():
    model = HandModel("right")
    theta, beta, camera = (v.requires_grad_() for v in random_inputs(model, n=3))
    out = model(theta, beta, camera)
    weights = torch.Generator().manual_seed(1)
    loss = (out.joints2d * torch.randn(out.joints2d.shape, generator=weights)).sum() \
        + (out.vertices * torch.randn(out.vertices.shape, generator=weights)).sum()
    loss.backward()
    for name, value in (("theta", theta), ("beta", beta), ("camera", camera)):
        assert torch.isfinite(value.grad).all(), name
        assert (value.grad.abs() > 0).all(), f"{name}: some entries get no gradient"


@pytest.mark.parametrize("side", ["left", "right"])
def test_joints_only_path_equals_the_full_mesh_path_with_gradients(side):
    model = HandModel(side)
    theta, beta, camera = (v.requires_grad_() for v in random_inputs(model, n=64, seed=2))
    # far from the mean hand and shape, where pose and shape blend shapes matter
    full, sparse = (model(theta * 2, beta * 3, camera, vertices=mesh) for mesh in (True, False))
    assert sparse.vertices is None
    assert torch.allclose(sparse.joints3d, full.joints3d, atol=1e-5)
    assert torch.allclose(sparse.joints2d, full.joints2d, atol=1e-5)
    grads = [torch.autograd.grad(out.joints2d.square().sum(), (theta, beta, camera)) for out in (full, sparse)]
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4)


def test_layer_keeps_full_precision_under_mixed_precision():
    model = HandModel("right")
    theta, beta, camera = random_inputs(model, n=16, seed=3)
    reference = model(theta, beta, camera)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for mesh in (True, False):
            out = model(theta.bfloat16(), beta, camera, vertices=mesh)  # a network's half-precision output
            assert out.joints2d.dtype == torch.float32
            assert torch.allclose(out.joints2d, model(theta.bfloat16().float(), beta, camera).joints2d, atol=1e-6)
        assert torch.allclose(model(theta, beta, camera).joints2d, reference.joints2d, atol=1e-6)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_layer_follows_the_module_device_and_dtype(device):
    model = HandModel("left").to(device, torch.float64)
    theta, beta, camera = (v.to(device, torch.float64) for v in random_inputs(model))
    out = model(theta, beta, camera)
    assert out.joints2d.dtype == torch.float64 and out.joints2d.device.type == device
    assert model(theta, beta, camera, vertices=False).joints2d.dtype == torch.float64
    reference = HandModel("left")(*random_inputs(model))
    assert torch.allclose(out.joints2d.cpu().float(), reference.joints2d, atol=1e-4)


def test_leading_shapes_broadcast_and_match_single_calls():
    model = HandModel("right")
    theta, beta, camera = random_inputs(model, n=6)
    out = model(theta.reshape(2, 3, -1), beta[:2, None], camera[0])
    assert out.joints3d.shape == (2, 3, 21, 3) and out.joints2d.shape == (2, 3, 21, 2)
    single = model(theta[4], beta[1], camera[0])
    assert torch.allclose(out.joints2d[1, 1], single.joints2d, atol=1e-5)
    assert torch.allclose(out.joints2d, weak_perspective_project(out.joints3d, camera[0]), atol=1e-5)
    with pytest.raises(ValueError, match="theta"):
        model(theta[:, :5], beta, camera)


@pytest.mark.parametrize("side", ["left", "right"])
def test_joint_order_wrist_first_thumb_and_pinky_on_opposite_sides(hands, side):
    model = hands[side]
    joints = model(flat_theta(model), torch.zeros(NUM_BETAS), torch.zeros(CAMERA_DIM)).joints3d
    assert torch.all(joints[0] == 0)
    assert joints[0, 1] < joints[1:, 1].min()  # the wrist is the most proximal joint (fingers along +y)
    # model frame: the right thumb is on +x, the left hand is its mirror image
    lateral = (1 if side == "right" else -1) * (joints[:, 0] - joints[J["middle1"], 0])
    assert lateral[J["thumb4"]] > 0.02 and lateral[J["pinky4"]] < -0.02
    assert lateral[J["index4"]] > 0 > lateral[J["ring4"]]


def test_rest_bone_length_ratios_match_the_anatomical_table(hands):
    model = hands["right"]
    table = torch.tensor([BONE_FRACTIONS[f] for f in FINGERS]).flatten()
    table = table / table.sum()
    theta = torch.stack([flat_theta(model), torch.randn(model.num_pca)])  # rest and a random pose
    joints = model(theta, torch.zeros(NUM_BETAS), torch.zeros(CAMERA_DIM)).joints3d
    ratios = bone_lengths(joints)
    ratios = ratios / ratios.sum(-1, keepdim=True)
    assert torch.all((ratios / table - 1).abs() < 0.05), ratios / table


def test_size_beta_scales_every_bone():
    model = HandModel("right")
    beta = torch.zeros(2, NUM_BETAS)
    beta[1, 0] = 1.0
    lengths = bone_lengths(model(torch.zeros(model.num_pca), beta, torch.zeros(CAMERA_DIM)).joints3d)
    assert torch.allclose(lengths[1] / lengths[0], torch.full((20,), 1 + SHAPE_DIRECTIONS["size"][0]), atol=1e-4)


def test_left_open_hand_is_the_mirror_of_the_right(hands):
    theta, beta, _ = random_inputs(hands["right"], n=5)
    zero = torch.zeros(CAMERA_DIM)
    right, left = hands["right"](theta, beta, zero), hands["left"](theta, beta, zero)
    assert torch.allclose(left.joints3d, right.joints3d * MIRROR, atol=1e-6)
    assert torch.allclose(left.vertices, right.vertices * MIRROR, atol=1e-6)


def test_shipped_asset_is_small_and_rebuilds_identically():
    assert os.path.getsize(ASSET_PATH) < 1 << 20
    shipped, rebuilt = load_asset(), build_asset()
    for key in shipped:
        np.testing.assert_allclose(shipped[key], rebuilt[key], atol=1e-6, err_msg=key)


# --- licensed MANO path, with a MANO-format pickle built here ----------------------------------

class Ch:
    """Pickles like chumpy.ch.Ch in the official files: its state holds the array as ``x``."""

    __module__ = "chumpy.ch"

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float64)

    def __getstate__(self) -> dict:
        return {"x": self.x, "_dirty_vars": set(), "_itr": None, "_depends_on_deps": {},
                "_make_dense": False, "_make_sparse": False}


def to_mano_vertex_layout(model: dict[str, np.ndarray], num_vertices: int = 778) -> dict[str, np.ndarray]:
    """The model re-indexed to 778 vertices with its fingertips at the papers' MANO vertex ids;
    the extra vertices copy vertex 0 and belong to no face and no joint."""
    old_count, old_tips = len(model["v_template"]), model["tip_vertices"]
    source = np.full(num_vertices, -1)  # old vertex that each new vertex copies
    source[[MANO_FINGERTIPS[f] for f in FINGERS]] = old_tips
    others, free = np.setdiff1d(np.arange(old_count), old_tips), np.flatnonzero(source < 0)
    source[free[:len(others)]] = others
    filler = free[len(others):]
    source[filler] = 0
    real = np.setdiff1d(np.arange(num_vertices), filler)
    new_index = np.empty(old_count, dtype=np.int64)
    new_index[source[real]] = real
    regressor = model["J_regressor"][:, source].astype(np.float64)
    regressor[:, filler] = 0
    return {
        **{key: model[key][source] for key in ("v_template", "shapedirs", "posedirs", "weights")},
        "J_regressor": regressor, "f": new_index[model["f"]],
        **{key: model[key] for key in ("kintree_table", "hands_components", "hands_mean")},
    }


def write_mano_pickle(model: dict[str, np.ndarray], path: os.PathLike) -> None:
    """Write a model the way the official MANO pickles store it (protocol 2, chumpy, sparse)."""
    kintree = model["kintree_table"].astype(np.int64)
    kintree[0, 0] = 4294967295
    data = {
        **{key: Ch(model[key]) for key in ("v_template", "shapedirs", "posedirs", "weights")},
        "J_regressor": scipy.sparse.csc_matrix(model["J_regressor"]),
        "J": Ch(model["J_regressor"] @ model["v_template"]),
        "kintree_table": kintree, "f": model["f"].astype(np.uint32),
        "hands_components": model["hands_components"].astype(np.float64),
        "hands_mean": model["hands_mean"].astype(np.float64),
        "bs_style": "lbs", "bs_type": "lrotmin",
    }
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=2)


def pretend_chumpy(patch: pytest.MonkeyPatch) -> None:
    """Let ``Ch`` pickle as chumpy.ch.Ch (pickle checks that the module holds the class)."""
    module = types.ModuleType("chumpy.ch")
    module.Ch = Ch
    patch.setitem(sys.modules, "chumpy", types.ModuleType("chumpy"))
    patch.setitem(sys.modules, "chumpy.ch", module)


@pytest.mark.parametrize("left_file", ["with_shapedirs_bug", "already_fixed"])
def test_mano_path_loads_chumpy_pickles_and_runs_smplx(tmp_path, monkeypatch, left_file):
    right = to_mano_vertex_layout(load_asset())
    left = mirror_model(right)
    if left_file == "with_shapedirs_bug":  # the released left file: shapedirs copied from the right
        left["shapedirs"] = right["shapedirs"].copy()
    with monkeypatch.context() as patch:
        pretend_chumpy(patch)
        write_mano_pickle(right, tmp_path / "MANO_RIGHT.pkl")
        write_mano_pickle(left, tmp_path / "MANO_LEFT.pkl")
    assert "chumpy" not in sys.modules and b"chumpy.ch" in (tmp_path / "MANO_LEFT.pkl").read_bytes()

    stored = read_mano_pickle(tmp_path / "MANO_LEFT.pkl")
    assert set(stored) == set(MODEL_KEYS) and stored["v_template"].shape == (778, 3)

    mano = {side: HandModel(side, mano_dir=tmp_path) for side in ("left", "right")}
    open_right = HandModel("right")
    theta, beta, camera = random_inputs(open_right, n=5)
    beta = beta * 2  # shape matters: the left shapedirs bug would show here
    out = {side: m(theta, beta, camera) for side, m in mano.items()}
    # the fingertips come from vertices 734, 333, 443, 555, 678 and the joints are in hand order
    assert torch.allclose(out["right"].joints3d, open_right(theta, beta, camera).joints3d, atol=1e-5)
    assert torch.allclose(out["left"].joints3d, out["right"].joints3d * MIRROR, atol=1e-5)
    assert torch.allclose(out["left"].vertices, out["right"].vertices * MIRROR, atol=1e-5)
    for side, m in mano.items():  # the joints-only path skins MANO's own tip vertices alike
        assert torch.allclose(m(theta, beta, camera, vertices=False).joints3d, out[side].joints3d, atol=1e-5)


def test_mano_pickle_loader_refuses_unexpected_classes(tmp_path):
    class Exploit:
        def __reduce__(self):
            return (os.system, ("true",))

    with open(tmp_path / "MANO_RIGHT.pkl", "wb") as f:
        pickle.dump({"v_template": Exploit()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="unexpected class"):
        read_mano_pickle(tmp_path / "MANO_RIGHT.pkl")


class SparseCall:
    """Pickles as a call of a function that scipy.sparse exports, as a crafted MANO file can."""

    def __init__(self, function, *args) -> None:
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.mark.parametrize("function", [scipy.sparse.save_npz, scipy.sparse.load_npz])
def test_mano_pickle_loader_refuses_scipy_sparse_functions(tmp_path, function):
    """Only sparse matrix classes resolve: a pickle that calls save_npz writes nothing."""
    written = tmp_path / "written.npz"
    args = (str(written), scipy.sparse.csc_matrix(np.eye(2))) if function is scipy.sparse.save_npz else (str(written),)
    with open(tmp_path / "MANO_RIGHT.pkl", "wb") as f:
        pickle.dump({"v_template": SparseCall(function, *args)}, f, protocol=2)
    message = rf"MANO_RIGHT.pkl: unexpected class scipy.sparse.*{function.__name__}"
    with pytest.raises(pickle.UnpicklingError, match=message):
        read_mano_pickle(tmp_path / "MANO_RIGHT.pkl")
    assert not written.exists()


@pytest.mark.parametrize("fmt", ["csc_matrix", "csr_matrix", "coo_matrix", "csc_array"])
def test_mano_pickle_loader_reads_sparse_matrices(tmp_path, fmt):
    model = {key: np.arange(6.0).reshape(2, 3) for key in MODEL_KEYS}
    model["J_regressor"] = getattr(scipy.sparse, fmt)(np.eye(3)[:2])
    for protocol in (2, pickle.HIGHEST_PROTOCOL):
        with open(tmp_path / "MANO_RIGHT.pkl", "wb") as f:
            pickle.dump(model, f, protocol=protocol)
        np.testing.assert_array_equal(read_mano_pickle(tmp_path / "MANO_RIGHT.pkl")["J_regressor"], np.eye(3)[:2])


def test_missing_mano_files_name_the_config_key_and_files(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        HandModel("left", mano_dir=tmp_path)
    message = str(error.value)
    assert "hand_model.mano_dir" in message and "MANO_LEFT.pkl" in message and "MANO_RIGHT.pkl" in message


# --- command line ---------------------------------------------------------------------------

def run_cli(*argv: str) -> None:
    parser = argparse.ArgumentParser(prog="signpipe")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    args.func(args)


def test_show_hand_writes_a_png(tmp_path):
    out = tmp_path / "hand.png"
    run_cli("show-hand", "--side", "left", "--theta", "1,-1", "--beta", "2", "--components", "2",
            "--out", str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_handmodel_build_writes_a_loadable_asset(tmp_path):
    out = tmp_path / "hand.npz"
    run_cli("handmodel", "build", "--out", str(out), "--seed", "1")
    asset = load_asset(out)
    assert asset["hands_components"].shape == (45, 45)
    assert not math.isclose(float(asset["hands_mean"][0]), float(load_asset()["hands_mean"][0]), rel_tol=1e-6)
