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
or ``X-API-Token: T``. The rolling window is saved after each post (``run_dir/deploy/state-<model>.npz``)
so a restarted service continues where it stopped.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
import math
import threading
from pathlib import Path
from typing import Annotated, Any, Optional, Union

import numpy as np
import pydantic_core
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stkd.errors import STKDError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 2**20
STATE_VERSION = 1

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


class HealthOut(BaseModel):
    status: str
    model: str
    backend: str
    ready: bool


class ErrorOut(BaseModel):
    detail: str


_ERRORS = {code: {"model": ErrorOut} for code in (401, 404, 409, 413, 422)}


# ========================================================================== the window
class RollingWindow:
    """The last P steps of readings per node, in original units (NaN = missing), on the data's grid.

    ``carry [N, F]`` holds each column's last reading before the window, so forward fill reaches back
    past the window exactly as over the training series. ``seen`` are the nodes posted at the latest
    step (a second reading of the same node and step is a duplicate).
    """

    def __init__(self, P: int, N: int, F: int) -> None:
        self.P, self.N, self.F = P, N, F
        self.values = np.full((P, N, F), np.nan, np.float32)  # [P, N, F]
        self.carry = np.full((N, F), np.nan, np.float32)  # [N, F]
        self.latest: int | None = None  # grid position of the newest step
        self.steps = 0  # steps covered since the first post (capped at P only in reports)
        self.seen: set[int] = set()
        self.version = 0

    @property
    def ready(self) -> bool:
        return self.latest is not None and self.steps >= self.P

    def check(self, pos: int, idx: np.ndarray, when: str, nodes: list[str]) -> None:
        """Raise 409 for a step before the latest or a repeated (step, node)."""
        if self.latest is None or pos > self.latest:
            return
        if pos < self.latest:
            raise HTTPException(409, f"out of order: {when} is before the latest posted timestamp; readings must "
                                     "arrive in time order")
        dup = [nodes[i] for i in idx if int(i) in self.seen]
        if dup:
            raise HTTPException(409, f"duplicate: node(s) {dup[:5]} already have a reading at {when}")

    def advance(self, pos: int) -> None:
        if self.latest is None:
            self.latest, self.steps = pos, 1
            self.seen = set()
            return
        k = pos - self.latest
        if k <= 0:
            return
        leaving = self.values[: min(k, self.P)]  # rows that drop out, oldest first
        for row in leaving:
            np.copyto(self.carry, row, where=~np.isnan(row))
        if k >= self.P:
            self.values[:] = np.nan
        else:
            self.values[:-k] = self.values[k:]
            self.values[-k:] = np.nan
        self.latest = pos
        self.steps += k
        self.seen = set()

    def put(self, idx: np.ndarray, vals: np.ndarray) -> None:
        self.values[-1, idx] = vals
        self.seen.update(int(i) for i in idx)
        self.version += 1

    def positions(self) -> np.ndarray:
        return np.arange(self.latest - self.P + 1, self.latest + 1, dtype=np.int64)

    # ----------------------------------------------------------- persistence
    def to_bytes(self, model: str, nodes_hash: str) -> bytes:
        """The window as a small ``.npz`` (no pickles)."""
        buf = io.BytesIO()
        np.savez(buf, version=np.array(STATE_VERSION), model=np.array(model), nodes_hash=np.array(nodes_hash),
                 P=np.array(self.P), latest=np.array(-1 if self.latest is None else self.latest, np.int64),
                 has_latest=np.array(self.latest is not None), steps=np.array(self.steps, np.int64),
                 seen=np.array(sorted(self.seen), np.int64), values=self.values, carry=self.carry)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, P: int, N: int, F: int, model: str, nodes_hash: str) -> "RollingWindow":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            if int(z["version"]) != STATE_VERSION or str(z["model"]) != model or int(z["P"]) != P \
                    or str(z["nodes_hash"]) != nodes_hash or z["values"].shape != (P, N, F):
                raise ValueError("the saved window belongs to another model or data layout")
            w = cls(P, N, F)
            w.values = np.array(z["values"], dtype=np.float32)
            w.carry = np.array(z["carry"], dtype=np.float32)
            w.latest = int(z["latest"]) if bool(z["has_latest"]) else None
            w.steps = int(z["steps"])
            w.seen = set(int(i) for i in z["seen"])
        return w


def _nodes_hash(nodes: list[str]) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(nodes).encode()).hexdigest()[:16]


# ========================================================================== middleware
class BodyLimit:
    """Reject bodies over ``max_bytes`` with 413: by Content-Length, and by counting what arrives (a
    chunked or lying client cannot slip past). Pure ASGI, so the body is read once and replayed."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        length = None
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                length = v
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await _send_error(send, 400, "Content-Length is not a number")
            if n > self.max_bytes:
                return await _send_error(send, 413, f"request body of {n} bytes is over the limit of "
                                                    f"{self.max_bytes} bytes")
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return None
            body = msg.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return await _send_error(send, 413, f"request body is over the limit of {self.max_bytes} bytes")
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        data = b"".join(chunks)
        done = False

        async def replay():
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def _send_error(send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


# ========================================================================== the app
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
    """The predictor, the rolling window and the lock around them (one per app)."""

    def __init__(self, predictor, state_path: Path | None) -> None:
        self.p = predictor
        s = predictor.spec
        self.P, self.N, self.F = s.input_len, len(s.nodes), len(s.features)
        self.lock = threading.Lock()
        self.state_path = state_path
        self.window = RollingWindow(self.P, self.N, self.F)
        self._cache: tuple[int, Any] | None = None
        self.nodes_hash = _nodes_hash(s.nodes)
        if state_path is not None and state_path.is_file():
            try:
                self.window = RollingWindow.from_bytes(state_path.read_bytes(), self.P, self.N, self.F, s.model,
                                                       self.nodes_hash)
                log.info("resumed the rolling window from %s", state_path)
            except (ValueError, KeyError, TypeError, OSError) as e:
                log.warning("not resuming from %s: %s", state_path, e)

    def save(self) -> None:
        if self.state_path is None:
            return
        from stkd.io import _atomic_write

        data = self.window.to_bytes(self.p.spec.model, self.nodes_hash)
        try:
            _atomic_write(self.state_path, lambda fh: fh.write(data))
        except OSError as e:
            log.warning("cannot save the rolling window to %s (%s); persistence is off", self.state_path, e)
            self.state_path = None

    def parse_time(self, text: str, what: str) -> int:
        try:
            idx = self.p.prep.as_index([text], what)
            return int(self.p.prep.positions(idx, what)[0])
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
        return {"model": s.model, "issued_at": _iso(fc.issued_at[:1])[0], "freq": s.freq, "horizon": s.horizon,
                "target_times": _iso(fc.target_time), "targets": s.output_names,
                "classes": s.out_classes, "values": dict(zip(names, rows))}


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
        state_path: where the rolling window is saved after each post (True: ``run_dir/deploy/
            state-<model>.npz``; False/None: not saved).
        predictor: an already loaded :class:`stkd.predictor.Predictor` (then run_dir only names the run).
    """
    from stkd.predictor import load

    if backend not in ("torch", "onnx", "torchscript"):
        raise STKDError(f"--backend {backend!r}: choose torch or onnx")
    p = predictor if predictor is not None else load(run_dir, model, backend=backend, threads=threads)
    if state_path is True:
        state_path = Path(run_dir) / "deploy" / f"state-{p.spec.model}.npz"
    svc = Service(p, Path(state_path) if state_path else None)
    s = p.spec

    app = FastAPI(title="stkd forecasting service",
                  description=f"Forecasts of {s.model} ({s.registry_name}, {s.role}) on {s.dataset}: "
                              f"{len(s.nodes)} nodes, {s.input_len} input steps of {s.freq}, {s.horizon} ahead.",
                  version="1")
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    app.state.service = svc

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
                  for e in exc.errors()]
        return JSONResponse({"detail": _readable(errors), "errors": errors}, status_code=422)

    @app.exception_handler(STKDError)
    async def _bad_input(request: Request, exc: STKDError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):  # a bug, not bad input: say so, log the trace
        log.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    async def authorize(bearer: HTTPAuthorizationCredentials | None = Depends(HTTPBearer(auto_error=False)),
                        api_token: str | None = Depends(APIKeyHeader(name="X-API-Token", auto_error=False))):
        """POST endpoints: ``Authorization: Bearer <token>`` or ``X-API-Token: <token>`` when a token is set."""
        if token is None:
            return
        given = bearer.credentials if bearer is not None else api_token
        if not given or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "a valid API token is needed for this endpoint (Authorization: Bearer <token> "
                                     "or X-API-Token)", headers={"WWW-Authenticate": "Bearer"})

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

    # Endpoints are async and compute inline: one request at a time per worker, no thread hop per
    # request. Bodies are parsed and validated in one step by pydantic-core (``model_validate_json``);
    # their schemas are declared for the OpenAPI document.
    @app.post("/observations", response_model=ObservationsOut, responses=_ERRORS, dependencies=[Depends(authorize)],
              openapi_extra=_body_schema(ObservationsIn))
    async def observations(request: Request):
        body = await _parse(request, ObservationsIn)
        pos = svc.parse_time(body.timestamp, "timestamp")
        names = list(body.readings)
        idx = svc.node_index(names, "readings")
        vals = svc.readings_array(body.readings, names)  # [k, F]
        if np.isinf(vals).any():
            raise HTTPException(422, "readings: a value is beyond the float32 range (|x| > 3.4e38)")
        with svc.lock:
            w = svc.window
            when = p.prep.times([pos])[0].isoformat()
            w.check(pos, idx, when, s.nodes)
            w.advance(pos)
            w.put(idx, vals)
            svc.save()
            return {"accepted": len(names), "timestamp": when, "window_steps": min(w.steps, s.input_len),
                    "ready": w.ready}

    @app.get("/forecast", response_model=ForecastOut, responses=_ERRORS)
    async def forecast(node: list[str] | None = Query(default=None, description="node id(s); default all")):
        with svc.lock:
            w = svc.window
            if not w.ready:
                have = 0 if w.latest is None else min(w.steps, s.input_len)
                raise HTTPException(409, f"no full window yet: {have} of {s.input_len} steps seen; POST "
                                         "/observations for the missing steps first")
            if svc._cache is not None and svc._cache[0] == (w.version, w.latest):
                fc = svc._cache[1]
            else:
                if np.isnan(w.values).all():
                    raise HTTPException(409, f"the last {s.input_len} steps hold no reading at all; nothing to "
                                             "forecast from")
                fc = p.forecast_windows(w.values[None], w.positions()[None], w.carry)
                svc._cache = ((w.version, w.latest), fc)
        return FastJSONResponse(svc.forecast_json(fc, node))

    @app.post("/predict", response_model=ForecastOut, responses=_ERRORS, dependencies=[Depends(authorize)],
              openapi_extra=_body_schema(PredictIn))
    async def predict(request: Request):
        body = await _parse(request, PredictIn)
        P = s.input_len
        if (body.timestamps is None) == (body.end is None):
            raise HTTPException(422, "give either timestamps (one per input step) or end (the last input step)")
        if body.timestamps is not None and len(body.timestamps) != P:
            raise HTTPException(422, f"timestamps: {len(body.timestamps)} given; the model needs {P} (its input "
                                     "window)")
        names = list(body.values)
        svc.node_index(names, "values")
        missing = [n for n in s.nodes if n not in body.values]
        if missing:
            raise HTTPException(422, f"values: {len(missing)} node(s) missing, e.g. {missing[:5]}; send every node "
                                     "(null for steps without a reading)")
        for n in names:
            if len(body.values[n]) != P:
                raise HTTPException(422, f"values[{n!r}]: {len(body.values[n])} steps; the model needs {P}")
        window = svc.window_array([body.values[n] for n in s.nodes], s.nodes)  # [P, N, F]
        if body.nodes is not None:
            svc.node_index(body.nodes, "nodes")
        try:
            fc = p.predict(window, body.timestamps, end=body.end, as_frame=False)
        except STKDError as e:
            raise HTTPException(422, str(e)) from None
        return FastJSONResponse(svc.forecast_json(fc, body.nodes))

    return app


async def _parse(request: Request, model: type[BaseModel]):
    """The request body validated as ``model``; errors go to the 422 handler like FastAPI's own."""
    raw = await request.body()
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
