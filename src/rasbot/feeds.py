"""The answers devices and installers read: the /update XML and the installer JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import quoteattr

from rasbot.catalog import Package, Release
from rasbot.clock import as_utc
from rasbot.selection import Offer

_XML_HEAD = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<MediaContainer friendlyName="myPlex" identifier="com.plexapp.plugins.myplex"'
)


def created_at(moment: datetime) -> str:
    """The updater's fixed-position timestamp, always in UTC."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M:%S UTC")


def download_url(base_url: str | None, release: Release, package: Package) -> str:
    """The URL a client downloads ``package`` from.

    With a ``base_url`` the download goes through this server's counting redirect,
    whose path has the shape of GitHub's own download URLs.
    """
    if base_url is None:
        return package.url
    tag = quote(release.tag, safe="")
    name = quote(package.file_name, safe="")
    return f"{base_url}/download/{tag}/{name}"


def beta_url(beta_base: str, package: Package) -> str:
    """The URL of a beta-directory package: ``beta_base`` ends with the serial."""
    return f"{beta_base}/{quote(package.file_name, safe='')}"


def update_xml(
    offer: Offer | None, base_url: str | None, *, beta_base: str | None = None
) -> bytes:
    """The /update answer: a MediaContainer with zero or one Release.

    ``beta_base`` (``<this server>/beta/<serial>``) is given for whitelisted beta
    clients, the only ones offered packages from the beta directory.
    """
    if offer is None:
        return (_XML_HEAD + ' size="0" title="Updates">\n</MediaContainer>\n').encode()
    release, package = offer.release, offer.package
    if not package.in_beta_dir:
        url = download_url(base_url, release, package)
    elif beta_base is not None:
        url = beta_url(beta_base, package)
    else:
        raise ValueError(f"{release.name}: a beta-directory package needs beta_base")
    release_attrs = _attrs(
        id=str(release.id),
        version=release.name,
        added="",
        fixed="",
        live="true",
        autoupdate="true",
        createdAt=created_at(release.published_at),
    )
    package_attrs = _attrs(
        file=url,
        fileHash=package.checksum,
        fileName=urlsplit(url).path.rsplit("/", 1)[-1],
        delta="false",
    )
    return (
        f'{_XML_HEAD} size="1" title="Updates">\n'
        f"  <Release {release_attrs}>\n"
        f"    <Package {package_attrs}/>\n"
        f"  </Release>\n"
        f"</MediaContainer>\n"
    ).encode()


def _attrs(**values: str) -> str:
    return " ".join(f"{name}={quoteattr(value)}" for name, value in values.items())


def install_json(
    entries: Sequence[tuple[Release, Package]],
    device: str,
    base_url: str | None,
) -> bytes:
    """The /install answer for one device, in the order the installer shows."""
    # Entry by entry into one buffer: with thousands of releases, a list of dicts
    # (or of encoded parts) would take several times the answer's size at once.
    answer = bytearray(b"[")
    for number, (release, package) in enumerate(entries):
        if number:
            answer += b","
        answer += _json(_install_entry(release, package, device, base_url))
    answer += b"]"
    return bytes(answer)


def _install_entry(
    release: Release, package: Package, device: str, base_url: str | None
) -> dict[str, Any]:
    update = release.update.get(device)
    return {
        "id": release.id,
        "version": release.name,
        "channel": release.channel,
        "autoupdate": update is not None,
        "time": as_utc(release.published_at).isoformat(),
        "notes": "\n".join(release.changes),
        "device": device,
        "install_url": download_url(base_url, release, package),
        "install_sum": package.checksum,
        "update_url": download_url(base_url, release, update) if update else None,
        "update_sum": update.checksum if update else None,
    }


def devices_json(devices: Sequence[tuple[str, str]]) -> bytes:
    """The /devices answer: id and display name, the preselected device first."""
    return _json([{"id": device, "name": name} for device, name in devices])


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
