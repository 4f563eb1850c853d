"""The device endpoints: /update, /updated, /devices, /install, /download.

These are the hot path: every device in the field asks /update every six hours.
Each answer is computed by a plain function of a `DeviceRequest`, from the current
catalog snapshot and never from the database; what it records goes to the batch
recorder without waiting. `DeviceEndpoints` calls those functions straight from
the ASGI server, in front of the framework, and the framework's routes below call
the same functions, so that the OpenAPI schema describes what devices really get.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from rasbot.addresses import base_url, client_address, is_trusted
from rasbot.catalog import Asset, Catalog, Package, Release
from rasbot.db import CLIENT_VALUE_MAX
from rasbot.devices import DeviceMatch, match_device
from rasbot.feeds import devices_json, install_json, update_xml
from rasbot.selection import channel_of, installable, installable_devices
from rasbot.services import Services
from rasbot.settings import TrackDownloads
from rasbot.versions import is_developer_build, parse_client_version

router = APIRouter()

XML = "application/xml; charset=utf-8"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
PLATFORMS = frozenset({"windows", "linux", "osx"})
_MEDIA_TYPES = {media_type: media_type.encode() for media_type in (XML, JSON, TEXT)}

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

#: A longer answer is sent in pieces of this size, each once the server has taken
#: the one before: sent whole, a /install answer of megabytes (thousands of
#: releases) would be copied into the server's buffers once per connection.
BODY_PIECE_BYTES = 64 * 1024


class BadRequest(HTTPException):
    """A request no real client could send; answered 400 with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(status_code=400, detail=reason)


class NoCatalog(HTTPException):
    """This process has loaded no catalog yet; answered 503.

    A worker that has just started and not finished its first sync would
    otherwise tell every device "no update" and every installer "no images"
    with a 200, as if that were the truth. Old clients read a 503 as "no update"
    too, and a person or a probe can tell it from an answer, as /healthz's 503.
    """

    def __init__(self) -> None:
        super().__init__(status_code=503, detail="no release catalog loaded yet")


def _catalog(svc: Services) -> Catalog:
    """The catalog to answer from; `NoCatalog` while there is none."""
    catalog = svc.syncer.catalog
    if catalog.revision == 0:
        raise NoCatalog
    return catalog


@dataclass(frozen=True, slots=True)
class Answer:
    """What a device endpoint answers."""

    body: bytes
    media_type: str
    status: int = 200


def parse_query(raw: bytes) -> dict[str, str]:
    """The parameters of a query string; a repeated parameter's last value counts.

    The same as ``dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))``,
    at a fraction of its cost: the updater's query has no escapes, so most
    parameters are taken as they are.
    """
    query = {}
    for part in raw.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        if "%" in part or "+" in part:
            name = unquote(name.replace("+", " "), errors="replace")
            value = unquote(value.replace("+", " "), errors="replace")
        query[name] = value
    return query


@dataclass(slots=True)
class DeviceRequest:
    """What a device endpoint reads of a request, from any HTTP layer."""

    query: Mapping[str, str]
    #: The ASGI headers: names in lower case, as the server passed them.
    raw_headers: Sequence[tuple[bytes, bytes]]
    peer: str | None
    scheme: str

    @classmethod
    def from_scope(cls, scope: Mapping[str, Any]) -> DeviceRequest:
        """From an ASGI HTTP scope; a repeated parameter's last value counts."""
        raw = scope["query_string"]
        client = scope.get("client")
        return cls(
            parse_query(raw) if raw else {},
            scope["headers"],
            client[0] if client else None,
            scope["scheme"],
        )

    def header(self, name: bytes) -> str | None:
        """The last value of the header ``name`` (in lower case), if sent.

        Headers are looked up only when an answer needs one, which most don't.
        """
        found = None
        for key, value in self.raw_headers:
            if key == name:
                found = value
        return None if found is None else found.decode("latin-1")

    def param(self, name: str, default: str = "") -> str:
        """A query parameter, checked: a bare key is present and empty."""
        value = self.query.get(name)
        if value is None:
            return default
        if len(value) > CLIENT_VALUE_MAX:
            raise BadRequest(f"{name} is longer than {CLIENT_VALUE_MAX} characters")
        if not value.isprintable() and _CONTROL.search(value):
            raise BadRequest(f"{name} contains control characters")
        return value.strip()

    def address(self, svc: Services) -> str | None:
        """The client address, through trusted proxies only."""
        proxies = svc.settings.trusted_proxy_networks
        if not proxies:
            return self.peer
        return client_address(self.peer, self.header(b"x-forwarded-for"), proxies)

    def base_url(self, svc: Services) -> str:
        """Scheme and host that this server's absolute URLs start with."""
        configured = svc.settings.public_url
        if configured:
            return configured
        host = self.header(b"host")
        if not is_trusted(self.peer, svc.settings.trusted_proxy_networks):
            return base_url(None, self.scheme, host)
        return base_url(
            None,
            self.scheme,
            host,
            forwarded_proto=self.header(b"x-forwarded-proto"),
            forwarded_host=self.header(b"x-forwarded-host"),
            trusted=True,
        )

    def tracked_base(self, svc: Services, *, updater: bool) -> str | None:
        """The base of counted download URLs, or None for GitHub's own."""
        mode = svc.settings.track_downloads
        if mode is TrackDownloads.ALL or (mode is TrackDownloads.UPDATE and updater):
            return self.base_url(svc)
        return None


# --- the answers ------------------------------------------------------------


def answer_ping(svc: Services, req: DeviceRequest) -> Answer:
    """``pong``, for uptime checks."""
    return Answer(b"pong", TEXT)


def answer_update(svc: Services, req: DeviceRequest) -> Answer:
    """At most one release, newer than the client, for its channel and board."""
    serial = req.param("serial")
    revision = req.param("revision")
    version = req.param("version")
    channel = channel_of(req.param("channel"), whitelisted=serial in svc.whitelist)
    catalog = _catalog(svc)
    cache = svc.answers
    device: DeviceMatch = cache.get(
        catalog, ("device", revision), lambda: _device(svc, revision)
    )
    tracked = req.tracked_base(svc, updater=True)
    beta = _beta_base(req, svc, serial) if channel == "beta" else None
    # Releases in a staged rollout that leave this serial out: usually none, and
    # one hash per release being rolled out otherwise (rasbot.rollout).
    rollouts = svc.rollouts.view(catalog)
    excluded = rollouts.excluded(serial, device, channel)

    def make() -> tuple[bytes, str | None]:
        offer = None
        if not is_developer_build(version):
            client = parse_client_version(version)
            offer = rollouts.select(channel, device, client, excluded)
        offered = offer.release.name if offer else None
        return update_xml(offer, tracked, beta_base=beta), offered

    general, specific = device.general, device.specific
    key = (channel, general, specific, version, tracked, beta, rollouts.generation)
    body, offered = cache.get(catalog, ("update", *key, excluded), make)

    svc.recorder.record(
        "update_checks",
        serial=serial or None,
        revision=revision or None,
        device=specific or general,
        client_version=version or None,
        channel=channel,
        address=req.address(svc),
        offered=offered,
    )
    return Answer(body, XML)


def _device(svc: Services, revision: str) -> DeviceMatch:
    # Asked of every /update, and devices send a few dozen revision codes.
    return match_device(revision, svc.settings.device_board_map)


def _beta_base(req: DeviceRequest, svc: Services, serial: str) -> str:
    # Only whitelisted serials are on the beta channel: /beta/ checks it again.
    return f"{req.base_url(svc)}/beta/{quote(serial.lower(), safe='')}"


def answer_updated(svc: Services, req: DeviceRequest) -> Answer:
    """Records that a device unpacked an update and is about to reboot into it."""
    serial, revision = req.param("serial"), req.param("revision")
    device = match_device(revision, svc.settings.device_board_map)
    svc.recorder.record(
        "updates_staged",
        serial=serial or None,
        revision=revision or None,
        device=device.specific or device.general,
        from_version=req.param("fromVersion") or None,
        version=req.param("version") or None,
        channel=channel_of(req.param("channel"), whitelisted=serial in svc.whitelist),
        address=req.address(svc),
    )
    return Answer(b"Thanks for updating", TEXT)


def answer_devices(svc: Services, req: DeviceRequest) -> Answer:
    """Devices with an install image, the one to preselect first."""

    catalog = _catalog(svc)

    def make() -> bytes:
        names = dict(svc.settings.device_names)
        found = installable_devices(catalog, list(names))
        return devices_json([(d, names.get(d, d)) for d in found])

    return Answer(svc.answers.get(catalog, ("devices",), make), JSON)


def answer_install(svc: Services, req: DeviceRequest) -> Answer:
    """Stable and prerelease images for one device, the one to preselect first."""
    platform = req.param("platform", "unknown").lower() or "unknown"
    asked = req.param("device", "RPi") or "RPi"
    tracked = req.tracked_base(svc, updater=False)
    catalog = _catalog(svc)
    cache = svc.answers
    device = cache.get(
        catalog, ("device", asked.lower()), lambda: _canonical(svc, asked)
    )

    def make() -> bytes:
        return install_json(installable(catalog, device), device, tracked)

    body = cache.get(catalog, ("install", device, tracked), make)
    svc.recorder.record(
        "installs",
        platform=platform if platform in PLATFORMS else "unknown",
        device=device,
        address=req.address(svc),
    )
    return Answer(body, JSON)


def _canonical(svc: Services, device: str) -> str:
    """The configured or published spelling of a device id, matched by case."""
    known = [d for d, _ in svc.settings.device_names]
    for release in svc.syncer.catalog.releases:
        known.extend(release.install)
    return next((k for k in known if k.lower() == device.lower()), device)


#: The answers served in front of the framework, by path.
ANSWERS: Mapping[str, Callable[[Services, DeviceRequest], Answer]] = {
    "/": answer_ping,
    "/update": answer_update,
    "/updated": answer_updated,
    "/devices": answer_devices,
    "/install": answer_install,
}


# --- in front of the framework ------------------------------------------------


class DeviceEndpoints:
    """An ASGI app answering GET on the device endpoints before the framework.

    The framework's routing, dependency injection and middleware cost more than
    the answer itself on these tiny responses; everything else passes through to
    ``app``. Requests answered here are counted by ``count`` (path, seconds).
    """

    def __init__(
        self,
        app: Any,
        services: Callable[[], Services],
        count: Callable[[str, float], None],
        error: Callable[[str, Exception], None],
    ) -> None:
        self.app = app
        self._services = services
        self._count = count
        self._error = error

    def __getattr__(self, name: str) -> Any:
        # The framework's state, routes and schema stay reachable through here.
        return getattr(self.app, name)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        answer = ANSWERS.get(scope["path"]) if scope["type"] == "http" else None
        if answer is None or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        result = self._answer(answer, scope)
        headers = [
            (
                b"content-type",
                _MEDIA_TYPES.get(result.media_type) or result.media_type.encode(),
            ),
            (b"content-length", str(len(result.body)).encode()),
        ]
        await send(
            {"type": "http.response.start", "status": result.status, "headers": headers}
        )
        await send_body(send, result.body)
        self._count(scope["path"], time.perf_counter() - started)

    def _answer(
        self, answer: Callable[[Services, DeviceRequest], Answer], scope: Any
    ) -> Answer:
        try:
            return answer(self._services(), DeviceRequest.from_scope(scope))
        except HTTPException as exc:  # BadRequest, NoCatalog
            return Answer(f"{exc.detail}\n".encode(), TEXT, exc.status_code)
        except Exception as exc:
            self._error(scope["path"], exc)
            return Answer(b"internal error\n", TEXT, 500)


async def send_body(send: Callable[[Any], Awaitable[None]], body: bytes) -> None:
    """Send ``body`` as ASGI body messages, in pieces when it is long."""
    if len(body) <= BODY_PIECE_BYTES:
        await send({"type": "http.response.body", "body": body})
        return
    view = memoryview(body)
    for start in range(0, len(body), BODY_PIECE_BYTES):
        end = start + BODY_PIECE_BYTES
        piece = bytes(view[start:end])
        await send(
            {"type": "http.response.body", "body": piece, "more_body": end < len(body)}
        )


# --- the framework's routes: the OpenAPI schema, and any other HTTP layer -------


def services(request: Request) -> Services:
    """The process's services, set up by the application's lifespan."""
    found: Services = request.app.state.services
    return found


def _request(request: Request) -> DeviceRequest:
    return DeviceRequest.from_scope(request.scope)


def param(request: Request, name: str, default: str = "") -> str:
    """A checked query parameter of a framework request (see `DeviceRequest`)."""
    return _request(request).param(name, default)


def _respond(answer: Answer) -> Response:
    return Response(
        answer.body, status_code=answer.status, media_type=answer.media_type
    )


def _query(*names: str) -> dict[str, Any]:
    """OpenAPI description of query parameters read by hand."""
    return {
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in names
        ]
    }


def _route(
    path: str, answer: Callable[[Services, DeviceRequest], Answer], **doc: Any
) -> None:
    async def endpoint(request: Request) -> Response:
        return _respond(answer(services(request), _request(request)))

    endpoint.__doc__ = answer.__doc__
    endpoint.__name__ = answer.__name__
    router.add_api_route(
        path, endpoint, methods=["GET"], response_class=Response, **doc
    )


_BAD = {400: {"description": "Bad parameter"}}
_NO_CATALOG = {503: {"description": "No release catalog loaded yet"}}

_route(
    "/", answer_ping, summary="Uptime check", responses={200: {"content": {TEXT: {}}}}
)
_route(
    "/update",
    answer_update,
    summary="The in-app updater's feed",
    openapi_extra=_query(
        "channel", "serial", "revision", "version", "build", "distribution"
    ),
    responses={200: {"content": {XML: {}}}, **_BAD, **_NO_CATALOG},
)
_route(
    "/updated",
    answer_updated,
    summary="An update was staged",
    openapi_extra=_query("channel", "fromVersion", "revision", "serial", "version"),
    responses={200: {"content": {TEXT: {}}}, **_BAD},
)
_route(
    "/devices",
    answer_devices,
    summary="The installer's device list",
    responses={200: {"content": {JSON: {}}}, **_NO_CATALOG},
)
_route(
    "/install",
    answer_install,
    summary="The installer's image list",
    openapi_extra=_query("platform", "device"),
    responses={200: {"content": {JSON: {}}}, **_BAD, **_NO_CATALOG},
)


@router.head("/download/{tag}/{name}", include_in_schema=False)
@router.get(
    "/download/{tag}/{name}",
    summary="Counted download redirect",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "To the file"}, 404: {"description": "Unknown"}},
)
async def download(request: Request, tag: str, name: str) -> Response:
    """Redirects to the release asset on GitHub and counts the download."""
    svc = services(request)
    release = svc.syncer.catalog.by_tag(tag)
    target = release.download(name) if release else None
    if release is None or target is None:
        return PlainTextResponse("no such release file", status_code=404)

    if request.method == "GET":
        device, kind = _package_of(release, target)
        svc.recorder.record(
            "downloads",
            release_id=release.id,
            version=release.name,
            asset=name,
            device=device,
            kind=kind,
            address=_request(request).address(svc),
        )
    return RedirectResponse(
        target.url, status_code=302, headers={"Cache-Control": "no-store"}
    )


def _package_of(
    release: Release, target: Asset | Package
) -> tuple[str | None, str | None]:
    if isinstance(target, Package):
        return target.device, target.kind
    for package in (*release.install.values(), *release.update.values()):
        if package.asset == target:
            return package.device, package.kind
    return None, None
