"""GET /metrics for Prometheus: requests per route, and the state of the services.

Request counts and latencies come from a small ASGI middleware. /update is the hot
path, so the middleware does per request one dictionary lookup of the path, one
counter increment and one histogram observation, on children labelled once at
start-up. Everything else (recording queue, catalog, GitHub sync and rate limit) is
read from the services when Prometheus scrapes, by a custom collector: nothing is
counted twice and nothing is kept up to date in between.

Each process has its own registry: with several workers, each scrape sees one of
them. # TODO: prometheus-client's multiprocess mode once more than one worker is
deployed; until then run one worker per host, as `rasbot serve` does by default.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from rasbot import __version__

if TYPE_CHECKING:
    from rasbot.services import Services

router = APIRouter()

#: Label of requests for paths no route serves, so that scanners cannot make
#: a label per path they try.
OTHER = "other"
# Device answers take about a millisecond; the dashboard's charts a second.
_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Metrics:
    """The registry of one application, and the children of each route."""

    def __init__(self) -> None:
        # The *_created series only repeat when a counter first counted.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        self.services: Services | None = None
        self._requests = Counter(
            "rasbot_http_requests",
            "HTTP requests answered, by route.",
            ["route"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "rasbot_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self._exact: dict[str, tuple[Any, Any]] = {}
        self._prefixes: list[tuple[str, tuple[Any, Any]]] = []
        self._other = self._children(OTHER)
        self.registry.register(ServicesCollector(self))

    def know_routes(self, routes: Iterable[BaseRoute]) -> None:
        """Label the application's routes: exact paths, and templates by prefix."""
        for path in _paths(routes):
            if "{" not in path:
                self._exact[path] = self._children(path)
            else:
                prefix = path[: path.index("{")]
                self._prefixes.append((prefix, self._children(path)))
        # The longest prefix first, so that /dashboard/ beats /.
        self._prefixes.sort(key=lambda item: -len(item[0]))

    def _children(self, route: str) -> tuple[Any, Any]:
        return self._requests.labels(route), self._latency.labels(route)

    def children(self, path: str) -> tuple[Any, Any]:
        """The (counter, histogram) of the route serving ``path``."""
        found = self._exact.get(path)
        if found is not None:
            return found
        for prefix, children in self._prefixes:
            if path.startswith(prefix):
                return children
        return self._other

    def observe(self, path: str, seconds: float) -> None:
        """Count one request answered on ``path`` in ``seconds``."""
        counter, histogram = self.children(path)
        counter.inc()
        histogram.observe(seconds)


def _paths(routes: Iterable[BaseRoute]) -> Iterator[str]:
    """The path templates of ``routes``, those of included routers too."""
    for route in routes:
        path = getattr(route, "path", None)
        if isinstance(path, str):
            yield path
        # FastAPI keeps an included router whole (its routes carry no prefix here).
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _paths(included.routes)


class MetricsMiddleware:
    """Counts and times every HTTP request by route."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counter, histogram = self.metrics.children(scope["path"])
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            counter.inc()
            histogram.observe(time.perf_counter() - started)


class ServicesCollector(Collector):
    """The services' state, read at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        """Every metric family about the running services."""
        yield InfoMetricFamily(
            "rasbot_build", "rasbot's version.", {"version": __version__}
        )
        svc = self._metrics.services
        if svc is None:
            return
        yield from _recording(svc)
        yield from _catalog(svc)
        yield from _sync(svc)


def _gauge(name: str, doc: str, value: float | None) -> Iterator[Metric]:
    if value is not None:
        yield GaugeMetricFamily(name, doc, value=value)


def _recording(svc: Services) -> Iterator[Metric]:
    recorder = svc.recorder
    yield GaugeMetricFamily(
        "rasbot_recording_queue_rows",
        "Recorded requests waiting to be written.",
        value=recorder.pending,
    )
    for name, doc, value in (
        ("written", "Recorded rows written to the database.", recorder.written),
        (
            "dropped",
            "Recorded rows dropped because the queue was full.",
            recorder.dropped,
        ),
    ):
        yield CounterMetricFamily(f"rasbot_recording_rows_{name}", doc, value=value)
    yield CounterMetricFamily(
        "rasbot_recording_write_failures",
        "Batch writes the database refused.",
        value=recorder.failures,
    )


def _catalog(svc: Services) -> Iterator[Metric]:
    catalog = svc.syncer.catalog
    yield GaugeMetricFamily(
        "rasbot_catalog_revision", "Revision of the catalog served.", catalog.revision
    )
    yield GaugeMetricFamily(
        "rasbot_catalog_releases", "Releases in the catalog.", len(catalog.releases)
    )
    yield GaugeMetricFamily(
        "rasbot_catalog_problems", "Problems in the catalog.", len(catalog.problems)
    )
    if catalog.fetched_at is not None:
        yield from _gauge(
            "rasbot_catalog_age_seconds",
            "Seconds since the catalog was last fetched from its source.",
            time.time() - catalog.fetched_at.timestamp(),
        )


def _sync(svc: Services) -> Iterator[Metric]:
    status, limit = svc.syncer.status, svc.syncer.source.rate_limit
    syncs = CounterMetricFamily(
        "rasbot_github_syncs",
        "Refreshes of the catalog, by outcome.",
        labels=["outcome"],
    )
    for outcome in sorted({"ok", "not_modified", "failed", *status.outcomes}):
        syncs.add_metric([outcome], status.outcomes.get(outcome, 0))
    yield syncs
    yield GaugeMetricFamily(
        "rasbot_github_sync_consecutive_failures",
        "Refreshes failed in a row.",
        value=status.consecutive_failures,
    )
    last = status.last_success
    yield from _gauge(
        "rasbot_github_last_success_timestamp_seconds",
        "When the catalog was last refreshed successfully.",
        last.timestamp() if last else None,
    )
    yield from _gauge(
        "rasbot_github_rate_limit_remaining",
        "Requests GitHub still allows until the reset.",
        limit.remaining,
    )
    yield from _gauge(
        "rasbot_github_rate_limit_limit", "GitHub's request quota.", limit.limit
    )
    yield from _gauge(
        "rasbot_github_rate_limit_reset_timestamp_seconds",
        "When GitHub's quota resets.",
        limit.reset_at,
    )


def metrics_of(request: Request) -> Metrics:
    """The application's metrics, set up by `rasbot.app.create_app`."""
    found: Metrics = request.app.state.metrics
    return found


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
async def metrics(request: Request) -> Response:
    """Every metric in Prometheus' text format."""
    body = generate_latest(metrics_of(request).registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
