"""The synthetic-traffic simulator: contract, determinism, traffic statistics, spillback, incidents."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stkd.config import SimulatorConfig
from stkd.data.container import STData
from stkd.data.simulator import (
    build_road_network,
    downstream_operator,
    propagate,
    propagate_step,
    simulate_traffic,
)
from stkd.errors import ConfigError


@pytest.fixture(scope="module")
def week() -> STData:
    """One simulated week on a small network with many incidents (shared by the statistics tests)."""
    return simulate_traffic(SimulatorConfig(nodes=80, days=7, seed=3, incidents_per_day=12.0))


def _tod_hours(index: pd.DatetimeIndex) -> np.ndarray:
    return (index.hour + index.minute / 60.0).to_numpy()


# ------------------------------------------------------------------- contract
def test_contract_shapes_and_types(week):
    d = week
    spd = 288
    assert d.name == "synthetic-traffic"
    assert d.values.shape == (7 * spd, 80, 1) and d.values.dtype == np.float32
    assert d.mask.dtype == np.bool_ and np.array_equal(d.mask, ~np.isnan(d.values))
    assert d.features == ["speed"] and d.targets == ["speed"]
    assert d.nodes[0] == "S00001" and d.nodes[-1] == "S00080"
    assert d.index[0] == pd.Timestamp("2024-01-01") and d.freq == pd.Timedelta("5min")
    observed = d.values[d.mask]
    assert observed.min() >= 3.0 and observed.max() <= 80.0
    assert d.coords.shape == (80, 2)
    assert np.all(np.abs(d.coords[:, 0] - 34.05) < 1) and np.all(np.abs(d.coords[:, 1] + 118.25) < 1)
    assert list(d.events.columns[:4]) == ["start", "end", "node", "label"]
    assert (d.events["label"] == 1).all() and d.events["node"].isin(d.nodes).all()
    assert (d.events["start"] <= d.events["end"]).all()
    assert d.events["start"].min() >= d.index[0] and d.events["end"].max() <= d.index[-1]
    d.validate()  # the STData contract holds


def test_same_seed_same_data_other_seed_differs():
    cfg = SimulatorConfig(nodes=40, days=2, seed=11)
    a, b = simulate_traffic(cfg), simulate_traffic(cfg)
    assert np.array_equal(a.values, b.values, equal_nan=True)
    assert np.array_equal(a.coords, b.coords)
    assert (a.adjacency != b.adjacency).nnz == 0
    pd.testing.assert_frame_equal(a.events, b.events)
    c = simulate_traffic(SimulatorConfig(nodes=40, days=2, seed=12))
    assert not np.array_equal(a.values, c.values, equal_nan=True)


def test_other_frequency_keeps_physics():
    d = simulate_traffic(SimulatorConfig(nodes=30, days=2, freq="15min", seed=1))
    assert d.values.shape == (2 * 96, 30, 1) and d.freq_str == "15min"
    assert d.meta["spillback_delay_steps"] == 1  # 10 minutes rounds to one 15-minute step


@pytest.mark.parametrize("key, value", [("nodes", 3), ("days", 0), ("freq", "banana"),
                                        ("missing_rate", 1.5), ("noise", -1.0)])
def test_bad_config_is_a_config_error(key, value):
    with pytest.raises(ConfigError, match=f"simulator.{key}"):
        simulate_traffic(SimulatorConfig(**{key: value}))


# --------------------------------------------------------------------- missing
def test_isolated_missing_share_matches_rate():
    d = simulate_traffic(SimulatorConfig(nodes=60, days=2, missing_rate=0.05, outage_rate=0.0, seed=2))
    share = 1.0 - d.mask.mean()
    assert abs(share - 0.05) < 0.006  # 34,560 readings: std of the share is 0.0012


def test_outages_are_multi_step_runs():
    d = simulate_traffic(SimulatorConfig(nodes=40, days=3, missing_rate=0.0, outage_rate=0.002, seed=4))
    miss = ~d.mask[..., 0]  # [T, N]
    assert miss.any()
    # every outage lasts at least 30 minutes (6 steps): no isolated gaps when missing_rate is 0
    padded = np.vstack([np.zeros((1, miss.shape[1]), bool), miss, np.zeros((1, miss.shape[1]), bool)])
    edges = np.diff(padded.astype(np.int8), axis=0)  # +1 at a run start, -1 after its end
    starts, ends = np.nonzero(edges.T == 1), np.nonzero(edges.T == -1)
    lengths = ends[1] - starts[1]
    truncated = ends[1] == miss.shape[0]  # runs cut by the end of the series may be shorter
    assert lengths[~truncated].min() >= 6


# -------------------------------------------------------------------- patterns
def test_daily_periodicity(week):
    mean = np.nanmean(week.values[..., 0], axis=1)  # [T]
    spd = week.steps_per_day
    x = mean - mean.mean()
    acf_day = float(np.dot(x[:-spd], x[spd:]) / np.dot(x, x) * len(x) / (len(x) - spd))
    acf_half = float(np.dot(x[:-spd // 2], x[spd // 2:]) / np.dot(x, x) * len(x) / (len(x) - spd // 2))
    assert acf_day > 0.5
    assert acf_day > acf_half  # the peak is at one day, not any lag


def test_weekday_rush_slower_than_night_and_weekend(week):
    speed = np.nanmean(week.values[..., 0], axis=1)  # [T]
    tod, dow = _tod_hours(week.index), week.index.day_of_week.to_numpy()
    weekday, weekend = dow < 5, dow >= 5
    rush = ((tod >= 7.5) & (tod < 9)) | ((tod >= 16.5) & (tod < 18.5))
    night = (tod >= 1) & (tod < 4)
    assert speed[weekday & rush].mean() < speed[weekday & night].mean() - 5.0
    assert speed[weekend & rush].mean() > speed[weekday & rush].mean() + 3.0
    # weekends have a midday dip instead, flatter than the weekday peaks
    midday = (tod >= 12) & (tod < 15)
    assert speed[weekend & midday].mean() < speed[weekend & night].mean() - 1.0


def test_incidents_slow_their_origin(week):
    d = week
    speed = d.values[..., 0]  # [T, N]
    spd = d.steps_per_day
    pos = {n: i for i, n in enumerate(d.nodes)}
    assert len(d.events) >= 40  # Poisson(12 * 7)
    drops = []
    for ev in d.events.itertuples():
        i = pos[ev.node]
        a = d.index.get_loc(ev.start)
        b = d.index.get_loc(ev.end) + 1
        during = np.nanmean(speed[a:b, i]) if np.isfinite(speed[a:b, i]).any() else np.nan
        same_type = [k for k in range(-6, 7) if k and 0 <= a + k * spd and b + k * spd <= len(d.index)
                     and (d.index[a + k * spd].day_of_week < 5) == (ev.start.day_of_week < 5)]
        others = [np.nanmean(speed[a + k * spd:b + k * spd, i]) for k in same_type
                  if np.isfinite(speed[a + k * spd:b + k * spd, i]).any()]
        if np.isfinite(during) and others:
            drops.append(during - np.nanmedian(others))
    drops = np.asarray(drops)
    assert len(drops) >= 30
    assert np.median(drops) < -8.0  # mph
    assert (drops < 0).mean() > 0.85


# ----------------------------------------------------------------------- graph
def test_adjacency_is_sparse_directed_without_self_loops():
    n = 300
    net = build_road_network(n, np.random.default_rng(0))
    a = net.adjacency
    assert sp.issparse(a) and a.format == "csr" and a.dtype == np.float32 and a.shape == (n, n)
    assert a.diagonal().max() == 0.0
    assert 1.5 * n < a.nnz < 8 * n
    assert a.data.min() > 0 and a.data.max() <= 1.0
    assert (a != a.T).nnz > 0  # directed: highway carriageways run one way
    # each highway edge i -> j points along i's direction of travel
    hw = np.flatnonzero(net.road == "highway")
    coo = a.tocoo()
    on_hw = np.isin(coo.row, hw) & np.isin(coo.col, hw)
    i, j = coo.row[on_hw], coo.col[on_hw]
    heading = np.radians(net.heading[i])
    travel = np.c_[np.sin(heading), np.cos(heading)]  # (east, north)
    assert ((net.xy[j] - net.xy[i]) * travel).sum(axis=1).min() > 0
    # every sensor has a neighbour, and the graph is built from positions (neighbours are close)
    deg = np.diff(a.indptr) + np.diff(a.tocsc().indptr)
    assert deg.min() > 0
    assert np.linalg.norm(net.xy[coo.row] - net.xy[coo.col], axis=1).max() < 3.0  # km
    assert set(net.road) == {"highway", "arterial"}


def test_downstream_operator_rows_average():
    a = sp.csr_matrix(np.array([[0, 2, 2], [0, 0, 1], [0, 0, 0]], dtype=np.float32))
    p = downstream_operator(a).toarray()
    np.testing.assert_allclose(p, [[0, 0.5, 0.5], [0, 0, 1], [0, 0, 0]])


# ------------------------------------------------------------------ spillback
def test_congestion_spills_upstream_after_the_delay():
    # chain 0 -> 1 -> 2: traffic flows from 0 to 2, so 2 is the most downstream sensor
    a = sp.csr_matrix(([1.0, 1.0], ([0, 1], [1, 2])), shape=(3, 3), dtype=np.float32)
    p = downstream_operator(a)
    T, delay, t0 = 30, 3, 5
    local = np.zeros((T, 3), dtype=np.float32)
    local[t0:t0 + 10, 2] = 1.0  # a jam at the downstream end
    c = propagate(local, p, delay=delay, share=0.8)  # [T, 3]
    assert np.all(c[: t0 + delay, 1] == 0) and c[t0 + delay, 1] == pytest.approx(0.8)
    assert np.all(c[: t0 + 2 * delay, 0] == 0) and c[t0 + 2 * delay, 0] == pytest.approx(0.64)
    np.testing.assert_array_equal(c[:, 2], local[:, 2])  # nothing flows back downstream
    # after the jam clears the queue drains, one hop per delay
    assert np.all(c[t0 + 10 + 2 * delay:, :] == 0)


def test_propagate_step_is_pure():
    p = downstream_operator(sp.csr_matrix(([1.0], ([0], [1])), shape=(2, 2), dtype=np.float32))
    local = np.array([0.1, 0.0], dtype=np.float32)
    past = np.array([0.0, 1.0], dtype=np.float32)
    local0, past0 = local.copy(), past.copy()
    out = propagate_step(local, past, p, share=0.5)
    np.testing.assert_allclose(out, [0.5, 0.0])
    np.testing.assert_array_equal(local, local0)  # inputs untouched
    np.testing.assert_array_equal(past, past0)


def test_upstream_sensor_follows_incident_with_a_lag():
    """End to end: at an incident's origin the slowdown starts at onset; the sensor upstream on the
    same carriageway slows later (the queue reaches it after the spillback delay)."""
    d = simulate_traffic(SimulatorConfig(nodes=120, days=2, seed=5, incidents_per_day=30.0, noise=0.0,
                                         missing_rate=0.0, outage_rate=0.0))
    road = np.asarray(d.meta["road"])
    delay = d.meta["spillback_delay_steps"]
    csc = d.adjacency.tocsc()
    speed = d.values[..., 0]
    pos = {n: i for i, n in enumerate(d.nodes)}
    now, later = [], []
    for ev in d.events.itertuples():
        j = pos[ev.node]
        ups = [i for i in csc[:, j].indices if road[i] == road[j] == "highway"]
        a = d.index.get_loc(ev.start)
        if not ups or a < 2 or a + delay >= len(d.index):
            continue
        i = ups[0]
        if speed[a - 1, j] - speed[a, j] < 5:  # origin already jammed: nothing to see
            continue
        now.append(speed[a - 1, i] - speed[a, i])  # drop upstream at the onset
        later.append(speed[a - 1, i] - speed[a + delay, i])  # and once the queue has had time
    assert len(now) >= 8
    assert np.median(now) < 1.0 and np.median(later) > 5.0  # mph; other incidents and rush hours add noise


# ------------------------------------------------------------------------ size
def test_two_thousand_sensors():
    d = simulate_traffic(SimulatorConfig(nodes=2000, days=1, seed=0))
    assert d.values.shape == (288, 2000, 1)
    assert d.adjacency.nnz < 10 * 2000
    assert 0.0 < 1.0 - d.mask.mean() < 0.05
    assert len(set(d.nodes)) == 2000
