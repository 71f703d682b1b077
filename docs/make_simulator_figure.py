"""Draw docs/img/simulator_day.png: the default synthetic-traffic network, one weekday at four sensors
(one of them hit by an incident, one just upstream of it) and two weeks of the network mean speed.

Run: ``python docs/make_simulator_figure.py`` (a few seconds; no display needed).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from stkd.config import SimulatorConfig  # noqa: E402
from stkd.data.simulator import simulate_traffic  # noqa: E402

OUT = Path(__file__).resolve().parent / "img" / "simulator_day.png"


def pick_incident(data, road: np.ndarray) -> int:
    """The most severe daytime weekday incident at a highway sensor that has an upstream neighbour."""
    ev = data.events
    pos = {n: i for i, n in enumerate(data.nodes)}
    upstream_count = np.diff(data.adjacency.tocsc().indptr)  # [N] edges into each sensor
    origin = ev["node"].map(pos).to_numpy()
    hour = ev["start"].dt.hour + ev["start"].dt.minute / 60
    ok = np.array((ev["start"].dt.day_of_week < 5) & (hour > 6.5) & (hour < 19))
    ok &= (road[origin] == "highway") & (upstream_count[origin] > 0)
    ok &= (ev["start"].dt.normalize() == ev["end"].dt.normalize()).to_numpy()
    if not ok.any():
        ok = np.ones(len(ev), dtype=bool)
    return int(ev.index[ok][np.argmax(ev["severity"].to_numpy()[ok])])


def upstream_of(data, j: int, road: np.ndarray) -> int:
    """The sensor feeding ``j`` with the heaviest edge, preferring the same highway."""
    col = data.adjacency.tocsc()[:, j]
    rows, w = col.indices, col.data
    w = w * np.where(road[rows] == road[j], 1.0, 0.1)
    return int(rows[np.argmax(w)])


def main() -> None:
    cfg = SimulatorConfig()
    data = simulate_traffic(cfg)
    road = np.asarray(data.meta["road"])
    speed = data.values[..., 0]  # [T, N]
    spd = data.steps_per_day
    k = pick_incident(data, road)
    inc = data.events.loc[k]
    origin = data.nodes.index(inc["node"])
    up = upstream_of(data, origin, road)
    day = int((inc["start"].normalize() - data.index[0]) // np.timedelta64(1, "D"))
    day_slice = slice(day * spd, (day + 1) * spd)
    weekday_days = [d for d in range(cfg.days) if data.index[d * spd].day_of_week < 5 and d != day]
    typical = np.nanmedian(np.stack([speed[d * spd:(d + 1) * spd] for d in weekday_days]), axis=0)  # [spd, N]
    today = speed[day_slice]  # [spd, N]
    # a sensor with a heavy rush hour elsewhere and a quiet street, both away from the incident
    others = np.setdiff1d(np.arange(data.num_nodes), [origin, up])
    busy = others[np.argmin(np.nanmin(typical[:, others], axis=0))]
    quiet = others[(road[others] == "arterial")][np.argmax(np.nanmin(typical[:, others][:, road[others] == "arterial"], axis=0))]
    panels = [(origin, "incident origin"), (up, "upstream of it"), (busy, "heavy rush hour"), (quiet, "quiet street")]

    fig = plt.figure(figsize=(13, 8.5), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.4, 1])
    left, right = top.subfigures(1, 2, width_ratios=[1, 1.5])

    # map of the network
    ax = left.subplots()
    lat, lon = data.coords[:, 0], data.coords[:, 1]
    a = data.adjacency.tocoo()
    segs = np.stack([np.c_[lon[a.row], lat[a.row]], np.c_[lon[a.col], lat[a.col]]], axis=1)
    ax.add_collection(LineCollection(segs, colors="0.8", linewidths=0.6, zorder=1))
    hw = road == "highway"
    ax.scatter(lon[~hw], lat[~hw], s=8, c="tab:green", label="street sensor", zorder=2)
    ax.scatter(lon[hw], lat[hw], s=8, c="tab:blue", label="highway sensor", zorder=2)
    colors = ["tab:red", "tab:orange", "tab:purple", "tab:green"]
    offsets = [(-10, 10), (8, -16), (8, 8), (-52, 8)]  # keep the origin and upstream labels apart
    for (i, _what), c, off in zip(panels, colors, offsets):
        ax.scatter(lon[i], lat[i], s=120, facecolors="none", edgecolors=c, linewidths=2, zorder=3)
        ax.annotate(data.nodes[i], (lon[i], lat[i]), xytext=off, textcoords="offset points",
                    color=c, fontsize=9, weight="bold", zorder=4,
                    bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.8))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_aspect(1 / np.cos(np.radians(lat.mean())))
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"{data.num_nodes} sensors, {data.adjacency.nnz} directed edges", fontsize=10)

    # one weekday at four sensors
    axes = right.subplots(4, 1, sharex=True)
    hours = np.arange(spd) * 24 / spd
    s_h = inc["start"].hour + inc["start"].minute / 60
    e_h = inc["end"].hour + inc["end"].minute / 60 + 24 / spd
    for ax, (i, what), c in zip(axes, panels, colors):
        ax.plot(hours, typical[:, i], color="0.6", lw=1, ls="--", label="median of other weekdays")
        ax.plot(hours, today[:, i], color=c, lw=1.2, label="this day")
        if i in (origin, up):
            ax.axvspan(s_h, e_h, color="tab:red", alpha=0.12, label="incident (event label)")
        ax.set_ylim(0, 80)
        ax.set_ylabel("mph")
        ax.set_title(f"{data.nodes[i]} ({road[i]}): {what}", fontsize=9, loc="left")
    axes[0].legend(loc="lower left", fontsize=7, ncol=3)
    axes[-1].set_xticks(range(0, 25, 3))
    axes[-1].set_xlabel(f"hour of {data.index[day * spd]:%A %d %b %Y}")

    # two weeks of the network mean
    ax = bottom.subplots()
    ax.plot(data.index, np.nanmean(speed, axis=1), lw=0.8, color="k")
    for d in range(cfg.days):
        t0 = data.index[d * spd]
        if t0.day_of_week >= 5:
            ax.axvspan(t0, t0 + np.timedelta64(1, "D"), color="tab:blue", alpha=0.08, lw=0)
    ax.set_ylabel("mean speed (mph)")
    ax.set_title("network mean speed over two weeks (weekends shaded)", fontsize=10, loc="left")

    fig.suptitle(f"synthetic-traffic (SimulatorConfig defaults, seed {cfg.seed})", fontsize=12)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
