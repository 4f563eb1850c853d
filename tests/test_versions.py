"""Version parsing and ordering, as specified in PROTOCOL.md 2.3."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rasbot.versions import (
    Version,
    is_developer_build,
    parse_client_version,
    parse_version,
)


def client(text: str) -> Version:
    version = parse_client_version(text)
    assert version is not None, text
    return version


def release(text: str) -> Version:
    version = parse_version(text)
    assert version is not None, text
    return version


# Each pair is (older, newer), both read as client reports (a superset of release
# names), so builds and hashes can sit on either side.
ORDERED = [
    # numeric components compare as numbers, left to right
    ("0.5.1", "0.5.2"),
    ("0.5.9", "0.5.10"),
    ("0.5.10", "0.6.0"),
    ("0.9.9", "1.0.0"),
    ("1.0.3", "1.6.2"),
    ("1.6.2", "1.7.1"),
    ("1.9", "1.10"),
    ("2", "10"),
    ("1.0", "1.0.1"),
    ("1.0.0", "1.0.0.1"),
    ("1.6.2", "1.6.2.1"),
    ("1.6.2.1", "1.6.2.2"),
    ("1.6.2.9", "1.6.3"),
    # pre-release labels rank below the release, dev < a < b < rc < final
    ("0.3.9-rc1", "0.3.9"),
    ("0.3.9-rc1", "0.4.0-rc4"),
    ("0.4.0-rc4", "0.4.0"),
    ("0.4.0.dev", "0.4.0a1"),
    ("0.4.0a1", "0.4.0b"),
    ("0.4.0-alpha.3", "0.4.0-beta"),
    ("1.8.0b", "1.8.0-rc1"),
    ("1.8.0-rc1", "1.8.0"),
    ("1.8.0b", "1.8.0b2"),
    ("1.8.0b2", "1.8.0b10"),
    ("1.8.0-beta.9", "1.8.0-pre1"),
    ("1.8.0-rc1", "1.8.0-rc2"),
    ("1.8.0-RC2", "1.8.0"),
    ("1.0.0-beta.2", "1.0.0-beta.11"),
    ("1.7.9", "1.8.0.dev"),
    ("1.8.0", "1.8.1.dev"),
    ("0.5.1", "v0.5.2"),
    ("v2.2.0-rc1", "2.2.0"),
    # git hashes: `<version>-<hash>` is that version
    ("0.4.0.dev-5a872564", "0.4.0"),
    ("0.4.0.dev-5a872564", "0.4.0-rc4"),
    ("0.3.9", "0.4.0.dev-5a872564"),
    ("1.8.0.0b-573b6d73", "1.8.0-rc1"),
    ("1.7.1", "1.8.0.0b-573b6d73"),
    # builds: `<release>.<build>-<hash>` sits between its release and the next one
    ("1.6.2", "1.6.2.123-e23a7eef"),
    ("1.6.2.123-e23a7eef", "1.7.1"),
    ("1.6.2.123-e23a7eef", "1.6.3"),
    ("1.6.2.123-e23a7eef", "1.6.2.1"),
    ("1.6.2.5-e23a7eef", "1.6.2.123-e23a7eef"),
    ("1.6.1.900-e23a7eef", "1.6.2"),
    ("1.8.0b", "1.8.0b.148-573b6d73"),
    ("1.8.0.0b-573b6d73", "1.8.0b.148-573b6d73"),
    ("1.8.0b.148-573b6d73", "1.8.0b1"),
    ("1.8.0b.148-573b6d73", "1.8.0-rc1"),
    ("1.8.0b.148-573b6d73", "1.8.0"),
    ("1.8.0-rc1.3-abcdef0", "1.8.0"),
]

EQUAL = [
    ("1.0", "1.0.0"),
    ("1.0.0", "1.0.0.0"),
    ("1", "1.0.0"),
    ("v2.2.0-rc1", "2.2.0-rc1"),
    ("V2.2.0-RC1", "2.2.0-rc1"),
    ("1.8.0.0b", "1.8.0b"),
    ("1.8.0.0b-573b6d73", "1.8.0b"),
    ("1.8.0b", "1.8.0-beta"),
    ("1.8.0b", "1.8.0b0"),
    ("1.8.0B", "1.8.0b"),
    ("1.0.0-beta.2", "1.0.0b2"),
    ("1.0.0a1", "1.0.0-alpha1"),
    ("1.0.0-pre1", "1.0.0-rc1"),
    ("0.4.0.dev", "0.4.0-dev"),
    ("0.4.0.dev-5a872564", "0.4.0.dev"),
    ("1.0.3-abcdef12", "1.0.3"),
    ("1.6.2.0-e23a7eef", "1.6.2"),
    ("  1.6.2\n", "1.6.2"),
    ("1.06.2", "1.6.2"),
]

UNPARSABLE = [
    "",
    "   ",
    "unknown",
    "wip",
    "1.6.2-wip",
    "v",
    "1.",
    ".1",
    "1..2",
    "1.0-",
    "1.0.0-gamma",
    "1.0.0 rc1",
    "-1.0",
    "1.0.0-rc1-rc2",
    "1.0.0-e23a7eef-dirty",
    "1.0.0-xyz1234",
    "v1.0.0v",
    "1.0.0\x00",
    "١.٢.٣",
    "1" * 19,
    "1." * 300 + "1",
]


def test_ordered_pairs_table_is_large_enough() -> None:
    assert len(ORDERED) >= 40


@pytest.mark.parametrize(("older", "newer"), ORDERED)
def test_ordered_pairs(older: str, newer: str) -> None:
    a, b = client(older), client(newer)

    assert a < b
    assert a <= b
    assert b > a
    assert b >= a
    assert a != b
    assert not b < a


@pytest.mark.parametrize(("left", "right"), EQUAL)
def test_equal_versions(left: str, right: str) -> None:
    a, b = client(left), client(right)

    assert a == b
    assert hash(a) == hash(b)
    assert not a < b
    assert not b < a
    assert str(a) == str(b)


@pytest.mark.parametrize("text", UNPARSABLE)
def test_unparsable_versions_are_none(text: str) -> None:
    assert parse_version(text) is None
    assert parse_client_version(text) is None


def test_absent_client_version_is_none() -> None:
    assert parse_client_version(None) is None


# Every example of PROTOCOL.md 2.3, in the words of the protocol.


@pytest.mark.parametrize(
    "name", ["0.3.9-rc1", "0.4.0-rc4", "0.5.1", "1.0.3", "1.6.2", "1.8.0b"]
)
def test_protocol_release_names_parse(name: str) -> None:
    version = release(name)

    assert version.text == name
    assert client(name) == version


@pytest.mark.parametrize(
    "report", ["0.5.1", "0.4.0.dev-5a872564", "1.6.2.123-e23a7eef"]
)
def test_protocol_client_reports_parse(report: str) -> None:
    assert client(report).text == report


def test_protocol_numbers_compare_as_numbers() -> None:
    assert release("0.5.10") < release("0.6.0")
    assert release("1.0") == release("1.0.0")


def test_protocol_prerelease_ranks() -> None:
    assert release("0.4.0-rc4") < release("0.4.0")
    assert release("1.8.0b") < release("1.8.0-rc1") < release("1.8.0")
    assert client("0.4.0.dev-5a872564") < release("0.4.0")


def test_protocol_builds_are_up_to_date_with_their_release() -> None:
    build = client("1.6.2.123-e23a7eef")

    assert build >= release("1.6.2")
    assert build < release("1.7.1")
    assert build.build == 123
    assert client("1.8.0b.148-573b6d73") >= release("1.8.0b")


def test_protocol_hashed_version_is_that_version() -> None:
    assert client("1.8.0.0b-573b6d73") == release("1.8.0b")


def test_protocol_extra_numeric_components_compare_as_numbers() -> None:
    assert release("1.6.2.1") > release("1.6.2")


def test_protocol_leading_v_is_ignored() -> None:
    assert release("v2.2.0-rc1") == release("2.2.0-rc1")


def test_protocol_wip_is_a_developer_build() -> None:
    assert is_developer_build("wip")
    assert is_developer_build("1.8.0-WIP")
    assert is_developer_build("  Wip-1234 ")
    assert not is_developer_build("1.6.2.123-e23a7eef")
    assert not is_developer_build("")
    assert not is_developer_build(None)


def test_release_names_carry_no_hash_or_build() -> None:
    assert parse_version("1.6.2.123-e23a7eef") is None
    assert parse_version("1.0.3-abcdef12") is None


def test_text_keeps_the_original_string() -> None:
    assert release(" v1.8.0B ").text == " v1.8.0B "
    assert client("1.8.0.0b-573b6d73").text == "1.8.0.0b-573b6d73"


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("1", "1.0.0"),
        ("1.6.2.0", "1.6.2"),
        ("1.6.2.1", "1.6.2.1"),
        ("v2.2.0-RC1", "2.2.0-rc1"),
        ("1.0.0-pre.1", "1.0.0-rc1"),
        ("1.8.0.0b", "1.8.0-b"),
        ("1.0.0-alpha", "1.0.0-a"),
        ("0.4.0.dev-5a872564", "0.4.0-dev"),
        ("1.6.2.123-e23a7eef", "1.6.2+123"),
    ],
)
def test_str_is_normalised(text: str, normalised: str) -> None:
    assert str(client(text)) == normalised


def test_version_is_immutable() -> None:
    version = release("1.0.3")

    with pytest.raises(AttributeError):
        version.text = "2.0.0"  # type: ignore[misc]


def test_versions_work_as_dict_keys() -> None:
    table = {release("1.0"): "one"}

    assert table[release("1.0.0")] == "one"
    assert max([release("1.8.0b"), release("1.6.2"), release("1.8.0-rc1")]).text == (
        "1.8.0-rc1"
    )


def test_comparison_with_other_types_is_refused() -> None:
    assert release("1.0") != "1.0"  # type: ignore[comparison-overlap]
    with pytest.raises(TypeError):
        _ = release("1.0") < "1.0"  # type: ignore[operator]


# Property tests over generated version strings.

_labels = st.sampled_from(
    ["dev", "a", "alpha", "b", "beta", "pre", "rc", "DEV", "Alpha", "B", "RC"]
)
_separators = st.sampled_from(["", "-", ".", "_"])
_hashes = st.text("0123456789abcdef", min_size=7, max_size=12)


@st.composite
def release_names(draw: st.DrawFn, min_numbers: int = 1) -> str:
    numbers = draw(st.lists(st.integers(0, 12), min_size=min_numbers, max_size=5))
    text = draw(st.sampled_from(["", "v"])) + ".".join(map(str, numbers))
    if draw(st.booleans()):
        text += draw(_separators) + draw(_labels)
        if draw(st.booleans()):
            text += draw(_separators) + str(draw(st.integers(0, 12)))
    return text


@st.composite
def client_reports(draw: st.DrawFn) -> str:
    # Without a hash, `1.0rc3.5` is no version at all, so a build comes with one.
    text = draw(release_names())
    if draw(st.booleans()):
        if draw(st.booleans()):
            text += f".{draw(st.integers(0, 500))}"
        text += f"-{draw(_hashes)}"
    return text


@given(client_reports(), client_reports())
def test_ordering_is_total(left: str, right: str) -> None:
    a, b = client(left), client(right)

    assert [a < b, a == b, a > b].count(True) == 1
    assert (a <= b) == (a < b or a == b)
    if a == b:
        assert hash(a) == hash(b)


@given(client_reports(), client_reports())
def test_ordering_is_antisymmetric(left: str, right: str) -> None:
    a, b = client(left), client(right)

    if a <= b and b <= a:
        assert a == b
        assert hash(a) == hash(b)


@given(client_reports(), client_reports(), client_reports())
def test_ordering_is_transitive(left: str, middle: str, right: str) -> None:
    a, b, c = sorted([client(left), client(middle), client(right)])

    assert a <= b <= c
    assert a <= c


@given(release_names(min_numbers=3), st.integers(1, 10_000), _hashes, release_names())
def test_build_sits_between_its_release_and_any_higher_one(
    name: str, build: int, githash: str, other: str
) -> None:
    base, version = release(name), client(f"{name}.{build}-{githash}")
    rival = release(other)

    assert version > base
    assert version.build == build
    assert (version < rival) == (rival > base)


@given(release_names(min_numbers=3), st.integers(1, 10_000), _hashes, st.data())
def test_build_is_below_the_next_release(
    name: str, build: int, githash: str, data: st.DataObject
) -> None:
    base = release(name)
    numbers = list(base.numbers)
    position = data.draw(st.integers(0, len(numbers) - 1))
    numbers[position] += 1
    bumped = release(".".join(map(str, numbers[: position + 1])))

    assert client(f"{name}.{build}-{githash}") < bumped


@given(release_names())
def test_str_round_trips(name: str) -> None:
    version = release(name)

    assert release(str(version)) == version


@given(st.text(max_size=300))
def test_parse_never_raises(text: str) -> None:
    parse_version(text)
    parse_client_version(text)
    is_developer_build(text)


@given(st.from_regex(r"[v0-9.\-_abcdeprlhtf ]{0,40}", fullmatch=True))
def test_parse_never_raises_on_near_versions(text: str) -> None:
    for version in (parse_version(text), parse_client_version(text)):
        assert version is None or isinstance(version, Version)
