"""Metrics: hand-computed golden values and scikit-learn references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

from stkd.metrics import (
    ForecastAccumulator,
    best_threshold,
    class_agreement,
    classification_metrics,
    expected_calibration_error,
    forecast_metrics,
    mae,
    mape,
    mse,
    rmse,
)

# ------------------------------------------------------------------ masked regression metrics
PRED = np.array([[1.0, 2.0], [3.0, 4.0]])
Y = np.array([[2.0, 2.0], [1.0, 8.0]])
MASK = np.array([[True, True], [True, False]])


def test_regression_golden_values():
    # observed errors: |1-2| = 1, |2-2| = 0, |3-1| = 2 (the 4 vs 8 entry is masked out)
    assert mae(PRED, Y, MASK) == pytest.approx((1 + 0 + 2) / 3)
    assert mse(PRED, Y, MASK) == pytest.approx((1 + 0 + 4) / 3)
    assert rmse(PRED, Y, MASK) == pytest.approx(math.sqrt(5 / 3))
    # percentage errors: 1/2 = 50 %, 0/2 = 0 %, 2/1 = 200 %
    assert mape(PRED, Y, MASK) == pytest.approx((50 + 0 + 200) / 3)
    assert isinstance(mae(PRED, Y, MASK), float)


def test_masked_entries_do_not_matter():
    y2 = Y.copy()
    y2[1, 1] = np.nan  # garbage under the mask
    p2 = PRED.copy()
    p2[1, 1] = 1e9
    for f in (mae, mse, rmse, mape):
        assert f(p2, y2, MASK) == pytest.approx(f(PRED, Y, MASK))


def test_nan_target_counts_as_missing_and_no_mask_means_all():
    y = np.array([1.0, np.nan, 3.0])
    p = np.array([2.0, 5.0, 3.0])
    assert mae(p, y) == pytest.approx(0.5)
    assert mae(np.array([1.0, 2.0]), np.array([2.0, 4.0])) == pytest.approx(1.5)


def test_null_value_sentinel():
    y = np.array([0.0, 2.0, 4.0])
    p = np.array([5.0, 3.0, 4.0])
    assert mae(p, y, null_value=0.0) == pytest.approx((1 + 0) / 2)
    assert mae(p, y) == pytest.approx((5 + 1 + 0) / 3)


def test_mape_skips_zero_targets_and_is_never_inf():
    p = np.array([1.0, 3.0, 0.5])
    y = np.array([0.0, 2.0, 1e-6])
    assert mape(p, y) == pytest.approx(50.0)  # only |3 - 2| / 2 counts
    assert mape(p, y, eps=1e-7) == pytest.approx((50.0 + 100 * (0.5 - 1e-6) / 1e-6) / 2)
    assert math.isnan(mape(np.ones(3), np.zeros(3)))
    assert not math.isinf(mape(torch.ones(3), torch.zeros(3)).item())


def test_all_masked_gives_nan_not_zero():
    m = np.zeros_like(MASK)
    for f in (mae, mse, rmse, mape):
        assert math.isnan(f(PRED, Y, m))
        assert torch.isnan(f(torch.tensor(PRED), torch.tensor(Y), torch.tensor(m)))


def test_against_sklearn(rng):
    p = rng.normal(50, 10, size=(8, 12, 5, 1))
    y = rng.normal(50, 10, size=p.shape)
    m = rng.random(p.shape) > 0.3
    assert mae(p, y, m) == pytest.approx(skm.mean_absolute_error(y[m], p[m]))
    assert mse(p, y, m) == pytest.approx(skm.mean_squared_error(y[m], p[m]))
    assert rmse(p, y, m) == pytest.approx(math.sqrt(skm.mean_squared_error(y[m], p[m])))
    assert mape(p, y, m) == pytest.approx(100 * skm.mean_absolute_percentage_error(y[m], p[m]))


def test_torch_twin_matches_numpy_and_is_differentiable(rng):
    p = rng.normal(size=(4, 3, 6, 2))
    y = rng.normal(size=p.shape) + 3
    m = rng.random(p.shape) > 0.2
    pt = torch.tensor(p, requires_grad=True)
    for f in (mae, mse, rmse, mape):
        out = f(pt, torch.tensor(y), torch.tensor(m))
        assert isinstance(out, torch.Tensor) and out.dim() == 0
        assert out.item() == pytest.approx(f(p, y, m))
    mae(pt, torch.tensor(y), m).backward()  # a numpy mask is accepted beside tensors
    assert torch.isfinite(pt.grad).all()
    assert (pt.grad[torch.tensor(~m)] == 0).all()


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        mae(np.zeros(3), np.zeros(4))


# ------------------------------------------------------------------------ forecast_metrics
def _step_offset_case(W=3, H=12, N=4):
    """pred = y + h at 1-indexed step h: the error at horizon h is exactly h."""
    y = np.full((W, H, N, 1), 10.0)
    steps = np.arange(1, H + 1, dtype=float).reshape(1, H, 1, 1)
    return y + steps, y, np.ones_like(y, dtype=bool)


def test_forecast_metrics_layout_and_horizon_keys():
    pred, y, mask = _step_offset_case()
    out = forecast_metrics(pred, y, mask)
    assert set(out) == {"mae", "rmse", "mape", "horizons", "per_step", "per_node_mae"}
    assert list(out["horizons"]) == ["3", "6", "12"]
    # horizon "3" is the third step ahead (index 2): error 3, on targets of 10 -> 30 %
    assert out["horizons"]["3"] == pytest.approx({"mae": 3.0, "rmse": 3.0, "mape": 30.0})
    assert out["horizons"]["6"]["mae"] == pytest.approx(6.0)
    assert out["horizons"]["12"]["mae"] == pytest.approx(12.0)
    assert [s["mae"] for s in out["per_step"]] == pytest.approx(list(range(1, 13)))
    # averaged over all steps' entries: mean of 1..12 = 6.5; RMSE = sqrt(mean of squares) = sqrt(650 / 12)
    assert out["mae"] == pytest.approx(6.5)
    assert out["rmse"] == pytest.approx(math.sqrt(sum(h * h for h in range(1, 13)) / 12))
    assert out["per_node_mae"] == pytest.approx([6.5] * 4)
    with pytest.raises(ValueError, match="horizon 13"):
        forecast_metrics(pred, y, mask, horizons=(3, 13))


def test_forecast_metrics_agree_with_elementwise_metrics(rng):
    W, H, N = 6, 12, 5
    pred = rng.normal(40, 5, size=(W, H, N, 2))
    y = rng.normal(40, 5, size=pred.shape)
    mask = rng.random(pred.shape) > 0.25
    mask[:, :, 3] = False  # a node never observed
    y[1, 4, 0, 0] = 0.0  # a zero target: MAPE skips it
    out = forecast_metrics(pred, y, mask, horizons=(1, 3, 12))
    assert out["mae"] == pytest.approx(mae(pred, y, mask))
    assert out["rmse"] == pytest.approx(rmse(pred, y, mask))
    assert out["mape"] == pytest.approx(mape(pred, y, mask))
    for h in (1, 3, 12):
        s = slice(h - 1, h)
        assert out["horizons"][str(h)]["mae"] == pytest.approx(mae(pred[:, s], y[:, s], mask[:, s]))
        assert out["horizons"][str(h)]["rmse"] == pytest.approx(rmse(pred[:, s], y[:, s], mask[:, s]))
        assert out["horizons"][str(h)]["mape"] == pytest.approx(mape(pred[:, s], y[:, s], mask[:, s]))
    for n in (0, 4):
        assert out["per_node_mae"][n] == pytest.approx(mae(pred[:, :, n], y[:, :, n], mask[:, :, n]))
    assert math.isnan(out["per_node_mae"][3])
    assert all(math.isfinite(out[k]) for k in ("mae", "rmse", "mape"))


def test_accumulator_over_batches_equals_one_shot(rng):
    pred = rng.normal(size=(10, 12, 7, 1)).astype(np.float32)
    y = rng.normal(size=pred.shape).astype(np.float32) + 5
    mask = rng.random(pred.shape) > 0.1
    one_shot = forecast_metrics(pred, y, mask)
    acc = ForecastAccumulator(12, 7)
    for lo, hi in ((0, 3), (3, 4), (4, 10)):  # mixed backends, uneven batches
        if lo == 3:
            acc.update(torch.from_numpy(pred[lo:hi]), torch.from_numpy(y[lo:hi]), torch.from_numpy(mask[lo:hi]))
        else:
            acc.update(pred[lo:hi], y[lo:hi], mask[lo:hi])
    streamed = acc.compute()
    assert streamed["mae"] == pytest.approx(one_shot["mae"], rel=1e-12)
    for h in ("3", "6", "12"):
        assert streamed["horizons"][h] == pytest.approx(one_shot["horizons"][h], rel=1e-12)
    assert streamed["per_node_mae"] == pytest.approx(one_shot["per_node_mae"], rel=1e-12)
    # two ranks' accumulators merge into the same result
    a, b = ForecastAccumulator(), ForecastAccumulator()
    a.update(pred[:5], y[:5], mask[:5])
    b.update(pred[5:], y[5:], mask[5:])
    assert a.merge(b).compute()["rmse"] == pytest.approx(one_shot["rmse"], rel=1e-12)
    with pytest.raises(ValueError):
        ForecastAccumulator(12, 7).update(pred[:, :6], y[:, :6], mask[:, :6])


def test_accumulator_broadcast_mask_and_all_masked():
    pred, y, _ = _step_offset_case(W=2, H=4, N=3)
    mask = np.zeros((2, 4, 3, 1), dtype=bool)
    out = forecast_metrics(pred, y, mask, horizons=(1,))
    assert math.isnan(out["mae"]) and math.isnan(out["horizons"]["1"]["rmse"])
    node_mask = np.array([True, False, True]).reshape(1, 1, 3, 1)
    out = forecast_metrics(pred, y, node_mask, horizons=(2,))
    assert out["horizons"]["2"]["mae"] == pytest.approx(2.0)
    assert math.isnan(out["per_node_mae"][1])


# -------------------------------------------------------------------------- classification
def test_binary_classification_against_sklearn(rng):
    M = 300
    prob = rng.random(M)
    y = (rng.random(M) < 0.6 * prob).astype(int)
    for threshold in (0.5, 0.3):
        out = classification_metrics(prob, y, threshold=threshold)
        pred = (prob >= threshold).astype(int)
        p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
        assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
        assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((p, r, f))
        assert out["f1_macro"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
        pc, rc, fc, sc = skm.precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
        assert out["per_class"]["f1"] == pytest.approx(fc.tolist())
        assert out["per_class"]["support"] == sc.tolist()
        assert out["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
        assert out["threshold"] == threshold
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(y, prob))
    assert out["average_precision"] == pytest.approx(skm.average_precision_score(y, prob))
    # the same probabilities as two columns give the same numbers
    two = classification_metrics(np.stack([1 - prob, prob], axis=1), y, threshold=0.3)
    assert two["f1"] == pytest.approx(out["f1"])
    assert two["auroc"] == pytest.approx(out["auroc"]) and two["ece"] == pytest.approx(out["ece"])


def test_multiclass_classification_against_sklearn(rng):
    M, K = 400, 3
    logits = rng.normal(size=(M, K))
    y = rng.integers(0, K, size=M)
    logits[np.arange(M), y] += 1.0  # better than chance
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = classification_metrics(prob, y)
    pred = prob.argmax(axis=1)
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average="macro", zero_division=0)
    assert (out["precision"], out["recall"], out["f1"]) == pytest.approx((p, r, f))
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["auroc"] == pytest.approx(skm.roc_auc_score(y, prob, multi_class="ovr", average="macro"))
    ap = skm.average_precision_score(label_binarize(y, classes=[0, 1, 2]), prob, average="macro")
    assert out["average_precision"] == pytest.approx(ap)
    assert out["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()
    assert len(out["per_class"]["precision"]) == K and "threshold" not in out


def test_classification_mask_and_leading_axes(rng):
    B, H, N, K = 4, 3, 5, 3
    prob = rng.dirichlet(np.ones(K), size=(B, H, N))  # (B, H, N, K)
    y = rng.integers(0, K, size=(B, H, N))
    mask = rng.random((B, H, N)) > 0.3
    out = classification_metrics(torch.tensor(prob), torch.tensor(y), mask=torch.tensor(mask))
    ref = classification_metrics(prob[mask], y[mask])
    assert out == ref
    assert out["n"] == int(mask.sum())
    y_bad = y.copy()
    y_bad[~mask] = -1  # labels under the mask may be anything
    assert classification_metrics(prob, y_bad, mask=mask) == ref


def test_single_class_present_gives_nan_auroc():
    out = classification_metrics(np.array([0.2, 0.7, 0.9]), np.array([1, 1, 1]))
    assert math.isnan(out["auroc"])
    assert out["recall"] == pytest.approx(2 / 3)
    out = classification_metrics(np.array([0.2, 0.7]), np.array([0, 0]))
    assert math.isnan(out["auroc"]) and math.isnan(out["average_precision"])


def test_expected_calibration_error_by_hand():
    # binary p(event): confidence = max(p, 1 - p) = [0.95, 0.95, 0.65, 0.65]; predictions [1, 1, 1, 0]
    prob = np.array([0.95, 0.95, 0.65, 0.35])
    y = np.array([1, 0, 1, 1])  # correct: [1, 0, 1, 0]
    # bin (0.9, 1.0]: 2 samples, accuracy 0.5, mean confidence 0.95 -> |0.5 - 0.95| = 0.45
    # bin (0.6, 0.7]: 2 samples, accuracy 0.5, mean confidence 0.65 -> |0.5 - 0.65| = 0.15
    expected = 2 / 4 * 0.45 + 2 / 4 * 0.15
    assert expected_calibration_error(prob, y) == pytest.approx(0.3)
    assert expected_calibration_error(prob, y) == pytest.approx(expected)
    assert classification_metrics(prob, y)["ece"] == pytest.approx(0.3)
    # perfectly calibrated: confidence 0.5 on class 0, right half of the time
    prob3 = np.tile([0.5, 0.3, 0.2], (10, 1))
    y3 = np.array([0] * 5 + [1] * 3 + [2] * 2)
    assert expected_calibration_error(prob3, y3) == pytest.approx(0.0)


def test_best_threshold_by_hand():
    p = np.array([0.9, 0.8, 0.4, 0.3, 0.1])
    y = np.array([1, 0, 1, 0, 0])
    # cut after the top 1: F1 = 2*1/(2*1+0+1) = 2/3; top 2: 2/(2+1+1) = 1/2; top 3: 4/(4+1+0) = 4/5;
    # top 4: 4/6; all: 4/7 -> best = top 3, threshold midway between 0.4 and 0.3
    t, f1 = best_threshold(p, y)
    assert (t, f1) == pytest.approx((0.35, 0.8))
    assert classification_metrics(p, y, threshold=t)["f1"] == pytest.approx(0.8)
    # accuracy: top 1 -> (1 + 3) / 5 = 0.8, top 3 -> (2 + 2) / 5 = 0.8; a tie goes to the higher threshold
    t, acc = best_threshold(p, y, metric="accuracy")
    assert (t, acc) == pytest.approx((0.85, 0.8))
    with pytest.raises(ValueError):
        best_threshold(np.ones((5, 3)) / 3, np.zeros(5, int))


def test_best_threshold_matches_brute_force(rng):
    p = np.round(rng.random(200), 2)  # ties on purpose
    y = (rng.random(200) < p ** 2).astype(int)
    t, best = best_threshold(p, y, metric="f1")
    brute = max(skm.f1_score(y, (p >= c).astype(int), zero_division=0) for c in np.unique(p))
    assert best == pytest.approx(brute)
    assert skm.f1_score(y, (p >= t).astype(int)) == pytest.approx(best)
    t, best = best_threshold(p, y, metric="balanced_accuracy")
    brute = max(skm.balanced_accuracy_score(y, (p >= c).astype(int)) for c in np.r_[np.unique(p), 2.0])
    assert best == pytest.approx(brute)


def test_class_agreement_compares_decisions_at_each_model_s_own_threshold_where_scored():
    """Two alarms agree where both decide the same class, each by its own rule (binary: ``p >= threshold``; more
    classes: the arg-max), counted over the scored targets only."""
    y = np.array([[0, 1, 0, 1]])  # [W, H]: the labels only give the shape here
    a = np.array([[0.2, 0.6, 0.4, 0.9]])
    b = np.array([[0.3, 0.5, 0.1, 0.8]])
    # a at 0.5 decides 0 1 0 1; b at 0.5: 0 1 0 1 (all agree); b at 0.2: 1 1 0 1 (three of four)
    assert class_agreement(a, 0.5, b, 0.5, y) == 1.0
    assert class_agreement(a, 0.5, b, 0.2, y) == pytest.approx(0.75)
    assert class_agreement(a, 0.5, b, 0.2, y, mask=np.array([[False, True, True, True]])) == 1.0
    k3 = np.array([[[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]])  # [W, H, K]: arg-max 2, 0
    other = np.array([[[0.1, 0.6, 0.3], [0.4, 0.35, 0.25]]])  # 1, 0
    assert class_agreement(k3, 0.5, other, 0.9, np.zeros((1, 2))) == pytest.approx(0.5)  # thresholds unused
    assert math.isnan(class_agreement(a, 0.5, b, 0.5, y, mask=np.zeros((1, 4), bool)))


def test_probability_gap_is_the_mean_total_variation_between_class_probabilities_where_scored():
    """What a distilled event student was taught: how far its class probabilities are from the teacher's, whatever
    threshold each decides at (binary: ``|p_a - p_b|``; more classes: half the L1 distance)."""
    from stkd.metrics import probability_gap

    y = np.zeros((1, 4))  # [W, H]: the labels only give the shape here
    a = np.array([[0.1, 0.4, 0.8, 0.5]])  # P(event)
    b = np.array([[0.3, 0.4, 0.1, 1.0]])
    assert probability_gap(a, b, y) == pytest.approx((0.2 + 0.0 + 0.7 + 0.5) / 4)
    assert probability_gap(a, b, y, mask=np.array([[True, True, False, False]])) == pytest.approx(0.1)
    assert probability_gap(a, a, y) == 0.0
    k3 = np.array([[[1.0, 0.0, 0.0], [0.2, 0.3, 0.5]]])  # [W, H, K]
    other = np.array([[[0.0, 1.0, 0.0], [0.2, 0.5, 0.3]]])
    assert probability_gap(k3, other, np.zeros((1, 2))) == pytest.approx((1.0 + 0.2) / 2)
    assert math.isnan(probability_gap(a, b, y, mask=np.zeros((1, 4), bool)))
