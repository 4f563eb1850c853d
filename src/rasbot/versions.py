"""Version parsing and ordering for release names and client reports (protocol 2.3).

The old server stripped every non-digit and compared the integers, so `0.5.10` beat
`0.6.0` and builds like `1.6.2.123-e23a7eef` were never offered anything. A version here
is a key of four parts, compared left to right:

1. the numeric components with trailing zeros removed (`1.0` = `1.0.0`);
2. the pre-release rank: dev < a/alpha < b/beta < pre/rc < final;
3. the pre-release number (a missing number is 0, so `1.8.0b` = `1.8.0b0`);
4. the build number of a client build (0 for a release), which puts build `n` of a
   release above that release and below anything higher.

Parsing runs on the request path, so it is a few compiled regular expressions and a
small cache, and it never raises: unparsable text gives `None`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

__all__ = [
    "Version",
    "is_developer_build",
    "parse_client_version",
    "parse_version",
]

# Ranks of the pre-release labels; a final release ranks above all of them.
_LABEL_RANKS = {
    "dev": 0,
    "a": 1,
    "alpha": 1,
    "b": 2,
    "beta": 2,
    "pre": 3,
    "rc": 3,
}
_FINAL_RANK = 4
_RANK_NAMES = {0: "dev", 1: "a", 2: "b", 3: "rc"}

# Components are capped at 18 digits: int() refuses very long digit strings, and no
# real version needs more.
_NUMBER = r"[0-9]{1,18}"
_RELEASE = re.compile(
    rf"""
    v?
    (?P<numbers>{_NUMBER}(?:\.{_NUMBER})*)
    (?:
        [-._]?
        (?P<label>dev|alpha|a|beta|b|pre|rc)
        (?:[-._]?(?P<number>{_NUMBER}))?
    )?
    """,
    re.ASCII | re.IGNORECASE | re.VERBOSE,
)

# A git hash appended by the build scripts; seven hex digits at least, so that a
# pre-release label such as `-b` or `-a` is never mistaken for one.
_HASHED = re.compile(r"(?P<body>.+?)-[0-9a-f]{7,40}", re.ASCII | re.IGNORECASE)
_BUILD = re.compile(rf"(?P<release>.+)\.(?P<build>{_NUMBER})", re.ASCII)

# Longest text worth looking at; anything longer is not a version a client sends.
_MAX_LENGTH = 256

_Key = tuple[tuple[int, ...], int, int, int]


@dataclass(frozen=True, order=True, slots=True)
class Version:
    """A parsed version, ordered and compared by its key only.

    `text` is the string as written (a release name, a tag, a client report); the
    answers always quote a release's own name, never `str(version)`.
    """

    key: _Key
    text: str = field(compare=False)
    numbers: tuple[int, ...] = field(compare=False, repr=False)

    @property
    def is_prerelease(self) -> bool:
        """Whether the version carries a dev, alpha, beta or rc marker."""
        return self.key[1] != _FINAL_RANK

    @property
    def build(self) -> int | None:
        """The build number of a `<release>.<build>-<hash>` client report."""
        return self.key[3] or None

    def __str__(self) -> str:
        numbers, rank, number, build = self.key
        padded = numbers + (0,) * (3 - len(numbers))
        text = ".".join(str(part) for part in padded)
        if rank != _FINAL_RANK:
            text += f"-{_RANK_NAMES[rank]}{number or ''}"
        if build:
            text += f"+{build}"
        return text


def parse_version(text: str) -> Version | None:
    """Parse a release name or tag (`0.3.9-rc1`, `1.8.0b`, `v2.2.0-rc1`), else None."""
    if not isinstance(text, str) or len(text) > _MAX_LENGTH:
        return None
    return _parse_release(text.strip(), text)


def parse_client_version(text: str | None) -> Version | None:
    """Parse the version a client reports, builds and git hashes included.

    `1.6.2.123-e23a7eef` is build 123 of `1.6.2`; `1.8.0.0b-573b6d73` is `1.8.0b`.
    None for an absent, empty or unparsable report; never raises.
    """
    if not isinstance(text, str) or len(text) > _MAX_LENGTH:
        return None
    return _parse_client(text)


def is_developer_build(text: str | None) -> bool:
    """Whether a client version names a developer build (it contains `wip`)."""
    return isinstance(text, str) and "wip" in text.lower()


# Clients report a handful of distinct versions, so a small cache saves the regex
# work on nearly every request; the cache is bounded, so junk cannot grow it.
@lru_cache(maxsize=1024)
def _parse_client(text: str) -> Version | None:
    stripped = text.strip()
    hashed = _HASHED.fullmatch(stripped)
    if hashed is None:
        return _parse_release(stripped, text)

    body = hashed["body"]
    build = _parse_build(body, text)
    if build is not None:
        return build
    return _parse_release(body, text)


def _parse_build(body: str, text: str) -> Version | None:
    """Read `<release>.<build>` (the hash already removed) as a build of a release.

    Only a release that looks complete qualifies: three numeric components or a
    pre-release label. Otherwise `1.0.3-<hash>` would be build 3 of `1.0`.
    """
    match = _BUILD.fullmatch(body)
    if match is None:
        return None

    release = _parse_release(match["release"], text)
    if release is None:
        return None
    if len(release.numbers) < 3 and not release.is_prerelease:
        return None

    numbers, rank, number, _ = release.key
    key = (numbers, rank, number, int(match["build"]))
    return Version(key=key, text=text, numbers=release.numbers)


def _parse_release(candidate: str, text: str) -> Version | None:
    match = _RELEASE.fullmatch(candidate)
    if match is None:
        return None

    numbers = tuple(int(part) for part in match["numbers"].split("."))
    label = match["label"]
    rank = _LABEL_RANKS[label.lower()] if label else _FINAL_RANK
    number = int(match["number"] or 0)
    key = (_strip_zeros(numbers), rank, number, 0)
    return Version(key=key, text=text, numbers=numbers)


def _strip_zeros(numbers: tuple[int, ...]) -> tuple[int, ...]:
    # Trailing zeros carry no order (`1.0` = `1.0.0`); dropping them makes a plain
    # tuple comparison agree with comparing zero-padded components.
    end = len(numbers)
    while end and numbers[end - 1] == 0:
        end -= 1
    return numbers[:end]
