"""Pre-flight memory guard: estimate what training a model will need, and refuse clearly before it runs.

Why: a model that does not fit should stop with "too large for this memory, try X", not take the
machine down with an out-of-memory kill halfway through an epoch. :func:`check_fits` runs before a
model is built (``stkd.steps.check_fits`` calls it for every teacher and student, of every task).

How the estimate is made (measured, then scaled by the model's known complexity):

1. **Probe.** The model is built at three tiny sizes ``N = 16, 32, 64`` (same hyper-parameters, input
   and horizon, features, graph kind and mean degree as the real one) and run forward at batch 1 and 2:
   - in training mode under ``torch.autograd.graph.saved_tensors_hooks``, summing the bytes of every
     distinct storage autograd keeps for the backward pass (parameters excluded): the activations;
   - in ``no_grad`` evaluation mode under a ``TorchFunctionMode`` that tracks the bytes of live tensors and
     keeps their high-water mark: the peak of an evaluation forward (validation, cache, test);
   - the parameter count and the bytes of buffers (graph supports) at each size.
2. **Scale.** Each quantity is fitted as ``per_window(N) * batch + fixed(N)`` with non-negative
   coefficients (``scipy.optimize.nnls``), where ``per_window`` and ``fixed`` are polynomials in N of
   the model's *known* degree (:func:`complexity`): linear for the students and for Graph WaveNet on a
   sparse graph without the adaptive adjacency; quadratic where a dense N x N matrix exists
   (STAEformer's attention over nodes, AGCRN's adaptive graph, Graph WaveNet's adaptive adjacency or a
   dense given graph). Saved-tensor bytes are exact polynomials, so the fit is exact at the probes;
   the degree keeps the extrapolation honest.
3. **Add up** at the real N and batch size:
   ``model = max(2 * activations(B) + 16 B/param + batch tensors,
   1.25 * eval_peak(B_eval) + 4 B/param + batch tensors) + buffers``. 16 bytes per parameter are the
   float32 weights, gradients and Adam's two moments; the factor 2 covers the gradients of activations
   and temporaries alive during the backward pass (the live-tensor peak is 1.05-1.25x the saved bytes)
   and what the allocator keeps on top (process peaks up to ~1.9x the saved bytes, AGCRN); 1.25
   covers temporaries inside single ops, which the evaluation probe does not see.
   When the data is not in memory yet (``data_loaded=False``) add the prepared data,
   ``T * N * F * (4 + 4 + 1)`` bytes (the float32 source values, the scaled float32 working copy and
   the boolean mask; plus a ``T * N * F_out`` target mask when there are covariates) and ~0.6 GiB for
   the Python, torch and stkd runtime.

Available memory is ``MemAvailable`` from ``/proc/meminfo`` (or ``psutil`` when installed, or
``os.sysconf``), capped by a cgroup limit when the process runs in one, and by the environment variable
``STKD_MEMORY_LIMIT`` (e.g. ``24GiB``) when set. For ``device: cuda`` the model part is compared with
the GPU's free memory and the data part with host memory.

What it leaves out: the soft-label cache (written and read through an on-disk memmap), the test
predictions kept for the report (at most 256 MiB), memory other processes take after the check, and
distributed runs (each process checks its own share). It is an estimate: conservative by design
(docs/scale.md compares it with measured peaks), not a bound.
"""

from __future__ import annotations

import json
import logging
import os
import re
import weakref
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import nnls
from torch.overrides import TorchFunctionMode

from stkd.errors import STKDError
from stkd.models.base import ModelSpec, STModel
from stkd.models.registry import build_model, model_class

log = logging.getLogger(__name__)

GiB = 2**30
PROBE_NODES = (16, 32, 64)
PROBE_BATCHES = (1, 2)
# process peak / bytes saved for backward: 1.05-1.25 in live tensors, up to ~1.9 with what the allocator keeps (AGCRN)
TRAIN_ACTIVATION_FACTOR = 2.0
EVAL_PEAK_FACTOR = 1.25  # temporaries inside single ops, which the evaluation probe does not see
OPTIMIZER_BYTES_PER_PARAM = 16  # float32 weights + gradients + Adam's two moments
RUNTIME_BYTES = int(0.6 * GiB)  # Python + torch + stkd resident before any data (when data_loaded=False)


class MemoryLimitError(STKDError):
    """Training this model would not fit in this machine's memory (raised before anything is allocated)."""


# ------------------------------------------------------------------------------ available memory
def _parse_bytes(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmgt]?)(i?b?)\s*", str(text).lower())
    if not m:
        raise STKDError(f"STKD_MEMORY_LIMIT={text!r} is not a size like 24GiB, 8G or 17179869184")
    unit = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2)]
    return int(float(m.group(1)) * unit)


def _cgroup_free() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 or v1), or None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            with open(limit_file) as f:
                raw = f.read().strip()
            if raw == "max":
                return None
            limit = int(raw)
            if limit >= 2**60:  # v1 "no limit"
                return None
            with open(usage_file) as f:
                usage = int(f.read().strip())
            return max(0, limit - usage)
        except (OSError, ValueError):
            continue
    return None


def available_bytes() -> int:
    """Host memory this process can still use: MemAvailable, capped by cgroup and ``STKD_MEMORY_LIMIT``."""
    avail = None
    try:
        import psutil  # optional

        avail = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        avail = int(line.split()[1]) * 1024
                        break
        except OSError:
            pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 2**62  # unknown: do not refuse
    cg = _cgroup_free()
    if cg is not None:
        avail = min(avail, cg)
    env = os.environ.get("STKD_MEMORY_LIMIT")
    if env:
        avail = min(avail, _parse_bytes(env))
    return int(avail)


# ------------------------------------------------------------------------------ complexity
def complexity(name: str, spec, params: dict | None = None) -> int:
    """Polynomial degree in N of the model's memory (and compute): 1 linear, 2 quadratic.

    The model class says (:meth:`stkd.models.base.STModel.memory_degree`): the students and Graph
    WaveNet on a sparse graph without the adaptive adjacency are linear; a dense N x N matrix anywhere
    (STAEformer's node attention, AGCRN's adaptive graph, Graph WaveNet's adaptive adjacency or a dense
    given graph) makes it quadratic, as does a model that says nothing.
    """

    return model_class(name).memory_degree(spec, dict(params or {}))


def _sparse_graph(spec) -> bool:

    return STModel.graph_is_sparse(spec)


# ------------------------------------------------------------------------------ the probe
class _LiveBytes:
    """High-water mark of the bytes of live CPU tensor storages returned by torch functions while active.

    A ``TorchFunctionMode`` (cheap, no compiler import): it sees every tensor a torch function or
    tensor method returns to Python, not the temporaries inside one C++ op (the estimate's factor on
    the evaluation peak covers those).
    """

    def __init__(self) -> None:

        tracker = self

        class Mode(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                tracker._track_all(out)
                return out

        self.mode = Mode()
        self.sizes: dict[int, int] = {}
        self.refs: dict[int, int] = {}
        self.current = 0
        self.peak = 0

    def _track_all(self, out) -> None:

        items = out if isinstance(out, (tuple, list)) else (out,)
        for t in items:
            if not isinstance(t, torch.Tensor) or t.is_sparse or t.device.type != "cpu":
                continue
            try:
                st = t.untyped_storage()
                key, size = st.data_ptr(), st.nbytes()
            except (RuntimeError, NotImplementedError):
                continue
            if key == 0:
                continue
            if key not in self.sizes:
                self.sizes[key], self.refs[key] = size, 0
                self.current += size
                self.peak = max(self.peak, self.current)
            self.refs[key] += 1
            weakref.finalize(t, self._release, key)

    def _release(self, key: int) -> None:
        self.refs[key] -= 1
        if self.refs[key] == 0:
            self.current -= self.sizes.pop(key)
            del self.refs[key]


def _probe_adjacency(spec, n: int, rng: np.random.Generator):
    """A random graph of ``n`` nodes like the real one: same kind (sparse/dense) and mean degree."""

    if spec.adjacency is None:
        return None
    nnz = spec.adjacency.nnz if sp.issparse(spec.adjacency) else int(np.count_nonzero(np.asarray(spec.adjacency)))
    degree = int(min(n - 1, max(1, round(nnz / max(spec.num_nodes, 1)))))
    rows = np.repeat(np.arange(n), degree)
    cols = (rows + rng.integers(1, n, size=rows.size)) % n  # no self loops
    a = sp.csr_matrix((rng.uniform(0.1, 1.0, rows.size).astype(np.float32), (rows, cols)), shape=(n, n))
    return a if _sparse_graph(spec) else a.toarray()


def _probe_params(name: str, spec, params: dict) -> dict:
    """The hyper-parameters for the small probe models: as given, with size switches fixed at the real N."""

    return model_class(name).probe_params(spec, dict(params))


def _tensor_bytes(t) -> int:
    if t.is_sparse:
        idx, val = t._indices(), t._values()
        return int(idx.numel() * idx.element_size() + val.numel() * val.element_size())
    return int(t.numel() * t.element_size())


def _measure(name: str, spec, params: dict, n: int, b: int) -> dict[str, float]:
    """Build the model at ``n`` nodes and measure one batch of ``b`` windows (see the module doc)."""


    rng = np.random.default_rng(n)
    pspec = ModelSpec(num_nodes=n, input_len=spec.input_len, horizon=spec.horizon, in_features=spec.in_features,
                      out_features=spec.out_features, steps_per_day=spec.steps_per_day,
                      adjacency=_probe_adjacency(spec, n, rng), out_classes=spec.out_classes,
                      day_of_week=spec.day_of_week)
    model = build_model(name, pspec, params)
    own = {p.untyped_storage().data_ptr() for p in model.parameters()}
    own |= {t.untyped_storage().data_ptr() for t in model.buffers() if not t.is_sparse}
    gen = torch.Generator().manual_seed(n)
    x = torch.randn(b, spec.input_len, n, spec.in_features, generator=gen)  # [B, P, N, F]
    tod = torch.rand(b, spec.input_len, generator=gen)  # [B, P]
    dow = torch.randint(0, 7, (b, spec.input_len), generator=gen)  # [B, P]

    saved: dict[int, int] = {}

    def pack(t):
        try:
            st = t.untyped_storage()
            if st.data_ptr() not in own and not t.is_sparse:
                saved[st.data_ptr()] = st.nbytes()
        except (RuntimeError, NotImplementedError):
            pass
        return t

    model.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x, tod, dow)
    del out
    model.eval()
    live = _LiveBytes()
    with torch.no_grad(), live.mode:
        out = model(x, tod, dow)
        del out
    return {"activations": float(sum(saved.values())), "eval": float(live.peak),
            "params": float(sum(p.numel() for p in model.parameters())),
            "buffers": float(sum(_tensor_bytes(t) for t in model.buffers()))}


def _fit(points: list[tuple[int, int, float]], degree: int, per_window: bool) -> np.ndarray:
    """Non-negative coefficients ``[c_0..c_d]`` (per window, if ``per_window``) then ``[f_0..f_d]`` (fixed)."""

    rows, target = [], []
    for n, b, v in points:
        powers = [float(n) ** k for k in range(degree + 1)]
        rows.append(([b * p for p in powers] if per_window else []) + powers)
        target.append(v)
    a, y = np.asarray(rows), np.asarray(target)
    scale = np.abs(a).max(axis=0)  # column scaling keeps nnls well conditioned
    coef, _ = nnls(a / scale, y)
    return coef / scale


def _poly(coef: np.ndarray, n: int) -> float:
    return float(sum(c * float(n) ** k for k, c in enumerate(coef)))


@dataclass(frozen=True)
class _Profile:
    degree: int
    activations: np.ndarray  # per-window then fixed coefficients
    eval: np.ndarray
    params: np.ndarray  # fixed only
    buffers: np.ndarray


def _profile_key(name: str, spec, params: dict) -> tuple:


    adj = spec.adjacency
    kind = "none" if adj is None else ("sparse" if _sparse_graph(spec) else "dense")
    nnz = 0 if adj is None else (adj.nnz if sp.issparse(adj) else int(np.count_nonzero(np.asarray(adj))))
    degree = 0 if adj is None else round(nnz / spec.num_nodes)
    return (name, json.dumps(_probe_params(name, spec, params), sort_keys=True, default=str), spec.input_len,
            spec.horizon, spec.in_features, spec.out_features, spec.steps_per_day, spec.out_classes, kind, degree,
            complexity(name, spec, params))


_PROFILES: dict[tuple, _Profile] = {}


def _profile(name: str, spec, params: dict) -> _Profile:
    """Probe measurements fitted in N and batch size (cached per model, hyper-parameters and data shape)."""

    key = _profile_key(name, spec, params)
    if key in _PROFILES:
        return _PROFILES[key]
    degree = key[-1]
    probe_params = _probe_params(name, spec, params)
    points: dict[str, list] = {"activations": [], "eval": [], "params": [], "buffers": []}
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):  # the probe leaves the caller's random state alone
        try:
            torch.set_num_threads(1)  # tiny tensors: one thread is fastest, and spares a busy machine
            for n in PROBE_NODES:
                for b in PROBE_BATCHES:
                    m = _measure(name, spec, probe_params, n, b)
                    for k, v in m.items():
                        points[k].append((n, b, v))
        finally:
            torch.set_num_threads(threads)
    prof = _Profile(
        degree=degree,
        activations=_fit(points["activations"], degree, per_window=True),
        eval=_fit(points["eval"], degree, per_window=True),
        params=_fit([p for p in points["params"] if p[1] == 1], 1, per_window=False),  # affine in N
        buffers=_fit([p for p in points["buffers"] if p[1] == 1], degree, per_window=False),
    )
    _PROFILES[key] = prof
    return prof


def _split(coef: np.ndarray, degree: int, n: int, b: int) -> float:
    per, fixed = coef[:degree + 1], coef[degree + 1:]
    return b * _poly(per, n) + _poly(fixed, n)


# ------------------------------------------------------------------------------ the estimate
def data_bytes(num_steps: int, num_nodes: int, in_features: int, out_features: int) -> int:
    """Resident bytes of prepared data: float32 source values, float32 scaled copy, bool mask(s)."""
    cells = int(num_steps) * int(num_nodes)
    extra_mask = cells * out_features if in_features > out_features else 0
    return cells * in_features * (4 + 4 + 1) + extra_mask


@dataclass
class MemoryEstimate:
    """A breakdown of the bytes training a model is expected to need at its peak."""

    model: str
    num_nodes: int
    batch_size: int
    eval_batch_size: int
    complexity: int  # 1 linear, 2 quadratic in N
    params: int
    train_bytes: int  # activations x factor + weights/gradients/Adam + batch tensors
    eval_bytes: int  # evaluation forward peak + weights + batch tensors
    buffer_bytes: int  # graph supports and other buffers
    data_bytes: int  # 0 when the data is already loaded
    runtime_bytes: int  # 0 when the data is already loaded
    # node-subset training: steps on K nodes, then evaluation on all N. The allocator keeps what the
    # K-node steps freed, so the N-node evaluation comes on top (measured: benchmarks/scale.py)
    train_then_eval: bool = False

    @property
    def model_bytes(self) -> int:
        if self.train_then_eval:
            return self.train_bytes + self.eval_bytes + self.buffer_bytes
        return max(self.train_bytes, self.eval_bytes) + self.buffer_bytes

    @property
    def total_bytes(self) -> int:
        return self.model_bytes + self.data_bytes + self.runtime_bytes

    def describe(self) -> str:
        parts = [f"training step {self.train_bytes / GiB:.1f} GiB at batch size {self.batch_size}",
                 f"evaluation {self.eval_bytes / GiB:.1f} GiB at batch size {self.eval_batch_size}"]
        if self.buffer_bytes > 0.05 * GiB:
            parts.append(f"graph {self.buffer_bytes / GiB:.1f} GiB")
        if self.data_bytes:
            parts.append(f"data {self.data_bytes / GiB:.1f} GiB")
        return ", ".join(parts)


def _batch_tensor_bytes(spec, b: int, n: int | None = None) -> int:
    """x, y, mask, covariates of one batch (the copies cut out of the prepared array) over ``n`` nodes."""
    n = n or spec.num_nodes
    return b * (spec.input_len * n * spec.in_features * 4 + spec.horizon * n * spec.out_features * (4 + 4 + 1)
                + spec.horizon * n * spec.out_channels * 4 * 2)  # x; y, raw target, mask; pred in 2 units


def default_eval_batch_size(batch_size: int) -> int:
    """The pipeline's evaluation batch (``stkd.steps.eval_batch_size``): 4 x train, at most 256."""
    return max(1, min(256, 4 * int(batch_size)))


def estimate_memory(name: str, spec, params: dict | None = None, *, batch_size: int = 64,
                    eval_batch_size: int | None = None, num_steps: int | None = None,
                    data_loaded: bool = False, train_nodes: int | None = None) -> MemoryEstimate:
    """Estimate the peak memory of training model ``name`` built for ``spec`` (see the module doc).

    Args:
        name: a registered model name; params: its hyper-parameters (as for ``build_model``).
        batch_size: training windows per step; eval_batch_size: windows per evaluation forward
            (default: the pipeline's ``min(256, 4 * batch_size)``).
        num_steps: T of the data (with ``data_loaded=False`` the prepared data is added).
        data_loaded: True when the data is already in memory (then only the model's part counts).
        train_nodes: K when training steps see node subsets of K nodes (``train.node_subset``);
            evaluation still runs on all N.
    """
    params = dict(params or {})
    b = int(batch_size)
    be = int(eval_batch_size or default_eval_batch_size(b))
    prof = _profile(name, spec, params)
    n, d = spec.num_nodes, prof.degree
    n_params = max(0, int(round(_poly(prof.params, n))))
    nt = min(int(train_nodes), n) if train_nodes else n
    act = _split(prof.activations, d, nt, b)
    ev = EVAL_PEAK_FACTOR * _split(prof.eval, d, n, be)
    train = (TRAIN_ACTIVATION_FACTOR * act + OPTIMIZER_BYTES_PER_PARAM * n_params
             + _batch_tensor_bytes(spec, b, nt))
    evalb = ev + 4 * n_params + _batch_tensor_bytes(spec, be)
    buffers = _poly(prof.buffers, n)
    data = 0 if data_loaded or not num_steps else data_bytes(num_steps, n, spec.in_features, spec.out_features)
    return MemoryEstimate(model=name, num_nodes=n, batch_size=b, eval_batch_size=be, complexity=d, params=n_params,
                          train_bytes=int(train), eval_bytes=int(evalb), buffer_bytes=int(buffers),
                          data_bytes=int(data), runtime_bytes=0 if data_loaded else RUNTIME_BYTES,
                          train_then_eval=nt < n)


def estimate_training_bytes(name: str, spec, params: dict | None = None, *, batch_size: int = 64,
                            eval_batch_size: int | None = None, num_steps: int | None = None,
                            data_loaded: bool = False) -> int:
    """Total bytes :func:`estimate_memory` expects training ``name`` to need at its peak."""
    return estimate_memory(name, spec, params, batch_size=batch_size, eval_batch_size=eval_batch_size,
                           num_steps=num_steps, data_loaded=data_loaded).total_bytes


# ------------------------------------------------------------------------------ the guard
def _largest_batch(name, spec, params, budget: int, fixed: int, est: MemoryEstimate) -> int:
    """The largest training batch size (<= the requested one) whose estimate fits in ``budget``."""
    lo, hi = 0, est.batch_size - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        e = estimate_memory(name, spec, params, batch_size=mid, eval_batch_size=default_eval_batch_size(mid),
                            data_loaded=True)
        if e.model_bytes + fixed <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _suggestions(name: str, spec, params: dict, est: MemoryEstimate, budget: int, fixed: int) -> list[str]:
    out = []
    b = _largest_batch(name, spec, params, budget, fixed, est) if est.batch_size > 1 else 0
    if b >= 1:
        out.append(f"train.batch_size: {b} (or less)")

    out.extend(model_class(name).scale_advice(est.complexity))
    out.append("fewer nodes (data.nodes, or node partitions / a spatial query of the network)")
    if est.data_bytes > 0.25 * budget:
        out.append(f"a shorter data.time_range (the data alone needs ~{est.data_bytes / GiB:.1f} GiB)")
    return out


def check_fits(name: str, spec, params: dict | None = None, *, batch_size: int = 64,
               eval_batch_size: int | None = None, num_steps: int | None = None, data_loaded: bool = False,
               available: int | None = None, device: str | None = "cpu",
               train_nodes: int | None = None, share: int = 1) -> MemoryEstimate | None:
    """Raise :class:`MemoryLimitError` when training ``name`` would not fit; return the estimate otherwise.

    ``available`` (bytes) defaults to :func:`available_bytes`; for a CUDA ``device`` the model's part is
    checked against the GPU's free memory and the data against host memory. ``share``: the model trains at
    once with ``share - 1`` others, each in a process of its own (``train.workers``, a search's ``--workers``), so
    it gets that part of the memory. The message names the model, N, the estimate and the memory available, and lists what to try.
    Returns None (no check) when the model fails to run even at the probe's tiny size: building it reports
    that error.
    """
    params = dict(params or {})
    try:
        est = estimate_memory(name, spec, params, batch_size=batch_size, eval_batch_size=eval_batch_size,
                              num_steps=num_steps, data_loaded=data_loaded, train_nodes=train_nodes)
    except STKDError:
        raise
    except Exception as e:  # noqa: BLE001 - a model that cannot even run small fails its own build check
        log.debug("memory guard skipped for %s: the probe failed (%s: %s)", name, type(e).__name__, e)
        return None
    host = int(available if available is not None else available_bytes())
    where, budget, fixed, need = "this machine", host, est.data_bytes + est.runtime_bytes, est.total_bytes
    dev = str(device or "cpu")
    if dev.startswith("cuda") or dev == "auto":
        try:

            if torch.cuda.is_available():
                budget, fixed, need, where = int(torch.cuda.mem_get_info()[0]), 0, est.model_bytes, "this GPU"
                host_need = est.data_bytes + est.runtime_bytes
                if host_need > host:
                    budget, fixed, need, where = host, host_need, host_need, "this machine"
        except Exception:  # noqa: BLE001 - no usable CUDA: fall back to the host check
            pass
    budget //= max(1, share)
    if need <= budget:
        return est
    tries = _suggestions(name, spec, params, est, budget, fixed)
    shared = ""
    if share > 1:
        shared = f" for each of the {share} models that train at once, each process with its own data"
        tries.insert(0, "fewer at once (train.workers: 1 trains a run's models one at a time; stkd tune --workers "
                        "sets a search's processes)")
    raise MemoryLimitError(
        f"too large for this memory: {name} at N={spec.num_nodes} needs ~{need / GiB:.1f} GiB "
        f"({est.describe()}), {where} has {budget / GiB:.1f} GiB available{shared}; try " + "; or ".join(tries)
    )
