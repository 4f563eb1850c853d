"""A local stand-in for GitHub's REST API, serving one repository's releases.

Tests point rasbot's GitHub source at it (``RASBOT_GITHUB_API_URL``) and then read
what the client asked for and how often. It is a real HTTP server on 127.0.0.1 with
an ephemeral port, in a background thread or as a script::

    with GitHubStub(releases, repo="RasPlex/RasPlex", page_size=5, token="t") as gh:
        gh.url                    # "http://127.0.0.1:54321", the API base
        gh.fail(502, page=2, times=1)
        ...
        gh.requests[-1].headers   # every request: method, path with query, headers
        gh.counts                 # Counts(requests=..., ok=..., not_modified=...)

    python tests/github_stub.py --releases examples/releases.json --port 0 \\
        --page-size 5 [--token T] [--repo owner/name]
    # prints the base URL as its first stdout line, serves until killed

Served, as GitHub does:

- ``GET /repos/{owner}/{repo}`` and ``/repositories/{id}``: a minimal repository.
- ``GET /repos/{owner}/{repo}/releases?per_page=N&page=P``: the releases (newest
  first) in pages of ``min(per_page, page_size, 100)``; ``per_page`` defaults to 30.
  ``Link`` (prev, next, last, first) points at ``{url}/repositories/{id}/releases``,
  a different path from the first request, which is served too.
- Each page has a strong ``ETag`` of its bytes; a matching ``If-None-Match`` gets
  ``304`` with no body but the current ``Link``. As at GitHub, the ETag covers the
  page's items only: a release added at the end leaves page 1 at 304 while its
  ``Link`` gains a page.
- With ``token`` set, ``Authorization: token <t>`` or ``Bearer <t>`` is required,
  else ``401 Bad credentials``; a token seen anywhere else (the URL, another header)
  is listed in ``token_leaks``.
- ``X-RateLimit-*`` headers on every answer. Each answer uses one request of the
  budget (``limit``: 5000 with a token, 60 without), except a ``304`` to an
  authorised request. At zero, or after ``rate_limit()``, answers are ``403 API rate
  limit exceeded`` until the window resets; ``rate_limit(secondary=True)`` answers
  ``429`` with ``Retry-After``. ``clear_rate_limit()`` restores the budget.
- Anything else: ``404 Not Found`` in GitHub's JSON error shape.

Faults, settable while serving, for every request (``page=None``) or only release
page ``page``, optionally only the next ``times`` matching requests: ``fail(status)``
answers that status; ``garbage(kind)`` answers 200 with a ``"truncated"`` page (a
complete HTTP message, half the JSON), a ``"cut"`` one (the connection drops
mid-body), an ``"html"`` error page, a JSON ``"object"`` instead of the array or
arrays nested ``"deep"``er than a JSON decoder goes;
``delay(seconds)`` stalls before answering. ``clear_faults()`` removes them all.

Mutations change the pages and so their ETags: ``set_releases``, ``add_release``,
``edit_release(id_or_tag, **fields)``, ``delete_release(id_or_tag)``.
``reset_counters()`` forgets recorded requests, counts and leaks. ``make_release``
builds a GitHub-shaped release for synthetic test data. All of it is thread-safe.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

HOST = "127.0.0.1"
DOCS_URL = "https://docs.github.com/rest"
RATE_DOCS_URL = f"{DOCS_URL}/overview/rate-limits-for-the-rest-api"
GITHUB_MAX_PER_PAGE = 100
GITHUB_DEFAULT_PER_PAGE = 30
WINDOW_SECONDS = 3600
GARBAGE_KINDS = ("truncated", "cut", "html", "object", "deep")
JSON_TYPE = "application/json; charset=utf-8"
PAGE_HEADERS = {
    "Cache-Control": "private, max-age=60, s-maxage=60",
    "Vary": "Accept, Authorization, Cookie, X-GitHub-OTP",
}
HTML_ERROR_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Unicorn! &middot; GitHub</title></head>"
    b"<body><p>No server is currently available to service your request.</p>"
    b"</body></html>\n"
)


@dataclass
class RecordedRequest:
    """One request as the stub saw it; ``status`` is set once it is answered."""

    method: str
    path: str  # with the query string, exactly as sent
    headers: dict[str, str]  # names lower-cased
    status: int | None = None


@dataclass(frozen=True)
class Counts:
    """How many requests arrived, and how many were answered 200 and 304."""

    requests: int = 0
    ok: int = 0
    not_modified: int = 0


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    cut: bool = False  # promise the whole body, send half, hang up


@dataclass
class _Fault:
    kind: str  # "status", "garbage" or "delay"
    value: Any  # the status, the garbage kind or the seconds
    page: int | None
    times: int | None
    status: int = 200  # what a garbage body is sent with

    def matches(self, page: int | None) -> bool:
        return self.page is None or self.page == page


@dataclass
class _RateLimit:
    limit: int
    remaining: int
    reset: int  # epoch seconds
    status: int = 403
    secondary_until: float = 0.0
    secondary_times: int | None = None
    secondary_status: int = 429


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stalled handler must not hold up stop()
    stub: GitHubStub


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the stub and writes its reply."""

    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    # Headers and body go out in two writes; with Nagle on, the client's delayed
    # ACK would add 40 ms to every answer.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        """Answer any method the same way: the stub decides."""
        self._drain_body()
        reply = self.server.stub._handle(self.command, self.path, self.headers)
        self._send(reply)

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _drain_body(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def _send(self, reply: _Reply) -> None:
        has_body = reply.status != HTTPStatus.NOT_MODIFIED
        sent = reply.body[: len(reply.body) // 2] if reply.cut else reply.body
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if has_body:
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if has_body and self.command != "HEAD":
                self.wfile.write(sent)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (a timeout test): nobody is left to answer.
            self.close_connection = True
        if reply.cut:
            self.close_connection = True  # the short body must end in a hang-up

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read ``stub.requests`` instead of a log."""


class GitHubStub:
    """GitHub's REST API for one repository's releases, on 127.0.0.1."""

    def __init__(
        self,
        releases: Iterable[dict[str, Any]] = (),
        *,
        repo: str = "RasPlex/RasPlex",
        repo_id: int = 1000,
        page_size: int = 5,
        token: str | None = None,
        limit: int | None = None,
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo = repo
        self.repo_id = repo_id
        self.page_size = page_size
        self.token = token
        self.url = ""  # set by start()
        self._port = port
        self._clock = clock
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._releases = copy.deepcopy(list(releases))
        self._faults: list[_Fault] = []
        if limit is None:
            limit = 5000 if token else 60  # GitHub's hourly budgets
        self._rate = self._fresh_rate_limit(limit)
        self.reset_counters()

    # Lifecycle

    def start(self) -> GitHubStub:
        """Serve from a background thread; ``url`` is the API base from now on."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="github-stub",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self, ready: Callable[[str], None] | None = None) -> None:
        """Serve from the calling thread until interrupted (the script's way).

        ``ready`` is called with ``url`` once the port is bound.
        """
        server = self._bind()
        if ready is not None:
            ready(self.url)
        try:
            server.serve_forever(poll_interval=0.01)
        finally:
            self._stopping.set()
            server.server_close()

    def stop(self) -> None:
        """Stop serving; delayed answers in flight are cut short."""
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> GitHubStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _bind(self) -> _Server:
        server = _Server((HOST, self._port), _Handler)
        server.stub = self
        self._server = server
        self._stopping.clear()
        self.url = f"http://{HOST}:{server.server_address[1]}"
        return server

    # What the tests read

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (a copy of the list)."""
        with self._lock:
            return list(self._requests)

    @property
    def counts(self) -> Counts:
        """A snapshot of the request, 200 and 304 counts."""
        with self._lock:
            return self._counts

    @property
    def token_leaks(self) -> list[str]:
        """Where the token was seen outside the ``Authorization`` header."""
        with self._lock:
            return list(self._token_leaks)

    @property
    def releases(self) -> list[dict[str, Any]]:
        """A copy of the releases being served, newest first."""
        with self._lock:
            return copy.deepcopy(self._releases)

    def reset_counters(self) -> None:
        """Forget recorded requests, counts and token leaks."""
        with self._lock:
            self._requests: list[RecordedRequest] = []
            self._counts = Counts()
            self._token_leaks: list[str] = []

    # Mutations

    def set_releases(self, releases: Iterable[dict[str, Any]]) -> None:
        """Replace every release."""
        with self._lock:
            self._releases = copy.deepcopy(list(releases))

    def add_release(self, release: dict[str, Any], *, index: int = 0) -> None:
        """Publish a release; at the front by default, as GitHub lists new ones."""
        with self._lock:
            self._releases.insert(index, copy.deepcopy(release))

    def edit_release(self, key: int | str, **fields: Any) -> None:
        """Change fields (``body``, ``assets``) of the release with this id or tag."""
        with self._lock:
            self._find(key).update(copy.deepcopy(fields))

    def delete_release(self, key: int | str) -> None:
        """Remove the release with this id or tag."""
        with self._lock:
            self._releases.remove(self._find(key))

    def _find(self, key: int | str) -> dict[str, Any]:
        field_name = "tag_name" if isinstance(key, str) else "id"
        for release in self._releases:
            if release.get(field_name) == key:
                return release
        raise KeyError(f"no release with {field_name} {key!r}")

    # Faults

    def fail(
        self, status: int, *, page: int | None = None, times: int | None = None
    ) -> None:
        """Answer ``status`` with GitHub's JSON error shape."""
        self._add_fault(_Fault("status", status, page, times))

    def garbage(
        self,
        kind: str,
        *,
        page: int | None = None,
        times: int | None = None,
        status: int = 200,
    ) -> None:
        """Answer a body no client should accept: truncated, html or object."""
        if kind not in GARBAGE_KINDS:
            raise ValueError(f"garbage kind must be one of {GARBAGE_KINDS}")
        self._add_fault(_Fault("garbage", kind, page, times, status))

    def delay(
        self, seconds: float, *, page: int | None = None, times: int | None = None
    ) -> None:
        """Wait ``seconds`` before answering, to make a client time out."""
        self._add_fault(_Fault("delay", seconds, page, times))

    def clear_faults(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def _add_fault(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _use(self, fault: _Fault) -> None:
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                self._faults.remove(fault)

    # Rate limits

    def rate_limit(
        self,
        reset_in: float = 60,
        secondary: bool = False,
        retry_after: float | None = None,
        *,
        status: int | None = None,
        times: int | None = None,
    ) -> None:
        """Exhaust the budget until ``reset_in`` seconds from now (403), or with
        ``secondary`` refuse for ``retry_after`` seconds or ``times`` requests (429).
        """
        with self._lock:
            now = self._clock()
            if secondary:
                wait = reset_in if retry_after is None else retry_after
                self._rate.secondary_until = now + wait
                self._rate.secondary_times = times
                self._rate.secondary_status = status or 429
            else:
                self._rate.remaining = 0
                self._rate.reset = math.ceil(now + reset_in)
                self._rate.status = status or 403

    def clear_rate_limit(self) -> None:
        """Start a new window with the full budget and no secondary limit."""
        with self._lock:
            self._rate = self._fresh_rate_limit(self._rate.limit)

    def _fresh_rate_limit(self, limit: int) -> _RateLimit:
        return _RateLimit(limit, limit, math.ceil(self._clock() + WINDOW_SECONDS))

    def _roll_window(self) -> None:
        rate = self._rate
        if self._clock() >= rate.reset:
            rate.remaining = rate.limit
            rate.reset = math.ceil(self._clock() + WINDOW_SECONDS)

    def _refuse_over_limit(self) -> _Reply | None:
        rate = self._rate
        if rate.secondary_until > self._clock() and rate.secondary_times != 0:
            return self._secondary_reply()
        if rate.remaining > 0:
            return None
        who = "user ID 1" if self.token else HOST
        message = f"API rate limit exceeded for {who}."
        return _json_reply(rate.status, _error(message, RATE_DOCS_URL))

    def _secondary_reply(self) -> _Reply:
        rate = self._rate
        if rate.secondary_times is not None:
            rate.secondary_times -= 1
        message = (
            "You have exceeded a secondary rate limit. "
            "Please wait a few minutes before you try again."
        )
        reply = _json_reply(rate.secondary_status, _error(message, RATE_DOCS_URL))
        wait = math.ceil(rate.secondary_until - self._clock())
        reply.headers["Retry-After"] = str(max(wait, 1))
        return reply

    def _account(self, reply: _Reply) -> None:
        # GitHub does not charge a 304 to an authorised client: the reason to send
        # If-None-Match at all. Unauthenticated, every answer costs one.
        free = reply.status == HTTPStatus.NOT_MODIFIED and self.token is not None
        if not free:
            self._rate.remaining = max(self._rate.remaining - 1, 0)
        rate = self._rate
        reply.headers |= {
            "X-RateLimit-Limit": str(rate.limit),
            "X-RateLimit-Remaining": str(rate.remaining),
            "X-RateLimit-Reset": str(rate.reset),
            "X-RateLimit-Used": str(rate.limit - rate.remaining),
            "X-RateLimit-Resource": "core",
        }

    # Answering

    def _handle(self, method: str, target: str, headers: Message) -> _Reply:
        recorded = self._record(method, target, headers)
        path, query = _split(target)
        page = _page(query) if self._resource(path) == "releases" else None
        self._stall(page)
        with self._lock:
            reply = self._decide(method, path, query, headers, page)
            self._account(reply)
            self._count(recorded, reply.status)
        return reply

    def _record(self, method: str, target: str, headers: Message) -> RecordedRequest:
        recorded = RecordedRequest(
            method, target, {name.lower(): value for name, value in headers.items()}
        )
        with self._lock:
            self._requests.append(recorded)
            self._counts = Counts(
                self._counts.requests + 1, self._counts.ok, self._counts.not_modified
            )
            self._note_leaks(target, recorded.headers)
        return recorded

    def _note_leaks(self, target: str, headers: dict[str, str]) -> None:
        if not self.token:
            return
        if self.token in unquote(target):
            self._token_leaks.append(f"url: {target}")
        for name, value in headers.items():
            if name != "authorization" and self.token in value:
                self._token_leaks.append(f"header: {name}")

    def _count(self, recorded: RecordedRequest, status: int) -> None:
        recorded.status = status
        ok = self._counts.ok + (status == HTTPStatus.OK)
        not_modified = self._counts.not_modified + (status == HTTPStatus.NOT_MODIFIED)
        self._counts = Counts(self._counts.requests, ok, not_modified)

    def _stall(self, page: int | None) -> None:
        with self._lock:
            delays = [f for f in self._faults if f.kind == "delay" and f.matches(page)]
            for fault in delays:
                self._use(fault)
        # Sleep outside the lock so other requests go on; stop() cuts it short.
        self._stopping.wait(sum(fault.value for fault in delays))

    def _decide(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        headers: Message,
        page: int | None,
    ) -> _Reply:
        # In the order a request meets them at GitHub: credentials, the rate limit,
        # then whatever breaks behind them, and only then the resource itself.
        self._roll_window()
        refusal = self._refuse_credentials(headers) or self._refuse_over_limit()
        if refusal:
            return refusal
        fault = self._take_fault(page)
        if fault is not None:
            return self._fault_reply(fault, method, path, query)
        return self._route(method, path, query, headers.get("If-None-Match"))

    def _refuse_credentials(self, headers: Message) -> _Reply | None:
        if self.token is None:
            return None
        scheme, _, credentials = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() in ("token", "bearer") and credentials == self.token:
            return None
        return _json_reply(HTTPStatus.UNAUTHORIZED, _error("Bad credentials"))

    def _take_fault(self, page: int | None) -> _Fault | None:
        for fault in self._faults:
            if fault.kind != "delay" and fault.matches(page):
                self._use(fault)
                return fault
        return None

    def _fault_reply(
        self, fault: _Fault, method: str, path: str, query: list[tuple[str, str]]
    ) -> _Reply:
        if fault.kind == "status":
            return _json_reply(fault.value, _error(HTTPStatus(fault.value).phrase))
        if fault.value == "html":
            return _Reply(fault.status, HTML_ERROR_PAGE, {"Content-Type": "text/html"})
        if fault.value == "object":
            body = json.dumps(_error("Server Error")).encode()
        elif fault.value == "deep":
            body = b"[" * 100_000 + b"]" * 100_000
        else:  # the real answer, cut off mid-way
            body = self._route(method, path, query, None).body
            if fault.value == "truncated":
                body = body[: len(body) // 2]
        headers = {"Content-Type": JSON_TYPE}
        return _Reply(fault.status, body, headers, cut=fault.value == "cut")

    # Resources

    def _resource(self, path: str) -> str | None:
        """Name what ``path`` addresses: "repo", "releases" or None (unknown)."""
        # Strict on purpose: a doubled or trailing slash from careless URL joining
        # is a 404 here, as it is at GitHub. Names match case-insensitively there.
        parts = path.split("/")
        if (
            parts[:2] == ["", "repos"]
            and "/".join(parts[2:4]).lower() == self.repo.lower()
        ):
            rest = parts[4:]
        elif parts[:3] == ["", "repositories", str(self.repo_id)]:
            rest = parts[3:]
        else:
            return None
        return {(): "repo", ("releases",): "releases"}.get(tuple(rest))

    def _route(
        self,
        method: str,
        path: str,
        query: list[tuple[str, str]],
        if_none_match: str | None,
    ) -> _Reply:
        resource = self._resource(path) if method in ("GET", "HEAD") else None
        if resource == "repo":
            return _json_reply(HTTPStatus.OK, self._repository())
        if resource == "releases":
            return self._release_page(query, if_none_match)
        return _json_reply(HTTPStatus.NOT_FOUND, _error("Not Found"))

    def _repository(self) -> dict[str, Any]:
        owner, _, name = self.repo.partition("/")
        api = f"{self.url}/repos/{self.repo}"
        return {
            "id": self.repo_id,
            "name": name,
            "full_name": self.repo,
            "owner": {"login": owner, "type": "Organization"},
            "private": False,
            "html_url": f"https://github.com/{self.repo}",
            "url": api,
            "releases_url": f"{api}/releases{{/id}}",
            "default_branch": "master",
        }

    def _release_page(
        self, query: list[tuple[str, str]], if_none_match: str | None
    ) -> _Reply:
        per_page = _int_param(query, "per_page", GITHUB_DEFAULT_PER_PAGE)
        size = min(per_page, self.page_size, GITHUB_MAX_PER_PAGE)
        page = _page(query)
        items = self._releases[(page - 1) * size : page * size]
        body = json.dumps(items, separators=(",", ":")).encode()
        etag = f'"{hashlib.sha256(body).hexdigest()}"'

        headers = {"ETag": etag, **PAGE_HEADERS}
        link = self._link(query, page, size)
        if link:
            headers["Link"] = link
        if _etag_matches(if_none_match, etag):
            return _Reply(HTTPStatus.NOT_MODIFIED, headers=headers)
        return _Reply(HTTPStatus.OK, body, {"Content-Type": JSON_TYPE, **headers})

    def _link(self, query: list[tuple[str, str]], page: int, size: int) -> str:
        """GitHub's ``Link``: on the repositories/{id} path, the query echoed back."""
        last = max(1, math.ceil(len(self._releases) / size))
        rels = []
        if page > 1:
            rels.append(("prev", page - 1))
        if page < last:
            rels += [("next", page + 1), ("last", last)]
        if page > 1:
            rels.append(("first", 1))
        base = f"{self.url}/repositories/{self.repo_id}/releases"
        kept = [(key, value) for key, value in query if key != "page"]
        return ", ".join(
            f'<{base}?{urlencode([*kept, ("page", n)])}>; rel="{rel}"'
            for rel, n in rels
        )


def make_release(
    release_id: int,
    tag_name: str,
    *,
    body: str = "",
    assets: Iterable[str | dict[str, Any]] = (),
    draft: bool = False,
    prerelease: bool = False,
    published_at: str = "2024-01-01T00:00:00Z",
    repo: str = "RasPlex/RasPlex",
) -> dict[str, Any]:
    """A release shaped like GitHub's; assets may be given by file name only."""
    api = f"https://api.github.com/repos/{repo}"
    return {
        "url": f"{api}/releases/{release_id}",
        "html_url": f"https://github.com/{repo}/releases/tag/{tag_name}",
        "id": release_id,
        "tag_name": tag_name,
        "name": tag_name,
        "draft": draft,
        "prerelease": prerelease,
        "created_at": published_at,
        "published_at": None if draft else published_at,
        "assets": [
            _asset(repo, tag_name, release_id * 100 + i, a)
            for i, a in enumerate(assets)
        ],
        "body": body,
    }


def _asset(
    repo: str, tag_name: str, asset_id: int, asset: str | dict[str, Any]
) -> dict[str, Any]:
    if isinstance(asset, dict):
        return asset
    return {
        "url": f"https://api.github.com/repos/{repo}/releases/assets/{asset_id}",
        "id": asset_id,
        "name": asset,
        "label": "",
        "content_type": "application/octet-stream",
        "state": "uploaded",
        "size": 1024,
        "download_count": 0,
        "browser_download_url": (
            f"https://github.com/{repo}/releases/download/{tag_name}/{asset}"
        ),
    }


def load_releases(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSON array of releases in GitHub's API format."""
    releases = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(releases, list):
        raise ValueError(f"{path}: expected a JSON array of releases")
    return releases


def _error(message: str, documentation_url: str = DOCS_URL) -> dict[str, str]:
    return {"message": message, "documentation_url": documentation_url}


def _json_reply(status: int, payload: Any) -> _Reply:
    body = json.dumps(payload).encode()
    return _Reply(status, body, {"Content-Type": JSON_TYPE})


def _split(target: str) -> tuple[str, list[tuple[str, str]]]:
    parts = urlsplit(target)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def _int_param(query: list[tuple[str, str]], name: str, default: int) -> int:
    # GitHub ignores a value it cannot use rather than failing the request.
    value = dict(query).get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


def _page(query: list[tuple[str, str]]) -> int:
    return _int_param(query, "page", 1)


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2)."""
    if not if_none_match:
        return False
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def main(argv: list[str] | None = None) -> None:
    """Serve releases from a file; print the base URL first, then block."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", help="JSON array of releases (GitHub format)")
    parser.add_argument("--repo", default="RasPlex/RasPlex")
    parser.add_argument("--repo-id", type=int, default=1000)
    parser.add_argument("--page-size", type=int, default=5)
    parser.add_argument("--token", help="require this token")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)

    releases = load_releases(args.releases) if args.releases else []
    stub = GitHubStub(
        releases,
        repo=args.repo,
        repo_id=args.repo_id,
        page_size=args.page_size,
        token=args.token,
        port=args.port,
    )
    # SIGTERM is how test harnesses stop it: leave through the same clean path.
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        stub.serve_forever(ready=lambda url: print(url, flush=True))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
