"""Build the FastAPI application: routers, error handling, static web client."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.base import RequestResponseEndpoint
from starlette.responses import Response

from signaling.body_limit import BodyLimit
from signaling.consult import routes as consult
from signaling.inspect import console_routes as inspect_console
from signaling.inspect import routes as inspect
from signaling.live import media_routes as live_media
from signaling.live import routes as live
from signaling.local_media import LocalMedia
from signaling.openapi import install_api_contract
from signaling.routes import health, rooms, rtc, shops, tokens, whip, workers
from signaling.runtime import start_runtime
from vitrine import __version__
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.logs import RequestIds

logger = logging.getLogger(__name__)

WEB_ROOT = Path(__file__).resolve().parent / "web"  # web/ at the top of the repository, shipped as package data


CORS_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")  # OPTIONS: RFC 9725 clients send it
CORS_MAX_AGE_S = 600


async def _shop_origin(request: Request, origin: str) -> bool:
    """Whether the request is for a show's public API (``/v1/live/{shop}/...``, not the console) from one of
    the shop's ``allowed_origins``."""
    parts = request.url.path.split("/")  # "", "v1", "live", shop, show, ...
    if len(parts) <= 4 or parts[1:3] != ["v1", "live"] or parts[3] == "console":
        return False
    shop = await request.app.state.runtime.state.records.shops.get_shop(parts[3])
    return shop is not None and origin in shop.allowed_origins


def _preflight_headers(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Allow-Methods": ", ".join(CORS_METHODS),
        "Access-Control-Allow-Headers": ", ".join(whip.CORS_REQUEST_HEADERS),
        "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
        "Vary": "Origin",
    }


def create_app(settings: Settings, local_media: LocalMedia | None = None) -> FastAPI:
    """An app that starts its runtime (state, worker link, and with ``local_media`` a worker) in its lifespan.
    ``vitrine.embedded.create_app`` is the one to call: it decides whether a worker runs in this process."""
    settings.require_strong_secret()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.runtime = await start_runtime(settings, local_media)
        try:
            yield
        finally:
            await app.state.runtime.close()

    app = FastAPI(
        title="Vitrine",
        version=__version__,
        lifespan=lifespan,
        description="Real-time video for online sellers: REST API, WebSocket signaling, WHIP and WHEP.",
        docs_url=None,  # signaling/openapi.py serves /docs from packaged assets; ReDoc has none, so it is off
        redoc_url=None,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_methods=CORS_METHODS,
        allow_headers=whip.CORS_REQUEST_HEADERS,
        expose_headers=whip.CORS_EXPOSED_HEADERS,
        max_age=CORS_MAX_AGE_S,
    )

    @app.exception_handler(VitrineError)
    async def vitrine_error(_: Request, exc: VitrineError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.http_status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {"code": ErrorCode.INVALID_MESSAGE.value, "message": f"{where}: {first.get('msg', '')}"}, status_code=422
        )

    for module in (health, rooms, shops, tokens, rtc, whip, workers):
        app.include_router(module.router)
    app.include_router(consult.public)
    app.include_router(consult.backend)
    for router in (
        live.backend,
        live.console,
        live.public,
        live_media.router,
        inspect.backend,
        inspect.public,
        inspect_console.router,
    ):
        app.include_router(router)

    @app.middleware("http")
    async def embeddable_assets(request: Request, call_next: RequestResponseEndpoint) -> Response:
        """The widget runs on shops' pages and imports its modules from here: scripts and styles are public."""
        response = await call_next(request)
        if request.method == "GET" and request.url.path.endswith((".js", ".css")):
            response.headers["Access-Control-Allow-Origin"] = "*"
            response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
        return response

    @app.middleware("http")
    async def shop_embed_cors(request: Request, call_next: RequestResponseEndpoint) -> Response:
        """A show's public API (its WHEP too) answers the shop's embed origins, its errors too (the error
        handler builds a new response, so a route cannot set this itself), and their preflights, which
        CORSMiddleware, knowing only ``VITRINE_ALLOWED_ORIGINS``, would refuse."""
        origin = request.headers.get("origin")
        if not origin or origin in settings.allowed_origins or not await _shop_origin(request, origin):
            return await call_next(request)
        if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
            return Response(status_code=204, headers=_preflight_headers(origin))
        response = await call_next(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = ", ".join(whip.CORS_EXPOSED_HEADERS)
        response.headers["Vary"] = "Origin"
        return response

    install_api_contract(app)
    app.mount("/", StaticFiles(directory=WEB_ROOT, html=True), name="web")
    # Outside every route, middleware and authentication: none of them sees a body over the limit.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes, read_timeout_s=settings.http_read_timeout_s)
    app.add_middleware(RequestIds)  # outermost: each request and WebSocket logs with its X-Request-ID, echoed back
    return app
