"""STID (Shao, Zhang, Wang, Wei, Xu: "Spatial-Temporal Identity: A Simple yet Effective Baseline for
Multivariate Time Series Forecasting", CIKM 2022).

Why this student: it is an MLP that recovers much of what graph models know by telling samples apart
with cheap *identity* embeddings: a learned embedding per sensor (spatial identity) and per time-of-day
slot and day of week (temporal identity, taken at the last input step), concatenated with an
embedding of the window itself and passed through residual MLP layers. Cost and parameters grow
linearly in N (one embedding row per node, no node-to-node term), so it trains at 20,000 sensors,
and it uses only dense ops, so it exports to ONNX.

Optional neighbour input (``neighbours: k``, not in the paper): the mean windows of each sensor's k
strongest downstream and upstream neighbours (:mod:`stkd.models.students.neighbours`) are embedded
next to its own, so it sees what only shows against the neighbours (an incident slows one sensor while
the next one downstream runs free); the model stays linear in N.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import torch
from torch import nn

from stkd.models.base import ModelSpec, STModel, StudentModel, to_pred, tod_index
from stkd.models.students.neighbours import ReadsNeighbours, neighbour_windows
from stkd.models.students.stid_shrink import check_shrinkable, shrink_stid

if TYPE_CHECKING:
    from stkd.data.windows import Batch


class ResidualMLP(nn.Module):
    """``h + fc2(dropout(relu(fc1(h))))`` (the paper's encoder layer, as Linear instead of 1x1 conv)."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, dim)
        self.fc2 = nn.Linear(dim, dim)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.fc2(self.dropout(self.act(self.fc1(h))))  # [B, N, D]


class STID(ReadsNeighbours, StudentModel):
    """STID student (the paper's design with 16-wide embeddings instead of 32, to stay small).

    Hyper-parameters:
        embed_dim: window embedding (``P * F_in -> embed_dim``).
        node_dim, tod_dim, dow_dim: identity embeddings (0 switches one off).
        layers: residual MLP encoder layers.
        dropout: inside the encoder layers.
        neighbours: k > 0 embeds the mean window of each sensor's k strongest downstream and k
            strongest upstream neighbours (needs the data's adjacency); 0 switches it off.
        neighbour_dim: size of that embedding.

    ``hidden`` is the encoder output, ``[B, N, D]`` with D the sum of the embedding sizes.
    """

    #: The embedding blocks of the stream, in the order of their concatenation, with the attribute holding
    #: each; the first two are linear maps of the window (:meth:`block_inputs`), the others tables.
    BLOCKS = {"window": "window_emb", "neighbours": "neighbour_emb", "node": "node_emb", "tod": "tod_emb",
              "dow": "dow_emb"}

    #: Without the node embedding every weight is shared by the sensors (the neighbour input is cut from
    #: the data's graph at build time, not learned), so it runs on any set of sensors.
    node_agnostic_params = {"node_dim": 0}

    @classmethod
    def scale_advice(cls, degree: int) -> list[str]:
        return []

    def __init__(
        self,
        spec: ModelSpec,
        *,
        embed_dim: int = 16,
        node_dim: int = 16,
        tod_dim: int = 16,
        dow_dim: int = 16,
        layers: int = 2,
        dropout: float = 0.15,
        neighbours: int = 0,
        neighbour_dim: int = 16,
    ) -> None:
        super().__init__(spec, locals())
        window = spec.input_len * spec.in_features
        self.window_emb = nn.Linear(window, embed_dim)
        self.around = neighbour_windows(spec, neighbours, model="stid")  # None when switched off
        if self.around is not None:
            self.neighbour_emb = nn.Linear(2 * window, neighbour_dim)
        else:
            neighbour_dim = 0
        self.node_emb = (  # [N, d_n]
            nn.Parameter(nn.init.xavier_uniform_(torch.empty(spec.num_nodes, node_dim))) if node_dim else None
        )
        if not spec.day_of_week:
            dow_dim = 0  # the training data does not cover every weekday (ModelSpec.day_of_week)
        self.tod_emb = nn.Embedding(spec.steps_per_day, tod_dim) if tod_dim else None
        self.dow_emb = nn.Embedding(7, dow_dim) if dow_dim else None
        for emb in (self.tod_emb, self.dow_emb):
            if emb is not None:
                nn.init.xavier_uniform_(emb.weight)
        dim = embed_dim + neighbour_dim + node_dim + tod_dim + dow_dim
        self.hidden_dim = dim
        self.encoder = nn.Sequential(*(ResidualMLP(dim, dropout) for _ in range(layers)))
        self.head = nn.Linear(dim, spec.horizon * spec.out_channels)

    def embedding_parts(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """The embeddings concatenated into the encoder's input, each ``[B, N, d]`` with its name (window,
        neighbours, node, tod, dow; those switched off are left out), in the order of the concatenation."""
        b, _, n, _ = x.shape
        parts = [(name, getattr(self, self.BLOCKS[name])(z)) for name, z in self.block_inputs(x)]  # [B, N, d]
        if self.node_emb is not None:
            parts.append(("node", self.node_emb.unsqueeze(0).expand(b, -1, -1)))  # [B, N, d_n]
        if self.tod_emb is not None:
            t = self.tod_emb(tod_index(tod[:, -1], self.spec.steps_per_day))  # [B, d_t] at the last input step
            parts.append(("tod", t.unsqueeze(1).expand(-1, n, -1)))  # [B, N, d_t]
        if self.dow_emb is not None:
            w = self.dow_emb(dow[:, -1].long())  # [B, d_w]
            parts.append(("dow", w.unsqueeze(1).expand(-1, n, -1)))  # [B, N, d_w]
        return parts

    def block_inputs(self, x: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """What the linear embedding blocks read of the window ``x [B, P, N, F]``, each ``[B, N, k]`` with the
        block's name: the sensor's own window flattened (``k = P F``), then its neighbours' mean windows
        (``k = 2 P F``) when switched on. Apart from :meth:`embedding_parts` so that a student cut from a teacher
        that reads more (:mod:`stkd.models.students.stid_shrink`) can fit its blocks on what it reads."""
        out = [("window", x.permute(0, 2, 1, 3).flatten(2))]  # [B, N, P*F]
        if self.around is not None:
            out.append(("neighbours", self.around(x).permute(0, 2, 1, 3).flatten(2)))  # [B, N, 2*P*F]
        return out

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_inputs(x, tod, dow)
        h = self.encoder(torch.cat([p for _, p in self.embedding_parts(x, tod, dow)], dim=-1))  # [B, N, D]
        out = self.head(h)  # [B, N, H*C_out]
        return {"pred": to_pred(out, self.spec.horizon, self.spec.out_channels), "hidden": h}

    # ---------------------------------------------------------------- starting from a wider STID
    def check_shrink_from(self, teacher: STModel, *, same_inputs: bool = True) -> None:
        check_shrinkable(teacher, self, same_inputs=same_inputs)

    def shrink_from(self, teacher: STModel, batches: Iterable[Batch],
                    teacher_batches: Iterable[Batch] | None = None) -> dict[str, torch.Tensor]:
        """Weights cut from a wider, deeper trained STID teacher (``distill.init: teacher``), which may read more
        than this student (``teacher_batches``): :func:`stkd.models.students.stid_shrink.shrink_stid` (which
        refuses a teacher of another kind)."""
        return shrink_stid(teacher, self, batches, teacher_batches)
