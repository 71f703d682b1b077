"""The learning-curve extrapolation of ``benchmarks/headroom.py``: the headroom it reports is arithmetic on
three measured errors, so it is checked on curves whose answer is known."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from headroom import SHARES, block_starts, by_row, power_law  # noqa: E402


@pytest.mark.parametrize("a, b, c", [(3.0, 2.0, 0.5), (1.5, 0.4, 1.0), (40.0, 25.0, 0.3)])
def test_power_law_recovers_the_floor_and_exponent_of_an_exact_curve(a, b, c):
    n = [share * 1000 for share in SHARES]  # a quarter, a half and all of the data
    errors = [a + b * size**-c for size in n]
    fit = power_law(n, errors)
    assert fit is not None
    assert fit["c"] == pytest.approx(c)
    assert fit["floor"] == pytest.approx(a)
    assert fit["reducible"] == pytest.approx(b * n[-1] ** -c)


@pytest.mark.parametrize("errors", [
    [3.0, 3.1, 3.2],  # more data, more error
    [3.2, 3.1, 3.1],  # flat at the end
    [3.3, 3.2, 3.0],  # falling faster as data grows: no power law with c > 0
])
def test_power_law_refuses_curves_it_cannot_extrapolate(errors):
    assert power_law([250, 500, 1000], errors) is None


@pytest.mark.parametrize("a, b, c", [(3.0, 2.0, 0.5), (1.5, 0.4, 1.0), (40.0, 25.0, 2.5)])
def test_power_law_fits_unevenly_spaced_sizes(a, b, c):
    n = [292, 555, 1388]  # windows of blocks thinned 1 in 4 and 1 in 2, and of the whole period
    fit = power_law(n, [a + b * size**-c for size in n])
    assert fit is not None
    assert fit["c"] == pytest.approx(c, rel=1e-6)
    assert fit["floor"] == pytest.approx(a, rel=1e-6)


def test_power_law_refuses_a_curve_straight_in_log_n():
    # a drop proportional to the step in log n is the limit c -> 0: no positive exponent fits
    n = [292, 555, 1388]
    errors = [5.0 - 0.3 * math.log(size) for size in n]
    assert power_law(n, errors) is None
    assert power_law(n, [errors[0] + 1e-3, *errors[1:]]) is not None  # a little more curvature: it fits


def test_block_starts_keep_windows_wholly_inside_every_kth_block():
    lo, span, block = 10, 4, 8
    starts = np.arange(lo, lo + 40 - span + 1)  # every window of a 40-step period from step 10
    kept = block_starts(starts, lo, span, block, every=2)
    # blocks [10, 18), [26, 34), [42, 50) are kept (the 1st, 3rd and 5th); a window fits where it starts at
    # most 4 steps in
    assert kept.tolist() == [10, 11, 12, 13, 14, 26, 27, 28, 29, 30, 42, 43, 44, 45, 46]
    assert block_starts(starts, lo, span, block, every=1).tolist() == starts.tolist()


def test_whole_period_records_join_every_curve_of_their_student():
    base = {"student": "mlp", "epochs": 80, "patience": 15, "seed": 0}
    records = [base | {"share": 1.0}, base | {"share": 0.5}, base | {"share": 0.25},
               base | {"share": 0.5, "layout": "blocks", "block": "8h"},
               base | {"share": 0.25, "layout": "blocks", "block": "8h"}]
    rows = by_row(records)
    assert sorted(rows) == ["mlp, 80 epochs (patience 15)", "mlp, 80 epochs (patience 15), blocks of 8h"]
    for shares in rows.values():
        assert sorted(shares) == [0.25, 0.5, 1.0]
        assert shares[1.0] == [records[0]]
    assert rows["mlp, 80 epochs (patience 15), blocks of 8h"][0.5] == [records[3]]
