"""The HTTP endpoints as the updater and the installer use them (PROTOCOL.md 1-5)."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from rasbot import db
from tests import factories
from tests.conftest import rows, services
from tests.factories import DOWNLOAD, sha1

UPDATER_QUERY = (
    "/update?build&channel=16&distribution=rasplex&revision=a02082"
    "&serial=00000000abcdef12&version={version}"
)


def offered(response_text: str) -> tuple[str | None, dict[str, str]]:
    """The offered version and the Package attributes of an /update answer."""
    root = ET.fromstring(response_text)
    release = root.find("Release")
    if release is None:
        assert root.attrib["size"] == "0"
        return None, {}
    assert root.attrib["size"] == "1"
    package = release.find("Package")
    assert package is not None
    return release.attrib["version"], package.attrib


def test_root_answers_pong(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.text == "pong"


def test_updater_request_gets_highest_newer_release(client: TestClient) -> None:
    response = client.get(
        UPDATER_QUERY.format(version="1.0.3"), headers={"X-Plex-Token": "tok"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    version, package = offered(response.text)
    assert version == "1.7.1"
    assert package["fileHash"] == sha1("RasPlex-RPi2.RP-1.7.1.tar.gz")
    assert package["fileName"] == "RasPlex-RPi2.RP-1.7.1.tar.gz"
    assert package["file"] == (
        "http://testserver/download/1.7.1/RasPlex-RPi2.RP-1.7.1.tar.gz"
    )


def test_up_to_date_build_is_offered_nothing(client: TestClient) -> None:
    response = client.get(UPDATER_QUERY.format(version="1.7.1.123-e23a7eef"))

    assert response.status_code == 200
    assert offered(response.text) == (None, {})


def test_developer_build_is_offered_nothing(client: TestClient) -> None:
    response = client.get(UPDATER_QUERY.format(version="wip"))

    assert offered(response.text) == (None, {})


def test_missing_parameters_mean_stable_rpi_unknown_version(client: TestClient) -> None:
    response = client.get("/update")

    assert response.status_code == 200
    version, package = offered(response.text)
    assert version == "1.7.1"
    assert package["fileName"] == "RasPlex-RPi.RP-1.7.1.tar.gz"


def test_repeated_parameter_last_one_counts(client: TestClient) -> None:
    response = client.get("/update?version=0.1&channel=2&version=1.7.1")

    assert offered(response.text) == (None, {})


@pytest.mark.parametrize(
    "query",
    ["version=" + "1" * 257, "serial=abc%00def", "revision=a0%0a2082"],
)
def test_impossible_parameter_values_are_400_with_reason(
    client: TestClient, query: str
) -> None:
    response = client.get(f"/update?{query}")

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text.strip()
    assert "\n" not in response.text.strip()


def test_beta_channel_needs_whitelisted_serial(client: TestClient) -> None:
    query = "/update?channel=4&revision=a020d3&serial=00000000abcdef12&version=1.7.1"
    assert offered(client.get(query).text) == (None, {})

    whitelist = services(client).whitelist
    client.portal.call(whitelist.add, "tester", "00000000ABCDEF12", "test")
    version, package = offered(client.get(query).text)

    assert version == "1.8.0b"
    assert package["fileName"] == "RasPlex-RPi3bplus.RP-1.8.0b.tar.gz"


def test_update_check_is_recorded_without_the_token(client: TestClient) -> None:
    client.get(UPDATER_QUERY.format(version="1.0.3"), headers={"X-Plex-Token": "tok"})
    client.get("/update?X-Plex-Token=secret-token&version=1.0.3")

    recorded = rows(client, db.update_checks)

    assert [r["serial"] for r in recorded] == ["00000000abcdef12", None]
    first = recorded[0]
    assert first["revision"] == "a02082"
    assert first["device"] == "RPi2"
    assert first["client_version"] == "1.0.3"
    assert first["channel"] == "stable"
    assert first["address"] == "testclient"
    assert first["offered"] == "1.7.1"
    assert all("secret-token" not in str(value) for value in recorded[1].values())


def test_updated_is_recorded_and_thanked(client: TestClient) -> None:
    response = client.get(
        "/updated?channel=16&fromVersion=1.0.3&revision=a02082"
        "&serial=00000000abcdef12&version=1.7.1"
    )

    assert response.status_code == 200
    assert response.text == "Thanks for updating"
    [row] = rows(client, db.updates_staged)
    assert (row["from_version"], row["version"], row["device"]) == (
        "1.0.3",
        "1.7.1",
        "RPi2",
    )


def test_devices_lists_installable_devices_in_configured_order(
    client: TestClient,
) -> None:
    response = client.get("/devices")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    # RPi3bplus has images only in the beta release: the installer never sees it.
    assert response.json() == [
        {"id": "RPi2", "name": "Raspberry Pi 2 / 3"},
        {"id": "RPi", "name": "Raspberry Pi 1 / Zero"},
    ]


def test_install_lists_newest_stable_first_then_by_version(client: TestClient) -> None:
    response = client.get("/install?platform=windows&device=rpi2")

    assert response.status_code == 200
    entries = response.json()
    assert [e["version"] for e in entries] == [
        "1.7.1",
        "1.7.0-rc1",
        "1.6.3",
        "1.6.2",
        "1.0.3",
    ]
    first = entries[0]
    assert first["channel"] == "stable"
    assert first["autoupdate"] is True
    assert first["time"] == "2017-07-01T10:00:00+00:00"
    assert first["notes"] == "A change\nAnother change"
    assert first["install_url"] == f"{DOWNLOAD}/1.7.1/RasPlex-RPi2.RP-1.7.1.img.gz"
    assert first["update_sum"] == sha1("RasPlex-RPi2.RP-1.7.1.tar.gz")


def test_old_installer_without_device_gets_rpi(client: TestClient) -> None:
    entries = client.get("/install?platform=linux").json()

    assert entries[0]["install_url"].endswith("RasPlex-RPi.RP-1.7.1.img.gz")
    assert "1.7.0-rc1" not in [e["version"] for e in entries]


def test_install_unknown_device_is_empty_list(client: TestClient) -> None:
    response = client.get("/install?device=Commodore64")

    assert response.status_code == 200
    assert response.json() == []


def test_install_is_recorded_per_platform(client: TestClient) -> None:
    client.get("/install?platform=OSX&device=RPi2")
    client.get("/install?platform=amiga")

    recorded = rows(client, db.installs)

    assert [(r["platform"], r["device"]) for r in recorded] == [
        ("osx", "RPi2"),
        ("unknown", "RPi"),
    ]


def test_tracked_download_redirects_and_counts_get_only(client: TestClient) -> None:
    path = "/download/1.7.1/RasPlex-RPi2.RP-1.7.1.tar.gz"

    response = client.get(path, follow_redirects=False)
    head = client.head(path, follow_redirects=False)

    assert response.status_code == 302
    assert response.headers["location"] == (
        f"{DOWNLOAD}/1.7.1/RasPlex-RPi2.RP-1.7.1.tar.gz"
    )
    assert response.headers["cache-control"] == "no-store"
    assert head.status_code == 302
    [row] = rows(client, db.downloads)
    assert (row["version"], row["device"], row["kind"]) == ("1.7.1", "RPi2", "update")


@pytest.mark.parametrize(
    "path", ["/download/9.9.9/x.tar.gz", "/download/1.7.1/RasPlex-nope.tar.gz"]
)
def test_unknown_download_is_404(client: TestClient, path: str) -> None:
    assert client.get(path, follow_redirects=False).status_code == 404


def test_track_downloads_all_gives_installer_tracked_urls(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(track_downloads="all", public_url="https://up.example.org")

    first = client.get("/install?device=RPi2").json()[0]

    assert first["install_url"] == (
        "https://up.example.org/download/1.7.1/RasPlex-RPi2.RP-1.7.1.img.gz"
    )


def test_track_downloads_none_gives_updater_github_urls(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(track_downloads="none")

    _, package = offered(client.get("/update?version=1.0.3").text)

    assert package["file"] == f"{DOWNLOAD}/1.7.1/RasPlex-RPi.RP-1.7.1.tar.gz"


def test_forwarded_for_believed_only_from_trusted_proxy(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(trusted_proxies="127.0.0.0/8")
    headers = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}

    # The test client's peer is "testclient", not a trusted address.
    client.get("/install", headers=headers)

    assert rows(client, db.installs)[0]["address"] == "testclient"


def test_openapi_schema_describes_device_endpoints(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    for path in ("/update", "/updated", "/devices", "/install"):
        assert "get" in schema["paths"][path]
    names = {p["name"] for p in schema["paths"]["/update"]["get"]["parameters"]}
    assert {"channel", "serial", "revision", "version"} <= names


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/update?build&channel=16&revision=a02082&serial=00000000abcdef12&version=1.0.3",
        "/update?channel=4&version=wip",
        "/update?version=" + "9" * 300,
        "/updated?version=1.7.1",
        "/devices",
        "/install?platform=linux&device=rpi2",
    ],
)
def test_framework_routes_answer_as_the_fast_path(
    client: TestClient, path: str
) -> None:
    # The same answers through FastAPI's own routing, which the schema describes.
    framework = TestClient(client.app.app)  # type: ignore[attr-defined]

    fast, slow = client.get(path), framework.get(path)

    assert (fast.status_code, fast.text) == (slow.status_code, slow.text)
    assert fast.headers["content-type"] == slow.headers["content-type"]


@pytest.mark.parametrize(
    "path",
    [UPDATER_QUERY.format(version="1.0.3"), "/devices", "/install?device=RPi2"],
)
def test_device_endpoints_are_503_until_a_catalog_is_loaded(
    make_client: Callable[..., TestClient], releases_file: Path, path: str
) -> None:
    history = releases_file.read_text()
    releases_file.unlink()  # the first sync fails: no catalog, none stored
    client = make_client()
    framework = TestClient(client.app.app)  # type: ignore[attr-defined]

    for answered in (client.get(path), framework.get(path)):
        assert answered.status_code == 503
        assert answered.text == "no release catalog loaded yet\n"
    assert client.get("/healthz").status_code == 503
    assert client.get("/").text == "pong"

    releases_file.write_text(history)
    client.portal.call(services(client).syncer.refresh)

    assert client.get(path).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_answers_follow_a_new_catalog(client: TestClient, releases_file: Path) -> None:
    assert offered(client.get("/update?version=1.7.1").text) == (None, {})
    history = [
        factories.release(10, "1.8.1", published="2018-09-01T00:00:00Z"),
        *factories.history(),
    ]
    releases_file.write_text(json.dumps(history))

    client.portal.call(services(client).syncer.refresh)

    assert offered(client.get("/update?version=1.7.1").text)[0] == "1.8.1"
    assert client.get("/install?device=RPi2").json()[0]["version"] == "1.8.1"


def test_unchanged_release_file_is_not_read_again(
    client: TestClient, releases_file: Path
) -> None:
    syncer = services(client).syncer

    first = client.portal.call(syncer.refresh)
    releases_file.write_text(releases_file.read_text() + " ")
    second = client.portal.call(syncer.refresh)

    assert first.not_modified
    assert not second.not_modified and not second.changed


def test_the_server_imports_no_library_it_does_not_use_yet() -> None:
    # Alembic, Jinja2 and httpx cost every server process memory for good: they
    # load when a migration, a dashboard visit or a GitHub source needs them.
    code = "import sys, rasbot.app, rasbot.cli; print(' '.join(sorted(sys.modules)))"
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()

    assert not {"alembic", "mako", "jinja2", "httpx", "matplotlib"} & set(found)
