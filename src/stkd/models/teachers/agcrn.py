"""AGCRN (Bai, Yao, Li, Wang, Wang: "Adaptive Graph Convolutional Recurrent Network for Traffic
Forecasting", NeurIPS 2020).

Why this teacher: a recurrent model that needs no given graph. Two ideas, both driven by one learned
node embedding ``E [N, d_e]``: *node-adaptive parameter learning* (every node's graph-convolution
weights are ``E_n @ W_pool``, so each sensor gets its own filter from a shared pool) and a
*data-adaptive graph* ``softmax(relu(E E^T))``. The graph convolution replaces the matrix products of
a GRU cell; two stacked GRU layers read the window and a linear head maps the last state to all H
steps at once.

Scale: the adaptive graph is dense N x N (and is multiplied at every step), so the constructor refuses
``N > max_nodes`` (default 5000) with a ConfigError before anything is allocated.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from stkd.models.base import ModelSpec, STModel, TimeEmbedding, to_pred, too_large


class AdaptiveGraphConv(nn.Module):
    """Node-adaptive Chebyshev graph convolution (the paper's AVWGCN): weights from node embeddings."""

    def __init__(self, c_in: int, c_out: int, cheb_k: int, embed_dim: int) -> None:
        super().__init__()
        self.cheb_k = cheb_k
        std = 1.0 / math.sqrt(embed_dim * cheb_k * c_in)  # so each node's W_n = E_n @ pool has var ~1/fan_in
        self.weight_pool = nn.Parameter(torch.randn(embed_dim, cheb_k, c_in, c_out) * std)  # [d_e, K, Ci, Co]
        self.bias_pool = nn.Parameter(torch.zeros(embed_dim, c_out))  # [d_e, Co]

    def node_params(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Each node's weights and bias from its embedding ``emb [N, d_e]`` (once per forward pass).

        The weights come back as ``[N, K * Ci, Co]``, contiguous, the layout ``bmm`` reads: computed
        once per forward and used at every step (an einsum over ``[N, K, Ci, Co]`` re-copied them into
        that layout at each step, which was half of a batch-1 forward)."""
        weights = torch.einsum("nd,dkio->nkio", emb, self.weight_pool)  # [N, K, Ci, Co]
        n, k, ci, co = weights.shape
        return weights.reshape(n, k * ci, co).contiguous(), emb @ self.bias_pool  # [N, K*Ci, Co], [N, Co]

    def forward(self, x: torch.Tensor, graph: torch.Tensor, params: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        # x [B, N, Ci], graph [N, N], params from node_params
        terms = [x]  # Chebyshev terms T_k(A) x, each [B, N, Ci]; T_0 = I is never materialised
        if self.cheb_k > 1:
            terms.append(torch.einsum("nm,bmc->bnc", graph, x))
        for _ in range(2, self.cheb_k):
            terms.append(2 * torch.einsum("nm,bmc->bnc", graph, terms[-1]) - terms[-2])
        xg = torch.cat(terms, dim=-1)  # [B, N, K*Ci], k-major as the weights' rows
        weights, bias = params  # [N, K*Ci, Co], [N, Co]
        out = torch.bmm(xg.transpose(0, 1), weights)  # per node: [N, B, K*Ci] @ [N, K*Ci, Co] -> [N, B, Co]
        return out.transpose(0, 1) + bias  # [B, N, Co]


class AGCRNCell(nn.Module):
    """GRU cell whose matrix products are adaptive graph convolutions."""

    def __init__(self, c_in: int, hidden: int, cheb_k: int, embed_dim: int) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = AdaptiveGraphConv(c_in + hidden, 2 * hidden, cheb_k, embed_dim)
        self.candidate = AdaptiveGraphConv(c_in + hidden, hidden, cheb_k, embed_dim)

    def node_params(self, emb: torch.Tensor) -> tuple:
        return self.gates.node_params(emb), self.candidate.node_params(emb)

    def forward(self, x: torch.Tensor, h: torch.Tensor, graph: torch.Tensor, params: tuple) -> torch.Tensor:
        # x [B, N, Ci], h [B, N, Hd], params from node_params
        zr = torch.sigmoid(self.gates(torch.cat([x, h], dim=-1), graph, params[0]))  # [B, N, 2Hd]
        z, r = zr.chunk(2, dim=-1)  # update, reset: each [B, N, Hd]
        c = torch.tanh(self.candidate(torch.cat([x, r * h], dim=-1), graph, params[1]))  # [B, N, Hd]
        return z * h + (1 - z) * c  # [B, N, Hd]


class AGCRN(STModel):
    """AGCRN teacher (paper defaults but 32 hidden units instead of 64, for CPU).

    Hyper-parameters:
        hidden: GRU state size per node.
        layers: stacked recurrent layers.
        embed_dim: node-embedding size d_e (drives both the graph and the per-node weights).
        cheb_k: Chebyshev order of the graph convolution (2: identity and A).
        max_nodes: refuse larger graphs (dense N x N adaptive graph).
        time_dim: size of a learned time-of-day + day-of-week embedding appended to every input
            step (0 switches it off; the paper has none, but on clock-driven data a recurrent model
            without it cannot tell a weekday morning from a Sunday one).

    ``hidden`` is the last layer's final state, ``[B, N, hidden]``.
    """

    legacy_defaults = {"time_dim": 0}  # cards saved before the clock inputs
    node_agnostic_params = None  # its graph and its per-node weights both come from the node embeddings

    @classmethod
    def reads_other_nodes(cls, hparams: dict) -> bool:
        """Its graph convolutions mix every sensor with the others (on the graph it learns)."""
        return True

    def __init__(
        self,
        spec: ModelSpec,
        *,
        hidden: int = 32,
        layers: int = 2,
        embed_dim: int = 8,
        cheb_k: int = 2,
        max_nodes: int = 5000,
        time_dim: int = 8,
    ) -> None:
        super().__init__(spec, locals())
        n = spec.num_nodes
        if n > max_nodes:
            raise too_large(
                "agcrn", n, max_nodes, "its adaptive graph softmax(relu(E E^T))", n * n * 4 / 2**30,
                "gwnet with a sparse adjacency (data.graph method: knn) and params.adaptive: false, "
                "or a subset of the nodes (data.nodes)",
            )
        self.hidden_dim = hidden
        self.node_emb = nn.Parameter(torch.randn(n, embed_dim))  # [N, d_e]
        self.time_emb = TimeEmbedding(spec.steps_per_day, time_dim, spec.day_of_week) if time_dim else None
        self.cells = nn.ModuleList(
            AGCRNCell(spec.in_features + time_dim if i == 0 else hidden, hidden, cheb_k, embed_dim)
            for i in range(layers)
        )
        self.head = nn.Linear(hidden, spec.horizon * spec.out_channels)

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_inputs(x, tod, dow)
        b, p, n, _ = x.shape
        graph = F.softmax(F.relu(self.node_emb @ self.node_emb.T), dim=1)  # [N, N]
        seq = x  # [B, P, N, C]
        if self.time_emb is not None:
            t = self.time_emb(tod, dow).unsqueeze(2).expand(-1, -1, n, -1)  # [B, P, N, time_dim]
            seq = torch.cat([x, t], dim=-1)  # [B, P, N, C + time_dim]
        cell: AGCRNCell
        for cell in self.cells:  # type: ignore[assignment]
            params = cell.node_params(self.node_emb)  # per-node weights, shared by all steps
            h = x.new_zeros(b, n, self.hidden_dim)  # [B, N, Hd]
            outs = []
            for t in range(p):
                h = cell(seq[:, t], h, graph, params)  # [B, N, Hd]
                outs.append(h)
            seq = torch.stack(outs, dim=1)  # [B, P, N, Hd]
        out = self.head(h)  # [B, N, H*C_out]
        return {"pred": to_pred(out, self.spec.horizon, self.spec.out_channels), "hidden": h}
