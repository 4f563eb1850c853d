"""The ASGI application: routes, error handling and the services' lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from rasbot import (
    __version__,
    beta,
    crashupload,
    devicefeeds,
    health,
    logconfig,
    rolloutweb,
    statsweb,
    webhook,
)
from rasbot import metrics as metrics_
from rasbot.chat import events as chat_events
from rasbot.services import Services
from rasbot.settings import Settings, load_settings

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None) -> devicefeeds.DeviceEndpoints:
    """The application; its services start with the ASGI lifespan.

    The device endpoints are answered in front of the framework, which serves
    everything else.
    """
    settings = settings or load_settings()
    # Each server worker process builds its own app: configure its logging here.
    logconfig.configure(settings.log_format, settings.log_level)
    app = _framework_app(settings)
    metrics: metrics_.Metrics = app.state.metrics

    def failed(path: str, exc: Exception) -> None:
        log.error("request.failed", path=path, exc_info=exc)

    return devicefeeds.DeviceEndpoints(
        app, lambda: app.state.services, metrics.observe, failed
    )


def _framework_app(settings: Settings) -> FastAPI:
    metrics = metrics_.Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = Services.build(settings)
        app.state.services = svc
        metrics.services = svc
        await svc.start()
        log.info("server.started", catalog_revision=svc.syncer.catalog.revision)
        try:
            yield
        finally:
            await svc.close()

    app = FastAPI(
        title="rasbot",
        version=__version__,
        summary="Release server of the RasPlex distribution.",
        lifespan=lifespan,
    )
    app.include_router(devicefeeds.router)
    app.include_router(health.router)
    app.include_router(webhook.router)
    app.include_router(chat_events.router)
    app.include_router(beta.router)
    app.include_router(crashupload.router)
    app.include_router(statsweb.router)
    app.include_router(rolloutweb.router)
    app.include_router(metrics_.router)
    app.state.metrics = metrics
    metrics.know_routes(app.routes)
    app.add_middleware(metrics_.MetricsMiddleware, metrics=metrics)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
    return app


async def _http_error(request: Request, exc: Exception) -> PlainTextResponse:
    # Clients read any non-200 as "no update"; a one-line reason shows in logs.
    assert isinstance(exc, StarletteHTTPException)
    return PlainTextResponse(
        f"{exc.detail}\n", status_code=exc.status_code, headers=exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> PlainTextResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    return PlainTextResponse(f"{where}: {first.get('msg', 'invalid')}\n", 422)


async def _server_error(request: Request, exc: Exception) -> PlainTextResponse:
    log.error("request.failed", path=request.url.path, exc_info=exc)
    return PlainTextResponse("internal error\n", status_code=500)
