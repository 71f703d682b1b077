"""Augmented inputs labelled online (``distill.augment_labels: online``): the teacher forecasts the very
input the student sees, each teacher on its own view of the windows changed by the same draw."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
import yaml

from stkd.config import InputsConfig, parse_config
from stkd.data.windows import load_windowed
from stkd.distill.augment import draw
from stkd.distill.losses import ensemble_targets
from stkd.errors import ConfigError
from stkd.evaluate import to_original_units
from stkd.models.registry import build_model
from stkd.runs import Trained
from stkd.steps import model_spec
from stkd.tasks.forecast import ForecastSignal, ForecastTask


def test_a_draw_changes_every_view_of_the_windows_alike():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 4, 5, 1, generator=g)  # [B, P, N, F]: the student's window
    longer = torch.cat([torch.randn(6, 8, 5, 1, generator=g), x], dim=1)  # [B, 12, N, F]: ends with it
    lagged = torch.randn(6, 4, 5, 3, generator=g)  # [B, P, N, 3]: other channels
    for kind in ("mask", "mixup"):
        d = draw(kind, x, torch.Generator().manual_seed(5), mask_share=0.4)
        assert torch.equal(d.inputs(longer)[:, -4:], d.inputs(x))  # the shared steps changed alike
        assert not torch.equal(d.inputs(x), x)
        if kind == "mask":  # the same sensors blanked in every view
            blank = (d.inputs(lagged) == 0).all(dim=(1, 3))  # [B, N]
            assert torch.equal(blank, (d.inputs(x) == 0).all(dim=(1, 3))) and bool(blank.any())
        else:  # the same weight and partner: a probe constant per window recovers them
            probe = torch.arange(6.0).view(6, 1, 1, 1)
            torch.testing.assert_close(d.inputs(probe.expand_as(x).contiguous())[:, 0, 0, 0],
                                       d.inputs(probe.expand_as(lagged).contiguous())[:, 0, 0, 0])
    shift = draw("shift", x, torch.Generator().manual_seed(5), max_shift=3)
    late = shift.delay  # [B, 1, N, 1]: the same delays in every view
    steps = torch.arange(4).view(1, 4, 1, 1)
    kept = (steps >= late).expand_as(x)  # where the student's delayed window does not run out
    assert torch.equal(shift.inputs(longer)[:, -4:][kept], shift.inputs(x)[kept]) and bool(late.gt(0).any())
    torch.testing.assert_close(shift.inputs(lagged), torch.gather(lagged, 1, (steps - late).clamp_min(0).expand_as(
        lagged)))  # by default every channel is live: all delayed alike
    one_live = shift.inputs(lagged, live=1)  # a lagged view: its first channel live, the lags long arrived
    torch.testing.assert_close(one_live[..., :1], shift.inputs(lagged)[..., :1])
    assert torch.equal(one_live[..., 1:], lagged[..., 1:])
    real = torch.gather(longer, 1, (8 + steps - late).expand_as(x))  # the longer view's real earlier readings
    assert torch.equal(shift.inputs(longer)[:, -4:], real) and not torch.equal(real[~kept], shift.inputs(x)[~kept])
    noise = draw("noise", x, torch.Generator().manual_seed(5), noise_std=0.3)
    torch.testing.assert_close(noise.inputs(x) - x, noise.noise)
    with pytest.raises(ValueError, match="noise drawn for inputs of shape"):
        noise.inputs(longer)


@pytest.fixture(scope="module")
def small(los_small_config):
    cfg = parse_config(los_small_config())
    return cfg, load_windowed(cfg.data)


def _teacher(wd, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("mlp", model_spec(wd), {"hidden": [8]})


def test_a_lagged_views_live_channels_are_its_own_readings(small):
    _, wd = small
    lagged = wd.view(InputsConfig(lags=["1D"]))
    assert wd.live_channels == wd.in_features and lagged.live_channels == wd.in_features
    assert lagged.in_features == 2 * wd.in_features  # the lag's channels after the live ones


def test_online_labels_are_the_teachers_forecast_of_the_augmented_input(small):
    _, wd = small
    view = wd.view(InputsConfig(length=24))  # a teacher reading two hours: its own view of the windows
    plain_teacher, long_teacher = _teacher(wd, 1), _teacher(view, 2)
    signal = ForecastSignal([], ["mlp", "mlp"], [0.25, 0.75], online=[(plain_teacher, wd), (long_teacher, view)])
    batch = wd.batch(wd.starts["train"][:16])
    for kind in ("mask", "mixup", "shift"):
        d = draw(kind, batch.x, torch.Generator().manual_seed(3), mask_share=0.5)
        got = signal.relabel(d, batch)  # [B, H, N, F_out]
        long_batch = view.batch(batch.start)
        with torch.no_grad():
            first = to_original_units(wd, plain_teacher(d.inputs(batch.x), batch.tod, batch.dow)["pred"])
            second = to_original_units(view, long_teacher(d.inputs(long_batch.x), long_batch.tod,
                                                          long_batch.dow)["pred"])
            clean = ensemble_targets([to_original_units(wd, plain_teacher(batch.x, batch.tod, batch.dow)["pred"]),
                                      to_original_units(view, long_teacher(long_batch.x, long_batch.tod,
                                                                           long_batch.dow)["pred"])], [0.25, 0.75])
        assert got.shape == (16, wd.H, wd.num_nodes, wd.out_features) and not got.requires_grad
        torch.testing.assert_close(got, 0.25 * first + 0.75 * second)
        assert not torch.allclose(got, d.targets(clean))  # not what the cached labels give
    with pytest.raises(ValueError, match="augment_labels: online"):
        ForecastSignal([], ["mlp"], None).relabel(d, batch)


def test_noise_with_a_privileged_teacher_is_refused_and_names_the_teacher(small):
    cfg, wd = small
    cfg.distill.augment, cfg.distill.augment_weight, cfg.distill.augment_labels = ["noise", "mixup"], 0.5, "online"
    task = ForecastTask(cfg, wd)
    plain = Trained("gwnet", "teacher", _teacher(wd, 0), "mlp", 1.0)
    assert task.online_teachers([plain]) == [(plain.model, wd)]
    long = Trained("stid", "teacher", _teacher(wd, 0), "mlp", 1.0, inputs=InputsConfig(length=24))
    with pytest.raises(ConfigError, match="noise with augment_labels: online.*teacher 'stid' reads"):
        task.online_teachers([plain, long])
    cfg.distill.augment = ["mask", "mixup"]
    assert [v.input_len for _, v in task.online_teachers([plain, long])] == [wd.P, 24]
    with pytest.raises(ConfigError, match="distill.augment_labels: 'onlne' is not one of cached, online; did you"):
        parse_config({"distill": {"augment_labels": "onlne"}})


def test_a_run_with_online_labels_trains_the_augmented_term(tmp_path, los_small_config):
    from stkd.cli import main

    raw = los_small_config()
    raw["distill"] = {"alpha": 0.5, "augment": ["mask", "mixup"], "augment_weight": 1.0, "augment_labels": "online"}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    with open(tmp_path / "run" / "models" / "stid_kd" / "log.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert all(np.isfinite(float(r["loss_augment"])) and float(r["loss_augment"]) > 0 for r in rows)
    card = yaml.safe_load((tmp_path / "run" / "models" / "stid_kd" / "model.json").read_text())
    assert card["distill"]["augment_labels"] == "online"
