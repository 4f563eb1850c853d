"""Generate ``examples/releases.json``: RasPlex's releases as GitHub lists them.

The file imitates the answer of GitHub's REST API "list releases" call for
``RasPlex/RasPlex``: release objects, newest created first, with YAML bodies in
both forms of PROTOCOL.md section 8 and a few deliberate mistakes (see
``examples/README.md``). Everything is derived from a seed; nothing is fetched.

    python examples/make_releases.py                 # rewrite releases.json
    python examples/make_releases.py --count 10000 --output /tmp/big.json

``make_releases(count)`` returns the same shape for benchmarks: the curated
history continued by synthetic releases up to ``count``.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import hashlib
import json
import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = "RasPlex/RasPlex"
API_URL = f"https://api.github.com/repos/{REPO}"
WEB_URL = f"https://github.com/{REPO}"
OUTPUT = Path(__file__).with_name("releases.json")

# GitHub replaces every character it does not like in an uploaded file's name.
_GITHUB_RENAMED = re.compile(r"[^A-Za-z0-9._+-]")

# GitHub ids grow with time; these anchors keep ours plausible. The middle one
# is 1.0.3, whose id PROTOCOL.md quotes.
_ID_ANCHORS = [
    (datetime(2014, 1, 1, tzinfo=UTC), 150_000),
    (datetime(2016, 3, 3, 0, 3, 41, tzinfo=UTC), 2_215_983),
    (datetime(2018, 6, 1, tzinfo=UTC), 11_200_000),
]

# The checksums PROTOCOL.md shows for 1.0.3 on the RPi2, so its examples can be
# reproduced from this file.
_PROTOCOL_SUMS = {
    ("1.0.3", "RPi2", "install"): "a823d770a0ccfefe0a04b34c677e6bf8",
    ("1.0.3", "RPi2", "update"): "d3486ae9136e7856bc42212385ea797094475802",
}


@dataclass(frozen=True)
class Plan:
    """One release as its maintainer meant it, before it becomes GitHub JSON."""

    version: str
    channel: str
    created: datetime
    style: str  # "legacy" (single device), "list" or "map" (per device)
    devices: tuple[str, ...]
    changes: tuple[str, ...]
    name: str | None = None  # None: the version, as maintainers usually wrote it
    draft: bool = False
    crlf: bool = False  # bodies edited in GitHub's web form come back with CRLF
    published_after: timedelta = timedelta(minutes=40)
    build: tuple[int, str] | None = None  # (build number, git hash) in file names
    release_id: int | None = None  # None: one that fits the creation time

    # The deliberate mistakes, each described in examples/README.md.
    broken_change: str | None = None  # a change line that is not valid YAML
    pasted_shasum_device: str | None = None  # `sha1sum` output, file name and all
    rebuilt_update_device: str | None = None  # body names a build never uploaded
    spaced_install_device: str | None = None  # a space GitHub turned into "."


@dataclass
class _Package:
    """One file of one release: as the body names it and as it was uploaded."""

    device: str
    kind: str
    body_file: str
    asset_name: str
    checksum: str
    body_checksum: str = field(default="")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the curated history -----------------------------------------------------


def _history() -> list[Plan]:
    """RasPlex's releases in the order they were created."""
    legacy = ("RPi",)
    both = ("RPi", "RPi2")
    return [
        Plan("0.3.9-rc1", "prerelease", _at("2014-01-19 18:22:04"), "legacy", legacy,
             ("First build on the new release server", "Faster boot")),
        Plan("0.3.9-rc2", "prerelease", _at("2014-02-09 21:40:11"), "legacy", legacy,
             ("Fix the library update hanging on large sections",), name=""),
        Plan("0.3.9", "stable", _at("2014-03-01 12:05:37"), "legacy", legacy,
             ("Stable release of 0.3.9", "Fix CEC with Samsung televisions")),
        Plan("0.4.0-rc1", "prerelease", _at("2014-04-05 09:12:50"), "legacy", legacy,
             ("Update to Plex Home Theater 1.2", "New default skin")),
        Plan("0.4.0-rc2", "prerelease", _at("2014-04-20 20:31:08"), "legacy", legacy,
             ("Fix the skin crashing on the home screen",)),
        Plan("0.4.0-rc3", "prerelease", _at("2014-05-10 16:48:29"), "legacy", legacy,
             ("Wi-Fi setup in the first-run wizard",)),
        Plan("0.4.0-rc4", "prerelease", _at("2014-06-01 11:02:45"), "legacy", legacy,
             ("Fix the wizard forgetting the Wi-Fi password",)),
        Plan("0.4.0", "stable", _at("2014-06-20 19:26:13"), "legacy", legacy,
             ("Plex Home Theater 1.2", "Wi-Fi setup", "New default skin")),
        Plan("0.4.1", "stable", _at("2014-08-02 14:55:02"), "legacy", legacy,
             ("Fix audio drop-outs over HDMI", "Overclocking presets")),
        Plan("0.5.0-rc1", "prerelease", _at("2014-11-10 22:14:36"), "legacy", legacy,
             ("Update to Plex Home Theater 1.3", "AirPlay receiver")),
        Plan("0.5.0-rc2", "prerelease", _at("2014-12-01 08:47:19"), "legacy", legacy,
             ("Smoother menus",),
             broken_change="Fixed: audio: passthrough for DTS and AC3"),
        Plan("0.5.0", "stable", _at("2014-12-20 17:33:58"), "legacy", legacy,
             ("Plex Home Theater 1.3", "AirPlay receiver", "Audio passthrough")),
        Plan("0.5.1", "stable", _at("2015-01-18 13:09:24"), "legacy", legacy,
             ("Fix the AirPlay receiver after standby",)),
        Plan("0.5.2", "stable", _at("2015-02-14 10:52:33"), "legacy", legacy,
             ("Fix the clock resetting after a power cut",)),
        Plan("0.6.0-rc1", "prerelease", _at("2015-03-05 23:51:40"), "list", both,
             ("Raspberry Pi 2 support", "Kernel 3.18")),
        Plan("0.6.0-rc2", "prerelease", _at("2015-03-22 19:30:58"), "list", both,
             ("Fix overscan settings on the Raspberry Pi 2",)),
        Plan("0.6.0", "stable", _at("2015-04-10 10:18:07"), "list", both,
             ("Raspberry Pi 2 support", "Kernel 3.18", "Faster library scrolling")),
        Plan("0.6.1", "stable", _at("2015-06-15 19:44:31"), "list", both,
             ("Fix HDMI-CEC on the Raspberry Pi 2",)),
        Plan("0.6.2", "stable", _at("2015-09-12 15:27:52"), "list", both,
             ("Update to Plex Home Theater 1.4.1", "Fix subtitles in MKV files")),
        Plan("1.0.0-rc1", "prerelease", _at("2015-12-05 21:03:16"), "list", both,
             ("Move to OpenPHT", "Kernel 4.1", "New installer")),
        Plan("1.0.0-rc2", "prerelease", _at("2016-01-10 18:36:44"), "list", both,
             ("Fix the updater on the Raspberry Pi 2",)),
        Plan("1.0.0", "stable", _at("2016-01-30 12:58:03"), "list", both,
             ("OpenPHT 1.5", "Kernel 4.1", "New installer")),
        Plan("1.0.1", "stable", _at("2016-02-10 09:41:27"), "list", both,
             ("Fix crash when resuming a paused video",)),
        Plan("1.0.2", "stable", _at("2016-02-20 16:22:55"), "list", both,
             ("Fix remote control repeat rate",), spaced_install_device="RPi2"),
        Plan("1.0.3", "stable", _at("2016-03-02 23:21:09"), "list", both,
             ("Fix audio sync after seeking", "Raspberry Pi 3 support"),
             published_after=timedelta(minutes=42, seconds=32), release_id=2215983),
        Plan("1.6.0-rc1", "prerelease", _at("2016-05-20 20:05:18"), "map", both,
             ("OpenPHT 1.6", "Kernel 4.4"), crlf=True, build=(97, "3c1e59a0")),
        Plan("1.6.0-rc2", "prerelease", _at("2016-06-10 14:50:42"), "map", both,
             ("Fix hardware decoding of MPEG-2",), crlf=True, build=(104, "8d02fa7b")),
        Plan("1.6.0", "stable", _at("2016-06-25 11:31:20"), "map", both,
             ("OpenPHT 1.6", "Kernel 4.4", "Hardware MPEG-2 decoding"),
             crlf=True, build=(109, "b5e7c014")),
        Plan("1.6.1", "stable", _at("2016-07-30 18:13:49"), "map", both,
             ("Fix Wi-Fi reconnecting after standby",), crlf=True,
             build=(116, "61f4d9c2"), pasted_shasum_device="RPi2"),
        Plan("1.6.2", "stable", _at("2016-09-04 10:46:33"), "map", both,
             ("Fix playback of 10-bit video", "Faster startup"), crlf=True,
             build=(123, "e23a7eef")),
        Plan("1.7.0-rc1", "prerelease", _at("2016-11-20 21:27:15"), "map", both,
             ("OpenPHT 1.7", "Kernel 4.8"), crlf=True, build=(201, "0b9a33e1")),
        Plan("1.7.0", "stable", _at("2016-12-18 15:12:08"), "map", both,
             ("OpenPHT 1.7", "Kernel 4.8", "Audio output selection"),
             crlf=True, build=(210, "d7c4e81f")),
        # A backport for users who stayed on 1.6: created after 1.7.0, so
        # GitHub lists it above 1.7.0 although its version is lower.
        Plan("1.6.3", "stable", _at("2017-01-10 19:58:41"), "map", both,
             ("Security fixes from 1.7.0 for the 1.6 series",), crlf=True,
             build=(127, "4f0d6a2b"), published_after=timedelta(days=2, hours=3)),
        Plan("1.7.1", "stable", _at("2017-02-20 12:40:57"), "map", both,
             ("Fix CEC standby", "Fix the clock drifting"), crlf=True,
             build=(231, "0f6bb4a7"), rebuilt_update_device="RPi"),
        Plan("1.7.2-rc1", "prerelease", _at("2017-06-03 17:04:26"), "map", both,
             ("Kernel 4.9", "Bluetooth remotes"), crlf=True, build=(244, "9ae1c350")),
        Plan("1.7.2", "stable", _at("2017-07-15 10:21:39"), "map", both,
             ("Kernel 4.9", "Bluetooth remotes", "Fix 5 GHz Wi-Fi"),
             crlf=True, build=(250, "27d8b4ee")),
        Plan("1.7.3", "stable", _at("2017-10-28 16:09:12"), "map", both,
             ("Fix the Wi-Fi KRACK vulnerability",), crlf=True,
             build=(262, "5b0e9f47")),
        Plan("1.8.0b", "beta", _at("2018-04-01 20:16:52"), "map",
             ("RPi", "RPi2", "RPi3bplus"),
             ("Raspberry Pi 3 B+ support", "Kernel 4.14"),
             crlf=True, build=(148, "573b6d73")),
        Plan("1.8.0b2", "beta", _at("2018-05-12 13:37:05"), "map",
             ("RPi2", "RPi3bplus"), ("Fix Ethernet on the 3 B+",),
             crlf=True, build=(152, "aa41c9d6")),
        Plan("1.8.0-rc1", "prerelease", _at("2018-07-08 22:45:13"), "map", both,
             ("Work in progress",), crlf=True, build=(160, "c03e7b25"), draft=True),
    ]  # fmt: skip


# --- synthetic continuation for benchmarks -----------------------------------


def _synthetic(start: datetime, rng: random.Random) -> Iterator[Plan]:
    """Endless plausible releases after the curated history, oldest first."""
    created = start
    series = 0
    while True:
        series += 1
        major, minor = 2 + series // 100, series % 100
        for version, channel in _series_versions(major, minor, rng):
            created += timedelta(hours=rng.randint(2, 30), seconds=rng.randint(0, 3599))
            devices = ("RPi2", "RPi3bplus") if channel == "beta" else ("RPi2",)
            if rng.random() < 0.5:
                devices = ("RPi", *devices)
            yield Plan(
                version, channel, created, rng.choice(("map", "list")), devices,
                tuple(rng.sample(_SYNTHETIC_CHANGES, rng.randint(1, 4))),
                crlf=rng.random() < 0.7,
                build=(rng.randint(100, 999), f"{rng.getrandbits(32):08x}"),
                pasted_shasum_device="RPi2" if rng.random() < 0.01 else None,
            )  # fmt: skip


def _series_versions(
    major: int, minor: int, rng: random.Random
) -> Iterator[tuple[str, str]]:
    base = f"{major}.{minor}"
    if rng.random() < 0.3:
        yield f"{base}.0b", "beta"
    for rc in range(1, rng.randint(1, 3) + 1):
        yield f"{base}.0-rc{rc}", "prerelease"
    for patch in range(rng.randint(1, 4)):
        yield f"{base}.{patch}", "stable"


_SYNTHETIC_CHANGES = [
    "Update OpenPHT",
    "Kernel update",
    "Fix CEC standby",
    "Fix audio passthrough",
    "Faster library scrolling",
    "Fix subtitles in MKV files",
    "Wi-Fi fixes",
    "New translations",
    "Fix remote control repeat rate",
    "Security fixes",
]


# --- from plan to GitHub JSON ------------------------------------------------


def _packages(plan: Plan) -> list[_Package]:
    """Install image and update archive of every device, flaws applied."""
    packages: list[_Package] = []
    for device in plan.devices:
        for kind in ("install", "update"):
            name = _file_name(plan, device, kind)
            body_file = name
            if kind == "install" and device == plan.spaced_install_device:
                body_file = name.replace("-", " ", 1)
                name = _GITHUB_RENAMED.sub(".", body_file)
            if kind == "update" and device == plan.rebuilt_update_device:
                body_file = _file_name(replace(plan, build=_older(plan)), device, kind)
            packages.append(
                _Package(device, kind, body_file, name, _checksum(plan, device, kind))
            )
    for package in packages:
        package.body_checksum = package.checksum
        if package.kind == "update" and package.device == plan.pasted_shasum_device:
            package.body_checksum = f"{package.checksum}  {package.asset_name}"
    return packages


def _older(plan: Plan) -> tuple[int, str]:
    number, git_hash = plan.build or (0, "0" * 8)
    return number - 1, git_hash


def _file_name(plan: Plan, device: str, kind: str) -> str:
    extension = "img.gz" if kind == "install" else "tar.gz"
    if plan.style == "legacy":
        return f"RasPlex-{plan.version}.{extension}"
    if plan.build is None:
        return f"RasPlex-{device}.RP-{plan.version}.{extension}"
    number, git_hash = plan.build
    return f"RasPlex-{plan.version}.{number}-{git_hash}-{device}.arm.{extension}"


def _checksum(plan: Plan, device: str, kind: str) -> str:
    known = _PROTOCOL_SUMS.get((plan.version, device, kind))
    if known is not None:
        return known
    name = _file_name(plan, device, kind).encode()
    if kind == "install":
        return hashlib.md5(name, usedforsecurity=False).hexdigest()
    return hashlib.sha1(name, usedforsecurity=False).hexdigest()


def _body(plan: Plan, packages: Sequence[_Package]) -> str:
    """The release body as a maintainer typed it."""
    lines = [f"channel: {plan.channel}", "", "changes:"]
    lines += [f"  - {change}" for change in plan.changes]
    if plan.broken_change:
        lines.append(f"  - {plan.broken_change}")
    for kind in ("install", "update"):
        lines += ["", f"{kind}:"]
        for package in (p for p in packages if p.kind == kind):
            lines += _package_lines(plan.style, package)
    newline = "\r\n" if plan.crlf else "\n"
    return newline.join(lines) + newline


def _package_lines(style: str, package: _Package) -> list[str]:
    sum_key = "md5sum" if package.kind == "install" else "shasum"
    fields = [("file", package.body_file), (sum_key, package.body_checksum)]
    if style == "legacy":
        return [f"  - {key}: {value}" for key, value in fields]
    if style == "list":
        return [f"  {package.device}:"] + [f"    - {k}: {v}" for k, v in fields]
    return [f"  {package.device}:"] + [f"    {k}: {v}" for k, v in fields]


def _release(plan: Plan, release_id: int, rng: random.Random) -> dict[str, Any]:
    """One element of GitHub's "list releases" answer."""
    packages = _packages(plan)
    published = plan.created + plan.published_after
    tag = plan.version
    return {
        "url": f"{API_URL}/releases/{release_id}",
        "assets_url": f"{API_URL}/releases/{release_id}/assets",
        "upload_url": f"https://uploads.github.com/repos/{REPO}/releases/"
        f"{release_id}/assets{{?name,label}}",
        "html_url": f"{WEB_URL}/releases/tag/{tag}",
        "id": release_id,
        "node_id": _node_id("07:Release", release_id),
        "tag_name": tag,
        "target_commitish": "master",
        "name": plan.version if plan.name is None else plan.name,
        "draft": plan.draft,
        "prerelease": plan.channel != "stable",
        "created_at": _stamp(plan.created),
        "published_at": None if plan.draft else _stamp(published),
        "assets": [
            _asset(plan, package, release_id * 3 // 5 + index, rng)
            for index, package in enumerate(packages)
        ],
        "tarball_url": f"{API_URL}/tarball/{tag}",
        "zipball_url": f"{API_URL}/zipball/{tag}",
        "body": _body(plan, packages),
    }


def _asset(
    plan: Plan, package: _Package, asset_id: int, rng: random.Random
) -> dict[str, Any]:
    # Uploads happen between creating the release and publishing it.
    uploaded = plan.created + timedelta(minutes=rng.randint(3, 30))
    return {
        "url": f"{API_URL}/releases/assets/{asset_id}",
        "id": asset_id,
        "node_id": _node_id("012:ReleaseAsset", asset_id),
        "name": package.asset_name,
        "label": None,
        "content_type": "application/gzip",
        "state": "uploaded",
        "size": rng.randint(70_000_000, 150_000_000),
        "download_count": _downloads(plan, package.kind, rng),
        "created_at": _stamp(uploaded),
        "updated_at": _stamp(uploaded + timedelta(seconds=rng.randint(40, 400))),
        "browser_download_url": f"{WEB_URL}/releases/download/{plan.version}/"
        f"{package.asset_name}",
    }


def _downloads(plan: Plan, kind: str, rng: random.Random) -> int:
    if plan.draft:
        return 0
    # The updater fetches archives from every box; images only on fresh installs.
    reach = {"stable": 40_000, "prerelease": 4_000, "beta": 300}[plan.channel]
    share = 1.0 if kind == "update" else 0.3
    return int(reach * share * rng.uniform(0.2, 1.0))


def _node_id(prefix: str, number: int) -> str:
    return base64.b64encode(f"{prefix}{number}".encode()).decode()


def _release_ids(plans: Sequence[Plan], rng: random.Random) -> list[int]:
    """Plausible, strictly increasing ids for plans in creation order."""
    ids: list[int] = []
    for plan in plans:
        guess = plan.release_id or _id_at(plan.created) + rng.randint(0, 999)
        ids.append(max(guess, ids[-1] + rng.randint(10, 99)) if ids else guess)
    return ids


def _id_at(moment: datetime) -> int:
    """Linear interpolation between the anchors, extrapolating at the ends."""
    times = [anchor for anchor, _ in _ID_ANCHORS]
    right = min(max(bisect.bisect(times, moment), 1), len(_ID_ANCHORS) - 1)
    (t0, id0), (t1, id1) = _ID_ANCHORS[right - 1], _ID_ANCHORS[right]
    slope = (id1 - id0) / (t1 - t0).total_seconds()
    return max(1, int(id0 + slope * (moment - t0).total_seconds()))


def make_releases(count: int | None = None, seed: int = 0) -> list[dict[str, Any]]:
    """RasPlex's release history in GitHub's order (newest created first).

    With ``count``, exactly that many releases: the curated history (cut short
    when ``count`` is smaller) continued by synthetic ones.
    """
    rng = random.Random(seed)  # noqa: S311 - example data, not secrets
    plans = _history()
    if count is not None:
        extra = _synthetic(plans[-1].created, rng)
        plans = (plans + [next(extra) for _ in range(count - len(plans))])[:count]

    ids = _release_ids(plans, rng)
    releases = [_release(p, i, rng) for p, i in zip(plans, ids, strict=True)]
    return sorted(releases, key=lambda r: (r["created_at"], r["id"]), reverse=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Write the releases as JSON (``examples/releases.json`` by default)."""
    parser = argparse.ArgumentParser(description="Write example GitHub releases.")
    parser.add_argument("--count", type=int, help="synthetic history of N releases")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    releases = make_releases(args.count, args.seed)
    text = json.dumps(releases, indent=2, ensure_ascii=False) + "\n"
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {len(releases)} releases to {args.output}")


if __name__ == "__main__":
    main()
