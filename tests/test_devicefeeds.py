"""How the device endpoints read a request and send their answers."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rasbot.devicefeeds import BODY_PIECE_BYTES, DeviceRequest, parse_query, send_body

# Query strings as clients and scanners send them: escapes, plus signs, bare keys,
# empty parts, repeated names, bytes outside ASCII and broken escapes.
_QUERY_BYTES = st.lists(
    st.sampled_from(
        [
            b"&",
            b"=",
            b"%",
            b"+",
            b"%2",
            b"%41",
            b"%e2%82%ac",
            b"%ff",
            b"%zz",
            b"\xe9",
            b"%00",
        ]
    )
    | st.binary(max_size=4),
    max_size=24,
).map(b"".join)


@given(_QUERY_BYTES)
def test_parse_query_reads_what_parse_qsl_reads(raw: bytes) -> None:
    expected = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    assert parse_query(raw) == expected


def test_parse_query_reads_the_updaters_query() -> None:
    raw = b"build&channel=16&distribution=rasplex&version=1.6.2.123-e23a7eef&X=a+b%21"

    assert parse_query(raw) == {
        "build": "",
        "channel": "16",
        "distribution": "rasplex",
        "version": "1.6.2.123-e23a7eef",
        "X": "a b!",
    }


def test_header_is_the_last_value_sent_and_absent_is_none() -> None:
    request = DeviceRequest.from_scope(
        {
            "query_string": b"",
            "headers": [
                (b"host", b"a.example.org"),
                (b"x-forwarded-for", b"192.0.2.1"),
                (b"host", b"b.example.org"),
            ],
            "client": ("127.0.0.1", 4000),
            "scheme": "http",
        }
    )

    assert request.header(b"host") == "b.example.org"
    assert request.header(b"x-forwarded-for") == "192.0.2.1"
    assert request.header(b"x-forwarded-host") is None
    assert request.peer == "127.0.0.1"


async def sent_pieces(body: bytes) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        messages.append(message)

    await send_body(send, body)
    return messages


async def test_a_short_answer_is_sent_in_one_message() -> None:
    body = b"x" * BODY_PIECE_BYTES

    assert await sent_pieces(body) == [{"type": "http.response.body", "body": body}]


@pytest.mark.parametrize("extra", [1, BODY_PIECE_BYTES, 2 * BODY_PIECE_BYTES + 7])
async def test_a_long_answer_is_sent_whole_in_pieces(extra: int) -> None:
    body = bytes(range(256)) * ((BODY_PIECE_BYTES + extra) // 256 + 1)

    messages = await sent_pieces(body)

    assert len(messages) == -(-len(body) // BODY_PIECE_BYTES) > 1
    assert b"".join(m["body"] for m in messages) == body
    assert all(len(m["body"]) <= BODY_PIECE_BYTES for m in messages)
    assert [m["more_body"] for m in messages] == [True] * (len(messages) - 1) + [False]
