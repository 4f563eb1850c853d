"""Small GitHub-format releases for tests, built the way the distribution publishes."""

from __future__ import annotations

import hashlib
from typing import Any

DOWNLOAD = "https://github.com/RasPlex/RasPlex/releases/download"


def md5(text: str) -> str:
    """A realistic-looking MD5 for ``text``."""
    return hashlib.md5(text.encode()).hexdigest()


def sha1(text: str) -> str:
    """A realistic-looking SHA-1 for ``text``."""
    return hashlib.sha1(text.encode()).hexdigest()


def files(name: str, device: str) -> tuple[str, str]:
    """The install image and update archive names of ``device`` in release ``name``."""
    return f"RasPlex-{device}.RP-{name}.img.gz", f"RasPlex-{device}.RP-{name}.tar.gz"


def body(channel: str, devices: list[str], name: str, changes: list[str]) -> str:
    """A per-device release body in the list-of-one-key-maps style."""
    lines = [f"channel: {channel}", "", "changes:"]
    lines += [f"  - {change}" for change in changes]
    for section, checksum in (("install", "md5sum"), ("update", "shasum")):
        lines += ["", f"{section}:"]
        for device in devices:
            image, archive = files(name, device)
            file = image if section == "install" else archive
            digest = md5(file) if section == "install" else sha1(file)
            lines += [
                f"  {device}:",
                f"    - file: {file}",
                f"    - {checksum}: {digest}",
            ]
    return "\n".join(lines) + "\n"


def release(
    id: int,
    name: str,
    channel: str = "stable",
    *,
    published: str = "2016-03-03T00:03:41Z",
    devices: tuple[str, ...] = ("RPi", "RPi2"),
    draft: bool = False,
    body_text: str | None = None,
    changes: tuple[str, ...] = ("A change", "Another change"),
) -> dict[str, Any]:
    """A GitHub release object with an image and an archive per device."""
    assets = []
    for device in devices:
        for file in files(name, device):
            assets.append(
                {
                    "id": id * 100 + len(assets),
                    "name": file,
                    "size": 123_456_789,
                    "download_count": 42,
                    "state": "uploaded",
                    "browser_download_url": f"{DOWNLOAD}/{name}/{file}",
                }
            )
    text = body(channel, list(devices), name, list(changes))
    return {
        "id": id,
        "tag_name": name,
        "name": name,
        "draft": draft,
        "prerelease": channel != "stable",
        "created_at": published,
        "published_at": published,
        "body": text if body_text is None else body_text,
        "html_url": f"https://github.com/RasPlex/RasPlex/releases/tag/{name}",
        "assets": assets,
    }


def history() -> list[dict[str, Any]]:
    """A short history in GitHub's API order (creation order, newest first)."""
    return [
        release(
            9,
            "1.8.0b",
            "beta",
            published="2018-05-01T10:00:00Z",
            devices=("RPi", "RPi2", "RPi3bplus"),
        ),
        release(8, "1.6.3", published="2017-08-01T10:00:00Z"),
        release(7, "1.7.1", published="2017-07-01T10:00:00Z"),
        release(
            6,
            "1.7.0-rc1",
            "prerelease",
            published="2017-05-01T10:00:00Z",
            devices=("RPi2",),
        ),
        release(5, "1.6.2", published="2016-06-01T10:00:00Z"),
        release(4, "1.0.3", published="2016-03-03T00:03:41Z"),
        release(3, "0.5.10", published="2015-06-01T10:00:00Z", devices=("RPi",)),
    ]
