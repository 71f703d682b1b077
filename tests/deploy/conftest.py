"""Tiny run directories for the deployment tests, built without training.

The data is a slice of the real Los-loop set (10 sensors x 2 days of 5-minute speeds) written as a
wide CSV with gaps punched in: a leading gap at the series start, isolated missing readings and a
two-hour outage of one sensor, so every gap-filling branch is exercised. The run directory is made by
the pipeline's own run directory (config.yaml, data.json); the models are tiny, randomly initialised
(seeded) and saved with ``save_model``, as training would leave them. No training: the tests check
the deployment path, not accuracy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

NODES = 10
DAYS = 2


def _write_slice(los_loop_dir: Path, path: Path) -> None:
    raw = pd.read_csv(los_loop_dir / "los_speed.csv")
    vals = raw.iloc[: DAYS * 288, :NODES].to_numpy(dtype=np.float64)  # [T, N]
    rng = np.random.default_rng(0)
    vals[rng.random(vals.shape) < 0.03] = np.nan  # isolated missing readings
    vals[:5, 2] = np.nan  # a leading gap: nothing observed before it
    vals[300:324, 4] = np.nan  # a two-hour outage of one sensor
    frame = pd.DataFrame(vals, columns=raw.columns[:NODES])
    frame.insert(0, "timestamp", pd.date_range("2012-03-01 00:00", periods=len(frame), freq="5min"))
    frame.to_csv(path, index=False)
    locs = pd.read_csv(los_loop_dir / "graph_sensor_locations.csv", dtype={"sensor_id": str})
    locs[locs["sensor_id"].isin(list(raw.columns[:NODES]))].to_csv(path.with_name("locations.csv"), index=False)


def _config(csv: Path, los_loop_dir: Path):
    from stkd.config import parse_config

    return parse_config({
        "data": {"source": "csv-wide", "path": str(csv), "locations": str(csv.with_name("locations.csv")),
                 "graph": {"method": "knn", "k": 3}, "window": {"input": 12, "horizon": 6}},
        "teacher": {"name": "gwnet", "params": {"residual_channels": 8, "dilation_channels": 8, "skip_channels": 16,
                                                "end_channels": 16}},
        "student": {"name": "stid", "params": {"embed_dim": 16, "node_dim": 8, "tod_dim": 8, "dow_dim": 8}},
        "train": {"epochs": 1},
        "eval": {"horizons": [3, 6], "baselines": ["last"]},
    })


def build_run(root: Path, los_loop_dir: Path) -> Path:
    from stkd.checkpoint import save_model
    from stkd.io import write_json
    from stkd.models.registry import build_model
    from stkd.pipeline import check_models, prepare_task
    from stkd.runs import open_run_dir
    from stkd.steps import model_spec

    root.mkdir(parents=True, exist_ok=True)
    csv = root / "los_slice.csv"
    _write_slice(los_loop_dir, csv)
    cfg = _config(csv, los_loop_dir)
    task = prepare_task(cfg)
    check_models(task)
    wd = task.wd
    run_dir = open_run_dir(cfg, wd, root / "run", overwrite=False, resume=False)
    models = {}
    torch.manual_seed(0)
    for label, name, params, role in (("gwnet", "gwnet", cfg.teacher[0].params, "teacher"),
                                      ("stid_kd", "stid", cfg.student.params, "student_kd"),
                                      ("stid_plain", "stid", cfg.student.params, "student_plain"),
                                      ("mlp_plain", "mlp", {"hidden": [16]}, "student_plain"),
                                      # reads its neighbours: rebuilt from the data's adjacency at load time
                                      ("stid_nb", "stid", {**cfg.student.params, "neighbours": 2}, "student_plain"),
                                      ("mlp_nb", "mlp", {"hidden": [16], "neighbours": 2}, "student_plain")):
        model = build_model(name, model_spec(wd), params).eval()
        save_model(run_dir / "models" / label, model, name, model_spec(wd), role, {"train_seconds": 0.0})
        models[label] = model
    # a student that reads lagged channels too (inputs.lags: 1 and 2 hours, 12 and 24 steps): served from a
    # history back to its longest lag (saved with role baseline: it must not change which student a run serves)
    from stkd.config import InputsConfig
    from stkd.steps import inputs_card

    lags = InputsConfig(lags=["1h", "2h"])
    vwd = wd.view(lags)
    lagged = build_model("stid", model_spec(vwd), cfg.student.params).eval()
    save_model(run_dir / "models" / "stid_lags", lagged, "stid", model_spec(vwd), "baseline",
               {"train_seconds": 0.0, "inputs": inputs_card(lags, vwd)})
    # an event model: two classes per target (logits), as the classification task writes them
    spec2 = model_spec(wd, out_classes=2)
    events = build_model("mlp", spec2, {"hidden": [16]}).eval()
    save_model(run_dir / "models" / "mlp_events", events, "mlp", spec2, "baseline", {})
    write_json(run_dir / "metrics.json", {
        "dataset": {"name": wd.data.name, "nodes": wd.num_nodes, "steps": wd.num_steps, "freq": wd.data.freq_str},
        "task": "forecast",
        "models": {k: {"role": r, "params": 1, "test": {"mae": 1.0 + i, "rmse": 2.0, "mape": float("nan")}}
                   for i, (k, r) in enumerate((("gwnet", "teacher"), ("stid_kd", "student_kd")))}})
    return run_dir


@pytest.fixture(scope="session")
def run_template(tmp_path_factory, los_loop_dir) -> Path:
    """The pristine tiny run directory (do not write into it: copy it with ``run_dir``)."""
    return build_run(tmp_path_factory.mktemp("deploy") / "tiny", los_loop_dir)


@pytest.fixture
def run_dir(run_template, tmp_path) -> Path:
    """A private copy of the tiny run (tests may write state files, exports and caches into it)."""
    dst = tmp_path / "run"
    shutil.copytree(run_template, dst)
    return dst


@pytest.fixture(scope="session")
def prepared(run_template):
    """``(STData, WindowedData)`` of the tiny run, prepared by training's own code."""
    from stkd.data.windows import load_windowed
    from stkd.runs import load_run

    cfg, _ = load_run(run_template)
    wd = load_windowed(cfg.data)
    return wd.data, wd


@pytest.fixture(scope="session")
def predictor(run_template):
    import stkd

    return stkd.load(run_template)


def _old_layout(w):
    """A window as versions 1 and 2 held it: its last P steps, the carry before them, the nodes posted
    at the latest step, and the steps seen."""
    values, _, carry = w.model_input()
    seen = np.flatnonzero(w.seen[-1]).astype(np.int64)
    return values, carry, seen


def _version_1_npz(w, model: str, nodes: list[str]) -> bytes:
    """A rolling window in the layout version 1 of ``stkd serve`` saved (``np.savez``, no pickles)."""
    import io

    from stkd.deploy.state import nodes_hash

    values, carry, seen = _old_layout(w)
    buf = io.BytesIO()
    np.savez(buf, version=np.array(1), model=np.array(model), nodes_hash=np.array(nodes_hash(nodes)),
             P=np.array(w.P), latest=np.array(-1 if w.latest is None else w.latest, np.int64),
             has_latest=np.array(w.latest is not None), steps=np.array(w.steps, np.int64),
             seen=seen, values=values, carry=carry)
    return buf.getvalue()


def _version_2_sqlite(path: Path, w, model: str, nodes: list[str]) -> None:
    """A rolling window in the SQLite layout of version 2 (P rows, the nodes seen at the latest step)."""
    import json
    import sqlite3

    from stkd.deploy.state import nodes_hash

    values, carry, seen = _old_layout(w)
    meta = json.dumps({"version": 2, "model": model, "nodes_hash": nodes_hash(nodes), "P": w.P, "N": w.N, "F": w.F,
                       "latest": w.latest, "steps": w.steps, "version_counter": w.version})
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE window (id INTEGER PRIMARY KEY CHECK (id = 0), meta TEXT NOT NULL, readings BLOB NOT "
               "NULL, carry BLOB NOT NULL, seen BLOB NOT NULL)")
    db.execute("INSERT INTO window VALUES (0, ?, ?, ?, ?)", (meta, np.ascontiguousarray(values).tobytes(),
                                                          carry.tobytes(), seen.tobytes()))
    db.close()


@pytest.fixture
def version_1_npz():
    """``version_1_npz(window, model, nodes) -> bytes``: an old state file, to test its migration."""
    return _version_1_npz


@pytest.fixture
def version_2_sqlite():
    """``version_2_sqlite(path, window, model, nodes)``: a version-2 state file, to test its migration."""
    return _version_2_sqlite
