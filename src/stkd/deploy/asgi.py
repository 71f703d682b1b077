"""The pure-ASGI layer in front of FastAPI: the body limit, the hot paths, the token check, error bodies.

Errors raised while answering a request become the same JSON bodies whichever layer answers it
(:func:`error_reply`): ``HTTPException`` as raised, validation errors and bad input 422, a bug 500.
"""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import pydantic_core
from fastapi import HTTPException
from fastapi.exceptions import RequestValidationError

from stkd.errors import STKDError

if TYPE_CHECKING:  # annotations only: the service imports nothing from here
    from stkd.deploy.service import Service

log = logging.getLogger(__name__)

AUTH_ERROR = "a valid API token is needed for this endpoint (Authorization: Bearer <token> or X-API-Token)"


def route_path(scope) -> str:
    """The request's path without the ``root_path`` prefix (a service behind a proxy)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


async def read_body(scope, receive, max_bytes: int, why: str = "", drain: int = 0) -> bytes | tuple[int, str] | None:
    """The whole request body, or ``(status, detail)`` when it is over ``max_bytes`` (by Content-Length,
    and by counting what arrives: a chunked or lying client cannot slip past), or None on disconnect.
    ``why``: what the limit comes from, for the message.

    ``drain``: a refused body of up to this many bytes is read to its end and dropped (nothing is kept
    or parsed) before the answer: a client still uploading when the server closes the connection sees
    "connection reset" instead of the 413. Bodies beyond it are cut off at once.
    """
    declared = None
    for k, v in scope.get("headers", []):
        if k == b"content-length":
            try:
                declared = int(v)
            except ValueError:
                return 400, "Content-Length is not a number"
    if declared is not None and declared > max_bytes:
        refused = 413, f"request body of {declared} bytes is over the limit of {max_bytes} bytes{why}"
        return refused if declared > drain or await _discard(receive, drain) else None
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return None
        body = msg.get("body", b"")
        size += len(body)
        more = msg.get("more_body", False)
        if size > max_bytes:
            refused = 413, f"request body is over the limit of {max_bytes} bytes{why}"
            return refused if not more or await _discard(receive, drain - size) else None
        chunks.append(body)
        if not more:
            return b"".join(chunks)


async def _discard(receive, budget: int) -> bool:
    """Read and drop the rest of a body, up to ``budget`` bytes; False when the client disconnected
    (a body that goes on past the budget is left unread: the connection closes)."""
    while budget >= 0:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return False
        budget -= len(msg.get("body", b""))
        if not msg.get("more_body", False):
            return True
    return True


class BodyLimit:
    """Reject bodies over the limit with 413 (see ``read_body``): ``limits[path]`` = ``(bytes, why)`` for the
    endpoints that have their own, else ``max_bytes``. Pure ASGI, so the body is read once and replayed."""

    def __init__(self, app, max_bytes: int, limits: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.limits = limits or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        limit, why = self.limits.get(route_path(scope), (self.max_bytes, ""))
        data = await read_body(scope, receive, limit, why, drain=self.max_bytes)
        if data is None:
            return None
        if isinstance(data, tuple):
            return await send_error(send, *data)
        done = False

        async def replay():
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": data, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


async def send_json(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def send_error(send, status: int, detail: str) -> None:
    await send_json(send, status, json.dumps({"detail": detail}).encode(), [(b"connection", b"close")])


class HotPaths:
    """Pure-ASGI handling of the three endpoints that carry the load: ``POST /predict``,
    ``POST /observations`` and ``GET /forecast``; every other request goes on to the FastAPI app.

    Why: at batch 1 the student's own work per request (parse, fill, model, JSON) is about 1.5 ms on
    this machine, and FastAPI's request object, dependency solving and exception middleware added
    another ~0.8 ms (measured in-process). These endpoints call the same ``Service`` methods as the
    FastAPI routes (which stay declared, for the OpenAPI document) with the same token check, body
    limit and error bodies, so clients see no difference but speed.
    """

    def __init__(self, app, service: "Service", token: str | None, max_bytes: int,
                 limits: dict[str, tuple[int, str]] | None = None) -> None:
        self.app = app
        self.svc = service
        self.token = token
        self.max_bytes = int(max_bytes)
        self.limits = limits or {}
        self.routes = {("POST", "/predict"): self._predict, ("POST", "/observations"): self._observations,
                       ("GET", "/forecast"): self._forecast}

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], route_path(scope)))
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
        limit, why = self.limits.get(route_path(scope), (self.max_bytes, ""))
        data = await read_body(scope, receive, limit, why, drain=self.max_bytes)
        if data is None:
            return
        if isinstance(data, tuple):
            return await send_error(send, *data)

        def authorized_call() -> dict:
            check_token(given_token(scope["headers"]), self.token)
            return method(data)

        await self._respond(scope, send, authorized_call)

    @staticmethod
    async def _respond(scope, send, compute) -> None:
        """Run ``compute`` and send its dict as JSON; errors become the bodies FastAPI's handlers give."""
        headers = None
        try:
            status, body = 200, pydantic_core.to_json(compute())
        except Exception as e:
            status, content = error_reply(e, scope["method"], scope["path"])
            body = json.dumps(content).encode()
            if isinstance(e, HTTPException):
                headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (e.headers or {}).items()]
        await send_json(send, status, body, headers)


def check_token(given: str | None, token: str | None) -> None:
    """401 unless no token is configured or ``given`` equals it (constant-time comparison)."""
    if token is not None and (not given or not hmac.compare_digest(given.encode(), token.encode())):
        raise HTTPException(401, AUTH_ERROR, headers={"WWW-Authenticate": "Bearer"})


def given_token(headers) -> str | None:
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



def error_reply(exc: Exception, method: str, path: str) -> tuple[int, dict]:
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
