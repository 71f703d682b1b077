"""The learning-curve extrapolation of ``benchmarks/headroom.py``: the headroom it reports is arithmetic on
three measured errors, so it is checked on curves whose answer is known."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from headroom import SHARES, power_law  # noqa: E402


@pytest.mark.parametrize("a, b, c", [(3.0, 2.0, 0.5), (1.5, 0.4, 1.0), (40.0, 25.0, 0.3)])
def test_power_law_recovers_the_floor_and_exponent_of_an_exact_curve(a, b, c):
    n = [share * 1000 for share in SHARES]  # a quarter, a half and all of the data
    errors = [a + b * size**-c for size in n]
    fit = power_law(errors)
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
    assert power_law(errors) is None
