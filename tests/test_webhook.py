"""POST /github/webhook with GitHub's real payloads, and GET /healthz."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests import factories
from tests.conftest import services

SECRET = "webhook-secret-for-tests"
FIXTURES = Path(__file__).parents[2] / "shared" / "fixtures" / "github-webhooks"
RELEASE_EVENTS = [
    "release-published.payload.json",
    "release-edited.payload.json",
    "release-deleted.payload.json",
    "release-prereleased.payload.json",
    "release-released.json",
    "release-created.payload.json",
]

needs_fixtures = pytest.mark.skipif(
    not FIXTURES.is_dir(), reason="shared/ fixtures are not beside the checkout"
)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def deliver(
    client: TestClient, event: str, body: bytes, signature: str | None
) -> tuple[int, str]:
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": "d-1"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    response = client.post("/github/webhook", content=body, headers=headers)
    return response.status_code, response.text


@pytest.fixture
def hooked(make_client: Callable[..., TestClient]) -> TestClient:
    # The recorded payloads come from GitHub's example repository.
    return make_client(
        github_webhook_secret=SECRET, github_repo="Codertocat/Hello-World"
    )


def test_webhook_is_off_without_a_secret(client: TestClient) -> None:
    body = b'{"zen": "x"}'
    assert deliver(client, "ping", body, sign(body))[0] == 404


@needs_fixtures
def test_ping_is_answered(hooked: TestClient) -> None:
    body = (FIXTURES / "ping-payload.json").read_bytes()

    status, _ = deliver(hooked, "ping", body, sign(body))

    assert status == 200


@needs_fixtures
@pytest.mark.parametrize("fixture", RELEASE_EVENTS)
def test_release_events_start_a_refresh(hooked: TestClient, fixture: str) -> None:
    body = (FIXTURES / fixture).read_bytes()
    before = services(hooked).syncer.status.refreshes.get("webhook", 0)

    status, text = deliver(hooked, "release", body, sign(body))

    assert status == 202, text
    wait_for(
        lambda: services(hooked).syncer.status.refreshes.get("webhook", 0) > before
    )


@needs_fixtures
@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "sha256=",
        "sha1=0123456789abcdef0123456789abcdef01234567",
        sign(b"another body"),
        sign(b"", secret="wrong"),
    ],
)
def test_missing_or_wrong_signature_is_401(
    hooked: TestClient, signature: str | None
) -> None:
    body = (FIXTURES / "release-published.payload.json").read_bytes()

    status, _ = deliver(hooked, "release", body, signature)

    assert status == 401
    assert services(hooked).syncer.status.refreshes.get("webhook", 0) == 0


@needs_fixtures
def test_body_altered_after_signing_is_401(hooked: TestClient) -> None:
    body = (FIXTURES / "release-published.payload.json").read_bytes()
    signature = sign(body)
    # Same JSON, different bytes: a re-serialised body must not pass.
    altered = json.dumps(json.loads(body)).encode()

    assert altered != body
    assert deliver(hooked, "release", altered, signature)[0] == 401


def test_signed_non_json_body_is_400(hooked: TestClient) -> None:
    body = b"not json"
    assert deliver(hooked, "release", body, sign(body))[0] == 400


def test_event_for_another_repository_is_ignored(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(github_webhook_secret=SECRET)
    body = json.dumps(
        {"action": "published", "repository": {"full_name": "someone/else"}}
    ).encode()

    status, text = deliver(client, "release", body, sign(body))

    assert status == 200 and "another repository" in text


def test_webhook_makes_a_new_release_servable(
    make_client: Callable[..., TestClient], releases_file: Path
) -> None:
    client = make_client(github_webhook_secret=SECRET)
    history = [
        factories.release(10, "1.8.1", published="2018-09-01T00:00:00Z"),
        *factories.history(),
    ]
    releases_file.write_text(json.dumps(history))
    body = json.dumps(
        {"action": "published", "repository": {"full_name": "RasPlex/RasPlex"}}
    ).encode()

    status, _ = deliver(client, "release", body, sign(body))

    assert status == 202
    wait_for(lambda: "1.8.1" in client.get("/update?version=1.7.1").text)


def test_healthz_reports_catalog_sync_and_database(client: TestClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert report["catalog"]["revision"] == 1
    assert report["catalog"]["releases"] == len(factories.history())
    assert report["sync"]["last_error"] is None
    assert report["database"]["reachable"] is True
    assert report["recording"]["dropped"] == 0


def test_healthz_is_503_without_any_catalog(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    client = make_client(releases_file=tmp_path / "missing.json")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "missing.json" in response.json()["sync"]["last_error"]


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
