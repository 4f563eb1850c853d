"""Building the catalog from GitHub release objects (PROTOCOL.md 2.3 and 8)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rasbot.catalog import (
    Asset,
    Catalog,
    Package,
    Release,
    assemble,
    build_catalog,
    parse_releases,
    unknown,
)
from rasbot.versions import parse_version

KNOWN_DEVICES = ("RPi2", "RPi", "RPi3bplus")
DOWNLOADS = "https://github.com/RasPlex/RasPlex/releases/download"

# --- factories ---------------------------------------------------------------


def md5_of(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def sha1_of(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def install_file(device: str, version: str) -> str:
    return f"RasPlex-{device}.RP-{version}.img.gz"


def update_file(device: str, version: str) -> str:
    return f"RasPlex-{device}.RP-{version}.tar.gz"


def install_fields(device: str, version: str) -> dict[str, str]:
    file = install_file(device, version)
    return {"file": file, "md5sum": md5_of(file)}


def update_fields(device: str, version: str) -> dict[str, str]:
    file = update_file(device, version)
    return {"file": file, "shasum": sha1_of(file)}


def _yaml_section(kind: str, devices: Mapping[str, Mapping[str, str]]) -> list[str]:
    # The list-of-one-key-maps form, as written on GitHub; JSON strings are valid
    # YAML double-quoted scalars, so any value survives.
    lines = [f"{kind}:"]
    for device, fields in devices.items():
        lines.append(f"  {device}:")
        lines.extend(f"    - {k}: {json.dumps(v)}" for k, v in fields.items())
    return [*lines, ""]


def body_text(
    *,
    channel: str | None = "stable",
    changes: Sequence[str] = ("A change", "Another change"),
    install: Mapping[str, Mapping[str, str]] | None = None,
    update: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """A per-device release body (PROTOCOL.md 8)."""
    lines = [f"channel: {channel}", ""] if channel is not None else []
    if changes:
        lines += ["changes:", *(f"  - {json.dumps(c)}" for c in changes), ""]
    if install:
        lines += _yaml_section("install", install)
    if update:
        lines += _yaml_section("update", update)
    return "\n".join(lines)


def standard_body(
    version: str, devices: Iterable[str] = ("RPi2",), channel: str = "stable"
) -> str:
    """A body with an install image and an update package for every device."""
    devices = list(devices)
    return body_text(
        channel=channel,
        install={d: install_fields(d, version) for d in devices},
        update={d: update_fields(d, version) for d in devices},
    )


def asset(name: str, tag: str, *, state: str = "uploaded") -> dict[str, Any]:
    """A GitHub release asset object."""
    return {
        "name": name,
        "browser_download_url": f"{DOWNLOADS}/{tag}/{name}",
        "size": 1234,
        "download_count": 7,
        "state": state,
    }


def standard_assets(
    version: str, tag: str, devices: Iterable[str] = ("RPi2",)
) -> list[dict[str, Any]]:
    names = [f(d, version) for d in devices for f in (install_file, update_file)]
    return [asset(name, tag) for name in names]


def raw_release(
    version: str,
    *,
    release_id: int = 1,
    name: str | None = None,
    tag: str | None = None,
    channel: str = "stable",
    devices: Iterable[str] = ("RPi2",),
    published: str | None = "2016-03-03T00:03:41Z",
    draft: bool = False,
    body: str | None = None,
    assets: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A GitHub release object whose files are all uploaded, unless told otherwise."""
    devices = list(devices)
    tag = version if tag is None else tag
    return {
        "id": release_id,
        "tag_name": tag,
        "name": version if name is None else name,
        "draft": draft,
        "prerelease": False,
        "created_at": published or "2016-03-01T00:00:00Z",
        "published_at": None if draft else published,
        "body": standard_body(version, devices, channel) if body is None else body,
        "assets": standard_assets(version, tag, devices) if assets is None else assets,
    }


def build(
    *raws: Mapping[str, Any],
    devices: Sequence[str] = KNOWN_DEVICES,
    serve_beta_drafts: bool = False,
) -> Catalog:
    releases, problems = build_catalog(
        list(raws), devices=devices, serve_beta_drafts=serve_beta_drafts
    )
    return Catalog(releases=releases, problems=problems)


def names(catalog: Catalog) -> list[str]:
    return [release.name for release in catalog.releases]


def only(catalog: Catalog) -> Release:
    assert len(catalog.releases) == 1, names(catalog)
    return catalog.releases[0]


def problem_texts(catalog: Catalog) -> list[str]:
    return [str(problem) for problem in catalog.problems]


# --- ordering ----------------------------------------------------------------


def test_releases_are_ordered_by_version_not_by_api_order() -> None:
    # GitHub lists the newest publication first; 1.0.4 is a backport published
    # after 1.6.2, and 0.5.10 is older than 0.6.0 despite its larger last digit.
    catalog = build(
        raw_release("1.0.4", release_id=5, published="2017-01-01T00:00:00Z"),
        raw_release("1.6.2", release_id=4, published="2016-09-01T00:00:00Z"),
        raw_release("0.6.0", release_id=3, published="2015-09-01T00:00:00Z"),
        raw_release("1.0.3", release_id=2, published="2016-03-03T00:00:00Z"),
        raw_release("0.5.10", release_id=1, published="2015-08-01T00:00:00Z"),
    )

    assert names(catalog) == ["1.6.2", "1.0.4", "1.0.3", "0.6.0", "0.5.10"]
    assert catalog.problems == ()


def test_prerelease_markers_rank_below_the_release() -> None:
    catalog = build(
        raw_release("1.8.0b", release_id=1, channel="beta"),
        raw_release("1.8.0", release_id=2),
        raw_release("1.8.0-rc1", release_id=3, channel="prerelease"),
        raw_release("1.7.1", release_id=4),
    )

    assert names(catalog) == ["1.8.0", "1.8.0-rc1", "1.8.0b", "1.7.1"]


def test_release_fields_come_from_the_github_object_and_the_body() -> None:
    raw = raw_release(
        "1.0.3", release_id=2215983, channel="prerelease", devices=["RPi", "RPi2"]
    )

    release = only(build(raw))

    assert release.id == 2215983
    assert release.name == "1.0.3"
    assert release.tag == "1.0.3"
    assert release.version == parse_version("1.0.3")
    assert release.channel == "prerelease"
    assert release.draft is False
    assert release.published_at == datetime(2016, 3, 3, 0, 3, 41, tzinfo=UTC)
    assert release.changes == ("A change", "Another change")
    assert set(release.install) == {"RPi", "RPi2"}
    assert set(release.update) == {"RPi", "RPi2"}


def test_channel_comes_from_the_body_not_githubs_prerelease_flag() -> None:
    raw = raw_release("1.0.3", channel="stable")
    raw["prerelease"] = True

    assert only(build(raw)).channel == "stable"


def test_publication_time_is_converted_to_utc() -> None:
    raw = raw_release("1.0.3", published="2016-03-03T02:03:41+02:00")

    published = only(build(raw)).published_at

    assert published == datetime(2016, 3, 3, 0, 3, 41, tzinfo=UTC)
    assert published.utcoffset() == timedelta(0)


def test_empty_catalog_from_no_releases() -> None:
    catalog = build()

    assert catalog.releases == ()
    assert catalog.problems == ()


# --- names and versions ------------------------------------------------------


@pytest.mark.parametrize("empty", ["", None, "   "])
def test_empty_name_uses_the_tag_as_version(empty: str | None) -> None:
    raw = raw_release("1.0.3", tag="1.0.3")
    raw["name"] = empty

    release = only(build(raw))

    assert release.name == "1.0.3"
    assert release.version == parse_version("1.0.3")
    assert release.tag == "1.0.3"


def test_name_is_the_version_even_when_the_tag_differs() -> None:
    raw = raw_release("1.8.0b", tag="v1.8.0-beta", channel="beta")

    release = only(build(raw))

    assert release.name == "1.8.0b"
    assert release.tag == "v1.8.0-beta"
    assert release.version == parse_version("1.8.0b")


def test_name_that_is_not_a_version_is_reported_and_not_served() -> None:
    catalog = build(
        raw_release("1.0.3", release_id=1, name="Summer release"),
        raw_release("1.0.2", release_id=2),
    )

    assert names(catalog) == ["1.0.2"]
    assert len(catalog.problems) == 1
    assert "Summer release" in str(catalog.problems[0])
    assert "not a version" in catalog.problems[0].reason


def test_empty_name_and_unparsable_tag_is_reported_and_not_served() -> None:
    raw = raw_release("1.0.3", tag="latest-build")
    raw["name"] = ""

    catalog = build(raw)

    assert catalog.releases == ()
    assert len(catalog.problems) == 1
    assert "latest-build" in str(catalog.problems[0])


# --- bodies ------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param("channel: stable\ninstall: [unclosed\n", id="not-yaml"),
        pytest.param("Just some *Markdown* notes.", id="plain-text"),
        pytest.param("", id="empty"),
        pytest.param(
            body_text(channel=None, install={"RPi2": install_fields("RPi2", "1.0.3")}),
            id="no-channel",
        ),
        pytest.param(
            body_text(
                channel="nightly", install={"RPi2": install_fields("RPi2", "1.0.3")}
            ),
            id="unknown-channel",
        ),
    ],
)
def test_unusable_body_is_reported_and_that_release_not_served(body: str) -> None:
    catalog = build(
        raw_release("1.0.3", release_id=1, body=body),
        raw_release("1.0.2", release_id=2),
    )

    assert names(catalog) == ["1.0.2"]
    assert catalog.problems
    assert all(problem.release == "1.0.3" for problem in catalog.problems)


def test_legacy_single_device_body_means_rpi() -> None:
    body = f"""\
channel: stable

changes:
  - A change

install:
  - file: RasPlex-test.img.gz
  - md5sum: {md5_of("i")}
  - url: an optional URL where this image is hosted

update:
  - file: RasPlex-test.tar.gz
  - shasum: {sha1_of("u")}
"""
    assets = [
        asset("RasPlex-test.img.gz", "0.5.1"),
        asset("RasPlex-test.tar.gz", "0.5.1"),
    ]

    release = only(build(raw_release("0.5.1", body=body, assets=assets)))

    assert set(release.install) == {"RPi"}
    assert set(release.update) == {"RPi"}
    assert release.install["RPi"].url == f"{DOWNLOADS}/0.5.1/RasPlex-test.img.gz"
    assert release.update["RPi"].checksum == sha1_of("u")


def test_uppercase_checksums_are_served_in_lowercase() -> None:
    fields = update_fields("RPi2", "1.0.3")
    body = body_text(
        install={"RPi2": {**install_fields("RPi2", "1.0.3")}},
        update={"RPi2": {**fields, "shasum": fields["shasum"].upper()}},
    )

    release = only(build(raw_release("1.0.3", body=body)))

    assert release.update["RPi2"].checksum == fields["shasum"]


# --- drafts ------------------------------------------------------------------


@pytest.mark.parametrize("serve_beta_drafts", [False, True])
@pytest.mark.parametrize("channel", ["stable", "prerelease"])
def test_drafts_are_never_served_on_stable_or_prerelease(
    channel: str, serve_beta_drafts: bool
) -> None:
    catalog = build(
        raw_release("1.1.0", release_id=1, channel=channel, draft=True),
        raw_release("1.0.3", release_id=2),
        serve_beta_drafts=serve_beta_drafts,
    )

    assert names(catalog) == ["1.0.3"]


def test_beta_drafts_are_not_served_without_the_option() -> None:
    catalog = build(raw_release("1.8.0b", channel="beta", draft=True))

    assert catalog.releases == ()


def test_beta_drafts_are_served_with_the_option() -> None:
    raw = raw_release("1.8.0b", channel="beta", draft=True)

    release = only(build(raw, serve_beta_drafts=True))

    assert release.draft is True
    assert release.channel == "beta"
    # A draft has no publication time yet; its creation time stands in.
    assert release.published_at == datetime(2016, 3, 3, 0, 3, 41, tzinfo=UTC)


def test_published_beta_is_served_without_the_option() -> None:
    release = only(build(raw_release("1.8.0b", channel="beta")))

    assert release.channel == "beta"
    assert release.draft is False


# --- assets and packages -----------------------------------------------------


def test_file_is_matched_to_the_asset_of_the_same_name() -> None:
    release = only(build(raw_release("1.0.3")))

    package = release.update["RPi2"]
    name = update_file("RPi2", "1.0.3")
    assert package == Package(
        device="RPi2",
        kind="update",
        checksum=sha1_of(name),
        asset=Asset(name, f"{DOWNLOADS}/1.0.3/", name, 1234, 7),
    )
    assert package.url == package.asset.url == f"{DOWNLOADS}/1.0.3/{name}"
    assert package.file_name == name
    assert (
        release.install["RPi2"].url
        == f"{DOWNLOADS}/1.0.3/{install_file('RPi2', '1.0.3')}"
    )
    assert release.install["RPi2"].checksum == md5_of(install_file("RPi2", "1.0.3"))


@pytest.mark.parametrize(
    ("written", "uploaded"),
    [
        ("RasPlex RPi2 1.0.3.tar.gz", "RasPlex.RPi2.1.0.3.tar.gz"),
        ("RasPlex (RPi2)~1.0.3.tar.gz", "RasPlex..RPi2..1.0.3.tar.gz"),
        ("RasPlex_RPi2+x-1.0.3.tar.gz", "RasPlex_RPi2+x-1.0.3.tar.gz"),
        ("RasPlex-RPi2-ü.tar.gz", "RasPlex-RPi2-..tar.gz"),
    ],
)
def test_file_matches_the_asset_github_renamed(written: str, uploaded: str) -> None:
    body = body_text(update={"RPi2": {"file": written, "shasum": sha1_of(written)}})

    release = only(
        build(raw_release("1.0.3", body=body, assets=[asset(uploaded, "1.0.3")]))
    )

    package = release.update["RPi2"]
    assert package.url == f"{DOWNLOADS}/1.0.3/{uploaded}"
    assert package.asset is not None
    assert package.asset.name == uploaded
    assert release.download(uploaded) is not None


def test_exact_asset_name_wins_over_the_renamed_one() -> None:
    written = "RasPlex RPi2.tar.gz"
    body = body_text(update={"RPi2": {"file": written, "shasum": sha1_of(written)}})
    assets = [asset("RasPlex.RPi2.tar.gz", "1.0.3"), asset(written, "1.0.3")]

    release = only(build(raw_release("1.0.3", body=body, assets=assets)))

    package = release.update["RPi2"]
    assert package.asset is not None
    assert package.asset.name == written


def test_url_overrides_the_asset() -> None:
    mirror = "https://mirror.example.org/rasplex/RasPlex-RPi2-1.0.3.tar.gz"
    fields = {**update_fields("RPi2", "1.0.3"), "url": mirror}
    body = body_text(update={"RPi2": fields})

    release = only(build(raw_release("1.0.3", body=body)))

    assert release.update["RPi2"].url == mirror
    assert release.update["RPi2"].file_name == "RasPlex-RPi2-1.0.3.tar.gz"


def test_url_serves_a_package_with_no_asset() -> None:
    mirror = "https://mirror.example.org/rasplex/RasPlex-RPi2-1.0.3.tar.gz"
    body = body_text(update={"RPi2": {"url": mirror, "shasum": sha1_of("x")}})

    catalog = build(raw_release("1.0.3", body=body, assets=[]))

    package = only(catalog).update["RPi2"]
    assert package.url == mirror
    assert package.asset is None
    assert catalog.problems == ()


def test_file_matching_no_asset_leaves_only_that_package_missing() -> None:
    # The RPi2 update archive was never uploaded; everything else was.
    raw = raw_release("1.0.3", devices=["RPi", "RPi2"])
    raw["assets"] = [
        a for a in raw["assets"] if a["name"] != update_file("RPi2", "1.0.3")
    ]

    catalog = build(raw)

    release = only(catalog)
    assert set(release.update) == {"RPi"}
    assert set(release.install) == {"RPi", "RPi2"}
    assert len(catalog.problems) == 1
    problem = catalog.problems[0]
    assert (problem.release, problem.device, problem.kind) == (
        "1.0.3",
        "RPi2",
        "update",
    )
    assert update_file("RPi2", "1.0.3") in problem.reason


def test_asset_still_uploading_is_treated_as_absent() -> None:
    name = update_file("RPi2", "1.0.3")
    raw = raw_release("1.0.3", devices=["RPi", "RPi2"])
    for entry in raw["assets"]:
        if entry["name"] == name:
            entry["state"] = "new"

    catalog = build(raw)

    release = only(catalog)
    assert "RPi2" not in release.update
    assert "RPi" in release.update
    assert name not in release.assets
    assert release.download(name) is None
    assert [(p.device, p.kind) for p in catalog.problems] == [("RPi2", "update")]


def test_malformed_shasum_spoils_only_that_devices_update_package() -> None:
    body = body_text(
        install={d: install_fields(d, "1.0.3") for d in ("RPi", "RPi2")},
        update={
            "RPi": update_fields("RPi", "1.0.3"),
            "RPi2": {"file": update_file("RPi2", "1.0.3"), "shasum": "not-a-sha1"},
        },
    )

    catalog = build(raw_release("1.0.3", devices=["RPi", "RPi2"], body=body))

    release = only(catalog)
    assert set(release.update) == {"RPi"}
    assert set(release.install) == {"RPi", "RPi2"}
    assert [(p.device, p.kind) for p in catalog.problems] == [("RPi2", "update")]


@pytest.mark.parametrize(
    "bad",
    [
        "d3486ae9136e7856bc42212385ea79709447580",  # 39 digits
        "d3486ae9136e7856bc42212385ea7970944758020",  # 41 digits
        "g3486ae9136e7856bc42212385ea797094475802",  # not hex
        "a823d770a0ccfefe0a04b34c677e6bf8",  # an MD5 in the SHA-1 field
    ],
)
def test_shasum_must_be_forty_hex_digits(bad: str) -> None:
    body = body_text(
        update={"RPi2": {"file": update_file("RPi2", "1.0.3"), "shasum": bad}}
    )

    catalog = build(raw_release("1.0.3", body=body))

    assert only(catalog).update == {}
    assert [(p.device, p.kind) for p in catalog.problems] == [("RPi2", "update")]


def test_malformed_md5sum_spoils_only_that_devices_install_image() -> None:
    body = body_text(
        install={
            "RPi": install_fields("RPi", "1.0.3"),
            "RPi2": {"file": install_file("RPi2", "1.0.3"), "md5sum": "12345"},
        },
        update={d: update_fields(d, "1.0.3") for d in ("RPi", "RPi2")},
    )

    catalog = build(raw_release("1.0.3", devices=["RPi", "RPi2"], body=body))

    release = only(catalog)
    assert set(release.install) == {"RPi"}
    assert set(release.update) == {"RPi", "RPi2"}
    assert [(p.device, p.kind) for p in catalog.problems] == [("RPi2", "install")]


def test_one_broken_release_does_not_stop_the_others() -> None:
    catalog = build(
        raw_release("1.0.4", release_id=1, body="channel: [broken"),
        raw_release("1.0.3", release_id=2, name="not a version"),
        raw_release("1.0.2", release_id=3),
    )

    assert names(catalog) == ["1.0.2"]
    assert len(catalog.problems) >= 2


# --- devices -----------------------------------------------------------------


def test_device_ids_match_case_insensitively_and_are_written_canonically() -> None:
    body = body_text(
        install={
            "rpi2": install_fields("RPi2", "1.0.3"),
            "RPI": install_fields("RPi", "1.0.3"),
        },
        update={"Rpi2": update_fields("RPi2", "1.0.3")},
    )

    release = only(build(raw_release("1.0.3", devices=["RPi", "RPi2"], body=body)))

    assert set(release.install) == {"RPi2", "RPi"}
    assert set(release.update) == {"RPi2"}
    assert release.install["RPi2"].device == "RPi2"
    assert release.update["RPi2"].device == "RPi2"
    assert release.declared == frozenset({"RPi2", "RPi"})


def test_unknown_device_id_is_kept_as_written() -> None:
    body = body_text(install={"RPi5": install_fields("RPi5", "2.0.0")})

    release = only(build(raw_release("2.0.0", devices=["RPi5"], body=body)))

    assert set(release.install) == {"RPi5"}


def test_specific_device_is_declared_with_its_own_packages() -> None:
    raw = raw_release("1.8.0b", channel="beta", devices=["RPi2", "RPi3bplus"])

    release = only(build(raw))

    assert "RPi3bplus" in release.declared
    assert release.update["RPi3bplus"].file_name == update_file("RPi3bplus", "1.8.0b")
    assert release.install["RPi3bplus"].device == "RPi3bplus"


def test_update_package_of_a_declared_specific_device() -> None:
    raw = raw_release("1.8.0b", channel="beta", devices=["RPi2", "RPi3bplus"])

    release = only(build(raw))

    assert release.update_package("RPi2", "RPi3bplus") is release.update["RPi3bplus"]
    assert release.update_package("RPi2", None) is release.update["RPi2"]


def test_update_package_of_an_undeclared_specific_device_is_the_general_one() -> None:
    release = only(build(raw_release("1.7.1", devices=["RPi2"])))

    assert release.update_package("RPi2", "RPi3bplus") is release.update["RPi2"]


def test_declared_specific_device_without_update_package_gets_nothing() -> None:
    # 1.8.0b names the 3B+ only in its install section: the general RPi2 archive
    # may not boot on that board, so it must not be offered instead.
    body = body_text(
        channel="beta",
        install={d: install_fields(d, "1.8.0b") for d in ("RPi2", "RPi3bplus")},
        update={"RPi2": update_fields("RPi2", "1.8.0b")},
    )
    raw = raw_release("1.8.0b", devices=["RPi2", "RPi3bplus"], body=body)

    release = only(build(raw))

    assert "RPi3bplus" in release.declared
    assert release.update_package("RPi2", "RPi3bplus") is None
    assert release.update_package("RPi2", None) is release.update["RPi2"]


def test_declared_specific_device_with_unusable_update_package_gets_nothing() -> None:
    body = body_text(
        channel="beta",
        update={
            "RPi2": update_fields("RPi2", "1.8.0b"),
            "rpi3BPLUS": {"file": update_file("RPi3bplus", "1.8.0b"), "shasum": "x"},
        },
    )
    raw = raw_release("1.8.0b", devices=["RPi2", "RPi3bplus"], body=body)

    release = only(build(raw))

    assert "RPi3bplus" in release.declared
    assert release.update_package("RPi2", "RPi3bplus") is None


def test_update_package_of_a_device_without_one_is_none() -> None:
    release = only(build(raw_release("1.0.3", devices=["RPi2"])))

    assert release.update_package("RPi", None) is None


# --- duplicates --------------------------------------------------------------


@pytest.mark.parametrize(("first", "second"), [("1.0.3", "v1.0.3"), ("1.0", "1.0.0")])
def test_duplicate_versions_keep_one_release_and_report(
    first: str, second: str
) -> None:
    catalog = build(
        raw_release(first, release_id=1, published="2016-03-03T00:00:00Z"),
        raw_release(second, release_id=2, published="2016-03-04T00:00:00Z"),
        raw_release("0.9.0", release_id=3),
    )

    assert len(catalog.releases) == 2
    kept = catalog.releases[0]
    # The later publication supersedes the earlier one.
    assert kept.id == 2
    assert kept.name == second
    assert len(catalog.problems) == 1
    assert catalog.problems[0].release == first
    assert second in str(catalog.problems[0])


def test_duplicate_versions_keep_the_later_publication_whatever_the_api_order() -> None:
    catalog = build(
        raw_release("v1.0.3", release_id=2, published="2016-03-04T00:00:00Z"),
        raw_release("1.0.3", release_id=1, published="2016-03-03T00:00:00Z"),
    )

    assert only(catalog).id == 2
    assert len(catalog.problems) == 1


# --- downloads and tags ------------------------------------------------------


def test_download_finds_an_asset_by_its_name() -> None:
    release = only(build(raw_release("1.0.3")))
    name = install_file("RPi2", "1.0.3")

    found = release.download(name)

    assert isinstance(found, Asset)
    assert found.url == f"{DOWNLOADS}/1.0.3/{name}"


def test_download_finds_an_asset_not_named_in_the_body() -> None:
    raw = raw_release("1.0.3")
    raw["assets"].append(asset("SHA1SUMS.txt", "1.0.3"))

    found = only(build(raw)).download("SHA1SUMS.txt")

    assert isinstance(found, Asset)
    assert found.url == f"{DOWNLOADS}/1.0.3/SHA1SUMS.txt"


def test_download_finds_a_package_hosted_elsewhere_by_its_file_name() -> None:
    mirror = "https://mirror.example.org/rasplex/RasPlex%20RPi2.tar.gz"
    body = body_text(update={"RPi2": {"url": mirror, "shasum": sha1_of("x")}})
    release = only(build(raw_release("1.0.3", body=body, assets=[])))

    found = release.download("RasPlex RPi2.tar.gz")

    assert isinstance(found, Package)
    assert found.url == mirror


def test_download_of_an_unknown_name_is_none() -> None:
    release = only(build(raw_release("1.0.3")))

    assert release.download("RasPlex-RPi2.RP-9.9.9.tar.gz") is None
    assert release.download("") is None


def test_catalog_finds_a_release_by_its_tag() -> None:
    catalog = build(
        raw_release("1.0.3", release_id=1, tag="v1.0.3"),
        raw_release("1.0.2", release_id=2),
    )

    found = catalog.by_tag("v1.0.3")
    assert found is not None
    assert found.id == 1
    assert catalog.by_tag("1.0.2") is catalog.releases[1]
    assert catalog.by_tag("1.0.3") is None
    assert catalog.by_tag("9.9.9") is None


def test_release_without_tag_is_found_by_its_name() -> None:
    raw = raw_release("1.0.3")
    raw["tag_name"] = ""

    catalog = build(raw)

    assert catalog.by_tag("1.0.3") is only(catalog)


def test_release_not_served_is_not_found_by_tag() -> None:
    catalog = build(raw_release("1.1.0", channel="stable", draft=True))

    assert catalog.by_tag("1.1.0") is None


# --- rebuilding from a previous parse ----------------------------------------


def _history() -> list[dict[str, Any]]:
    return [
        raw_release("1.0.3", release_id=3, devices=("RPi2", "RPi")),
        raw_release("1.0.2", release_id=2),
        raw_release("1.0.2", release_id=22, published="2016-03-04T00:00:00Z"),
        raw_release("not a version", release_id=4),
        raw_release("1.0.1", release_id=1, body="channel: stable\nupdate: [\n"),
    ]


def test_a_rebuild_from_a_previous_parse_is_a_fresh_build() -> None:
    before = _history()
    after = [dict(before[0], body=before[0]["body"] + "\n"), *before[1:]]
    after[1] = raw_release("1.0.2", release_id=2, devices=("RPi3bplus",))
    after.append(raw_release("1.1.0", release_id=5))
    previous = parse_releases(before, devices=KNOWN_DEVICES)

    parsed = parse_releases(
        after, devices=KNOWN_DEVICES, known={p.key: p for p in previous}
    )

    assert assemble(parsed) == build_catalog(after, devices=KNOWN_DEVICES)
    reused = [new is old for new, old in zip(parsed, previous, strict=False)]
    assert reused == [False, False, True, True, True]


def test_a_changed_download_count_alone_is_no_reason_to_parse_again() -> None:
    before = [raw_release("1.0.3"), raw_release("1.0.4", release_id=2)]
    after = [raw_release("1.0.3"), raw_release("1.0.4", release_id=2)]
    after[0]["assets"][0]["download_count"] = 8
    after[1]["assets"][0]["name"] = "renamed.img.gz"
    previous = parse_releases(before, devices=KNOWN_DEVICES)

    parsed = parse_releases(
        after, devices=KNOWN_DEVICES, known={p.key: p for p in previous}
    )

    assert parsed[0] is previous[0]
    assert parsed[1] is not previous[1]
    assert unknown(after, {p.key: p for p in previous}) == 1


def test_a_parse_that_looked_into_the_beta_directory_is_done_again() -> None:
    # A file copied there after the release was published is seen at the next
    # rebuild, even though the release itself did not change.
    name = "RasPlex-RPi2.RP-1.1.0b1.tar.gz"
    body = (
        "channel: beta\nupdate:\n  RPi2:\n"
        f"    - file: {name}\n    - shasum: {sha1_of(name)}\n"
    )
    raws = [
        raw_release("1.1.0b1", release_id=7, channel="beta", body=body, assets=[]),
        raw_release("1.0.3", release_id=3),
    ]
    beta_dir: set[str] = set()
    previous = parse_releases(
        raws, devices=KNOWN_DEVICES, in_beta_dir=beta_dir.__contains__
    )
    beta_dir.add(name)

    parsed = parse_releases(
        raws,
        devices=KNOWN_DEVICES,
        in_beta_dir=beta_dir.__contains__,
        known={p.key: p for p in previous},
    )

    assert [p.reusable for p in previous] == [False, True]
    assert previous[0].release is not None and previous[0].release.update == {}
    assert previous[0].problems and not parsed[0].problems
    assert (
        parsed[0].release is not None and parsed[0].release.update["RPi2"].in_beta_dir
    )
    assert parsed[1] is previous[1]
