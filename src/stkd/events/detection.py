"""Incident detection scored against ground-truth events: share detected and delay after onset.

An alarm ("flag") at (step t, node n) is the model's decision, made from the inputs up to step t-1,
that node n is in an event at step t: the binary prediction at horizon step ``h`` of the window whose
horizon step h is t (``events.detection_horizon``, default 1: the next step, i.e. "now" as soon as the
data of the previous step are in).

For each incident (onset step a, last step b, node n) whose onset lies in the scored period, the
detection step is the first t in ``[a, b]`` flagged at n; the delay is ``t - a`` steps (0: flagged at
onset, from the data before it). An incident never flagged while it lasts is missed. Reported: the
number of incidents scored, the share detected, the mean and median delay (steps and minutes) of the
detected ones, and the false-alarm rate (share of flagged node-steps outside every incident).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def flags_by_step(pred: np.ndarray, starts: np.ndarray, P: int, h: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """Alarms on the step grid: ``flags [T, N]`` bool and ``covered [T]`` (a window predicts that step).

    ``pred`` ``[W, H, N]`` binary decisions of windows starting at ``starts`` (``[W]``); step of window
    ``s`` at horizon ``h`` (1-indexed) is ``s + P + h - 1``.
    """
    W, _, N = pred.shape
    flags = np.zeros((T, N), dtype=bool)
    covered = np.zeros(T, dtype=bool)
    t = np.asarray(starts, dtype=np.int64) + P + h - 1
    ok = (t >= 0) & (t < T)
    flags[t[ok]] = pred[ok, h - 1].astype(bool)
    covered[t[ok]] = True
    return flags, covered


def detection_delays(flags: np.ndarray, covered: np.ndarray, onsets: np.ndarray, ends: np.ndarray,
                     nodes: np.ndarray, step_minutes: float | None = None) -> dict:
    """Score alarms against incidents; see the module docstring.

    ``flags [T, N]`` bool, ``covered [T]`` bool (steps the model predicted); ``onsets``, ``ends`` (last step,
    inclusive) and ``nodes`` ``[E]`` ints. Incidents whose onset step is not covered are not scored; the
    search for a detection stops at the incident's end or at the end of the covered period.
    Returns ``{"incidents", "detected", "share_detected", "mean_delay_steps", "median_delay_steps",
    "mean_delay_minutes", "median_delay_minutes", "false_alarm_rate", "delays"}`` (NaN where undefined).
    """
    T, N = flags.shape
    onsets, ends, nodes = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (onsets, ends, nodes))
    scored = (onsets >= 0) & (onsets < T)
    scored[scored] &= covered[onsets[scored]]
    delays: list[int] = []
    incident_cells = np.zeros((T, N), dtype=bool)
    for a, b, n in zip(onsets, ends, nodes):
        incident_cells[max(a, 0):min(b, T - 1) + 1, n] = True
    for a, b, n in zip(onsets[scored], ends[scored], nodes[scored]):
        seg = flags[a:min(b, T - 1) + 1, n] & covered[a:min(b, T - 1) + 1]
        hit = np.flatnonzero(seg)
        delays.append(int(hit[0]) if hit.size else -1)
    d = np.array([x for x in delays if x >= 0], dtype=np.float64)
    n_scored = int(scored.sum())
    nan = float("nan")
    outside = covered[:, None] & ~incident_cells
    out: dict[str, Any] = {
        "incidents": n_scored,
        "detected": int(d.size),
        "share_detected": float(d.size / n_scored) if n_scored else nan,
        "mean_delay_steps": float(d.mean()) if d.size else nan,
        "median_delay_steps": float(np.median(d)) if d.size else nan,
        "false_alarm_rate": float((flags & outside).sum() / outside.sum()) if outside.sum() else nan,
        "delays": [int(x) for x in delays],  # per scored incident, -1 = missed
    }
    mult = step_minutes if step_minutes else nan
    out["mean_delay_minutes"] = out["mean_delay_steps"] * mult
    out["median_delay_minutes"] = out["median_delay_steps"] * mult
    return out


def incident_steps(events: pd.DataFrame, index: pd.DatetimeIndex, nodes: list[str]) -> tuple[np.ndarray, ...]:
    """(onset steps, last steps, node indices) of an events table (``start, end, node``) on ``index``.

    Events at unknown nodes or outside the index are dropped (a time or node subset of simulated data).
    """
    lookup = {n: i for i, n in enumerate(nodes)}
    n = events["node"].astype(str).map(lookup)
    start = pd.DatetimeIndex(events["start"])
    end = pd.DatetimeIndex(events["end"])
    a = index.get_indexer(start)
    b = index.searchsorted(end, side="right") - 1
    keep = n.notna().to_numpy() & (a >= 0)
    return a[keep].astype(np.int64), np.asarray(b)[keep].astype(np.int64), n[keep].to_numpy(np.int64)
