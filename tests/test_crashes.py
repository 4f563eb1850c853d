"""POST /crashes, the stored dumps, their queries and their removal (PROTOCOL.md 6)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import re
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from starlette.testclient import TestClient

from rasbot import crashes, db
from rasbot.crashform import DumpDecoder, FormError, body_limit
from tests.conftest import rows, services

QUERY = (
    "/crashes?version=1.8.0b.148-573b6d73&platform=RaspberryPi"
    "&submitter_version=2&serial=00000000ABCDEF12&revision=a02082"
    "&uuid=b1507f0c-82e4-42b2-81c8-4bf382c50ee0&serverUuid=server-1"
)
FORM_TYPE = b"application/x-www-form-urlencoded"
FORM = {"Content-Type": FORM_TYPE.decode()}
ID = re.compile(f"[{crashes.PUBLIC_ID_ALPHABET}]{{8}}")


def minidump(size: int = 20_000, seed: int = 1) -> bytes:
    """Bytes shaped like a minidump: the MDMP header, then anything."""
    header = b"MDMP" + struct.pack("<HHIII", 0xA793, 0, 12, 32, 0)
    return header + random.Random(seed).randbytes(size - len(header))


def xbmc_encode(text: str) -> str:
    """Percent-encode as the updater's CURL::Encode does (lower-case hex)."""
    return re.sub(r"[^A-Za-z0-9\-_.!()]", lambda m: f"%{ord(m.group()):02x}", text)


def form(dump: bytes) -> str:
    """The body the updater posts."""
    return "dumpfileb64=" + xbmc_encode(base64.b64encode(dump).decode())


def post(client: TestClient, body: Any, query: str = QUERY) -> Any:
    return client.post(query, content=body, headers=FORM)


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def crash_dir(tmp_path: Path) -> Path:
    return tmp_path / "crashes"  # where make_settings points RASBOT_CRASH_DIR


# --- storing -------------------------------------------------------------------


def test_minidump_is_stored_and_its_id_is_the_whole_answer(
    client: TestClient, crash_dir: Path
) -> None:
    dump = minidump()

    response = post(client, form(dump))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert ID.fullmatch(response.text)
    (row,) = rows(client, db.crashes)
    assert row["public_id"] == response.text
    assert (row["serial"], row["revision"], row["device"]) == (
        "00000000abcdef12",
        "a02082",
        "RPi2",
    )
    assert (row["version"], row["platform"], row["submitter_version"]) == (
        "1.8.0b.148-573b6d73",
        "RaspberryPi",
        "2",
    )
    assert (row["uuid"], row["server_uuid"]) == (
        "b1507f0c-82e4-42b2-81c8-4bf382c50ee0",
        "server-1",
    )
    assert (row["size"], row["minidump_ok"], row["address"]) == (
        len(dump),
        True,
        "testclient",
    )
    assert files_in(crash_dir) == [row["file_name"]]
    assert (crash_dir / row["file_name"]).read_bytes() == dump


def test_file_name_is_chosen_by_the_server(client: TestClient, crash_dir: Path) -> None:
    query = QUERY.replace("uuid=b1507f0c", "uuid=../../evil")

    response = post(client, form(minidump()), query)

    assert response.status_code == 200
    (name,) = files_in(crash_dir)
    assert re.fullmatch(r"crash-[0-9a-f]{32}\.dmp", name)


def test_unescaped_base64_as_curl_sends_it_is_decoded(client: TestClient) -> None:
    dump = bytes([0xFB, 0xEF, 0xFF]) * 100  # base64 full of "+" and "/"
    raw = "dumpfileb64=" + base64.b64encode(dump).decode()
    assert "+" in raw and "/" in raw

    response = post(client, raw)

    assert response.status_code == 200
    (row,) = rows(client, db.crashes)
    assert row["size"] == len(dump)
    assert row["minidump_ok"] is False


def test_old_client_without_submitter_version(client: TestClient) -> None:
    query = "/crashes?version=0.9.8.1.dev-0b66fa4&platform=RaspberryPi&uuid=u1"

    response = post(client, form(minidump()), query)

    assert response.status_code == 200
    (row,) = rows(client, db.crashes)
    assert row["submitter_version"] is None
    assert row["serial"] is None
    assert row["version"] == "0.9.8.1.dev-0b66fa4"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("dumpfileb64=this is not base64!", "not base64"),
        ("dumpfileb64=TURNUA==TURNUA==", "not base64"),
        ("dumpfileb64=TURNU", "not base64"),
        ("dumpfileb64=TURNUA%3", "%-escape"),
        ("dump=TURNUA%3d%3d", "no dumpfileb64"),
        ("", "no dumpfileb64"),
        ("dumpfileb64=", "empty"),
        ("dumpfileb64=TURNUA%3d%3d&dumpfileb64=TURNUA%3d%3d", "twice"),
    ],
)
def test_not_a_crash_form_is_400_and_nothing_is_kept(
    client: TestClient, crash_dir: Path, body: str, says: str
) -> None:
    response = post(client, body)

    assert response.status_code == 400
    assert says in response.text
    assert rows(client, db.crashes) == []
    assert files_in(crash_dir) == []


def test_other_form_fields_are_ignored(client: TestClient) -> None:
    dump = minidump()

    response = post(client, f"note=hello%20there&{form(dump)}&x=1")

    assert response.status_code == 200
    assert rows(client, db.crashes)[0]["size"] == len(dump)


def test_bad_query_value_is_400(client: TestClient) -> None:
    response = post(client, form(minidump()), "/crashes?serial=abc%00def")

    assert response.status_code == 400


def test_openapi_schema_describes_the_upload(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/crashes"]["post"]

    names = {p["name"] for p in operation["parameters"]}
    assert {"version", "platform", "submitter_version", "serial"} <= names
    assert {"revision", "uuid", "serverUuid"} <= names
    form_body = operation["requestBody"]["content"][FORM_TYPE.decode()]
    assert form_body["schema"]["required"] == ["dumpfileb64"]


# --- limits --------------------------------------------------------------------


def test_dump_of_exactly_the_limit_is_stored(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(crash_max_bytes=5000)

    assert post(client, form(minidump(5000))).status_code == 200
    assert post(client, form(minidump(5001))).status_code == 413


def test_declared_oversized_body_is_413_and_nothing_is_kept(
    make_client: Callable[..., TestClient], crash_dir: Path
) -> None:
    client = make_client(crash_max_bytes=1000)
    body = form(minidump(10_000))
    assert len(body) > body_limit(1000)

    response = post(client, body)

    assert response.status_code == 413
    assert files_in(crash_dir) == []
    assert rows(client, db.crashes) == []


def test_oversized_stream_is_refused_before_it_is_all_read(
    make_client: Callable[..., TestClient], crash_dir: Path
) -> None:
    client = make_client(crash_max_bytes=10_000)
    body = form(minidump(100_000)).encode()
    chunks = [body[i : i + 1000] for i in range(0, len(body), 1000)]

    status, read = client.portal.call(post_chunked, client, chunks)

    assert status == 413
    assert read < len(chunks) / 2
    assert files_in(crash_dir) == []


def test_declared_oversized_body_is_refused_unread(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(crash_max_bytes=1000)
    declared = (b"content-length", str(body_limit(1000) + 1).encode())

    status, read = client.portal.call(post_chunked, client, [b"x"] * 10, declared)

    assert (status, read) == (413, 0)


async def post_chunked(
    client: TestClient, chunks: list[bytes], *headers: tuple[bytes, bytes]
) -> tuple[int, int]:
    """POST ``chunks`` straight to the ASGI app, without a Content-Length unless
    ``headers`` has one.

    The test client reads a whole body before the app sees it; this counts how
    many chunks the app asked for. Answers the status and that count.
    """
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/crashes",
        "raw_path": b"/crashes",
        "query_string": QUERY.split("?", 1)[1].encode(),
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", FORM_TYPE), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    pending, read, status = list(chunks), 0, 0

    async def receive() -> dict[str, Any]:
        nonlocal read
        read += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await client.app(scope, receive, send)
    return status, read


# --- ids, concurrency and failures --------------------------------------------


def test_concurrent_uploads_get_distinct_ids(client: TestClient) -> None:
    dumps = [minidump(seed=n) for n in range(16)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda d: post(client, form(d)), dumps))

    assert [r.status_code for r in responses] == [200] * len(dumps)
    ids = {r.text for r in responses}
    assert len(ids) == len(dumps)
    assert {row["public_id"] for row in rows(client, db.crashes)} == ids


def test_an_id_already_taken_is_retried(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = iter(["aaaaaaaa", "aaaaaaaa", "bbbbbbbb"])
    monkeypatch.setattr(crashes, "new_public_id", lambda: next(ids))

    first = post(client, form(minidump(seed=1)))
    second = post(client, form(minidump(seed=2)))

    assert (first.text, second.text) == ("aaaaaaaa", "bbbbbbbb")
    assert len(rows(client, db.crashes)) == 2


def test_database_failure_is_503_and_no_file_is_left(
    client: TestClient, crash_dir: Path
) -> None:
    async def drop() -> None:
        async with services(client).engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE crashes"))

    client.portal.call(drop)

    response = post(client, form(minidump()))

    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert files_in(crash_dir) == []


def test_unwritable_crash_dir_is_503(
    make_client: Callable[..., TestClient], tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    client = make_client(crash_dir=blocker / "crashes")

    response = post(client, form(minidump()))

    assert response.status_code == 503


# --- queries for chat ----------------------------------------------------------


def test_recent_crashes_newest_first_and_crash_by_id(client: TestClient) -> None:
    ids = [post(client, form(minidump(seed=n))).text for n in range(3)]
    engine = services(client).engine

    recent = client.portal.call(crashes.recent_crashes, engine, 2)
    found = client.portal.call(crashes.crash, engine, f" {ids[0].upper()} ")
    missing = client.portal.call(crashes.crash, engine, "zzzzzzzz")

    assert [c.id for c in recent] == [ids[2], ids[1]]
    assert found is not None
    assert found.id == ids[0]
    assert found.report.device == "RPi2"
    assert found.minidump_ok is True
    assert found.at.tzinfo is not None
    assert missing is None


# --- keeping -------------------------------------------------------------------


def _old_crash(client: TestClient, crash_dir: Path, days_ago: float) -> str:
    """Upload a dump, then age its row and file by ``days_ago``."""
    public_id: str = post(client, form(minidump())).text
    when = datetime.now(UTC) - timedelta(days=days_ago)

    async def age() -> str:
        table = db.crashes
        async with services(client).engine.begin() as conn:
            await conn.execute(
                sa.update(table).where(table.c.public_id == public_id).values(at=when)
            )
            name: str = await conn.scalar(
                sa.select(table.c.file_name).where(table.c.public_id == public_id)
            )
            return name

    name = client.portal.call(age)
    os.utime(crash_dir / name, (when.timestamp(), when.timestamp()))
    return public_id


def test_expired_crashes_lose_row_and_file(client: TestClient, crash_dir: Path) -> None:
    old = _old_crash(client, crash_dir, days_ago=91)
    recent = _old_crash(client, crash_dir, days_ago=89)
    orphan = crash_dir / "crash-orphan.dmp"
    orphan.write_bytes(b"MDMP")
    os.utime(orphan, (time.time() - 100 * 86400,) * 2)
    abandoned = crash_dir / f"{crashes.PART_PREFIX}x{crashes.PART_SUFFIX}"
    abandoned.write_bytes(b"half")
    os.utime(abandoned, (time.time() - 7200,) * 2)
    fresh = crash_dir / f"{crashes.PART_PREFIX}y{crashes.PART_SUFFIX}"
    fresh.write_bytes(b"uploading")
    svc = services(client)

    removed = client.portal.call(crashes.remove_expired, svc.engine, crash_dir, 90.0)

    assert removed == 1
    assert [r["public_id"] for r in rows(client, db.crashes)] == [recent]
    assert client.portal.call(crashes.crash, svc.engine, old) is None
    assert len([n for n in files_in(crash_dir) if n.endswith(".dmp")]) == 1
    assert not orphan.exists()
    assert not abandoned.exists()
    assert fresh.exists()


def test_server_start_removes_expired_crashes(
    make_client: Callable[..., TestClient], crash_dir: Path
) -> None:
    first = make_client()
    _old_crash(first, crash_dir, days_ago=3)

    second = make_client(crash_keep_days=2)

    deadline = time.monotonic() + 10
    while rows(second, db.crashes) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert rows(second, db.crashes) == []
    assert files_in(crash_dir) == []


# --- the form decoder and the cleanup loop ------------------------------------


@given(
    dump=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=20_000), max_size=12),
    escape=st.booleans(),
)
def test_decoder_gives_the_dump_back_however_the_body_is_cut(
    dump: bytes, cuts: list[int], escape: bool
) -> None:
    text = base64.b64encode(dump).decode()
    body = ("dumpfileb64=" + (xbmc_encode(text) if escape else text)).encode()
    edges = sorted({0, len(body), *(c % (len(body) + 1) for c in cuts)})
    decoder = DumpDecoder(len(dump))

    out = [decoder.feed(body[a:b]) for a, b in pairwise(edges)]

    assert b"".join([*out, decoder.finish()]) == dump
    assert decoder.size == len(dump)


def test_decoder_accepts_line_breaks_and_missing_padding() -> None:
    text = base64.encodebytes(minidump(500)).decode().rstrip("=\n")
    decoder = DumpDecoder(500)

    dump = decoder.feed(f"dumpfileb64={text}".encode()) + decoder.finish()

    assert dump == minidump(500)
    assert decoder.is_minidump


def test_decoder_refuses_a_second_dump_field() -> None:
    decoder = DumpDecoder(100)
    decoder.feed(b"dumpfileb64=TURNUA%3d%3d&")

    with pytest.raises(FormError):
        decoder.feed(b"dumpfileb64=TURNUA%3d%3d")


def test_cleanup_loop_survives_a_database_error(tmp_path: Path) -> None:
    engine = db.create_engine(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")

    async def one_round() -> None:
        task = asyncio.create_task(
            crashes.remove_expired_forever(engine, tmp_path, 1.0, 0.01)
        )
        await asyncio.sleep(0.1)  # no crashes table: every round fails
        assert not task.done()
        task.cancel()
        # Before the loop closes: a query still in flight would answer a closed
        # loop from its connection's thread.
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await engine.dispose()

    asyncio.run(one_round())
