"""Decoding a long JSON array an item at a time, however its text is cut."""

from __future__ import annotations

import io
import itertools
import json
import re
import zlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rasbot import jsonarray

_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _cut(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=300)
@given(
    st.lists(_VALUES, max_size=6),
    st.sampled_from([None, 1, 2]),
    st.lists(st.integers(0, 10**6), max_size=12),
)
def test_items_are_what_json_loads_decodes_wherever_the_text_is_cut(
    values: list[Any], indent: int | None, cuts: list[int]
) -> None:
    text = json.dumps(values, indent=indent)

    decoded = list(jsonarray.items(_cut(text, cuts)))

    assert decoded == json.loads(text)


def test_every_cut_of_a_mixed_array_reads_as_json_loads_reads_it() -> None:
    text = (
        '[ {"a": [1, -2.5e-3, {"b": "x\\"\\u00e9\\n"}], "c": null}, 0.25 , 1E+2,'
        ' true,false , "", [], {} , -0, "\u2713"\n]'
    )
    expected = json.loads(text)

    for first in range(len(text) + 1):
        for second in range(first, len(text) + 1, 5):
            pieces = [text[:first], text[first:second], text[second:]]
            assert list(jsonarray.items(pieces)) == expected, pieces


@pytest.mark.parametrize(
    "text",
    ["{}", "1", '"[]"', "", "[", "[1", "[1,]", "[,1]", "[1 2]", "[1]x", "[1] ]", "[}"],
)
def test_what_is_no_json_array_fails_wherever_the_text_is_cut(text: str) -> None:
    for cut in range(len(text) + 1):
        with pytest.raises(ValueError):
            list(jsonarray.items([text[:cut], text[cut:]]))


def test_a_number_cut_in_two_is_read_whole() -> None:
    pieces = ["[12", "34, 5", "6, 0.", "5, 1e", "2, -", "1]"]

    assert list(jsonarray.items(pieces)) == [1234, 56, 0.5, 100.0, -1]


def test_the_hook_sees_each_object() -> None:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {key: value for key, value in pairs if key != "dropped"}

    text = '[{"kept": {"dropped": 1, "x": 2}, "dropped": 3}]'

    assert list(jsonarray.items([text], hook=hook)) == [{"kept": {"x": 2}}]


def test_an_error_tells_where_in_the_whole_text() -> None:
    text = "[" + ", ".join(["1"] * 1000) + ", x]"

    with pytest.raises(ValueError, match=re.escape(f"(character {text.index('x')})")):
        list(jsonarray.items(_cut(text, list(range(7, 4000, 97)))))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-32-le"])
def test_a_file_is_read_in_the_encoding_json_loads_detects(
    encoding: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonarray, "PIECE", 7)  # pieces end inside characters
    values = [{"name": "RasPlex 1.8 – é ✓ 𝄞"}, {"name": "x" * 30}]
    data = json.dumps(values, ensure_ascii=False).encode(encoding)

    text = "".join(jsonarray.file_pieces(io.BytesIO(data)))

    assert json.loads(text) == json.loads(data) == values


def test_compressed_text_is_read_back_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonarray, "PIECE", 64)
    text = json.dumps([{"body": f"line {n} ✓"} for n in range(500)], ensure_ascii=False)
    blob = zlib.compress(text.encode(), 9)

    pieces = list(jsonarray.zlib_pieces(blob))

    assert "".join(pieces) == text
    assert max(len(piece.encode()) for piece in pieces) <= 64


def test_a_long_whole_number_cut_before_its_fraction_is_read_whole() -> None:
    digits = "1" * 5000  # more than Python turns into an int from text
    text = f"[{digits}e-4990]"

    assert list(jsonarray.items([text[:5001], text[5001:]])) == json.loads(text)


def test_text_not_starting_an_array_is_told_apart() -> None:
    with pytest.raises(jsonarray.NotAnArray):
        list(jsonarray.items(['{"a": 1}']))
    with pytest.raises(ValueError) as raised:
        list(jsonarray.items(["[1, }"]))
    assert not isinstance(raised.value, jsonarray.NotAnArray)


def test_nesting_too_deep_for_the_decoder_is_an_error_of_the_text() -> None:
    with pytest.raises(ValueError, match="nested too deeply"):
        list(jsonarray.items(["[" + "[" * 100_000 + "]" * 100_001]))


def test_a_truncated_compressed_text_fails() -> None:
    blob = zlib.compress(json.dumps([{"n": n} for n in range(100)]).encode())

    with pytest.raises(zlib.error):
        "".join(jsonarray.zlib_pieces(blob[:-1]))
