"""The catalog: every servable release, parsed once, as one immutable snapshot.

A snapshot is built from the raw GitHub release listing and never changes afterwards;
a refresh builds a new one and swaps it in whole, so a request always sees one
consistent catalog. Whatever cannot be served is kept as a `Problem` for the
operators instead of stopping the build.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote, unquote, urlsplit

from rasbot.github import uncounted
from rasbot.releasebody import PackageSpec, parse_body
from rasbot.rolloutplan import Plan
from rasbot.versions import Version, parse_version

CHANNELS = ("stable", "prerelease", "beta")
INSTALL = "install"
UPDATE = "update"

# GitHub keeps letters, digits and these in uploaded file names; anything else
# becomes a dot ("RasPlex 1.0.img.gz" is served as "RasPlex.1.0.img.gz").
_GITHUB_RENAMED = re.compile(r"[^A-Za-z0-9._+-]")

# A package served from this server's beta directory has the URL ``beta:<name>``.
# It is a marker, not a URL a client can use: the /update feed replaces it with
# one of this server that carries the client's serial (PROTOCOL.md 5).
BETA_URL_SCHEME = "beta:"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Asset:
    """A file attached to a GitHub release."""

    name: str
    # GitHub's download URL, cut after its last "/": the head is one string for
    # all of a release's assets, the tail is usually the string of ``name``.
    url_head: str
    url_tail: str
    size: int
    # GitHub's running count changes all the time; it is not part of what is served.
    download_count: int = field(compare=False)

    @property
    def url(self) -> str:
        """GitHub's download URL of the file, as GitHub gave it."""
        return self.url_head + self.url_tail


@dataclass(frozen=True, slots=True)
class Package:
    """An install image or update archive of one release for one device."""

    device: str
    kind: str
    checksum: str
    asset: Asset | None
    # Where the file is when that is not the asset's URL: a URL the release body
    # gives, or a file of the beta directory (BETA_URL_SCHEME).
    link: str | None = None

    @property
    def url(self) -> str:
        """The download URL, or the beta-directory marker."""
        if self.link is None and self.asset is not None:
            return self.asset.url
        return self.link or ""

    @property
    def file_name(self) -> str:
        """The last path segment of the download URL."""
        return unquote(urlsplit(self.url).path.rsplit("/", 1)[-1])

    @property
    def in_beta_dir(self) -> bool:
        """True when the file is served from this server's beta directory."""
        return self.url.startswith(BETA_URL_SCHEME)


_V = TypeVar("_V", Asset, Package)


class _Keyed(Mapping[str, _V]):
    """A release's packages or assets by one of their fields, held in a tuple.

    A dict of the one to three entries a release has takes three times the
    memory, and a catalog has three of them per release.
    """

    __slots__ = ("_values",)
    _KEY: ClassVar[str]

    def __init__(self, values: Iterable[_V]) -> None:
        # As a dict would: the last value of a key wins.
        self._values: tuple[_V, ...] = tuple(
            {getattr(v, self._KEY): v for v in values}.values()
        )

    def __getitem__(self, key: str) -> _V:
        for value in self._values:
            if getattr(value, self._KEY) == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (getattr(value, self._KEY) for value in self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._values)!r})"


class Packages(_Keyed[Package]):
    """A release's packages of one kind, by device."""

    __slots__ = ()
    _KEY = "device"


class Assets(_Keyed[Asset]):
    """A release's uploaded assets, by name."""

    __slots__ = ()
    _KEY = "name"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in a release that keeps it, or one of its packages, from devices."""

    release: str
    reason: str
    device: str | None = None
    kind: str | None = None

    def __str__(self) -> str:
        where = " ".join(part for part in (self.device, self.kind) if part)
        return f"{self.release}: {where + ': ' if where else ''}{self.reason}"


@dataclass(frozen=True, slots=True)
class Release:
    """One servable release."""

    id: int
    name: str
    tag: str
    version: Version
    channel: str
    draft: bool
    published_at: datetime
    changes: tuple[str, ...]
    install: Mapping[str, Package]
    update: Mapping[str, Package]
    declared: frozenset[str]
    assets: Mapping[str, Asset]
    #: The body's staged rollout (rasbot.rollout); None goes to everyone at once.
    rollout: Plan | None = None

    def update_package(self, general: str, specific: str | None) -> Package | None:
        """The update package for a board, honouring a declared specific device."""
        if specific is not None and specific in self.declared:
            return self.update.get(specific)
        return self.update.get(general)

    def download(self, name: str) -> Asset | Package | None:
        """The asset or package served as ``name`` under /download/<tag>/."""
        asset = self.assets.get(name)
        if asset is not None:
            return asset
        for package in (*self.install.values(), *self.update.values()):
            # Beta-directory files are served under /beta/, to whitelisted serials.
            if package.file_name == name and not package.in_beta_dir:
                return package
        return None


@dataclass(frozen=True)
class Catalog:
    """An immutable snapshot of the servable releases, highest version first."""

    releases: tuple[Release, ...]
    problems: tuple[Problem, ...]
    revision: int = 0
    fetched_at: datetime | None = None
    changed_at: datetime | None = None
    _by_tag: dict[str, Release] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_tag", {r.tag: r for r in self.releases})

    def by_tag(self, tag: str) -> Release | None:
        """The release published under ``tag``."""
        return self._by_tag.get(tag)

    def on_channels(self, channels: Iterable[str]) -> Iterable[Release]:
        """Releases on any of ``channels``, highest version first."""
        wanted = frozenset(channels)
        return (r for r in self.releases if r.channel in wanted)


EMPTY = Catalog(releases=(), problems=())


@dataclass(frozen=True, slots=True)
class Parsed:
    """What one GitHub release object parsed to, kept to rebuild without parsing it.

    ``key`` is a digest of the object; ``reusable`` is False when the parse looked
    into the beta directory, whose files can change while the object does not.
    """

    key: bytes
    release: Release | None
    problems: tuple[Problem, ...]
    reusable: bool


#: Parsed releases by key, from a previous build.
Known = Mapping[bytes, Parsed]


def build_catalog(
    raw_releases: Iterable[Mapping[str, Any]],
    *,
    devices: Sequence[str],
    serve_beta_drafts: bool = False,
    in_beta_dir: Callable[[str], bool] | None = None,
) -> tuple[tuple[Release, ...], tuple[Problem, ...]]:
    """Parse GitHub release objects into servable releases and problems.

    ``devices`` are the known device ids in their canonical spelling; ids in release
    bodies are matched against them case-insensitively. ``in_beta_dir`` says whether
    a file is in this server's beta directory: a beta release's file that is not an
    uploaded asset is then served from there.
    """
    return assemble(
        parse_releases(
            raw_releases,
            devices=devices,
            serve_beta_drafts=serve_beta_drafts,
            in_beta_dir=in_beta_dir,
        )
    )


def parse_releases(
    raw_releases: Iterable[Mapping[str, Any]],
    *,
    devices: Sequence[str],
    serve_beta_drafts: bool = False,
    in_beta_dir: Callable[[str], bool] | None = None,
    known: Known | None = None,
) -> list[Parsed]:
    """Each release object parsed, as `build_catalog` would; `assemble` the result.

    An object with a reusable parse in ``known`` is not parsed again: a rebuild
    after one release changed parses that release and keeps the others' objects.
    ``known`` must come from a parse with the same devices and settings.
    """
    canonical = {device.lower(): device for device in devices}
    share = _Shared()
    parsed: list[Parsed] = []
    for raw in raw_releases:
        key = _key(raw)
        found = known.get(key) if known is not None else None
        if found is None or not found.reusable:
            found = _parse(raw, key, canonical, serve_beta_drafts, in_beta_dir, share)
        parsed.append(found)
    return parsed


def assemble(
    parsed: Iterable[Parsed],
) -> tuple[tuple[Release, ...], tuple[Problem, ...]]:
    """The servable releases, highest version first, and every problem."""
    releases: dict[Version, Release] = {}
    problems: list[Problem] = []
    for item in parsed:
        problems.extend(item.problems)
        release = item.release
        if release is None:
            continue
        clash = releases.get(release.version)
        if clash is not None:
            kept, dropped = sorted((clash, release), key=lambda r: r.published_at)[::-1]
            problems.append(
                Problem(dropped.name, f"same version as {kept.tag}; not served")
            )
            release = kept
        releases[release.version] = release
    ordered = sorted(releases.values(), key=lambda r: r.version, reverse=True)
    return tuple(ordered), tuple(problems)


def unknown(raw_releases: Iterable[Mapping[str, Any]], known: Known) -> int:
    """How many of the release objects `parse_releases` would parse with ``known``."""
    return sum(not _reusable(known.get(_key(raw))) for raw in raw_releases)


def _reusable(parsed: Parsed | None) -> bool:
    return parsed is not None and parsed.reusable


def _key(raw: Mapping[str, Any]) -> bytes:
    # Without GitHub's download counts, or a parse kept would be no parse kept at
    # all. A reused release keeps the counts of its first parse; the stored listing
    # has every sync's (rasbot.githubcounts).
    served = uncounted(raw)
    text = json.dumps(served, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _parse(
    raw: Mapping[str, Any],
    key: bytes,
    canonical: Mapping[str, str],
    serve_beta_drafts: bool,
    in_beta_dir: Callable[[str], bool] | None,
    share: _Shared,
) -> Parsed:
    looked: list[str] = []

    def beta_check(name: str) -> bool:
        looked.append(name)
        return in_beta_dir is not None and in_beta_dir(name)

    problems: list[Problem] = []
    release = _build_release(
        raw,
        canonical,
        serve_beta_drafts,
        problems,
        beta_check if in_beta_dir is not None else None,
        share,
    )
    return Parsed(key, release, tuple(problems), reusable=not looked)


def _build_release(
    raw: Mapping[str, Any],
    canonical: Mapping[str, str],
    serve_beta_drafts: bool,
    problems: list[Problem],
    in_beta_dir: Callable[[str], bool] | None,
    share: _Shared,
) -> Release | None:
    tag = str(raw.get("tag_name") or "")
    name = str(raw.get("name") or "").strip() or tag
    label = name or f"release {raw.get('id')}"

    version = parse_version(name)
    if version is None:
        problems.append(Problem(label, f"name {name!r} is not a version; not served"))
        return None

    body = parse_body(raw.get("body"))
    problems.extend(Problem(label, reason) for reason in body.problems)
    if not body.usable or body.channel is None:
        return None

    draft = bool(raw.get("draft"))
    if draft and not (serve_beta_drafts and body.channel == "beta"):
        return None

    published = _timestamp(raw.get("published_at") or raw.get("created_at"))
    if published is None:
        problems.append(Problem(label, "no publication time; not served"))
        return None

    assets = _assets(raw.get("assets"), share)
    # Only beta releases may name beta-directory files: other channels reach
    # clients that are not whitelisted.
    beta = in_beta_dir if body.channel == "beta" else None
    packages = [
        _package(spec, canonical, assets, label, problems, beta)
        for spec in body.packages
    ]
    declared = frozenset(_canonical(s.device, canonical) for s in body.packages)
    return Release(
        id=int(raw.get("id") or 0),
        name=name,
        # One string for both when they are equal, as they usually are.
        tag=tag if tag and tag != name else name,
        version=version,
        channel=share(body.channel),
        draft=draft,
        published_at=published,
        changes=share(tuple(share(line) for line in body.changes)),
        install=Packages(p for p in packages if p and p.kind == INSTALL),
        update=Packages(p for p in packages if p and p.kind == UPDATE),
        declared=share(declared),
        assets=assets,
        rollout=body.rollout,
    )


class _Shared:
    """One object for equal values across a catalog: thousands of releases repeat
    their channel, their device sets and many lines of release notes."""

    def __init__(self) -> None:
        self._seen: dict[Any, Any] = {}

    def __call__(self, value: _T) -> _T:
        found: _T = self._seen.setdefault(value, value)
        return found


def _package(
    spec: PackageSpec,
    canonical: Mapping[str, str],
    assets: Mapping[str, Asset],
    label: str,
    problems: list[Problem],
    in_beta_dir: Callable[[str], bool] | None = None,
) -> Package | None:
    device = _canonical(spec.device, canonical)
    if spec.problem is not None or spec.checksum is None:
        reason = spec.problem or "no checksum"
        problems.append(Problem(label, reason, device, spec.kind))
        return None

    asset = _find_asset(spec.file, assets)
    if spec.url:
        link: str | None = spec.url
    elif asset is not None:
        link = None
    elif spec.file and in_beta_dir is not None and in_beta_dir(spec.file):
        link = BETA_URL_SCHEME + quote(spec.file, safe="")
    else:
        reason = _missing_file(spec.file, beta_dir_searched=in_beta_dir is not None)
        problems.append(Problem(label, reason, device, spec.kind))
        return None
    return Package(device, spec.kind, spec.checksum, asset, link)


def _missing_file(file: str | None, *, beta_dir_searched: bool) -> str:
    if beta_dir_searched:
        return f"file {file!r} is neither an uploaded asset nor in the beta directory"
    return f"file {file!r} is not among the release's uploaded assets"


def _find_asset(file: str | None, assets: Mapping[str, Asset]) -> Asset | None:
    if not file:
        return None
    return assets.get(file) or assets.get(_GITHUB_RENAMED.sub(".", file))


def _assets(raw_assets: Any, share: _Shared) -> Assets:
    assets: list[Asset] = []
    for raw in raw_assets if isinstance(raw_assets, list) else ():
        if not isinstance(raw, Mapping):
            continue
        # An asset still uploading has no content yet: treat it as absent.
        if raw.get("state", "uploaded") != "uploaded":
            continue
        name, url = raw.get("name"), raw.get("browser_download_url")
        if isinstance(name, str) and isinstance(url, str):
            cut = url.rfind("/") + 1
            tail = name if url[cut:] == name else url[cut:]
            size = _int(raw.get("size"))
            count = _int(raw.get("download_count"))
            assets.append(Asset(name, share(url[:cut]), tail, size, count))
    return Assets(assets)


def _canonical(device: str, canonical: Mapping[str, str]) -> str:
    return canonical.get(device.lower(), device)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
