"""The web app: ``create_app(db_url)`` builds the FastAPI API and the cockpit page over a historian.

Routers: sessions (:mod:`~biopilot.web.auth`), reads (:mod:`~biopilot.web.api_read`), alarm
acknowledgement, records and e-signatures (:mod:`~biopilot.web.api_write`), specifications
and QC dispositions (:mod:`~biopilot.web.api_quality`), the controller's recommendations
(:mod:`~biopilot.web.api_control`), user accounts
(:mod:`~biopilot.web.api_users`), the unit panels (:mod:`~biopilot.web.api_panels`) and the
live stream (:mod:`~biopilot.web.live`).

Errors are answered with ``{"detail": reason}``: 401 for no, an unknown or an expired
session, 403 for a refused role, 404 for an unknown batch/tag/unit, 409 for a conflict
(nothing to acknowledge, signature refused), 413 for an oversized body, 422 for a bad body
or value (the field named). The page and its scripts are served from the package (Plotly
from the installed ``plotly`` package): no network is needed at run time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from biopilot.store import Historian, StoreError
from biopilot.store.audit import AuditTrail
from biopilot.store.permissions import AuthenticationError, PermissionDenied
from biopilot.store.signatures import SignatureRefused
from biopilot.store.users import UserStore
from biopilot.web import (
    api_control,
    api_panels,
    api_quality,
    api_read,
    api_users,
    api_write,
    auth,
    live,
)
from biopilot.web.auth import route_action
from biopilot.web.context import WebContext
from biopilot.web.panels import DeployedModels

__all__ = ["MAX_BODY_BYTES", "api_routes", "create_app"]

MAX_BODY_BYTES = 64 * 1024
_LOG = logging.getLogger(__name__)
_STATIC = {"cockpit.js": "text/javascript", "panels.js": "text/javascript",
           "cockpit.css": "text/css"}
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'")


def create_app(
    db_url: str | Path,
    *,
    session_ttl: timedelta = timedelta(hours=8),
    hasher: PasswordHasher | None = None,
    clock: Callable[[], datetime] | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    live_interval_s: float = 1.0,
    live_max_s: float = 300.0,
    mspc_model: str | Path | None = None,
) -> FastAPI:
    """Return the app over the historian at ``db_url`` (a path or SQLAlchemy URL).

    ``clock`` is the server's UTC clock for sessions and audit entries (tests pass their
    own); ``hasher`` the argon2 parameters; ``max_body_bytes`` the largest request body;
    ``mspc_model`` the deployed MSPC model file (:mod:`biopilot.monitor.mspc`), if any.
    """
    historian = Historian(db_url)
    audit = AuditTrail(historian, clock=clock)
    users = UserStore(historian, audit, session_ttl=session_ttl, hasher=hasher)
    app = FastAPI(title="biopilot", version=_version(),
                  description="Pilot a biomanufacturing line: read it, acknowledge, release.")
    app.state.ctx = WebContext(historian, users, audit, live_interval_s, live_max_s,
                               models=DeployedModels(mspc_model))
    routers = (auth.router, api_read.router, api_write.router, api_quality.router,
               api_users.router, api_panels.router, api_control.router, live.router)
    for router in routers:
        app.include_router(router)
    _document_actions(app)
    _add_handlers(app)
    _add_pages(app)
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    return app


def api_routes(app: FastAPI) -> dict[str, APIRoute]:
    """Return the app's API operations (``/api/...``) as ``"METHOD /path"``, routers flattened."""
    out: dict[str, APIRoute] = {}
    stack: list[Any] = list(app.routes)
    while stack:
        route = stack.pop()
        inner = getattr(route, "original_router", None)  # FastAPI >= 0.16x keeps routers whole
        if inner is not None:
            stack.extend(inner.routes)
        elif isinstance(route, APIRoute) and route.path.startswith("/api/"):
            out |= {f"{method} {route.path}": route for method in route.methods or ()}
    return out


def _document_actions(app: FastAPI) -> None:
    """Add each operation's required Action to the OpenAPI schema (``x-required-action``)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for label, route in api_routes(app).items():
                method, path = label.split(" ", 1)
                op = schema["paths"].get(path, {}).get(method.lower())
                if op is not None:
                    action = route_action(route)
                    op["x-required-action"] = action.value if action else None
        return app.openapi_schema or build()

    app.openapi = openapi  # type: ignore[method-assign]


def _add_handlers(app: FastAPI) -> None:
    def answer(status: int, detail: Any, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.exception_handler(AuthenticationError)
    async def _unauthenticated(_: Request, err: AuthenticationError) -> JSONResponse:
        return answer(401, str(err), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(PermissionDenied)
    async def _forbidden(_: Request, err: PermissionDenied) -> JSONResponse:
        return answer(403, str(err))

    @app.exception_handler(StoreError)
    async def _not_found(_: Request, err: StoreError) -> JSONResponse:
        return answer(404, str(err))

    @app.exception_handler(SignatureRefused)
    async def _refused(_: Request, err: SignatureRefused) -> JSONResponse:
        return answer(409, f"signature refused: {err}")

    @app.exception_handler(ValueError)
    async def _bad_value(_: Request, err: ValueError) -> JSONResponse:
        return answer(422, str(err))

    @app.exception_handler(RequestValidationError)
    async def _bad_body(_: Request, err: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in err.errors()]
        text = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": text, "errors": errors}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        _LOG.exception("unexpected error on %s %s", request.method, request.url.path)
        return answer(500, f"internal error ({type(err).__name__}); see the server log")

    @app.middleware("http")
    async def _headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response


def _add_pages(app: FastAPI) -> None:
    web = resources.files("biopilot.web")

    @app.get("/", include_in_schema=False)
    def cockpit() -> Response:
        html = (web / "templates" / "cockpit.html").read_text(encoding="utf-8")
        return Response(html, media_type="text/html; charset=utf-8")

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> Response:
        body = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
        return Response(body, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in _STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        return Response((web / "static" / name).read_bytes(), media_type=_STATIC[name])


class _BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with 413 (declared or sent)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        too_big = not declared.isdigit() or int(declared) > self.max_bytes
        chunks: list[Message] = []
        size, more = 0, not too_big
        while more:  # read the body up front: the limit also holds for chunked uploads
            message = await receive()
            chunks.append(message)
            size += len(message.get("body", b""))
            more = message["type"] == "http.request" and message.get("more_body", False)
            too_big = size > self.max_bytes
            more = more and not too_big
        if too_big:
            reply = JSONResponse(
                {"detail": f"request body over {self.max_bytes} bytes: refused"}, status_code=413
            )
            await reply(scope, receive, send)
            return

        async def replay() -> Message:
            return chunks.pop(0) if chunks else await receive()

        await self.app(scope, replay, send)


def _version() -> str:
    from biopilot import __version__

    return str(__version__)
