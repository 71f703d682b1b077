"""Incident detection delay on hand-made alarms."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stkd.events.detection import detection_delays, flags_by_step, incident_steps


def test_detection_delays_hand_made():
    T, N = 20, 2
    flags = np.zeros((T, N), bool)
    covered = np.zeros(T, bool)
    covered[4:] = True
    flags[7, 0] = True  # incident 1 (node 0, steps 5..10) caught 2 steps after onset
    flags[9, 0] = True
    flags[15, 1] = True  # after incident 2 (node 1, steps 12..14) ended: a miss and a false alarm
    flags[18, 0] = True  # incident 3 (node 0, onset 18) caught at onset
    out = detection_delays(flags, covered, onsets=[5, 12, 2, 18], ends=[10, 14, 3, 19], nodes=[0, 1, 1, 0],
                           step_minutes=5.0)
    assert out["incidents"] == 3  # onset at step 2 is before the covered period: not scored
    assert out["detected"] == 2
    assert out["share_detected"] == pytest.approx(2 / 3)
    assert out["delays"] == [2, -1, 0]
    assert out["mean_delay_steps"] == pytest.approx(1.0)
    assert out["median_delay_steps"] == pytest.approx(1.0)
    assert out["mean_delay_minutes"] == pytest.approx(5.0)
    outside = 16 * 2 - (6 + 3 + 2)  # covered node-steps minus those inside incidents (steps 4..19)
    assert out["false_alarm_rate"] == pytest.approx(1 / outside)


def test_nothing_detected_gives_nan_delays():
    out = detection_delays(np.zeros((5, 1), bool), np.ones(5, bool), [1], [3], [0])
    assert out["share_detected"] == 0.0 and math.isnan(out["mean_delay_steps"])


def test_flags_by_step_places_horizon_decisions():
    pred = np.zeros((3, 2, 1), np.int64)  # (W, H, N)
    pred[1, 0, 0] = 1  # window starting at 11, horizon 1 -> step 11 + 4 = 15
    pred[2, 1, 0] = 1  # horizon 2: ignored when h = 1
    flags, covered = flags_by_step(pred, np.array([10, 11, 12]), P=4, h=1, T=20)
    assert np.flatnonzero(flags[:, 0]).tolist() == [15]
    assert np.flatnonzero(covered).tolist() == [14, 15, 16]
    flags, _ = flags_by_step(pred, np.array([10, 11, 12]), P=4, h=2, T=20)
    assert np.flatnonzero(flags[:, 0]).tolist() == [17]


def test_incident_steps_from_an_events_table():
    index = pd.date_range("2024-01-01", periods=10, freq="5min")
    ev = pd.DataFrame({"start": [index[2], index[8]], "end": [index[4], index[9] + pd.Timedelta("1h")],
                       "node": ["b", "zz"], "label": [1, 1]})
    a, b, n = incident_steps(ev, index, ["a", "b"])
    assert a.tolist() == [2] and b.tolist() == [4] and n.tolist() == [1]  # unknown node dropped
