"""Keypoint graphs for graph-convolution models: the 133-point graph, documented subsets, partitions.

The full graph joins every bone of the COCO-WholeBody layout (``layout.skeleton_edges``: body,
feet, both hands joined at the wrists, jaw), COCO's ear-shoulder bones, and the 68-point face
(brows, nose, eyes, lips as in iBUG 300-W, each part tied to the nose bridge or tip, and the
face's nose tip to the body's nose), so it is one connected graph.

A subset keeps some of the 133 points. Its edges are the full graph's, contracted through the
dropped points: two kept points are joined when a path of dropped points links them (the
27-point set's wrist-to-thumb-tip edge stands for the thumb's bones). Every subset is therefore
connected and documented by :func:`draw_graph` (docs/graphs/*.png).

* ``133``: everything.
* ``59``: the 17 COCO body points and both hands (21 + 21), no feet or face.
* ``27``: SAM-SLR's choice: nose, shoulders, elbows, wrists (7) and per hand the wrist, thumb
  tip and the base and tip of the other four fingers (10).

:func:`spatial_partition` gives Yan et al. (2018)'s spatial-configuration partitioning.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass

import numpy as np

from signpipe.keypoints.layout import NUM_KEYPOINTS, PARTS, keypoint_names, skeleton_edges

_FACE = PARTS["face"].start


def _face_edges() -> list[tuple[int, int]]:
    """The 68-point face (iBUG 300-W order), jaw excluded (``skeleton_edges`` has it), in global indices."""
    chains = [range(17, 22), range(22, 27), range(27, 31), range(31, 36)]          # brows, nose bridge, nostrils
    loops = [range(36, 42), range(42, 48), range(48, 60), range(60, 68)]           # eyes, outer and inner lips
    edges = [(a, a + 1) for chain in chains for a in chain[:-1]]
    edges += [(loop[i], loop[(i + 1) % len(loop)]) for loop in loops for i in range(len(loop))]
    # brows and eyes to the nose bridge, nose to lip, chin to lip, inner to outer lip corners
    edges += [(21, 27), (22, 27), (39, 27), (42, 27), (30, 33), (33, 51), (8, 57), (48, 60), (54, 64)]
    return [(_FACE + a, _FACE + b) for a, b in edges]


FULL_EDGES: tuple[tuple[int, int], ...] = tuple(
    skeleton_edges() + [(3, 5), (4, 6)] + _face_edges() + [(0, _FACE + 30)]
)
"""Edges of the 133-point graph (global indices): bones, COCO's ear-shoulder links, the face."""
CENTRE = 0
"""The nose: the partitioning's centre node in every subset (as pyskl does for COCO layouts)."""

_HAND_27 = (0, 4, 5, 8, 9, 12, 13, 16, 17, 20)  # wrist, thumb tip, base and tip of index..pinky
SUBSETS: dict[str, tuple[int, ...]] = {
    "133": tuple(range(NUM_KEYPOINTS)),
    "59": tuple(range(17)) + tuple(range(PARTS["left_hand"].start, PARTS["right_hand"].stop)),
    "27": (0, 5, 6, 7, 8, 9, 10) + tuple(hand.start + j for hand in (PARTS["left_hand"], PARTS["right_hand"])
                                         for j in _HAND_27),
}
"""Subset name -> indices into the 133 layout, ascending."""


@dataclass(frozen=True)
class Graph:
    """A keypoint subset as a graph: ``indices`` into the 133 layout, ``edges`` over local node numbers."""

    name: str
    indices: tuple[int, ...]
    edges: tuple[tuple[int, int], ...]
    centre: int
    """Local number of the partitioning's centre node."""

    @property
    def num_nodes(self) -> int:
        return len(self.indices)


def _neighbours(num_nodes: int, edges: tuple[tuple[int, int], ...]) -> list[list[int]]:
    neighbours: list[list[int]] = [[] for _ in range(num_nodes)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    return neighbours


def subset_graph(name: str) -> Graph:
    """The graph of subset ``name`` (see :data:`SUBSETS`), edges contracted through dropped points."""
    if name not in SUBSETS:
        raise ValueError(f"keypoint subset {name!r} unknown; known: {', '.join(SUBSETS)}")
    indices = SUBSETS[name]
    local = {g: i for i, g in enumerate(indices)}
    neighbours = _neighbours(NUM_KEYPOINTS, FULL_EDGES)
    edges = set()
    for start in indices:  # search from each kept point, walking only through dropped ones
        seen, queue = {start}, deque([start])
        while queue:
            for nxt in neighbours[queue.popleft()]:
                if nxt in seen:
                    continue
                seen.add(nxt)
                if nxt in local:
                    edges.add(tuple(sorted((local[start], local[nxt]))))
                else:
                    queue.append(nxt)
    return Graph(name, indices, tuple(sorted(edges)), local[CENTRE])


def hop_distance(num_nodes: int, edges: tuple[tuple[int, int], ...], source: int) -> np.ndarray:
    """Hops (V,) from ``source`` to each node; -1 where unreachable."""
    neighbours = _neighbours(num_nodes, edges)
    hops = np.full(num_nodes, -1, np.int64)
    hops[source] = 0
    queue = deque([source])
    while queue:
        node = queue.popleft()
        for nxt in neighbours[node]:
            if hops[nxt] < 0:
                hops[nxt] = hops[node] + 1
                queue.append(nxt)
    return hops


def spatial_partition(graph: Graph) -> np.ndarray:
    """Yan et al. (2018)'s spatial-configuration partitions, (3, V, V) float32.

    For node i, its neighbours j (itself included) fall into three subsets by their hop distance
    to the centre compared with i's: 0 root (equal, which includes i itself), 1 centripetal
    (j nearer the centre), 2 centrifugal (j farther). ``A[k, j, i]`` is the weight of j in i's
    sum: 1 / (neighbours of i, itself included), so the three partitions sum to the
    column-normalised adjacency with self-loops. Use as ``out[..., i] = sum_j x[..., j] A[k, j, i]``.
    """
    v = graph.num_nodes
    hops = hop_distance(v, graph.edges, graph.centre)
    if (hops < 0).any():
        cut = np.flatnonzero(hops < 0).tolist()
        raise ValueError(f"graph {graph.name}: nodes {cut} are not connected to the centre")
    adjacency = np.eye(v)
    for a, b in graph.edges:
        adjacency[a, b] = adjacency[b, a] = 1
    normalised = adjacency / adjacency.sum(axis=0, keepdims=True)
    nearer = hops[:, None] < hops[None, :]  # [j, i]: j nearer the centre than i
    farther = hops[:, None] > hops[None, :]
    equal = ~nearer & ~farther
    return np.stack([normalised * equal, normalised * nearer, normalised * farther]).astype(np.float32)


def draw_graph(graph: Graph, xy: np.ndarray, path: str | os.PathLike) -> None:
    """PNG of ``graph`` drawn on a pose ``xy`` (133, 2) in image pixels (y down); NaN = not in view.

    Nodes are coloured by their hops from the centre and (up to 60 nodes) numbered by local index; nodes without a
    position (e.g. legs outside the frame) are lined up under the figure so every node shows.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from signpipe.figures import save_figure

    points = np.asarray(xy, np.float64)[list(graph.indices)].copy()
    missing = np.isnan(points).any(axis=1)
    if missing.any():
        known = points[~missing]
        span = known[:, 0].max() - known[:, 0].min() if len(known) else 1.0
        left, bottom = (known[:, 0].min(), known[:, 1].max()) if len(known) else (0.0, 0.0)
        points[missing] = np.stack([left + np.linspace(0, span, missing.sum()),
                                    np.full(missing.sum(), bottom + 0.15 * span)], axis=1)
    hops = hop_distance(graph.num_nodes, graph.edges, graph.centre)
    names = keypoint_names()
    fig, ax = plt.subplots(figsize=(6, 6))
    for a, b in graph.edges:
        ax.plot(points[[a, b], 0], points[[a, b], 1], color="0.6", lw=0.8, zorder=1)
    ax.scatter(points[:, 0], points[:, 1], c=hops, cmap="viridis", s=18 if graph.num_nodes > 60 else 40, zorder=2,
               edgecolors=np.where(missing, "red", "none"))
    if graph.num_nodes <= 60:
        for i, (x, y) in enumerate(points):
            ax.annotate(str(i), (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
    ax.set_title(f"subset {graph.name}: {graph.num_nodes} points, {len(graph.edges)} edges; colour = hops from "
                 f"{names[graph.indices[graph.centre]]}" + ("; red ring = not in view" if missing.any() else ""),
                 fontsize=8)
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    save_figure(fig, path, dpi=80)
