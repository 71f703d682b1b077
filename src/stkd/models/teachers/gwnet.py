"""Graph WaveNet (Wu, Pan, Long, Jiang, Zhang: "Graph WaveNet for Deep Spatial-Temporal Graph
Modeling", IJCAI 2019).

Why this teacher: it is a strong, well-understood spatio-temporal graph model whose two halves are
exactly what a graph-free student lacks: gated dilated causal convolutions read the whole input
window, and diffusion graph convolutions mix each sensor with its neighbours, both along the given
road graph (forward and backward random walks, K steps) and along an *adaptive* graph
``softmax(relu(E1 E2^T))`` learned from node embeddings (it finds links the road graph misses).

Scale. The given graph is held as a torch sparse matrix when it arrives as scipy sparse (or when
N > ``SPARSE_GRAPH_ABOVE``, 2000), so a 20,000-sensor kNN graph costs O(edges), not O(N^2). The adaptive adjacency is dense
N x N and cannot be factorised (the softmax of a low-rank product is not low-rank), so it is used only
when ``adaptive`` is True *and* N <= ``adaptive_max_nodes``; above that it is switched off with a
logged warning and the model runs on the given graph alone (``self.adaptive_active`` says which).
Without the adaptive adjacency no weight depends on N, so the model can also be *trained on node
subsets* (``train.node_subset``: each step sees the sub-graph of a sampled neighbourhood, see
docs/scale.md) and then run on the whole network.

Layout inside the model is node-major and channels-last, ``[N, B, T, C]``: a dilated temporal
convolution with kernel k is the concatenation of k shifted slices followed by one ``nn.Linear`` (the
same function as the paper's ``Conv2d((1, k), dilation)``, but a plain matrix product, which is several
times faster on CPU), and every graph product runs on the same memory viewed as ``[N, B*T*C]``, with no
transpose or copy (see ``DiffusionConv``). Skip connections are computed only at the
last time step: every earlier step is cut off by the paper's skip truncation anyway, so this gives the
same output with far less memory at large N.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from stkd.data.graph import transition_matrices
from stkd.errors import ConfigError
from stkd.models.base import (
    ModelSpec,
    STModel,
    TimeEmbedding,
    adjacency_to_scipy,
    hyperparameters,
    scipy_to_torch_sparse,
    to_pred,
)

log = logging.getLogger(__name__)

def _node_major_product(a: torch.Tensor, h: torch.Tensor, acc: torch.Tensor | None = None) -> torch.Tensor:
    """``acc + a @ h`` for ``a [N, N]`` dense or sparse and ``h [N, M]`` (node-major: rows are sensors).

    A sparse ``a`` runs in float32 also under bfloat16 autocast (``train.precision: bf16``): torch's sparse
    product has no bfloat16 kernel, and on a sparse graph the product is a small share of the time."""
    if a.is_sparse:
        with torch.autocast(h.device.type, enabled=False):
            out = torch.sparse.mm(a, h.float())  # [N, M]
        return out if acc is None else acc.float() + out
    a = a.to(h.dtype)
    return a @ h if acc is None else torch.addmm(acc.to(h.dtype), a, h)  # [N, M]


def _dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout (each element kept with probability 1 - p, scaled by 1 / (1 - p)), as ``F.dropout``.

    The mask comes from a float32 uniform draw instead of ``bernoulli_``: on a CPU, on Graph WaveNet's
    bfloat16 activations, forward and backward take about half the time (``bernoulli_`` was ~10 % of a
    training step)."""
    if not training or p == 0.0:
        return x
    keep = torch.rand(x.shape, device=x.device) >= p  # [...] True with probability 1 - p
    return x * (keep.to(x.dtype) * (1.0 / (1.0 - p)))


class DiffusionConv(nn.Module):
    """Diffusion graph convolution ``sum_s sum_k A_s^k X W_{s,k}`` (the k = 0 term shared by all s).

    Computed *projection first*: since ``A^k X W = A^k (X W)``, every term's channel projection
    ``X W_{s,k}`` is taken once and the powers of each support are applied by Horner's rule,
    ``A (X W_1 + A (X W_2 + ...))``. Same function and parameters as concatenating the K powers of every
    support and applying one Linear (the paper's form, kept in ``self.mlp`` so saved weights still load),
    but without the concatenated tensor and with the graph products on ``C_out`` channels. It reads and
    writes the model's node-major layout, ``[N, B, T, C]``, so each graph product is one matrix product
    on ``[N, B*T*C]`` with no copy.
    """

    def __init__(self, c_in: int, c_out: int, num_supports: int, order: int, dropout: float) -> None:
        super().__init__()
        self.order = order
        self.c_in, self.c_out = c_in, c_out
        self.mlp = nn.Linear(c_in * (1 + num_supports * order), c_out)  # weight [C_out, (1 + S*K) * C_in]
        self.dropout = dropout

    def forward(self, x: torch.Tensor, supports: list[torch.Tensor]) -> torch.Tensor:
        n, b, t, _ = x.shape  # [N, B, T, C_in]
        terms = 1 + len(supports) * self.order
        if terms * self.c_in != self.mlp.in_features:
            raise ValueError(f"DiffusionConv built for {self.mlp.in_features // self.c_in - 1} graph terms, "
                             f"got {len(supports)} supports x order {self.order}")
        weights = self.mlp.weight.view(self.c_out, terms, self.c_in).unbind(1)  # terms x [C_out, C_in]
        proj = [F.linear(x, w).reshape(n, b * t * self.c_out) for w in weights]  # terms x [N, B*T*C_out]
        out = proj[0]
        for s, a in enumerate(supports):
            mine = proj[1 + s * self.order : 1 + (s + 1) * self.order]  # X W_{s,1..K}
            h = mine[-1]
            for term in reversed(mine[:-1]):
                h = _node_major_product(a, h, term)  # X W_{s,k} + A h
            out = _node_major_product(a, h, out)  # out + A h
        out = out.to(proj[0].dtype).view(n, b, t, self.c_out) + self.mlp.bias.to(proj[0].dtype)  # [N, B, T, C_out]
        return _dropout(out, self.dropout, self.training)  # [N, B, T, C_out]


class GatedTemporalConv(nn.Module):
    """``tanh(filter(x)) * sigmoid(gate(x))`` with causal dilated convolutions along time (no padding).

    Kernel ``k``, dilation ``d``: output step t reads input steps ``t, t+d, ..., t+(k-1)d``, so T
    shrinks by ``(k-1)d``. Filter and gate share one Linear that emits both.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.kernel_size, self.dilation = kernel_size, dilation
        self.linear = nn.Linear(kernel_size * c_in, 2 * c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t_out = x.shape[2] - (self.kernel_size - 1) * self.dilation
        d = self.dilation
        taps = [x[:, :, j * d : j * d + t_out] for j in range(self.kernel_size)]  # k x [..., T', C]
        f, g = self.linear(torch.cat(taps, dim=-1)).chunk(2, dim=-1)  # each [..., T', C_out]
        # sigmoid of the strided half is slow in bfloat16 on CPU: 2x faster with the gate made contiguous
        return torch.tanh(f) * torch.sigmoid(g.contiguous())  # [..., T', C_out]


class ChannelBatchNorm(nn.BatchNorm1d):
    """Batch normalisation of the last (channel) dimension, statistics over all other dimensions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)  # [..., C]


class GWNet(STModel):
    """Graph WaveNet teacher.

    Hyper-parameters (defaults are the paper's channel sizes; ``blocks`` is chosen so the receptive
    field covers the input window, ``1 + blocks * (k - 1) * (2**layers - 1) >= P``: 4 for P = 12):
        residual_channels, dilation_channels, skip_channels, end_channels: widths.
        blocks, layers: ``blocks`` repeats of ``layers`` gated convolutions with dilations 1, 2, 4, ...
        kernel_size: k of the temporal convolutions.
        order: K, diffusion steps per support.
        adaptive: learn the adaptive adjacency (dense N x N; see the module doc for large N).
        adaptive_max_nodes: above this many nodes the adaptive adjacency is switched off.
        embed_dim: node-embedding size of the adaptive adjacency.
        dropout: after each graph convolution.
        batch_norm: batch normalisation after each layer (as in the paper).
        time_embedding: add a learned time-of-day + day-of-week embedding to every input step (the
            paper feeds time of day as a second input channel; without it the model cannot tell a
            weekday morning from a Sunday one, and loses to STID on clock-driven data).
        node_identity: add the adaptive adjacency's source-node embedding ``E1 [N, embed_dim]``,
            projected to the channels, to every input step (an extension of the paper, used only while
            the adaptive adjacency is active): sensors with the same recent readings can follow very
            different daily profiles (a shopping street and a commuter station), and the shared
            convolutions otherwise cannot tell them apart.

    ``hidden`` is ``relu(sum of the skip outputs)`` at the last step, ``[B, N, skip_channels]``: the
    representation the end MLP decodes.
    """

    legacy_defaults = {"time_embedding": False, "node_identity": False}  # cards saved before the clock inputs
    #: Share of nonzeros above which a sparse support is multiplied dense under bfloat16 (see ``supports``):
    #: a dense product costs N^2 per column, a sparse one about twice as much per nonzero in float32.
    DENSE_UNDER_BF16 = 0.03
    #: Without the adaptive adjacency (and so without its node embeddings) the model reads the graph it is
    #: given: the convolutions and the diffusion weights are shared by all sensors, so it runs on any graph.
    node_agnostic_params = {"adaptive": False}

    @classmethod
    def reads_other_nodes(cls, hparams: dict) -> bool:
        """Its diffusion convolutions mix every sensor with the others (on the given and the adaptive graph)."""
        return True

    @classmethod
    def needs_adjacency(cls, hparams: dict) -> bool:
        """Its diffusion convolutions run on the data's graph (the supports are rebuilt from it at load)."""
        return True

    @classmethod
    def uses_adaptive(cls, spec: ModelSpec, hparams: dict) -> bool:
        """Whether the dense N x N adaptive adjacency will be used at this N (``adaptive`` and N small enough)."""
        d = {**hyperparameters(cls), **hparams}
        return bool(d["adaptive"]) and spec.num_nodes <= int(d["adaptive_max_nodes"])

    @classmethod
    def memory_degree(cls, spec: ModelSpec, hparams: dict) -> int:
        """Linear in N on a sparse given graph without the adaptive adjacency; quadratic otherwise."""
        dense_given = spec.adjacency is not None and not cls.graph_is_sparse(spec)
        return 2 if cls.uses_adaptive(spec, hparams) or dense_given else 1

    @classmethod
    def probe_params(cls, spec: ModelSpec, hparams: dict) -> dict:
        return {**hparams, "adaptive": cls.uses_adaptive(spec, hparams)}  # as it will be at the real N

    @classmethod
    def scale_advice(cls, degree: int) -> list[str]:
        if degree == 2:
            return super().scale_advice(degree)
        return ["train.node_subset: 2000 with params.adaptive: false (gwnet then trains each step on a sampled "
                "neighbourhood and evaluates on the whole network; docs/scale.md)"]

    def __init__(
        self,
        spec: ModelSpec,
        *,
        residual_channels: int = 32,
        dilation_channels: int = 32,
        skip_channels: int = 256,
        end_channels: int = 512,
        blocks: int | None = None,
        layers: int = 2,
        kernel_size: int = 2,
        order: int = 2,
        adaptive: bool = True,
        adaptive_max_nodes: int = 2000,
        embed_dim: int = 10,
        dropout: float = 0.3,
        batch_norm: bool = True,
        time_embedding: bool = True,
        node_identity: bool = True,
    ) -> None:
        if kernel_size < 2 or layers < 1:
            raise ConfigError(f"gwnet: kernel_size must be >= 2 and layers >= 1, got {kernel_size}, {layers}")
        per_block = (kernel_size - 1) * (2**layers - 1)  # receptive-field growth of one block
        needed = max(1, -(-(spec.input_len - 1) // per_block))  # ceil((P - 1) / per_block)
        if blocks is None:
            blocks = needed
        receptive_field = 1 + blocks * per_block
        if receptive_field < spec.input_len:
            raise ConfigError(
                f"gwnet: receptive field {receptive_field} (blocks={blocks}, layers={layers}) is shorter "
                f"than input_len={spec.input_len}; use blocks >= {needed} or leave blocks unset"
            )
        super().__init__(spec, locals())
        self.receptive_field = receptive_field
        n = spec.num_nodes
        self.hidden_dim = skip_channels

        # ---- supports from the given graph: forward and backward transition matrices
        supports: list[torch.Tensor] = []
        self._graph = None  # the given adjacency (scipy CSR), kept to cut sub-graphs for node subsets
        self._sparse = sp.issparse(spec.adjacency) or n > self.SPARSE_GRAPH_ABOVE
        if spec.adjacency is not None:
            self._graph = adjacency_to_scipy(spec.adjacency)
            supports = self._supports_of(self._graph)
        for i, s in enumerate(supports):  # buffers follow .to(device) but stay out of state_dict
            self.register_buffer(f"support_{i}", s, persistent=False)
        self.num_fixed = len(supports)

        self.adaptive_active = bool(adaptive) and n <= adaptive_max_nodes
        if adaptive and not self.adaptive_active:
            log.warning(
                "gwnet: adaptive adjacency switched off: N=%d > adaptive_max_nodes=%d (it is a dense "
                "N x N matrix); the model uses the given graph only", n, adaptive_max_nodes,
            )
        if self.num_fixed == 0 and not self.adaptive_active:
            why = "adaptive=False" if not adaptive else f"N={n} > adaptive_max_nodes={adaptive_max_nodes}"
            raise ConfigError(
                f"gwnet needs a graph: no adjacency was given and the adaptive adjacency is off ({why}). "
                "Give an adjacency (data.graph, e.g. method: knn), or enable adaptive for small N"
            )
        if self.adaptive_active:
            self.node_emb1 = nn.Parameter(torch.randn(n, embed_dim))  # [N, E]
            self.node_emb2 = nn.Parameter(torch.randn(embed_dim, n))  # [E, N]
        num_supports = self.num_fixed + int(self.adaptive_active)

        # ---- layers
        self.start = nn.Linear(spec.in_features, residual_channels)
        self.time_emb = (TimeEmbedding(spec.steps_per_day, residual_channels, spec.day_of_week)
                         if time_embedding else None)
        self.node_proj = nn.Linear(embed_dim, residual_channels) if node_identity and self.adaptive_active else None
        self.tconvs = nn.ModuleList()
        self.skips = nn.ModuleList()
        self.gconvs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for _ in range(blocks):
            for i in range(layers):
                self.tconvs.append(GatedTemporalConv(residual_channels, dilation_channels, kernel_size, 2**i))
                self.skips.append(nn.Linear(dilation_channels, skip_channels))
                self.gconvs.append(DiffusionConv(dilation_channels, residual_channels, num_supports, order, dropout))
                self.norms.append(ChannelBatchNorm(residual_channels) if batch_norm else nn.Identity())
        self.end1 = nn.Linear(skip_channels, end_channels)
        self.end2 = nn.Linear(end_channels, spec.horizon * spec.out_channels)

    def _supports_of(self, graph: sp.csr_matrix) -> list[torch.Tensor]:
        """Forward and backward transition matrices of ``graph`` (sparse torch or dense)."""
        ms = transition_matrices(graph)
        return [scipy_to_torch_sparse(m) if self._sparse else torch.from_numpy(m.toarray()) for m in ms]

    def supports_node_subsets(self) -> bool:
        """Without the adaptive adjacency no weight depends on N: the model trains on sub-graphs."""
        return not self.adaptive_active and self._graph is not None

    def set_node_subset(self, nodes) -> None:
        """Point the diffusion convolutions at the sub-graph of ``nodes`` (None: the whole graph)."""
        super().set_node_subset(nodes)
        if self._graph is None:
            return
        if nodes is None:
            graph = self._graph
        else:
            idx = np.asarray(nodes.cpu() if isinstance(nodes, torch.Tensor) else nodes, dtype=np.int64)
            graph = self._graph[idx][:, idx]  # [K, K] the edges among the chosen nodes
        device = self.start.weight.device
        for i, m in enumerate(self._supports_of(graph)):
            setattr(self, f"support_{i}", m.to(device))  # replaces the registered (non-persistent) buffer

    def supports(self) -> list[torch.Tensor]:
        """The fixed transition matrices, plus the adaptive one ``softmax(relu(E1 E2), dim=1)``.

        Under bfloat16 autocast a sparse support dense enough (``DENSE_UNDER_BF16``, share of nonzeros) is
        handed out dense: torch has no bfloat16 sparse product, so the sparse one runs in float32 with
        casts, and on Los-loop (207 sensors, 6.6 % nonzeros) the dense bfloat16 product with its backward
        took about half the time of the sparse float32 one (``benchmarks/teacher_step.py``)."""
        out = [getattr(self, f"support_{i}") for i in range(self.num_fixed)]
        device = self.start.weight.device.type
        if torch.is_autocast_enabled(device) and torch.get_autocast_dtype(device) == torch.bfloat16:
            out = [a.to_dense() if a.is_sparse and a._nnz() >= self.DENSE_UNDER_BF16 * a.shape[0] ** 2 else a
                   for a in out]
        if self.adaptive_active:
            out.append(F.softmax(F.relu(self.node_emb1 @ self.node_emb2), dim=1))  # [N, N]
        return out

    def forward(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_inputs(x, tod, dow)
        h = self.start(x.permute(2, 0, 1, 3))  # [N, B, P, C] node-major (module doc)
        if self.time_emb is not None:
            h = h + self.time_emb(tod, dow).unsqueeze(0)  # [N, B, P, C]
        if self.node_proj is not None:  # only with the adaptive adjacency, so never on a node subset
            h = h + self.node_proj(self.node_emb1)[:, None, None, :]  # [N, B, P, C]
        if self.receptive_field > h.shape[2]:
            h = F.pad(h, (0, 0, self.receptive_field - h.shape[2], 0))  # [N, B, R, C] zeros before the window
        supports = self.supports()
        skip: torch.Tensor | int = 0
        for tconv, skip_lin, gconv, norm in zip(self.tconvs, self.skips, self.gconvs, self.norms):
            residual = h  # [N, B, T, C]
            g = tconv(h)  # [N, B, T', Cd]
            skip = skip + skip_lin(g[:, :, -1])  # [N, B, S] (only the last step survives the truncation)
            h = gconv(g, supports)  # [N, B, T', C]
            h = norm(h + residual[:, :, -h.shape[2]:])  # [N, B, T', C]
        assert isinstance(skip, torch.Tensor)  # at least one layer
        rep = F.relu(skip).transpose(0, 1)  # [B, N, S]
        out = self.end2(F.relu(self.end1(rep)))  # [B, N, H*C_out]
        return {"pred": to_pred(out, self.spec.horizon, self.spec.out_channels), "hidden": rep}
