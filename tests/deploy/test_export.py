"""stkd export: ONNX and TorchScript parity with PyTorch, a self-contained folder, a self-check that fails."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

import stkd
from stkd.cli import main
from stkd.deploy.export import export_model
from stkd.errors import STKDError

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"


@pytest.mark.parametrize("fmt, file", [("onnx", "model.onnx"), ("torchscript", "model.pt")])
def test_export_parity_and_folder(run_dir, prepared, fmt, file):
    data, wd = prepared
    report = export_model(run_dir, fmt, run_dir / "out", windows=16)
    assert report["passed"] and report["max_abs_diff"] <= 1e-4 and report["windows"] == 16
    assert "test-split" in report["checked_on"]
    out = run_dir / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(["deploy.json", file, "seasonal_means.npy"])
    meta = json.loads((out / "deploy.json").read_text())
    assert meta["nodes"] == data.nodes and meta["input_len"] == 12 and meta["horizon"] == 6
    assert meta["freq"] == "5min" and len(meta["train_means"]) == 10 and meta["export"]["passed"]
    assert meta["metrics"]["test"]["mae"] == 2.0
    assert sorted(meta["files"]) == sorted([file, "seasonal_means.npy"])  # their SHA-256, checked at load
    # the exported folder serves alone and agrees with the PyTorch predictor (batch 1 and batch 5)
    exported = stkd.load(out, trust_code=fmt == "torchscript")  # TorchScript is code: trusted explicitly
    assert exported.model is None and exported.backend.name == fmt
    torch_p = stkd.load(run_dir)
    s = wd.starts["test"][:5]
    win = np.stack([data.values[i:i + wd.P] for i in s])
    ts = np.stack([data.index[i:i + wd.P] for i in s])
    for k in (1, 5):
        a = exported.predict(win[:k], ts[:k], as_frame=False).values
        b = torch_p.predict(win[:k], ts[:k], as_frame=False).values
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_teacher_torchscript_and_clear_onnx_failure(run_dir):
    report = export_model(run_dir, "torchscript", run_dir / "t", model="gwnet", windows=4)
    assert report["passed"]
    with pytest.raises(STKDError, match="does not export to ONNX"):  # sparse graph supports
        export_model(run_dir, "onnx", run_dir / "t2", model="gwnet", windows=4)
    assert not (run_dir / "t2").exists()


def test_export_fails_above_tolerance_and_leaves_nothing(run_dir, monkeypatch):
    from stkd.deploy.backends import OnnxBackend

    class Off(OnnxBackend):  # an exported model that is off by 0.01
        def __call__(self, x, tod, dow):
            return super().__call__(x, tod, dow) + 1e-2

    monkeypatch.setattr("stkd.deploy.export.OnnxBackend", Off)
    with pytest.raises(STKDError, match="export check failed.*--tolerance"):
        export_model(run_dir, "onnx", run_dir / "bad", windows=4)
    assert not (run_dir / "bad").exists()
    assert not [p for p in run_dir.iterdir() if p.name.startswith(".bad")]
    assert export_model(run_dir, "onnx", run_dir / "bad", windows=4, tolerance=0.1)["passed"]


def test_cli_export_refuses_to_overwrite(run_dir, capsys):
    out = run_dir / "cli"
    assert main(["export", str(run_dir), "--format", "onnx", "--out", str(out), "--windows", "4"]) == 0
    assert "max |exported - pytorch|" in capsys.readouterr().out
    assert main(["export", str(run_dir), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["export", str(run_dir), "--out", str(out), "--overwrite", "--windows", "4",
                 "--model", "mlp_plain"]) == 0
    assert json.loads((out / "deploy.json").read_text())["model"] == "mlp_plain"
    assert json.loads((out / "deploy.json").read_text())["inputs"] == ["x"]  # mlp reads no calendar


def test_standalone_example_in_docs(run_dir, prepared):
    """The docs' numpy + onnxruntime example (no stkd) gives the predictor's forecast."""
    data, wd = prepared
    out = run_dir / "standalone"
    export_model(run_dir, "onnx", out, windows=4)
    text = DOCS.read_text()
    code = re.search(r"<!-- standalone-example -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert "import stkd" not in code and "from stkd" not in code
    scope = {"folder": str(out)}
    exec(compile(code, "deploy.md", "exec"), scope)  # noqa: S102 - our own docs
    p = stkd.load(run_dir)
    checked = 0
    for s in wd.starts["test"]:
        win = data.values[s:s + wd.P]
        if np.isnan(win[0]).any():  # the example fills a leading gap with the plain train mean
            continue
        got = scope["forecast"](win, data.index[s:s + wd.P].to_numpy())
        want = p.predict(win, data.index[s:s + wd.P], as_frame=False).values[0]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
        checked += 1
        if checked == 5:
            break
    assert checked == 5


@pytest.mark.parametrize("label", ["stid_nb", "mlp_nb"])
def test_a_student_that_reads_its_neighbours_exports_and_serves_alone(run_dir, prepared, label):
    """The neighbour lists come from the data's adjacency at load time; the exported ONNX carries them
    as constants, so the exported folder needs no graph and agrees with the run's predictor."""
    data, wd = prepared
    report = export_model(run_dir, "onnx", run_dir / f"out-{label}", model=label, windows=8)
    assert report["passed"] and report["max_abs_diff"] <= 1e-4
    s = wd.starts["test"][:3]
    win = np.stack([data.values[i:i + wd.P] for i in s])
    ts = np.stack([data.index[i:i + wd.P] for i in s])
    a = stkd.load(run_dir / f"out-{label}").predict(win, ts, as_frame=False).values
    b = stkd.load(run_dir, label).predict(win, ts, as_frame=False).values
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_a_model_that_reads_lags_exports_and_serves_alone(run_dir, prepared):
    data, wd = prepared
    report = export_model(run_dir, "onnx", run_dir / "out-lags", model="stid_lags", windows=8)
    assert report["passed"] and "test-split" in report["checked_on"]  # its own view of the held-out windows
    meta = json.loads((run_dir / "out-lags" / "deploy.json").read_text())
    assert meta["lags"] == [12, 24] and meta["input_len"] == 12
    exported, torch_p = stkd.load(run_dir / "out-lags"), stkd.load(run_dir, "stid_lags")
    assert exported.history_len == 30
    s = int(wd.starts["test"][3])
    win, end = data.values[s - 18:s + 12], data.index[s + 11]  # 30 steps: the window and back to its lag
    np.testing.assert_allclose(exported.predict(win, end=end, as_frame=False).values,
                               torch_p.predict(win, end=end, as_frame=False).values, rtol=1e-4, atol=1e-4)
