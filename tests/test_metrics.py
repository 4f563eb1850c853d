"""GET /metrics: request counts and latency per route, and the services' state."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from rasbot.metrics import Metrics, RouteCounts
from tests.conftest import services

UPDATE = "/update?channel=16&revision=a02082&serial=00000000abcdef12&version=1.6.2"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def route(name: str, path: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, (("route", path),)


def test_requests_are_counted_and_timed_per_route(client: TestClient) -> None:
    for _ in range(3):
        client.get(UPDATE)
    client.get("/download/1.7.1/RasPlex-RPi2.RP-1.7.1.tar.gz", follow_redirects=False)
    client.get("/no/such/path")

    samples = scrape(client)

    assert samples[route("rasbot_http_requests_total", "/update")] == 3
    assert samples[route("rasbot_http_request_duration_seconds_count", "/update")] == 3
    assert samples[route("rasbot_http_request_duration_seconds_sum", "/update")] > 0
    download = "/download/{tag}/{name}"
    assert samples[route("rasbot_http_requests_total", download)] == 1
    assert samples[route("rasbot_http_requests_total", "other")] == 1
    # Routes not asked yet are there, at zero.
    assert samples[route("rasbot_http_requests_total", "/install")] == 0


def test_every_metric_is_named_for_rasbot(client: TestClient) -> None:
    names = {name for name, _ in scrape(client)}

    assert names
    assert all(name.startswith("rasbot_") for name in names)


def test_services_state_is_read_at_scrape_time(client: TestClient) -> None:
    svc = services(client)
    svc.recorder.dropped = 7

    samples = scrape(client)

    assert samples[("rasbot_recording_rows_dropped_total", ())] == 7
    assert ("rasbot_recording_queue_rows", ()) in samples
    assert samples[("rasbot_catalog_revision", ())] == svc.syncer.catalog.revision
    assert samples[("rasbot_catalog_releases", ())] == 7
    assert 0 <= samples[("rasbot_catalog_age_seconds", ())] < 60
    assert samples[("rasbot_github_syncs_total", (("outcome", "ok"),))] == 1
    assert samples[("rasbot_github_syncs_total", (("outcome", "failed"),))] == 0
    assert samples[("rasbot_github_sync_consecutive_failures", ())] == 0


def test_rate_limit_is_exposed_when_github_reported_one(client: TestClient) -> None:
    limit = services(client).syncer.source.rate_limit
    limit.limit, limit.remaining, limit.reset_at = 5000, 4321, 1_900_000_000.0

    samples = scrape(client)

    assert samples[("rasbot_github_rate_limit_remaining", ())] == 4321
    assert samples[("rasbot_github_rate_limit_limit", ())] == 5000
    assert samples[("rasbot_github_rate_limit_reset_timestamp_seconds", ())] == 1.9e9


def test_failed_syncs_are_counted(make_client: Callable[..., TestClient]) -> None:
    client = make_client()
    svc = services(client)
    svc.settings.releases_file.unlink()  # type: ignore[union-attr]
    client.portal.call(svc.syncer.refresh)

    samples = scrape(client)

    assert samples[("rasbot_github_syncs_total", (("outcome", "failed"),))] == 1
    assert samples[("rasbot_github_sync_consecutive_failures", ())] == 1


def test_each_application_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.know_routes([])

    assert first.registry is not second.registry


def test_latency_buckets_count_requests_at_most_their_bound() -> None:
    counts = RouteCounts()
    for seconds in (0.0005, 0.0007, 0.003, 20.0):
        counts.observe(seconds)

    buckets = dict(counts.cumulative())

    assert buckets["0.0005"] == 1  # a bound holds what took exactly that long
    assert buckets["0.001"] == 2
    assert buckets["0.0025"] == 2
    assert buckets["0.005"] == 3
    assert buckets["10.0"] == 3
    assert buckets["+Inf"] == counts.count == 4
    assert counts.seconds == 0.0005 + 0.0007 + 0.003 + 20.0
