"""What turns raw readings into model inputs and back, besides the weights: :class:`ServingSpec`.

A spec comes from a run directory (:func:`spec_from_run`: ``data.json``, the model card, ``metrics.json``
and the train statistics of :func:`serving_stats`) or from an exported folder (``deploy.json``, see
:meth:`ServingSpec.to_json`).

The train statistics the gap filling needs (per node train means, the time-of-week profile) are
computed once from the run's data with the functions training used and kept in
``run_dir/deploy/stats.npz``; a teacher that needs the graph gets the adjacency the same way. When the
data cannot be read any more, the train means fall back to the scaler's center (identical for a
per-node z-score) without the seasonal profile, with a warning.

Shapes: N nodes, F input features.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from stkd.data.impute import METHODS, seasonal_means, train_means
from stkd.data.loaders import load_data
from stkd.data.scalers import Scaler
from stkd.data.views import lag_reach
from stkd.data.windows import data_fingerprint, steps_per_week
from stkd.errors import DataError, STKDError
from stkd.io import atomic_write

log = logging.getLogger(__name__)

STATS_FILE = "deploy/stats.npz"
SPEC_FILE = "deploy.json"  # in an exported folder
SEASONAL_FILE = "seasonal_means.npy"  # in an exported folder, when the run has a time-of-week profile
FORMAT_VERSION = 1


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
    # lagged input channels in steps (a model whose config reads inputs.lags: each input step also gets the
    # values that far back at the same clock times); empty for the plain window
    lags: list[int] = field(default_factory=list)

    @property
    def history_len(self) -> int:
        """Steps of readings a forecast needs: the input window, and as far back as the longest lag reaches
        (its value at the first input step's target time); ``input_len`` for a model without lags."""
        return self.input_len + lag_reach(self.lags, self.horizon)

    @property
    def in_channels(self) -> int:
        """Input channels of the model: every feature, once more per lag (``stkd.data.views``'s order)."""
        return len(self.features) * (1 + len(self.lags))

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
        self.lags = [int(g) for g in self.lags]
        if any(g < self.horizon for g in self.lags):
            raise DataError(f"serving spec: lags {self.lags} must each be at least the horizon ({self.horizon} steps)")
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
                "out_features": self.out_features, "class_names": self.class_names, "lags": self.lags}

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
                   out_features=d.get("out_features"), class_names=d.get("class_names"), lags=d.get("lags") or [])

    @property
    def output_names(self) -> list[str]:
        """Names of the output channels before the classes: the first ``out_features`` targets."""
        return list(self.targets[: self.out_features])


def _read_metrics(run_dir: Path) -> dict:
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


@dataclass
class TrainStats:
    """What gap filling (and a graph model) needs from the training data: per node train means ``[N, F]``,
    the time-of-week profile ``[period, N, F]`` (or None), the adjacency (or None), and where they came
    from (``data``, or ``scaler`` when the data could not be read)."""

    train_means: np.ndarray
    seasonal: np.ndarray | None
    adjacency: Any
    source: str


def _load_stats_cache(path: Path, fingerprint: str | None, need_adj: bool, shape: tuple[int, int]) -> TrainStats | None:
    """The cached train statistics, or None when there are none for this data (or they need the graph
    and it was not saved). The file is a cache: an unreadable or malformed one is rebuilt, with a warning."""
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
            means = z["train_means"]
            if means.shape != shape or (seasonal is not None and (seasonal.ndim != 3 or seasonal.shape[1:] != shape)):
                raise ValueError(f"train statistics of shape {means.shape}, expected {shape}")
            return TrainStats(means, seasonal, adj, "data")
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as e:
        warnings.warn(f"{path} is unreadable ({type(e).__name__}: {e}); it is a cache of the run's train "
                      "statistics: rebuilding it", stacklevel=4)
        return None


def _save_stats_cache(path: Path, fingerprint: str | None, st: TrainStats) -> None:
    arrays = {"fingerprint": np.array(fingerprint or ""), "train_means": st.train_means,
              "has_seasonal": np.array(st.seasonal is not None), "has_adjacency": np.array(st.adjacency is not None),
              "adjacency_saved": np.array(True)}
    if st.seasonal is not None:
        arrays["seasonal"] = st.seasonal
    if st.adjacency is not None:
        a = sp.csr_matrix(st.adjacency, dtype=np.float32)
        arrays.update(adj_data=a.data, adj_indices=a.indices, adj_indptr=a.indptr, adj_shape=np.array(a.shape))
    buf = io.BytesIO()
    np.savez(buf, **arrays)  # type: ignore[arg-type]
    try:
        atomic_write(path, lambda fh: fh.write(buf.getvalue()))
    except OSError as e:  # a read-only run directory: recompute next time
        log.info("could not cache serving statistics at %s (%s)", path, e)


def serving_stats(run_dir: Path, cfg, info: dict, need_adjacency: bool) -> TrainStats:
    """Train means, time-of-week profile (and the adjacency if asked) of a run, cached in the run dir.

    Computed from the run's data with training's own functions (``impute.train_means`` and
    ``impute.seasonal_means`` over the train part). Without the data, the train means fall back to the
    scaler's center (equal for a per-node z-score) and there is no seasonal profile.
    """
    fp = info.get("fingerprint")
    cache = Path(run_dir) / STATS_FILE
    st = _load_stats_cache(cache, fp, need_adjacency, (len(info["nodes"]), len(info["features"])))
    if st is not None:
        return st
    try:
        data = load_data(cfg.data)
    except (STKDError, OSError, ImportError) as e:
        if need_adjacency:
            raise STKDError(f"{run_dir}: this model needs the graph, which is rebuilt from the run's data, and "
                            f"the data cannot be loaded: {e}") from None
        warnings.warn(f"{run_dir}: the run's data cannot be loaded ({e}); gaps will be filled with the scaler's "
                      "center instead of the train means and without the seasonal profile", stacklevel=3)
        sc = Scaler.from_state(info["scaler"])
        N, F = len(info["nodes"]), len(info["features"])
        assert sc.center is not None and sc.scale is not None  # a fitted scaler from the run
        center = np.broadcast_to(sc.center, (N, F)).copy()
        if sc.kind == "minmax":
            center = center + 0.5 * np.broadcast_to(sc.scale, (N, F))
        return TrainStats(center.astype(np.float32), None, None, "scaler")
    if fp is not None and data_fingerprint(data, cfg.data) != fp:
        warnings.warn(f"{run_dir}: the run's data has changed since training (fingerprint differs); the gap "
                      "filling statistics are computed from the data as it is now", stacklevel=3)
    train_end = int(info["splits"]["train"][1]) if "splits" in info else data.num_steps
    means = train_means(data.values, data.mask, train_end)  # [N, F]
    period = steps_per_week(data.index)
    seasonal = None
    if period is not None and cfg.data.impute in ("ffill", "seasonal"):
        seasonal = seasonal_means(data.values, data.mask, period, train_end, means)  # [period, N, F]
    st = TrainStats(means, seasonal, data.adjacency, "data")
    _save_stats_cache(cache, fp, st)
    return st


def spec_from_run(run_dir: Path, name: str, card: dict, stats: TrainStats, info: dict, cfg) -> ServingSpec:
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
        class_names=(info.get("events") or {}).get("class_names") if int(spec.get("out_classes", 1)) > 1 else None,
        lags=list(((card.get("inputs") or {}).get("view") or {}).get("lags") or []))


