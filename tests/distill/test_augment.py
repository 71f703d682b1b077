"""Golden tests of the teacher-labelled augmentations (stkd.distill.augment) and their term."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stkd.distill.augment import draw


def augment(kind, x, t, generator, **knobs):
    """The student's input and its target from cached labels for one augmentation (``distill.augment_labels:
    cached``): the draw applied to the input, and the teacher's forecast of the clean windows through it."""
    d = draw(kind, x, generator, **knobs)
    return d.inputs(x), d.targets(t)


def _xt(B=8, P=4, N=5, H=3):
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, P, N, 1, generator=g), torch.randn(B, H, N, 1, generator=g)


def test_noise_adds_gaussian_noise_and_keeps_the_teachers_target():
    x, t = _xt()
    xa, ta = augment("noise", x, t, torch.Generator().manual_seed(3), noise_std=0.5)
    expected = x + 0.5 * torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(xa, expected)
    assert torch.equal(ta, t)


def test_mask_blanks_whole_sensors_at_the_given_share():
    x, t = _xt(B=64, N=50)
    xa, ta = augment("mask", x, t, torch.Generator().manual_seed(1), mask_share=0.2)
    blank = (xa == 0).all(dim=1).squeeze(-1)  # [B, N]: a sensor's whole window
    kept = (xa == x).all(dim=1).squeeze(-1)
    assert bool((blank | kept).all())  # a sensor is either blanked entirely or untouched
    assert 0.15 < float(blank.float().mean()) < 0.25 and torch.equal(ta, t)
    assert torch.equal(augment("mask", x, t, torch.Generator().manual_seed(1), mask_share=0.0)[0], x)


def test_mixup_mixes_inputs_and_targets_with_the_same_weight():
    x, t = _xt()
    xa, ta = augment("mixup", x, t, torch.Generator().manual_seed(2), mixup_alpha=0.4)
    # recover lam and the partner per window from a constant-per-window probe
    probe_x = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand_as(x).contiguous()
    probe_t = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand_as(t).contiguous()
    px, pt = augment("mixup", probe_x, probe_t, torch.Generator().manual_seed(2), mixup_alpha=0.4)
    torch.testing.assert_close(px[:, 0, 0, 0], pt[:, 0, 0, 0])  # the same lam and partner for x and t
    g = torch.Generator().manual_seed(2)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
    draw = np.random.default_rng(seed).beta(0.4, 0.4, size=8)
    lam = torch.as_tensor(np.maximum(draw, 1 - draw), dtype=torch.float32)
    perm = torch.randperm(8, generator=g)
    torch.testing.assert_close(xa, lam.view(8, 1, 1, 1) * x + (1 - lam.view(8, 1, 1, 1)) * x[perm])
    torch.testing.assert_close(ta, lam.view(8, 1, 1, 1) * t + (1 - lam.view(8, 1, 1, 1)) * t[perm])
    assert bool((lam >= 0.5).all())
    with pytest.raises(ValueError, match="noise, mask, mixup, shift"):
        augment("rotate", x, t, torch.Generator())


def test_shift_delays_each_sensor_by_at_most_max_shift_steps_and_keeps_the_teachers_target():
    B, P, N = 16, 6, 7
    # a ramp per sensor: a reading's value says at which step of the window it was taken
    x = (torch.arange(P, dtype=torch.float32).view(1, P, 1, 1) + 100 * torch.arange(N).view(1, 1, N, 1)).expand(
        B, P, N, 1).contiguous()
    t = torch.randn(B, 3, N, 1, generator=torch.Generator().manual_seed(0))
    xa, ta = augment("shift", x, t, torch.Generator().manual_seed(4), max_shift=2)
    delay = x[:, -1] - xa[:, -1]  # [B, N, 1]: the last step shows how late each sensor's readings are
    assert set(delay.unique().tolist()) == {0.0, 1.0, 2.0}  # every delay 0..2 drawn, none beyond
    for p in range(P):  # step p reads step p - delay, the first step where the window runs out
        torch.testing.assert_close(xa[:, p], x[:, 0] + (p - delay).clamp_min(0))
    assert torch.equal(ta, t)  # the forecast of the same hours
    again, _ = augment("shift", x, t, torch.Generator().manual_seed(4), max_shift=2)
    assert torch.equal(again, xa)  # the same generator state, the same shift


def test_a_distilled_run_with_every_new_term_trains_and_logs_each(tmp_path, los_small_config):
    import csv

    import yaml

    from stkd.cli import main

    raw = los_small_config()
    raw["distill"] = {"alpha": 0.5, "multiscale_weight": 0.3, "period_weight": 0.1,
                      "augment": ["noise", "mask", "mixup", "shift"], "augment_weight": 0.5}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "run"), "--quiet"]) == 0
    with open(tmp_path / "run" / "models" / "stid_kd" / "log.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    for term in ("hard", "soft", "multiscale", "period", "augment"):
        assert np.isfinite(float(row[f"loss_{term}"])), term
    from stkd.config import parse_config
    from stkd.errors import ConfigError

    with pytest.raises(ConfigError, match="augment_weight > 0 needs distill.augment"):
        parse_config({"distill": {"augment_weight": 0.5}})
    with pytest.raises(ConfigError, match="distill.augment: 'rotate'"):
        parse_config({"distill": {"augment": ["rotate"], "augment_weight": 0.5}})
    with pytest.raises(ConfigError, match=r"distill.max_shift: augment shift needs 1..11 \(data.window.input - 1\)"):
        parse_config({"distill": {"augment": ["shift"], "augment_weight": 0.5, "max_shift": 12}})
    assert parse_config({"distill": {"augment": ["mask"], "augment_weight": 0.5, "max_shift": 12}})  # unused there
