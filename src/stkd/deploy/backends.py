"""The three ways to run a model: ``backend(x, tod, dow) -> pred [B, H, N, C]`` as numpy arrays.

:class:`TorchBackend` runs the PyTorch module, :class:`OnnxBackend` an onnxruntime session (the
optional ``export`` extra), :class:`TorchScriptBackend` a TorchScript module. Inputs: ``x [B, P, N, F]``
float32 (scaled), ``tod [B, P]`` float32, ``dow [B, P]`` int64; output in scaled units or logits.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from stkd.errors import STKDError

try:  # the optional `export` extra; 30 ms after torch, so imported here rather than per session
    import onnxruntime as ort
except ImportError:  # pragma: no cover - exercised by the missing-extra test in a subprocess
    ort = None

EXPORT_EXTRA = 'pip install -c constraints.txt -e ".[export]"'


class TorchBackend:
    """The PyTorch model itself. ``__call__(x, tod, dow) -> pred [B, H, N, C]`` numpy."""

    name = "torch"

    def __init__(self, model) -> None:
        self.model = model.eval()

    def __call__(self, x: np.ndarray, tod: np.ndarray, dow: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(x), torch.from_numpy(tod), torch.from_numpy(dow))
        return (out["pred"] if isinstance(out, dict) else out).numpy()


class OnnxBackend:
    """An onnxruntime session over an exported model (a path or the model's bytes).

    The legacy exporter drops inputs a model does not read (mlp and linear read only ``x``), so the
    feed is built from ``session.get_inputs()``.
    """

    name = "onnx"

    def __init__(self, model: str | Path | bytes, threads: int | None = None) -> None:
        if ort is None:
            raise STKDError(f"the onnx backend needs the export extra: {EXPORT_EXTRA}")
        opts = ort.SessionOptions()
        # idle worker threads spinning for work would burn the CPU a server shares with its clients
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        src = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name

    def __call__(self, x: np.ndarray, tod: np.ndarray, dow: np.ndarray) -> np.ndarray:
        feed = {"x": x, "tod": tod, "dow": dow}
        return self.session.run([self.output], {k: feed[k] for k in self.inputs})[0]


class TorchScriptBackend:
    """A TorchScript module (``torch.jit.load``) returning ``pred``."""

    name = "torchscript"

    def __init__(self, module) -> None:
        if isinstance(module, (str, Path)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still supported
                module = torch.jit.load(str(module))
        self.module = module
        self.module.eval()

    def __call__(self, x: np.ndarray, tod: np.ndarray, dow: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = self.module(torch.from_numpy(x), torch.from_numpy(tod), torch.from_numpy(dow))
        return out.numpy()


