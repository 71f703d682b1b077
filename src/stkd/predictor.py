"""Forecast from raw recent observations with a trained model: ``stkd.load(run_dir).predict(window)``.

A :class:`Predictor` turns readings in ORIGINAL units (NaN where missing) and their timestamps into
forecasts in original units (or event probabilities for a classification run), with the timestamps
and node ids attached. It does what training did, with the statistics saved from training:

1. gap filling with :func:`stkd.data.impute.fill_inputs` (forward fill inside the window, or from the
   history given before it; a gap with no earlier reading gets the train mean of its time-of-week
   slot, else the node's train mean: exactly the rule training applies to the series start);
2. scaling with the run's :class:`stkd.data.scalers.Scaler` (``Scaler.from_state`` of ``data.json``);
3. time covariates with :func:`stkd.data.windows.time_covariates` (time of day, day of week);
4. the model, then ``scaler.inverse`` on the target channels (or a softmax over the classes).

The train statistics the gap filling needs (per node train means, the time-of-week profile) are
computed once from the run's data with the functions training used and kept in
``run_dir/deploy/stats.npz``; a teacher that needs the graph gets the adjacency the same way. When the
data cannot be read any more, the train means fall back to the scaler's center (identical for a
per-node z-score) without the seasonal profile, with a warning.

A predictor also loads from an exported folder (``stkd export``): then only numpy, pandas and
onnxruntime (or torch for TorchScript) are used.

Shapes: B windows, P input steps, H horizon steps, N nodes, F input features, F_out targets, K classes.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stkd.data.impute import METHODS, fill_inputs
from stkd.data.scalers import Scaler
from stkd.data.windows import time_covariates
from stkd.errors import DataError, STKDError

log = logging.getLogger(__name__)

def needs_adjacency(card: dict) -> bool:
    """Whether rebuilding the model of this card needs the data's adjacency: the model class says so
    (:meth:`stkd.models.base.STModel.needs_adjacency`: the graph teachers, an STID reading its neighbours)."""
    from stkd.models.registry import model_class

    return model_class(card["name"]).needs_adjacency(card.get("hparams") or {})


ROLE_PREFERENCE = ("student_kd", "student_plain", "teacher")


def _as_sequence(timestamps):
    """One timestamp (string, Timestamp, datetime64, datetime) as a one-item list; sequences unchanged."""
    if isinstance(timestamps, (str, pd.Timestamp, np.datetime64)) or not hasattr(timestamps, "__len__"):
        return [timestamps]
    return timestamps


# a naive ISO 8601 date-time as numpy parses it exactly like pandas (no offset, no "Z")
_NAIVE_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?")
STATS_FILE = "deploy/stats.npz"
SPEC_FILE = "deploy.json"  # in an exported folder
FORMAT_VERSION = 1
_TIME_NAMES = ("timestamp", "time", "datetime", "date_time", "date", "ts")
_NODE_NAMES = ("node", "sensor", "node_id", "sensor_id", "station", "id")


# ============================================================================ the spec
@dataclass
class ServingSpec:
    """Everything besides the weights that turns raw readings into model inputs and back.

    It is what ``deploy.json`` of an exported folder holds (JSON-safe, see :meth:`to_json`), and what a
    run directory yields through :func:`spec_from_run`.
    """

    model: str  # the model's name in the run (e.g. stid_kd)
    registry_name: str  # the architecture (e.g. stid)
    role: str
    task: str
    dataset: str
    nodes: list[str]
    features: list[str]
    targets: list[str]
    freq: str  # pandas alias of the step (5min, h)
    data_start: str  # first timestamp of the training data: the grid origin and the seasonal slot 0
    input_len: int
    horizon: int
    steps_per_day: int
    out_classes: int
    impute: str
    scaler: dict  # Scaler.state_dict()
    train_means: np.ndarray  # [N, F] float32
    seasonal_means: np.ndarray | None = None  # [period, N, F] float32, slot = steps since data_start % period
    metrics: dict = field(default_factory=dict)  # this model's entry of metrics.json
    dataset_metrics: dict = field(default_factory=dict)  # metrics.json "dataset"
    stats_source: str = "data"  # data | scaler (train means approximated by the scaler's center)
    out_features: int | None = None  # output channels before the classes (default: the number of targets)
    class_names: list[str] | None = None  # event classes (classification runs)

    @property
    def event_threshold(self) -> float | None:
        """The decision threshold of a 2-class event model (event when P(class 1) >= it), chosen on the
        validation split by the run; None for forecasts, K > 2 classes, or a run that recorded none."""
        t = self.metrics.get("threshold") if self.out_classes == 2 else None
        return float(t) if isinstance(t, (int, float)) and 0.0 <= t <= 1.0 else None

    def __post_init__(self) -> None:
        self.nodes = [str(n) for n in self.nodes]
        self.train_means = np.asarray(self.train_means, dtype=np.float32)
        N, F = len(self.nodes), len(self.features)
        if self.train_means.shape != (N, F):
            raise DataError(f"serving spec: train_means must be [N={N}, F={F}], got {self.train_means.shape}")
        if self.seasonal_means is not None:
            self.seasonal_means = np.asarray(self.seasonal_means, dtype=np.float32)
            if self.seasonal_means.ndim != 3 or self.seasonal_means.shape[1:] != (N, F):
                raise DataError(f"serving spec: seasonal_means must be [period, {N}, {F}], "
                                f"got {self.seasonal_means.shape}")
        if self.out_features is None:
            self.out_features = len(self.targets)
        self.out_features = int(self.out_features)
        if not 1 <= self.out_features <= max(1, len(self.targets)):
            raise DataError(f"serving spec: out_features {self.out_features} does not fit targets {self.targets}")
        if self.impute not in METHODS:
            raise DataError(f"serving spec: impute {self.impute!r} is not one of {', '.join(METHODS)}")

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(pd.tseries.frequencies.to_offset(self.freq))

    @property
    def period(self) -> int | None:
        return None if self.seasonal_means is None else int(self.seasonal_means.shape[0])

    def to_json(self) -> dict:
        """JSON-safe dict (the seasonal profile is stored next to it as ``seasonal_means.npy``)."""
        return {"format_version": FORMAT_VERSION, "model": self.model, "registry_name": self.registry_name,
                "role": self.role, "task": self.task, "dataset": self.dataset, "nodes": self.nodes,
                "features": self.features, "targets": self.targets, "freq": self.freq,
                "data_start": self.data_start, "input_len": self.input_len, "horizon": self.horizon,
                "steps_per_day": self.steps_per_day, "out_classes": self.out_classes, "impute": self.impute,
                "seasonal_period": self.period, "scaler": self.scaler,
                "train_means": self.train_means.tolist(), "metrics": self.metrics,
                "dataset_metrics": self.dataset_metrics, "stats_source": self.stats_source,
                "out_features": self.out_features, "class_names": self.class_names}

    @classmethod
    def from_json(cls, d: dict, seasonal: np.ndarray | None = None) -> "ServingSpec":
        keys = ("model", "registry_name", "role", "task", "dataset", "nodes", "features", "targets", "freq",
                "data_start", "input_len", "horizon", "steps_per_day", "out_classes", "impute", "scaler",
                "train_means")
        missing = [k for k in keys if k not in d]
        if missing:
            raise DataError(f"deploy.json: missing key(s) {missing}")
        return cls(**{k: d[k] for k in keys}, seasonal_means=seasonal, metrics=d.get("metrics") or {},
                   dataset_metrics=d.get("dataset_metrics") or {}, stats_source=d.get("stats_source", "data"),
                   out_features=d.get("out_features"), class_names=d.get("class_names"))

    @property
    def output_names(self) -> list[str]:
        """Names of the output channels before the classes: the first ``out_features`` targets."""
        return list(self.targets[: self.out_features])


# ====================================================================== preprocessing
class Preprocessor:
    """Grid positions, gap filling, scaling and time covariates: training's code path for one window.

    Positions are integer steps since ``data_start`` (the training data's first timestamp): they check
    that timestamps lie on the data's grid and give the seasonal slot ``pos % period``.
    """

    def __init__(self, spec: ServingSpec) -> None:
        self.spec = spec
        self.scaler = Scaler.from_state(spec.scaler)
        self.start = pd.Timestamp(spec.data_start)
        self.step = spec.step
        self.step_ns = int(self.step.value)
        if self.step_ns <= 0:
            raise DataError(f"serving spec: freq {spec.freq!r} is not a positive step")
        self.means = spec.train_means  # [N, F]
        self.seasonal = spec.seasonal_means  # [period, N, F] or None
        self.method = spec.impute
        self._start_ns = int(self.start.value)  # UTC ns for an aware start
        self._week: tuple | None = None  # (tod, dow) over one week of the grid, when the calendar repeats

    # ---------------------------------------------------------------- time
    def as_index(self, timestamps, what: str = "timestamps") -> pd.DatetimeIndex:
        """Timestamps (strings, datetimes, numpy datetime64) as a DatetimeIndex in the data's timezone."""
        timestamps = _as_sequence(timestamps)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if isinstance(timestamps, pd.DatetimeIndex):
                    idx = timestamps
                elif len(timestamps) <= 256 and all(isinstance(t, str) for t in timestamps):
                    # a few strings (a request): one by one is ~100x faster than to_datetime's format guessing
                    ts = [pd.Timestamp(t) for t in timestamps]
                    aware = [t.tzinfo is not None for t in ts if t is not pd.NaT]
                    if any(aware) and not all(aware):
                        raise DataError(f"{what}: some timestamps have a timezone and some do not")
                    idx = pd.DatetimeIndex([t.tz_convert("UTC") for t in ts] if any(aware) else ts)
                else:
                    idx = pd.DatetimeIndex(pd.to_datetime(list(timestamps) if not isinstance(
                        timestamps, (pd.Index, np.ndarray, pd.Series)) else timestamps))
        except DataError:
            raise
        except (ValueError, TypeError, OverflowError) as e:
            raise DataError(f"{what}: not a timestamp ({e}); expected e.g. '2012-03-01 00:05'") from None
        if idx.hasnans:
            raise DataError(f"{what}: a timestamp is missing (NaT); every input step needs its timestamp")
        tz = self.start.tz
        if tz is None and idx.tz is not None:
            raise DataError(f"{what}: timestamps carry a timezone ({idx.tz}) but the model was trained on "
                            f"naive local times (e.g. {self.start}); drop the timezone")
        if tz is not None:
            if idx.tz is None:
                raise DataError(f"{what}: timestamps have no timezone but the model's data is in {tz} "
                                f"(e.g. {self.start}); give timestamps with a UTC offset")
            idx = idx.tz_convert(tz)
        return idx

    def positions(self, index: pd.DatetimeIndex, what: str = "timestamps") -> np.ndarray:
        """``[T]`` int64 steps since ``data_start``; an error names a timestamp off the data's grid."""
        ns = index.as_unit("ns").asi8 if len(index) else np.zeros(0, np.int64)
        return self._positions_ns(ns, what, lambda k: index[k])

    def grid_positions(self, timestamps, what: str = "timestamps") -> np.ndarray:
        """``positions(as_index(timestamps))``, with a fast path for a request's few naive ISO strings.

        Why: a service parses P timestamps per request; numpy reads ``2012-03-08 00:05`` (or with ``T``,
        seconds, fractions) ~20x faster than pandas, to the same instants. Anything else (offsets, other
        spellings, aware data) goes the general way, which also gives the error messages.
        """
        timestamps = _as_sequence(timestamps)
        if (self.start.tz is None and isinstance(timestamps, (list, tuple, np.ndarray)) and 0 < len(timestamps) <= 256
                and all(isinstance(t, str) and _NAIVE_ISO.fullmatch(t) for t in timestamps)):
            try:
                ns = np.array(timestamps, dtype="datetime64[ns]").astype(np.int64)
            except ValueError:  # e.g. month 13: the general path says so
                pass
            else:
                return self._positions_ns(ns, what, lambda k: pd.Timestamp(ns[k]))
        return self.positions(self.as_index(timestamps, what), what)

    def _positions_ns(self, ns: np.ndarray, what: str, timestamp_at) -> np.ndarray:
        delta = ns - self._start_ns
        off = delta % self.step_ns != 0
        if off.any():
            k = int(np.flatnonzero(off)[0])
            raise DataError(f"{what}: {timestamp_at(k)} is not on the data's {self.spec.freq} grid (steps of "
                            f"{self.step} from {self.start}); round it to the step it belongs to")
        return delta // self.step_ns

    def times(self, pos: np.ndarray) -> pd.DatetimeIndex:
        """Timestamps of grid positions (any shape, flattened)."""
        ns = np.asarray(pos, dtype=np.int64).reshape(-1) * self.step_ns + self._start_ns
        idx = pd.DatetimeIndex(ns.astype("datetime64[ns]"))
        if self.start.tz is not None:
            idx = idx.tz_localize("UTC").tz_convert(self.start.tz)
        return idx

    def covariates(self, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``tod [..]`` float32 and ``dow [..]`` int64 of grid positions (``windows.time_covariates``).

        For naive timestamps on a step that divides a week, the calendar repeats every week, so
        ``time_covariates`` is evaluated once over a week of the grid and looked up by ``pos % period``.
        """
        pos = np.asarray(pos, dtype=np.int64)
        if self._week is None:
            week = pd.Timedelta("7D").value
            period = week // self.step_ns if self.start.tz is None and week % self.step_ns == 0 else 0
            self._week = time_covariates(self.times(np.arange(period))) if 0 < period <= 1_000_000 else ()
        if self._week:
            slot = np.mod(pos, len(self._week[0]))
            return self._week[0][slot], self._week[1][slot]
        tod, dow = time_covariates(self.times(pos))
        return tod.reshape(pos.shape), dow.reshape(pos.shape)

    # ---------------------------------------------------------------- fill
    def fallback(self, pos: np.ndarray) -> np.ndarray:
        """``[T, N, F]`` what a gap with no earlier reading gets: the slot's train mean, else the node's."""
        if self.seasonal is not None and self.method in ("ffill", "seasonal"):
            return self.seasonal[np.mod(np.asarray(pos, np.int64), self.seasonal.shape[0])]
        return np.broadcast_to(self.means, (len(pos),) + self.means.shape)

    def fill(self, values: np.ndarray, pos: np.ndarray, carry: np.ndarray | None = None) -> np.ndarray:
        """Fill the gaps of ``values [T, N, F]`` (original units, NaN = missing) like training did.

        ``carry [N, F]``: the last reading of each column before ``values`` (NaN where none), so a
        forward fill continues across the window's start exactly as it did over the training series.
        """
        values = np.asarray(values, dtype=np.float32)
        mask = ~np.isnan(values)
        if mask.all():
            return np.array(values, dtype=np.float32, order="C", copy=True)
        if self.method == "ffill":
            off = 0
            if carry is not None:
                cm = ~np.isnan(carry)
                if cm.any():
                    values = np.concatenate([np.asarray(carry, np.float32)[None], values])
                    mask = np.concatenate([cm[None], mask])
                    off = 1
            # training's forward fill; train_end=0 leaves the statistics out (leading gaps get 0 here
            # and are replaced below by the saved train statistics, as fill_inputs does with its own)
            out = fill_inputs(values, mask, method="ffill", period=None, train_end=0)
            lead = ~np.logical_or.accumulate(mask, axis=0)
            out, lead = out[off:], lead[off:]
            if lead.any():
                out[lead] = self.fallback(pos)[lead]
            return out
        out = np.array(values, dtype=np.float32, order="C", copy=True)
        out[~mask] = self.fallback(pos)[~mask]
        return out

    def scale(self, filled: np.ndarray) -> np.ndarray:
        return np.asarray(self.scaler.transform(filled), dtype=np.float32)


# ======================================================================== backends
class TorchBackend:
    """The PyTorch model itself. ``__call__(x, tod, dow) -> pred [B, H, N, C]`` numpy."""

    name = "torch"

    def __init__(self, model) -> None:
        import torch

        self.torch = torch
        self.model = model.eval()

    def __call__(self, x: np.ndarray, tod: np.ndarray, dow: np.ndarray) -> np.ndarray:
        t = self.torch
        with t.inference_mode():
            out = self.model(t.from_numpy(x), t.from_numpy(tod), t.from_numpy(dow))
        return (out["pred"] if isinstance(out, dict) else out).numpy()


class OnnxBackend:
    """An onnxruntime session over an exported model (a path or the model's bytes).

    The legacy exporter drops inputs a model does not read (mlp and linear read only ``x``), so the
    feed is built from ``session.get_inputs()``.
    """

    name = "onnx"

    def __init__(self, model: str | Path | bytes, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        # idle worker threads spinning for work would burn the CPU a server shares with its clients
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        src = model if isinstance(model, bytes) else str(model)
        self.session = ort.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.output = self.session.get_outputs()[0].name

    def __call__(self, x: np.ndarray, tod: np.ndarray, dow: np.ndarray) -> np.ndarray:
        feed = {"x": x, "tod": tod, "dow": dow}
        return self.session.run([self.output], {k: feed[k] for k in self.inputs})[0]


class TorchScriptBackend:
    """A TorchScript module (``torch.jit.load``) returning ``pred``."""

    name = "torchscript"

    def __init__(self, module) -> None:
        import torch

        self.torch = torch
        if isinstance(module, (str, Path)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still supported
                module = torch.jit.load(str(module))
        self.module = module
        self.module.eval()

    def __call__(self, x: np.ndarray, tod: np.ndarray, dow: np.ndarray) -> np.ndarray:
        t = self.torch
        with t.inference_mode():
            out = self.module(t.from_numpy(x), t.from_numpy(tod), t.from_numpy(dow))
        return out.numpy()


# ======================================================================== forecasts
@dataclass
class Forecast:
    """Forecasts of B windows as arrays, with their times and node ids.

    values: ``[B, H, N, F_out]`` in original units, or ``[B, H, N, F_out, K]`` event probabilities.
    issued_at: ``[B]`` the last input step of each window; target_time: ``[B * H]`` (window-major:
    ``target_time[b * H + h]`` is step ``h + 1`` ahead of ``issued_at[b]``).
    """

    values: np.ndarray
    issued_at: pd.DatetimeIndex
    target_time: pd.DatetimeIndex
    nodes: list[str]
    targets: list[str]
    classes: int = 1
    threshold: float | None = None  # a 2-class event model's validation-chosen decision threshold

    def __len__(self) -> int:
        return int(self.values.shape[0])

    def alarms(self) -> np.ndarray:
        """``[B, H, N]`` bool: P(event) >= the run's decision threshold (2-class event models only)."""
        if self.threshold is None or self.values.ndim != 5 or self.values.shape[-1] != 2:
            raise STKDError("alarms need a 2-class event model whose run chose a decision threshold")
        return self.values[:, :, :, 0, 1] >= self.threshold

    def to_frame(self) -> pd.DataFrame:
        """Long form: ``issued_at, target_time, node, horizon, value`` (+ ``target`` when there are
        several targets, + ``class`` with the probability in ``value`` for an event model)."""
        v = self.values
        B, H, N, Fo = v.shape[:4]
        K = v.shape[4] if v.ndim == 5 else 1
        v = v.reshape(B, H, N, Fo, K).transpose(0, 2, 1, 3, 4)  # [B, N, H, Fo, K]
        reps = N * H * Fo * K
        b = np.repeat(np.arange(B), reps)
        n = np.tile(np.repeat(np.arange(N), H * Fo * K), B)
        h = np.tile(np.repeat(np.arange(H), Fo * K), B * N)
        cols: dict[str, Any] = {
            "issued_at": self.issued_at[b],
            "target_time": self.target_time[b * H + h],
            "node": pd.Categorical.from_codes(n, categories=self.nodes).astype(str)
            if len(set(self.nodes)) == len(self.nodes) else np.asarray(self.nodes)[n],
            "horizon": (h + 1).astype(np.int64),
        }
        if Fo > 1:
            cols["target"] = np.tile(np.repeat(np.asarray(self.targets), K), B * N * H)
        if K > 1:
            cols["class"] = np.tile(np.arange(K, dtype=np.int64), B * N * H * Fo)
        cols["value"] = v.reshape(-1).astype(np.float64)
        return pd.DataFrame(cols)


# ======================================================================== predictor
class Predictor:
    """A trained model with its preprocessing; build it with :func:`load`.

    Attributes:
        spec: the :class:`ServingSpec` (nodes, features, targets, freq, P, H, scaler, statistics).
        backend: callable ``(x, tod, dow) -> pred`` (torch, onnx or torchscript).
        model: the PyTorch module (None when loaded from an exported folder).
        nodes, features, targets, input_len, horizon, freq, out_classes, name, role, metrics.
    """

    def __init__(self, spec: ServingSpec, backend, model=None, run_dir: Path | None = None) -> None:
        self.spec = spec
        self.backend = backend
        self.model = model
        self.run_dir = run_dir
        self.prep = Preprocessor(spec)
        self.node_pos = {n: i for i, n in enumerate(spec.nodes)}

    # ------------------------------------------------------------- properties
    name = property(lambda self: self.spec.model)
    role = property(lambda self: self.spec.role)
    nodes = property(lambda self: list(self.spec.nodes))
    features = property(lambda self: list(self.spec.features))
    targets = property(lambda self: list(self.spec.targets))
    input_len = property(lambda self: self.spec.input_len)
    horizon = property(lambda self: self.spec.horizon)
    freq = property(lambda self: self.spec.freq)
    out_classes = property(lambda self: self.spec.out_classes)
    metrics = property(lambda self: self.spec.metrics)

    @property
    def num_nodes(self) -> int:
        return len(self.spec.nodes)

    def __repr__(self) -> str:
        s = self.spec
        return (f"Predictor({s.model!r}, role={s.role}, backend={self.backend.name}, nodes={len(s.nodes)}, "
                f"P={s.input_len}, H={s.horizon}, freq={s.freq})")

    def with_backend(self, backend: str, threads: int | None = None) -> "Predictor":
        """The same model on another backend: ``torch``, ``onnx`` (exported in memory) or ``torchscript``."""
        if backend == self.backend.name:
            return self
        if self.model is None:
            raise STKDError(f"this predictor was loaded from an exported {self.backend.name} model; "
                            f"load the run directory to switch to {backend}")
        if backend == "torch":
            return Predictor(self.spec, TorchBackend(self.model), self.model, self.run_dir)
        from stkd.export import onnx_bytes, torchscript_module

        if backend == "onnx":
            return Predictor(self.spec, OnnxBackend(onnx_bytes(self.model, self.spec), threads), self.model,
                             self.run_dir)
        if backend == "torchscript":
            return Predictor(self.spec, TorchScriptBackend(torchscript_module(self.model, self.spec)),
                             self.model, self.run_dir)
        raise STKDError(f"unknown backend {backend!r}; choose torch, onnx or torchscript")

    # ------------------------------------------------------------- the core
    def forward_filled(self, filled: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Model outputs from gap-filled windows in original units.

        Args:
            filled: ``[B, P, N, F]`` float32 without NaN. pos: ``[B, P]`` grid positions.
        Returns:
            ``[B, H, N, F_out]`` original units, or ``[B, H, N, F_out, K]`` probabilities.
        """
        s = self.spec
        x = np.ascontiguousarray(self.prep.scale(filled), dtype=np.float32)  # [B, P, N, F]
        tod, dow = self.prep.covariates(pos)  # [B, P]
        pred = np.asarray(self.backend(x, np.ascontiguousarray(tod, np.float32),
                                       np.ascontiguousarray(dow, np.int64)))  # [B, H, N, C]
        Fo, K = s.out_features, s.out_classes
        if pred.shape[1:] != (s.horizon, len(s.nodes), Fo * K):
            raise STKDError(f"model output has shape {list(pred.shape)}, expected "
                            f"[B, {s.horizon}, {len(s.nodes)}, {Fo * K}]")
        if K > 1:
            logits = pred.reshape(pred.shape[:3] + (Fo, K)).astype(np.float64)
            logits -= logits.max(axis=-1, keepdims=True)
            e = np.exp(logits)
            return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        return np.asarray(self.prep.scaler.inverse(pred, feature_slice=slice(0, Fo)), dtype=np.float32)

    def forecast_windows(self, values: np.ndarray, pos: np.ndarray, carry: np.ndarray | None = None) -> Forecast:
        """Forecasts of windows of raw readings.

        Args:
            values: ``[B, P, N, F]`` original units, NaN where missing (model node and feature order).
            pos: ``[B, P]`` consecutive grid positions of each window's steps.
            carry: ``[B, N, F]`` or ``[N, F]`` last readings before each window (NaN where unknown).
        """
        B = values.shape[0]
        filled = np.empty(values.shape, np.float32)
        for b in range(B):
            c = None if carry is None else (carry if carry.ndim == 2 else carry[b])
            filled[b] = self.prep.fill(values[b], pos[b], c)
        return self._forecast(self.forward_filled(filled, pos), pos[:, -1])

    def _forecast(self, out: np.ndarray, last_pos: np.ndarray) -> Forecast:
        H = self.spec.horizon
        last_pos = np.asarray(last_pos, np.int64)
        tgt = last_pos[:, None] + np.arange(1, H + 1)  # [B, H]
        return Forecast(values=out, issued_at=self.prep.times(last_pos),
                        target_time=self.prep.times(tgt), nodes=self.nodes, targets=self.spec.output_names,
                        classes=self.spec.out_classes, threshold=self.spec.event_threshold)

    # ------------------------------------------------------------- user input
    def predict(self, window, timestamps=None, *, nodes: Sequence[str] | None = None, end=None,
                as_frame: bool = True):
        """Forecast from a window of recent observations.

        Args:
            window: one of
                - numpy ``[P, N, F]`` (``[P, N]`` when F is 1) or ``[B, P, N, F]``, original units,
                  NaN for missing; give ``timestamps`` (``[P]``, or ``[B, P]`` for a batch) or ``end``
                  (the last input step's timestamp, one per window);
                - a pandas DataFrame in wide form (a DatetimeIndex, or a timestamp column, and one
                  column per node; one feature), or long form (columns timestamp, node and the
                  feature names, or ``value`` for a single feature). It needs at least P steps;
                  the forecast is issued at its last step, and earlier rows only feed the gap filling.
            nodes: node ids of the array's node axis (default: the model's nodes in order).
            as_frame: return the long DataFrame (``issued_at, target_time, node, horizon, value``);
                False returns a :class:`Forecast` of arrays.
        Raises:
            DataError: unknown or missing nodes, a wrong window length or feature count, timestamps
                off the data's grid or not consecutive, a window with no observation at all.
        """
        if isinstance(window, pd.DataFrame):
            if timestamps is not None or end is not None or nodes is not None:
                raise DataError("predict: a DataFrame carries its own timestamps and node ids; do not pass "
                                "timestamps, end or nodes with it")
            values, pos = self.frame_to_array(window)
            P = self.spec.input_len
            if len(pos) < P:
                raise DataError(f"predict: the model needs {P} consecutive steps of {self.spec.freq}; the frame "
                                f"covers {len(pos)} ({self.prep.times(pos[:1])[0] if len(pos) else '-'} .. "
                                f"{self.prep.times(pos[-1:])[0] if len(pos) else '-'})")
            self._check_observed(values[-P:][None])
            filled = self.prep.fill(values, pos)  # the whole history: forward fill like training
            out = self.forward_filled(filled[-P:][None], pos[-P:][None])
            fc = self._forecast(out, pos[-1:])
        else:
            values, pos = self._array_input(window, timestamps, nodes, end)
            self._check_observed(values)
            fc = self.forecast_windows(values, pos)
        return fc.to_frame() if as_frame else fc

    def predict_series(self, values: np.ndarray, index: pd.DatetimeIndex, *, every: int = 1, last: bool = False,
                       batch_size: int = 256, skipped: list | None = None) -> Iterator[Forecast]:
        """Forecasts at every step of a series where a whole window ends (batch prediction).

        The series is gap-filled once as a whole (so forward fill reaches across windows, as in
        training). ``every``: issue every K-th step counted back from the last; ``last``: only the last.
        Windows whose P steps hold no reading at all are skipped (their issue times go to ``skipped``).
        """
        P = self.spec.input_len
        values = np.asarray(values, np.float32)
        T = values.shape[0]
        if T < P:
            raise DataError(f"the input has {T} steps; the model needs at least {P} (its input window)")
        pos = self.prep.positions(index)
        if T > 1 and (np.diff(pos) != 1).any():
            raise DataError("the input's timestamps must be consecutive steps of the data's grid")
        if every < 1:
            raise DataError(f"--every must be >= 1, got {every}")
        filled = self.prep.fill(values, pos)
        ends = np.arange(T - 1, P - 2, -every)[::-1] if not last else np.array([T - 1])  # last input step
        observed = np.concatenate([[0], np.cumsum((~np.isnan(values)).reshape(T, -1).any(axis=1))])
        has = observed[ends + 1] - observed[ends + 1 - P] > 0
        if skipped is not None:
            skipped.extend(self.prep.times(pos[ends[~has]]))
        ends = ends[has]
        for i in range(0, len(ends), batch_size):
            e = ends[i:i + batch_size]
            t_in = e[:, None] + np.arange(-P + 1, 1)  # [b, P]
            out = self.forward_filled(filled[t_in], pos[t_in])
            yield self._forecast(out, pos[e])

    # ------------------------------------------------------------- parsing
    def _check_observed(self, values: np.ndarray) -> None:
        """Every window needs at least one reading: a window of nothing but gaps has nothing to forecast from."""
        seen = (~np.isnan(values)).reshape(values.shape[0], -1).any(axis=1)
        if not seen.all():
            b = int(np.flatnonzero(~seen)[0])
            which = f"window {b}" if values.shape[0] > 1 else "the window"
            raise DataError(f"predict: {which} holds no observation at all (every value is missing); at least "
                            "one reading in the last input steps is needed")

    def _node_order(self, given: Sequence[str], what: str) -> np.ndarray:
        """Positions in ``given`` of the model's nodes; errors for unknown, repeated or missing ids."""
        given = [str(n) for n in given]
        unknown = [n for n in given if n not in self.node_pos]
        if unknown:
            raise DataError(f"{what}: unknown node id(s) {_preview(unknown)}; the model knows {self.num_nodes} "
                            f"nodes, e.g. {_preview(self.spec.nodes, 5)}")
        dup = pd.Index(given)[pd.Index(given).duplicated()]
        if len(dup):
            raise DataError(f"{what}: node id {dup[0]!r} appears more than once")
        where = {n: i for i, n in enumerate(given)}
        missing = [n for n in self.spec.nodes if n not in where]
        if missing:
            raise DataError(f"{what}: {len(missing)} of the model's nodes are missing: {_preview(missing)}; give "
                            "every node (NaN / null for one without readings)")
        return np.array([where[n] for n in self.spec.nodes], dtype=np.int64)

    def _array_input(self, window, timestamps, nodes, end) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        P, N, F = s.input_len, len(s.nodes), len(s.features)
        try:
            a = np.array(window, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise DataError(f"predict: the window is not numeric ({e})") from None
        if a.ndim == 2 and F == 1:
            a = a[:, :, None]
        if a.ndim == 3:
            a = a[None]
        if a.ndim != 4:
            raise DataError(f"predict: expected a window [P, N, F] = [{P}, {N}, {F}] or a batch [B, P, N, F], "
                            f"got shape {list(np.shape(window))}")
        B = a.shape[0]
        if a.shape[1] != P:
            raise DataError(f"predict: the model needs P={P} input steps, the window has {a.shape[1]}")
        if a.shape[3] != F:
            raise DataError(f"predict: the model needs F={F} feature(s) per node ({', '.join(s.features)}), "
                            f"the window has {a.shape[3]}")
        if np.isinf(a).any():
            raise DataError("predict: the window holds infinite values; use NaN for missing readings")
        if nodes is not None:
            if len(nodes) != a.shape[2]:
                raise DataError(f"predict: {len(nodes)} node ids for a node axis of {a.shape[2]}")
            a = a[:, :, self._node_order(nodes, "predict"), :]
        elif a.shape[2] != N:
            raise DataError(f"predict: the model has N={N} nodes, the window has {a.shape[2]}; pass nodes=[...] "
                            "to name the columns of a different node axis")
        if (timestamps is None) == (end is None):
            raise DataError("predict: give the window's timestamps (one per input step) or end (the last one)")
        if end is not None:
            last = self.prep.grid_positions(end, "end")
            if len(last) != B:
                raise DataError(f"predict: {len(last)} end timestamp(s) for {B} window(s)")
            pos = last[:, None] + np.arange(-P + 1, 1)
        else:
            ts = np.asarray(timestamps, dtype=object)
            if ts.ndim == 1 and B == 1:
                ts = ts[None]
            if ts.shape != (B, P):
                raise DataError(f"predict: timestamps must be [P]={P} for one window or [B, P]=[{B}, {P}], got "
                                f"shape {list(ts.shape)}")
            pos = self.prep.grid_positions(ts.reshape(-1), "timestamps").reshape(B, P)
            if P > 1 and (np.diff(pos, axis=1) != 1).any():
                b = int(np.flatnonzero((np.diff(pos, axis=1) != 1).any(axis=1))[0])
                raise DataError(f"predict: timestamps must be consecutive {s.freq} steps in time order "
                                f"(window {b}: {list(map(str, self.prep.times(pos[b])))})")
        return a, pos

    def frame_to_array(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """A wide or long DataFrame -> ``values [T, N, F]`` on the grid (NaN where absent), ``pos [T]``."""
        s = self.spec
        df = frame
        cols = [str(c) for c in df.columns]
        tcol = next((c for c in df.columns if str(c).lower() in _TIME_NAMES), None)
        ncol = next((c for c in df.columns if str(c).lower() in _NODE_NAMES), None)
        if ncol is not None and tcol is not None:  # ------------------------ long form
            value_cols = [c for c in df.columns if c not in (tcol, ncol)]
            names = [str(c) for c in value_cols]
            if len(s.features) == 1 and names == ["value"]:
                value_cols, feats = value_cols, ["value"]
            else:
                missing = [f for f in s.features if f not in names]
                if missing:
                    raise DataError(f"predict: the long frame lacks column(s) {missing}; the model reads "
                                    f"{s.features} (or one 'value' column for a single feature)")
                value_cols = [value_cols[names.index(f)] for f in s.features]
                feats = s.features
            idx = self.prep.as_index(df[tcol].to_numpy(), f"column {tcol!r}")
            pos = self.prep.positions(idx, f"column {tcol!r}")
            node_ids = df[ncol].astype(str).to_numpy()
            unknown = sorted(set(node_ids) - set(self.node_pos))
            if unknown:
                raise DataError(f"predict: unknown node id(s) {_preview(unknown)} in column {ncol!r}; the model "
                                f"knows {self.num_nodes} nodes, e.g. {_preview(s.nodes, 5)}")
            absent = [n for n in s.nodes if n not in set(node_ids)]
            if absent:
                raise DataError(f"predict: {len(absent)} of the model's nodes have no row: {_preview(absent)}")
            key = pd.DataFrame({"p": pos, "n": node_ids})
            if key.duplicated().any():
                i = int(np.flatnonzero(key.duplicated().to_numpy())[0])
                raise DataError(f"predict: node {node_ids[i]!r} has two rows at {idx[i]}")
            vals = np.column_stack([_numeric(df[c], str(c)) for c in value_cols])  # [R, F]
            p0 = int(pos.min())
            T = int(pos.max()) - p0 + 1
            out = np.full((T, len(s.nodes), len(feats)), np.nan, np.float32)
            out[pos - p0, np.array([self.node_pos[n] for n in node_ids])] = vals
            return out, np.arange(p0, p0 + T, dtype=np.int64)
        # ------------------------------------------------------------------- wide form
        if isinstance(df.index, pd.DatetimeIndex):
            idx_raw, data_cols = df.index, list(df.columns)
        elif tcol is not None:
            idx_raw, data_cols = df[tcol].to_numpy(), [c for c in df.columns if c != tcol]
        else:
            raise DataError("predict: a wide frame needs a DatetimeIndex (or a timestamp column) and one column "
                            "per node; a long frame needs columns timestamp, node and the value column(s). "
                            f"Got columns {_preview(cols)}")
        if len(s.features) != 1:
            raise DataError(f"predict: the model reads {len(s.features)} features {s.features}; a wide frame holds "
                            "one value per node: use the long form (timestamp, node, one column per feature)")
        order = self._node_order([str(c) for c in data_cols], "predict")
        idx = self.prep.as_index(idx_raw, "the frame's index")
        pos = self.prep.positions(idx, "the frame's index")
        if len(pos) > 1 and (np.diff(pos) <= 0).any():
            k = int(np.flatnonzero(np.diff(pos) <= 0)[0]) + 1
            what = "repeats" if pos[k] == pos[k - 1] else "is before"
            raise DataError(f"predict: the frame's timestamps must increase; {idx[k]} {what} the row before")
        vals = np.column_stack([_numeric(df[data_cols[j]], str(data_cols[j])) for j in order])  # [R, N]
        p0 = int(pos[0])
        T = int(pos[-1]) - p0 + 1
        out = np.full((T, len(s.nodes), 1), np.nan, np.float32)
        out[pos - p0, :, 0] = vals
        return out, np.arange(p0, p0 + T, dtype=np.int64)


def _numeric(s: pd.Series, col: str) -> np.ndarray:
    try:
        v = pd.to_numeric(s, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as e:
        raise DataError(f"predict: column {col!r} holds non-numeric values ({e})") from None
    if np.isinf(v).any():
        raise DataError(f"predict: column {col!r} holds infinite values; use NaN for missing readings")
    return v.astype(np.float32)


def _preview(items: Sequence, k: int = 8) -> str:
    items = list(items)
    s = ", ".join(repr(str(x)) for x in items[:k])
    return f"[{s}{', ...' if len(items) > k else ''}]"


# ======================================================================== loading
def is_export_dir(path: Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file() and not (Path(path) / "config.yaml").is_file()


def list_models(run_dir: Path) -> dict[str, dict]:
    """``{name: model card}`` of every trained model in a run directory."""
    from stkd.checkpoint import read_model_card

    out = {}
    for mdir in sorted((Path(run_dir) / "models").glob("*")):
        if (mdir / "model.json").is_file() and (mdir / "model.safetensors").is_file():
            out[mdir.name] = read_model_card(mdir)
    return out


def choose_model(run_dir: Path, model: str | None = None) -> tuple[str, dict]:
    """The model to serve: ``model`` by name, else the distilled student (then plain student, teacher)."""
    cards = list_models(run_dir)
    if not cards:
        raise STKDError(f"{run_dir}: no trained model under models/ (is the run finished?)")
    if model is not None:
        if model not in cards:
            raise STKDError(f"{run_dir}: no model {model!r}; the run has {', '.join(cards)}")
        return model, cards[model]
    for role in ROLE_PREFERENCE:
        for name, card in cards.items():
            if card.get("role") == role:
                return name, card
    name = next(iter(cards))
    return name, cards[name]


def _read_metrics(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@dataclass
class _Stats:
    train_means: np.ndarray
    seasonal: np.ndarray | None
    adjacency: Any
    source: str


def _load_stats_cache(path: Path, fingerprint: str | None, need_adj: bool) -> _Stats | None:
    import scipy.sparse as sp

    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if fingerprint is not None and str(z["fingerprint"]) != fingerprint:
                return None
            has_adj = bool(z["has_adjacency"])
            if need_adj and not bool(z["adjacency_saved"]):
                return None
            adj = None
            if has_adj and need_adj:
                adj = sp.csr_matrix((z["adj_data"], z["adj_indices"], z["adj_indptr"]), shape=tuple(z["adj_shape"]))
            seasonal = z["seasonal"] if bool(z["has_seasonal"]) else None
            return _Stats(z["train_means"], seasonal, adj, "data")
    except (OSError, KeyError, ValueError) as e:
        log.warning("ignoring unreadable %s (%s)", path, e)
        return None


def _save_stats_cache(path: Path, fingerprint: str | None, st: _Stats) -> None:
    import io as _io

    import scipy.sparse as sp

    from stkd.io import atomic_write

    arrays = {"fingerprint": np.array(fingerprint or ""), "train_means": st.train_means,
              "has_seasonal": np.array(st.seasonal is not None), "has_adjacency": np.array(st.adjacency is not None),
              "adjacency_saved": np.array(True)}
    if st.seasonal is not None:
        arrays["seasonal"] = st.seasonal
    if st.adjacency is not None:
        a = sp.csr_matrix(st.adjacency, dtype=np.float32)
        arrays.update(adj_data=a.data, adj_indices=a.indices, adj_indptr=a.indptr, adj_shape=np.array(a.shape))
    buf = _io.BytesIO()
    np.savez(buf, **arrays)
    try:
        atomic_write(path, lambda fh: fh.write(buf.getvalue()))
    except OSError as e:  # a read-only run directory: recompute next time
        log.info("could not cache serving statistics at %s (%s)", path, e)


def serving_stats(run_dir: Path, cfg, info: dict, need_adjacency: bool) -> _Stats:
    """Train means, time-of-week profile (and the adjacency if asked) of a run, cached in the run dir.

    Computed from the run's data with training's own functions (``impute.train_means`` and
    ``impute.seasonal_means`` over the train part). Without the data, the train means fall back to the
    scaler's center (equal for a per-node z-score) and there is no seasonal profile.
    """
    from stkd.data.impute import seasonal_means, train_means
    from stkd.data.windows import steps_per_week

    fp = info.get("fingerprint")
    cache = Path(run_dir) / STATS_FILE
    st = _load_stats_cache(cache, fp, need_adjacency)
    if st is not None:
        return st
    try:
        from stkd.data.loaders import load_data
        from stkd.data.windows import data_fingerprint

        data = load_data(cfg.data)
    except (STKDError, OSError, ImportError) as e:
        if need_adjacency:
            raise STKDError(f"{run_dir}: this model needs the graph, which is rebuilt from the run's data, and "
                            f"the data cannot be loaded: {e}") from None
        warnings.warn(f"{run_dir}: the run's data cannot be loaded ({e}); gaps will be filled with the scaler's "
                      "center instead of the train means and without the seasonal profile", stacklevel=3)
        sc = Scaler.from_state(info["scaler"])
        N, F = len(info["nodes"]), len(info["features"])
        center = np.broadcast_to(sc.center, (N, F)).copy()
        if sc.kind == "minmax":
            center = center + 0.5 * np.broadcast_to(sc.scale, (N, F))
        return _Stats(center.astype(np.float32), None, None, "scaler")
    if fp is not None and data_fingerprint(data, cfg.data) != fp:
        warnings.warn(f"{run_dir}: the run's data has changed since training (fingerprint differs); the gap "
                      "filling statistics are computed from the data as it is now", stacklevel=3)
    train_end = int(info["splits"]["train"][1]) if "splits" in info else data.num_steps
    means = train_means(data.values, data.mask, train_end)  # [N, F]
    period = steps_per_week(data.index)
    seasonal = None
    if period is not None and cfg.data.impute in ("ffill", "seasonal"):
        seasonal = seasonal_means(data.values, data.mask, period, train_end, means)  # [period, N, F]
    st = _Stats(means, seasonal, data.adjacency, "data")
    _save_stats_cache(cache, fp, st)
    return st


def spec_from_run(run_dir: Path, name: str, card: dict, stats: _Stats, info: dict, cfg) -> ServingSpec:
    metrics = _read_metrics(run_dir)
    spec = card.get("spec", {})
    targets = list(info.get("targets") or [])
    return ServingSpec(
        model=name, registry_name=card["name"], role=card.get("role", "?"),
        task=metrics.get("task") or getattr(cfg, "task", "forecast") or "forecast",
        dataset=info.get("name", "data"), nodes=list(info["nodes"]), features=list(info["features"]),
        targets=targets, freq=info["freq"], data_start=info["start"],
        input_len=int(info.get("input_len", spec.get("input_len"))), horizon=int(info.get("horizon", spec.get("horizon"))),
        steps_per_day=int(spec.get("steps_per_day", 1)), out_classes=int(spec.get("out_classes", 1)),
        impute=cfg.data.impute, scaler=info["scaler"], train_means=stats.train_means,
        seasonal_means=stats.seasonal, metrics=(metrics.get("models") or {}).get(name, {}),
        dataset_metrics=metrics.get("dataset") or {}, stats_source=stats.source,
        out_features=int(spec.get("out_features", len(targets))),
        class_names=(info.get("events") or {}).get("class_names") if int(spec.get("out_classes", 1)) > 1 else None)


def load(run_dir: str | Path, model: str | None = None, *, backend: str = "torch",
         threads: int | None = None) -> Predictor:
    """A :class:`Predictor` for a model of a run directory (or an exported folder).

    Args:
        run_dir: a run directory written by ``stkd run`` / ``stkd distill``, or a folder written by
            ``stkd export`` (then the exported model is used and ``backend`` is ignored).
        model: a model name of the run (``stkd_kd``, ``gwnet``, ...); default: the distilled student.
        backend: ``torch`` (default), ``onnx`` (exported in memory and run with onnxruntime) or
            ``torchscript``.
        threads: intra-op threads of the onnx backend (default: onnxruntime's choice).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise STKDError(f"{run_dir}: no such directory (expected an stkd run directory)")
    if is_export_dir(run_dir):
        return load_export(run_dir, threads=threads)
    from stkd.checkpoint import load_model
    from stkd.runs import load_run

    cfg, info = load_run(run_dir)
    name, card = choose_model(run_dir, model)
    stats = serving_stats(run_dir, cfg, info, need_adjacency=needs_adjacency(card))
    torch_model, card = load_model(run_dir / "models" / name, adjacency=stats.adjacency)
    spec = spec_from_run(run_dir, name, card, stats, info, cfg)
    pred = Predictor(spec, TorchBackend(torch_model), torch_model, run_dir)
    return pred.with_backend(backend, threads) if backend != "torch" else pred


def load_export(export_dir: str | Path, threads: int | None = None) -> Predictor:
    """A :class:`Predictor` over an exported folder (``deploy.json`` + ``model.onnx`` or ``model.pt``)."""
    export_dir = Path(export_dir)
    d = json.loads((export_dir / SPEC_FILE).read_text())
    seasonal = None
    if (export_dir / "seasonal_means.npy").is_file():
        seasonal = np.load(export_dir / "seasonal_means.npy", allow_pickle=False)
    spec = ServingSpec.from_json(d, seasonal)
    if (export_dir / "model.onnx").is_file():
        backend = OnnxBackend(export_dir / "model.onnx", threads)
    elif (export_dir / "model.pt").is_file():
        backend = TorchScriptBackend(export_dir / "model.pt")
    else:
        raise STKDError(f"{export_dir}: neither model.onnx nor model.pt")
    return Predictor(spec, backend, None, export_dir)

