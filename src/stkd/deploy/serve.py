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
see :mod:`stkd.deploy.state`) so a restarted service continues where it stopped. ``HotPaths`` answers the
three load-carrying endpoints in front of FastAPI's routing, with the same code.
"""

from __future__ import annotations

import logging
import math
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pydantic_core
import torch
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from stkd.deploy.asgi import BodyLimit, HotPaths, check_token, error_reply
from stkd.deploy.loading import load
from stkd.deploy.schemas import (
    ERRORS,
    AdminOut,
    ForecastOut,
    HealthOut,
    ObservationsIn,
    ObservationsOut,
    PredictIn,
    body_schema,
)
from stkd.deploy.service import Service
from stkd.deploy.state import WindowStore
from stkd.errors import STKDError
from stkd.names import BACKENDS, MAX_CLOCK_SKEW

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 2**20


def create_app(run_dir: str | Path, backend: str = "torch", token: str | None = None, *, model: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES, state_path: str | Path | None | bool = True,
               threads: int | None = None, predictor=None, max_clock_skew: str | None = MAX_CLOCK_SKEW,
               reset_state: bool = False, sync: str = "full", trust_code: bool = False) -> FastAPI:
    """The FastAPI app serving a run's model (default: the student with the best validation score).

    Args:
        run_dir: a run directory (or a folder written by ``stkd export``).
        backend: ``torch`` or ``onnx`` (the model exported in memory, run by onnxruntime).
        token: when set, POST endpoints need ``Authorization: Bearer <token>`` or ``X-API-Token``, and the
            admin endpoints exist. An empty token is an error (it would mean no authentication).
        model: the model of the run to serve.
        max_body_bytes: larger request bodies get 413 (the write endpoints have tighter, per-model limits).
        state_path: the SQLite file the rolling window is saved to after each post (True: ``run_dir/deploy/
            state-<model>.sqlite``; False/None: not saved). One server per file: a second is refused.
        predictor: an already loaded :class:`stkd.deploy.predictor.Predictor` (then run_dir only names the run).
        max_clock_skew: how far ahead of this server's clock a posted timestamp may be (a pandas
            Timedelta string; None: no bound).
        reset_state: start with an empty window; an existing state file is kept as ``<file>.bad-<time>``.
        sync: ``full`` (a post is acknowledged once it is on disk) or ``normal`` (once SQLite has it: safe if
            the server crashes, not if the machine does; ~2.5-4 ms faster per post).
        trust_code: allow a TorchScript export (code) to load; see :func:`stkd.deploy.loading.load`.
    """
    if backend not in BACKENDS:
        raise STKDError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    if token is not None and not token.strip():
        raise STKDError("the API token is empty, which would let anyone post: give a token, or none at all (then "
                        "serve on 127.0.0.1 only)")
    skew = parse_skew(max_clock_skew)
    p = predictor if predictor is not None else load(run_dir, model, backend=backend, threads=threads,
                                                     trust_code=trust_code)
    legacy_state = None
    if state_path is True:
        state_path = Path(run_dir) / "deploy" / f"state-{p.spec.model}.sqlite"
        legacy_state = state_path.with_suffix(".npz")  # the earlier default (an .npz window): read once
    s = p.spec
    store = None
    if state_path:
        store = WindowStore(Path(state_path), s.model, s.history_len, len(s.nodes), len(s.features), s.nodes,
                            legacy=legacy_state, sync=sync)
        store.open(reset=reset_state)
    try:
        svc = Service(p, store, skew)
    except BaseException:
        if store is not None:
            store.close()
        raise

    @asynccontextmanager
    async def lifespan(app):
        yield
        svc.close()  # releases the state file's lock for the next server

    app = FastAPI(title="stkd forecasting service",
                  description=f"Forecasts of {s.model} ({s.registry_name}, {s.role}) on {s.dataset}: "
                              f"{len(s.nodes)} nodes, {s.input_len} input steps of {s.freq}"
                              + (f" and lagged channels {s.lags} steps back (send {s.history_len} steps)"
                                 if s.lags else "") + f", {s.horizon} ahead.",
                  version="1", lifespan=lifespan)
    limits = svc.body_limits(max_body_bytes)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes, limits=limits)
    app.state.service = svc

    async def _error(request: Request, exc: Exception):  # bad input 422; a bug 500, logged (error_reply)
        status, content = error_reply(exc, request.method, request.url.path)
        return JSONResponse(content, status_code=status)

    for kind in (RequestValidationError, STKDError, Exception):
        app.add_exception_handler(kind, _error)

    async def authorize(bearer: HTTPAuthorizationCredentials | None = Depends(HTTPBearer(auto_error=False)),
                        api_token: str | None = Depends(APIKeyHeader(name="X-API-Token", auto_error=False))):
        """POST endpoints: ``Authorization: Bearer <token>`` or ``X-API-Token: <token>`` when a token is set."""
        check_token(bearer.credentials if bearer is not None else api_token, token)

    async def authorize_admin(bearer: HTTPAuthorizationCredentials | None = Depends(HTTPBearer(auto_error=False)),
                              api_token: str | None = Depends(APIKeyHeader(name="X-API-Token", auto_error=False))):
        """Admin endpoints: the token, always (a service without one has no admin endpoints)."""
        if token is None:
            raise HTTPException(403, "the admin endpoints need a service started with --token (or STKD_API_TOKEN)")
        check_token(bearer.credentials if bearer is not None else api_token, token)

    @app.get("/health", response_model=HealthOut, response_model_exclude_none=True)
    async def health():
        return {"status": "ok" if svc.fault is None else "degraded", "reason": svc.fault, "model": s.model,
                "backend": p.backend.name, "ready": svc.window.ready}

    @app.get("/metadata")
    async def metadata():
        w = svc.window_state()
        return JSONResponse(_finite({
            "model": s.model, "architecture": s.registry_name, "role": s.role, "task": s.task,
            "backend": p.backend.name, "dataset": {"name": s.dataset, **s.dataset_metrics},
            "nodes": s.nodes, "features": s.features, "targets": s.targets, "freq": s.freq,
            "input_len": s.input_len, "lags": s.lags, "history_len": s.history_len, "horizon": s.horizon,
            "classes": s.out_classes,
            "class_names": s.class_names, "impute": s.impute,
            "gap_statistics": s.stats_source, "metrics": s.metrics,
            "window": {"latest": w["latest"], "steps": w["window_steps"], "ready": w["ready"]},
            "max_body_bytes": max_body_bytes, "auth": token is not None,
            "max_clock_skew": None if skew is None else str(skew)}))

    # The routes declare the three load-carrying endpoints for the OpenAPI document (their body schemas,
    # the token); HotPaths answers them with the same Service methods before FastAPI's routing.
    @app.post("/observations", response_model=ObservationsOut, responses=ERRORS, dependencies=[Depends(authorize)],
              openapi_extra=body_schema(ObservationsIn))
    async def observations(request: Request):
        return FastJSONResponse(svc.observe(await request.body()))

    @app.get("/forecast", response_model=ForecastOut, responses=ERRORS)
    async def forecast(node: list[str] | None = Query(default=None, description="node id(s); default all")):
        return FastJSONResponse(svc.latest_forecast(node))

    @app.post("/predict", response_model=ForecastOut, responses=ERRORS, dependencies=[Depends(authorize)],
              openapi_extra=body_schema(PredictIn))
    async def predict(request: Request):
        return FastJSONResponse(svc.predict(await request.body()))

    @app.post("/admin/reset", response_model=AdminOut, responses=ERRORS, dependencies=[Depends(authorize_admin)])
    async def admin_reset():
        """Empty the rolling window (the state file is backed up first, as ``<file>.reset-<time>``)."""
        return svc.reset()

    @app.post("/admin/rollback", response_model=AdminOut, responses=ERRORS, dependencies=[Depends(authorize_admin)])
    async def admin_rollback(to: str = Query(max_length=64, description="drop every reading after this step")):
        """Drop every reading after step ``to`` (at most P steps back; the state file is backed up first)."""
        return svc.rollback(to)

    app.add_middleware(HotPaths, service=svc, token=token, max_bytes=max_body_bytes, limits=limits)
    return app


def parse_skew(text: str | None) -> pd.Timedelta | None:
    """``--max-clock-skew``: a pandas Timedelta string (``1h``, ``90s``); ``none`` or None: no bound."""
    if text is None or str(text).lower() == "none":
        return None
    try:
        skew = pd.Timedelta(text)
    except (ValueError, TypeError):
        raise STKDError(f"--max-clock-skew {text!r}: not a duration; e.g. 1h, 15min, 90s, or none") from None
    if skew < pd.Timedelta(0):
        raise STKDError(f"--max-clock-skew {text!r} must not be negative")
    return skew


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
          log_level: str = "info", persist: bool | str | Path = True, max_body_bytes: int = MAX_BODY_BYTES,
          max_clock_skew: str | None = MAX_CLOCK_SKEW, reset_state: bool = False, sync: str = "full",
          trust_code: bool = False) -> None:
    """Run the service with uvicorn (blocking). ``persist``: True (the default state file), False, or a path."""
    if threads:
        torch.set_num_threads(int(threads))
    app = create_app(run_dir, backend, token, model=model, threads=threads, state_path=persist,
                     max_body_bytes=max_body_bytes, max_clock_skew=max_clock_skew, reset_state=reset_state,
                     sync=sync, trust_code=trust_code)
    uvicorn.run(app, host=host, port=int(port), log_level=log_level, access_log=log_level == "debug")
