"""The service's state and endpoint bodies: :class:`Service` (predictor, rolling window, its store, a lock).

The FastAPI routes and the ASGI hot paths (:mod:`stkd.deploy.asgi`) call the same methods, so both
answer identically.

Shapes: P input steps, H horizon steps, N nodes, F input features, F_out targets, K classes.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import HTTPException

from stkd.deploy.schemas import ObservationsIn, PredictIn, parse_body
from stkd.deploy.state import RollingWindow, WindowStore
from stkd.errors import STKDError

log = logging.getLogger(__name__)


class Service:
    """The predictor, the rolling window, where it is saved, and the lock around them (one per app)."""

    def __init__(self, predictor, state_path: Path | None, legacy_state: Path | None = None) -> None:
        self.p = predictor
        s = predictor.spec
        self.P, self.N, self.F = s.input_len, len(s.nodes), len(s.features)
        self.lock = threading.Lock()
        self.window = RollingWindow(self.P, self.N, self.F)
        self._cache: tuple[int, Any] | None = None
        self.store = None if state_path is None else WindowStore(
            state_path, s.model, self.P, self.N, self.F, s.nodes, legacy=legacy_state)
        if self.store is not None:
            try:
                saved = self.store.load()
            except (OSError, sqlite3.Error) as e:
                log.warning("cannot use %s to keep the rolling window (%s); persistence is off", state_path, e)
                self.store = None
            else:
                if saved is not None:
                    self.window = saved
                    log.info("resumed the rolling window from %s", state_path)

    def save(self) -> None:
        if self.store is None:
            return
        try:
            self.store.save(self.window)
        except (OSError, sqlite3.Error) as e:
            log.warning("cannot save the rolling window to %s (%s); persistence is off", self.store.path, e)
            self.store = None

    # ------------------------------------------------------------- endpoints
    # Endpoint bodies live here so that the FastAPI routes and HotPaths run the same code. They are
    # called inline on the event loop: one request at a time per worker, no thread hop per request.
    # Bodies are parsed and validated in one step by pydantic-core (``model_validate_json``).
    def observe(self, raw: bytes) -> dict:
        """``POST /observations``: add one timestamp's readings to the rolling window."""
        s = self.p.spec
        body = parse_body(raw, ObservationsIn)
        pos = self.parse_time(body.timestamp, "timestamp")
        names = list(body.readings)
        idx = self.node_index(names, "readings")
        vals = self.readings_array(body.readings, names)  # [k, F]
        if np.isinf(vals).any():
            raise HTTPException(422, "readings: a value is beyond the float32 range (|x| > 3.4e38)")
        with self.lock:
            w = self.window
            when = self.p.prep.times([pos])[0].isoformat()
            w.check(pos, idx, when, s.nodes)
            w.advance(pos)
            w.put(idx, vals)
            self.save()
            return {"accepted": len(names), "timestamp": when, "window_steps": min(w.steps, s.input_len),
                    "ready": w.ready}

    def latest_forecast(self, nodes: list[str] | None) -> dict:
        """``GET /forecast``: the forecast from the rolling window (cached until the window changes)."""
        s = self.p.spec
        with self.lock:
            w = self.window
            if not w.ready:
                have = 0 if w.latest is None else min(w.steps, s.input_len)
                raise HTTPException(409, f"no full window yet: {have} of {s.input_len} steps seen; POST "
                                         "/observations for the missing steps first")
            if self._cache is not None and self._cache[0] == (w.version, w.latest):
                fc = self._cache[1]
            else:
                if np.isnan(w.values).all():
                    raise HTTPException(409, f"the last {s.input_len} steps hold no reading at all; nothing to "
                                             "forecast from")
                fc = self.p.forecast_windows(w.values[None], w.positions()[None], w.carry)
                self._cache = ((w.version, w.latest), fc)
        return self.forecast_json(fc, nodes)

    def predict(self, raw: bytes) -> dict:
        """``POST /predict``: a stateless forecast from the window in the body."""
        s = self.p.spec
        body = parse_body(raw, PredictIn)
        P = s.input_len
        if (body.timestamps is None) == (body.end is None):
            raise HTTPException(422, "give either timestamps (one per input step) or end (the last input step)")
        if body.timestamps is not None and len(body.timestamps) != P:
            raise HTTPException(422, f"timestamps: {len(body.timestamps)} given; the model needs {P} (its input "
                                     "window)")
        names = list(body.values)
        self.node_index(names, "values")
        missing = [n for n in s.nodes if n not in body.values]
        if missing:
            raise HTTPException(422, f"values: {len(missing)} node(s) missing, e.g. {missing[:5]}; send every node "
                                     "(null for steps without a reading)")
        for n in names:
            if len(body.values[n]) != P:
                raise HTTPException(422, f"values[{n!r}]: {len(body.values[n])} steps; the model needs {P}")
        window = self.window_array([body.values[n] for n in s.nodes], s.nodes)  # [P, N, F]
        if body.nodes is not None:
            self.node_index(body.nodes, "nodes")
        try:
            fc = self.p.predict(window, body.timestamps, end=body.end, as_frame=False)
        except STKDError as e:
            raise HTTPException(422, str(e)) from None
        return self.forecast_json(fc, body.nodes)

    def parse_time(self, text: str, what: str) -> int:
        try:
            return int(self.p.prep.grid_positions([text], what)[0])
        except STKDError as e:
            raise HTTPException(422, str(e)) from None

    def node_index(self, names, what: str, status: int = 422) -> np.ndarray:
        unknown = [n for n in names if n not in self.p.node_pos]
        if unknown:
            raise HTTPException(status, f"{what}: unknown node id(s) {unknown[:5]}; GET /metadata lists the "
                                        f"{self.N} nodes")
        return np.array([self.p.node_pos[n] for n in names], dtype=np.int64)

    def reading(self, v, what: str) -> list[float]:
        """One reading as F floats (NaN for null); 422 for a wrong shape."""
        F = self.F
        if isinstance(v, list):
            if len(v) != F:
                raise HTTPException(422, f"{what}: {len(v)} values; the model reads {F} feature(s) per node "
                                         f"({', '.join(self.p.spec.features)})")
            return [math.nan if x is None else float(x) for x in v]
        if F != 1:
            raise HTTPException(422, f"{what}: a single number, but the model reads {F} features per node "
                                     f"({', '.join(self.p.spec.features)}): send a list of {F}")
        return [math.nan if v is None else float(v)]

    def readings_array(self, readings: dict, names: list[str]) -> np.ndarray:
        """``{node: reading}`` -> ``[k, F]`` float32 with NaN for null (one numpy conversion when well formed)."""
        try:
            with np.errstate(over="ignore"):  # beyond float32 becomes inf: the caller refuses it
                a = np.array([readings[n] for n in names], dtype=np.float32)
            if a.ndim == 1 and self.F == 1:
                a = a[:, None]
            if a.shape == (len(names), self.F):
                return a
        except (ValueError, TypeError):
            pass
        return np.array([self.reading(readings[n], f"readings[{n!r}]") for n in names], np.float32)

    def window_array(self, seqs: list[list], names: list[str]) -> np.ndarray:
        """Per-node reading sequences (numbers, null, or lists of F) -> ``[P, N, F]`` float32 with NaN.

        One numpy conversion (None becomes NaN); a ragged or mis-shaped input falls back to the
        per-reading checks, which say which node is wrong.
        """
        P, N, F = self.P, len(seqs), self.F
        try:
            with np.errstate(over="ignore"):  # beyond float32 becomes inf: predict() refuses it
                a = np.array(seqs, dtype=np.float32)  # [N, P] or [N, P, F]
            if a.ndim == 2 and F == 1:
                a = a[:, :, None]
            if a.shape != (N, P, F):
                raise ValueError
        except (ValueError, TypeError):
            a = np.array([[self.reading(v, f"values[{n!r}]") for v in seq] for n, seq in zip(names, seqs)],
                         dtype=np.float32)
        return np.ascontiguousarray(a.transpose(1, 0, 2))

    def forecast_json(self, fc, nodes: list[str] | None) -> dict:
        s = self.p.spec
        vals = fc.values[0]  # [H, N, Fo] or [H, N, Fo, K]
        Fo = s.out_features
        if nodes is None:
            names, v = s.nodes, vals
        else:
            idx = self.node_index(nodes, "node", 404)
            names, v = [s.nodes[int(i)] for i in idx], vals[:, idx]
        if Fo == 1:
            v = v[:, :, 0]  # [H, N(, K)]
        v = np.moveaxis(v, 1, 0)  # [N, H, ...]
        rows = _round_significant(v).tolist()
        out = {"model": s.model, "issued_at": _iso(fc.issued_at[:1])[0], "freq": s.freq, "horizon": s.horizon,
               "target_times": _iso(fc.target_time), "targets": s.output_names,
               "classes": s.out_classes, "values": dict(zip(names, rows))}
        if fc.threshold is not None:
            alarms = fc.alarms()[0] if nodes is None else fc.alarms()[0][:, idx]  # [H, N]
            out["threshold"] = fc.threshold
            out["alarms"] = dict(zip(names, alarms.T.tolist()))
        return out


def _iso(index) -> list[str]:
    """ISO 8601 strings (``2012-03-08T00:05:00``, with the UTC offset for aware times)."""
    if index.tz is None and not (index.asi8 % 1_000_000_000).any():
        return np.datetime_as_string(index.values, unit="s").tolist()  # 10x faster than isoformat per item
    return [t.isoformat() for t in index]


def _round_significant(v: np.ndarray, digits: int = 7) -> np.ndarray:
    """float64 rounded to about ``digits`` significant digits of the largest value (float32's precision):
    short JSON numbers, nothing lost that float32 held."""
    v = np.asarray(v, dtype=np.float64)
    top = float(np.abs(v).max()) if v.size else 0.0
    if not np.isfinite(top) or top == 0.0:
        return v
    return v.round(max(0, digits - 1 - int(np.floor(np.log10(top)))))
