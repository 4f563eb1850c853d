"""Beta images served by this server to whitelisted serials (PROTOCOL.md 2.1, 5)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from rasbot import db, migrate
from rasbot.catalog import build_catalog
from rasbot.cli import main
from rasbot.feeds import update_xml
from rasbot.releasebody import parse_body
from rasbot.selection import Offer
from rasbot.whitelist import Whitelist
from tests import factories
from tests.conftest import rows, services
from tests.serverprocess import ServerProcess

SERIAL = "00000000abcdef12"
STRANGER = "00000000deadbeef"
BETA = "1.9.0b"
FILE = f"RasPlex-RPi2.RP-{BETA}.tar.gz"
CONTENT = random.Random(7).randbytes(10_000)
SIZE = len(CONTENT)
BETA_QUERY = "/update?channel=4&revision=a02082&serial={serial}&version=1.8.0b"


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def beta_release(*, draft: bool = False, file: str = FILE) -> dict[str, Any]:
    """A beta release whose update archive is not on GitHub, only in the beta dir."""
    body = (
        "channel: beta\n\nchanges:\n  - Served from the beta directory\n\n"
        f"update:\n  RPi2:\n    - file: {file}\n    - shasum: {sha1(CONTENT)}\n"
    )
    return {
        "id": 10,
        "tag_name": BETA,
        "name": BETA,
        "draft": draft,
        "prerelease": True,
        "created_at": "2018-09-01T10:00:00Z",
        "published_at": None if draft else "2018-09-01T10:00:00Z",
        "body": body,
        "assets": [],
    }


def offer_of(text: str) -> dict[str, str]:
    """Version and Package attributes of an /update answer ({} for none)."""
    release = ET.fromstring(text).find("Release")
    if release is None:
        return {}
    package = release.find("Package")
    assert package is not None
    return {"version": release.attrib["version"], **package.attrib}


@pytest.fixture
def beta_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "beta"
    directory.mkdir()
    (directory / FILE).write_bytes(CONTENT)
    return directory


@pytest.fixture
def make_beta_client(
    make_client: Callable[..., TestClient], releases_file: Path, beta_dir: Path
) -> Callable[..., TestClient]:
    """The app serving the history plus a beta release, SERIAL whitelisted."""

    def make(*, draft: bool = False, **settings: Any) -> TestClient:
        history = [beta_release(draft=draft), *factories.history()]
        releases_file.write_text(json.dumps(history))
        client = make_client(beta_dir=beta_dir, **settings)
        whitelist = services(client).whitelist
        if SERIAL not in whitelist:  # a second client shares the database
            client.portal.call(whitelist.add, "tester", SERIAL, "test")
        return client

    return make


@pytest.fixture
def beta_client(make_beta_client: Callable[..., TestClient]) -> TestClient:
    return make_beta_client()


def beta_path(name: str = FILE, serial: str = SERIAL) -> str:
    return f"/beta/{serial}/{name}"


# --- the /update feed --------------------------------------------------------


def test_whitelisted_beta_client_gets_the_beta_dir_release(
    beta_client: TestClient,
) -> None:
    response = beta_client.get(BETA_QUERY.format(serial=SERIAL))

    assert response.status_code == 200
    offer = offer_of(response.text)
    assert offer["version"] == BETA
    assert offer["file"] == f"http://testserver{beta_path()}"
    assert offer["fileName"] == FILE
    assert offer["fileHash"] == sha1(CONTENT)

    download = beta_client.get(offer["file"])
    assert download.status_code == 200
    assert sha1(download.content) == offer["fileHash"]


def test_beta_url_uses_the_public_url_and_the_serial_in_lower_case(
    make_beta_client: Callable[..., TestClient],
) -> None:
    client = make_beta_client(public_url="https://updates.example.org")

    response = client.get(BETA_QUERY.format(serial=SERIAL.upper()))

    expected = f"https://updates.example.org/beta/{SERIAL}/{FILE}"
    assert offer_of(response.text)["file"] == expected


def test_channel_4_client_not_whitelisted_gets_stable(beta_client: TestClient) -> None:
    query = "/update?channel=4&revision=a02082&serial={serial}&version=1.6.2"

    response = beta_client.get(query.format(serial=STRANGER))

    assert response.status_code == 200
    offer = offer_of(response.text)
    assert offer["version"] == "1.7.1"
    assert "/beta/" not in offer["file"]


def test_beta_draft_is_served_only_with_the_option(
    make_beta_client: Callable[..., TestClient],
) -> None:
    without = make_beta_client(draft=True)
    assert offer_of(without.get(BETA_QUERY.format(serial=SERIAL)).text) == {}

    with_option = make_beta_client(draft=True, serve_beta_drafts=True)
    offer = offer_of(with_option.get(BETA_QUERY.format(serial=SERIAL)).text)
    assert offer["version"] == BETA
    assert offer["file"].endswith(beta_path())


def test_beta_release_with_its_file_missing_is_a_problem(
    make_beta_client: Callable[..., TestClient], beta_dir: Path
) -> None:
    (beta_dir / FILE).unlink()
    client = make_beta_client()

    offer = offer_of(client.get(BETA_QUERY.format(serial=SERIAL)).text)

    assert offer == {}
    problems = [str(p) for p in services(client).syncer.catalog.problems]
    assert f"{BETA}: RPi2 update: file {FILE!r} is neither an uploaded asset " in (
        " ".join(problems)
    )


def test_beta_dir_files_are_not_offered_under_download(
    beta_client: TestClient,
) -> None:
    response = beta_client.get(f"/download/{BETA}/{FILE}", follow_redirects=False)

    assert response.status_code == 404


# --- the catalog ---------------------------------------------------------------


def test_only_beta_releases_are_served_from_the_beta_dir() -> None:
    stable = {**beta_release(), "id": 11, "name": "2.0.0", "tag_name": "2.0.0"}
    stable["body"] = stable["body"].replace("channel: beta", "channel: stable")

    releases, problems = build_catalog(
        [beta_release(), stable], devices=["RPi2"], in_beta_dir={FILE}.__contains__
    )

    (beta,) = [r for r in releases if r.name == BETA]
    assert beta.update["RPi2"].in_beta_dir
    assert beta.update["RPi2"].file_name == FILE
    (released,) = [r for r in releases if r.name == "2.0.0"]
    assert released.update == {}
    assert [p.release for p in problems] == ["2.0.0"]


def test_without_a_beta_dir_a_missing_asset_is_reported_as_before() -> None:
    releases, problems = build_catalog([beta_release()], devices=["RPi2"])

    assert releases[0].update == {}
    assert "is not among the release's uploaded assets" in str(problems[0])


def test_beta_dir_package_without_a_client_serial_is_refused() -> None:
    releases, _ = build_catalog(
        [beta_release()], devices=["RPi2"], in_beta_dir={FILE}.__contains__
    )
    offer = Offer(releases[0], releases[0].update["RPi2"])

    with pytest.raises(ValueError, match="beta_base"):
        update_xml(offer, "http://testserver")


# --- serving -------------------------------------------------------------------


def test_openapi_schema_describes_the_beta_files(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()

    operation = schema["paths"]["/beta/{serial}/{name}"]["get"]
    assert {"200", "206", "403", "404", "416"} <= set(operation["responses"])


def test_serial_not_whitelisted_is_403(beta_client: TestClient) -> None:
    response = beta_client.get(beta_path(serial=STRANGER))

    assert response.status_code == 403
    assert response.content != CONTENT


def test_whole_file_with_validators(beta_client: TestClient, beta_dir: Path) -> None:
    response = beta_client.get(beta_path())

    assert response.status_code == 200
    assert response.content == CONTENT
    assert response.headers["content-length"] == str(SIZE)
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"].startswith('"')
    assert response.headers["last-modified"].endswith(" GMT")


def test_head_has_the_headers_and_no_body(beta_client: TestClient) -> None:
    got = beta_client.get(beta_path())

    response = beta_client.head(beta_path())

    assert response.status_code == 200
    assert response.content == b""
    for header in ("content-length", "etag", "last-modified", "accept-ranges"):
        assert response.headers[header] == got.headers[header]


@pytest.mark.parametrize(
    ("range_header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=-10", SIZE - 10, SIZE - 1),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=9990-", 9990, SIZE - 1),
        ("bytes=5000-99999999", 5000, SIZE - 1),
        ("bytes=0-0", 0, 0),
    ],
)
def test_single_range_is_206(
    beta_client: TestClient, range_header: str, first: int, last: int
) -> None:
    response = beta_client.get(beta_path(), headers={"Range": range_header})

    assert response.status_code == 206
    assert response.content == CONTENT[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{SIZE}"
    assert response.headers["content-length"] == str(last + 1 - first)


@pytest.mark.parametrize("range_header", [f"bytes={SIZE}-", "bytes=20000-20010"])
def test_unsatisfiable_range_is_416(beta_client: TestClient, range_header: str) -> None:
    response = beta_client.get(beta_path(), headers={"Range": range_header})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{SIZE}"


@pytest.mark.parametrize(
    "range_header", ["bytes=0-9,20-29", "bytes=-5, 100-200, 300-", "items=0-9"]
)
def test_several_ranges_or_another_unit_get_the_whole_file(
    beta_client: TestClient, range_header: str
) -> None:
    response = beta_client.get(beta_path(), headers={"Range": range_header})

    assert response.status_code == 200
    assert response.content == CONTENT
    assert "content-range" not in response.headers


def test_range_with_a_stale_if_range_gets_the_whole_file(
    beta_client: TestClient,
) -> None:
    headers = {"Range": "bytes=100-", "If-Range": '"an-old-etag"'}

    response = beta_client.get(beta_path(), headers=headers)

    assert response.status_code == 200
    assert response.content == CONTENT


def test_range_with_the_current_etag_resumes(beta_client: TestClient) -> None:
    etag = beta_client.head(beta_path()).headers["etag"]

    response = beta_client.get(
        beta_path(), headers={"Range": "bytes=100-", "If-Range": etag}
    )

    assert response.status_code == 206
    assert response.content == CONTENT[100:]


def test_downloads_from_byte_0_are_counted_once_each(beta_client: TestClient) -> None:
    beta_client.get(beta_path())  # counted
    beta_client.head(beta_path())
    beta_client.get(beta_path(), headers={"Range": "bytes=5000-"})  # resumed
    beta_client.get(beta_path(), headers={"Range": "bytes=-10"})
    beta_client.get(beta_path(), headers={"Range": f"bytes={SIZE}-"})  # 416
    beta_client.get(beta_path(), headers={"Range": "bytes=0-99"})  # counted
    beta_client.get(beta_path(serial=STRANGER))  # 403

    recorded = rows(beta_client, db.downloads)

    assert len(recorded) == 2
    first = recorded[0]
    assert (first["release_id"], first["version"], first["asset"]) == (10, BETA, FILE)
    assert (first["device"], first["kind"]) == ("RPi2", "update")
    assert first["address"] == "testclient"


def test_file_no_release_names_is_served_and_counted_as_release_0(
    beta_client: TestClient, beta_dir: Path
) -> None:
    (beta_dir / "scratch.img.gz").write_bytes(b"image")

    response = beta_client.get(beta_path("scratch.img.gz"))

    assert response.status_code == 200
    assert response.content == b"image"
    recorded = rows(beta_client, db.downloads)
    assert [(r["release_id"], r["asset"]) for r in recorded] == [(0, "scratch.img.gz")]


def test_no_beta_dir_configured_is_404(client: TestClient) -> None:
    client.portal.call(services(client).whitelist.add, "tester", SERIAL, "test")

    assert client.get(beta_path()).status_code == 404


# --- `rasbot beta add` -------------------------------------------------------


def beta_add(beta_dir: Path | None, *args: str) -> Any:
    env = {"RASBOT_BETA_DIR": str(beta_dir)} if beta_dir else {}
    return CliRunner(env=env).invoke(main, ["beta", "add", *args])


def test_beta_add_prints_the_body_section(beta_dir: Path) -> None:
    result = beta_add(beta_dir, FILE)

    assert result.exit_code == 0, result.output
    body = parse_body(f"channel: beta\n\n{result.stdout}")
    (package,) = body.packages
    assert (package.device, package.kind, package.file) == ("RPi2", "update", FILE)
    assert package.checksum == sha1(CONTENT)
    assert hashlib.md5(CONTENT).hexdigest() in result.stdout


def test_beta_add_install_image_gets_md5_and_given_device(beta_dir: Path) -> None:
    (beta_dir / "image.img.gz").write_bytes(CONTENT)

    result = beta_add(beta_dir, str(beta_dir / "image.img.gz"), "--device", "RPi")

    assert result.exit_code == 0, result.output
    (package,) = parse_body(f"channel: beta\n\n{result.stdout}").packages
    assert (package.device, package.kind) == ("RPi", "install")
    assert package.checksum == hashlib.md5(CONTENT).hexdigest()


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["elsewhere.tar.gz"], 1, "is not a file in the beta directory"),
        (["../beta/" + FILE], 1, "is not a file in the beta directory"),
        (["notes.txt"], 2, "pass --kind"),
        (["notes.txt", "--kind", "update"], 2, "pass --device"),
    ],
)
def test_beta_add_refuses_with_a_sentence(
    beta_dir: Path, args: list[str], code: int, says: str
) -> None:
    (beta_dir / "notes.txt").write_text("no device here")

    result = beta_add(beta_dir, *args)

    assert result.exit_code == code
    assert says in result.stderr


def test_beta_add_needs_the_beta_dir_setting(beta_dir: Path) -> None:
    result = beta_add(None, FILE)

    assert result.exit_code == 1
    assert "RASBOT_BETA_DIR is not set" in result.stderr


# --- a real server: hostile names and memory ----------------------------------

BIG = "RasPlex-RPi2.RP-9.9.9b.img.gz"
GIB = 1 << 30


async def _whitelisted(database_url: str, serial: str) -> None:
    engine = db.create_engine(database_url)
    try:
        await migrate.upgrade(engine)
        await Whitelist(engine).add("tester", serial, "test")
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def beta_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``rasbot serve`` with a beta dir full of traps, SERIAL whitelisted."""
    root = tmp_path_factory.mktemp("beta-server")
    directory = root / "beta"
    directory.mkdir()
    (directory / FILE).write_bytes(CONTENT)
    (directory / ".hidden.tar.gz").write_bytes(b"hidden")
    (directory / "sub").mkdir()
    (directory / "sub" / "nested.tar.gz").write_bytes(b"nested")
    (directory / "passwd-link").symlink_to("/etc/passwd")
    (directory / "root-link").symlink_to("/")
    (directory / "secret-link").symlink_to(root / "secret.txt")
    (root / "secret.txt").write_text("root:secret")
    with (directory / BIG).open("wb") as big:
        big.truncate(GIB)  # sparse: a gibibyte of zeros that takes no disk

    releases = root / "releases.json"
    releases.write_text(json.dumps([beta_release(), *factories.history()]))
    database_url = f"sqlite+aiosqlite:///{root / 'rasbot.db'}"
    asyncio.run(_whitelisted(database_url, SERIAL))
    env = {
        "RASBOT_DATABASE_URL": database_url,
        "RASBOT_RELEASES_FILE": str(releases),
        "RASBOT_GITHUB_POLL_SECONDS": "0",
        "RASBOT_BETA_DIR": str(directory),
        "RASBOT_CRASH_DIR": str(root / "crashes"),
    }
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("RASBOT_")]:
            patch.delenv(key)
        server = ServerProcess(env, root / "server.log")
    with server:
        yield server


def raw_get(server: ServerProcess, target: str) -> httpx.Response:
    """GET ``target`` exactly as written: httpx would resolve "..", for one."""
    with httpx.Client(timeout=10) as client:
        return client.get(server.url, extensions={"target": target.encode()})


HOSTILE_NAMES = [
    "..",
    "../../../../etc/passwd",
    "..%2f..%2f..%2f..%2fetc%2fpasswd",
    "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "%2e%2e",
    ".%2e/.%2e/.%2e/etc/passwd",
    "....//....//....//etc/passwd",
    "..%5c..%5c..%5cetc%5cpasswd",
    "..\\..\\..\\etc\\passwd",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "C:%5cWindows%5cwin.ini",
    "file:%2f%2f%2fetc%2fpasswd",
    "%252e%252e%252fsecret.txt",
    "%c0%ae%c0%ae%c0%afsecret.txt",
    "..%2fsecret.txt",
    "passwd-link",
    "secret-link",
    "root-link",
    "sub",
    "sub%2fnested.tar.gz",
    ".hidden.tar.gz",
    f"{FILE}%00.txt",
    "%00",
    f"{FILE}%0a",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_names_outside_the_beta_dir_are_404(
    beta_server: ServerProcess, name: str
) -> None:
    response = raw_get(beta_server, f"/beta/{SERIAL}/{name}")

    assert response.status_code == 404, (name, response.text)
    assert b"root:" not in response.content


@pytest.mark.slow
def test_real_server_serves_the_plain_name(beta_server: ServerProcess) -> None:
    # The control for the table above: the same request with a good name works.
    response = raw_get(beta_server, f"/beta/{SERIAL}/{FILE}")

    assert response.status_code == 200
    assert response.content == CONTENT


@pytest.mark.slow
def test_a_gibibyte_is_streamed_in_constant_memory(
    beta_server: ServerProcess,
) -> None:
    url = f"{beta_server.url}{beta_path(BIG)}"
    httpx.get(url, headers={"Range": "bytes=0-65535"}, timeout=10)  # warm up
    before = peak = beta_server.rss_bytes()

    received = 0
    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(GIB)
        for chunk in response.iter_raw(1 << 20):
            received += len(chunk)
            peak = max(peak, beta_server.rss_bytes())

    assert received == GIB
    assert peak - before < 64 << 20, f"grew by {(peak - before) >> 20} MiB"
