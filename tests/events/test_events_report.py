"""The classify parts of the report: tables, precision-recall, confusion and calibration plots (K = 2, 3)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stkd.metrics import classification_metrics
from stkd.report import (
    format_detection_table,
    format_event_horizon_table,
    format_table,
    write_report,
)


def _run(tmp_path, K: int):
    rng = np.random.default_rng(0)
    W, H, N = 30, 3, 4
    labels = rng.integers(0, K, (W, H, N))
    mask = rng.random((W, H, N)) > 0.1
    root = tmp_path / f"run{K}"
    (root / "predictions").mkdir(parents=True)
    np.save(root / "predictions" / "labels.npy", labels.astype(np.int16))
    np.save(root / "predictions" / "label_mask.npy", mask)
    models = {}
    for name, role, noise in (("gwnet", "teacher", 0.5), ("mlp_kd", "student_kd", 1.0),
                              ("mlp_plain", "student_plain", 1.5), ("persistence", "baseline", 3.0)):
        logits = np.eye(K)[labels] * 2 + rng.normal(0, noise, (W, H, N, K))
        probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
        saved = probs[..., 1] if K == 2 else probs
        np.save(root / "predictions" / f"{name}.npy", saved.astype(np.float32))
        test = classification_metrics(saved, labels, threshold=0.5, mask=mask)
        test["horizons"] = {"1": classification_metrics(saved[:, 0], labels[:, 0], mask=mask[:, 0])}
        if K == 2:
            test["detection"] = {"incidents": 10, "detected": 7, "share_detected": 0.7, "mean_delay_steps": 1.5,
                                 "median_delay_steps": 1.0, "median_delay_minutes": 5.0, "false_alarm_rate": 0.01,
                                 "horizon": 1}
        models[name] = {"role": role, "params": None if role == "baseline" else 1000, "threshold": 0.5,
                        "latency_ms_batch1": 1.0, "throughput_windows_per_s": 10.0, "train_seconds": 1.0,
                        "test": test}
    metrics = {"dataset": {"name": "toy", "nodes": N, "steps": 100, "freq": "5min"}, "task": "classify",
               "events": {"rule": "toy rule", "classes": K, "class_names": [f"c{k}" for k in range(K)]},
               "models": models}
    (root / "metrics.json").write_text(json.dumps(metrics))
    return root, metrics


@pytest.mark.parametrize("K", [2, 3])
def test_classify_report_has_pr_confusion_and_calibration(tmp_path, K):
    root, metrics = _run(tmp_path, K)
    header = format_table(metrics).splitlines()[0]
    for col in ("F1", "AUROC", "AP", "ECE"):
        assert col in header
    assert "F1 @1" in format_event_horizon_table(metrics)
    assert ("0.700" in format_detection_table(metrics)) == (K == 2)
    text = write_report(root).read_text()
    for fname in ("precision_recall.png", "confusion_matrix.png", "calibration.png"):
        assert f"](plots/{fname})" in text
        assert (root / "plots" / fname).stat().st_size > 1000
    assert "toy rule" in text
    assert ("Incident detection" in text) == (K == 2)


def test_pr_plot_is_skipped_without_predictions(tmp_path):
    root, _ = _run(tmp_path, 2)
    for f in (root / "predictions").glob("*.npy"):
        f.unlink()
    text = write_report(root).read_text()
    assert "_Skipped: the test labels" in text
    assert not (root / "plots" / "precision_recall.png").exists()
    assert (root / "plots" / "confusion_matrix.png").is_file()  # drawn from metrics.json alone
