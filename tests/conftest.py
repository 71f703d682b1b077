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


@pytest.fixture(scope="session")
def los_small_config(los_loop_dir):
    """A factory of raw run configs (a fresh dict each call) for a fast end-to-end run on a slice of
    Los-loop: the first 20 sensors, two days, tiny models and a few batches, so a whole ``stkd run``
    takes seconds on a CPU."""
    with (los_loop_dir / "los_speed.csv").open() as fh:
        ids = fh.readline().strip().split(",")[:20]
    return lambda: {
        "data": {"source": "csv-wide", "path": str(los_loop_dir / "los_speed.csv"),
                 "start": "2012-03-01 00:00", "freq": "5min",
                 "locations": str(los_loop_dir / "graph_sensor_locations.csv"),
                 "adjacency": str(los_loop_dir / "los_adj.csv"),
                 "nodes": ids, "time_range": ["2012-03-01 00:00", "2012-03-02 23:55"]},
        "teacher": {"name": "gwnet", "params": {"residual_channels": 8, "dilation_channels": 8,
                                                "skip_channels": 16, "end_channels": 16}},
        "student": {"name": "stid", "params": {"embed_dim": 8, "node_dim": 4, "tod_dim": 4, "dow_dim": 4}},
        "train": {"epochs": 2, "batch_size": 32, "max_batches": 2},
        "eval": {"latency_repeats": 2},
    }


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run faster on one thread (and do not stall on a busy machine); restored after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
