"""Which release a client is offered (PROTOCOL.md 2.1, 2.4 and 4)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from rasbot.catalog import Catalog, Package, Release
from rasbot.devices import DeviceMatch
from rasbot.versions import Version

# Plex role numbers the updater sends as `channel`.
CHANNEL_NUMBERS = {"16": "stable", "2": "prerelease", "8": "prerelease", "4": "beta"}

# The channel ladder: a client on a channel is entitled to it and everything safer.
LADDER = {
    "stable": ("stable",),
    "prerelease": ("stable", "prerelease"),
    "beta": ("stable", "prerelease", "beta"),
}

INSTALLER_CHANNELS = ("stable", "prerelease")


def channel_of(number: str | None, *, whitelisted: bool) -> str:
    """The channel a client is served on, from its Plex role number.

    Anything unknown is stable, and beta needs the serial on the whitelist.
    """
    channel = CHANNEL_NUMBERS.get((number or "").strip(), "stable")
    if channel == "beta" and not whitelisted:
        return "stable"
    return channel


@dataclass(frozen=True, slots=True)
class Offer:
    """The release and package offered to an updater."""

    release: Release
    package: Package


def select_update(
    catalog: Catalog,
    channel: str,
    device: DeviceMatch,
    client: Version | None,
    excluded: Collection[int] = (),
) -> Offer | None:
    """The highest release on the client's ladder with a package for its board.

    Only a release strictly newer than ``client`` is offered; ``None`` for the client
    version means unknown, which is offered the highest release it is entitled to.
    Releases whose id is in ``excluded`` (a rollout that leaves this device out)
    are passed over, as if they were not published.
    """
    for release in catalog.on_channels(LADDER[channel]):
        if client is not None and release.version <= client:
            # Releases come highest first: nothing further down is newer.
            return None
        if release.id in excluded:
            continue
        package = release.update_package(device.general, device.specific)
        if package is not None:
            return Offer(release, package)
    return None


def installable(catalog: Catalog, device: str) -> list[tuple[Release, Package]]:
    """The installer's list for ``device``: the preselected release first.

    The newest stable release comes first (the newest prerelease when there is no
    stable image), then all others from the highest version down.
    """
    found = [
        (release, release.install[device])
        for release in catalog.on_channels(INSTALLER_CHANNELS)
        if device in release.install
    ]
    stable = next((i for i, (r, _) in enumerate(found) if r.channel == "stable"), 0)
    if found:
        found.insert(0, found.pop(stable))
    return found


def installable_devices(catalog: Catalog, known: list[str]) -> list[str]:
    """Devices with an install image in a stable or prerelease release.

    Known devices come in their configured order; any other id found in the catalog
    follows, sorted.
    """
    present = {
        device
        for release in catalog.on_channels(INSTALLER_CHANNELS)
        for device in release.install
    }
    ordered = [device for device in known if device in present]
    return ordered + sorted(present.difference(known))
