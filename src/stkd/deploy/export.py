"""Export a trained model to ONNX or TorchScript, with everything needed to serve it, and check it.

``stkd export RUN_DIR --format onnx`` writes a folder::

    model.onnx | model.pt    the network, dynamic batch: pred = f(x [B, P, N, F], tod [B, P], dow [B, P])
    deploy.json              nodes, features, targets, freq, grid origin, P, H, scaler center/scale,
                             train means for gap filling, impute method, metrics, the export check,
                             and the SHA-256 of each file above and below (``files``)
    seasonal_means.npy       the time-of-week train profile for leading gaps (when the run has one)

``stkd.load`` checks the hashes; it loads a TorchScript ``model.pt`` only with ``trust_code=True``
(TorchScript is code).

Nothing in it needs stkd: numpy + onnxruntime serve it (docs/deploy.md has a 30-line example), and
``stkd.load(folder)`` / ``stkd serve folder`` read it too.

The export checks itself: the exported model runs on held-out (test split) windows and its output is
compared with the PyTorch model's; the maximum absolute difference is reported, and the export
fails when it exceeds ``tolerance * max(1, max |reference|)``.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from stkd.config import InputsConfig
from stkd.data.windows import load_windowed
from stkd.deploy.backends import OnnxBackend, TorchScriptBackend
from stkd.deploy.convert import example_inputs, onnx_bytes, torchscript_module
from stkd.deploy.loading import load, sha256_file
from stkd.deploy.spec import SEASONAL_FILE, SPEC_FILE
from stkd.errors import STKDError
from stkd.io import write_bytes, write_json, write_npy
from stkd.names import EXPORT_FORMATS
from stkd.runs import load_run

FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}  # the model file of each of EXPORT_FORMATS


def heldout_windows(predictor, count: int = 64):
    """Up to ``count`` test-split windows ``(x, tod, dow)`` prepared by training's own code, and where
    they came from; random inputs when the run's data cannot be read."""
    try:
        cfg, _ = load_run(predictor.run_dir)
        wd = load_windowed(cfg.data)
    except (STKDError, OSError) as e:
        warnings.warn(f"the run's data cannot be loaded ({e}); checking the export on random inputs", stacklevel=2)
        x, tod, dow = example_inputs(predictor.spec, batch=min(count, 16), seed=1)
        return x, tod, dow, "random inputs (the run's data could not be loaded)"
    if predictor.spec.lags:  # the model's own channels: the window and its lags, as in training
        step = pd.Timedelta(pd.tseries.frequencies.to_offset(predictor.spec.freq))
        wd = wd.view(InputsConfig(lags=[str(g * step) for g in predictor.spec.lags]))
    split = "test" if len(wd.starts["test"]) else "val" if len(wd.starts["val"]) else "train"
    starts = wd.starts[split]
    pick = starts[np.linspace(0, len(starts) - 1, min(count, len(starts))).round().astype(np.int64)]
    b = wd.batch(pick)
    return b.x, b.tod, b.dow, f"{len(pick)} {split}-split windows"


def check_export(run_fn, model: nn.Module, inputs, tolerance: float) -> dict:
    """Run the exported model (``run_fn(x, tod, dow) -> ndarray``) against PyTorch at batch 1 and a batch."""
    x, tod, dow = inputs
    with torch.no_grad():
        ref = model(x, tod, dow)["pred"].numpy()
    got = np.concatenate([run_fn(x[:1].numpy(), tod[:1].numpy(), dow[:1].numpy()),
                          run_fn(x[1:].numpy(), tod[1:].numpy(), dow[1:].numpy())]) if len(x) > 1 else \
        run_fn(x.numpy(), tod.numpy(), dow.numpy())
    diff = float(np.abs(got - ref).max())
    bound = tolerance * max(1.0, float(np.abs(ref).max()))
    return {"max_abs_diff": diff, "tolerance": tolerance, "bound": bound, "windows": int(len(x)),
            "passed": bool(diff <= bound)}


def export_model(run_dir: str | Path, fmt: str = "onnx", out: str | Path | None = None, model: str | None = None,
                 *, tolerance: float = 1e-4, windows: int = 64, overwrite: bool = False) -> dict:
    """Export a run's model (default: the student with the best validation score) to ``out`` and check it.

    Returns the export report (also stored in ``deploy.json`` under ``export``). Raises STKDError when
    the exported model's output differs from PyTorch's by more than the tolerance (nothing is left
    at ``out`` then), when ``out`` exists (without ``overwrite``), or when the model does not export.
    """
    if fmt not in EXPORT_FORMATS:
        raise STKDError(f"--format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    if tolerance <= 0:
        raise STKDError(f"--tolerance must be > 0, got {tolerance}")
    run_dir = Path(run_dir)
    predictor = load(run_dir, model)
    if predictor.model is None:
        raise STKDError(f"{run_dir} is already an exported folder; export from the run directory")
    out = Path(out) if out is not None else run_dir / "export" / f"{predictor.name}-{fmt}"
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise STKDError(f"{out} exists and is not empty; pass --overwrite to replace it or choose another --out")
        if not (out / SPEC_FILE).is_file():
            raise STKDError(f"{out} is not an stkd export folder (no {SPEC_FILE}); refusing to replace it")
    t0 = time.perf_counter()
    tm = predictor.model.eval()
    backend: OnnxBackend | TorchScriptBackend
    if fmt == "onnx":
        blob = onnx_bytes(tm, predictor.spec)
        backend = OnnxBackend(blob)
        inputs_used = list(backend.inputs)
    else:
        traced = torchscript_module(tm, predictor.spec)
        buf = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still supported
            torch.jit.save(traced, buf)
            blob = buf.getvalue()
            backend = TorchScriptBackend(torch.jit.load(io.BytesIO(blob)))
        inputs_used = ["x", "tod", "dow"]
    x, tod, dow, where = heldout_windows(predictor, windows)
    report = check_export(backend, tm, (x, tod, dow), tolerance)
    report.update(format=fmt, checked_on=where, seconds=round(time.perf_counter() - t0, 3), file=FILES[fmt])
    if not report["passed"]:
        raise STKDError(f"export check failed: the {fmt} model differs from PyTorch by up to "
                        f"{report['max_abs_diff']:.3g} on {where} (allowed {report['bound']:.3g}; "
                        "--tolerance sets it)")
    spec_json = predictor.spec.to_json()
    spec_json.update(inputs=inputs_used, outputs=["pred"], export=report,
                     pred_units="logits" if predictor.spec.out_classes > 1 else "scaled")
    # write into a fresh sibling folder, then swap it in: a failed export never leaves half a folder
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private
        # every file deploy.json lists gets its SHA-256 there: loading refuses a file changed after export
        written = [write_bytes(tmp / FILES[fmt], blob)]
        if predictor.spec.seasonal_means is not None:
            written.append(write_npy(tmp / SEASONAL_FILE, predictor.spec.seasonal_means))
        spec_json["files"] = {f.name: sha256_file(f) for f in written}
        write_json(tmp / SPEC_FILE, spec_json)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report["out"] = str(out)
    report["model"] = predictor.name
    return report
