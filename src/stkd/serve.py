"""A real-time forecasting service over a trained model: ``stkd serve RUN_DIR``.

``create_app(run_dir, backend, token)`` returns the FastAPI app (``stkd serve`` runs it with uvicorn on
127.0.0.1 unless told otherwise):

- ``POST /observations``: the readings of one timestamp (all or some nodes). The service keeps the
  last P steps per node; a jump in time advances the window with missing steps; out-of-order and
  repeated (timestamp, node) readings are rejected with 409. Gaps are filled at forecast time by the
  training code path (forward fill that continues from readings before the window, then the train
  statistics), so a forecast here equals the one training's data pipeline would make.
- ``GET /forecast[?node=..]``: the forecast from the current window, with ``issued_at``; 409 until P
  steps have been seen.
- ``POST /predict``: a stateless forecast from a whole window in the request.
- ``GET /health``, ``GET /metadata`` (model, data set, nodes, P, H, freq, metrics of the run).

Every payload is validated (pydantic models plus the predictor's checks); bad input gets a 4xx with
a message, never a 500. Bodies over ``max_body_bytes`` get 413 (the Content-Length header and the
bytes actually read are both checked). With a token, POST endpoints need ``Authorization: Bearer T``
or ``X-API-Token: T``. The rolling window is saved after each post (``run_dir/deploy/state-<model>.sqlite``,
see ``stkd.serve_state``) so a restarted service continues where it stopped. ``HotPaths`` answers the
three load-carrying endpoints in front of FastAPI's routing, with the same code.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import sqlite3
import threading
from pathlib import Path
from typing import Annotated, Any, Optional, Union
from urllib.parse import parse_qsl

import numpy as np
import pydantic_core
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stkd.errors import STKDError
from stkd.serve_state import RollingWindow, WindowStore

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 2**20

# a reading: a finite number, or null for "missing" (NaN and Infinity are not JSON and are refused)
Reading = Optional[Annotated[float, Field(allow_inf_nan=False, strict=True)]]
ReadingOrVector = Union[Reading, Annotated[list[Reading], Field(max_length=1024)]]


# ========================================================================== payloads
class ObservationsIn(BaseModel):
    """Readings of one timestamp. ``readings`` maps node id -> value (a list of F values for a model
    with several input features); null marks a reading as missing."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"timestamp": "2012-03-08 00:00", "readings": {"773869": 64.2, "767541": None}}]})
    timestamp: str = Field(max_length=64, description="on the data's grid, e.g. 2012-03-08 00:05")
    readings: dict[str, ReadingOrVector] = Field(min_length=1, description="node id -> reading")


class PredictIn(BaseModel):
    """A whole input window: ``values`` maps every node id -> its P readings (oldest first; null = missing;
    lists of F values per step for a model with several input features). Give ``timestamps`` (P of them)
    or ``end`` (the last input step)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"end": "2012-03-08 00:55", "values": {"773869": [64.1, 63.9, None, 62.0]}}]})
    timestamps: list[Annotated[str, Field(max_length=64)]] | None = Field(default=None, max_length=100_000)
    end: str | None = Field(default=None, max_length=64)
    values: dict[str, list[ReadingOrVector]] = Field(min_length=1)
    nodes: list[str] | None = Field(default=None, description="return only these nodes' forecasts")


class ObservationsOut(BaseModel):
    accepted: int
    timestamp: str
    window_steps: int = Field(description="steps seen so far, up to P")
    ready: bool = Field(description="whether a full window exists (GET /forecast works)")


class ForecastOut(BaseModel):
    """``values[node][h]`` is the forecast for ``target_times[h]`` (original units); a list over
    ``targets`` per step for several targets, and class probabilities for an event model."""

    model: str
    issued_at: str
    freq: str
    horizon: int
    target_times: list[str]
    targets: list[str]
    classes: int
    values: dict[str, list[Any]]
    threshold: float | None = Field(default=None, description="2-class event models: the decision threshold "
                                                              "chosen on validation data")
    alarms: dict[str, list[bool]] | None = Field(default=None, description="2-class event models: "
                                                 "P(event) >= threshold, per node and horizon step")


class HealthOut(BaseModel):
    status: str
    model: str
    backend: str
    ready: bool


class ErrorOut(BaseModel):
    detail: str


_ERRORS = {code: {"model": ErrorOut} for code in (401, 404, 409, 413, 422)}


# ========================================================================== middleware
async def _read_body(scope, receive, max_bytes: int) -> bytes | tuple[int, str] | None:
    """The whole request body, or ``(status, detail)`` when it is over ``max_bytes`` (by Content-Length,
    and by counting what arrives: a chunked or lying client cannot slip past), or None on disconnect."""
    for k, v in scope.get("headers", []):
        if k == b"content-length":
            try:
                n = int(v)
            except ValueError:
                return 400, "Content-Length is not a number"
            if n > max_bytes:
                return 413, f"request body of {n} bytes is over the limit of {max_bytes} bytes"
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return None
        body = msg.get("body", b"")
        size += len(body)
        if size > max_bytes:
            return 413, f"request body is over the limit of {max_bytes} bytes"
        chunks.append(body)
        if not msg.get("more_body", False):
            return b"".join(chunks)


class BodyLimit:
    """Reject bodies over ``max_bytes`` with 413 (see ``_read_body``). Pure ASGI, so the body is read once
    and replayed."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        data = await _read_body(scope, receive, self.max_bytes)
        if data is None:
            return None
        if isinstance(data, tuple):
            return await _send_error(send, *data)
        done = False

        async def replay():
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _send_json(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send, status: int, detail: str) -> None:
    await _send_json(send, status, json.dumps({"detail": detail}).encode(), [(b"connection", b"close")])


class HotPaths:
    """Pure-ASGI handling of the three endpoints that carry the load: ``POST /predict``,
    ``POST /observations`` and ``GET /forecast``; every other request goes on to the FastAPI app.

    Why: at batch 1 the student's own work per request (parse, fill, model, JSON) is about 1.5 ms on
    this machine, and FastAPI's request object, dependency solving and exception middleware added
    another ~0.8 ms (measured in-process). These endpoints call the same ``Service`` methods as the
    FastAPI routes (which stay declared, for the OpenAPI document) with the same token check, body
    limit and error bodies, so clients see no difference but speed.
    """

    def __init__(self, app, service: "Service", token: str | None, max_bytes: int) -> None:
        self.app = app
        self.svc = service
        self.token = token
        self.max_bytes = int(max_bytes)
        self.routes = {("POST", "/predict"): self._predict, ("POST", "/observations"): self._observations,
                       ("GET", "/forecast"): self._forecast}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            path, root = scope["path"], scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root):]
            handler = self.routes.get((scope["method"], path))
            if handler is not None:
                return await handler(scope, receive, send)
        return await self.app(scope, receive, send)

    async def _predict(self, scope, receive, send):
        await self._write(scope, receive, send, self.svc.predict)

    async def _observations(self, scope, receive, send):
        await self._write(scope, receive, send, self.svc.observe)

    async def _forecast(self, scope, receive, send):
        pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        nodes = [v for k, v in pairs if k == "node"] or None
        await self._respond(scope, send, lambda: self.svc.latest_forecast(nodes))

    async def _write(self, scope, receive, send, method) -> None:
        data = await _read_body(scope, receive, self.max_bytes)
        if data is None:
            return
        if isinstance(data, tuple):
            return await _send_error(send, *data)

        def authorized_call() -> dict:
            _check_token(_given_token(scope["headers"]), self.token)
            return method(data)

        await self._respond(scope, send, authorized_call)

    @staticmethod
    async def _respond(scope, send, compute) -> None:
        """Run ``compute`` and send its dict as JSON; errors become the bodies FastAPI's handlers give."""
        headers = None
        try:
            status, body = 200, pydantic_core.to_json(compute())
        except Exception as e:
            status, content = _error_reply(e, scope["method"], scope["path"])
            body = json.dumps(content).encode()
            if isinstance(e, HTTPException):
                headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (e.headers or {}).items()]
        await _send_json(send, status, body, headers)


def _check_token(given: str | None, token: str | None) -> None:
    """401 unless no token is configured or ``given`` equals it (constant-time comparison)."""
    if token is not None and (not given or not hmac.compare_digest(given.encode(), token.encode())):
        raise HTTPException(401, AUTH_ERROR, headers={"WWW-Authenticate": "Bearer"})


def _given_token(headers) -> str | None:
    """The token of ``Authorization: Bearer T`` or else ``X-API-Token: T`` (as FastAPI's HTTPBearer and
    APIKeyHeader read them)."""
    bearer = api = None
    for k, v in headers:
        if k == b"authorization":
            scheme, _, cred = v.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and cred:
                bearer = cred
        elif k == b"x-api-token":
            api = v.decode("latin-1")
    return bearer if bearer is not None else api


# ========================================================================== the app
AUTH_ERROR = "a valid API token is needed for this endpoint (Authorization: Bearer <token> or X-API-Token)"


def _error_reply(exc: Exception, method: str, path: str) -> tuple[int, dict]:
    """Status and JSON body for an error raised while answering a request (FastAPI's exception handlers
    and HotPaths both use it): HTTPException as raised, validation errors and bad input 422, anything
    else is a bug: 500, with the trace in the log."""
    if isinstance(exc, HTTPException):
        return exc.status_code, {"detail": exc.detail}
    if isinstance(exc, RequestValidationError):
        return 422, _validation_body(exc)
    if isinstance(exc, STKDError):
        return 422, {"detail": str(exc)}
    log.error("internal error on %s %s", method, path, exc_info=exc)
    return 500, {"detail": f"internal error ({type(exc).__name__}); see the server log"}


def _validation_body(exc: RequestValidationError) -> dict:
    """The 422 body of a validation error: one readable line and the structured errors."""
    errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
              for e in exc.errors()]
    return {"detail": _readable(errors), "errors": errors}


def _readable(errors: list[dict]) -> str:
    """One line from pydantic's errors: locations without the union-branch labels, each said once."""
    parts: list[str] = []
    for e in errors:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body" and not _is_branch(x))
        msg = e.get("msg", "invalid")
        if "finite" in msg:
            msg += " (send null for a missing reading)"
        if e.get("type") in ("list_type",) and any(p.startswith(f"{loc or 'body'}:") for p in parts):
            continue  # the list branch of a number-or-list reading: the number message says it
        text = f"{loc or 'body'}: {msg}"
        if text not in parts:
            parts.append(text)
    more = f" (and {len(parts) - 5} more)" if len(parts) > 5 else ""
    return "; ".join(parts[:5]) + more


def _is_branch(x) -> bool:
    return isinstance(x, str) and (x in ("float", "str", "int", "list") or x.startswith(("list[", "nullable[")))


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
        body = _parse(raw, ObservationsIn)
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
        body = _parse(raw, PredictIn)
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


def create_app(run_dir: str | Path, backend: str = "torch", token: str | None = None, *, model: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, state_path: str | Path | None | bool = True,
               threads: int | None = None, predictor=None) -> FastAPI:
    """The FastAPI app serving a run's model (default: the distilled student).

    Args:
        run_dir: a run directory (or a folder written by ``stkd export``).
        backend: ``torch`` or ``onnx`` (the model exported in memory, run by onnxruntime).
        token: when set, POST endpoints need ``Authorization: Bearer <token>`` or ``X-API-Token``.
        model: the model of the run to serve.
        max_body_bytes: larger request bodies get 413.
        state_path: the SQLite file the rolling window is saved to after each post (True: ``run_dir/deploy/
            state-<model>.sqlite``; False/None: not saved).
        predictor: an already loaded :class:`stkd.predictor.Predictor` (then run_dir only names the run).
    """
    from stkd.predictor import load

    if backend not in ("torch", "onnx", "torchscript"):
        raise STKDError(f"--backend {backend!r}: choose torch or onnx")
    p = predictor if predictor is not None else load(run_dir, model, backend=backend, threads=threads)
    legacy_state = None
    if state_path is True:
        state_path = Path(run_dir) / "deploy" / f"state-{p.spec.model}.sqlite"
        legacy_state = state_path.with_suffix(".npz")  # the earlier default (an .npz window): read once
    svc = Service(p, Path(state_path) if state_path else None, legacy_state)
    s = p.spec

    app = FastAPI(title="stkd forecasting service",
                  description=f"Forecasts of {s.model} ({s.registry_name}, {s.role}) on {s.dataset}: "
                              f"{len(s.nodes)} nodes, {s.input_len} input steps of {s.freq}, {s.horizon} ahead.",
                  version="1")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.service = svc

    async def _error(request: Request, exc: Exception):  # bad input 422; a bug 500, logged (_error_reply)
        status, content = _error_reply(exc, request.method, request.url.path)
        return JSONResponse(content, status_code=status)

    for kind in (RequestValidationError, STKDError, Exception):
        app.add_exception_handler(kind, _error)

    async def authorize(bearer: HTTPAuthorizationCredentials | None = Depends(HTTPBearer(auto_error=False)),
                        api_token: str | None = Depends(APIKeyHeader(name="X-API-Token", auto_error=False))):
        """POST endpoints: ``Authorization: Bearer <token>`` or ``X-API-Token: <token>`` when a token is set."""
        _check_token(bearer.credentials if bearer is not None else api_token, token)

    @app.get("/health", response_model=HealthOut)
    async def health():
        return {"status": "ok", "model": s.model, "backend": p.backend.name, "ready": svc.window.ready}

    @app.get("/metadata")
    async def metadata():
        w = svc.window
        return JSONResponse(_finite({
            "model": s.model, "architecture": s.registry_name, "role": s.role, "task": s.task,
            "backend": p.backend.name, "dataset": {"name": s.dataset, **s.dataset_metrics},
            "nodes": s.nodes, "features": s.features, "targets": s.targets, "freq": s.freq,
            "input_len": s.input_len, "horizon": s.horizon, "classes": s.out_classes,
            "class_names": s.class_names, "impute": s.impute,
            "gap_statistics": s.stats_source, "metrics": s.metrics,
            "window": {"latest": None if w.latest is None else p.prep.times([w.latest])[0].isoformat(),
                       "steps": min(w.steps, s.input_len), "ready": w.ready},
            "max_body_bytes": max_body_bytes, "auth": token is not None}))

    # The routes declare the three load-carrying endpoints for the OpenAPI document (their body schemas,
    # the token); HotPaths answers them with the same Service methods before FastAPI's routing.
    @app.post("/observations", response_model=ObservationsOut, responses=_ERRORS, dependencies=[Depends(authorize)],
              openapi_extra=_body_schema(ObservationsIn))
    async def observations(request: Request):
        return FastJSONResponse(svc.observe(await request.body()))

    @app.get("/forecast", response_model=ForecastOut, responses=_ERRORS)
    async def forecast(node: list[str] | None = Query(default=None, description="node id(s); default all")):
        return FastJSONResponse(svc.latest_forecast(node))

    @app.post("/predict", response_model=ForecastOut, responses=_ERRORS, dependencies=[Depends(authorize)],
              openapi_extra=_body_schema(PredictIn))
    async def predict(request: Request):
        return FastJSONResponse(svc.predict(await request.body()))

    app.add_middleware(HotPaths, service=svc, token=token, max_bytes=max_body_bytes)
    return app


def _parse(raw: bytes, model: type[BaseModel]):
    """The request body validated as ``model``; errors go to the 422 handler like FastAPI's own."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_input=False, include_url=False)) from None


def _body_schema(model: type[BaseModel]) -> dict:
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": model.model_json_schema()}}}}


class FastJSONResponse(JSONResponse):
    """JSON rendered by pydantic-core (Rust): ~10x faster than ``json.dumps`` for thousands of floats;
    non-finite floats become null."""

    def render(self, content: Any) -> bytes:
        return pydantic_core.to_json(content)


def _finite(obj):
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, backend: str = "torch",
          token: str | None = None, model: str | None = None, threads: int | None = None,
          log_level: str = "info", persist: bool | str | Path = True, max_body_bytes: int = MAX_BODY_BYTES) -> None:
    """Run the service with uvicorn (blocking). ``persist``: True (the default state file), False, or a path."""
    import uvicorn

    if threads:
        import torch

        torch.set_num_threads(int(threads))
    app = create_app(run_dir, backend, token, model=model, threads=threads, state_path=persist,
                     max_body_bytes=max_body_bytes)
    uvicorn.run(app, host=host, port=int(port), log_level=log_level, access_log=log_level == "debug")
