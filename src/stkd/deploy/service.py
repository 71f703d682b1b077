"""The service's state and endpoint bodies: :class:`Service` (predictor, rolling window, its store, a lock).

The FastAPI routes and the ASGI hot paths (:mod:`stkd.deploy.asgi`) call the same methods, so both
answer identically.

Shapes: P input steps, H horizon steps, N nodes, F input features, F_out targets, K classes.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

import numpy as np
import pandas as pd
from fastapi import HTTPException

from stkd.deploy.schemas import ObservationsIn, PredictIn, parse_body
from stkd.deploy.state import RollingWindow, StateError, WindowConflict, WindowStore
from stkd.errors import STKDError

log = logging.getLogger(__name__)


class Service:
    """The predictor, the rolling window, the store that keeps it, and the lock around them (one per app).

    Args:
        predictor: the model to serve.
        store: where the window is kept (:class:`WindowStore`; its saved window is resumed), or None.
        max_clock_skew: how far ahead of this server's clock a posted timestamp may be (None: no
            bound). Naive timestamps are compared with the server's local time, aware ones with UTC.
    """

    def __init__(self, predictor, store: WindowStore | None, max_clock_skew: pd.Timedelta | None = None) -> None:
        self.p = predictor
        s = predictor.spec
        # P: the steps of readings a forecast needs (the input window, or back to the longest lag)
        self.P, self.N, self.F = s.history_len, len(s.nodes), len(s.features)
        self.lock = threading.Lock()
        self.max_clock_skew = max_clock_skew
        self.window = RollingWindow(self.P, self.N, self.F)
        self._cache: tuple[tuple, Any] | None = None
        self.fault: str | None = None  # why the last save failed (GET /health reports it); None when fine
        self.store = store
        if store is not None:
            saved = store.load()  # StateError: refuse to start rather than lose or overwrite a window
            if saved is not None:
                self.window = saved
                log.info("resumed the rolling window from %s", store.path)

    def close(self) -> None:
        """Release the state file (and its lock)."""
        if self.store is not None:
            self.store.close()

    def _commit(self, w: RollingWindow) -> None:
        """Make ``w`` the window once it is stored: a reading is acknowledged only when it is saved.
        A failed save leaves the window as it was and answers 503; /health reports it until a save works."""
        if self.store is not None:
            try:
                self.store.save(w)
            except StateError as e:
                self.fault = f"saving the rolling window failed: {e.cause}"  # no server paths to clients
                log.error("%s; the change was refused (503)", e)
                raise HTTPException(503, f"not stored ({e.cause}); nothing was accepted: retry later") from None
            if self.fault is not None:
                log.info("saving to %s works again", self.store.path)
            self.fault = None
        self.window = w

    # ------------------------------------------------------------- request size
    # Work per request is bounded before anything is parsed: a body can be no larger than the largest
    # valid request for this model (N nodes x P steps x F features, generously spaced), and it can hold
    # no more strings than a valid one (node ids, timestamps, keys). Both are C-speed scans of the raw
    # bytes; a body of 600,000 node names (3.6 MB, under the global limit) took 3.5 s to parse and
    # stalled /health for 3 s before this (issue 17).
    VALUE_BYTES = 64  # room per number in a body: the longest float repr (24 chars) plus spacing
    SLACK_BYTES = 4096  # keys, timestamps, braces and indentation beyond the per-value room

    def body_limits(self, max_body_bytes: int) -> dict[str, tuple[int, str]]:
        """``{path: (bytes, why)}``: the largest body a valid request to each write endpoint needs."""
        s = self.p.spec
        P, N, F = self.P, self.N, self.F
        ids = sum(len(json.dumps(n)) + 8 for n in s.nodes)
        obs = self.SLACK_BYTES + ids + N * F * self.VALUE_BYTES
        pred = self.SLACK_BYTES + 2 * ids + N * P * F * self.VALUE_BYTES + P * 96
        def why(need: int, what: str) -> str:
            if need > max_body_bytes:  # a valid request may need more than the global limit: say which to raise
                return (f" (a request for this model's {what} can need up to {need:,} bytes: raise --max-body-mb "
                        "to send it whole)")
            return f" (a request for this model's {what} needs far less)"

        return {"/observations": (min(max_body_bytes, obs), why(obs, f"{N} nodes")),
                "/predict": (min(max_body_bytes, pred), why(pred, f"{N} nodes x {P} steps"))}

    def max_strings(self, path: str) -> int:
        """The most JSON strings a valid body of ``path`` holds: keys, node ids, timestamps."""
        return 2 * self.N + self.P + 16 if path == "/predict" else self.N + 8

    def precheck(self, raw: bytes, path: str) -> None:
        """422 for a body with more strings than any valid request of ``path`` (counted by quotes)."""
        strings = (raw.count(b'"') - raw.count(b'\\"')) // 2
        if strings > self.max_strings(path):
            raise HTTPException(422, f"the body holds {strings} strings; a {path} request for this model holds "
                                     f"at most {self.max_strings(path)} (node ids: {self.N} nodes, {self.P} "
                                     "timestamps, keys)")

    def times(self, pos) -> list[str]:
        return [t.isoformat() for t in self.p.prep.times(np.asarray(pos, np.int64))]

    # ------------------------------------------------------------- endpoints
    # Endpoint bodies live here so that the FastAPI routes and HotPaths run the same code. They are
    # called inline on the event loop: one request at a time per worker, no thread hop per request.
    # Bodies are parsed and validated in one step by pydantic-core (``model_validate_json``).
    def observe(self, raw: bytes) -> dict:
        """``POST /observations``: add one timestamp's readings to the rolling window."""
        s = self.p.spec
        self.precheck(raw, "/observations")
        body = parse_body(raw, ObservationsIn)
        pos = self.parse_time(body.timestamp, "timestamp")
        self.check_clock(pos, "timestamp")
        names = list(body.readings)
        idx = self.node_index(names, "readings")
        vals = self.readings_array(body.readings, names)  # [k, F]
        if np.isinf(vals).any():
            raise HTTPException(422, "readings: a value is beyond the float32 range (|x| > 3.4e38)")
        with self.lock:
            w = self.window.copy()
            try:
                w.check(pos, idx, s.nodes, self.times)
            except WindowConflict as e:
                raise HTTPException(409, str(e)) from None
            w.put(pos, idx, vals)
            self._commit(w)
            return {"accepted": len(names), "timestamp": self.times([pos])[0],
                    "window_steps": min(w.steps, self.P), "ready": w.ready}

    def check_clock(self, pos: int, what: str) -> None:
        """422 for a step before the model's data or beyond the allowed skew ahead of this server's clock:
        one such reading would move the window past every real one (and the state file keeps it)."""
        if pos < 0:
            raise HTTPException(422, f"{what}: {self.times([pos])[0]} is before the model's data, which starts at "
                                     f"{self.p.spec.data_start}")
        if self.max_clock_skew is None:
            return
        start = self.p.prep.start
        now = pd.Timestamp.now(tz=start.tz) if start.tz is not None else pd.Timestamp.now()
        t = self.p.prep.times([pos])[0]
        if t > now + self.max_clock_skew:
            raise HTTPException(422, f"{what}: {t.isoformat()} is {t - now.floor('s')} ahead of this server's clock "
                                     f"({now.floor('s').isoformat()}; --max-clock-skew {self.max_clock_skew}); a "
                                     "device's clock is wrong, or the server's time zone is not the data's "
                                     "(naive timestamps are compared with the server's local time)")

    def reset(self) -> dict:
        """``POST /admin/reset``: an empty window (the state file is backed up first)."""
        with self.lock:
            backup = self._backup("reset")
            dropped = int(self.window.seen.sum())
            fresh = RollingWindow(self.P, self.N, self.F)
            fresh.version = self.window.version + 1  # the forecast cache key stays unique
            self._commit(fresh)
            log.warning("the rolling window was reset (%d readings dropped; backup %s)", dropped, backup)
            return {**self.window_state(), "dropped": dropped, "backup": None if backup is None else backup.name}

    def rollback(self, to: str) -> dict:
        """``POST /admin/rollback?to=T``: drop every reading after step T (the state file is backed up first)."""
        pos = self.parse_time(to, "to")
        with self.lock:
            w = self.window.copy()
            try:
                dropped = w.rollback(pos, self.times)
            except WindowConflict as e:
                raise HTTPException(409, str(e)) from None
            backup = self._backup("rollback")
            self._commit(w)
            log.warning("the rolling window was rolled back to %s (%d readings dropped; backup %s)",
                        self.times([pos])[0], dropped, backup)
            return {**self.window_state(), "dropped": dropped, "backup": None if backup is None else backup.name}

    def _backup(self, label: str):
        """A copy of the state file before an operator's change (None without a store); 503 if it fails."""
        if self.store is None:
            return None
        try:
            return self.store.backup(label)
        except StateError as e:
            log.error("%s", e)
            raise HTTPException(503, f"the state file could not be backed up ({e.cause}); nothing was "
                                     "changed: retry later") from None

    def window_state(self) -> dict:
        w = self.window
        return {"latest": None if w.latest is None else self.times([w.latest])[0],
                "window_steps": min(w.steps, self.P), "ready": w.ready}

    def latest_forecast(self, nodes: list[str] | None) -> dict:
        """``GET /forecast``: the forecast from the rolling window (cached until the window changes)."""
        s = self.p.spec
        with self.lock:
            w = self.window
            if not w.ready:
                have = min(w.steps, self.P)
                raise HTTPException(409, f"no full window yet: {have} of {self.P} steps seen; POST "
                                         "/observations for the missing steps first")
            if self._cache is not None and self._cache[0] == (w.version, w.latest):
                fc = self._cache[1]
            else:
                values, pos, carry = w.model_input()  # [P, N, F], [P], [N, F]
                if np.isnan(values[-s.input_len:]).all():
                    raise HTTPException(409, f"the last {s.input_len} steps hold no reading at all; nothing to "
                                             "forecast from")
                fc = self.p.forecast_windows(values[None], pos[None], carry)
                self._cache = ((w.version, w.latest), fc)
        return self.forecast_json(fc, nodes)

    def predict(self, raw: bytes) -> dict:
        """``POST /predict``: a stateless forecast from the window in the body."""
        s = self.p.spec
        self.precheck(raw, "/predict")
        body = parse_body(raw, PredictIn)
        P = self.P
        if (body.timestamps is None) == (body.end is None):
            raise HTTPException(422, "give either timestamps (one per input step) or end (the last input step)")
        if body.timestamps is not None and len(body.timestamps) != P:
            raise HTTPException(422, f"timestamps: {len(body.timestamps)} given; the model needs {P} (its input "
                                     "window" + (", and back to its longest lag)" if s.lags else ")"))
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
        rows = float32_decimals(v).tolist()
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


def float32_decimals(v: np.ndarray) -> np.ndarray:
    """Each value as the float64 of a short decimal that reads back as the same float32: 7, 8 or 9
    significant digits, the fewest that round-trip (9 always do), chosen per value.

    Why: answers are float32; their float64 repr is 17 digits long (17.748809814453125), and rounding
    every value to 7 digits of the response's LARGEST value (what the service did) stripped decimals
    from small values next to a large one (17.74881 -> 17.75, issue 17). Per value and exact, at
    ~0.05 ms per 1,000 values (numpy's per-element shortest repr, ``astype(str)``, costs ~0.8 ms).
    """
    v32 = np.asarray(v, np.float32)
    v64 = v32.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        finite = np.isfinite(v64) & (v64 != 0)
        mag = np.floor(np.log10(np.abs(np.where(finite, v64, 1.0))))  # the leading digit's power of ten
        out = v64
        for digits in (9, 8, 7):  # fewer digits win where they still read back as the same float32
            k = digits - 1 - mag  # decimals to keep (negative: round to tens, hundreds, ...)
            p = 10.0 ** np.abs(k)  # an exact power of ten for |k| <= 22: the division is correctly rounded
            r = np.where(k >= 0, np.round(v64 * p) / p, np.round(v64 / p) * p)
            out = np.where(finite & (r.astype(np.float32) == v32), r, out)
    return out
