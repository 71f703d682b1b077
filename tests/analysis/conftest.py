"""Builders of series and graphs with known answers for the analysis tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from stkd.data.container import STData


def grid_adjacency(rows: int, cols: int) -> sp.csr_array:
    """Rook adjacency (4 neighbours) of a rows x cols grid; node id = r * cols + c."""
    src, dst = [], []
    for r in range(rows):
        for c in range(cols):
            a = r * cols + c
            if r + 1 < rows:
                src += [a, a + cols]
                dst += [a + cols, a]
            if c + 1 < cols:
                src += [a, a + 1]
                dst += [a + 1, a]
    n = rows * cols
    return sp.csr_array((np.ones(len(src)), (src, dst)), shape=(n, n))


def grid_coords(rows: int, cols: int, spacing_deg: float = 0.01) -> np.ndarray:
    return np.array([[-36.85 + r * spacing_deg, 174.76 + c * spacing_deg] for r in range(rows) for c in range(cols)])


@pytest.fixture
def grid():
    return grid_adjacency, grid_coords


@pytest.fixture
def small_stdata():
    """6 nodes on a 2 x 3 grid, 4 weeks hourly: daily + weekly cycle, a trend, noise, one spike, gaps."""
    rng = np.random.default_rng(1)
    T = 24 * 28
    t = np.arange(T)
    base = 10 + 5 * np.sin(2 * np.pi * t / 24) + 2 * np.cos(2 * np.pi * t / 168) + 0.01 * t
    x = np.stack([base * (1 + 0.1 * j) + 0.3 * rng.standard_normal(T) for j in range(6)], axis=1)
    x[400, 2] += 25.0  # a spike
    x[100:110, 4] = np.nan  # a gap
    index = pd.date_range("2024-01-01", periods=T, freq="h")
    return STData.from_values(x.astype(np.float32), index, [f"s{j}" for j in range(6)], ["count"],
                              coords=grid_coords(2, 3), adjacency=grid_adjacency(2, 3), name="toy")
