"""Forecast -> event probabilities (the forecasting teacher's soft targets) and the validation sigma."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from stkd.config import DataConfig, EventsConfig, WindowConfig
from stkd.data.container import STData
from stkd.data.windows import prepare
from stkd.events.soft import event_probabilities, horizon_sigma, probabilities_to_logits


def phi(z):
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_threshold_probability_is_gaussian_cdf():
    f = torch.tensor([[[30.0, 40.0, 55.0]]], dtype=torch.float64)  # (B=1, H=1, N=3)
    below = event_probabilities(f, [10.0], EventsConfig(rule="threshold", op="<", value=40))
    assert below.shape == (1, 1, 3, 2)
    assert below[0, 0, :, 1].tolist() == pytest.approx([phi(1.0), 0.5, phi(-1.5)])
    assert below.sum(-1).numpy() == pytest.approx(np.ones((1, 1, 3)))
    above = event_probabilities(f, [10.0], EventsConfig(rule="threshold", op=">", value=40))
    assert above[0, 0, :, 1].tolist() == pytest.approx([phi(-1.0), 0.5, phi(1.5)])


def test_sigma_is_per_horizon_step():
    f = torch.full((1, 2, 1), 30.0, dtype=torch.float64)
    p = event_probabilities(f, [10.0, 20.0], EventsConfig(rule="threshold", op="<", value=40))
    assert p[0, :, 0, 1].tolist() == pytest.approx([phi(1.0), phi(0.5)])


def test_bands_probabilities():
    f = torch.tensor([[[50.0]]], dtype=torch.float64)
    p = event_probabilities(f, [10.0], EventsConfig(rule="bands", edges=[35, 75]))
    expected = [phi(-1.5), phi(2.5) - phi(-1.5), 1 - phi(2.5)]
    assert p[0, 0, 0].tolist() == pytest.approx(expected)


def test_within_takes_the_worst_step_comonotone():
    f = torch.tensor([[[30.0], [50.0], [45.0]]], dtype=torch.float64)  # (1, H=3, 1)
    e = EventsConfig(rule="threshold", op="<", value=40, within=2)
    p = event_probabilities(f, [10.0, 10.0, 10.0], e)[0, :, 0, 1]
    # h1: max(P(30 < 40), P(50 < 40)); h2: max over steps 2, 3; h3: only step 3 is forecast
    assert p.tolist() == pytest.approx([phi(1.0), phi(-0.5), phi(-0.5)])


def test_logits_round_trip():
    probs = torch.tensor([[0.9, 0.1], [1.0, 0.0]], dtype=torch.float64)
    back = torch.softmax(probabilities_to_logits(probs), -1)
    assert back[0].tolist() == pytest.approx([0.9, 0.1])
    assert back[1, 1] < 1e-5


class ShiftedCache:
    """A fake forecast cache: the truth plus h (the horizon step, 1-indexed) at every entry."""

    def __init__(self, wd):
        self.wd = wd

    def pred(self, split, starts):
        b = self.wd.batch(starts)
        return b.y + torch.arange(1, self.wd.H + 1, dtype=b.y.dtype).reshape(1, -1, 1, 1)


def test_horizon_sigma_is_validation_rmse():
    T = 60
    rng = np.random.default_rng(0)
    v = rng.normal(50, 5, (T, 3, 1)).astype(np.float32)
    v[40, 1, 0] = np.nan
    data = STData.from_values(v, pd.date_range("2024-01-01", periods=T, freq="5min"), ["a", "b", "c"], ["speed"])
    wd = prepare(data, DataConfig(window=WindowConfig(input=3, horizon=3), split=[0.5, 0.25, 0.25]))
    sigma = horizon_sigma(ShiftedCache(wd), wd, 0, "val")
    assert sigma.tolist() == pytest.approx([1.0, 2.0, 3.0], rel=1e-6)
