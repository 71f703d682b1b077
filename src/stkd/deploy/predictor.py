"""Forecast from raw recent observations with a trained model: ``stkd.load(run_dir).predict(window)``.

A :class:`Predictor` turns readings in ORIGINAL units (NaN where missing) and their timestamps into
forecasts in original units (or event probabilities for a classification run), with the timestamps
and node ids attached (a :class:`Forecast`). It does what training did, with the statistics saved
from training: gap filling, scaling and the calendar inputs by :class:`stkd.deploy.preprocess.Preprocessor`,
then the model (a backend of :mod:`stkd.deploy.backends`), then ``scaler.inverse`` on the target
channels (or a softmax over the classes). Build one with :func:`stkd.deploy.loading.load`.

Shapes: B windows, P input steps, H horizon steps, N nodes, F input features, F_out targets, K classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stkd.deploy.backends import OnnxBackend, TorchBackend, TorchScriptBackend
from stkd.deploy.convert import onnx_bytes, torchscript_module
from stkd.deploy.preprocess import Preprocessor
from stkd.deploy.spec import ServingSpec
from stkd.errors import DataError, STKDError
from stkd.names import BACKENDS, NODE_COLUMNS, TIME_COLUMNS


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


class Predictor:
    """A trained model with its preprocessing; build it with :func:`load`.

    Attributes:
        spec: the :class:`ServingSpec` (nodes, features, targets, freq, P, H, scaler, statistics).
        backend: callable ``(x, tod, dow) -> pred`` (torch, onnx or torchscript).
        model: the PyTorch module (None when loaded from an exported folder).
        nodes, features, targets, input_len, history_len (steps a forecast needs: input_len, or back to the
        longest lag of a model with lagged inputs), horizon, freq, out_classes, name, role, metrics.
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
    history_len = property(lambda self: self.spec.history_len)  # steps a forecast needs (P, or back to a lag)
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
                f"P={s.input_len}, H={s.horizon}" + (f", lags={s.lags}" if s.lags else "") + f", freq={s.freq})")

    def with_backend(self, backend: str, threads: int | None = None) -> "Predictor":
        """The same model on another backend: ``torch``, ``onnx`` (exported in memory) or ``torchscript``."""
        if backend == self.backend.name:
            return self
        if self.model is None:
            raise STKDError(f"this predictor was loaded from an exported {self.backend.name} model; "
                            f"load the run directory to switch to {backend}")
        if backend == "torch":
            return Predictor(self.spec, TorchBackend(self.model), self.model, self.run_dir)
        if backend == "onnx":
            return Predictor(self.spec, OnnxBackend(onnx_bytes(self.model, self.spec), threads), self.model,
                             self.run_dir)
        if backend == "torchscript":
            return Predictor(self.spec, TorchScriptBackend(torchscript_module(self.model, self.spec)),
                             self.model, self.run_dir)
        raise STKDError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")

    # ------------------------------------------------------------- the core
    def forward_filled(self, filled: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Model outputs from gap-filled windows in original units.

        Args:
            filled: ``[B, L, N, F]`` float32 without NaN, L = ``history_len`` (P for a model without lags).
            pos: ``[B, L]`` grid positions.
        Returns:
            ``[B, H, N, F_out]`` original units, or ``[B, H, N, F_out, K]`` probabilities.
        """
        s = self.spec
        P, L = s.input_len, filled.shape[1]
        scaled = self.prep.scale(filled)  # [B, L, N, F]
        # the window's P steps, then per lag g the values at each input step + H - g (stkd.data.views' channels)
        chans = [scaled[:, L - P:], *(scaled[:, L - P + s.horizon - g:L + s.horizon - g] for g in s.lags)]
        x = np.ascontiguousarray(np.concatenate(chans, axis=-1) if s.lags else chans[0], dtype=np.float32)
        tod, dow = self.prep.covariates(pos[:, L - P:])  # [B, P]
        pred = np.asarray(self.backend(x, np.ascontiguousarray(tod, np.float32),
                                       np.ascontiguousarray(dow, np.int64)))  # [B, H, N, C]
        Fo, K = s.out_features, s.out_classes
        assert Fo is not None  # set in DeploySpec.__post_init__
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
            values: ``[B, L, N, F]`` original units, NaN where missing (model node and feature order), L =
                ``history_len``.
            pos: ``[B, L]`` consecutive grid positions of each window's steps.
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
                  (the last input step's timestamp, one per window). A model with lagged inputs
                  (``inputs.lags``) needs ``history_len`` steps in place of P: back to its longest lag;
                - a pandas DataFrame in wide form (a DatetimeIndex, or a timestamp column, and one
                  column per node; one feature), or long form (columns timestamp, node and the
                  feature names, or ``value`` for a single feature). It needs at least P steps
                  (``history_len`` for a model with lagged inputs);
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
            P, L = self.spec.input_len, self.spec.history_len
            if len(pos) < L:
                raise DataError(f"predict: the model needs {self._steps_needed()} of {self.spec.freq}; the frame "
                                f"covers {len(pos)} ({self.prep.times(pos[:1])[0] if len(pos) else '-'} .. "
                                f"{self.prep.times(pos[-1:])[0] if len(pos) else '-'})")
            self._check_observed(values[-P:][None])
            filled = self.prep.fill(values, pos)  # the whole history: forward fill like training
            out = self.forward_filled(filled[-L:][None], pos[-L:][None])
            fc = self._forecast(out, pos[-1:])
        else:
            values, pos = self._array_input(window, timestamps, nodes, end)
            self._check_observed(values[:, -self.spec.input_len:])  # the input window, not the lags
            fc = self.forecast_windows(values, pos)
        return fc.to_frame() if as_frame else fc

    def predict_series(self, values: np.ndarray, index: pd.DatetimeIndex, *, every: int = 1, last: bool = False,
                       batch_size: int = 256, skipped: list | None = None) -> Iterator[Forecast]:
        """Forecasts at every step of a series where a whole window ends (batch prediction).

        The series is gap-filled once as a whole (so forward fill reaches across windows, as in
        training). ``every``: issue every K-th step counted back from the last; ``last``: only the last.
        Windows whose P steps hold no reading at all are skipped (their issue times go to ``skipped``).
        """
        P, L = self.spec.input_len, self.spec.history_len
        values = np.asarray(values, np.float32)
        T = values.shape[0]
        if T < L:
            raise DataError(f"the input has {T} steps; the model needs at least {self._steps_needed()}")
        pos = self.prep.positions(index)
        if T > 1 and (np.diff(pos) != 1).any():
            raise DataError("the input's timestamps must be consecutive steps of the data's grid")
        if every < 1:
            raise DataError(f"--every must be >= 1, got {every}")
        filled = self.prep.fill(values, pos)
        ends = np.arange(T - 1, L - 2, -every)[::-1] if not last else np.array([T - 1])  # last input step
        observed = np.concatenate([[0], np.cumsum((~np.isnan(values)).reshape(T, -1).any(axis=1))])
        has = observed[ends + 1] - observed[ends + 1 - P] > 0
        if skipped is not None:
            skipped.extend(self.prep.times(pos[ends[~has]]))
        ends = ends[has]
        for i in range(0, len(ends), batch_size):
            e = ends[i:i + batch_size]
            t_in = e[:, None] + np.arange(-L + 1, 1)  # [b, L]
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

    def _steps_needed(self) -> str:
        """``12 consecutive steps``, or for a model with lags ``180 consecutive steps (its 12 input steps and
        back to its lag of 168)``: what an error says the model needs."""
        s = self.spec
        if not s.lags:
            return f"{s.input_len} consecutive steps"
        return (f"{s.history_len} consecutive steps (its {s.input_len} input steps and back to its lag of "
                f"{max(s.lags)} steps)")

    def _array_input(self, window, timestamps, nodes, end) -> tuple[np.ndarray, np.ndarray]:
        s = self.spec
        P, N, F = s.history_len, len(s.nodes), len(s.features)  # P: the steps given (the window, or back to a lag)
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
            raise DataError(f"predict: the model needs {self._steps_needed()}, the window has {a.shape[1]}")
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
        tcol = next((c for c in df.columns if str(c).lower() in TIME_COLUMNS), None)
        ncol = next((c for c in df.columns if str(c).lower() in NODE_COLUMNS), None)
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
