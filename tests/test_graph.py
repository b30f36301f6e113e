"""Keypoint graphs: partitioning by hand on a tiny graph, subsets valid and connected."""

from __future__ import annotations

import numpy as np
import pytest

from signpipe.keypoints.graph import (
    FULL_EDGES,
    SUBSETS,
    Graph,
    draw_graph,
    hop_distance,
    spatial_partition,
    subset_graph,
)
from signpipe.keypoints.layout import NUM_KEYPOINTS


def test_spatial_partition_of_a_path_by_hand() -> None:
    # 0 - 1 - 2 - 3 with centre 1: hops [1, 0, 1, 2]; neighbours incl. self: 2, 3, 3, 2
    a = spatial_partition(Graph("path", (0, 1, 2, 3), ((0, 1), (1, 2), (2, 3)), 1))
    root, centripetal, centrifugal = a
    np.testing.assert_allclose(root, np.diag([1 / 2, 1 / 3, 1 / 3, 1 / 2]))
    expected_in = np.zeros((4, 4))
    expected_in[1, 0] = 1 / 2          # node 0 hears the centre (nearer)
    expected_in[1, 2] = 1 / 3          # node 2 hears the centre
    expected_in[2, 3] = 1 / 2          # node 3 hears node 2
    np.testing.assert_allclose(centripetal, expected_in)
    expected_out = np.zeros((4, 4))
    expected_out[0, 1] = expected_out[2, 1] = 1 / 3   # the centre hears 0 and 2 (farther)
    expected_out[3, 2] = 1 / 3                        # node 2 hears node 3
    np.testing.assert_allclose(centrifugal, expected_out)
    np.testing.assert_allclose(a.sum(axis=0).sum(axis=0), np.ones(4))  # each node's weights sum to 1


def test_equal_hops_neighbours_are_root() -> None:
    # a triangle around the centre: 1 and 2 are both 1 hop away, so their edge is in the root partition
    a = spatial_partition(Graph("tri", (0, 1, 2), ((0, 1), (0, 2), (1, 2)), 0))
    assert a[0, 1, 2] == a[0, 2, 1] == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match=r"nodes \[2\] are not connected"):
        spatial_partition(Graph("cut", (0, 1, 2), ((0, 1),), 0))


@pytest.mark.parametrize("name", list(SUBSETS))
def test_subsets_are_valid_and_connected(name: str) -> None:
    graph = subset_graph(name)
    assert len(graph.indices) == int(name) == len(set(graph.indices))
    assert list(graph.indices) == sorted(graph.indices) and max(graph.indices) < NUM_KEYPOINTS
    assert all(0 <= a < b < graph.num_nodes for a, b in graph.edges)
    assert (hop_distance(graph.num_nodes, graph.edges, graph.centre) >= 0).all()
    assert spatial_partition(graph).shape == (3, graph.num_nodes, graph.num_nodes)


def test_contracted_edges_of_the_27_point_set() -> None:
    graph = subset_graph("27")
    glob = {(graph.indices[a], graph.indices[b]) for a, b in graph.edges}
    assert (0, 5) in glob and (0, 6) in glob          # nose to shoulders through the eyes and ears
    assert (91, 95) in glob and (96, 99) in glob      # wrist to thumb tip, index base to tip
    assert (9, 91) in glob and (10, 112) in glob      # body wrists to hand wrists
    assert len(glob) == 27                            # a tree over 27 points plus the shoulder line
    assert set(subset_graph("133").edges) == {tuple(sorted(e)) for e in FULL_EDGES}


def test_draw_graph_marks_points_out_of_view(tmp_path) -> None:
    xy = np.random.default_rng(0).uniform(0, 100, (NUM_KEYPOINTS, 2))
    xy[13:23] = np.nan
    draw_graph(subset_graph("59"), xy, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
