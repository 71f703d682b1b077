"""The per-node MLP student of the classic distillation recipe.

Each sensor's input window ``[P * F_in]`` goes through a small MLP (weights shared by all sensors) to
its ``H * C_out`` outputs. By default it sees no graph, no other sensor, no sensor identity and no
calendar, which is why it is tiny and fast, and why it has most to gain from a teacher: distilling
graph models into MLPs is the recipe of GLNN (Zhang, Liu, Sun, Shah: "Graph-less Neural Networks:
Teaching Old MLPs New Tricks via Distillation", ICLR 2022), here per time window. Only dense ops: it
exports to ONNX.

Optional neighbour input (``neighbours: k``): the mean windows of the sensor's k strongest downstream
and upstream neighbours (:mod:`stkd.models.students.neighbours`) are read next to its own window. Why:
where a graph teacher's edge comes from the graph, a student that sees only its own sensor cannot
compute what the teacher knows, whatever the targets; this is the cheapest fixed graph aggregation that
lets it, and it keeps every weight shared by the sensors.

Optional node identity (``node_dim: d``): a learned embedding per sensor read next to the window, the
design of the issue's independent reference MLP. Why: much of a teacher's edge is what each sensor does
on its own (its usual level and its daily shape); with weights shared by all sensors the MLP can only
guess it from the window. Its weights then fit the sensors they were trained on only.

Optional calendar (``calendar: k``): the sine and cosine of the first k harmonics of the time of day at the
window's last input step, and the day of the week one-hot where the data lets models read it
(``ModelSpec.day_of_week``), read next to the window. Why: a teacher with time-of-day and weekday
embeddings (the STID) knows each hour's usual level; an MLP that sees only its window cannot compute it,
whatever its targets. Smooth harmonics, not a table per time slot: a handful of numbers shared by every
slot, where a table of 288 slots seen a few times each overfits (the issue's Los-loop finding).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from stkd.errors import ConfigError
from stkd.models.base import ModelSpec, StudentModel, to_pred
from stkd.models.students.neighbours import ReadsNeighbours, neighbour_windows


class MLP(ReadsNeighbours, StudentModel):
    """Per-node MLP student.

    Hyper-parameters:
        hidden: widths of the hidden layers (ReLU after each).
        dropout: after each hidden layer.
        neighbours: k > 0 also reads the mean window of each sensor's k strongest downstream and k
            strongest upstream neighbours (needs the data's adjacency); 0 switches it off.
        node_dim: size of a learned per-sensor embedding read next to the window; 0 (the default) none.
        calendar: harmonics of the time of day read next to the window (the sine and cosine of each), and
            with them the weekday one-hot unless the spec leaves the weekday out; 0 (the default) none.

    ``hidden`` (the output) is the last hidden layer, ``[B, N, hidden[-1]]``.
    """

    #: Without the node embedding every weight is shared by the sensors (the neighbour input is cut from
    #: the data's graph at build time, not learned), so it runs on any set of sensors.
    node_agnostic_params: ClassVar[dict[str, Any] | None] = {"node_dim": 0}

    def __init__(
        self,
        spec: ModelSpec,
        *,
        hidden: tuple[int, ...] = (64, 64),
        dropout: float = 0.0,
        neighbours: int = 0,
        node_dim: int = 0,
        calendar: int = 0,
    ) -> None:
        super().__init__(spec, locals())
        if not hidden or any(int(w) < 1 for w in hidden):
            raise ConfigError(f"mlp: hidden must be a non-empty list of positive widths, got {hidden!r}")
        self.around = neighbour_windows(spec, neighbours, model="mlp")  # None when switched off
        streams = 1 if self.around is None else 3  # its own window, then the downstream and upstream means
        if node_dim < 0:
            raise ConfigError(f"mlp: params.node_dim must be >= 0, got {node_dim}")
        if calendar < 0:
            raise ConfigError(f"mlp: params.calendar must be >= 0 (harmonics of the time of day), got {calendar}")
        self.calendar = int(calendar)
        self.weekday = bool(calendar) and spec.day_of_week  # the weekday one-hot rides with the harmonics
        time_width = 2 * self.calendar + (7 if self.weekday else 0)
        widths = [streams * spec.input_len * spec.in_features + node_dim + time_width, *map(int, hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], spec.horizon * spec.out_channels)
        self.hidden_dim = widths[-1]
        self.node_emb = (  # [N, d_n]
            nn.Parameter(nn.init.xavier_uniform_(torch.empty(spec.num_nodes, node_dim))) if node_dim else None
        )

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_inputs(x, tod, dow)
        if self.around is not None:
            x = torch.cat([x, self.around(x)], dim=-1)  # [B, P, N, 3F]
        window = x.permute(0, 2, 1, 3).flatten(2)  # [B, N, P*F'] with F' = F or 3F
        if self.node_emb is not None:
            identity = self.node_emb.unsqueeze(0).expand(x.shape[0], -1, -1)  # [B, N, d_n]
            window = torch.cat([window, identity], dim=-1)  # [B, N, P*F' + d_n]
        if self.calendar:
            time = self.time_features(tod[:, -1], dow[:, -1])  # [B, d_c] at the last input step
            window = torch.cat([window, time.unsqueeze(1).expand(-1, x.shape[2], -1)], dim=-1)  # [B, N, ... + d_c]
        h = self.body(window)  # [B, N, D]
        out = self.head(h)  # [B, N, H*C_out]
        return {"pred": to_pred(out, self.spec.horizon, self.spec.out_channels), "hidden": h}

    def time_features(self, tod: torch.Tensor, dow: torch.Tensor) -> torch.Tensor:
        """``[B, 2k (+7)]``: sine and cosine of the first k harmonics of the time of day (``tod`` ``[B]``, a
        fraction of the day), then the weekday one-hot (``dow`` ``[B]``) where the model reads it. Only
        elementwise ops and a comparison: it exports to ONNX."""
        k = torch.arange(1, self.calendar + 1, device=tod.device, dtype=torch.float32)  # [k]
        angle = 2 * torch.pi * tod.float().unsqueeze(1) * k  # [B, k]
        parts = [torch.sin(angle), torch.cos(angle)]
        if self.weekday:
            days = torch.arange(7, device=dow.device)  # [7]
            parts.append((dow.long().unsqueeze(1) == days).float())  # [B, 7]
        return torch.cat(parts, dim=1).to(self.head.weight.dtype)
