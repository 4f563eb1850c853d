"""The beta directory: images this server serves itself (PROTOCOL.md 5).

Beta builds are not uploaded to GitHub; an operator copies them into
``RASBOT_BETA_DIR``. Every name that reaches the disk goes through `BetaDir.find`,
which only ever answers a regular file directly inside that directory, so neither a
URL nor a release body can name anything else.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from rasbot.catalog import INSTALL, UPDATE

# A file name, not a path: no separators of any system, no control characters.
# A leading dot also rules out "." and ".." and keeps hidden files (editors' and
# rsync's temporary files) from being served half-written.
_NOT_A_NAME = re.compile(r"^\.|[/\\\x00-\x1f\x7f]")
_NAME_MAX = 255
_HASH_CHUNK = 1 << 20
_NAME_TOKENS = re.compile(r"[-._+ ]")
_PLAIN_SCALAR = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


@dataclass(frozen=True)
class BetaFile:
    """A servable file of the beta directory and its ``stat`` at lookup time."""

    path: Path
    stat: os.stat_result


class BetaDir:
    """Lookups confined to one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find(self, name: str) -> BetaFile | None:
        """The regular file ``name`` directly inside the directory, or None.

        Symbolic links are followed only when they end inside the directory, so a
        link to /etc/passwd placed there is not served.
        """
        if not name or len(name) > _NAME_MAX or _NOT_A_NAME.search(name):
            return None
        try:
            root = Path(os.path.realpath(self.root))
            path = Path(os.path.realpath(root / name))
            found = path.stat()
        except (OSError, ValueError):
            return None
        if path.parent != root or not stat.S_ISREG(found.st_mode):
            return None
        return BetaFile(path, found)

    def has(self, name: str) -> bool:
        """Whether ``name`` would be served."""
        return self.find(name) is not None


@dataclass(frozen=True)
class Digests:
    """The checksums a release body gives for a file."""

    sha1: str
    md5: str
    size: int


def digests(path: Path) -> Digests:
    """SHA-1 and MD5 of a file in one pass, a chunk at a time (images are large)."""
    # Checksums the clients compare downloads against, not a security measure.
    sha1 = hashlib.sha1(usedforsecurity=False)
    md5, size = hashlib.md5(usedforsecurity=False), 0
    with path.open("rb") as file:
        while chunk := file.read(_HASH_CHUNK):
            sha1.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return Digests(sha1.hexdigest(), md5.hexdigest(), size)


def guess_kind(name: str) -> str | None:
    """``install`` for a disk image, ``update`` for an update archive, by name."""
    lower = name.lower()
    if lower.endswith((".img", ".img.gz", ".img.xz", ".img.zip")):
        return INSTALL
    if lower.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz")):
        return UPDATE
    return None


def guess_device(name: str, devices: Iterable[str]) -> str | None:
    """The device id that is a word of ``name`` (``RasPlex-RPi2.RP-1.9.tar.gz``).

    Compared case-insensitively; the answer is spelled as in ``devices``.
    """
    words = {word.lower() for word in _NAME_TOKENS.split(name)}
    return next((device for device in devices if device.lower() in words), None)


def body_section(name: str, kind: str, device: str, found: Digests) -> str:
    """The ``install:`` or ``update:`` section of a release body for one file."""
    checksum = f"md5sum: {found.md5}" if kind == INSTALL else f"shasum: {found.sha1}"
    return (
        f"# {name}: {found.size} bytes, sha1 {found.sha1}, md5 {found.md5}\n"
        f"{kind}:\n"
        f"  {device}:\n"
        f"    - file: {_scalar(name)}\n"
        f"    - {checksum}\n"
    )


def _scalar(text: str) -> str:
    # A JSON string is a valid YAML double-quoted scalar, whatever it holds.
    return text if _PLAIN_SCALAR.fullmatch(text) else json.dumps(text)
