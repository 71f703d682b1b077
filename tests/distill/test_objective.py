"""The objective: weighted named terms, skipped zero weights, and the builders from DistillConfig."""

from __future__ import annotations

import pytest
import torch

from stkd.config import DistillConfig
from stkd.distill.losses import (
    event_kd_loss,
    hint_loss,
    masked_loss,
    response_kd_loss,
    teacher_bounded_loss,
)
from stkd.distill.objective import (
    Objective,
    Term,
    build_event_objective,
    build_forecast_objective,
)


def _never(_):
    raise AssertionError("a term with weight 0 must not be computed")


def test_weighted_sum_of_named_terms():
    x = torch.tensor(2.0, requires_grad=True)
    obj = Objective([Term("a", 0.5, lambda o: o["x"] ** 2), Term("b", 3.0, lambda o: o["x"]),
                     Term("off", 0.0, _never)])
    total, values = obj({"x": x})
    # 0.5 * 2^2 + 3 * 2 = 8; the dict holds unweighted values, without the skipped term
    assert total.item() == pytest.approx(8.0)
    assert values == {"a": 4.0, "b": 2.0}
    total.backward()
    assert x.grad.item() == pytest.approx(0.5 * 2 * 2 + 3.0)
    assert "0.5*a + 3*b" in repr(obj)


def test_bad_objectives():
    with pytest.raises(ValueError, match="unique"):
        Objective([Term("a", 1.0, _never), Term("a", 1.0, _never)])
    with pytest.raises(ValueError, match="non-zero"):
        Objective([Term("a", 0.0, _never)])


def _outputs(seed=0, B=2, H=3, N=5, D_s=4, D_t=6):
    g = torch.Generator().manual_seed(seed)
    return {
        "student_pred": torch.randn(B, H, N, 1, generator=g, requires_grad=True),
        "y": torch.randn(B, H, N, 1, generator=g),
        "mask": torch.rand(B, H, N, 1, generator=g) > 0.3,
        "teacher_pred": torch.randn(B, H, N, 1, generator=g),
        "student_hidden": torch.randn(B, N, D_s, generator=g, requires_grad=True),
        "teacher_hidden": torch.randn(B, N, D_t, generator=g),
    }


def test_without_teacher_one_hard_term():
    o = _outputs()
    obj = build_forecast_objective(None, "l1")
    total, values = obj({k: o[k] for k in ("student_pred", "y", "mask")})
    assert list(values) == ["hard"]
    assert total.item() == pytest.approx(masked_loss(o["student_pred"], o["y"], o["mask"], "l1").item())


@pytest.mark.parametrize("fill", [True, False])
def test_response_objective_equals_response_kd_loss(fill):
    o = _outputs()
    cfg = DistillConfig(alpha=0.3, loss="huber", fill_missing=fill)
    needed = {k: o[k] for k in ("student_pred", "y", "mask", "teacher_pred")}
    total, values = build_forecast_objective(cfg, "l1")(needed)
    assert set(values) == {"hard", "soft"}  # hint and relation have weight 0: not computed, no hidden needed
    ref = response_kd_loss(o["student_pred"], o["y"], o["mask"], o["teacher_pred"], 0.3, "huber", fill)
    assert total.item() == pytest.approx(ref.item(), rel=1e-6)
    total.backward()
    assert torch.isfinite(o["student_pred"].grad).all()


def test_the_teacher_mask_reaches_both_response_terms():
    o = _outputs()
    g = torch.Generator().manual_seed(5)
    teacher_mask = torch.rand(o["mask"].shape[0], 1, *o["mask"].shape[2:], generator=g) > 0.5  # [B, 1, N, F]
    needed = {k: o[k] for k in ("student_pred", "y", "mask", "teacher_pred")} | {"teacher_mask": teacher_mask}
    cfg = DistillConfig(alpha=0.3, loss="l1", teacher_scope="observed-inputs")
    total, _ = build_forecast_objective(cfg, "l1")(needed)
    ref = response_kd_loss(o["student_pred"], o["y"], o["mask"], o["teacher_pred"], 0.3, "l1", True,
                           teacher_mask=teacher_mask)
    assert total.item() == pytest.approx(ref.item(), rel=1e-6)
    unmasked = response_kd_loss(o["student_pred"], o["y"], o["mask"], o["teacher_pred"], 0.3, "l1", True)
    assert total.item() != pytest.approx(unmasked.item(), rel=1e-3)


def test_alpha_one_skips_the_teacher_term():
    o = _outputs()
    total, values = build_forecast_objective(DistillConfig(alpha=1.0, loss="mse", fill_missing=False), "l1")(o)
    assert list(values) == ["hard"]
    assert total.item() == pytest.approx(masked_loss(o["student_pred"], o["y"], o["mask"], "mse").item())


def test_bounded_hint_and_relation_terms():
    o = _outputs()
    proj = torch.nn.Linear(4, 6)
    cfg = DistillConfig(alpha=0.5, loss="l1", bounded=True, margin=0.1, feature_weight=0.2, relation_weight=2.0)
    obj = build_forecast_objective(cfg, "huber", projection=proj)
    total, values = obj(o)
    assert list(values) == ["hard", "bounded", "hint", "relation"]
    bounded = teacher_bounded_loss(o["student_pred"], o["y"], o["mask"], o["teacher_pred"], 0.1, "l1")
    assert values["bounded"] == pytest.approx(bounded.item())
    assert values["hint"] == pytest.approx(hint_loss(o["student_hidden"], o["teacher_hidden"], proj).item())
    expected = 0.5 * values["hard"] + 0.5 * values["bounded"] + 0.2 * values["hint"] + 2.0 * values["relation"]
    assert total.item() == pytest.approx(expected, rel=1e-6)
    total.backward()
    assert proj.weight.grad is not None and o["student_hidden"].grad is not None


def test_unknown_loss_is_an_error():
    with pytest.raises(ValueError, match="distill.loss"):
        build_forecast_objective(DistillConfig(loss="l3"), "l1")


def test_event_objective_equals_event_kd_loss():
    g = torch.Generator().manual_seed(0)
    s, te = torch.randn(2, 3, 4, 2, generator=g), torch.randn(2, 3, 4, 2, generator=g)
    y = torch.randint(0, 2, (2, 3, 4), generator=g)
    m = torch.rand(2, 3, 4, generator=g) > 0.2
    out = {"student_pred": s, "teacher_pred": te, "y": y, "mask": m}
    cfg = DistillConfig(alpha=0.4, temperature=3.0)
    total, values = build_event_objective(cfg, class_weights=[1.0, 5.0], focal_gamma=1.0)(out)
    ref = event_kd_loss(s, y, m, te, 0.4, 3.0, class_weights=[1.0, 5.0], focal_gamma=1.0)
    assert set(values) == {"hard", "soft"} and total.item() == pytest.approx(ref.item(), rel=1e-6)
    total, values = build_event_objective(None)(out)
    assert list(values) == ["hard"]
