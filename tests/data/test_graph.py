"""Graph building: kernels against hand-computed values, kNN against brute force, real Los-loop sensors."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from stkd.config import GraphConfig
from stkd.data.container import STData
from stkd.data.graph import (
    EARTH_RADIUS_KM,
    MIN_KNN_WEIGHT,
    add_self_loops,
    build_adjacency,
    distance_table_to_matrix,
    gaussian_kernel_adjacency,
    haversine_km,
    knn_adjacency,
    neighbourhood_sample,
    normalize,
    symmetrize,
    to_torch_sparse,
    transition_matrices,
)
from stkd.errors import ConfigError, DataError


def random_coords(rng, n, lat=(33.8, 34.4), lon=(-118.7, -118.0)):
    return np.c_[rng.uniform(*lat, n), rng.uniform(*lon, n)]  # (n, 2)


def make_data(n=4, coords=None, adjacency=None, T=6):
    values = np.arange(T * n, dtype=np.float32).reshape(T, n)
    idx = pd.date_range("2024-01-01", periods=T, freq="5min")
    return STData.from_values(values, idx, [f"s{i}" for i in range(n)], ["speed"],
                              coords=coords, adjacency=adjacency, name="toy")


# ----------------------------------------------------------------------- haversine
def test_haversine_known_distances():
    one_degree = EARTH_RADIUS_KM * np.pi / 180  # an arc of 1 degree on a great circle
    d = haversine_km([[0, 0], [0, 1], [1, 0]], [[0, 0], [0, 1]])
    assert d.shape == (3, 2)
    np.testing.assert_allclose(d, [[0, one_degree], [one_degree, 0], [one_degree, np.sqrt(2) * one_degree]],
                               rtol=1e-3, atol=1e-9)
    # antipodes: half the circumference, not NaN
    np.testing.assert_allclose(haversine_km([[0, 0]], [[0, 180]]), [[np.pi * EARTH_RADIUS_KM]])


# ------------------------------------------------------------------ gaussian kernel
def test_gaussian_kernel_hand_computed_three_nodes():
    # 0 -1- 1 -2- 2, and 0 and 2 not connected
    d = np.array([[0, 1, np.inf], [1, 0, 2], [np.inf, 2, 0]])
    # finite distances 0,1,1,0,2,2,0: mean 6/7, E[d^2] = 10/7, std = sqrt(10/7 - 36/49) = sqrt(34)/7
    sigma = np.sqrt(34) / 7
    w1, w2 = np.exp(-(1 / sigma) ** 2), np.exp(-(2 / sigma) ** 2)  # 0.2366, 0.0031
    expect = np.array([[1, w1, 0], [w1, 1, 0], [0, 0, 1]])  # w2 < 0.1 dropped
    a = gaussian_kernel_adjacency(d)
    assert sp.issparse(a) and a.format == "csr" and a.dtype == np.float32
    np.testing.assert_allclose(a.toarray(), expect, rtol=1e-6)
    a0 = gaussian_kernel_adjacency(d, threshold=0.0)
    np.testing.assert_allclose(a0[[1, 2], [2, 1]], [w2, w2], rtol=1e-5)


def test_gaussian_threshold_drops_weak_edges():
    d = np.array([[np.inf, 1.0, 2.0], [1.0, np.inf, np.inf], [2.0, np.inf, np.inf]])
    keep_all = gaussian_kernel_adjacency(d, sigma=1.0, threshold=0.01)  # exp(-1)=.368, exp(-4)=.018
    assert keep_all.nnz == 4
    strong = gaussian_kernel_adjacency(d, sigma=1.0, threshold=0.1)
    assert strong.nnz == 2 and strong[0, 2] == 0 and strong[0, 1] == pytest.approx(np.exp(-1))


def test_gaussian_sparse_input_keeps_stored_zero_distance():
    # a stored 0 is an edge of length 0 (a sensor to itself, or two at one spot): weight 1
    dist = sp.csr_array((np.array([0.0, 3.0]), (np.array([0, 0]), np.array([0, 1]))), shape=(2, 2))
    a = gaussian_kernel_adjacency(dist, sigma=3.0, threshold=0.0)
    np.testing.assert_allclose(a.toarray(), [[1, np.exp(-1)], [0, 0]], rtol=1e-6)


def test_gaussian_bad_inputs():
    with pytest.raises(DataError, match=">= 0"):
        gaussian_kernel_adjacency(np.array([[0, -1.0], [1, 0]]))
    with pytest.raises(DataError, match="square"):
        gaussian_kernel_adjacency(np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="sigma"):
        gaussian_kernel_adjacency(np.zeros((2, 2)), sigma=0.0)
    with pytest.raises(ConfigError, match="threshold"):
        gaussian_kernel_adjacency(np.zeros((2, 2)), threshold=1.5)


# -------------------------------------------------------------------- distance table
def test_distance_table_string_and_integer_ids():
    nodes = ["717447", "717446", "773869"]
    df = pd.DataFrame({"from": [717447, 717446, 773869, 717447], "to": [717446, 773869, 717447, 717447],
                       "cost": [120.5, 300.0, 80.0, 0.0]})
    m = distance_table_to_matrix(df, nodes)
    assert m.format == "csr" and m.shape == (3, 3)
    dense = np.full((3, 3), np.inf)
    dense[0, 1], dense[1, 2], dense[2, 0], dense[0, 0] = 120.5, 300.0, 80.0, 0.0
    got = np.full((3, 3), np.inf)
    coo = m.tocoo()
    got[coo.row, coo.col] = coo.data
    np.testing.assert_allclose(got, dense)  # the zero self-distance is kept as an edge
    as_str = df.astype({"from": str, "to": str})
    assert (distance_table_to_matrix(as_str, nodes) != m).nnz == 0


def test_distance_table_other_column_names_and_duplicates():
    df = pd.DataFrame({"From": ["a", "a"], "To": ["b", "b"], "distance": [5.0, 3.0]})
    m = distance_table_to_matrix(df, ["a", "b"])
    assert m.nnz == 1 and m[0, 1] == 3.0  # the shorter of two routes


def test_distance_table_unknown_ids_named_with_file():
    df = pd.DataFrame({"from": [1, 2, 99], "to": [2, 77, 1], "cost": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError) as err:
        distance_table_to_matrix(df, ["1", "2"], path="dist/distances_la.csv")
    msg = str(err.value)
    assert "distances_la.csv" in msg and "'77'" in msg and "'99'" in msg and "not nodes" in msg


def test_distance_table_bad_cells():
    with pytest.raises(DataError, match="row 2.*expected a number"):
        distance_table_to_matrix(pd.DataFrame({"from": [1, 2], "to": [2, 1], "cost": ["1.0", "far"]}), ["1", "2"])
    with pytest.raises(DataError, match="negative"):
        distance_table_to_matrix(pd.DataFrame({"from": [1], "to": [2], "cost": [-4.0]}), ["1", "2"])
    with pytest.raises(DataError, match="columns from, to, cost"):
        distance_table_to_matrix(pd.DataFrame({"a": [1], "b": [2], "c": [3], "d": [4]}), ["1", "2"])


# ----------------------------------------------------------------------------- knn
def test_knn_matches_brute_force(rng):
    n, k = 300, 6
    coords = random_coords(rng, n)
    a = knn_adjacency(coords, k, sigma=4.0)
    assert a.format == "csr" and a.dtype == np.float32 and a.shape == (n, n)
    assert a.diagonal().sum() == 0  # no self loops
    assert np.all(np.diff(a.indptr) == k)
    d = haversine_km(coords, coords)  # (n, n) brute force
    np.fill_diagonal(d, np.inf)
    expect = np.argsort(d, axis=1)[:, :k]
    for i in range(n):
        row = a.indices[a.indptr[i]:a.indptr[i + 1]]
        assert set(row) == set(expect[i]), f"node {i}"
        w = a.data[a.indptr[i]:a.indptr[i + 1]]
        np.testing.assert_allclose(w, np.maximum(np.exp(-(d[i, row] / 4.0) ** 2), MIN_KNN_WEIGHT), rtol=1e-4)


def test_knn_default_sigma_gives_usable_weights(rng):
    a = knn_adjacency(random_coords(rng, 500), 8)
    assert 0.1 < np.median(a.data) < 0.9 and a.data.max() <= 1.0 and a.data.min() > 0


def test_knn_duplicated_coordinates():
    # sensors 0/1 and 3/4 stand at the same spot (two directions of one road)
    coords = np.array([[34.0, -118.0], [34.0, -118.0], [34.01, -118.0], [34.05, -118.1], [34.05, -118.1],
                       [34.2, -118.3]])
    a = knn_adjacency(coords, 2)
    assert np.all(np.diff(a.indptr) == 2) and a.diagonal().sum() == 0
    assert np.isfinite(a.data).all()
    assert a[0, 1] == pytest.approx(1.0) and a[1, 0] == pytest.approx(1.0)
    assert a[3, 4] == pytest.approx(1.0) and a[4, 3] == pytest.approx(1.0)
    # all sensors at one spot: every weight is 1, still no self loops
    same = knn_adjacency(np.tile([[10.0, 20.0]], (5, 1)), 3)
    assert same.nnz == 15 and same.diagonal().sum() == 0 and np.all(same.data == 1)


def test_knn_bad_arguments(rng):
    coords = random_coords(rng, 5)
    with pytest.raises(ConfigError, match="k must be <= N - 1 = 4"):
        knn_adjacency(coords, 5)
    with pytest.raises(ConfigError, match=">= 1"):
        knn_adjacency(coords, 0)
    bad = coords.copy()
    bad[3, 0] = np.nan
    with pytest.raises(DataError, match=r"positions \[3\]"):
        knn_adjacency(bad, 2)


def test_knn_twenty_thousand_nodes_is_fast(rng):
    coords = random_coords(rng, 20_000, lat=(30, 40), lon=(-120, -110))
    t0 = time.perf_counter()
    a = knn_adjacency(coords, 8)
    assert time.perf_counter() - t0 < 10.0  # ~0.6 s; a dense N x N approach would need 3.2 GB
    assert a.nnz == 160_000 and a.diagonal().sum() == 0


# ---------------------------------------------------------------------- transforms
def _toy_directed():
    # 0 -> 1 (2.0), 1 -> 0 (1.0), 1 -> 2 (3.0), node 3 isolated
    return sp.csr_array((np.array([2.0, 1.0, 3.0]), (np.array([0, 1, 1]), np.array([1, 0, 2]))), shape=(4, 4))


def test_symmetrize_takes_elementwise_max():
    s = symmetrize(_toy_directed())
    expect = np.array([[0, 2, 0, 0], [2, 0, 3, 0], [0, 3, 0, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(s.toarray(), expect)
    assert s.dtype == np.float32 and s.format == "csr"


def test_add_self_loops_fills_only_missing_diagonal():
    a = sp.csr_array(np.array([[0.5, 1.0], [1.0, 0.0]]))
    out = add_self_loops(a)
    np.testing.assert_array_equal(out.toarray(), [[0.5, 1.0], [1.0, 1.0]])
    assert (add_self_loops(out) != out).nnz == 0  # idempotent


def test_normalize_rw_rows_sum_to_one_and_isolated_rows_stay_zero():
    p = normalize(_toy_directed(), "rw")
    sums = np.asarray(p.sum(axis=1)).ravel()
    np.testing.assert_allclose(sums, [1, 1, 0, 0], rtol=1e-6)
    assert np.isfinite(p.data).all()


def test_normalize_sym_matches_dense_formula(rng):
    a = symmetrize(knn_adjacency(random_coords(rng, 50), 4)).toarray().astype(np.float64)
    a[7, :] = a[:, 7] = 0  # an isolated node
    deg = a.sum(axis=1)
    dinv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    expect = dinv[:, None] * a * dinv[None, :]
    got = normalize(a, "sym")
    np.testing.assert_allclose(got.toarray(), expect, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(got.toarray(), got.toarray().T, atol=1e-7)
    with pytest.raises(ConfigError, match="'sym' or 'rw'"):
        normalize(a, "laplacian")


def test_transition_matrices_forward_and_backward():
    a = _toy_directed()
    fwd, bwd = transition_matrices(a)
    np.testing.assert_allclose(fwd.toarray(), [[0, 1, 0, 0], [0.25, 0, 0.75, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    # backward: rows of A^T (in-edges) normalised
    np.testing.assert_allclose(bwd.toarray(), [[0, 1, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]])
    assert fwd.dtype == bwd.dtype == np.float32


def test_to_torch_sparse_matmul_matches_scipy(rng):
    import torch

    a = knn_adjacency(random_coords(rng, 40), 3)
    x = rng.normal(size=(40, 5)).astype(np.float32)
    expect = a @ x
    for layout in ("coo", "csr"):
        t = to_torch_sparse(a, layout)
        assert t.shape == (40, 40) and t.dtype == torch.float32
        np.testing.assert_allclose((t @ torch.from_numpy(x)).numpy(), expect, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------- build_adjacency
def test_build_adjacency_methods(rng):
    coords = random_coords(rng, 6)
    file_adj = np.zeros((6, 6), dtype=np.float32)
    file_adj[0, 1] = 0.5
    data = make_data(6, coords=coords, adjacency=file_adj)
    got = build_adjacency(data, GraphConfig(method="file"))
    assert got.format == "csr" and got[0, 1] == 0.5 and got[1, 0] == 0.5  # symmetrised
    assert build_adjacency(data, GraphConfig(method="file", symmetric=False))[1, 0] == 0
    assert build_adjacency(data, GraphConfig(method="auto")).nnz == 2  # the loaded matrix wins
    assert build_adjacency(data, GraphConfig(method="none")) is None

    knn = build_adjacency(data, GraphConfig(method="knn", k=2, symmetric=False))
    assert np.all(np.diff(knn.indptr) == 2)
    sym = build_adjacency(data, GraphConfig(method="knn", k=2))
    assert (sym != sym.T).nnz == 0

    dist = pd.DataFrame({"from": ["s0", "s1"], "to": ["s1", "s2"], "cost": [100.0, 200.0]})
    gauss = build_adjacency(data, GraphConfig(method="gaussian", sigma=200.0, threshold=0.0), distances=dist)
    assert gauss[0, 1] == pytest.approx(np.exp(-0.25)) and gauss[1, 0] == pytest.approx(np.exp(-0.25))


def test_build_adjacency_auto_fallbacks(rng):
    bare = make_data(5)
    assert build_adjacency(bare, GraphConfig()) is None
    dist = pd.DataFrame({"from": ["s0"], "to": ["s1"], "cost": [1.0]})
    with_coords = make_data(5, coords=random_coords(rng, 5))
    assert build_adjacency(with_coords, GraphConfig(), distances=dist).nnz == 2  # gaussian before knn
    with pytest.warns(UserWarning, match="using k = 4"):
        knn = build_adjacency(with_coords, GraphConfig(k=8, symmetric=False))  # knn, k capped at N - 1
    assert knn.nnz == 20


def test_build_adjacency_errors_name_the_fix():
    bare = make_data(5)
    with pytest.raises(ConfigError, match="data.locations"):
        build_adjacency(bare, GraphConfig(method="knn"))
    with pytest.raises(ConfigError, match="data.distances"):
        build_adjacency(bare, GraphConfig(method="gaussian"))
    with pytest.raises(ConfigError, match="data.adjacency"):
        build_adjacency(bare, GraphConfig(method="file"))
    with pytest.raises(ConfigError, match="not one of"):
        build_adjacency(bare, GraphConfig(method="delaunay"))
    coords = np.zeros((5, 2))
    coords[2] = [95.0, 0.0]
    with pytest.raises(DataError, match=r"node ids \['s2'\]"):
        build_adjacency(make_data(5, coords=coords), GraphConfig(method="knn", k=2))


# ------------------------------------------------------------------ real: Los-loop
def test_los_loop_knn_graph(los_loop_dir):
    loc = pd.read_csv(los_loop_dir / "graph_sensor_locations.csv")
    coords = loc[["latitude", "longitude"]].to_numpy()  # (207, 2)
    n = len(loc)
    data = make_data(n, coords=coords)
    a = build_adjacency(data, GraphConfig(method="knn", k=8))
    assert a.shape == (n, n) and a.dtype == np.float32
    assert a.diagonal().sum() == 0 and (a != a.T).nnz == 0  # no self loops, undirected
    assert np.all(np.diff(a.indptr) >= 8)  # symmetrising only adds edges
    assert 0 < a.data.min() and a.data.max() <= 1
    assert connected_components(a)[0] == 1  # the LA freeway network is one piece
    r, c = a.nonzero()
    d = haversine_km(coords, coords)[r, c]
    assert d.max() < 10.0  # neighbours are local (the network spans ~35 km)

    # most sensors' nearest neighbour is also adjacent in the published road graph
    road = np.loadtxt(los_loop_dir / "los_adj.csv", delimiter=",")
    nn = knn_adjacency(coords, 1)
    r1, c1 = nn.nonzero()
    assert ((road[r1, c1] > 0) | (road[c1, r1] > 0)).mean() > 0.75

    rw = normalize(a, "rw")
    np.testing.assert_allclose(np.asarray(rw.sum(axis=1)).ravel(), 1.0, rtol=1e-5)


def _ring(n: int) -> sp.csr_matrix:
    i = np.arange(n)
    return sp.csr_matrix((np.ones(n, np.float32), (i, (i + 1) % n)), shape=(n, n))  # one direction only


def test_neighbourhood_sample_returns_k_connected_nodes():
    g = _ring(200)
    rng = np.random.default_rng(0)
    idx = neighbourhood_sample(g, 50, rng)
    assert len(idx) == 50 and len(np.unique(idx)) == 50 and np.all(np.diff(idx) > 0)
    sym = (g + g.T).tocsr()
    n_comp, _ = connected_components(sym[idx][:, idx], directed=False)
    assert n_comp == 1  # one breadth-first neighbourhood (edges count in both directions)
    assert len(neighbourhood_sample(g, 500, rng)) == 200  # capped at N
    two = sp.block_diag([_ring(10), _ring(10)]).tocsr()  # two components: growth restarts in the other one
    both = neighbourhood_sample(two, 15, rng)
    assert len(both) == 15 and (both < 10).any() and (both >= 10).any()
    with pytest.raises(ConfigError, match="k must be >= 1"):
        neighbourhood_sample(g, 0, rng)


def test_strongest_neighbours_hand_case():
    from stkd.data.graph import strongest_neighbours

    a = np.array([[5.0, 1.0, 3.0, 0.0],   # self loop ignored; 2 (3.0) before 1 (1.0)
                  [2.0, 0.0, 2.0, 4.0],   # 3 first; the tie 0/2 keeps the lower index
                  [0.0, 0.0, 0.0, 0.0],   # no edge: padded with itself at weight 0
                  [0.0, 0.0, 7.0, 0.0]], dtype=np.float32)  # one edge
    index, weight = strongest_neighbours(sp.csr_array(a), 2)
    np.testing.assert_array_equal(index, [[2, 1], [3, 0], [2, 2], [2, 3]])
    np.testing.assert_allclose(weight, [[0.75, 0.25], [4 / 6, 2 / 6], [0, 0], [1, 0]], rtol=1e-6)
    dense_index, dense_weight = strongest_neighbours(a, 2)  # dense input gives the same
    np.testing.assert_array_equal(dense_index, index)
    np.testing.assert_allclose(dense_weight, weight)
    with pytest.raises(ConfigError, match="k must be >= 1"):
        strongest_neighbours(a, 0)
