"""A trained PyTorch model as ONNX bytes or a TorchScript module (dynamic batch axis).

Used by :meth:`stkd.deploy.predictor.Predictor.with_backend` (in memory) and by
:mod:`stkd.deploy.export` (written to a folder): both take the model's single output through
:class:`PredOnly`: ``pred = f(x [B, P, N, F], tod [B, P], dow [B, P]) -> [B, H, N, C]``.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from stkd.errors import STKDError


class PredOnly(nn.Module):
    """The model with one tensor output, ``pred [B, H, N, C]`` (scaled units or logits)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> torch.Tensor:
        return self.model(x, tod, dow)["pred"]


def example_inputs(spec, batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random ``(x, tod, dow)`` of the model's shapes (a ServingSpec or a ModelSpec-like record)."""
    g = torch.Generator().manual_seed(seed)
    P = spec.input_len
    N = len(spec.nodes) if hasattr(spec, "nodes") else spec.num_nodes
    F = spec.in_channels if hasattr(spec, "in_channels") else spec.in_features  # lagged channels included
    x = torch.randn(batch, P, N, F, generator=g)
    tod = torch.rand(batch, P, generator=g) * 0.999
    dow = torch.randint(0, 7, (batch, P), generator=g)
    return x, tod, dow


def onnx_bytes(model: nn.Module, spec, opset: int = 17) -> bytes:
    """The model as ONNX (legacy TorchScript-based exporter, dynamic batch axis) in memory.

    Inputs the model does not read (``tod``/``dow`` of mlp and linear) are dropped by the exporter.
    """
    buf = io.BytesIO()
    wrapped = PredOnly(model).eval()
    axes = {"x": {0: "batch"}, "tod": {0: "batch"}, "dow": {0: "batch"}, "pred": {0: "batch"}}
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(wrapped, example_inputs(spec), buf, dynamo=False, opset_version=opset,  # type: ignore[arg-type]
                              input_names=["x", "tod", "dow"], output_names=["pred"], dynamic_axes=axes)
    except Exception as e:  # noqa: BLE001 - any exporter failure becomes one clear message
        raise STKDError(f"the model does not export to ONNX ({type(e).__name__}: {str(e).splitlines()[0][:300]}); "
                        "graph teachers with sparse supports do not; use --format torchscript or the torch "
                        "backend") from None
    return buf.getvalue()


def torchscript_module(model: nn.Module, spec) -> torch.jit.ScriptModule:
    """The model traced to TorchScript (batch size stays dynamic: no shape is baked in for B)."""
    wrapped = PredOnly(model).eval()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(wrapped, example_inputs(spec), check_trace=False)
    except Exception as e:  # noqa: BLE001
        raise STKDError(f"the model does not trace to TorchScript ({type(e).__name__}: "
                        f"{str(e).splitlines()[0][:300]})") from None
    return traced
