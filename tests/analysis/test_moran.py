"""Moran's I and LISA against fields with known spatial structure."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from stkd.analysis.spatial import (
    global_moran,
    knn_weights,
    local_morans_i,
    morans_i,
    row_standardize,
    weights_matrix,
)


def test_tiny_path_graph_matches_hand_computation():
    # path 0-1-2-3, values 1..4: z = (-1.5, -0.5, 0.5, 1.5), z'z = 5;
    # row-standardised W: row 0 -> {1: 1}, row 1 -> {0: .5, 2: .5}, row 2 -> {1: .5, 3: .5}, row 3 -> {2: 1}
    # z'Wz = 0.75 + 0.25 + 0.25 + 0.75 = 2, N / S0 = 4 / 4, so I = 2 / 5 = 0.4; E[I] = -1/3
    W = sp.csr_array(np.array([[0, 1, 0, 0], [1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0]], dtype=float))
    r = morans_i(np.array([1.0, 2.0, 3.0, 4.0]), W)
    assert r["I"] == pytest.approx(0.4)
    assert r["expected"] == pytest.approx(-1 / 3)
    assert r["n"] == 4


def test_checkerboard_is_negative_and_smooth_field_positive(grid):
    adjacency, _ = grid
    W = adjacency(6, 6)
    checker = np.array([(r + c) % 2 for r in range(6) for c in range(6)], dtype=float)
    smooth = np.array([r + c for r in range(6) for c in range(6)], dtype=float)
    ci = morans_i(checker, W, permutations=199, seed=0)
    si = morans_i(smooth, W, permutations=199, seed=0)
    assert ci["I"] == pytest.approx(-1.0)  # every neighbour differs: perfect negative autocorrelation
    assert si["I"] > 0.8
    assert ci["p_sim"] == pytest.approx(1 / 200) and si["p_sim"] == pytest.approx(1 / 200)
    assert ci["z"] < -5 and si["z"] > 5


def test_random_field_is_not_significant_and_seeded(grid, rng):
    adjacency, _ = grid
    W = adjacency(8, 8)
    x = rng.standard_normal(64)
    a = morans_i(x, W, permutations=199, seed=3)
    b = morans_i(x, W, permutations=199, seed=3)
    assert a["p_sim"] == b["p_sim"] and a["p_sim"] > 0.05
    assert abs(a["I"] - a["expected"]) < 0.2


def test_vectorised_over_time_equals_step_by_step_and_handles_missing(grid, rng):
    adjacency, _ = grid
    W = adjacency(5, 5)
    X = rng.standard_normal((6, 25))
    X[2, [0, 7, 12]] = np.nan
    I = morans_i(X, W)["I"]
    for t in range(6):
        assert I[t] == pytest.approx(morans_i(X[t], W)["I"])
    # a missing node is left out: same as Moran's I on the sub-graph of observed nodes
    keep = np.flatnonzero(~np.isnan(X[2]))
    sub = W.toarray()[np.ix_(keep, keep)]
    assert I[2] == pytest.approx(morans_i(X[2, keep], sp.csr_array(sub))["I"])


def test_global_moran_summary_over_time(grid, rng):
    import pandas as pd

    adjacency, _ = grid
    W = adjacency(5, 5)
    smooth = np.array([r + c for r in range(5) for c in range(5)], dtype=float)
    X = smooth[None, :] + 0.5 * rng.standard_normal((50, 25))
    index = pd.date_range("2024-01-01", periods=50, freq="h")
    g = global_moran(X, index, W, permutations=49, seed=0)
    assert g["mean"] > 0.5 and g["share_significant_positive"] > 0.9
    assert g["expected"] == pytest.approx(-1 / 24)
    assert g["steps"] == 50 and g["of_node_means"]["I"] > 0.5


def test_lisa_flags_a_planted_hot_cluster(grid, rng):
    adjacency, _ = grid
    W = adjacency(10, 10)
    x = rng.standard_normal(100)
    hot = [r * 10 + c for r in range(2, 5) for c in range(2, 5)]  # a 3 x 3 block
    x[hot] += 6.0
    res = local_morans_i(x, W, permutations=999, seed=0, nodes=[str(i) for i in range(100)])
    hot_ids = {int(s["node"]) for s in res["hot_spots"]}
    assert 33 in hot_ids  # the centre of the block
    assert len(hot_ids & set(hot)) >= 5
    assert hot_ids <= set(hot) | {i for h in hot for i in (h - 10, h + 10, h - 1, h + 1)}
    assert not {int(s["node"]) for s in res["cold_spots"]} & set(hot)
    assert res["quadrant"][33] == 1 and res["p_sim"][33] < 0.01


def test_lisa_skips_missing_nodes_and_reproduces_with_seed(grid, rng):
    adjacency, _ = grid
    W = adjacency(4, 4)
    x = rng.standard_normal(16)
    x[5] = np.nan
    a = local_morans_i(x, W, permutations=99, seed=1)
    b = local_morans_i(x, W, permutations=99, seed=1)
    assert np.isnan(a["I"][5]) and np.isnan(a["p_sim"][5])
    np.testing.assert_array_equal(a["p_sim"], b["p_sim"])
    # LISA values sum to N * global I (Anselin 1995) over the observed nodes
    keep = np.flatnonzero(~np.isnan(x))
    g = morans_i(x[keep], sp.csr_array(W.toarray()[np.ix_(keep, keep)]))["I"]
    assert np.nansum(a["I"]) == pytest.approx(len(keep) * g)


def test_weights_from_adjacency_or_knn(grid):
    adjacency, coords = grid
    A = adjacency(3, 3) + sp.eye_array(9)  # self loops are dropped
    W, src = weights_matrix(A, None)
    assert "adjacency" in src and W.diagonal().sum() == 0
    W, src = weights_matrix(None, coords(3, 3), k=4)
    assert "nearest" in src and (np.diff(W.indptr) == 4).all()
    assert weights_matrix(None, None)[0] is None
    R = row_standardize(knn_weights(coords(3, 3), 2))
    np.testing.assert_allclose(R.sum(axis=1), 1.0)
