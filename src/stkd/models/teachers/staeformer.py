"""STAEformer (Liu, Yang, Jiang, Song, Yang, Xiao, Jiang, Zhang, Luo: "STAEformer: Spatio-Temporal
Adaptive Embedding Makes Vanilla Transformer SOTA for Traffic Forecasting", CIKM 2023).

Why this teacher: a plain transformer whose strength comes from its embeddings: each (step, node)
token is the concatenation of an input projection, a time-of-day and a day-of-week embedding, and a
learned *spatio-temporal adaptive embedding* ``[P, N, d_a]`` that lets the model learn each sensor's
own temporal pattern without a given graph. Self-attention over time (per node) and then over nodes
(per step) relates every sensor to every other one, which a per-node student cannot do; the output
layer mixes the whole window (``P * D -> H``) as in the paper.

Scale: spatial attention is O(N^2) per step and batch element. The constructor refuses
``N > max_nodes`` (default 5000) with a ConfigError before anything is allocated; use Graph WaveNet
with a sparse graph and ``adaptive: false`` for larger networks. The paper's optional node embedding
is left out (its ablation shows the adaptive embedding covers it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from stkd.errors import ConfigError
from stkd.models.base import ModelSpec, STModel, to_pred, tod_index, too_large


class AttentionLayer(nn.Module):
    """Post-norm transformer layer (multi-head self-attention + feed-forward) over dimension -2."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.ReLU(), nn.Linear(ff_dim, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.p_attn = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *lead, length, dim = x.shape  # [..., L, D]
        qkv = self.qkv(x).reshape(-1, length, 3, self.heads, dim // self.heads)  # [M, L, 3, h, dh], M = prod(...)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [M, h, L, dh]
        a = F.scaled_dot_product_attention(q, k, v, dropout_p=self.p_attn if self.training else 0.0)  # [M, h, L, dh]
        a = a.transpose(1, 2).reshape(*lead, length, dim)  # [..., L, D]
        x = self.norm1(x + self.dropout(self.proj(a)))  # [..., L, D]
        return self.norm2(x + self.dropout(self.ff(x)))  # [..., L, D]


class STAEformer(STModel):
    """STAEformer teacher (small CPU defaults; the paper uses 24/24/24/80 embeddings, 3+3 layers).

    Hyper-parameters:
        input_embed, tod_embed, dow_embed, adaptive_embed: embedding sizes; the model width is
            their sum (D = 80 by default).
        layers: transformer layers over time, and again over nodes.
        heads: attention heads (must divide D).
        ff_dim: feed-forward width.
        dropout: dropout in attention and after each sub-layer.
        max_nodes: refuse larger graphs (spatial attention is O(N^2)).

    ``hidden`` is the last layer's output averaged over the P steps, ``[B, N, D]``.
    """

    node_agnostic_params = {"adaptive_embed": 0}  # the spatial attention itself runs over any number of nodes

    @classmethod
    def reads_other_nodes(cls, hparams: dict) -> bool:
        """Its spatial attention reads every sensor for each one."""
        return True

    def __init__(
        self,
        spec: ModelSpec,
        *,
        input_embed: int = 16,
        tod_embed: int = 16,
        dow_embed: int = 8,
        adaptive_embed: int = 40,
        layers: int = 2,
        heads: int = 4,
        ff_dim: int = 160,
        dropout: float = 0.1,
        max_nodes: int = 5000,
    ) -> None:
        super().__init__(spec, locals())
        n, p = spec.num_nodes, spec.input_len
        if n > max_nodes:
            raise too_large(
                "staeformer", n, max_nodes, "attention over all nodes", n * n * 4 / 2**30,
                "gwnet with a sparse adjacency (data.graph method: knn) and params.adaptive: false, "
                "or a subset of the nodes (data.nodes)",
            )
        if not spec.day_of_week:
            dow_embed = 0  # the training data does not cover every weekday (ModelSpec.day_of_week)
        dim = input_embed + tod_embed + dow_embed + adaptive_embed
        if heads < 1 or dim % heads:
            raise ConfigError(f"staeformer: heads={heads} must divide the model width {dim} (sum of the embeddings)")
        self.hidden_dim = dim
        self.input_proj = nn.Linear(spec.in_features, input_embed)
        self.tod_emb = nn.Embedding(spec.steps_per_day, tod_embed) if tod_embed else None
        self.dow_emb = nn.Embedding(7, dow_embed) if dow_embed else None
        self.adaptive = (  # [P, N, d_a]
            nn.Parameter(nn.init.xavier_uniform_(torch.empty(p, n, adaptive_embed))) if adaptive_embed else None
        )
        self.temporal = nn.ModuleList(AttentionLayer(dim, heads, ff_dim, dropout) for _ in range(layers))
        self.spatial = nn.ModuleList(AttentionLayer(dim, heads, ff_dim, dropout) for _ in range(layers))
        self.output_proj = nn.Linear(p * dim, spec.horizon * spec.out_channels)

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_inputs(x, tod, dow)
        b, p, n, _ = x.shape
        parts = [self.input_proj(x)]  # [B, P, N, d_in]
        if self.tod_emb is not None:
            t = self.tod_emb(tod_index(tod, self.spec.steps_per_day))  # [B, P, d_tod]
            parts.append(t.unsqueeze(2).expand(b, p, n, -1))  # [B, P, N, d_tod]
        if self.dow_emb is not None:
            w = self.dow_emb(dow.long())  # [B, P, d_dow]
            parts.append(w.unsqueeze(2).expand(b, p, n, -1))  # [B, P, N, d_dow]
        if self.adaptive is not None:
            parts.append(self.adaptive.expand(b, p, n, -1))  # [B, P, N, d_a]
        h = torch.cat(parts, dim=-1)  # [B, P, N, D]
        h = h.transpose(1, 2)  # [B, N, P, D]: attention over time, per node
        for layer in self.temporal:
            h = layer(h)
        h = h.transpose(1, 2)  # [B, P, N, D]: attention over nodes, per step
        for layer in self.spatial:
            h = layer(h)
        hidden = h.mean(dim=1)  # [B, N, D]
        out = self.output_proj(h.transpose(1, 2).flatten(2))  # [B, N, H*C_out]
        return {"pred": to_pred(out, self.spec.horizon, self.spec.out_channels), "hidden": hidden}
