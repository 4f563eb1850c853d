"""Which release a client is offered (PROTOCOL.md 2.1, 2.2, 2.4 and 4)."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rasbot.catalog import Catalog, Release, build_catalog
from rasbot.devices import DEFAULT_DEVICE_BOARDS, DeviceMatch, match_device
from rasbot.selection import (
    channel_of,
    installable,
    installable_devices,
    select_update,
)
from rasbot.versions import Version, parse_client_version, parse_version

KNOWN_DEVICES = ["RPi2", "RPi", "RPi3bplus"]
DOWNLOADS = "https://github.com/RasPlex/RasPlex/releases/download"

# Boards by revision code: a Pi 1 B, a 3B (general RPi2) and a 3B+ (RPi3bplus).
PI1 = match_device("000e", DEFAULT_DEVICE_BOARDS)
PI3B = match_device("a02082", DEFAULT_DEVICE_BOARDS)
PI3BPLUS = match_device("a020d3", DEFAULT_DEVICE_BOARDS)


def test_boards_used_here_map_to_the_expected_devices() -> None:
    assert (PI1.general, PI1.specific) == ("RPi", None)
    assert (PI3B.general, PI3B.specific) == ("RPi2", None)
    assert (PI3BPLUS.general, PI3BPLUS.specific) == ("RPi2", "RPi3bplus")


# --- factories ---------------------------------------------------------------


def _files(device: str, version: str) -> dict[str, dict[str, str]]:
    install = f"RasPlex-{device}.RP-{version}.img.gz"
    update = f"RasPlex-{device}.RP-{version}.tar.gz"
    return {
        "install": {
            "file": install,
            "md5sum": hashlib.md5(install.encode()).hexdigest(),
        },
        "update": {"file": update, "shasum": hashlib.sha1(update.encode()).hexdigest()},
    }


def _section(kind: str, devices: Iterable[str], version: str) -> list[str]:
    lines = []
    for device in devices:
        lines.append(f"  {device}:")
        fields = _files(device, version)[kind]
        lines.extend(f"    - {k}: {json.dumps(v)}" for k, v in fields.items())
    return lines


def raw_release(
    version: str,
    *,
    channel: str = "stable",
    install: Iterable[str] = ("RPi2", "RPi"),
    update: Iterable[str] | None = None,
    broken_update: Iterable[str] = (),
    published: str = "2016-03-03T00:03:41Z",
    release_id: int | None = None,
) -> dict[str, Any]:
    """A GitHub release with uploaded files for the given devices.

    ``update`` defaults to the ``install`` devices; ``broken_update`` devices are
    declared with a malformed shasum, so they have no usable update package.
    """
    install = list(install)
    update = install if update is None else list(update)
    lines = [f"channel: {channel}", "", "changes:", "  - Something new", ""]
    if install:
        lines += ["install:", *_section("install", install, version), ""]
    if update or broken_update:
        lines += ["update:", *_section("update", update, version)]
        for device in broken_update:
            lines += [f"  {device}:", "    - file: broken.tar.gz", "    - shasum: nope"]
    names = [_files(d, version)["install"]["file"] for d in install]
    names += [_files(d, version)["update"]["file"] for d in update]
    return {
        "id": release_id if release_id is not None else zlib.crc32(version.encode()),
        "tag_name": version,
        "name": version,
        "draft": False,
        "created_at": published,
        "published_at": published,
        "body": "\n".join(lines),
        "assets": [
            {
                "name": name,
                "browser_download_url": f"{DOWNLOADS}/{version}/{name}",
                "size": 1,
                "download_count": 0,
                "state": "uploaded",
            }
            for name in names
        ],
    }


def build(*raws: Mapping[str, Any], devices: Sequence[str] = KNOWN_DEVICES) -> Catalog:
    releases, problems = build_catalog(list(raws), devices=devices)
    return Catalog(releases=releases, problems=problems)


def client(text: str) -> Version:
    version = parse_client_version(text)
    assert version is not None, text
    return version


def offered(
    catalog: Catalog, channel: str, device: DeviceMatch, version: str | None
) -> str | None:
    """The name of the release offered, or None."""
    offer = select_update(
        catalog, channel, device, None if version is None else client(version)
    )
    return None if offer is None else offer.release.name


# --- channel numbers ---------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "whitelisted", "channel"),
    [
        ("16", False, "stable"),
        ("16", True, "stable"),
        ("2", False, "prerelease"),
        ("2", True, "prerelease"),
        ("8", False, "prerelease"),
        ("8", True, "prerelease"),
        ("4", True, "beta"),
        ("4", False, "stable"),
        (None, False, "stable"),
        (None, True, "stable"),
        ("", True, "stable"),
        ("garbage", True, "stable"),
        ("1", True, "stable"),
        ("32", True, "stable"),
        ("-4", True, "stable"),
        ("beta", True, "stable"),
        ("0x4", True, "stable"),
    ],
)
def test_channel_of_a_plex_role_number(
    number: str | None, whitelisted: bool, channel: str
) -> None:
    assert channel_of(number, whitelisted=whitelisted) == channel


# --- the channel ladder ------------------------------------------------------


@pytest.fixture
def ladder() -> Catalog:
    return build(
        raw_release("1.2.0b", channel="beta"),
        raw_release("1.1.0-rc1", channel="prerelease"),
        raw_release("1.0.3", channel="stable"),
    )


@pytest.mark.parametrize(
    ("channel", "expected"),
    [("stable", "1.0.3"), ("prerelease", "1.1.0-rc1"), ("beta", "1.2.0b")],
)
def test_each_channel_is_offered_its_ladder(
    ladder: Catalog, channel: str, expected: str
) -> None:
    assert offered(ladder, channel, PI3B, "1.0.0") == expected


def test_stable_client_is_never_offered_a_prerelease_or_beta(ladder: Catalog) -> None:
    assert offered(ladder, "stable", PI3B, "1.0.3") is None


def test_prerelease_client_is_never_offered_a_beta(ladder: Catalog) -> None:
    assert offered(ladder, "prerelease", PI3B, "1.1.0-rc1") is None


@pytest.mark.parametrize("channel", ["prerelease", "beta"])
def test_newer_stable_overtakes_a_prerelease_and_a_beta(channel: str) -> None:
    catalog = build(
        raw_release("1.2.0", channel="stable", published="2016-01-01T00:00:00Z"),
        raw_release("1.2.0b", channel="beta", published="2016-06-01T00:00:00Z"),
        raw_release(
            "1.2.0-rc1", channel="prerelease", published="2016-05-01T00:00:00Z"
        ),
        raw_release("1.1.0", channel="stable"),
    )

    assert offered(catalog, channel, PI3B, "1.1.0") == "1.2.0"
    assert offered(catalog, channel, PI3B, "1.2.0-rc1") == "1.2.0"


# --- which version ----------------------------------------------------------


def test_highest_version_is_offered_not_the_newest_published() -> None:
    catalog = build(
        raw_release("1.0.4", published="2017-01-01T00:00:00Z"),
        raw_release("1.6.2", published="2016-09-01T00:00:00Z"),
        raw_release("1.0.3", published="2016-03-03T00:00:00Z"),
    )

    assert offered(catalog, "stable", PI3B, "1.0.3") == "1.6.2"


def test_versions_compare_as_numbers() -> None:
    catalog = build(raw_release("0.5.10"), raw_release("0.6.0"))

    assert offered(catalog, "stable", PI3B, "0.5.9") == "0.6.0"
    assert offered(catalog, "stable", PI3B, "0.5.10") == "0.6.0"


def test_client_on_the_highest_version_is_offered_nothing() -> None:
    catalog = build(raw_release("1.6.2"), raw_release("1.0.3"))

    assert offered(catalog, "stable", PI3B, "1.6.2") is None


def test_equal_version_written_differently_is_offered_nothing() -> None:
    catalog = build(raw_release("1.6"))

    assert offered(catalog, "stable", PI3B, "1.6.0") is None


def test_client_above_every_release_is_never_downgraded() -> None:
    catalog = build(raw_release("1.6.2"), raw_release("1.0.3"))

    assert offered(catalog, "stable", PI3B, "1.7.0") is None
    assert offered(catalog, "stable", PI3B, "2.0.0-rc1") is None


def test_unknown_client_version_is_offered_the_highest_it_is_entitled_to(
    ladder: Catalog,
) -> None:
    assert offered(ladder, "stable", PI3B, None) == "1.0.3"
    assert offered(ladder, "prerelease", PI3B, None) == "1.1.0-rc1"
    assert offered(ladder, "beta", PI3B, None) == "1.2.0b"


def test_empty_catalog_offers_nothing() -> None:
    assert offered(build(), "beta", PI3B, None) is None


def test_offer_carries_the_release_and_the_devices_update_package() -> None:
    catalog = build(raw_release("1.6.2", install=["RPi", "RPi2"]))

    offer = select_update(catalog, "stable", PI1, client("1.0.3"))

    assert offer is not None
    assert offer.release is catalog.releases[0]
    assert offer.package is catalog.releases[0].update["RPi"]
    assert offer.package.device == "RPi"
    assert offer.package.kind == "update"


# --- client builds -----------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "highest", "expected"),
    [
        ("1.6.2.123-e23a7eef", "1.6.2", None),
        ("1.6.2.123-e23a7eef", "1.7.1", "1.7.1"),
        ("1.6.2.123-e23a7eef", "1.6.3", "1.6.3"),
        ("0.4.0.dev-5a872564", "0.4.0", "0.4.0"),
        ("1.8.0b.148-573b6d73", "1.8.0b", None),
        ("1.8.0.0b-573b6d73", "1.8.0b", None),
        ("1.8.0.0b-573b6d73", "1.8.0-rc1", "1.8.0-rc1"),
        ("v1.6.2", "1.6.2", None),
        ("1.6.2.1", "1.6.2", None),
    ],
)
def test_client_builds_compare_with_their_release(
    reported: str, highest: str, expected: str | None
) -> None:
    catalog = build(raw_release(highest, channel="beta"), raw_release("0.1.0"))

    assert offered(catalog, "beta", PI3B, reported) == expected


# --- devices -----------------------------------------------------------------


def test_release_without_the_devices_package_is_skipped_for_a_lower_one() -> None:
    catalog = build(
        raw_release("1.6.2", install=["RPi2"]),
        raw_release("1.6.1", install=["RPi", "RPi2"]),
        raw_release("1.0.3", install=["RPi", "RPi2"]),
    )

    assert offered(catalog, "stable", PI1, "1.0.3") == "1.6.1"
    assert offered(catalog, "stable", PI3B, "1.0.3") == "1.6.2"


def test_skipping_never_reaches_a_release_not_newer_than_the_client() -> None:
    catalog = build(
        raw_release("1.6.2", install=["RPi2"]),
        raw_release("1.6.1", install=["RPi", "RPi2"]),
        raw_release("1.0.3", install=["RPi", "RPi2"]),
    )

    assert offered(catalog, "stable", PI1, "1.6.1") is None
    assert offered(catalog, "stable", PI1, "1.6.2") is None


def test_release_with_install_image_but_no_update_package_is_skipped() -> None:
    catalog = build(
        raw_release("1.6.2", install=["RPi", "RPi2"], update=["RPi2"]),
        raw_release("1.6.1", install=["RPi", "RPi2"]),
    )

    assert offered(catalog, "stable", PI1, "1.0.0") == "1.6.1"


def test_release_with_unusable_update_package_is_skipped() -> None:
    catalog = build(
        raw_release("1.6.2", install=["RPi2"], update=["RPi2"], broken_update=["RPi"]),
        raw_release("1.6.1", install=["RPi", "RPi2"]),
    )

    assert offered(catalog, "stable", PI1, "1.0.0") == "1.6.1"


@pytest.fixture
def specific() -> Catalog:
    # 1.9.0 forgot the 3B+ entirely, 1.8.0b shipped a 3B+ image, 1.7.1 predates it.
    return build(
        raw_release("1.9.0", install=["RPi2"], channel="beta"),
        raw_release("1.8.0b", install=["RPi2", "RPi3bplus"], channel="beta"),
        raw_release("1.7.1", install=["RPi2"]),
    )


def test_board_gets_the_general_package_from_a_release_not_declaring_its_device(
    specific: Catalog,
) -> None:
    offer = select_update(specific, "beta", PI3BPLUS, client("1.8.0b"))
    assert offer is not None
    assert offer.release.name == "1.9.0"
    assert offer.package.device == "RPi2"

    offer = select_update(specific, "beta", PI3BPLUS, client("1.7.1"))
    assert offer is not None
    assert offer.release.name == "1.9.0"


def test_board_gets_the_specific_package_from_a_release_declaring_it() -> None:
    catalog = build(
        raw_release("1.8.0b", install=["RPi2", "RPi3bplus"], channel="beta"),
        raw_release("1.7.1", install=["RPi2"]),
    )

    offer = select_update(catalog, "beta", PI3BPLUS, client("1.7.1"))

    assert offer is not None
    assert offer.release.name == "1.8.0b"
    assert offer.package.device == "RPi3bplus"
    assert offer.package is catalog.releases[0].update["RPi3bplus"]


def test_general_board_ignores_a_specific_devices_package() -> None:
    catalog = build(
        raw_release("1.8.0b", install=["RPi2", "RPi3bplus"], channel="beta"),
        raw_release("1.7.1", install=["RPi2"]),
    )

    offer = select_update(catalog, "beta", PI3B, client("1.7.1"))

    assert offer is not None
    assert offer.package.device == "RPi2"


def test_general_package_from_releases_not_declaring_the_specific_device() -> None:
    catalog = build(raw_release("1.7.1", install=["RPi2"]))

    offer = select_update(catalog, "stable", PI3BPLUS, client("1.6.2"))

    assert offer is not None
    assert offer.package.device == "RPi2"


def test_declared_specific_device_without_update_gets_nothing_from_that_release() -> (
    None
):
    # 1.8.0b names the 3B+ (install only); its RPi2 archive may not boot there.
    catalog = build(
        raw_release(
            "1.8.0b", install=["RPi2", "RPi3bplus"], update=["RPi2"], channel="beta"
        ),
        raw_release("1.7.1", install=["RPi2"]),
    )

    assert offered(catalog, "beta", PI3BPLUS, "1.6.2") == "1.7.1"
    assert offered(catalog, "beta", PI3BPLUS, "1.7.1") is None
    assert offered(catalog, "beta", PI3B, "1.7.1") == "1.8.0b"


def test_declared_specific_device_with_broken_update_gets_nothing_from_it() -> None:
    catalog = build(
        raw_release(
            "1.8.0b",
            install=["RPi2"],
            update=["RPi2"],
            broken_update=["RPi3bplus"],
            channel="beta",
        ),
        raw_release("1.7.1", install=["RPi2"]),
    )

    assert offered(catalog, "beta", PI3BPLUS, "1.6.2") == "1.7.1"


def test_specific_device_declared_in_another_case_still_counts() -> None:
    catalog = build(
        raw_release(
            "1.8.0b", install=["RPi2", "rpi3BPlus"], update=["RPi2"], channel="beta"
        ),
        raw_release("1.7.1", install=["RPi2"]),
    )

    assert offered(catalog, "beta", PI3BPLUS, "1.6.2") == "1.7.1"


# --- a property: the offer is the maximum of the eligible releases -----------

DEVICE_STATES = st.sampled_from(["absent", "ok", "broken", "install-only"])
BOARDS = st.sampled_from([PI1, PI3B, PI3BPLUS])
VERSION_TEXT = st.builds(
    lambda numbers, label: ".".join(map(str, numbers)) + label,
    st.lists(st.integers(0, 3), min_size=1, max_size=3),
    st.sampled_from(["", "", "-rc1", "-rc2", "b", "-dev"]),
)
CLIENT_TEXT = st.one_of(
    st.none(),
    VERSION_TEXT,
    st.builds(
        lambda version, build: f"{version}.{build}-e23a7eef",
        VERSION_TEXT.filter(lambda v: v.count(".") == 2 or not v[-1].isdigit()),
        st.integers(1, 200),
    ),
)


@st.composite
def release_specs(draw: st.DrawFn) -> list[dict[str, Any]]:
    versions = draw(
        st.lists(
            VERSION_TEXT,
            min_size=0,
            max_size=6,
            unique_by=lambda text: parse_version(text).key,  # type: ignore[union-attr]
        )
    )
    specs = []
    for version in versions:
        states = {d: draw(DEVICE_STATES) for d in ("RPi", "RPi2", "RPi3bplus")}
        channel = draw(st.sampled_from(["stable", "prerelease", "beta"]))
        specs.append({"version": version, "channel": channel, "states": states})
    return specs


def _raw_from_spec(spec: Mapping[str, Any], index: int) -> dict[str, Any]:
    states: Mapping[str, str] = spec["states"]
    return raw_release(
        spec["version"],
        channel=spec["channel"],
        install=[d for d, s in states.items() if s in ("ok", "install-only")],
        update=[d for d, s in states.items() if s == "ok"],
        broken_update=[d for d, s in states.items() if s == "broken"],
        release_id=index + 1,
    )


def _naive_offer(
    specs: Sequence[Mapping[str, Any]],
    channel: str,
    board: DeviceMatch,
    reported: Version | None,
) -> str | None:
    entitled = {
        "stable": {"stable"},
        "prerelease": {"stable", "prerelease"},
        "beta": {"stable", "prerelease", "beta"},
    }[channel]
    eligible = []
    for spec in specs:
        states = spec["states"]
        device = board.general
        if board.specific is not None and states[board.specific] != "absent":
            device = board.specific
        version = parse_version(spec["version"])
        assert version is not None
        if (
            spec["channel"] in entitled
            and states[device] == "ok"
            and (reported is None or version > reported)
        ):
            eligible.append((version, spec["version"]))
    return max(eligible)[1] if eligible else None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=release_specs(),
    channel=st.sampled_from(["stable", "prerelease", "beta"]),
    board=BOARDS,
    reported=CLIENT_TEXT,
)
def test_offer_is_the_highest_eligible_release_and_never_a_downgrade(
    specs: list[dict[str, Any]],
    channel: str,
    board: DeviceMatch,
    reported: str | None,
) -> None:
    catalog = build(*(_raw_from_spec(spec, i) for i, spec in enumerate(specs)))
    assert catalog.releases is not None
    version = None if reported is None else parse_client_version(reported)

    offer = select_update(catalog, channel, board, version)

    expected = _naive_offer(specs, channel, board, version)
    assert (None if offer is None else offer.release.name) == expected
    if offer is not None and version is not None:
        assert offer.release.version > version
    if offer is not None:
        wanted = board.specific if board.specific in offer.release.declared else None
        assert offer.package.device == (wanted or board.general)


# --- the installer's list ----------------------------------------------------


def installable_names(catalog: Catalog, device: str) -> list[str]:
    return [release.name for release, _ in installable(catalog, device)]


def test_installable_lists_the_newest_stable_first_then_the_rest_highest_first() -> (
    None
):
    catalog = build(
        raw_release("1.9.0b", channel="beta"),
        raw_release("1.8.0-rc1", channel="prerelease"),
        raw_release("1.7.1", channel="stable"),
        raw_release("1.7.0-rc2", channel="prerelease"),
        raw_release("1.6.2", channel="stable"),
        raw_release("1.0.3", channel="stable"),
    )

    assert installable_names(catalog, "RPi2") == [
        "1.7.1",
        "1.8.0-rc1",
        "1.7.0-rc2",
        "1.6.2",
        "1.0.3",
    ]


def test_installable_newest_stable_is_the_highest_not_the_latest_published() -> None:
    catalog = build(
        raw_release("1.0.4", published="2017-01-01T00:00:00Z"),
        raw_release("1.6.2", published="2016-09-01T00:00:00Z"),
    )

    assert installable_names(catalog, "RPi2") == ["1.6.2", "1.0.4"]


def test_installable_without_stable_starts_with_the_newest_prerelease() -> None:
    catalog = build(
        raw_release("1.8.0-rc1", channel="prerelease"),
        raw_release("1.8.0-rc2", channel="prerelease"),
        raw_release("1.7.1", install=["RPi"]),
    )

    assert installable_names(catalog, "RPi2") == ["1.8.0-rc2", "1.8.0-rc1"]


def test_installable_never_lists_beta() -> None:
    catalog = build(
        raw_release("1.8.0b", channel="beta", install=["RPi2", "RPi3bplus"]),
        raw_release("1.7.1"),
    )

    assert installable_names(catalog, "RPi2") == ["1.7.1"]
    assert installable(catalog, "RPi3bplus") == []


def test_installable_pairs_each_release_with_the_devices_install_image() -> None:
    catalog = build(raw_release("1.7.1"), raw_release("1.6.2"))

    entries = installable(catalog, "RPi")

    assert [release.name for release, _ in entries] == ["1.7.1", "1.6.2"]
    for release, package in entries:
        assert package is release.install["RPi"]
        assert package.kind == "install"
        assert package.device == "RPi"


def test_installable_skips_releases_without_an_install_image_for_the_device() -> None:
    catalog = build(
        raw_release("1.7.1", install=["RPi2"], update=["RPi", "RPi2"]),
        raw_release("1.6.2", install=["RPi", "RPi2"]),
    )

    assert installable_names(catalog, "RPi") == ["1.6.2"]


def test_installable_for_an_unknown_device_is_empty() -> None:
    catalog = build(raw_release("1.7.1"))

    assert installable(catalog, "RPi9") == []
    assert installable(build(), "RPi2") == []


# --- the installer's devices -------------------------------------------------


def test_installable_devices_come_in_the_configured_order() -> None:
    catalog = build(raw_release("1.7.1", install=["RPi", "RPi2"]))

    assert installable_devices(catalog, ["RPi2", "RPi"]) == ["RPi2", "RPi"]
    assert installable_devices(catalog, ["RPi", "RPi2"]) == ["RPi", "RPi2"]


def test_installable_devices_never_include_a_device_only_beta_has() -> None:
    catalog = build(
        raw_release("1.8.0b", channel="beta", install=["RPi2", "RPi3bplus", "RPi5"]),
        raw_release("1.7.1", install=["RPi2"]),
    )

    assert installable_devices(catalog, KNOWN_DEVICES) == ["RPi2"]


def test_installable_devices_include_prerelease_only_devices() -> None:
    catalog = build(
        raw_release("1.8.0-rc1", channel="prerelease", install=["RPi3bplus"]),
        raw_release("1.7.1", install=["RPi2"]),
    )

    assert installable_devices(catalog, KNOWN_DEVICES) == ["RPi2", "RPi3bplus"]


def test_installable_devices_need_an_install_image() -> None:
    catalog = build(raw_release("1.7.1", install=["RPi2"], update=["RPi2", "RPi"]))

    assert installable_devices(catalog, KNOWN_DEVICES) == ["RPi2"]


def test_installable_devices_omit_known_devices_without_images() -> None:
    assert installable_devices(build(), KNOWN_DEVICES) == []


def test_installable_devices_list_unconfigured_devices_last_sorted() -> None:
    catalog = build(raw_release("2.0.0", install=["RPi2", "RPi5", "RPi4"]))

    assert installable_devices(catalog, ["RPi2", "RPi"]) == ["RPi2", "RPi4", "RPi5"]


def test_installable_devices_are_listed_once() -> None:
    catalog = build(raw_release("1.7.1"), raw_release("1.6.2"))

    assert installable_devices(catalog, KNOWN_DEVICES) == ["RPi2", "RPi"]


def _release_names(releases: Iterable[Release]) -> list[str]:
    return [release.name for release in releases]


def test_on_channels_keeps_the_version_order() -> None:
    catalog = build(
        raw_release("1.8.0b", channel="beta"),
        raw_release("1.7.1"),
        raw_release("1.8.0-rc1", channel="prerelease"),
    )

    assert _release_names(catalog.on_channels(["stable", "beta"])) == [
        "1.8.0b",
        "1.7.1",
    ]
