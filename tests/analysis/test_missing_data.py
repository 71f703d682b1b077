"""Missing shares on a hand-made mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stkd.analysis.missing import missing_summary, plot_missing


def test_missing_shares_on_a_hand_made_mask(tmp_path):
    index = pd.date_range("2024-01-01", periods=48, freq="h")  # two days
    observed = np.ones((48, 3), dtype=bool)
    observed[0:6, 0] = False  # node a: 6 h missing on day 1
    observed[30:42, 1] = False  # node b: 12 h missing on day 2
    observed[:, 2] = False  # node c: nothing observed
    m = missing_summary(observed, index, ["a", "b", "c"])
    assert m["per_node"]["a"] == {"share": 6 / 48, "longest_gap_steps": 6, "longest_gap_hours": 6.0}
    assert m["per_node"]["b"]["share"] == pytest.approx(12 / 48)
    assert m["per_node"]["b"]["longest_gap_steps"] == 12
    assert m["per_node"]["c"]["share"] == 1.0
    assert m["overall"] == pytest.approx((6 + 12 + 48) / 144)
    assert m["per_day"]["dates"] == ["2024-01-01", "2024-01-02"]
    np.testing.assert_allclose(m["per_day"]["share"], [(6 + 24) / 72, (12 + 24) / 72])
    np.testing.assert_allclose(m["node_day"]["share"], [[6 / 24, 0], [0, 12 / 24], [1, 1]])
    assert m["empty_nodes"] == ["c"] and m["complete_nodes"] == []
    p = plot_missing(m, tmp_path / "missing.png", "toy")
    assert p.stat().st_size > 1000


def test_two_separate_gaps_report_the_longer():
    index = pd.date_range("2024-01-01", periods=20, freq="5min")
    observed = np.ones((20, 1), dtype=bool)
    observed[2:4, 0] = False
    observed[10:15, 0] = False
    m = missing_summary(observed, index, ["a"])
    assert m["per_node"]["a"]["longest_gap_steps"] == 5
    assert m["per_node"]["a"]["longest_gap_hours"] == pytest.approx(25 / 60)
