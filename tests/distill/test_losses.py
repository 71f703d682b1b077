"""Distillation losses: golden values computed by hand, masking, limits (alpha, T) and gradients."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from stkd.distill.losses import (
    ensemble_targets,
    event_kd_loss,
    focal_loss,
    hint_loss,
    inverse_error_weights,
    kd_kl_loss,
    masked_loss,
    relation_loss,
    response_kd_loss,
    teacher_bounded_loss,
    weighted_cross_entropy,
)


def t(*values, grad=False):
    return torch.tensor(values, dtype=torch.float64, requires_grad=grad)


def b(*values):
    return torch.tensor(values, dtype=torch.bool)


# ------------------------------------------------------------------------------ masked_loss
PRED = (1.0, 2.0, 3.0, 4.0)
TARGET = (1.5, 0.0, 3.0, 100.0)
MASK = (True, True, True, False)


def test_masked_loss_golden_values():
    p, y, m = t(*PRED), t(*TARGET), b(*MASK)
    # observed differences: -0.5, 2, 0 (the 4 vs 100 entry is masked out)
    assert masked_loss(p, y, m, "l1").item() == pytest.approx((0.5 + 2 + 0) / 3)
    assert masked_loss(p, y, m, "mse").item() == pytest.approx((0.25 + 4 + 0) / 3)
    # Huber, delta 1: 0.5 * 0.5^2 = 0.125; |2| > 1 -> 1 * (2 - 0.5) = 1.5; 0
    assert masked_loss(p, y, m, "huber").item() == pytest.approx((0.125 + 1.5 + 0) / 3)
    # Huber, delta 2: |2| <= 2 -> 0.5 * 2^2 = 2
    assert masked_loss(p, y, m, "huber", delta=2.0).item() == pytest.approx((0.125 + 2 + 0) / 3)
    assert masked_loss(p, y, None, "l1").item() == pytest.approx((0.5 + 2 + 0 + 96) / 4)
    with pytest.raises(ValueError, match="l2"):
        masked_loss(p, y, m, "l2")


def test_masked_loss_matches_torch_on_the_observed_subset():
    g = torch.Generator().manual_seed(0)
    p, y = torch.randn(4, 3, 5, 2, generator=g), torch.randn(4, 3, 5, 2, generator=g)
    m = torch.rand(4, 3, 5, 2, generator=g) > 0.3
    assert masked_loss(p, y, m, "l1").item() == pytest.approx(F.l1_loss(p[m], y[m]).item(), rel=1e-6)
    assert masked_loss(p, y, m, "mse").item() == pytest.approx(F.mse_loss(p[m], y[m]).item(), rel=1e-6)
    assert masked_loss(p, y, m, "huber").item() == pytest.approx(F.huber_loss(p[m], y[m]).item(), rel=1e-6)
    node_mask = torch.tensor([True, False, True, True, False]).reshape(1, 1, 5, 1)  # broadcast
    full = node_mask.expand_as(p)
    assert masked_loss(p, y, node_mask, "l1").item() == pytest.approx(F.l1_loss(p[full], y[full]).item(), rel=1e-6)


def test_masked_entries_do_not_change_the_loss_or_leak_nan():
    p = t(*PRED, grad=True)
    y = t(1.5, 0.0, 3.0, float("nan"))  # NaN under the mask
    loss = masked_loss(p, y, b(*MASK), "huber")
    assert loss.item() == pytest.approx(masked_loss(t(*PRED), t(*TARGET), b(*MASK), "huber").item())
    loss.backward()
    assert torch.isfinite(p.grad).all() and p.grad[3] == 0
    # the l1 gradient of the observed entries: sign(diff) / 3
    p2 = t(*PRED, grad=True)
    masked_loss(p2, y, b(*MASK), "l1").backward()
    assert p2.grad.tolist() == pytest.approx([-1 / 3, 1 / 3, 0.0, 0.0])


@pytest.mark.parametrize("kind", ["l1", "huber", "mse"])
def test_all_masked_gives_zero_with_finite_grads(kind):
    p = t(*PRED, grad=True)
    loss = masked_loss(p, t(*TARGET), torch.zeros(4, dtype=torch.bool), kind)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(p.grad, torch.zeros(4, dtype=torch.float64))


# ------------------------------------------------------------------------- response KD
S, Y, M, T = (1.0, 2.0, 3.0), (2.0, 2.0, 0.0), (True, True, False), (1.5, 3.0, 5.0)


def test_response_kd_golden_values():
    s, y, m, te = t(*S), t(*Y), b(*M), t(*T)
    # hard with fill_missing: target = where(mask, y, teacher) = [2, 2, 5] -> (1 + 0 + 2) / 3 = 1
    # hard without: observed only -> (1 + 0) / 2 = 0.5
    # soft: |1 - 1.5| + |2 - 3| + |3 - 5| = 3.5 over 3 entries
    assert response_kd_loss(s, y, m, te, 0.25, "l1", fill_missing=True).item() == pytest.approx(
        0.25 * 1.0 + 0.75 * 3.5 / 3)
    assert response_kd_loss(s, y, m, te, 0.25, "l1", fill_missing=False).item() == pytest.approx(
        0.25 * 0.5 + 0.75 * 3.5 / 3)
    # MSE: hard (fill) (1 + 0 + 4) / 3; soft (0.25 + 1 + 4) / 3
    assert response_kd_loss(s, y, m, te, 0.5, "mse").item() == pytest.approx(0.5 * 5 / 3 + 0.5 * 5.25 / 3)


def test_response_kd_counts_the_teacher_only_inside_its_mask():
    s, y, m, te = t(*S), t(*Y), b(*M), t(*T)
    # the teacher counts on entries 1 and 2 only (entry 3, missing truth, had imputed inputs)
    tm = b(True, True, False)
    # hard with fill_missing: entries observed or teacher-counted = 1, 2 -> (1 + 0) / 2 = 0.5 (no fill for 3)
    # soft: entries 1, 2 -> (0.5 + 1) / 2 = 0.75
    assert response_kd_loss(s, y, m, te, 0.25, "l1", fill_missing=True, teacher_mask=tm).item() == pytest.approx(
        0.25 * 0.5 + 0.75 * 0.75)
    # where the teacher counts on the missing entry too, it fills it: the hard term as without a mask
    tm3 = b(False, True, True)
    # hard: entries 1 (observed), 2, 3 -> (1 + 0 + 2) / 3 = 1; soft: entries 2, 3 -> (1 + 2) / 2 = 1.5
    assert response_kd_loss(s, y, m, te, 0.25, "l1", fill_missing=True, teacher_mask=tm3).item() == pytest.approx(
        0.25 * 1.0 + 0.75 * 1.5)
    # an all-True mask is no mask
    assert response_kd_loss(s, y, m, te, 0.4, "mse", teacher_mask=b(True, True, True)).item() == pytest.approx(
        response_kd_loss(s, y, m, te, 0.4, "mse").item())


@pytest.mark.parametrize("kind", ["l1", "huber", "mse"])
def test_response_kd_limits(kind):
    g = torch.Generator().manual_seed(1)
    s, y, te = (torch.randn(2, 3, 4, 1, generator=g) for _ in range(3))
    m = torch.rand(2, 3, 4, 1, generator=g) > 0.3
    # alpha = 1: the plain (masked) loss; alpha = 0: the pure teacher loss
    assert response_kd_loss(s, y, m, te, 1.0, kind, fill_missing=False).item() == pytest.approx(
        masked_loss(s, y, m, kind).item())
    assert response_kd_loss(s, y, m, te, 1.0, kind, fill_missing=True).item() == pytest.approx(
        masked_loss(s, torch.where(m, y, te), None, kind).item())
    assert response_kd_loss(s, y, m, te, 0.0, kind).item() == pytest.approx(masked_loss(s, te, None, kind).item())
    # with every entry observed, filling changes nothing
    full = torch.ones_like(m)
    assert response_kd_loss(s, y, full, te, 0.3, kind, True).item() == pytest.approx(
        response_kd_loss(s, y, full, te, 0.3, kind, False).item())
    with pytest.raises(ValueError):
        response_kd_loss(s, y, m, te, 1.5, kind)


def test_response_kd_treats_the_teacher_as_a_constant():
    s, te = t(*S, grad=True), t(*T, grad=True)
    response_kd_loss(s, t(*Y), b(*M), te, 0.5, "l1").backward()
    assert te.grad is None and torch.isfinite(s.grad).all()


# ---------------------------------------------------------------------- teacher-bounded
def test_teacher_bounded_golden_values():
    s, y, te = t(1.0, 2.0, 3.0, 4.0), t(0.0, 0.0, 0.0, 0.0), t(2.0, 1.0, 3.0, 0.0)
    m = b(True, True, True, False)
    # student errors 1, 2, 3, (4 masked); teacher errors 2, 1, 3, 0
    # margin 0: active where 1 > 2 (no), 2 > 1 (yes), 3 > 3 (no) -> (0 + 2 + 0) / 3 observed entries
    assert teacher_bounded_loss(s, y, m, te, 0.0, "l1").item() == pytest.approx(2 / 3)
    assert teacher_bounded_loss(s, y, m, te, 0.0, "mse").item() == pytest.approx(4 / 3)
    assert teacher_bounded_loss(s, y, m, te, 0.5, "l1").item() == pytest.approx(2 / 3)  # 2 > 1.5
    assert teacher_bounded_loss(s, y, m, te, 1.0, "l1").item() == 0.0  # 2 > 2 fails
    # negative margin (Chen et al.'s m = 0.5): 1 > 1.5 no, 2 > 0.5 yes, 3 > 2.5 yes -> (2 + 3) / 3
    assert teacher_bounded_loss(s, y, m, te, -0.5, "l1").item() == pytest.approx(5 / 3)


def test_teacher_bounded_is_zero_where_the_student_beats_the_teacher():
    y = t(1.0, 2.0, 3.0)
    s = t(1.1, 2.1, 2.9, grad=True)
    te = t(2.0, 0.0, 4.0)
    loss = teacher_bounded_loss(s, y, None, te)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(s.grad, torch.zeros(3, dtype=torch.float64))
    # only the worse entry gets a gradient: entry 1 (error 1.5 > 0.5)
    s2 = t(1.1, 3.5, 2.9, grad=True)
    teacher_bounded_loss(s2, y, None, t(2.0, 2.5, 4.0), kind="l1").backward()
    assert s2.grad.tolist() == pytest.approx([0.0, 1 / 3, 0.0])
    s3 = t(1.0, 2.0, 3.0, grad=True)
    out = teacher_bounded_loss(s3, y, torch.zeros(3, dtype=torch.bool), te)
    out.backward()
    assert out.item() == 0.0 and torch.isfinite(s3.grad).all()


# ------------------------------------------------------------------------- hint / relation
def test_hint_loss_golden_value_and_projection_gradients():
    s = t(1.0, 2.0).reshape(1, 1, 2)
    te = t(1.0, 1.0).reshape(1, 1, 2)
    # projection(s) = 2 s = [2, 4]; squared differences 1 and 9 -> mean 5
    assert hint_loss(s, te, lambda x: 2 * x).item() == pytest.approx(5.0)
    assert hint_loss(s, te).item() == pytest.approx((0 + 1) / 2)
    proj = torch.nn.Linear(4, 6)
    g = torch.Generator().manual_seed(0)
    hs, ht = torch.randn(2, 5, 4, generator=g, requires_grad=True), torch.randn(2, 5, 6, generator=g)
    loss = hint_loss(hs, ht, proj)
    assert loss.item() == pytest.approx(F.mse_loss(proj(hs), ht).item())
    loss.backward()
    assert proj.weight.grad is not None and hs.grad is not None
    with pytest.raises(ValueError, match="projection"):
        hint_loss(hs, ht)


def test_relation_loss_golden_value():
    # student: cos(s0, s1) = 0, cos(s0, s2) = cos(s1, s2) = 1/sqrt(2) = a
    s = t(1.0, 0.0, 0.0, 1.0, 1.0, 1.0).reshape(3, 2)
    # teacher (another width): t0 = t1, both orthogonal to t2
    te = t(1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0).reshape(3, 3)
    # differences: (0,1) 0 - 1 twice, (0,2) and (1,2) a - 0 four times, diagonal 0
    a2 = 0.5
    assert relation_loss(s, te).item() == pytest.approx((2 * 1 + 4 * a2) / 9)
    # only directions matter, and a batch axis averages
    assert relation_loss(3 * s, te).item() == pytest.approx(relation_loss(s, te).item())
    batched = relation_loss(torch.stack([s, s]), torch.stack([te, s @ torch.eye(2, 3, dtype=s.dtype)]))
    assert batched.item() == pytest.approx(((2 + 4 * a2) / 9 + 0) / 2)


def test_relation_loss_is_rotation_invariant_and_subsamples():
    g = torch.Generator().manual_seed(3)
    s = torch.randn(2, 50, 8, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(8, 8, generator=g, dtype=torch.float64))
    assert relation_loss(s, s @ q).item() == pytest.approx(0.0, abs=1e-12)
    te = torch.randn(2, 50, 16, generator=g, dtype=torch.float64)
    idx = torch.tensor([0, 7, 9, 20])
    assert relation_loss(s, te, node_idx=idx).item() == pytest.approx(
        relation_loss(s[:, idx], te[:, idx]).item())
    # max_nodes draws a random subset: the same as passing that subset
    sub = torch.randperm(50, generator=torch.Generator().manual_seed(5))[:10]
    drawn = relation_loss(s, te, max_nodes=10, generator=torch.Generator().manual_seed(5))
    assert drawn.item() == pytest.approx(relation_loss(s, te, node_idx=sub).item())
    with pytest.raises(ValueError):
        relation_loss(s, te[:, :40])
    zero = torch.zeros(4, 3, requires_grad=True)  # zero vectors: finite value and gradient
    out = relation_loss(zero, torch.randn(4, 5, generator=g))
    out.backward()
    assert torch.isfinite(out) and torch.isfinite(zero.grad).all()


# ------------------------------------------------------------------------------- event KD
LN3 = math.log(3.0)


def test_kd_kl_golden_values_and_temperature():
    s = t(0.0, 0.0).reshape(1, 2)  # softmax: [1/2, 1/2]
    te = t(LN3, 0.0).reshape(1, 2)  # softmax: [3/4, 1/4]
    kl_t1 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert kd_kl_loss(s, te, 1.0).item() == pytest.approx(kl_t1)
    # T = 2: teacher logits [ln 3 / 2, 0] -> p = [sqrt 3, 1] / (1 + sqrt 3); student unchanged
    r3 = math.sqrt(3.0)
    p0, p1 = r3 / (1 + r3), 1 / (1 + r3)
    kl_t2 = p0 * math.log(p0 / 0.5) + p1 * math.log(p1 / 0.5)
    assert kd_kl_loss(s, te, 2.0).item() == pytest.approx(4 * kl_t2)


def test_kd_kl_reduces_to_plain_kl_and_scales_by_t_squared():
    g = torch.Generator().manual_seed(0)
    s, te = torch.randn(6, 4, 3, generator=g), torch.randn(6, 4, 3, generator=g)
    plain = F.kl_div(F.log_softmax(s, -1), F.softmax(te, -1), reduction="sum") / (6 * 4)
    assert kd_kl_loss(s, te, 1.0).item() == pytest.approx(plain.item(), rel=1e-5)
    for temp in (0.5, 2.0, 4.0):
        kl_t = F.kl_div(F.log_softmax(s / temp, -1), F.softmax(te / temp, -1), reduction="sum") / 24
        assert kd_kl_loss(s, te, temp).item() == pytest.approx(temp ** 2 * kl_t.item(), rel=1e-5)
    assert kd_kl_loss(te, te, 3.0).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError):
        kd_kl_loss(s, te, 0.0)


def test_kd_kl_masking():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(5, 3, generator=g, requires_grad=True)
    te = torch.randn(5, 3, generator=g)
    m = b(True, False, True, True, False)
    assert kd_kl_loss(s, te, 2.0, m).item() == pytest.approx(kd_kl_loss(s[m], te[m], 2.0).item())
    s2 = s.detach().clone()
    s2[~m] = 99.0
    assert kd_kl_loss(s2, te, 2.0, m).item() == pytest.approx(kd_kl_loss(s, te, 2.0, m).item())
    out = kd_kl_loss(s, te, 2.0, torch.zeros(5, dtype=torch.bool))
    out.backward()
    assert out.item() == 0.0 and torch.equal(s.grad, torch.zeros_like(s))
    # a teacher given as probabilities with exact zeros (log 0 = -inf) stays finite
    probs = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.isfinite(kd_kl_loss(torch.zeros(1, 3), probs.log(), 2.0))


def test_weighted_cross_entropy_and_focal_golden_values():
    logits = t(LN3, 0.0, 0.0, 0.0).reshape(2, 2)  # probabilities [3/4, 1/4] and [1/2, 1/2]
    labels = torch.tensor([0, 1])
    ce0, ce1 = -math.log(0.75), math.log(2.0)
    assert weighted_cross_entropy(logits, labels).item() == pytest.approx((ce0 + ce1) / 2)
    # class weights [1, 3]: weighted mean (1 * ce0 + 3 * ce1) / (1 + 3)
    assert weighted_cross_entropy(logits, labels, class_weights=[1.0, 3.0]).item() == pytest.approx(
        (ce0 + 3 * ce1) / 4)
    # focal, gamma 2: (1 - 3/4)^2 * ce0 and (1 - 1/2)^2 * ce1
    assert focal_loss(logits, labels, gamma=2.0).item() == pytest.approx((0.0625 * ce0 + 0.25 * ce1) / 2)
    assert focal_loss(logits, labels, gamma=0.0).item() == pytest.approx((ce0 + ce1) / 2)
    # masked labels may hold -1
    assert weighted_cross_entropy(logits, torch.tensor([0, -1]), b(True, False)).item() == pytest.approx(ce0)
    with pytest.raises(ValueError, match="one weight per class"):
        weighted_cross_entropy(logits, labels, class_weights=[1.0, 2.0, 3.0])


def test_weighted_cross_entropy_matches_torch():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, 3, generator=g)
    labels = torch.randint(0, 3, (4, 6), generator=g)
    w = torch.tensor([0.2, 1.0, 5.0])
    ref = F.cross_entropy(logits.reshape(-1, 3), labels.reshape(-1), weight=w)
    assert weighted_cross_entropy(logits, labels, class_weights=w).item() == pytest.approx(ref.item(), rel=1e-6)
    m = torch.rand(4, 6, generator=g) > 0.5
    ref = F.cross_entropy(logits[m], labels[m], weight=w)
    assert weighted_cross_entropy(logits, labels, m, w).item() == pytest.approx(ref.item(), rel=1e-6)
    assert focal_loss(logits, labels, m, 0.0, w).item() == pytest.approx(ref.item(), rel=1e-6)


def test_event_kd_golden_value_and_limits():
    s = t(0.0, 0.0).reshape(1, 2)
    te = t(LN3, 0.0).reshape(1, 2)
    hard = torch.tensor([0])
    kl_t1 = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    # alpha 0.5, T 1: 0.5 * CE([1/2, 1/2], class 0) + 0.5 * KL = 0.5 ln 2 + 0.5 KL
    assert event_kd_loss(s, hard, None, te, 0.5, 1.0).item() == pytest.approx(0.5 * math.log(2) + 0.5 * kl_t1)
    g = torch.Generator().manual_seed(2)
    sl, tl = torch.randn(3, 5, 2, generator=g), torch.randn(3, 5, 2, generator=g)
    y = torch.randint(0, 2, (3, 5), generator=g)
    m = torch.rand(3, 5, generator=g) > 0.2
    assert event_kd_loss(sl, y, m, tl, 1.0, 3.0).item() == pytest.approx(F.cross_entropy(sl[m], y[m]).item(), rel=1e-6)
    assert event_kd_loss(sl, y, m, tl, 0.0, 3.0).item() == pytest.approx(kd_kl_loss(sl, tl, 3.0, m).item())
    focal = event_kd_loss(sl, y, m, tl, 0.4, 2.0, class_weights=[1.0, 4.0], focal_gamma=2.0)
    assert focal.item() == pytest.approx(0.4 * focal_loss(sl, y, m, 2.0, [1.0, 4.0]).item()
                                         + 0.6 * kd_kl_loss(sl, tl, 2.0, m).item(), rel=1e-6)


# ------------------------------------------------------------------------ several teachers
def test_ensemble_targets():
    a, c = t(1.0, 2.0), t(3.0, 6.0)
    assert ensemble_targets([a, c]).tolist() == pytest.approx([2.0, 4.0])
    # weights [1, 3] -> (1 * [1, 2] + 3 * [3, 6]) / 4 = [2.5, 5]; [2, 6] normalises to the same
    assert ensemble_targets([a, c], [1.0, 3.0]).tolist() == pytest.approx([2.5, 5.0])
    assert ensemble_targets([a, c], [2.0, 6.0]).tolist() == pytest.approx([2.5, 5.0])
    assert ensemble_targets([a.reshape(1, 2, 1)], None).shape == (1, 2, 1)
    for bad in ([1.0], [-1.0, 2.0], [0.0, 0.0], [float("nan"), 1.0]):
        with pytest.raises(ValueError):
            ensemble_targets([a, c], bad)
    with pytest.raises(ValueError):
        ensemble_targets([])


def test_inverse_error_weights():
    # 1/1, 1/2, 1/4 = 4/4, 2/4, 1/4 -> sum 7/4 -> [4/7, 2/7, 1/7]
    assert inverse_error_weights([1.0, 2.0, 4.0]) == pytest.approx([4 / 7, 2 / 7, 1 / 7])
    assert inverse_error_weights([0.0, 1.0]) == [1.0, 0.0]
    assert inverse_error_weights([2.0, float("inf"), float("nan")]) == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        inverse_error_weights([-1.0, 1.0])
    with pytest.raises(ValueError):
        inverse_error_weights([float("nan")])
