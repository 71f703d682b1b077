"""Shared fixtures: the real Los-loop data set as CSV files (from the copy packaged in stkd), and small
seeded arrays. Nothing here reads files outside the repository."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import pytest

from stkd.data.builtin import los_loop_files, los_loop_manifest


@pytest.fixture(scope="session")
def los_loop_dir(tmp_path_factory) -> Path:
    """A folder holding Los-loop's three published CSV files (207 LA loop detectors, 5-minute speeds,
    7 days), decompressed from the copy packaged in stkd and checked byte for byte against the
    originals' SHA-256 in its manifest: the tests of the CSV readers read exactly the published files."""
    out = tmp_path_factory.mktemp("los-loop")
    for packed, info in los_loop_manifest()["files"].items():
        raw = gzip.decompress((los_loop_files() / packed).read_bytes())
        assert hashlib.sha256(raw).hexdigest() == info["source_sha256"], f"{packed} is not the published file"
        (out / info["source"]).write_bytes(raw)
    return out


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def los_small_config(los_loop_dir):
    """A factory of raw run configs (a fresh dict each call) for a fast end-to-end run on a slice of
    the builtin Los-loop data: the first 20 sensors, two days, tiny models and a few batches, so a
    whole ``stkd run`` takes seconds on a CPU."""
    with (los_loop_dir / "los_speed.csv").open() as fh:
        ids = fh.readline().strip().split(",")[:20]
    return lambda: {
        "data": {"source": "builtin", "name": "los-loop",
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


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, los_small_config):
    """A finished small ``stkd run`` (config file and run directory) per test module; tests damage or lock
    copies of it, never the run itself."""
    import yaml

    from stkd.cli import main

    base = tmp_path_factory.mktemp("finished")
    cfg = base / "los.yaml"
    cfg.write_text(yaml.safe_dump(los_small_config()))
    out = base / "run"
    assert main(["run", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    return cfg, out
