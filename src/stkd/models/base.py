"""What every model shares: the data-shape record ``ModelSpec``, the ``STModel`` base class, helpers.

The contract (docs/internals.md, section Models): ``model(x, tod, dow)`` with

```
x    [B, P, N, F_in]  scaled, imputed inputs
tod  [B, P]           time of day in [0, 1) of each input step (float)
dow  [B, P]           day of week 0..6 of each input step (int64)
```

returns ``{"pred": [B, H, N, out_features * out_classes], "hidden": [B, N, D]}`` with
``D == model.hidden_dim``. ``pred`` is in scaled units (forecast) or logits (classify); channel
``f * out_classes + c`` is class ``c`` of target feature ``f``. ``model.hparams`` is the JSON-safe
dict of constructor keywords (defaults filled) that, with the same spec, rebuilds the model.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Iterable

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from stkd.errors import ConfigError, DataError


@dataclass
class ModelSpec:
    """The shape of the problem a model is built for (everything but its hyper-parameters).

    Attributes:
        num_nodes: N, sensors.
        input_len: P, input steps.
        horizon: H, forecast steps.
        in_features: F_in, input channels per node and step (targets first, then covariates).
        out_features: F_out, target channels.
        steps_per_day: time-of-day embedding size (288 for 5-minute data, 24 for hourly).
        adjacency: optional weighted ``[N, N]`` adjacency: scipy sparse (any format) or dense
            ndarray / tensor. Only the graph teachers read it.
        out_classes: 1 for forecasting; C > 1 makes ``pred`` hold C logits per target feature.
        day_of_week: whether models may embed the day of the week. The pipeline sets it from the data
            (:func:`stkd.data.windows.weekdays_covered`): False when the training part does not hold
            every weekday at least once (Los-loop's 4.9 training days hold no Tuesday, yet validation
            and test are a Tuesday and a Wednesday: an embedding never trained for them is noise).
            True for cards saved before the field existed.
    """

    num_nodes: int
    input_len: int
    horizon: int
    in_features: int
    out_features: int
    steps_per_day: int
    adjacency: Any = None
    out_classes: int = 1
    day_of_week: bool = True

    def __post_init__(self) -> None:
        self.day_of_week = bool(self.day_of_week)
        for f in fields(self):
            if f.name in ("adjacency", "day_of_week"):
                continue
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"ModelSpec.{f.name} must be a positive integer, got {v!r}")
            setattr(self, f.name, int(v))
        if self.adjacency is not None:
            shape = tuple(self.adjacency.shape)
            if shape != (self.num_nodes, self.num_nodes):
                raise DataError(
                    f"adjacency has shape {shape}, expected ({self.num_nodes}, {self.num_nodes}) "
                    f"for num_nodes={self.num_nodes}"
                )

    @property
    def out_channels(self) -> int:
        """Channels of ``pred``: ``out_features * out_classes``."""
        return self.out_features * self.out_classes

    def to_dict(self) -> dict:
        """JSON-safe fields without the adjacency (store that with the data, not the model)."""
        d = asdict(self)
        d.pop("adjacency")
        return d


def hyperparameters(cls: type) -> dict[str, Any]:
    """The keyword-only constructor parameters of a model class and their defaults."""
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    return {p.name: p.default for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def _json_safe(value: Any, where: str) -> Any:
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}={value!r} is not a plain JSON value (number, string, list)") from e
    return value


class STModel(nn.Module):
    """Base class: keeps ``spec`` and ``hparams``, checks inputs; subclasses set ``hidden_dim``.

    Subclasses take ``(spec, *, keyword=default, ...)`` and call ``super().__init__(spec, locals())``
    first: the values of their keyword-only parameters (defaults filled, or as resolved before the
    call) become ``self.hparams``. The registry validates names against the same keyword list.

    What the rest of stkd needs to know about a model lives here, as class attributes and class
    methods a subclass overrides (nothing elsewhere keeps a list of model names): its ``role``, whether
    serving it needs the data's graph (:meth:`needs_adjacency`), whether a sensor's forecast reads other
    sensors (:meth:`reads_other_nodes`), how its memory grows with N
    (:meth:`memory_degree`, :meth:`probe_params`, :meth:`scale_advice`), whether it trains on node
    subsets (:meth:`supports_node_subsets`) and how to rebuild cards saved before a hyper-parameter
    existed (``legacy_defaults``). Adding a model is one file plus one line in the registry.
    """

    hidden_dim: int
    spec: "ModelSpec"
    #: "teacher" or "student": how the registry and the docs list it.
    role: ClassVar[str] = "teacher"
    #: Hyper-parameters added after the model was first released, with the value that rebuilds a model
    #: saved before they existed (a card that lacks one must not get the new default).
    legacy_defaults: ClassVar[dict[str, Any]] = {}
    #: A dense given graph is held sparse above this many nodes (an N x N float32 matrix per support).
    SPARSE_GRAPH_ABOVE: ClassVar[int] = 2000
    #: The hyper-parameter values under which no weight depends on the number of nodes (no node
    #: embedding, no learned N x N graph), so weights trained on one place load on another with a
    #: different N (``stkd transfer``); ``{}``: always; None: no setting does.
    node_agnostic_params: ClassVar[dict[str, Any] | None] = None

    # ---------------------------------------------------------------- facts about the class
    @classmethod
    def needs_adjacency(cls, hparams: dict[str, Any]) -> bool:
        """Whether a model with these hyper-parameters reads the data's adjacency (so serving it must
        load the graph). Models that learn their own graph, or none, return False."""
        return False

    @classmethod
    def reads_other_nodes(cls, hparams: dict[str, Any]) -> bool:
        """Whether a sensor's forecast reads other sensors' inputs (a given or learned graph, attention across
        sensors, its neighbours' windows). Where a teacher does and its student does not, what the teacher
        learned from the other sensors is not in the student's inputs: the report says so and what to do.
        Models that forecast each sensor from its own inputs return False."""
        return False

    @classmethod
    def memory_degree(cls, spec: "ModelSpec", hparams: dict[str, Any]) -> int:
        """The polynomial degree in N of the model's memory and compute: 1 (linear) or 2 (a dense N x N
        matrix somewhere). The memory guard extrapolates its probes with it; quadratic unless a model
        says otherwise."""
        return 2

    @classmethod
    def probe_params(cls, spec: "ModelSpec", hparams: dict[str, Any]) -> dict[str, Any]:
        """The hyper-parameters for the memory guard's tiny probe models (N = 16..64), with every switch
        that depends on N fixed as it will be at the real N. ``max_nodes`` (a model's refusal of large
        graphs: :func:`too_large`) is dropped: the probes are tiny and must not be refused by it."""
        return {k: v for k, v in hparams.items() if k != "max_nodes"}

    @classmethod
    def scale_advice(cls, degree: int) -> list[str]:
        """What to try instead when the model at this size does not fit in memory (the guard's message)."""
        if degree == 2:
            return ["the stid student (linear in N), or the gwnet teacher with params.adaptive: false on a sparse "
                    "graph (data.graph.method: knn), which is linear in N"]
        return ["the stid student"]

    @classmethod
    def graph_is_sparse(cls, spec: "ModelSpec") -> bool:
        """Whether the given graph is held as a sparse matrix: given sparse, or above ``SPARSE_GRAPH_ABOVE`` nodes."""
        return spec.adjacency is not None and (sp.issparse(spec.adjacency)
                                               or spec.num_nodes > cls.SPARSE_GRAPH_ABOVE)

    @classmethod
    def node_agnostic(cls, hparams: dict[str, Any]) -> bool:
        """Whether a model with these hyper-parameters (defaults filled) has no per-node weight, so it can be
        built for any N and its weights moved to a data set with other nodes."""
        if cls.node_agnostic_params is None:
            return False
        full = {**hyperparameters(cls), **hparams}
        return all(full[k] == v for k, v in cls.node_agnostic_params.items())

    @classmethod
    def with_legacy_defaults(cls, hparams: dict[str, Any]) -> dict[str, Any]:
        """``hparams`` of a saved model card, with every later-added parameter it lacks set to the old value."""
        return {**cls.legacy_defaults, **hparams}

    # ---------------------------------------------------------------- starting from a teacher
    def check_shrink_from(self, teacher: "STModel", *, same_inputs: bool = True) -> None:
        """Raise ConfigError unless :meth:`shrink_from` can cut ``teacher``'s weights down to this model
        (``distill.init: teacher``); ``same_inputs``: False where the teacher reads more than this model (a
        privileged teacher). Only a class that knows how to cut a wider model of its own kind overrides it (and
        ``shrink_from``); the others cannot start from a teacher's weights."""
        raise ConfigError(f"distill.init: teacher: a {type(self).__name__} student cannot start from a teacher's "
                          "weights (only a student that knows how to cut a wider model of its own kind down to its "
                          "size can); use distill.init: random")

    def shrink_from(self, teacher: "STModel", batches: Iterable[Any],
                    teacher_batches: Iterable[Any] | None = None) -> dict[str, torch.Tensor]:
        """This model's weights cut from the trained ``teacher``'s, with ``batches`` (windows of the training
        split, as this model reads them) to measure which of its directions and units carry the most, and
        ``teacher_batches`` the same windows as the teacher reads them where it reads more (None: alike). See
        :meth:`check_shrink_from`."""
        self.check_shrink_from(teacher, same_inputs=teacher_batches is None)
        raise NotImplementedError  # check_shrink_from raised for every class that does not override both

    def __init__(self, spec: ModelSpec, local_vars: dict[str, Any]) -> None:
        super().__init__()
        self.spec = spec
        self.hparams: dict[str, Any] = {
            k: _json_safe(local_vars[k], f"{type(self).__name__}.{k}") for k in hyperparameters(type(self))
        }

    def check_inputs(self, x: torch.Tensor, tod: torch.Tensor, dow: torch.Tensor) -> None:
        """Raise DataError when the batch does not fit the spec (skipped while tracing/exporting)."""
        if torch.jit.is_tracing() or torch.compiler.is_compiling():
            return
        s = self.spec
        want = (s.input_len, self.active_nodes, s.in_features)
        if x.dim() != 4 or tuple(x.shape[1:]) != want:
            raise DataError(
                f"{type(self).__name__} was built for x [B, P={want[0]}, N={want[1]}, F={want[2]}], "
                f"got {list(x.shape)}"
            )
        if tuple(tod.shape) != tuple(x.shape[:2]) or tuple(dow.shape) != tuple(x.shape[:2]):
            raise DataError(
                f"tod and dow must be [B, P] = {list(x.shape[:2])}, got {list(tod.shape)} and {list(dow.shape)}"
            )

    # ---------------------------------------------------------------- node-subset training
    @property
    def active_nodes(self) -> int:
        """N the model takes now: ``spec.num_nodes``, or K while a node subset is set."""
        return getattr(self, "_subset_size", None) or self.spec.num_nodes

    def supports_node_subsets(self) -> bool:
        """True when no weight depends on N, so the model can train on sub-graphs (node subsets).

        Models with per-node parameters (node embeddings, an adaptive N x N graph) return False."""
        return False

    def set_node_subset(self, nodes) -> None:
        """Run on the nodes ``nodes`` (``[K]`` indices into the full network) from now on; None: all.

        Subclasses that support it restrict their graph to the subset and call this base method."""
        if nodes is not None and not self.supports_node_subsets():
            raise ConfigError(f"{type(self).__name__} cannot train on node subsets: some of its weights are "
                              "per node (node embeddings or an adaptive N x N graph)")
        self._subset_size = None if nodes is None else int(len(nodes))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.hparams.items())


class StudentModel(STModel):
    """A student: dense operations only (it exports to ONNX) and no node-to-node term, so its memory and
    compute grow linearly in N."""

    role = "student"

    @classmethod
    def memory_degree(cls, spec: "ModelSpec", hparams: dict[str, Any]) -> int:
        return 1


def uses_node_subsets(model: STModel, k: int | None, what: str) -> bool:
    """Whether training ``model`` with ``train.node_subset=k`` samples subsets (k set and below N).

    Raises ConfigError when it would but the model has per-node weights: the one check behind both the
    pre-flight of ``stkd run`` and :func:`stkd.train.fit`."""
    if not k or k >= model.spec.num_nodes:
        return False
    if not getattr(model, "supports_node_subsets", lambda: False)():
        params = getattr(model, "hparams", {})
        raise ConfigError(f"{what}: train.node_subset={k} needs a model without per-node weights; "
                          f"{type(model).__name__} with params {params} has per-node weights (node embeddings or "
                          "an adaptive N x N graph): use gwnet with params.adaptive: false on a given graph, or "
                          "leave train.node_subset out")
    return True


def tod_index(tod: torch.Tensor, steps_per_day: int) -> torch.Tensor:
    """Time-of-day slot ``floor(tod * steps_per_day)`` as int64, clamped to ``[0, steps_per_day)``.

    ``1e-3`` of a slot is added first so that ``tod = k / steps_per_day`` rounded down in float32
    still lands in slot ``k`` (plain floor would give ``k - 1`` for some k).
    """
    idx = torch.floor(tod * steps_per_day + 1e-3).long()  # same shape as tod
    return idx.clamp(0, steps_per_day - 1)


class TimeEmbedding(nn.Module):
    """Learned time-of-day plus day-of-week embedding of every input step, ``[B, P] -> [B, P, D]``.

    Why: traffic and pedestrian flows are driven by the clock (rush hours, weekends), and a window of
    12 values alone cannot tell Monday 8:00 from Sunday 8:00. STID and STAEformer embed both; Graph
    WaveNet's paper feeds time of day as a second input channel. A slot embedding is the same function
    as a one-hot input through a linear layer, without materialising the one-hot. ``day_of_week``
    False (``ModelSpec.day_of_week``: the training data does not cover every weekday) leaves it out.
    """

    def __init__(self, steps_per_day: int, dim: int, day_of_week: bool = True) -> None:
        super().__init__()
        self.steps_per_day = steps_per_day
        self.tod = nn.Embedding(steps_per_day, dim)
        self.dow = nn.Embedding(7, dim) if day_of_week else None
        for emb in (self.tod, self.dow):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.1)

    def forward(self, tod: torch.Tensor, dow: torch.Tensor) -> torch.Tensor:
        out = self.tod(tod_index(tod, self.steps_per_day))  # [B, P, D]
        return out if self.dow is None else out + self.dow(dow.long())


def to_pred(out: torch.Tensor, horizon: int, channels: int) -> torch.Tensor:
    """``[B, N, H * C]`` (horizon-major) -> ``[B, H, N, C]``."""
    return out.unflatten(-1, (horizon, channels)).transpose(1, 2)  # [B, H, N, C]


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (each shared tensor once); buffers such as graph supports not counted."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def adjacency_to_scipy(adj: Any) -> sp.csr_matrix:
    """Any adjacency (scipy sparse, ndarray, tensor) -> float32 CSR with explicit zeros removed."""
    if sp.issparse(adj):
        m = sp.csr_matrix(adj, dtype=np.float32)
    else:
        if isinstance(adj, torch.Tensor):
            adj = adj.detach().cpu().numpy()
        m = sp.csr_matrix(np.asarray(adj, dtype=np.float32))
    m.eliminate_zeros()
    if m.nnz and not np.isfinite(m.data).all():
        raise DataError("adjacency contains NaN or infinite weights")
    return m


def scipy_to_torch_sparse(m: sp.spmatrix) -> torch.Tensor:
    """scipy sparse -> coalesced torch COO float32 (autograd flows to the dense operand of mm)."""
    coo = sp.coo_matrix(m)
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    val = torch.from_numpy(coo.data.astype(np.float32))
    return torch.sparse_coo_tensor(idx, val, coo.shape, check_invariants=True).coalesce()


def too_large(model: str, n: int, max_nodes: int, what: str, gib_per_matrix: float, alternatives: str) -> ConfigError:
    """The "too large for this model, try X" error raised before anything N x N is allocated."""
    return ConfigError(
        f"{model}: {n} nodes is too large (max_nodes={max_nodes}): {what} costs O(N^2) memory and "
        f"compute (one N x N float32 matrix is {gib_per_matrix:.2f} GiB, and it is needed per batch "
        f"element and head/step). Try {alternatives}; or set params.max_nodes higher if you have "
        f"the memory."
    )
