"""GET /metrics for Prometheus: requests per route, and the state of the services.

Request counts and latencies come from a small ASGI middleware and from the device
endpoints' fast path. /update is the hot path, so a request costs one dictionary
lookup of the path and three additions to plain numbers (`RouteCounts`); they are
turned into Prometheus' counter and histogram when Prometheus scrapes, like
everything else: the recording queue, catalog, GitHub sync and rate limit are
read from the services at scrape time, by custom collectors: nothing is
counted twice and nothing is kept up to date in between.

Each process has its own registry: with several workers, each scrape sees one of
them. # TODO: prometheus-client's multiprocess mode once more than one worker is
deployed; until then run one worker per host, as `rasbot serve` does by default.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
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


class RouteCounts:
    """Requests answered on one route: how many, their seconds, per bucket."""

    __slots__ = ("buckets", "count", "seconds")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        #: Requests per bucket of `_BUCKETS` (the last: slower than all of them).
        self.buckets = [0] * (len(_BUCKETS) + 1)

    def observe(self, seconds: float) -> None:
        """Count one request answered in ``seconds``."""
        self.count += 1
        self.seconds += seconds
        self.buckets[bisect_left(_BUCKETS, seconds)] += 1

    def cumulative(self) -> list[tuple[str, float]]:
        """Prometheus' buckets: requests answered in at most each bound."""
        found: list[tuple[str, float]] = []
        total = 0
        for bound, count in zip(
            (*map(str, _BUCKETS), "+Inf"), self.buckets, strict=True
        ):
            total += count
            found.append((bound, total))
        return found


class Metrics:
    """The registry of one application, and the counts of each route."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.services: Services | None = None
        self._exact: dict[str, RouteCounts] = {}
        self._prefixes: list[tuple[str, RouteCounts]] = []
        self._routes: dict[str, RouteCounts] = {}
        self._other = self.route(OTHER)
        self.registry.register(RoutesCollector(self._routes))
        self.registry.register(ServicesCollector(self))

    def know_routes(self, routes: Iterable[BaseRoute]) -> None:
        """Label the application's routes: exact paths, and templates by prefix."""
        for path in _paths(routes):
            if "{" not in path:
                self._exact[path] = self.route(path)
            else:
                prefix = path[: path.index("{")]
                self._prefixes.append((prefix, self.route(path)))
        # The longest prefix first, so that /dashboard/ beats /.
        self._prefixes.sort(key=lambda item: -len(item[0]))

    def route(self, label: str) -> RouteCounts:
        """The counts labelled ``label``, made on first use."""
        return self._routes.setdefault(label, RouteCounts())

    def counts(self, path: str) -> RouteCounts:
        """The counts of the route serving ``path``."""
        found = self._exact.get(path)
        if found is not None:
            return found
        for prefix, counts in self._prefixes:
            if path.startswith(prefix):
                return counts
        return self._other

    def observe(self, path: str, seconds: float) -> None:
        """Count one request answered on ``path`` in ``seconds``."""
        self.counts(path).observe(seconds)


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
        counts = self.metrics.counts(scope["path"])
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            counts.observe(time.perf_counter() - started)


class RoutesCollector(Collector):
    """Requests per route and their latencies, as counted so far."""

    def __init__(self, routes: dict[str, RouteCounts]) -> None:
        self._routes = routes

    def collect(self) -> Iterator[Metric]:
        """The request counter and the latency histogram, labelled by route."""
        requests = CounterMetricFamily(
            "rasbot_http_requests",
            "HTTP requests answered, by route.",
            labels=["route"],
        )
        latency = HistogramMetricFamily(
            "rasbot_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            labels=["route"],
        )
        for route, counts in sorted(self._routes.items()):
            requests.add_metric([route], counts.count)
            latency.add_metric([route], counts.cumulative(), counts.seconds)
        yield requests
        yield latency


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
