"""The spatio-temporal index against brute force: radius, bbox, kNN, time range, combined queries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stkd.data.container import STData
from stkd.data.graph import haversine_km, knn_adjacency, symmetrize
from stkd.data.index import SpatioTemporalIndex
from stkd.errors import DataError


def make_data(rng, n=400, T=288, lat=(33.8, 34.4), lon=(-118.7, -118.0), adjacency=True, tz=None):
    coords = np.c_[rng.uniform(*lat, n), rng.uniform(*lon, n)]  # (n, 2)
    values = rng.normal(60, 5, size=(T, n, 2)).astype(np.float32)
    values[rng.random(values.shape) < 0.05] = np.nan
    idx = pd.date_range("2024-03-01", periods=T, freq="5min", tz=tz)
    adj = symmetrize(knn_adjacency(coords, 4)) if adjacency else None
    return STData.from_values(values, idx, [f"n{i}" for i in range(n)], ["speed", "flow"],
                              coords=coords, adjacency=adj, name="random")


@pytest.fixture
def data(rng):
    return make_data(rng)


@pytest.fixture
def sti(data):
    return SpatioTemporalIndex(data)


def test_nodes_within_matches_brute_force(rng, data, sti):
    for _ in range(20):
        lat, lon = rng.uniform(33.7, 34.5), rng.uniform(-118.8, -117.9)
        radius = rng.uniform(0.5, 30.0)
        d = haversine_km([[lat, lon]], data.coords)[0]
        got = sti.nodes_within(lat, lon, radius)
        assert got.dtype == np.int64 and np.all(np.diff(got) > 0)
        np.testing.assert_array_equal(got, np.flatnonzero(d <= radius))
    assert sti.nodes_within(0.0, 0.0, 10.0).size == 0  # far away: empty, not an error


def test_nodes_in_bbox_matches_brute_force(rng, data, sti):
    c = data.coords
    for _ in range(20):
        la, lb = np.sort(rng.uniform(33.7, 34.5, 2))
        oa, ob = np.sort(rng.uniform(-118.8, -117.9, 2))
        expect = np.flatnonzero((c[:, 0] >= la) & (c[:, 0] <= lb) & (c[:, 1] >= oa) & (c[:, 1] <= ob))
        np.testing.assert_array_equal(sti.nodes_in_bbox(la, lb, oa, ob), expect)


def test_nodes_in_bbox_large_boxes_on_the_globe(rng):
    # world-wide sensors and boxes up to the whole globe: the circumscribing radius must never miss one
    n = 3000
    lat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))  # uniform on the sphere
    lon = rng.uniform(-180, 180, n)
    values = np.zeros((2, n, 1), dtype=np.float32)
    g = STData.from_values(values, pd.date_range("2024-01-01", periods=2, freq="1h"), [str(i) for i in range(n)],
                           ["x"], coords=np.c_[lat, lon])
    sti = SpatioTemporalIndex(g)
    for _ in range(30):
        la, lb = np.sort(rng.uniform(-90, 90, 2))
        oa, ob = rng.uniform(-180, 180, 2)  # oa > ob: crosses the antimeridian
        in_lon = ((lon >= oa) | (lon <= ob)) if oa > ob else ((lon >= oa) & (lon <= ob))
        expect = np.flatnonzero((lat >= la) & (lat <= lb) & in_lon)
        np.testing.assert_array_equal(sti.nodes_in_bbox(la, lb, oa, ob), expect)
    assert sti.nodes_in_bbox(-90, 90, -180, 180).size == n


def test_nearest_matches_brute_force(rng, data, sti):
    for _ in range(20):
        lat, lon = rng.uniform(33.7, 34.5), rng.uniform(-118.8, -117.9)
        k = int(rng.integers(1, 30))
        pos, dist = sti.nearest(lat, lon, k)
        d = haversine_km([[lat, lon]], data.coords)[0]
        np.testing.assert_array_equal(pos, np.argsort(d)[:k])
        np.testing.assert_allclose(dist, np.sort(d)[:k], rtol=1e-9, atol=1e-9)
    pos, _ = sti.nearest(34.0, -118.3, data.num_nodes)  # k = N is allowed
    assert sorted(pos) == list(range(data.num_nodes))


def test_time_slice_matches_brute_force(rng, data, sti):
    idx = data.index
    for _ in range(20):
        a, b = np.sort(rng.integers(0, len(idx), 2))
        # inclusive ends, also for timestamps that fall between steps
        start = idx[a] - pd.Timedelta(minutes=int(rng.integers(0, 5)))
        end = idx[b] + pd.Timedelta(minutes=int(rng.integers(0, 5)))
        ts = sti.time_slice(start, end)
        expect = np.flatnonzero((idx >= start) & (idx <= end))
        np.testing.assert_array_equal(np.arange(len(idx))[ts], expect)
    assert sti.time_slice(None, None) == slice(0, len(idx))
    assert sti.time_slice(str(idx[10]), str(idx[10])) == slice(10, 11)
    s = sti.time_slice("2030-01-01", None)
    assert s.stop <= s.start  # empty, reported by query
    with pytest.raises(DataError, match="after end"):
        sti.time_slice(idx[5], idx[4])
    with pytest.raises(DataError, match="not a timestamp"):
        sti.time_slice("yesterday-ish", None)


def test_time_slice_time_zones(rng):
    d = make_data(rng, n=10, T=24, adjacency=False, tz="America/Los_Angeles")
    sti = SpatioTemporalIndex(d)
    assert sti.time_slice("2024-03-01 00:10", "2024-03-01 00:20") == slice(2, 5)  # naive = local time
    with pytest.raises(DataError, match="time zone"):
        SpatioTemporalIndex(make_data(rng, n=10, T=24, adjacency=False)).time_slice(
            pd.Timestamp("2024-03-01", tz="UTC"), None)


def test_combined_query_returns_subset_with_adjacency_submatrix(rng, data, sti):
    lat, lon, radius = 34.1, -118.35, 15.0
    bbox = (33.9, 34.3, -118.5, -118.2)
    start, end = data.index[20], data.index[100]
    sub = sti.query(lat=lat, lon=lon, radius_km=radius, bbox=bbox, start=start, end=end)

    d = haversine_km([[lat, lon]], data.coords)[0]
    c = data.coords
    keep = np.flatnonzero((d <= radius) & (c[:, 0] >= bbox[0]) & (c[:, 0] <= bbox[1])
                          & (c[:, 1] >= bbox[2]) & (c[:, 1] <= bbox[3]))
    assert isinstance(sub, STData) and keep.size > 5
    assert sub.nodes == [data.nodes[i] for i in keep]
    assert list(sub.index) == list(data.index[20:101])
    np.testing.assert_array_equal(sub.values, data.values[20:101][:, keep])
    np.testing.assert_array_equal(sub.mask, data.mask[20:101][:, keep])
    np.testing.assert_array_equal(sub.coords, data.coords[keep])
    expect_adj = data.adjacency.toarray()[np.ix_(keep, keep)]
    got_adj = sub.adjacency.toarray() if sp.issparse(sub.adjacency) else np.asarray(sub.adjacency)
    np.testing.assert_array_equal(got_adj, expect_adj)
    assert got_adj.sum() > 0  # the sub-graph keeps edges between kept nodes


def test_query_k_among_other_filters(rng, data, sti):
    lat, lon = 34.0, -118.3
    bbox = (33.8, 34.4, -118.3, -118.0)  # only the eastern half
    sub = sti.query(lat=lat, lon=lon, k=7, bbox=bbox)
    c = data.coords
    cand = np.flatnonzero((c[:, 1] >= bbox[2]) & (c[:, 1] <= bbox[3]) & (c[:, 0] >= bbox[0]) & (c[:, 0] <= bbox[1]))
    d = haversine_km([[lat, lon]], c[cand])[0]
    expect = np.sort(cand[np.argsort(d)[:7]])
    assert sub.nodes == [data.nodes[i] for i in expect]
    assert sub.num_steps == data.num_steps

    only = sti.query(nodes=["n3", "n1", "n3"])
    assert only.nodes == ["n1", "n3"]  # data order, duplicates dropped
    near = sti.query(lat=lat, lon=lon, k=3)
    np.testing.assert_array_equal([data.nodes.index(n) for n in near.nodes], np.sort(sti.nearest(lat, lon, 3)[0]))


def test_query_empty_results_say_query_and_extent(data, sti):
    with pytest.raises(DataError) as err:
        sti.query(lat=51.5, lon=-0.12, radius_km=5.0)
    msg = str(err.value)
    assert "radius_km=5.0" in msg and "matched no nodes" in msg and "latitude [33.8" in msg
    with pytest.raises(DataError, match="matched no timestamps.*time 2024-03-01"):
        sti.query(start="2025-01-01")
    with pytest.raises(DataError, match="matched no nodes"):
        sti.query(bbox=(0, 1, 0, 1))
    with pytest.raises(DataError, match="only 0 nodes|matched no nodes"):
        sti.query(lat=34.0, lon=-118.3, k=2, bbox=(0, 1, 0, 1))


def test_query_bad_arguments(data, sti):
    with pytest.raises(DataError, match="give lat and lon"):
        sti.query(radius_km=3.0)
    with pytest.raises(DataError, match="give lat and lon"):
        sti.query(k=3)
    with pytest.raises(DataError, match="both lat and lon"):
        sti.query(lat=34.0, radius_km=3.0)
    with pytest.raises(DataError, match="without radius_km or k"):
        sti.query(lat=34.0, lon=-118.3)
    with pytest.raises(DataError, match="only 400 nodes exist"):
        sti.query(lat=34.0, lon=-118.3, k=401)
    with pytest.raises(DataError, match="only 2 nodes match"):
        sti.query(lat=34.0, lon=-118.3, k=3, nodes=["n1", "n2"])
    with pytest.raises(DataError, match=">= 1"):
        sti.nearest(34.0, -118.3, 0)
    with pytest.raises(DataError, match="radius_km must be"):
        sti.nodes_within(34.0, -118.3, -1.0)
    with pytest.raises(DataError, match="not a location"):
        sti.nodes_within(134.0, -118.3, 1.0)
    with pytest.raises(DataError, match="lat_min"):
        sti.nodes_in_bbox(34.2, 34.0, -118.5, -118.0)
    with pytest.raises(DataError, match="bbox must be"):
        sti.query(bbox=(34.0, 34.2))
    with pytest.raises(DataError, match=r"\['nope'\]"):
        sti.query(nodes=["n1", "nope"])


def test_index_needs_coordinates(rng):
    d = make_data(rng, n=5, T=4, adjacency=False)
    d.coords = None
    with pytest.raises(DataError, match="data.locations"):
        SpatioTemporalIndex(d)
