"""The /update XML and the installer's JSON (PROTOCOL.md 2.5, 4 and 5)."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest

from rasbot.catalog import Catalog, Package, Release, build_catalog
from rasbot.feeds import created_at, devices_json, install_json, update_xml
from rasbot.selection import Offer, installable

DOWNLOADS = "https://github.com/RasPlex/RasPlex/releases/download"
BASE = "http://updates.rasplex.example"
MD5 = "a823d770a0ccfefe0a04b34c677e6bf8"
SHA1 = "d3486ae9136e7856bc42212385ea797094475802"
SHA1_RPI = "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"
PUBLISHED = "2016-03-03T00:03:41Z"

# --- factories ---------------------------------------------------------------


def _fields(entries: Mapping[str, str]) -> list[str]:
    # JSON strings are valid YAML double-quoted scalars, so any value survives.
    return [f"    - {key}: {json.dumps(value)}" for key, value in entries.items()]


def body_text(
    *,
    channel: str = "stable",
    changes: Sequence[str] = ("A change", "Another change"),
    install: Mapping[str, Mapping[str, str]],
    update: Mapping[str, Mapping[str, str]],
) -> str:
    lines = [f"channel: {channel}", ""]
    if changes:
        lines += ["changes:", *(f"  - {json.dumps(c)}" for c in changes), ""]
    for kind, section in (("install", install), ("update", update)):
        if section:
            lines.append(f"{kind}:")
            for device, entries in section.items():
                lines += [f"  {device}:", *_fields(entries)]
            lines.append("")
    return "\n".join(lines)


def raw_release(
    version: str = "1.0.3",
    *,
    release_id: int = 2215983,
    tag: str | None = None,
    channel: str = "stable",
    changes: Sequence[str] = ("A change", "Another change"),
    install: Mapping[str, Mapping[str, str]] | None = None,
    update: Mapping[str, Mapping[str, str]] | None = None,
    published: str = PUBLISHED,
) -> dict[str, Any]:
    """A release with RPi2 files by default, every named file uploaded."""
    tag = version if tag is None else tag
    if install is None:
        install = {"RPi2": {"file": f"RasPlex-RPi2.RP-{version}.img.gz", "md5sum": MD5}}
    if update is None:
        update = {"RPi2": {"file": f"RasPlex-RPi2.RP-{version}.tar.gz", "shasum": SHA1}}
    files = [p["file"] for s in (install, update) for p in s.values() if "file" in p]
    return {
        "id": release_id,
        "tag_name": tag,
        "name": version,
        "draft": False,
        "created_at": published,
        "published_at": published,
        "body": body_text(
            channel=channel, changes=changes, install=install, update=update
        ),
        "assets": [
            {
                "name": name,
                "browser_download_url": f"{DOWNLOADS}/{quote(tag)}/{quote(name)}",
                "size": 1,
                "download_count": 0,
                "state": "uploaded",
            }
            for name in files
        ],
    }


def build(*raws: Mapping[str, Any]) -> Catalog:
    releases, problems = build_catalog(list(raws), devices=["RPi2", "RPi", "RPi3bplus"])
    return Catalog(releases=releases, problems=problems)


def release_of(raw: Mapping[str, Any]) -> Release:
    catalog = build(raw)
    assert len(catalog.releases) == 1, catalog.problems
    return catalog.releases[0]


def offer_of(release: Release, device: str = "RPi2") -> Offer:
    return Offer(release, release.update[device])


def parse_xml(answer: bytes) -> ET.Element:
    assert answer.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(answer)


def package_element(answer: bytes) -> ET.Element:
    root = parse_xml(answer)
    [release] = list(root)
    [package] = list(release)
    return package


def last_segment(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


@pytest.fixture
def new_york_time() -> Iterator[None]:
    """Run the test with the process in New York time, then restore the zone."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        # Five hours behind UTC in winter: a formatter reading local time shows it.
        assert time.localtime(1456963421).tm_hour == 19
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


# --- /update: the XML --------------------------------------------------------


def test_update_xml_names_every_element_and_attribute_exactly() -> None:
    release = release_of(raw_release())

    root = parse_xml(update_xml(offer_of(release), None))

    assert root.tag == "MediaContainer"
    assert root.attrib == {
        "friendlyName": "myPlex",
        "identifier": "com.plexapp.plugins.myplex",
        "size": "1",
        "title": "Updates",
    }
    [element] = list(root)
    assert element.tag == "Release"
    assert element.attrib == {
        "id": "2215983",
        "version": "1.0.3",
        "added": "",
        "fixed": "",
        "live": "true",
        "autoupdate": "true",
        "createdAt": "2016-03-03 00:03:41 UTC",
    }
    [package] = list(element)
    assert package.tag == "Package"
    assert package.attrib == {
        "file": f"{DOWNLOADS}/1.0.3/RasPlex-RPi2.RP-1.0.3.tar.gz",
        "fileHash": SHA1,
        "fileName": "RasPlex-RPi2.RP-1.0.3.tar.gz",
        "delta": "false",
    }
    assert list(package) == []


def test_update_xml_without_an_offer_has_size_zero_and_no_children() -> None:
    root = parse_xml(update_xml(None, BASE))

    assert root.tag == "MediaContainer"
    assert root.attrib == {
        "friendlyName": "myPlex",
        "identifier": "com.plexapp.plugins.myplex",
        "size": "0",
        "title": "Updates",
    }
    assert list(root) == []


def test_update_xml_size_counts_the_release_elements() -> None:
    root = parse_xml(update_xml(offer_of(release_of(raw_release())), BASE))

    assert root.get("size") == str(len(root.findall("Release"))) == "1"


def test_update_xml_version_is_the_release_name_as_published() -> None:
    release = release_of(raw_release("1.8.0b", channel="beta"))

    root = parse_xml(update_xml(offer_of(release), None))

    assert root[0].get("version") == "1.8.0b"


def test_update_xml_offers_the_device_package_it_is_given() -> None:
    raw = raw_release(
        update={
            "RPi": {"file": "RasPlex-RPi.RP-1.0.3.tar.gz", "shasum": SHA1_RPI},
            "RPi2": {"file": "RasPlex-RPi2.RP-1.0.3.tar.gz", "shasum": SHA1},
        }
    )

    package = package_element(update_xml(offer_of(release_of(raw), "RPi"), None))

    assert package.get("fileHash") == SHA1_RPI
    assert package.get("fileName") == "RasPlex-RPi.RP-1.0.3.tar.gz"


def test_update_xml_file_hash_is_lowercase() -> None:
    raw = raw_release(
        update={
            "RPi2": {"file": "RasPlex-RPi2.RP-1.0.3.tar.gz", "shasum": SHA1.upper()}
        }
    )

    package = package_element(update_xml(offer_of(release_of(raw)), None))

    assert package.get("fileHash") == SHA1


def test_update_xml_escapes_hostile_values() -> None:
    hostile_url = 'https://mirror.example.org/a&b/<x>/"q"/RasPlex&<">.tar.gz'
    raw = raw_release(
        update={"RPi2": {"url": hostile_url, "shasum": SHA1}},
    )
    release = dataclasses.replace(release_of(raw), name='1.0.3 & <"beta">')

    answer = update_xml(offer_of(release), None)

    root = parse_xml(answer)
    assert root[0].get("version") == '1.0.3 & <"beta">'
    package = root[0][0]
    assert package.get("file") == hostile_url
    assert package.get("fileName") == 'RasPlex&<">.tar.gz'
    assert b"<x>" not in answer
    assert b'<"beta">' not in answer


def test_update_xml_escapes_hostile_tracked_urls() -> None:
    raw = raw_release(
        tag='v1.0.3&<"x">',
        update={"RPi2": {"file": "RasPlex-RPi2.RP-1.0.3.tar.gz", "shasum": SHA1}},
    )
    release = release_of(raw)

    root = parse_xml(update_xml(offer_of(release), 'http://a.example/?x=1&y="2"'))

    file = root[0][0].get("file")
    assert file == (
        'http://a.example/?x=1&y="2"/download/'
        "v1.0.3%26%3C%22x%22%3E/RasPlex-RPi2.RP-1.0.3.tar.gz"
    )


# --- /update: createdAt -----------------------------------------------------

CREATED_AT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC")


def test_created_at_has_the_fixed_position_format() -> None:
    release = release_of(raw_release(published="2016-03-03T00:03:41Z"))

    value = parse_xml(update_xml(offer_of(release), None))[0].get("createdAt")

    assert value == "2016-03-03 00:03:41 UTC"
    assert value is not None
    assert CREATED_AT.fullmatch(value)


def test_created_at_pads_single_digits() -> None:
    assert created_at(datetime(2016, 1, 2, 3, 4, 5, tzinfo=UTC)) == (
        "2016-01-02 03:04:05 UTC"
    )


@pytest.mark.usefixtures("new_york_time")
def test_created_at_does_not_depend_on_the_process_time_zone() -> None:
    release = release_of(raw_release(published="2016-03-03T00:03:41Z"))

    value = parse_xml(update_xml(offer_of(release), None))[0].get("createdAt")

    assert value == "2016-03-03 00:03:41 UTC"
    assert created_at(datetime(2016, 3, 3, 0, 3, 41, tzinfo=UTC)) == (
        "2016-03-03 00:03:41 UTC"
    )


@pytest.mark.usefixtures("new_york_time")
def test_created_at_of_a_time_with_another_offset_is_printed_in_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    moment = datetime(2016, 3, 2, 19, 3, 41, tzinfo=eastern)

    assert created_at(moment) == "2016-03-03 00:03:41 UTC"


def test_update_xml_created_at_of_a_release_with_another_offset_is_utc() -> None:
    release = release_of(raw_release())
    moment = datetime(2016, 3, 3, 9, 3, 41, tzinfo=timezone(timedelta(hours=9)))
    release = dataclasses.replace(release, published_at=moment)

    value = parse_xml(update_xml(offer_of(release), None))[0].get("createdAt")

    assert value == "2016-03-03 00:03:41 UTC"


# --- download URLs -----------------------------------------------------------


def test_update_xml_direct_url_is_githubs_download_url() -> None:
    package = package_element(update_xml(offer_of(release_of(raw_release())), None))

    assert package.get("file") == f"{DOWNLOADS}/1.0.3/RasPlex-RPi2.RP-1.0.3.tar.gz"
    assert package.get("fileName") == "RasPlex-RPi2.RP-1.0.3.tar.gz"


def test_update_xml_tracked_url_goes_through_this_server() -> None:
    package = package_element(update_xml(offer_of(release_of(raw_release())), BASE))

    assert package.get("file") == f"{BASE}/download/1.0.3/RasPlex-RPi2.RP-1.0.3.tar.gz"
    assert package.get("fileName") == "RasPlex-RPi2.RP-1.0.3.tar.gz"
    assert package.get("fileHash") == SHA1


def test_tracked_url_quotes_the_tag_and_the_file_name() -> None:
    mirror = "https://mirror.example.org/dl/RasPlex%20RPi2%261.0.3.tar.gz"
    raw = raw_release(
        tag="v1.0.3/final", update={"RPi2": {"url": mirror, "shasum": SHA1}}
    )
    release = release_of(raw)

    package = package_element(update_xml(offer_of(release), BASE))

    file = package.get("file")
    assert file == f"{BASE}/download/v1.0.3%2Ffinal/RasPlex%20RPi2%261.0.3.tar.gz"
    assert package.get("fileName") == last_segment(file)


def test_tracked_url_leads_back_to_the_package() -> None:
    # The /download route unquotes the path and asks the release for the name.
    mirror = "https://mirror.example.org/dl/RasPlex%20RPi2+%231.0.3.tar.gz"
    release = release_of(raw_release(update={"RPi2": {"url": mirror, "shasum": SHA1}}))

    file = package_element(update_xml(offer_of(release), BASE)).get("file")

    assert file is not None
    prefix = f"{BASE}/download/"
    assert file.startswith(prefix)
    tag, name = file.removeprefix(prefix).split("/")
    assert unquote(tag) == release.tag
    assert release.download(unquote(name)) is release.update["RPi2"]


def test_file_name_is_the_last_path_segment_of_a_direct_url() -> None:
    mirror = "https://mirror.example.org/dl/RasPlex-RPi2-1.0.3.tar.gz?sig=abc#top"
    release = release_of(raw_release(update={"RPi2": {"url": mirror, "shasum": SHA1}}))

    package = package_element(update_xml(offer_of(release), None))

    assert package.get("file") == mirror
    assert package.get("fileName") == "RasPlex-RPi2-1.0.3.tar.gz"


# --- /install ----------------------------------------------------------------


def install_entries(
    catalog: Catalog, device: str = "RPi2", base_url: str | None = None
) -> list[dict[str, Any]]:
    answer = install_json(installable(catalog, device), device, base_url)
    entries = json.loads(answer.decode("utf-8"))
    assert isinstance(entries, list)
    return entries


def test_install_json_carries_every_field() -> None:
    catalog = build(raw_release())

    [entry] = install_entries(catalog)

    assert entry["id"] == 2215983
    assert entry["version"] == "1.0.3"
    assert entry["channel"] == "stable"
    assert entry["autoupdate"] is True
    assert entry["time"] == "2016-03-03T00:03:41+00:00"
    assert entry["notes"] == "A change\nAnother change"
    assert entry["install_url"] == f"{DOWNLOADS}/1.0.3/RasPlex-RPi2.RP-1.0.3.img.gz"
    assert entry["install_sum"] == MD5
    assert entry["update_url"] == f"{DOWNLOADS}/1.0.3/RasPlex-RPi2.RP-1.0.3.tar.gz"
    assert entry["update_sum"] == SHA1


def test_install_json_field_types() -> None:
    [entry] = install_entries(build(raw_release()))

    assert isinstance(entry["id"], int)
    assert isinstance(entry["autoupdate"], bool)
    for key in ("version", "channel", "time", "notes", "install_url", "install_sum"):
        assert isinstance(entry[key], str), key


def test_install_json_without_update_package_has_null_update_and_no_autoupdate() -> (
    None
):
    raw = raw_release(
        update={"RPi2": {"file": "RasPlex-RPi2.RP-1.0.3.tar.gz", "shasum": "bad"}}
    )

    [entry] = install_entries(build(raw))

    assert entry["install_url"] == f"{DOWNLOADS}/1.0.3/RasPlex-RPi2.RP-1.0.3.img.gz"
    assert entry["update_url"] is None
    assert entry["update_sum"] is None
    assert entry["autoupdate"] is False


def test_install_json_update_fields_are_the_same_devices() -> None:
    raw = raw_release(
        install={
            "RPi": {"file": "RasPlex-RPi.RP-1.0.3.img.gz", "md5sum": MD5},
            "RPi2": {"file": "RasPlex-RPi2.RP-1.0.3.img.gz", "md5sum": MD5},
        },
        update={"RPi2": {"file": "RasPlex-RPi2.RP-1.0.3.tar.gz", "shasum": SHA1}},
    )
    catalog = build(raw)

    [rpi] = install_entries(catalog, "RPi")
    [rpi2] = install_entries(catalog, "RPi2")

    assert rpi["update_url"] is None
    assert rpi["autoupdate"] is False
    assert rpi2["update_sum"] == SHA1
    assert rpi2["autoupdate"] is True


def test_install_json_notes_are_the_changes_one_per_line() -> None:
    catalog = build(raw_release(changes=["First", "Second & <third>", "Fourth"]))

    [entry] = install_entries(catalog)

    assert entry["notes"] == "First\nSecond & <third>\nFourth"


def test_install_json_notes_without_changes_are_empty() -> None:
    [entry] = install_entries(build(raw_release(changes=())))

    assert entry["notes"] == ""


def test_install_json_keeps_the_order_it_is_given() -> None:
    catalog = build(
        raw_release("1.8.0-rc1", release_id=3, channel="prerelease"),
        raw_release("1.7.1", release_id=2),
        raw_release("1.6.2", release_id=1),
    )

    entries = install_entries(catalog)

    assert [e["version"] for e in entries] == ["1.7.1", "1.8.0-rc1", "1.6.2"]
    assert [e["channel"] for e in entries] == ["stable", "prerelease", "stable"]
    assert [e["id"] for e in entries] == [2, 3, 1]


def test_install_json_direct_urls_without_base() -> None:
    [entry] = install_entries(build(raw_release()), base_url=None)

    assert entry["install_url"].startswith(f"{DOWNLOADS}/")
    assert entry["update_url"].startswith(f"{DOWNLOADS}/")


def test_install_json_tracked_urls_with_base() -> None:
    [entry] = install_entries(build(raw_release(tag="v 1.0.3")), base_url=BASE)

    assert entry["install_url"] == (
        f"{BASE}/download/v%201.0.3/RasPlex-RPi2.RP-1.0.3.img.gz"
    )
    assert entry["update_url"] == (
        f"{BASE}/download/v%201.0.3/RasPlex-RPi2.RP-1.0.3.tar.gz"
    )


def test_install_json_of_nothing_is_an_empty_array() -> None:
    assert json.loads(install_json([], "RPi9", None)) == []


def test_install_json_time_is_utc_iso_8601() -> None:
    catalog = build(raw_release(published="2016-03-03T02:03:41+02:00"))

    [entry] = install_entries(catalog)

    assert datetime.fromisoformat(entry["time"]) == datetime(
        2016, 3, 3, 0, 3, 41, tzinfo=UTC
    )
    assert entry["time"].endswith("+00:00")


def test_install_json_is_utf8() -> None:
    catalog = build(raw_release(changes=["Überarbeitete Oberfläche"]))

    answer = install_json(installable(catalog, "RPi2"), "RPi2", None)

    assert "Überarbeitete Oberfläche".encode() in answer


def test_install_json_of_an_entry_is_built_from_release_and_package() -> None:
    release = release_of(raw_release())
    package: Package = release.install["RPi2"]

    [entry] = json.loads(install_json([(release, package)], "RPi2", None))

    assert entry["install_url"] == package.url
    assert entry["install_sum"] == package.checksum


# --- /devices ----------------------------------------------------------------


def test_devices_json_lists_id_and_name_in_the_given_order() -> None:
    answer = devices_json([("RPi2", "Raspberry Pi 2 / 3"), ("RPi", "Raspberry Pi 1")])

    assert json.loads(answer) == [
        {"id": "RPi2", "name": "Raspberry Pi 2 / 3"},
        {"id": "RPi", "name": "Raspberry Pi 1"},
    ]


def test_devices_json_of_nothing_is_an_empty_array() -> None:
    assert json.loads(devices_json([])) == []


def test_devices_json_keeps_names_verbatim() -> None:
    answer = devices_json([("RPi3bplus", 'Raspberry Pi 3 B+ "Plus" & Ä×')])

    assert json.loads(answer.decode("utf-8")) == [
        {"id": "RPi3bplus", "name": 'Raspberry Pi 3 B+ "Plus" & Ä×'}
    ]
