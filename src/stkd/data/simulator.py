"""``builtin: synthetic-traffic``: a seeded road-network speed simulator with labelled incidents.

Why a simulator: real loop-detector sets are small (hundreds of sensors), their incidents are not
labelled, and they cannot be scaled to test memory or speed. This one builds a road network of any
size (tens to 20,000+ sensors), drives it with daily and weekly demand, lets congestion spill back
upstream with a delay, injects incidents (returned as ground-truth events), adds sensor noise and
dropouts, and returns an :class:`~stkd.data.container.STData` like any loader does.

The model, step by step (``dt`` is ``cfg.freq``):

1. **Network** (:func:`build_road_network`): a jittered arterial grid around a city centre plus
   highways that cross the area, each a chain of sensors per carriageway (two directions). Edges go
   from an upstream sensor to the sensor traffic flows to next; arterial streets are two-way, ramps
   link highways and streets. Weights are a Gaussian kernel of the edge length. Neighbours come from
   a k-d tree; nothing is ``N x N`` dense.
2. **Demand** (:func:`demand_profile`): a daytime plateau plus a morning and an evening peak on
   weekdays (inbound highway carriageways load the morning, outbound ones the evening), a flatter
   midday peak at weekends, per-sensor peak sensitivity (higher near the centre), a per-day factor
   and slow AR(1) fluctuations.
3. **Local congestion** in ``[0, 1]`` rises once demand nears a sensor's capacity; incidents add a
   congestion pulse at their origin sensor (onset, hold, linear recovery).
4. **Spillback** (:func:`propagate_step`): each step a sensor's congestion is the larger of its own
   and ``share`` times the weighted mean congestion of its downstream neighbours ``delay`` steps ago,
   so a queue grows backwards one hop per ``delay`` steps and fades with distance.
5. **Speed** (mph) falls gently with flow from a per-sensor free-flow speed (55-70) and towards a jam
   speed with congestion; Gaussian sensor noise; clipped to ``[3, 80]``.
6. **Dropouts**: isolated missing readings and multi-step outages become NaN with ``mask`` False.

Everything is drawn from ``np.random.default_rng(cfg.seed)`` in a fixed order: the same config gives
the same output. Memory is the ``[T, N, 1]`` float32 result and its mask plus ``O(N)`` work arrays:
the time loop carries only a ring buffer of the last ``delay`` congestion states.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.spatial import cKDTree

from stkd.config import SimulatorConfig
from stkd.data.container import STData
from stkd.errors import ConfigError

# A city centre for the coordinates (Los Angeles, the home of METR-LA); any point would do.
CITY_CENTRE = (34.05, -118.25)  # (lat, lon) in degrees
KM_PER_DEG_LAT = 111.32

# Physics, in real units so that a change of ``cfg.freq`` keeps the same traffic.
SPILLBACK_MINUTES = 10.0  # time for a queue to grow back by one sensor
SPILLBACK_SHARE = 0.9  # share of downstream congestion an upstream sensor inherits per hop
DEMAND_MEMORY_MINUTES = 30.0  # correlation time of the AR(1) demand fluctuations
DEMAND_NOISE = 0.06  # relative std of those fluctuations
INCIDENT_MINUTES = (15.0, 90.0)  # range of incident durations (onset to full recovery)
OUTAGE_MINUTES = (30.0, 360.0)  # range of sensor outage durations
SPEED_CLIP = (3.0, 80.0)  # mph

# Day-of-week weights (Monday first): morning peak, evening peak, weekend midday peak, daytime level.
AM_BY_DAY = np.array([1.0, 1.0, 1.0, 1.0, 0.9, 0.12, 0.08], dtype=np.float32)
PM_BY_DAY = np.array([0.95, 1.0, 1.0, 1.05, 1.1, 0.12, 0.08], dtype=np.float32)
MIDDAY_BY_DAY = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.85], dtype=np.float32)
DAYTIME_BY_DAY = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.85, 0.75], dtype=np.float32)
PM_SHIFT_BY_DAY = np.array([0.0, 0.0, 0.0, 0.0, -0.5, 0.0, 0.0], dtype=np.float32)  # Friday's rush starts earlier (hours)


# ============================================================================ network
@dataclass
class RoadNetwork:
    """A road network of sensors.

    Attributes:
        xy: ``[N, 2]`` positions in km east and north of the centre.
        coords: ``[N, 2]`` (lat, lon) in degrees.
        adjacency: ``[N, N]`` directed CSR float32; ``A[i, j] > 0`` when traffic flows from sensor i
            (upstream) to sensor j (downstream); the weight is a Gaussian kernel of the distance.
        road: ``[N]`` ``"highway"`` or ``"arterial"``.
        inbound: ``[N]`` True where the direction of travel points towards the centre (highways).
        heading: ``[N]`` direction of travel in degrees clockwise from north (NaN on two-way streets).
    """

    xy: np.ndarray
    coords: np.ndarray
    adjacency: sp.csr_matrix
    road: np.ndarray
    inbound: np.ndarray
    heading: np.ndarray

    @property
    def num_nodes(self) -> int:
        return int(self.xy.shape[0])


def _network_sizes(n: int) -> tuple[float, int, int, int]:
    """Half-width of the area (km), highway count, sensors per carriageway, arterial sensors.

    The area grows like ``sqrt(n)`` so sensor spacing stays about 0.5-0.8 km at any size; about 40%
    of the sensors sit on highways.
    """
    half = 0.3 * np.sqrt(n) + 1.0
    n_highways = max(1, int(round(np.sqrt(n) / 6.0)))
    per_carriageway = max(2, int(0.4 * n) // (2 * n_highways))
    while n_highways > 1 and 2 * n_highways * per_carriageway > n - 4:
        n_highways -= 1
    n_arterial = n - 2 * n_highways * per_carriageway
    if n_arterial < 4:
        raise ConfigError(f"data.simulator.nodes: {n} is too small for a road network; use at least 16")
    return half, n_highways, per_carriageway, n_arterial


def _highways(rng: np.random.Generator, half: float, n_highways: int, per_lane: int):
    """Sensors on highways that cross the area, two carriageways each.

    Returns positions ``[H, 2]``, directed edges (upstream, downstream) and per-sensor heading
    vectors. Highways fan out at spread angles through points near the centre and bend gently.
    """
    xy: list[np.ndarray] = []  # [M, 2] positions per carriageway
    edges, direction = [], []
    s = np.linspace(-half, half, per_lane)  # [M] distance along the highway
    for h in range(n_highways):
        angle = np.pi * (h + rng.uniform(-0.3, 0.3)) / n_highways
        axis = np.array([np.cos(angle), np.sin(angle)])
        normal = np.array([-axis[1], axis[0]])
        offset = rng.uniform(-0.35, 0.35) * half
        bend = rng.uniform(-0.08, 0.08) * half * np.sin(np.pi * s / half + rng.uniform(0, np.pi))
        centre_line = s[:, None] * axis + (offset + bend)[:, None] * normal  # [M, 2]
        tangent = np.gradient(centre_line, axis=0)
        tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
        for sign in (1.0, -1.0):  # the two carriageways, 30 m apart, opposite directions
            first = sum(len(p) for p in xy)
            lane = centre_line + sign * 0.015 * np.c_[-tangent[:, 1], tangent[:, 0]]
            order = np.arange(per_lane) if sign > 0 else np.arange(per_lane)[::-1]
            ids = first + np.arange(per_lane)
            xy.append(lane)
            direction.append(sign * tangent)
            up, down = ids[order[:-1]], ids[order[1:]]
            edges.append(np.c_[up, down])
    return np.concatenate(xy), np.concatenate(edges), np.concatenate(direction)


def _arterials(rng: np.random.Generator, half: float, n: int):
    """A jittered grid of two-way street sensors filling the square; edges to the nearest streets."""
    side = int(np.ceil(np.sqrt(n)))
    spacing = 2 * half / side
    g = (np.arange(side) + 0.5) * spacing - half
    grid = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)  # [side^2, 2]
    keep = np.sort(rng.choice(len(grid), size=n, replace=False))
    xy = grid[keep] + rng.uniform(-0.25, 0.25, size=(n, 2)) * spacing
    k = min(5, n)
    dist, idx = cKDTree(xy).query(xy, k=k)  # [n, k], column 0 is the point itself
    src = np.repeat(np.arange(n), k - 1)
    dst = idx[:, 1:].ravel()
    near = dist[:, 1:].ravel() < 1.6 * spacing
    pairs = np.c_[src[near], dst[near]]
    pairs = np.concatenate([pairs, pairs[:, ::-1]])  # two-way streets
    return xy, pairs, spacing


def _ramps(highway_xy: np.ndarray, arterial_xy: np.ndarray, spacing: float, every: int = 4):
    """Off-ramps (highway -> street) and on-ramps (street -> highway) at every ``every``-th sensor."""
    idx_h = np.arange(0, len(highway_xy), every)
    dist, idx_a = cKDTree(arterial_xy).query(highway_xy[idx_h], k=1)
    close = dist < 0.8 * spacing
    h, a = idx_h[close], idx_a[close] + len(highway_xy)
    return np.concatenate([np.c_[h, a], np.c_[a, h]])


def _to_latlon(xy: np.ndarray) -> np.ndarray:
    """Local km offsets to (lat, lon) degrees (equirectangular; fine over a city)."""
    lat0, lon0 = CITY_CENTRE
    lat = lat0 + xy[:, 1] / KM_PER_DEG_LAT
    lon = lon0 + xy[:, 0] / (KM_PER_DEG_LAT * np.cos(np.radians(lat0)))
    return np.c_[lat, lon]


def build_road_network(n: int, rng: np.random.Generator) -> RoadNetwork:
    """A seeded road network of ``n`` sensors (see :class:`RoadNetwork`); sparse, ``O(n log n)``."""
    half, n_highways, per_lane, n_arterial = _network_sizes(n)
    hw_xy, hw_edges, hw_dir = _highways(rng, half, n_highways, per_lane)
    ar_xy, ar_edges, spacing = _arterials(rng, half, n_arterial)
    n_hw = len(hw_xy)
    edges = np.concatenate([hw_edges, ar_edges + n_hw, _ramps(hw_xy, ar_xy, spacing)])  # [E, 2]
    edges = np.unique(edges[edges[:, 0] != edges[:, 1]], axis=0)
    xy = np.concatenate([hw_xy, ar_xy])  # [N, 2]
    length = np.linalg.norm(xy[edges[:, 0]] - xy[edges[:, 1]], axis=1)  # [E] km
    sigma = float(np.median(length))
    ramp = (edges[:, 0] < n_hw) != (edges[:, 1] < n_hw)
    weight = np.exp(-((length / sigma) ** 2)) * np.where(ramp, 0.3, 1.0)
    adjacency = sp.csr_matrix((weight.astype(np.float32), (edges[:, 0], edges[:, 1])), shape=(n, n))
    adjacency.sort_indices()
    to_centre = -xy[:n_hw] / np.maximum(np.linalg.norm(xy[:n_hw], axis=1, keepdims=True), 1e-9)
    inbound = np.zeros(n, dtype=bool)
    inbound[:n_hw] = (hw_dir * to_centre).sum(axis=1) > 0
    heading = np.full(n, np.nan)
    heading[:n_hw] = np.degrees(np.arctan2(hw_dir[:, 0], hw_dir[:, 1])) % 360.0
    road = np.array(["highway"] * n_hw + ["arterial"] * n_arterial)
    return RoadNetwork(xy=xy, coords=_to_latlon(xy), adjacency=adjacency, road=road,
                       inbound=inbound, heading=heading)


# ============================================================================ dynamics
def downstream_operator(adjacency: sp.spmatrix) -> sp.csr_matrix:
    """Row-normalise the directed adjacency: ``(P @ c)[i]`` is the weighted mean of the congestion of
    the sensors downstream of ``i``. Sensors without a downstream neighbour get a zero row."""
    a = sp.csr_matrix(adjacency, dtype=np.float32)
    out = np.asarray(a.sum(axis=1)).ravel()  # [N]
    inv = np.divide(1.0, out, out=np.zeros_like(out), where=out > 0).astype(np.float32)
    return sp.csr_matrix(sp.diags(inv) @ a, dtype=np.float32)


def propagate_step(local: np.ndarray, past: np.ndarray, downstream: sp.spmatrix,
                   share: float = SPILLBACK_SHARE) -> np.ndarray:
    """One step of queue spillback: ``max(local, share * P @ past)``.

    Args:
        local: ``[N]`` congestion in [0, 1] each sensor would have on its own now.
        past: ``[N]`` total congestion ``delay`` steps ago.
        downstream: ``[N, N]`` from :func:`downstream_operator` (row i averages i's downstream sensors).
        share: how much of the downstream congestion spills back per hop (< 1, so it fades).

    The max (not a sum) keeps two-way streets from amplifying each other: a queue can make a sensor
    as congested as its downstream neighbour, times ``share``, but no more.
    """
    return np.maximum(local, share * (downstream @ past)).astype(np.float32, copy=False)


def propagate(local: np.ndarray, downstream: sp.spmatrix, delay: int,
              share: float = SPILLBACK_SHARE) -> np.ndarray:
    """Apply :func:`propagate_step` over a ``[T, N]`` series of local congestion; returns ``[T, N]``.

    The simulator runs the same recursion inside its own time loop (with a ring buffer instead of the
    full history); this form is for tests and analysis.
    """
    if delay < 1:
        raise ValueError(f"delay must be >= 1 step, got {delay}")
    local = np.asarray(local, dtype=np.float32)
    out = np.empty_like(local)  # [T, N]
    zeros = np.zeros(local.shape[1], dtype=np.float32)
    for t in range(local.shape[0]):
        out[t] = propagate_step(local[t], out[t - delay] if t >= delay else zeros, downstream, share)
    return out


def demand_profile(tod, dow, p: "SensorParams") -> np.ndarray:
    """Demand relative to capacity at time of day ``tod`` (hours) and day of week ``dow`` (Monday 0).

    Returns ``[N]``. A daytime plateau, a morning peak near 8:00 and an evening peak near 17:30 on
    weekdays (Friday's earlier), a broad midday peak at weekends, each shifted per sensor.
    """
    daytime = 1.0 / (1.0 + np.exp(-(tod - 6.0) / 0.7)) / (1.0 + np.exp((tod - 21.5) / 1.0))
    am = np.exp(-0.5 * ((tod - 7.9 - p.shift) / 1.0) ** 2)
    pm = np.exp(-0.5 * ((tod - 17.4 - PM_SHIFT_BY_DAY[dow] - p.shift) / 1.4) ** 2)
    mid = np.exp(-0.5 * ((tod - 13.5 - p.shift) / 2.8) ** 2)
    return (0.06 + p.base * DAYTIME_BY_DAY[dow] * daytime + p.am * AM_BY_DAY[dow] * am
            + p.pm * PM_BY_DAY[dow] * pm + p.mid * MIDDAY_BY_DAY[dow] * mid)


def congestion_from_demand(x: np.ndarray) -> np.ndarray:
    """Congestion in [0, 1] as demand ``x`` (relative to capacity) nears and passes capacity."""
    return np.clip((x - 0.86) / 0.42, 0.0, 1.0) ** 1.3


@dataclass
class SensorParams:
    """Per-sensor traffic parameters, all ``[N]``."""

    free_flow: np.ndarray  # mph at low demand
    jam: np.ndarray  # mph when fully congested
    base: np.ndarray  # daytime demand level
    am: np.ndarray  # morning peak amplitude
    pm: np.ndarray  # evening peak amplitude
    mid: np.ndarray  # weekend midday amplitude
    shift: np.ndarray  # hours the peaks come early (-) or late (+)


def draw_sensor_params(net: RoadNetwork, rng: np.random.Generator) -> SensorParams:
    """Free-flow and jam speeds, and demand amplitudes: sensitivity to peaks is log-normal and grows
    towards the centre; inbound highways load the morning, outbound the evening."""
    n = net.num_nodes
    highway = net.road == "highway"
    r = np.linalg.norm(net.xy, axis=1) / max(np.abs(net.xy).max(), 1e-9)
    sens = np.exp(rng.normal(0.0, 0.22, n)) * (0.78 + 0.42 * np.exp(-2.0 * r**2))  # peak sensitivity
    am_share = np.where(highway, np.where(net.inbound, 1.0, 0.55), rng.uniform(0.6, 1.0, n))
    pm_share = np.where(highway, np.where(net.inbound, 0.6, 1.0), rng.uniform(0.7, 1.0, n))
    params = dict(
        free_flow=np.where(highway, rng.uniform(62, 70, n), rng.uniform(55, 63, n)),
        jam=np.where(highway, rng.uniform(10, 20, n), rng.uniform(8, 16, n)),
        base=0.38 * sens,
        am=0.55 * am_share * sens,
        pm=0.55 * pm_share * sens,
        mid=0.32 * sens * rng.uniform(0.8, 1.2, n),
        shift=rng.normal(0.0, 0.25, n),
    )
    return SensorParams(**{k: v.astype(np.float32) for k, v in params.items()})  # float32: 2x faster loop


@dataclass
class Incidents:
    """Incidents as arrays of length K: onset step, duration in steps, origin sensor, severity."""

    start: np.ndarray
    steps: np.ndarray
    node: np.ndarray
    severity: np.ndarray

    def level(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Origins and congestion levels of the incidents active at step ``t``: full severity for
        the first 60% of the duration, then a linear recovery to zero."""
        age = t - self.start
        act = (age >= 0) & (age < self.steps)
        hold = 0.6 * self.steps[act]
        frac = np.clip((self.steps[act] - age[act]) / np.maximum(self.steps[act] - hold, 1), 0, 1)
        return self.node[act], self.severity[act] * frac


def draw_incidents(rng: np.random.Generator, cfg: SimulatorConfig, index: pd.DatetimeIndex,
                   n: int, step_minutes: float) -> Incidents:
    """Poisson number of incidents over the network; onsets more likely when traffic is heavy."""
    k = int(rng.poisson(cfg.incidents_per_day * cfg.days))
    tod = (index.hour + index.minute / 60.0).to_numpy()
    dow = index.day_of_week.to_numpy()
    typical = SensorParams(free_flow=np.ones(1), jam=np.ones(1), base=np.ones(1), am=np.ones(1),
                           pm=np.ones(1), mid=np.ones(1), shift=np.zeros(1))
    busy = demand_profile(tod, dow, typical)  # [T] network-typical demand
    p = (0.3 + busy) / (0.3 + busy).sum()
    lo, hi = (max(1, int(round(m / step_minutes))) for m in INCIDENT_MINUTES)
    return Incidents(
        start=np.sort(rng.choice(len(index), size=k, p=p)),
        steps=rng.integers(lo, hi + 1, size=k),
        node=rng.integers(0, n, size=k),
        severity=rng.uniform(0.5, 1.0, size=k),
    )


# ============================================================================ simulate
def _check(cfg: SimulatorConfig) -> pd.Timedelta:
    """Validate the config; return the step as a Timedelta."""
    try:
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(cfg.freq))
    except (ValueError, TypeError):
        raise ConfigError(f"data.simulator.freq: {cfg.freq!r} is not a frequency like 5min or 1h") from None
    if step <= pd.Timedelta(0) or step > pd.Timedelta("1h"):
        raise ConfigError(f"data.simulator.freq: must be positive and at most 1h, got {cfg.freq!r}")
    if cfg.nodes < 16:
        raise ConfigError(f"data.simulator.nodes: at least 16 sensors make a road network, got {cfg.nodes}")
    if cfg.days < 1:
        raise ConfigError(f"data.simulator.days: must be >= 1, got {cfg.days}")
    for key in ("missing_rate", "outage_rate"):
        if not 0.0 <= getattr(cfg, key) < 1.0:
            raise ConfigError(f"data.simulator.{key}: must lie in [0, 1), got {getattr(cfg, key)}")
    for key in ("incidents_per_day", "noise"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"data.simulator.{key}: must be >= 0, got {getattr(cfg, key)}")
    try:
        pd.Timestamp(cfg.start)
    except (ValueError, TypeError):
        raise ConfigError(f"data.simulator.start: {cfg.start!r} is not a timestamp") from None
    return step


def simulate_traffic(cfg: SimulatorConfig | None = None) -> STData:
    """Simulate speeds (mph) on a road network; see the module docstring for the model.

    Returns an :class:`STData` named ``synthetic-traffic`` with values ``[T, N, 1]`` (``speed``),
    NaN and ``mask`` False at dropouts, coordinates, the directed adjacency (``A[i, j] > 0``: traffic
    flows from i to j) and the incidents as ``events`` (``start, end, node, label, severity``; label
    1; ``start``/``end`` are the first and last step of the slowdown at the origin sensor).
    ``meta`` holds the road type per sensor and the spillback delay.
    """
    cfg = cfg or SimulatorConfig()
    step = _check(cfg)
    minutes = step / pd.Timedelta("1min")
    rng = np.random.default_rng(cfg.seed)
    index = pd.date_range(pd.Timestamp(cfg.start), periods=pd.Timedelta(days=cfg.days) // step, freq=step)
    T, N = len(index), cfg.nodes

    net = build_road_network(N, rng)
    p = draw_sensor_params(net, rng)
    incidents = draw_incidents(rng, cfg, index, N, minutes)
    # good and bad days: a network-wide factor (weather, events) times a per-sensor one
    day_factor = rng.normal(1.0, 0.025, (cfg.days, 1)) * rng.normal(1.0, 0.05, (cfg.days, N))  # [D, N]
    day_factor = day_factor.astype(np.float32)

    P = downstream_operator(net.adjacency)
    delay = max(1, int(round(SPILLBACK_MINUTES / minutes)))
    phi = float(np.exp(-minutes / DEMAND_MEMORY_MINUTES))
    ar_std = DEMAND_NOISE * (1.0 - phi**2) ** 0.5
    outage_lo, outage_hi = (max(2, int(round(m / minutes))) for m in OUTAGE_MINUTES)

    tod = (index.hour + index.minute / 60.0 + index.second / 3600.0).to_numpy(np.float32)  # [T]
    dow = index.day_of_week.to_numpy()  # [T]
    day = ((index - index[0]) // pd.Timedelta("1D")).to_numpy()  # [T]

    values = np.empty((T, N, 1), dtype=np.float32)  # [T, N, 1]
    mask = np.empty((T, N, 1), dtype=bool)  # [T, N, 1] built here: no [T, N] temporaries later
    ring = np.zeros((delay, N), dtype=np.float32)  # [d, N] congestion of the last `delay` steps
    fluct = rng.normal(0.0, DEMAND_NOISE, N).astype(np.float32)  # [N] AR(1) demand fluctuation
    outage_left = np.zeros(N, dtype=np.int64)  # [N] steps left in a running outage
    for t in range(T):
        fluct = phi * fluct + ar_std * rng.standard_normal(N, dtype=np.float32)
        x = demand_profile(tod[t], dow[t], p) * day_factor[day[t]] * (1.0 + fluct)  # [N]
        local = congestion_from_demand(x)  # [N]
        origins, level = incidents.level(t)
        if len(origins):  # an incident blocks lanes: worse when the road is busy
            np.maximum.at(local, origins, level * (0.55 + 0.45 * np.minimum(x[origins], 1.0)))
        c = propagate_step(local, ring[t % delay], P)  # [N]
        ring[t % delay] = c
        flow_speed = p.free_flow * (1.0 - 0.08 * np.minimum(x, 1.0))
        speed = (1.0 - c) * flow_speed + c * p.jam + cfg.noise * rng.standard_normal(N, dtype=np.float32)
        speed = np.clip(speed, *SPEED_CLIP)
        # dropouts: isolated readings and outages that last a while
        start = (outage_left == 0) & (rng.random(N, dtype=np.float32) < cfg.outage_rate)
        outage_left[start] = rng.integers(outage_lo, outage_hi + 1, size=int(start.sum()))
        missing = (rng.random(N, dtype=np.float32) < cfg.missing_rate) | (outage_left > 0)
        outage_left = np.maximum(outage_left - 1, 0)
        speed[missing] = np.nan
        values[t, :, 0] = speed
        mask[t, :, 0] = ~missing

    nodes = [f"S{i + 1:05d}" for i in range(N)]
    last = np.minimum(incidents.start + incidents.steps - 1, T - 1)
    events = pd.DataFrame({
        "start": index[incidents.start],
        "end": index[last],
        "node": pd.Series([nodes[i] for i in incidents.node], dtype="str"),
        "label": np.ones(len(incidents.start), dtype=np.int64),
        "severity": incidents.severity.round(3),
    })
    meta = {
        "simulator": dataclasses.asdict(cfg),
        "road": net.road.tolist(),
        "spillback_delay_steps": delay,
        "adjacency": "directed: A[i, j] > 0 when traffic flows from sensor i (upstream) to j (downstream)",
    }
    return STData(values=values, mask=mask, index=index, nodes=nodes, features=["speed"], targets=["speed"],
                  coords=net.coords, adjacency=net.adjacency, events=events, name="synthetic-traffic",
                  meta=meta)
