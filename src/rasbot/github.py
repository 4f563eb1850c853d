"""Where releases come from: GitHub's releases API, or a JSON file in its format.

A source returns a complete `Listing` or raises `SourceError`; there is no partial
result, so a failure can never replace the catalog with part of one.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import structlog

from rasbot import __version__, jsonarray

if TYPE_CHECKING:
    import httpx

log = structlog.get_logger(__name__)

# Only these fields of a GitHub release are used; keeping just them makes the
# persisted catalog a fraction of the size of GitHub's answer.
_RELEASE_FIELDS = (
    "id",
    "tag_name",
    "name",
    "draft",
    "prerelease",
    "created_at",
    "published_at",
    "body",
    "html_url",
)
_ASSET_FIELDS = (
    "id",
    "name",
    "size",
    "download_count",
    "state",
    "browser_download_url",
)

# Keys of any object in a listing that rasbot reads: the rest (authors, reactions,
# API URLs) is dropped while the JSON is decoded, before it takes up memory.
_KEPT_KEYS = frozenset({*_RELEASE_FIELDS, *_ASSET_FIELDS, "assets"})

#: Releases per page of a releases file, as GitHub's pages have at most.
FILE_PAGE_RELEASES = 100

# A Link chain longer than this is a loop, not a release history.
_MAX_PAGES = 500


class SourceError(Exception):
    """A listing could not be completed. ``retry_at`` is a time.time() to wait for."""

    def __init__(
        self, reason: str, *, retry_at: float | None = None, relist: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_at = retry_at
        # The next sync must ask for every page unconditionally.
        self.relist = relist


@dataclass(frozen=True)
class Page:
    """One page of a listing, with what is needed to ask for it conditionally.

    The page's releases are held as zlib-compressed JSON, a tenth of their size
    as objects: a listing of thousands of releases is then decoded one page at a
    time by whoever reads it. ``packed`` is None for a page known only by its
    ETag: its releases are in the stored catalog, not in memory.
    """

    url: str
    packed: bytes | None
    etag: str | None = None
    next_url: str | None = None
    count: int = 0

    @classmethod
    def holding(
        cls,
        url: str,
        releases: Iterable[Mapping[str, Any]],
        etag: str | None = None,
        next_url: str | None = None,
    ) -> Page:
        """A page holding ``releases``."""
        compressor = zlib.compressobj()
        parts = [compressor.compress(b"[")]
        count = 0
        for release in releases:
            prefix = "," if count else ""
            parts.append(compressor.compress((prefix + compact_json(release)).encode()))
            count += 1
        parts += [compressor.compress(b"]"), compressor.flush()]
        return cls(url, b"".join(parts), etag, next_url, count)

    @property
    def releases(self) -> tuple[dict[str, Any], ...] | None:
        """The page's releases, decoded anew at each reading; None if not held."""
        if self.packed is None:
            return None
        return tuple(json.loads(self.releases_json()))

    def releases_json(self) -> str:
        """The page's releases as a compact JSON array; the page must hold them."""
        if self.packed is None:
            raise ValueError(f"the releases of {self.url} are not held")
        return zlib.decompress(self.packed).decode()

    def without_releases(self) -> Page:
        """This page as remembered between refreshes: enough to ask conditionally."""
        return replace(self, packed=None)


@dataclass(frozen=True)
class Listing:
    """A complete listing of releases, in the order the source gave them."""

    pages: tuple[Page, ...]
    not_modified: bool = False

    @property
    def complete(self) -> bool:
        """Whether every page's releases are at hand."""
        return all(page.packed is not None for page in self.pages)

    @property
    def count(self) -> int:
        """How many releases the listing has."""
        return sum(page.count for page in self.pages)

    def releases(self) -> Iterator[dict[str, Any]]:
        """Every release, decoded a page at a time; the listing must be complete."""
        return releases_of(self.pages)

    @property
    def digest(self) -> str:
        """A digest of what is served, to tell whether anything changed.

        Download counts are left out: they change all the time and serve nothing.
        """
        digest = hashlib.sha256()
        for release in self.releases():
            digest.update(json.dumps(uncounted(release), sort_keys=True).encode())
            digest.update(b"\n")
        return digest.hexdigest()


def compact_json(value: Any) -> str:
    """``value`` as JSON without spaces."""
    return json.dumps(value, separators=(",", ":"))


def releases_of(pages: Iterable[Page]) -> Iterator[dict[str, Any]]:
    """Every release the pages hold, decoded a page at a time."""
    for page in pages:
        yield from page.releases or ()


def uncounted(release: Mapping[str, Any]) -> dict[str, Any]:
    """A release object without GitHub's download counts of its assets.

    The counts change all the time and serve nothing: what is left tells whether
    a release changed.
    """
    assets = release.get("assets")
    if not isinstance(assets, list):
        return dict(release)
    return {
        **release,
        "assets": [
            {k: v for k, v in a.items() if k != "download_count"}
            if isinstance(a, Mapping)
            else a
            for a in assets
        ],
    }


@dataclass
class RateLimit:
    """GitHub's rate-limit state as last reported."""

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    seen_at: float = field(default_factory=time.time)


class Source(Protocol):
    """Anything that can list releases."""

    description: str
    rate_limit: RateLimit

    async def fetch(self, previous: Sequence[Page]) -> Listing: ...

    async def aclose(self) -> None: ...


def trim_release(raw: dict[str, Any]) -> dict[str, Any]:
    """The fields of a GitHub release object that rasbot uses."""
    release = {key: raw.get(key) for key in _RELEASE_FIELDS}
    assets = raw.get("assets")
    release["assets"] = [
        {key: asset.get(key) for key in _ASSET_FIELDS}
        for asset in (assets if isinstance(assets, list) else [])
        if isinstance(asset, dict)
    ]
    return release


class FileSource:
    """Releases from a JSON file holding an array in GitHub's release format."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"file:{path}"
        self.rate_limit = RateLimit()

    async def fetch(self, previous: Sequence[Page]) -> Listing:
        """Read the whole file, unless it is unchanged since ``previous``."""
        try:
            stat = self.path.stat()
            tag = f"{stat.st_mtime_ns}:{stat.st_size}"
            if previous and all(page.etag == tag for page in previous):
                return Listing(tuple(previous), not_modified=True)
            where = str(self.path)
            with self.path.open("rb") as file:
                # Decoded a release at a time and held a page at a time:
                # thousands of GitHub's full release objects at once take many
                # times the file.
                releases = (
                    _trimmed(release, where)
                    for release in jsonarray.items(
                        jsonarray.file_pieces(file), hook=_kept
                    )
                )
                pages = [
                    Page.holding(f"{where}?page={number}", chunk, tag)
                    for number, chunk in enumerate(_chunks(releases), 1)
                ]
        except (OSError, ValueError) as exc:
            raise SourceError(f"cannot read {self.path}: {exc}") from None
        return Listing(tuple(pages) or (Page.holding(where, (), tag),))

    async def aclose(self) -> None:
        """Nothing to release."""


class GitHubSource:
    """All releases of one repository, page by page, asked conditionally."""

    def __init__(
        self,
        api_url: str,
        repo: str,
        *,
        token: str | None = None,
        timeout_seconds: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        # Imported here: a server reading a releases file does without httpx.
        import httpx

        self._first_url = f"{api_url.rstrip('/')}/repos/{repo}/releases?per_page=100"
        self._origin = _origin(api_url)
        self.description = f"github:{repo}"
        self.rate_limit = RateLimit()
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": f"rasbot/{__version__}",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._client.aclose()

    async def fetch(self, previous: Sequence[Page]) -> Listing:
        """Every page of the listing; pages whose ETag still matches are reused."""
        known = {page.url: page for page in previous}
        pages: list[Page] = []
        url: str | None = self._first_url
        unchanged = True
        while url is not None:
            if len(pages) >= _MAX_PAGES:
                raise SourceError(f"more than {_MAX_PAGES} pages: Link headers loop")
            page, fresh = await self._fetch_page(url, known.get(url))
            unchanged = unchanged and not fresh
            pages.append(page)
            url = page.next_url
        unchanged = unchanged and len(pages) == len(previous)
        return Listing(tuple(pages), not_modified=unchanged)

    async def _fetch_page(self, url: str, cached: Page | None) -> tuple[Page, bool]:
        import httpx

        # The token goes in a header; a Link elsewhere must not take it along.
        if _origin(url) != self._origin:
            raise SourceError(f"pagination left {self._origin}: {_safe(url)}")

        headers = {"If-None-Match": cached.etag} if cached and cached.etag else {}
        try:
            response = await self._client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"{type(exc).__name__} on {_safe(url)}") from None
        self._note_rate_limit(response)

        if response.status_code == 304 and cached is not None:
            # A page's ETag covers its items only: a page added after it shows in
            # the Link of the 304 alone.
            if "link" in response.headers:
                next_url = response.links.get("next", {}).get("url")
                return replace(cached, next_url=next_url), next_url != cached.next_url
            return cached, False
        if response.status_code != 200:
            raise self._failure(response)
        releases = _release_list(_json_body(response), _safe(url))
        next_url = response.links.get("next", {}).get("url")
        return Page.holding(url, releases, response.headers.get("ETag"), next_url), True

    def _note_rate_limit(self, response: httpx.Response) -> None:
        headers = response.headers
        if "X-RateLimit-Remaining" not in headers:
            return
        self.rate_limit = RateLimit(
            limit=_header_int(headers, "X-RateLimit-Limit"),
            remaining=_header_int(headers, "X-RateLimit-Remaining"),
            reset_at=_header_int(headers, "X-RateLimit-Reset"),
        )

    def _failure(self, response: httpx.Response) -> SourceError:
        status = response.status_code
        message = _error_message(response)
        retry_after = _header_int(response.headers, "Retry-After")
        if retry_after is not None:
            return SourceError(
                f"HTTP {status}: {message}", retry_at=time.time() + retry_after
            )
        if status in (403, 429) and self.rate_limit.remaining == 0:
            return SourceError(
                f"rate limited: {message}", retry_at=self.rate_limit.reset_at
            )
        return SourceError(f"HTTP {status}: {message}")


def _release_list(data: Any, where: str) -> Iterator[dict[str, Any]]:
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise SourceError(f"{where} is not a JSON array of releases")
    return (trim_release(release) for release in data)


def _trimmed(release: Any, where: str) -> dict[str, Any]:
    if not isinstance(release, dict):
        raise SourceError(f"{where} is not a JSON array of releases")
    return trim_release(release)


def _chunks(releases: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(itertools.islice(releases, FILE_PAGE_RELEASES)):
        yield chunk


def _decode(data: bytes) -> Any:
    return json.loads(data, object_pairs_hook=_kept)


def _kept(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    return {key: value for key, value in pairs if key in _KEPT_KEYS}


def _json_body(response: httpx.Response) -> Any:
    try:
        return _decode(response.content)
    except (ValueError, RecursionError):  # nested deeper than the decoder goes
        raise SourceError(f"invalid JSON from {_safe(str(response.url))}") from None


def _error_message(response: httpx.Response) -> str:
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or response.reason_phrase)[:200]


def _header_int(headers: httpx.Headers, name: str) -> int | None:
    try:
        return int(headers[name])
    except (KeyError, ValueError):
        return None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme, parts.netloc


def _safe(url: str) -> str:
    """A URL fit for a log line: without query string or credentials."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
    return f"{parts.scheme}://{host}{parts.path}"
