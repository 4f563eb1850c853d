"""How the device endpoints read a request: query parameters and headers."""

from __future__ import annotations

from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from rasbot.devicefeeds import DeviceRequest, parse_query

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
