"""The linear student: one linear map from a sensor's input window to its horizon.

Why: the smallest model that can still learn a forecast (the "DLinear"-style finding of Zeng, Chen,
Zhang, Xu: "Are Transformers Effective for Time Series Forecasting?", AAAI 2023, that a shared linear
map over the window is a strong baseline). It is the floor a distilled student should beat, and the
cheapest thing to serve. Weights are shared by all sensors; an optional per-node bias
(``node_bias``) adds ``N * H * C_out`` parameters. Only dense ops: it exports to ONNX.

``hidden`` is the flattened (scaled) input window ``[B, N, P * F_in]``: the model has no hidden layer,
and this is what its output is linear in. It has no parameters, so a hint or relation loss on it only
trains the distiller's projection; use the mlp or stid student for feature distillation.
"""

from __future__ import annotations

import torch
from torch import nn

from stkd.models.base import ModelSpec, StudentModel, to_pred


class LinearModel(StudentModel):
    """Linear student. Hyper-parameters: ``node_bias`` (a learned bias per node and output)."""

    node_agnostic_params = {"node_bias": False}  # the shared map alone does not depend on N

    @classmethod
    def scale_advice(cls, degree: int) -> list[str]:
        return []

    def __init__(self, spec: ModelSpec, *, node_bias: bool = False) -> None:
        super().__init__(spec, locals())
        self.hidden_dim = spec.input_len * spec.in_features
        self.proj = nn.Linear(self.hidden_dim, spec.horizon * spec.out_channels)
        out_dim = spec.horizon * spec.out_channels
        self.node_bias = nn.Parameter(torch.zeros(spec.num_nodes, out_dim)) if node_bias else None  # [N, H*C_out]

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_inputs(x, tod, dow)
        window = x.permute(0, 2, 1, 3).flatten(2)  # [B, N, P*F]
        out = self.proj(window)  # [B, N, H*C_out]
        if self.node_bias is not None:
            out = out + self.node_bias  # [B, N, H*C_out]
        return {"pred": to_pred(out, self.spec.horizon, self.spec.out_channels), "hidden": window}
