"""The per-node MLP student of the classic distillation recipe.

Each sensor's input window ``[P * F_in]`` goes through a small MLP (weights shared by all sensors) to
its ``H * C_out`` outputs. It sees no graph, no other sensor and no calendar, which is why it is tiny
and fast, and why it has most to gain from a teacher: distilling graph models into MLPs is the recipe
of GLNN (Zhang, Liu, Sun, Shah: "Graph-less Neural Networks: Teaching Old MLPs New Tricks via
Distillation", ICLR 2022), here per time window. Only dense ops: it exports to ONNX.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from stkd.errors import ConfigError
from stkd.models.base import ModelSpec, StudentModel, to_pred


class MLP(StudentModel):
    """Per-node MLP student.

    Hyper-parameters:
        hidden: widths of the hidden layers (ReLU after each).
        dropout: after each hidden layer.

    ``hidden`` (the output) is the last hidden layer, ``[B, N, hidden[-1]]``.
    """

    node_agnostic_params: ClassVar[dict[str, Any] | None] = {}  # weights shared by all sensors: any N, always

    def __init__(self, spec: ModelSpec, *, hidden: tuple[int, ...] = (64, 64), dropout: float = 0.0) -> None:
        super().__init__(spec, locals())
        if not hidden or any(int(w) < 1 for w in hidden):
            raise ConfigError(f"mlp: hidden must be a non-empty list of positive widths, got {hidden!r}")
        widths = [spec.input_len * spec.in_features, *map(int, hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], spec.horizon * spec.out_channels)
        self.hidden_dim = widths[-1]

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_inputs(x, tod, dow)
        window = x.permute(0, 2, 1, 3).flatten(2)  # [B, N, P*F]
        h = self.body(window)  # [B, N, D]
        out = self.head(h)  # [B, N, H*C_out]
        return {"pred": to_pred(out, self.spec.horizon, self.spec.out_channels), "hidden": h}
