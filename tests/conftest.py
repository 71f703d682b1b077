"""Shared fixtures: the real Los-loop data set from ../shared, and small seeded arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LOS_LOOP = REPO.parent / "shared" / "data" / "los-loop"


@pytest.fixture(scope="session")
def los_loop_dir() -> Path:
    """The Los-loop folder (207 LA loop detectors, 5-minute speeds, 7 days); read in place, never copied."""
    assert (LOS_LOOP / "los_speed.csv").is_file(), f"Los-loop data missing at {LOS_LOOP}"
    return LOS_LOOP


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
