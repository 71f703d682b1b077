"""Tests of the training loop (stkd.train.fit): seeds repeat a run, resume is exact, early stopping
keeps the best weights, the CSV log, a clear error on a NaN loss."""

from __future__ import annotations

import csv
import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from stkd.config import DataConfig, ModelConfig, RunConfig, TrainConfig, WindowConfig
from stkd.data.container import STData
from stkd.data.windows import prepare
from stkd.errors import ConfigError, STKDError
from stkd.io import read_json
from stkd.models.registry import build_model
from stkd.pipeline import train_student
from stkd.steps import model_spec
from stkd.tasks.forecast import ForecastTask
from stkd.train import fit, set_seed


def hard_loss(wd):
    """The forecasting task's loss (huber in original units) on ``wd``."""
    return ForecastTask(RunConfig(train=TrainConfig(loss="huber")), wd).hard_loss()


def validator(wd):
    return ForecastTask(RunConfig(), wd).validator(256)

LOG_COLUMNS = ["epoch", "train_loss", "val_mae", "val_rmse", "lr", "seconds"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def wd():
    """Four noisy daily sinusoids at 1h steps (20 days), 6 in, 3 out."""
    rng = np.random.default_rng(0)
    T, N = 480, 4
    t = np.arange(T)[:, None]
    values = 50 + 10 * np.sin(2 * np.pi * t / 24 + np.arange(N)) + rng.normal(0, 1, (T, N))
    values[rng.random((T, N)) < 0.02] = np.nan  # a few missing readings
    data = STData.from_values(values.astype(np.float32), pd.date_range("2024-01-01", periods=T, freq="1h"),
                              [f"n{i}" for i in range(N)], ["v"], name="sines")
    return prepare(data, DataConfig(window=WindowConfig(input=6, horizon=3)))


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=4, batch_size=16, max_batches=5, lr=5e-3, patience=100, seed=0, scheduler="cosine")
    return TrainConfig(**{**base, **kw})


def _model(wd, seed: int = 0):
    set_seed(seed)
    return build_model("mlp", model_spec(wd), {"hidden": [16], "dropout": 0.2})  # dropout: RNG in the loop


def _fit(wd, model, cfg, model_dir, **kw):
    return fit(model, wd, hard_loss(wd), validator(wd), cfg, model_dir, progress=False, **kw)


def _read_log(path: Path, drop=("seconds",)) -> list[dict]:
    with open(path, newline="") as fh:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(fh)]


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_same_seed_repeats_exactly_and_another_seed_differs(wd, tmp_path):
    runs = {}
    for name, seed in [("a", 3), ("b", 3), ("c", 4)]:
        model = _model(wd, seed)
        res = _fit(wd, model, _cfg(seed=seed), tmp_path / name)
        runs[name] = (model, res, _read_log(tmp_path / name / "log.csv"))
    (ma, ra, la), (mb, rb, lb), (mc, _, lc) = runs["a"], runs["b"], runs["c"]
    assert _same_weights(ma, mb)
    assert la == lb and ra.best_epoch == rb.best_epoch and ra.best_score == rb.best_score
    assert not _same_weights(ma, mc)
    assert la != lc


def test_pipeline_seed_also_fixes_the_initial_weights(wd, tmp_path):
    """``train.seed`` (``--seed``) seeds the model's initialisation too, not only the batch order."""
    def student(seed, out):
        cfg = RunConfig(student=ModelConfig(name="mlp", params={"hidden": [8]}),
                        train=_cfg(seed=seed, epochs=1, max_batches=1))
        torch.manual_seed(12345 + seed)  # whatever ran before must not matter
        return train_student(ForecastTask(cfg, wd), out, progress=False).model

    a, b, c = student(1, tmp_path / "a"), student(1, tmp_path / "b"), student(2, tmp_path / "c")
    assert _same_weights(a, b)
    assert not _same_weights(a, c)


def test_log_has_one_row_per_epoch_with_the_expected_columns(wd, tmp_path):
    res = _fit(wd, _model(wd), _cfg(epochs=3), tmp_path)
    with open(tmp_path / "log.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        rows = list(reader)
        assert reader.fieldnames == LOG_COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for r in rows:
        assert all(math.isfinite(float(r[c])) for c in LOG_COLUMNS)
        assert float(r["val_mae"]) <= float(r["val_rmse"])
    assert res.epochs_run == 3 and not res.stopped_early
    assert res.best_score == min(float(r["val_mae"]) for r in rows)
    assert {p.name for p in tmp_path.iterdir()} >= {"log.csv", "best.safetensors", "last.safetensors",
                                                      "last.json"}


class _Interrupt(Exception):
    pass


def _killed_while_validating(wd, cfg, model_dir, epoch: int) -> None:
    """Train ``cfg``'s run into ``model_dir`` and kill it while it validates ``epoch`` (1-indexed): its last
    checkpoint is that of the epoch before."""
    calls = {"n": 0}
    validate = validator(wd)

    def dying_validate(model):
        calls["n"] += 1
        if calls["n"] == epoch:
            raise _Interrupt
        return validate(model)

    with pytest.raises(_Interrupt):
        fit(_model(wd), wd, hard_loss(wd), dying_validate, cfg, model_dir, progress=False)


@pytest.mark.parametrize("scheduler", ["cosine", "step"])
def test_resume_after_an_interruption_matches_an_uninterrupted_run(wd, tmp_path, scheduler):
    cfg = _cfg(epochs=5, scheduler=scheduler)
    full = _model(wd)
    res_full = _fit(wd, full, cfg, tmp_path / "full")

    # the same run, killed while validating epoch 3: its last checkpoint is from epoch 2
    _killed_while_validating(wd, cfg, tmp_path / "cut", epoch=3)
    assert len(_read_log(tmp_path / "cut" / "log.csv")) == 2

    resumed = _model(wd, seed=99)  # fresh weights: all state must come from the checkpoint
    res = _fit(wd, resumed, cfg, tmp_path / "cut", resume=True)
    assert _same_weights(full, resumed)
    assert _read_log(tmp_path / "full" / "log.csv") == _read_log(tmp_path / "cut" / "log.csv")
    assert (res.best_epoch, res.best_score, res.epochs_run) == (res_full.best_epoch, res_full.best_score, 5)


def test_resume_of_a_finished_run_trains_nothing_and_returns_the_best_weights(wd, tmp_path):
    cfg = _cfg(epochs=3)
    model = _model(wd)
    first = _fit(wd, model, cfg, tmp_path)
    log = _read_log(tmp_path / "log.csv", drop=())
    written = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    again = _model(wd, seed=5)
    res = _fit(wd, again, cfg, tmp_path, resume=True)
    assert _same_weights(model, again)
    assert _read_log(tmp_path / "log.csv", drop=()) == log  # nothing was trained or logged
    # nor rewritten: the files' times still say when the model finished training
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == written
    assert res.was_finished and not first.was_finished
    assert (res.best_epoch, res.epochs_run, res.stopped_early) == (first.best_epoch, 3, False)


def test_early_stopping_stops_after_patience_and_keeps_the_best_weights(wd, tmp_path):
    scores = [5.0, 4.0, 4.5, 4.6, 3.0, 2.0]  # best at epoch 2, then two epochs without improvement
    snapshots = []

    def validate(model):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return {"mae": scores[len(snapshots) - 1]}

    model = _model(wd)
    cfg = _cfg(epochs=6, patience=2)
    res = fit(model, wd, hard_loss(wd), validate, cfg, tmp_path, progress=False)
    assert len(snapshots) == 4  # epochs 1-4 ran; 5 and 6 did not
    assert (res.best_epoch, res.best_score, res.epochs_run, res.stopped_early) == (2, 4.0, 4, True)
    assert all(torch.equal(v, snapshots[1][k]) for k, v in model.state_dict().items())
    assert not all(torch.equal(v, snapshots[3][k]) for k, v in model.state_dict().items())
    rows = _read_log(tmp_path / "log.csv")
    assert [float(r["val_mae"]) for r in rows] == scores[:4]

    from stkd.checkpoint import load_weights

    best = load_weights(tmp_path / "best.safetensors")
    assert all(torch.equal(best[f"model.{k}"], v) for k, v in snapshots[1].items())

    # resuming the stopped run does not train on
    again = _model(wd, seed=7)
    res2 = fit(again, wd, hard_loss(wd), validate, cfg, tmp_path, progress=False, resume=True)
    assert len(snapshots) == 4
    assert _same_weights(model, again)
    assert (res2.best_epoch, res2.epochs_run, res2.stopped_early) == (2, 4, True)


def test_resume_does_not_train_on_after_patience_ran_out(wd, tmp_path):
    """Killed after the epoch that used up the patience (before the run was marked finished)."""
    from stkd.io import read_json, write_json

    scores = iter([5.0, 6.0, 7.0, 1.0, 1.0])
    cfg = _cfg(epochs=5, patience=2)
    fit(_model(wd), wd, hard_loss(wd), lambda m: {"mae": next(scores)}, cfg, tmp_path,
        progress=False)
    info = read_json(tmp_path / "last.json")
    info.pop("finished"), info.pop("stopped_early")
    write_json(tmp_path / "last.json", info)
    res = fit(_model(wd), wd, hard_loss(wd), lambda m: {"mae": next(scores)}, cfg, tmp_path,
              progress=False, resume=True)
    assert (res.epochs_run, res.best_epoch, res.stopped_early) == (3, 1, True)
    assert next(scores) == 1.0  # validation never ran again


def test_min_epochs_keeps_early_stopping_off_until_then_and_a_resumed_run_honours_it(wd, tmp_path):
    """A lucky first epoch (as while a cosine rate is still high) ends a run of patience 2 at epoch 3; with
    ``train.min_epochs: 5`` it runs 5 epochs, stops there (the patience long used up) and keeps epoch 1's weights."""
    def scores():
        return iter([1.0, 5.0, 4.0, 3.0, 2.0, 0.5])

    plain = scores()
    res = fit(_model(wd), wd, hard_loss(wd), lambda m: {"mae": next(plain)}, _cfg(epochs=6, patience=2),
              tmp_path / "a", progress=False)
    assert (res.epochs_run, res.best_epoch, res.stopped_early) == (3, 1, True)

    held = scores()
    cfg = _cfg(epochs=6, patience=2, min_epochs=5)
    res = fit(_model(wd), wd, hard_loss(wd), lambda m: {"mae": next(held)}, cfg, tmp_path / "b", progress=False)
    assert (res.epochs_run, res.best_epoch, res.stopped_early, res.stop_reason) == (5, 1, True, "patience")
    assert next(held) == 0.5  # epoch 6 never validated

    # killed during epoch 4 (patience used up at 3, min_epochs not reached): the resumed run trains epochs 4 and 5
    killed = iter([1.0, 5.0, 4.0])

    def validate_then_die(m):
        value = next(killed, None)
        if value is None:
            raise KeyboardInterrupt
        return {"mae": value}

    with pytest.raises(KeyboardInterrupt):
        fit(_model(wd), wd, hard_loss(wd), validate_then_die, cfg, tmp_path / "c", progress=False)
    assert read_json(tmp_path / "c" / "last.json")["bad_epochs"] == 2
    rest = iter([3.0, 2.0, 0.5])
    res = fit(_model(wd), wd, hard_loss(wd), lambda m: {"mae": next(rest)}, cfg, tmp_path / "c", progress=False,
              resume=True)
    assert (res.epochs_run, res.best_epoch, res.stopped_early) == (5, 1, True)
    assert next(rest) == 0.5


def test_min_epochs_below_zero_is_a_config_error():
    from stkd.config import parse_config

    with pytest.raises(ConfigError, match="train.min_epochs: must be >= 0"):
        parse_config({"data": {"source": "builtin", "name": "los-loop"}, "teacher": [{"name": "stid"}],
                      "student": {"name": "stid"}, "train": {"min_epochs": -1}})


def test_resume_with_another_model_is_a_clear_error(wd, tmp_path):
    _fit(wd, _model(wd), _cfg(epochs=1), tmp_path)
    other = build_model("mlp", model_spec(wd), {"hidden": [8]})
    with pytest.raises(STKDError, match="does not match this model"):
        _fit(wd, other, _cfg(epochs=2), tmp_path, resume=True)


def test_without_validation_data_the_train_loss_picks_the_best_weights(wd, tmp_path):
    """A val share of 0 gives NaN validation metrics: the run must still train and keep trained weights."""
    model = _model(wd)
    init = {k: v.clone() for k, v in model.state_dict().items()}
    res = fit(model, wd, hard_loss(wd), lambda m: {"mae": float("nan"), "rmse": float("nan")},
              _cfg(epochs=4, patience=2), tmp_path, progress=False)
    assert res.best_epoch >= 1 and math.isfinite(res.best_score)
    assert not all(torch.equal(v, init[k]) for k, v in model.state_dict().items())
    losses = [float(r["train_loss"]) for r in _read_log(tmp_path / "log.csv")]
    assert res.best_score == pytest.approx(min(losses))


def test_validate_start_keeps_the_starting_weights_when_no_epoch_beats_them(wd, tmp_path):
    """Fine-tuning: the weights it starts from are epoch 0; training that only worsens them keeps them."""
    scores = iter([2.0, 3.0, 2.5, 2.1, 9.0])  # epoch 0 (the start), then three worse epochs

    def validate(model):
        return {"mae": next(scores)}

    model = _model(wd)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    res = fit(model, wd, hard_loss(wd), validate, _cfg(epochs=3), tmp_path, progress=False, validate_start=True)
    assert (res.best_epoch, res.best_score, res.epochs_run) == (0, 2.0, 3)
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
    rows = _read_log(tmp_path / "log.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3]
    assert math.isnan(float(rows[0]["train_loss"])) and float(rows[0]["val_mae"]) == 2.0
    from stkd.checkpoint import load_weights

    best = load_weights(tmp_path / "best.safetensors")
    assert all(torch.equal(best[f"model.{k}"], v) for k, v in start.items())
    # resuming the finished run neither validates the start again nor trains
    res2 = fit(_model(wd, seed=5), wd, hard_loss(wd), validate, _cfg(epochs=3), tmp_path, progress=False,
               resume=True, validate_start=True)
    assert res2.best_epoch == 0 and next(scores) == 9.0


def test_validate_start_gives_way_to_a_better_epoch_and_counts_the_patience_from_the_start(wd, tmp_path):
    scores = iter([4.0, 5.0, 3.0, 3.5, 3.6])
    model = _model(wd)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    res = fit(model, wd, hard_loss(wd), lambda m: {"mae": next(scores)}, _cfg(epochs=5, patience=2),
              tmp_path, progress=False, validate_start=True)
    assert (res.best_epoch, res.best_score, res.epochs_run, res.stopped_early) == (2, 3.0, 4, True)
    assert not all(torch.equal(v, start[k]) for k, v in model.state_dict().items())
    # without validation scores the start has nothing to be compared with: no epoch-0 row
    fit(_model(wd), wd, hard_loss(wd), lambda m: {"mae": float("nan")}, _cfg(epochs=2), tmp_path / "noval",
        progress=False, validate_start=True)
    assert [int(r["epoch"]) for r in _read_log(tmp_path / "noval" / "log.csv")] == [1, 2]


def test_nan_loss_is_a_clear_error(wd, tmp_path):
    def nan_loss(batch, out):
        return out["pred"].sum() * float("nan"), {}

    with pytest.raises(STKDError, match=r"loss became nan at epoch 1.*train\.lr"):
        fit(_model(wd), wd, nan_loss, validator(wd), _cfg(), tmp_path, progress=False)


def test_a_model_without_parameters_is_refused(wd, tmp_path):
    model = _model(wd)
    for p in model.parameters():
        p.requires_grad_(False)
    with pytest.raises(STKDError, match="no trainable parameters"):
        _fit(wd, model, _cfg(), tmp_path)


def test_cosine_schedule_ends_near_its_floor(wd, tmp_path):
    cfg = _cfg(epochs=4)
    _fit(wd, _model(wd), cfg, tmp_path)
    lrs = [float(r["lr"]) for r in _read_log(tmp_path / "log.csv")]
    assert lrs == sorted(lrs, reverse=True)
    assert lrs[-1] == pytest.approx(cfg.lr * 0.05)
    assert dataclasses.replace(cfg).epochs == 4


def test_node_subset_training_steps_see_k_nodes_and_validation_sees_all(tmp_path):
    """train.node_subset: each step's batch and graph hold K sampled nodes; validation and the kept
    model run on all N; the loss goes down; a model with per-node weights is refused."""
    from stkd.config import SimulatorConfig
    from stkd.data.loaders import load_data
    from stkd.errors import ConfigError

    cfg = DataConfig(source="builtin", name="synthetic-traffic", simulator=SimulatorConfig(nodes=60, days=2))
    sim = prepare(load_data(cfg), cfg)
    params = {"adaptive": False, "residual_channels": 8, "dilation_channels": 8, "skip_channels": 16,
              "end_channels": 16, "dropout": 0.0}
    set_seed(0)
    model = build_model("gwnet", model_spec(sim), params)
    seen = []
    model.register_forward_pre_hook(lambda m, args: seen.append((m.training, args[0].shape[2])))
    res = fit(model, sim, hard_loss(sim), validator(sim), _cfg(epochs=3, batch_size=8),
              tmp_path / "m", progress=False, node_subset=20)
    train_sizes = {n for training, n in seen if training}
    eval_sizes = {n for training, n in seen if not training}
    assert train_sizes == {20} and eval_sizes == {60}
    log = _read_log(tmp_path / "m" / "log.csv")
    assert float(log[-1]["train_loss"]) < float(log[0]["train_loss"]) and math.isfinite(res.best_score)
    b = sim.batch(sim.starts["test"][:2])
    with torch.no_grad():
        assert model(b.x, b.tod, b.dow)["pred"].shape == (2, sim.H, 60, 1)  # the whole network again
    with pytest.raises(ConfigError, match="per-node weights"):
        fit(build_model("gwnet", model_spec(sim), {**params, "adaptive": True}), sim, hard_loss(sim),
            validator(sim), _cfg(epochs=1), tmp_path / "m2", progress=False, node_subset=20)


def test_node_subset_batch_matches_the_full_batch_on_those_nodes(wd):
    starts = wd.starts["train"][:3]
    full, sub = wd.batch(starts), wd.batch(starts, nodes=[1, 3])
    for name in ("x", "y", "mask"):
        assert torch.equal(getattr(sub, name), getattr(full, name)[:, :, [1, 3]])
    assert sub.nodes.tolist() == [1, 3] and full.nodes is None
    scaled = torch.randn(3, wd.H, 2, 1)
    from stkd.evaluate import to_original_units

    padded = torch.zeros(3, wd.H, wd.num_nodes, 1)
    padded[:, :, [1, 3]] = scaled
    assert torch.allclose(to_original_units(wd, scaled, sub.nodes), to_original_units(wd, padded)[:, :, [1, 3]])


def test_min_batches_makes_an_epoch_of_few_windows_pass_over_them_again_in_a_new_order(wd):
    """``train.min_batches``: a short history's epoch holds as many optimiser steps as a long one's. Every
    pass over the windows holds each window once, in its own order; without the floor nothing changes."""
    from stkd.train import num_train_batches, train_batches

    n = len(wd.starts["train"])
    base = TrainConfig(batch_size=8, seed=0)
    assert num_train_batches(wd, base) == n // 8
    floor = TrainConfig(batch_size=8, seed=0, min_batches=3 * (n // 8) + 2)
    assert num_train_batches(wd, floor) == 3 * (n // 8) + 2
    assert num_train_batches(wd, TrainConfig(batch_size=8, min_batches=n, max_batches=5)) == 5
    starts = [s for b in train_batches(wd, floor, torch.Generator().manual_seed(3), 0, 1) for s in b.start.tolist()]
    assert len(starts) == 8 * (3 * (n // 8) + 2)
    passes = [starts[i:i + n] for i in range(0, len(starts), n)]
    assert all(sorted(p) == sorted(wd.starts["train"].tolist()) for p in passes[:3])  # each pass: every window once
    assert passes[0] != passes[1]  # in a new order
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    plain = [b.start.tolist() for b in train_batches(wd, base, g1, 0, 1)]
    assert [b.start.tolist() for b in train_batches(wd, TrainConfig(batch_size=8, seed=0, min_batches=2), g2, 0, 1)] \
        == plain  # a floor below one pass changes nothing
    from stkd.config import parse_config
    from stkd.errors import ConfigError

    with pytest.raises(ConfigError, match=r"train.min_batches \(50\) is more than train.max_batches \(40\)"):
        parse_config({"train": {"min_batches": 50, "max_batches": 40}})
    with pytest.raises(ConfigError, match="train.min_batches: must be >= 1"):
        parse_config({"train": {"min_batches": 0}})


# ------------------------------------------------------------------ precision, time budget, progress
def test_bf16_training_runs_and_keeps_float32_weights_and_loss(wd, tmp_path):
    model = _model(wd)
    res = _fit(wd, model, _cfg(precision="bf16", epochs=3), tmp_path)
    assert math.isfinite(res.best_score) and all(p.dtype == torch.float32 for p in model.parameters())
    fp32 = _fit(wd, _model(wd), _cfg(epochs=3), tmp_path / "fp32")
    assert abs(res.best_score - fp32.best_score) < 0.25 * fp32.best_score  # the same problem, learnt alike


@pytest.mark.parametrize("flags, expected", [(["avx512f", "amx_bf16"], "bf16"), (["avx2"], "fp32")])
def test_auto_precision_trains_at_this_machines_choice_and_the_model_records_it(wd, tmp_path, monkeypatch,
                                                                               flags, expected):
    from stkd import machine

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(machine, "_cpu_flags", lambda: flags)
    res = _fit(wd, _model(wd), _cfg(precision="auto", epochs=1), tmp_path)
    assert [m["precision"] for m in res.machines] == [expected]
    assert read_json(tmp_path / "last.json")["machines"] == res.machines
    assert res.machines[0]["threads"] == torch.get_num_threads()


def test_bf16_asked_for_on_a_cpu_without_amx_trains_as_asked_and_says_once_that_it_is_slower(wd, tmp_path,
                                                                                            monkeypatch, caplog):
    import stkd.train
    from stkd import machine

    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(stkd.train, "_WARNED_BF16", [])
    monkeypatch.setattr(machine, "_cpu_flags", lambda: ["avx512f", "amx_bf16"])
    with caplog.at_level("WARNING", logger="stkd.train"):
        _fit(wd, _model(wd), _cfg(precision="bf16", epochs=1), tmp_path / "amx")
    assert "slower than fp32" not in caplog.text  # AMX units: bf16 is the fast one
    monkeypatch.setattr(machine, "_cpu_flags", lambda: ["avx2"])
    with caplog.at_level("WARNING", logger="stkd.train"):
        first = _fit(wd, _model(wd), _cfg(precision="bf16", epochs=1), tmp_path / "a")
        _fit(wd, _model(wd), _cfg(precision="bf16", epochs=1), tmp_path / "b")
    assert first.machines[0]["precision"] == "bf16"  # what was asked for, not overruled
    assert caplog.text.count("slower than fp32 on this CPU, which has no AMX units in use (auto would pick fp32)") == 1
    assert "Set train.precision: auto or fp32" in caplog.text


def test_a_model_resumed_on_other_kernels_says_so_and_keeps_both_machines(wd, tmp_path, monkeypatch, caplog):
    import stkd.train

    cfg = _cfg(epochs=4)
    _killed_while_validating(wd, cfg, tmp_path, epoch=2)
    first = read_json(tmp_path / "last.json")["machines"]
    assert len(first) == 1
    same = _fit(wd, _model(wd), dataclasses.replace(cfg, epochs=2), tmp_path / "same")
    assert same.machines == first  # the same kernels: one machine, however many sessions

    real = stkd.train.compute_facts
    monkeypatch.setattr(stkd.train, "compute_facts", lambda: {**real(), "cpu_kernels": "ANOTHER"})
    with caplog.at_level("WARNING", logger="stkd.train"):
        res = _fit(wd, _model(wd), cfg, tmp_path, resume=True)
    assert "resumed on" in caplog.text and "ANOTHER" in caplog.text and "uninterrupted" in caplog.text
    assert [m["cpu_kernels"] for m in res.machines] == [first[0]["cpu_kernels"], "ANOTHER"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="stkd.train"):  # finished: nothing trains, nothing to say
        again = _fit(wd, _model(wd), cfg, tmp_path, resume=True)
    assert again.machines == res.machines and "resumed on" not in caplog.text


def test_a_graph_teacher_trains_under_bf16_with_its_sparse_graph_in_float32(tmp_path):
    from stkd.config import SimulatorConfig

    cfg = DataConfig(source="builtin", name="synthetic-traffic", simulator=SimulatorConfig(nodes=20, days=2))
    from stkd.data.windows import load_windowed

    sim = load_windowed(cfg)
    model = build_model("gwnet", model_spec(sim), {"residual_channels": 8, "dilation_channels": 8,
                                                   "skip_channels": 16, "end_channels": 16})
    assert model.support_0.is_sparse
    res = fit(model, sim, hard_loss(sim), validator(sim), _cfg(epochs=1, batch_size=8, precision="bf16"),
              tmp_path, progress=False)
    assert math.isfinite(res.best_score)


def test_time_budget_stops_a_model_cleanly_and_says_so(wd, tmp_path, caplog):
    slow_scores = iter(range(100, 0, -1))

    def slow_validate(model):  # each epoch takes > 0.3 s, so a 0.5 s budget ends the run early
        import time as _time

        _time.sleep(0.3)
        return {"mae": float(next(slow_scores))}

    with caplog.at_level("WARNING"):
        res = fit(_model(wd), wd, hard_loss(wd), slow_validate, _cfg(epochs=50, max_batches=2, time_budget="0.5s"),
                  tmp_path, progress=False)
    assert res.stop_reason == "time budget" and 1 <= res.epochs_run < 50 and res.best_epoch == res.epochs_run
    assert "train.time_budget" in caplog.text
    again = fit(_model(wd), wd, hard_loss(wd), slow_validate, _cfg(epochs=50, max_batches=2, time_budget="0.5s"),
                tmp_path, progress=False, resume=True)
    assert again.epochs_run == res.epochs_run  # a finished (budget-stopped) model is not trained on


def test_bad_precision_and_budget_are_config_errors():
    from stkd.config import parse_config

    with pytest.raises(STKDError, match="train.precision.*fp32, bf16"):
        parse_config({"train": {"precision": "fp16"}})
    with pytest.raises(STKDError, match="train.time_budget: 'soon' is not a duration"):
        parse_config({"train": {"time_budget": "soon"}})
    with pytest.raises(STKDError, match="train.lr: must be a finite number"):
        parse_config({"train": {"lr": float("nan")}})


def test_progress_counts_batches_inside_epochs(wd, tmp_path, capsys):
    fit(_model(wd), wd, hard_loss(wd), validator(wd), _cfg(epochs=2, max_batches=3), tmp_path, progress=True)
    err = capsys.readouterr().err
    assert "/6" in err and "batch" in err  # 2 epochs x 3 batches, counted per batch


def test_each_distillation_term_is_logged_per_epoch(wd, tmp_path):
    def two_terms(batch, out):
        hard, _ = hard_loss(wd)(batch, out)
        soft = out["pred"].pow(2).mean()
        return hard + 0.1 * soft, {"hard": float(hard.detach()), "soft": float(soft.detach())}

    fit(_model(wd), wd, two_terms, validator(wd), _cfg(epochs=2), tmp_path, progress=False)
    rows = _read_log(tmp_path / "log.csv")
    assert {"loss_hard", "loss_soft"} <= set(rows[0]) and all(float(r["loss_soft"]) >= 0 for r in rows)


def test_on_epoch_sees_every_epoch_and_can_stop_training_cleanly(wd, tmp_path):
    """The per-epoch callback (what a search's pruner hooks into) gets the monitored validation score of
    each epoch; a true return stops training there with the best weights kept, and a resume trains no more."""
    seen: list[tuple[int, float, dict]] = []

    def on_epoch(epoch, score, val):
        seen.append((epoch, score, dict(val)))
        return epoch == 2

    res = _fit(wd, _model(wd), _cfg(epochs=6), tmp_path, on_epoch=on_epoch)
    assert [e for e, _, _ in seen] == [1, 2]
    assert all(score == val["mae"] for _, score, val in seen)
    assert res.epochs_run == 2 and res.stopped_early and res.stop_reason == "requested"
    assert res.best_score == min(score for _, score, _ in seen)
    assert len(_read_log(tmp_path / "log.csv")) == 2
    again = _fit(wd, _model(wd), _cfg(epochs=6), tmp_path, resume=True)
    assert again.epochs_run == 2
