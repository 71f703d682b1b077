"""Experiment tracking end to end: a tiny ``stkd run`` with ``train.tensorboard`` and ``train.mlflow``
writes real TensorBoard event files and a real MLflow file store; both are read back with their own
readers (EventAccumulator, MlflowClient) and compared with the run's log.csv."""

from __future__ import annotations

import csv
import math

import pytest

from stkd.config import parse_config
from stkd.errors import ConfigError
from stkd.pipeline import run
from stkd.tracking import Tracker, flat_params, open_tracker

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


def _log(run_dir, label) -> list[dict]:
    with (run_dir / "models" / label / "log.csv").open() as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def tracked(tmp_path_factory, los_small_config):
    root = tmp_path_factory.mktemp("tracked")
    raw = los_small_config()
    raw["train"].update(tensorboard=True, mlflow=(root / "mlruns").as_uri())
    raw["eval"]["baselines"] = ["last"]
    out = root / "run"
    metrics = run(parse_config(raw), out, progress=False)
    return {"run": out, "metrics": metrics, "uri": raw["train"]["mlflow"]}


def test_tensorboard_has_every_term_and_val_mae_per_epoch(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tracked["run"]
    for label in ("stid_kd", "gwnet"):
        acc = EventAccumulator(str(run_dir / "tensorboard" / label))
        acc.Reload()
        tags = set(acc.Tags()["scalars"])
        log = _log(run_dir, label)
        expected = {"train_loss", "lr", "val_mae"} | ({"loss_hard", "loss_soft"} if label == "stid_kd" else set())
        assert expected <= tags, (label, tags)
        for tag in expected:
            events = acc.Scalars(tag)
            assert [e.step for e in events] == [int(r["epoch"]) for r in log], (label, tag)
            for e, r in zip(events, log):
                assert math.isclose(e.value, float(r[tag]), rel_tol=1e-5), (label, tag)


def test_mlflow_run_per_model_with_metrics_and_params(tracked):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracked["uri"])
    exp = client.get_experiment_by_name(tracked["run"].name)
    assert exp is not None
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"gwnet", "stid_kd", "stid_plain"}
    r = runs["stid_kd"]
    assert r.info.status == "FINISHED"
    assert r.data.tags["stkd.role"] == "student_kd"
    assert r.data.params["train.epochs"] == "2" and r.data.params["student.name"] == "stid"
    log = _log(tracked["run"], "stid_kd")
    for key in ("loss_hard", "loss_soft", "val_mae", "lr"):
        hist = client.get_metric_history(r.info.run_id, key)
        assert sorted(m.step for m in hist) == [int(row["epoch"]) for row in log], key
        by_step = {m.step: m.value for m in hist}
        for row in log:
            assert math.isclose(by_step[int(row["epoch"])], float(row[key]), rel_tol=1e-5), key


def test_off_by_default_and_nonfinite_left_out(tmp_path, los_small_config):
    cfg = parse_config(los_small_config())
    assert open_tracker(cfg, tmp_path, "m", "teacher") is None
    raw = los_small_config()
    raw["train"]["tensorboard"] = True
    with open_tracker(parse_config(raw), tmp_path, "m", "teacher") as t:
        assert isinstance(t, Tracker)
        t.log_epoch("teacher m", {"epoch": 1, "train_loss": 1.5, "val_mae": math.nan, "lr": 0.1})
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tmp_path / "tensorboard" / "m"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"train_loss", "lr"}


def test_flat_params_are_dotted_and_short(los_small_config):
    p = flat_params(parse_config(los_small_config()))
    assert p["train.lr"] == "0.002"
    assert all(len(v) <= 500 for v in p.values())
    assert p["data.nodes"].endswith("...") or len(p["data.nodes"]) <= 500


def test_bad_mlflow_uri_is_a_config_error(tmp_path, los_small_config):
    raw = los_small_config()
    raw["train"]["mlflow"] = "nosuchscheme://x"
    with pytest.raises(ConfigError, match="train.mlflow 'nosuchscheme://x'"):
        open_tracker(parse_config(raw), tmp_path, "m", "teacher")
