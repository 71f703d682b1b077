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
from pathlib import Path
from typing import Any

import pydantic_core
import torch
import uvicorn
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from stkd.deploy.asgi import BodyLimit, HotPaths, check_token, error_reply
from stkd.deploy.loading import load
from stkd.deploy.schemas import (ERRORS, ForecastOut, HealthOut, ObservationsIn, ObservationsOut, PredictIn,
                                 body_schema)
from stkd.deploy.service import Service
from stkd.errors import STKDError
from stkd.names import BACKENDS

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 2**20


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
        predictor: an already loaded :class:`stkd.deploy.predictor.Predictor` (then run_dir only names the run).
    """
    if backend not in BACKENDS:
        raise STKDError(f"--backend {backend!r}: choose one of {', '.join(BACKENDS)}")
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
        status, content = error_reply(exc, request.method, request.url.path)
        return JSONResponse(content, status_code=status)

    for kind in (RequestValidationError, STKDError, Exception):
        app.add_exception_handler(kind, _error)

    async def authorize(bearer: HTTPAuthorizationCredentials | None = Depends(HTTPBearer(auto_error=False)),
                        api_token: str | None = Depends(APIKeyHeader(name="X-API-Token", auto_error=False))):
        """POST endpoints: ``Authorization: Bearer <token>`` or ``X-API-Token: <token>`` when a token is set."""
        check_token(bearer.credentials if bearer is not None else api_token, token)

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

    app.add_middleware(HotPaths, service=svc, token=token, max_bytes=max_body_bytes)
    return app



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
    if threads:
        torch.set_num_threads(int(threads))
    app = create_app(run_dir, backend, token, model=model, threads=threads, state_path=persist,
                     max_body_bytes=max_body_bytes)
    uvicorn.run(app, host=host, port=int(port), log_level=log_level, access_log=log_level == "debug")
