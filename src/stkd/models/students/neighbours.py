"""The fixed graph input of a student: each sensor's k strongest downstream and upstream neighbours.

Why a module of its own: a per-node student (STID, the MLP) cannot see that an incident slows one sensor
while the next one downstream runs free; the weighted mean window of its strongest neighbours in each
direction lets it. The neighbours are cut from the data's adjacency when the model is built, not learned,
so the weights run on any set of sensors whose graph is given, the cost is a fixed-size gather, O(N k),
and the model exports to ONNX (dense ops only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from stkd.data.graph import strongest_neighbours
from stkd.errors import ConfigError
from stkd.models.base import ModelSpec, adjacency_to_scipy


class NeighbourWindows(nn.Module):
    """``x [B, P, N, F] -> [B, P, N, 2F]``: the weighted mean window of each sensor's ``k`` strongest
    downstream neighbours (along the edges), then of its ``k`` strongest upstream ones (against them).

    ``model`` names the student in the errors (``stid: params.neighbours ...``).
    """

    def __init__(self, spec: ModelSpec, k: int, *, model: str) -> None:
        super().__init__()
        if k < 1:
            raise ConfigError(f"{model}: the neighbour input needs params.neighbours >= 1, got {k}")
        if spec.adjacency is None:
            raise ConfigError(
                f"{model}: params.neighbours={k} reads each sensor's neighbours, but the data has no "
                "adjacency; give data.adjacency (or data.locations to build a kNN graph), or set params.neighbours: 0"
            )
        self.k = k
        adj = adjacency_to_scipy(spec.adjacency)
        down, w_down = strongest_neighbours(adj, k)  # [N, k] along the edges
        up, w_up = strongest_neighbours(adj.T, k)  # [N, k] against them (rows of A^T)
        # derived from the data's adjacency, not learned: rebuilt at load time, so not in the weights
        self.register_buffer("nbr_index", torch.from_numpy(np.stack([down, up])), persistent=False)  # [2, N, k]
        self.register_buffer("nbr_weight", torch.from_numpy(np.stack([w_down, w_up])), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._mean(x, d) for d in range(2)], dim=-1)  # [B, P, N, 2F]

    def _mean(self, x: torch.Tensor, direction: int) -> torch.Tensor:
        """Weighted mean of the neighbours' windows, ``[B, P, N, F]``; one gather per neighbour rank
        keeps the peak at one ``[B, P, N, F]`` copy instead of ``[B, P, N, k, F]``."""
        index, weight = self.nbr_index[direction], self.nbr_weight[direction]  # type: ignore[index]  # [N, k]
        out = x.new_zeros(x.shape)
        for j in range(self.k):
            out = out + x[:, :, index[:, j]] * weight[:, j].view(1, 1, -1, 1)  # [B, P, N, F]
        return out


class ReadsNeighbours:
    """Mixin for a student with ``params.neighbours``: serving it needs the data's graph, and it then reads
    other sensors."""

    @classmethod
    def needs_adjacency(cls, hparams: dict[str, Any]) -> bool:
        """With ``neighbours`` > 0 it reads each sensor's neighbours from the data's graph."""
        return bool(hparams.get("neighbours"))

    @classmethod
    def reads_other_nodes(cls, hparams: dict[str, Any]) -> bool:
        """With ``neighbours`` > 0 each sensor's forecast reads its neighbours' windows; else its own only."""
        return bool(hparams.get("neighbours"))


def neighbour_windows(spec: ModelSpec, k: int, *, model: str) -> NeighbourWindows | None:
    """The module for ``params.neighbours: k``; None for 0 (switched off); a ConfigError below 0."""
    if k < 0:
        raise ConfigError(f"{model}: params.neighbours must be >= 0, got {k}")
    return NeighbourWindows(spec, k, model=model) if k else None
