"""Golden values of the multi-scale and period distillation terms (TimeDistill-style), computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from stkd.distill.losses import multiscale_loss, period_loss


def test_multiscale_loss_compares_horizon_averages_at_each_scale():
    # one series, H = 4: student 0 0 0 0, teacher 1 3 5 7
    s = torch.zeros(1, 4, 1, 1)
    t = torch.tensor([1.0, 3.0, 5.0, 7.0]).view(1, 4, 1, 1)
    # scale 2: pooled teacher (2, 6) -> |2| + |6| over 2 = 4; scale 4: pooled 4 -> 4; mean = 4 (l1)
    assert float(multiscale_loss(s, t, scales=(2, 4), kind="l1")) == pytest.approx(4.0)
    # mse: scale 2 -> (4 + 36) / 2 = 20; scale 4 -> 16; mean 18
    assert float(multiscale_loss(s, t, scales=(2, 4), kind="mse")) == pytest.approx(18.0)
    # a scale beyond the horizon pools all of it
    assert float(multiscale_loss(s, t, scales=(99,), kind="l1")) == pytest.approx(4.0)
    # a student that only gets the teacher's averages right pays nothing at those scales
    s2 = torch.tensor([2.0, 2.0, 6.0, 6.0]).view(1, 4, 1, 1)
    assert float(multiscale_loss(s2, t, scales=(2, 4), kind="l1")) == pytest.approx(0.0)


def test_multiscale_gradient_reaches_the_student_only():
    s = torch.zeros(2, 6, 3, 1, requires_grad=True)
    t = torch.randn(2, 6, 3, 1, requires_grad=True)
    multiscale_loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0 and t.grad is None


def test_period_loss_is_the_kl_between_softmaxed_amplitude_spectra():
    H = 4  # rfft bins 0, 1, 2; the loss uses bins 1 and 2
    t = torch.tensor([1.0, 0.0, -1.0, 0.0]).view(1, H, 1, 1)  # one cycle: |X1| = 2, |X2| = 0
    s = torch.tensor([1.0, -1.0, 1.0, -1.0]).view(1, H, 1, 1)  # alternating: |X1| = 0, |X2| = 4
    T = 2.0
    p_t = torch.softmax(torch.tensor([2.0, 0.0]) / T, 0)
    p_s = torch.softmax(torch.tensor([0.0, 4.0]) / T, 0)
    expected = T * T * float((p_t * (p_t.log() - p_s.log())).sum())
    assert float(period_loss(s, t, temperature=T)) == pytest.approx(expected, rel=1e-6)
    # the level does not matter: a constant added to the forecast changes only the DC bin
    assert float(period_loss(s + 10.0, t, temperature=T)) == pytest.approx(expected, rel=1e-5)
    assert float(period_loss(t, t)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="at least 3"):
        period_loss(torch.zeros(1, 2, 1, 1), torch.zeros(1, 2, 1, 1))
    assert math.isfinite(float(period_loss(torch.randn(3, 12, 5, 2), torch.randn(3, 12, 5, 2))))
