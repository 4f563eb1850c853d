"""The GitHub release body parser (PROTOCOL.md section 8)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasbot.releasebody import (
    CHANNELS,
    MAX_BODY_CHARS,
    PackageSpec,
    ReleaseBody,
    parse_body,
    render_problems,
)

MD5 = "a823d770a0ccfefe0a04b34c677e6bf8"
SHA1 = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
SHA1_2 = "d3486ae9136e7856bc42212385ea797094475802"

LEGACY = f"""\
channel: stable

changes:
  - A change
  - Another change

install:
  - file: RasPlex-test.img.gz
  - md5sum: {MD5}
  - url: https://example.org/RasPlex-test.img.gz

update:
  - file: RasPlex-test.tar.gz
  - shasum: {SHA1}
"""

PER_DEVICE_MAPS = f"""\
channel: prerelease

install:
  RPi:
    file: RasPlex-RPi.RP-1.0.3.img.gz
    md5sum: {MD5}
  RPi2:
    file: RasPlex-RPi2.RP-1.0.3.img.gz
    md5sum: {MD5}

update:
  RPi:
    file: RasPlex-RPi.RP-1.0.3.tar.gz
    shasum: {SHA1}
  RPi2:
    file: RasPlex-RPi2.RP-1.0.3.tar.gz
    shasum: {SHA1_2}
"""

PER_DEVICE_LISTS = f"""\
channel: beta

install:
  RPi2:
    - file: RasPlex-1.8.0b-RPi2.img.gz
    - md5sum: {MD5}
  RPi3bplus:
    - file: RasPlex-1.8.0b-RPi3bplus.img.gz
    - md5sum: {MD5}

update:
  RPi2:
    - file: RasPlex-1.8.0b-RPi2.tar.gz
    - shasum: {SHA1}
"""


def body_with(install: str = "", update: str = "", channel: str = "stable") -> str:
    """A per-device body from indented section texts."""
    text = f"channel: {channel}\n"
    if install:
        text += f"install:\n{install}"
    if update:
        text += f"update:\n{update}"
    return text


def described(spec: PackageSpec) -> str:
    """A package problem as operators read it: device, kind, then the reason."""
    return f"{spec.device} {spec.kind}: {spec.problem}"


def only_problem(body: ReleaseBody) -> str:
    assert len(body.problems) == 1, body.problems
    return body.problems[0]


# --- the two forms -----------------------------------------------------------


def test_legacy_form_is_one_package_per_kind_for_rpi() -> None:
    body = parse_body(LEGACY)

    assert body.usable
    assert body.channel == "stable"
    assert body.changes == ("A change", "Another change")
    assert body.problems == ()
    assert body.packages == (
        PackageSpec(
            device="RPi",
            kind="install",
            file="RasPlex-test.img.gz",
            checksum=MD5,
            url="https://example.org/RasPlex-test.img.gz",
            problem=None,
        ),
        PackageSpec("RPi", "update", "RasPlex-test.tar.gz", SHA1, None, None),
    )
    assert body.devices == {"RPi"}


def test_legacy_form_written_as_a_map_is_still_rpi() -> None:
    body = parse_body(f"channel: stable\ninstall: {{file: a.img.gz, md5sum: {MD5}}}")

    spec = body.package("install", "RPi")
    assert spec is not None
    assert spec.usable
    assert spec.file == "a.img.gz"


def test_per_device_form_with_plain_maps() -> None:
    body = parse_body(PER_DEVICE_MAPS)

    assert body.channel == "prerelease"
    assert body.devices == {"RPi", "RPi2"}
    assert [(s.device, s.kind) for s in body.packages] == [
        ("RPi", "install"),
        ("RPi2", "install"),
        ("RPi", "update"),
        ("RPi2", "update"),
    ]
    assert all(spec.usable for spec in body.packages)
    update = body.package("update", "RPi2")
    assert update is not None
    assert update.file == "RasPlex-RPi2.RP-1.0.3.tar.gz"
    assert update.checksum == SHA1_2


def test_per_device_form_with_lists_of_one_key_maps() -> None:
    body = parse_body(PER_DEVICE_LISTS)

    assert body.channel == "beta"
    assert body.devices == {"RPi2", "RPi3bplus"}
    install = body.package("install", "RPi3bplus")
    assert install is not None
    assert install.usable
    assert install.file == "RasPlex-1.8.0b-RPi3bplus.img.gz"
    assert body.package("update", "RPi3bplus") is None


def test_package_lookup_ignores_device_case_but_not_kind() -> None:
    body = parse_body(PER_DEVICE_LISTS)

    assert body.package("install", "rpi3BPLUS") is not None
    assert body.package("INSTALL", "RPi2") is None
    assert body.package("install", "RPi") is None


def test_devices_include_unusable_packages() -> None:
    body = parse_body(body_with(update="  RPi3bplus:\n    file: x.tar.gz\n"))

    assert body.devices == {"RPi3bplus"}
    spec = body.package("update", "RPi3bplus")
    assert spec is not None
    assert not spec.usable


def test_package_fields_are_read_case_insensitively() -> None:
    body = parse_body(
        f"Channel: stable\nupdate:\n  - File: a.tar.gz\n  - SHASUM: {SHA1}"
    )

    assert body.channel == "stable"
    spec = body.package("update", "RPi")
    assert spec is not None
    assert (spec.file, spec.checksum, spec.usable) == ("a.tar.gz", SHA1, True)


def test_device_declared_twice_keeps_the_first() -> None:
    body = parse_body(
        body_with(
            update=f"  RPi2:\n    file: first.tar.gz\n    shasum: {SHA1}\n"
            f"  rpi2:\n    file: second.tar.gz\n    shasum: {SHA1}\n"
        )
    )

    spec = body.package("update", "RPi2")
    assert spec is not None
    assert spec.file == "first.tar.gz"
    assert (
        only_problem(body) == "update: device rpi2 is declared twice; the first counts"
    )


# --- channel -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [("stable", "stable"), ("Stable", "stable"), (" PRERELEASE ", "prerelease")],
)
def test_channel_is_case_insensitive_and_lowercased(
    written: str, expected: str
) -> None:
    body = parse_body(f"channel: '{written}'\nupdate: []")

    assert body.channel == expected


def test_missing_channel_makes_the_release_unusable() -> None:
    body = parse_body(f"update:\n  - file: a.tar.gz\n  - shasum: {SHA1}\n")

    assert not body.usable
    assert body.channel is None
    assert "no channel" in body.problems[0]
    # The packages are still reported, for the operators.
    assert body.devices == {"RPi"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("channel: 16", "channel 16 is not stable, prerelease or beta"),
        ("channel: nightly", "channel 'nightly' is not stable, prerelease or beta"),
        ("channel: [stable]", "channel (a list) is not stable, prerelease or beta"),
        ("channel: ''", "channel '' is not stable, prerelease or beta"),
        ("channel:", "the release body has no channel (stable, prerelease or beta)"),
    ],
)
def test_unknown_channel_makes_the_release_unusable(line: str, problem: str) -> None:
    body = parse_body(f"{line}\nchanges: [x]\ninstall: []\n")

    assert not body.usable
    assert problem in body.problems


# --- checksums ---------------------------------------------------------------


def test_checksums_are_stripped_and_lowercased() -> None:
    body = parse_body(
        f"channel: stable\n"
        f"install:\n  - file: a.img.gz\n  - md5sum: '  {MD5.upper()}  '\n"
        f'update:\n  - file: a.tar.gz\n  - shasum: "{SHA1.upper()}\\t"\n'
    )

    assert [spec.checksum for spec in body.packages] == [MD5, SHA1]
    assert all(spec.usable for spec in body.packages)


def test_malformed_shasum_on_one_device_leaves_the_others_usable() -> None:
    body = parse_body(PER_DEVICE_MAPS.replace(SHA1_2, "xyz"))

    bad = body.package("update", "RPi2")
    assert bad is not None
    assert not bad.usable
    assert bad.checksum is None
    assert described(bad) == "RPi2 update: shasum 'xyz' is not 40 hex digits"

    for kind, device in [("update", "RPi"), ("install", "RPi"), ("install", "RPi2")]:
        spec = body.package(kind, device)
        assert spec is not None
        assert spec.usable, (kind, device)
    assert body.usable
    assert body.problems == ()


def test_malformed_md5sum_spoils_only_the_install_image() -> None:
    body = parse_body(LEGACY.replace(MD5, MD5[:-1]))

    install, update = body.package("install", "RPi"), body.package("update", "RPi")
    assert install is not None
    assert update is not None
    assert (
        described(install) == f"RPi install: md5sum '{MD5[:-1]}' is not 32 hex digits"
    )
    assert update.usable


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (MD5, f"'{MD5}'"),  # an MD5 where a SHA-1 belongs
        (SHA1[:-1] + "g", f"'{SHA1[:-1]}g'"),
        ("1234567890", "1234567890"),  # YAML reads it as a number
        (f"[{SHA1}]", "(a list)"),
        ("true", "True"),
        ("x" * 100, "'" + "x" * 48 + "…'"),
    ],
)
def test_malformed_shasum_is_named_in_the_problem(value: str, shown: str) -> None:
    body = parse_body(
        f"channel: beta\nupdate:\n  - file: a.tar.gz\n  - shasum: {value}"
    )

    spec = body.package("update", "RPi")
    assert spec is not None
    assert spec.checksum is None
    assert described(spec) == f"RPi update: shasum {shown} is not 40 hex digits"


def test_sha1_where_an_md5_belongs_is_refused() -> None:
    body = parse_body(
        f"channel: stable\ninstall:\n  - file: a.img.gz\n  - md5sum: {SHA1}"
    )

    spec = body.package("install", "RPi")
    assert spec is not None
    assert not spec.usable


def test_missing_checksum_makes_the_package_unusable() -> None:
    body = parse_body(body_with(install="  RPi2:\n    file: a.img.gz\n"))

    spec = body.package("install", "RPi2")
    assert spec is not None
    assert described(spec) == "RPi2 install: no md5sum"
    assert not spec.usable


def test_install_does_not_accept_a_shasum() -> None:
    body = parse_body(body_with(install=f"  RPi2:\n    file: a\n    shasum: {SHA1}\n"))

    spec = body.package("install", "RPi2")
    assert spec is not None
    assert described(spec) == "RPi2 install: no md5sum"


# --- file and url ------------------------------------------------------------


def test_package_without_file_or_url_is_unusable() -> None:
    body = parse_body(body_with(update=f"  RPi:\n    shasum: {SHA1}\n"))

    spec = body.package("update", "RPi")
    assert spec is not None
    assert described(spec) == "RPi update: no file or url"
    assert spec.checksum == SHA1


def test_url_alone_is_enough() -> None:
    url = "https://cdn.example.org/RasPlex-RPi2.tar.gz"
    body = parse_body(
        body_with(update=f"  RPi2:\n    url: {url}\n    shasum: {SHA1}\n")
    )

    spec = body.package("update", "RPi2")
    assert spec is not None
    assert spec.usable
    assert (spec.file, spec.url) == (None, url)


def test_placeholder_url_falls_back_to_the_file_with_a_note() -> None:
    body = parse_body(
        LEGACY.replace(
            "https://example.org/RasPlex-test.img.gz",
            "an optional URL where this image is hosted",
        )
    )

    spec = body.package("install", "RPi")
    assert spec is not None
    assert spec.usable
    assert spec.url is None
    assert only_problem(body) == (
        "RPi install: url 'an optional URL where this image is hosted' is not an "
        "http(s) URL; the file is used instead"
    )


def test_bad_url_without_a_file_is_the_packages_problem() -> None:
    body = parse_body(
        body_with(update=f"  RPi:\n    url: ftp://x/y\n    shasum: {SHA1}\n")
    )

    spec = body.package("update", "RPi")
    assert spec is not None
    assert described(spec) == "RPi update: url 'ftp://x/y' is not an http(s) URL"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("123", "RPi update: file 123 is not a file name"),
        ("[a, b]", "RPi update: file (a list) is not a file name"),
        ("''", "RPi update: no file or url"),
    ],
)
def test_file_that_is_not_a_name(value: str, problem: str) -> None:
    body = parse_body(
        f"channel: stable\nupdate:\n  - file: {value}\n  - shasum: {SHA1}"
    )

    spec = body.package("update", "RPi")
    assert spec is not None
    assert described(spec) == problem


# --- malformed sections ------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            "update: 42",
            "the update section is a number, not a list or a map of devices",
        ),
        (
            "update: a.tar.gz",
            "the update section is text, not a list or a map of devices",
        ),
        ("update:", "the update section is empty"),
        ("update: []", "the update section is empty"),
        ("update: {}", "the update section is empty"),
    ],
)
def test_malformed_section_is_a_release_problem(section: str, problem: str) -> None:
    body = parse_body(f"channel: stable\n{section}\n")

    assert body.usable
    assert body.packages == ()
    assert only_problem(body) == problem


def test_device_value_of_the_wrong_type_spoils_only_that_device() -> None:
    body = parse_body(
        body_with(update=f"  RPi: {{file: a.tar.gz, shasum: {SHA1}}}\n  RPi2: 42\n")
    )

    bad = body.package("update", "RPi2")
    assert bad is not None
    assert (
        described(bad)
        == "RPi2 update: is a number, not file, checksum and url; no shasum"
    )
    good = body.package("update", "RPi")
    assert good is not None
    assert good.usable


def test_device_with_no_value_is_declared_but_unusable() -> None:
    body = parse_body(body_with(update="  RPi3bplus:\n"))

    spec = body.package("update", "RPi3bplus")
    assert spec is not None
    assert described(spec) == "RPi3bplus update: no file or url; no shasum"


def test_device_key_that_is_not_a_name_is_skipped() -> None:
    body = parse_body(body_with(update=f"  2: {{file: a, shasum: {SHA1}}}\n"))

    assert body.packages == ()
    assert only_problem(body) == "update: device name 2 is not a device id"


def test_stray_list_entry_is_noted_but_harmless() -> None:
    body = parse_body(
        f"channel: stable\nupdate:\n  - file: a\n  - oops\n  - shasum: {SHA1}"
    )

    spec = body.package("update", "RPi")
    assert spec is not None
    assert spec.usable
    assert only_problem(body) == "RPi update: entry 2 is not a 'key: value' line"


def test_body_without_packages_is_noted() -> None:
    body = parse_body("channel: stable\nchanges: [x]\n")

    assert body.usable
    assert only_problem(body) == "the release body has no install or update section"


# --- changes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ("[A change, Another change]", ("A change", "Another change")),
        ("'One line'", ("One line",)),
        ("|\n  First\n\n  Second\n", ("First", "Second")),
        ("[1.5, 16, true, null, '  ']", ("1.5", "16", "True")),
        ("\n  - Fixed: the clock\n  - plain", ("Fixed: the clock", "plain")),
        ("\n  Fixed: the clock", ("Fixed: the clock",)),
        ("2016-03-03", ("2016-03-03",)),
        ("", ()),
    ],
)
def test_changes_become_lines_of_text(changes: str, expected: tuple[str, ...]) -> None:
    body = parse_body(f"channel: stable\nchanges: {changes}\nupdate: []\n")

    assert body.changes == expected


def test_changes_are_optional() -> None:
    assert parse_body(LEGACY.replace("changes:", "ignored:")).changes == ()


def test_self_referencing_changes_stay_small() -> None:
    body = parse_body("channel: stable\nchanges: &a [x, *a]\n")

    assert body.changes[0] == "x"
    assert len(body.changes[1]) < 1000


def test_alias_bomb_in_changes_is_cheap() -> None:
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    text = "\n".join([*lines, "channel: stable", "changes: *a8"])

    started = time.perf_counter()
    body = parse_body(text)

    assert time.perf_counter() - started < 2
    assert sum(len(line) for line in body.changes) < 100_000


# --- text that is not a usable body ------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (None, "the release body is empty"),
        ("", "the release body is empty"),
        ("  \r\n\t", "the release body is empty"),
        ("Bug fixes and improvements.", "the release body is text, not YAML keys"),
        ("- channel: stable", "the release body is a list, not YAML keys"),
        ("42", "the release body is a number, not YAML keys"),
        ("channel: stable\n  bad: [", "the release body is not valid YAML ("),
        ("channel: stable\ndate: 2019-02-30", "the release body is not valid YAML ("),
        ("[" * 5000, "the release body is not valid YAML ("),
        ("a\n---\nb", "the release body is not valid YAML (expected a single"),
        ("channel: \x00", "the release body is not valid YAML ("),
        ("x" * (MAX_BODY_CHARS + 1), "the release body is over 200000 characters"),
    ],
)
def test_unusable_text(text: str | None, problem: str) -> None:
    body = parse_body(text)

    assert not body.usable
    assert body.packages == ()
    assert only_problem(body).startswith(problem)


def test_yaml_error_names_the_line() -> None:
    body = parse_body("channel: stable\n\ninstall:\n  - file: a\n - md5sum: x\n")

    assert "at line 5" in only_problem(body)


def test_non_text_body_does_not_raise() -> None:
    body = parse_body(42)  # type: ignore[arg-type]

    assert not body.usable


def test_windows_line_endings_read_like_unix_ones() -> None:
    assert parse_body(LEGACY.replace("\n", "\r\n")) == parse_body(LEGACY)
    assert parse_body(PER_DEVICE_LISTS.replace("\n", "\r\n")) == parse_body(
        PER_DEVICE_LISTS
    )


def test_byte_order_mark_is_ignored() -> None:
    assert parse_body("\ufeff" + LEGACY) == parse_body(LEGACY)


def test_body_indented_with_tabs_is_rescued() -> None:
    tabbed = PER_DEVICE_MAPS.replace("    ", "\t\t").replace("  ", "\t")

    assert parse_body(tabbed) == parse_body(PER_DEVICE_MAPS)


def test_huge_hex_number_does_not_break_the_text() -> None:
    body = parse_body(f"channel: stable\nchanges: [0x{'f' * 5000}]\nupdate: []")

    assert body.changes == ("a very large number",)


def test_render_problems_lists_release_then_package_problems() -> None:
    body = parse_body(
        body_with(
            update="  RPi2: {file: a.tar.gz, shasum: xyz}\n"
            f"  RPi: {{shasum: {SHA1}}}\n"
            "  rpi2: {}\n"
        )
    )

    assert render_problems(body) == [
        "update: device rpi2 is declared twice; the first counts",
        "RPi2 update: shasum 'xyz' is not 40 hex digits",
        "RPi update: no file or url",
    ]


# --- the example data --------------------------------------------------------

EXAMPLES = Path(__file__).parent.parent / "examples" / "releases.json"

# The body mistakes examples/README.md lists; the others are about assets.
EXAMPLE_BODY_PROBLEMS = {
    "0.5.0-rc2": "the release body is not valid YAML (mapping values are not",
    "1.6.1": "RPi2 update: shasum 'e6498bd499e14c420b1ae5f85b744fc0d5ae1e35  Ras",
}


def test_example_releases_have_only_their_deliberate_body_problems() -> None:
    releases = json.loads(EXAMPLES.read_text(encoding="utf-8"))
    bodies = {r["tag_name"]: parse_body(r["body"]) for r in releases}

    problems = {tag: render_problems(b) for tag, b in bodies.items()}
    assert {tag for tag, found in problems.items() if found} == set(
        EXAMPLE_BODY_PROBLEMS
    )
    for tag, problem in EXAMPLE_BODY_PROBLEMS.items():
        assert problems[tag][0].startswith(problem)
    assert bodies["1.8.0b"].devices == {"RPi", "RPi2", "RPi3bplus"}
    assert {b.channel for b in bodies.values()} == {None, *CHANNELS}


# --- never raises ------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.sampled_from(["stable", "Beta", "RPi", "RPi2", MD5, SHA1, "a.tar.gz"])
)
TOP_KEYS = ["channel", "Channel", "changes", "install", "update"]
PACKAGE_KEYS = ["file", "md5sum", "shasum", "url", "RPi", "RPi2", "RPi3bplus", ""]
KEYS = st.sampled_from([*TOP_KEYS, *PACKAGE_KEYS]) | st.text(max_size=10)

YAML_VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(KEYS, inner, max_size=5)
    ),
    max_leaves=30,
)


def assert_well_formed(body: ReleaseBody) -> None:
    """The invariants every consumer relies on, whatever the input."""
    assert isinstance(body, ReleaseBody)
    assert body.channel in (None, "stable", "prerelease", "beta")
    assert body.usable == (body.channel is not None)
    assert all(isinstance(line, str) and line for line in body.changes)
    assert all(isinstance(problem, str) for problem in render_problems(body))
    for spec in body.packages:
        assert spec.kind in ("install", "update")
        assert spec.device
        assert spec.usable == (spec.problem is None and spec.checksum is not None)
        if spec.checksum is not None:
            assert len(spec.checksum) == (32 if spec.kind == "install" else 40)
            assert spec.checksum == spec.checksum.lower()
        if spec.usable:
            assert spec.file or spec.url


@given(st.text())
def test_arbitrary_text_never_raises(text: str) -> None:
    assert_well_formed(parse_body(text))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(YAML_VALUES)
def test_arbitrary_yaml_never_raises(value: Any) -> None:
    assert_well_formed(parse_body(yaml.safe_dump(value)))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {"channel": SCALARS},
        optional={
            "changes": YAML_VALUES,
            "install": YAML_VALUES,
            "update": YAML_VALUES,
        },
    ),
    st.booleans(),
)
def test_body_shaped_yaml_never_raises(value: dict[str, Any], crlf: bool) -> None:
    text = yaml.safe_dump(value)
    assert_well_formed(parse_body(text.replace("\n", "\r\n") if crlf else text))
