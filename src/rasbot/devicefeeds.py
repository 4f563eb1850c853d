"""The device endpoints: /update, /updated, /devices, /install, /download.

These are the hot path: every device in the field asks /update every six hours.
Handlers read the current catalog snapshot, never the database, and hand what they
record to the batch recorder without waiting for it.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response

from rasbot.addresses import base_url, client_address, is_trusted
from rasbot.catalog import Asset, Package, Release
from rasbot.db import CLIENT_VALUE_MAX
from rasbot.devices import match_device
from rasbot.feeds import devices_json, install_json, update_xml
from rasbot.selection import channel_of, installable, installable_devices, select_update
from rasbot.services import Services
from rasbot.settings import TrackDownloads
from rasbot.versions import is_developer_build, parse_client_version

router = APIRouter()

XML = "application/xml; charset=utf-8"
JSON = "application/json"
PLATFORMS = frozenset({"windows", "linux", "osx"})

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadRequest(HTTPException):
    """A request no real client could send; answered 400 with the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(status_code=400, detail=reason)


def _query(*names: str, **required: str) -> dict[str, Any]:
    """OpenAPI description of query parameters read by hand."""
    params = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in names
    ]
    return {"parameters": params, **required}


def param(request: Request, name: str, default: str = "") -> str:
    """A query parameter: the last one counts, a bare key is empty."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if len(value) > CLIENT_VALUE_MAX:
        raise BadRequest(f"{name} is longer than {CLIENT_VALUE_MAX} characters")
    if _CONTROL.search(value):
        raise BadRequest(f"{name} contains control characters")
    return value.strip()


def services(request: Request) -> Services:
    """The process's services, set up by the application's lifespan."""
    found: Services = request.app.state.services
    return found


def _address(request: Request, svc: Services) -> str | None:
    peer = request.client.host if request.client else None
    proxies = svc.settings.trusted_proxy_networks
    return client_address(peer, request.headers.get("x-forwarded-for"), proxies)


def _base_url(request: Request, svc: Services) -> str:
    peer = request.client.host if request.client else None
    return base_url(
        svc.settings.public_url,
        request.url.scheme,
        request.headers.get("host"),
        forwarded_proto=request.headers.get("x-forwarded-proto"),
        forwarded_host=request.headers.get("x-forwarded-host"),
        trusted=is_trusted(peer, svc.settings.trusted_proxy_networks),
    )


def _tracked_base(request: Request, svc: Services, *, updater: bool) -> str | None:
    mode = svc.settings.track_downloads
    if mode is TrackDownloads.ALL or (mode is TrackDownloads.UPDATE and updater):
        return _base_url(request, svc)
    return None


def _beta_base(request: Request, svc: Services, serial: str) -> str:
    # Only whitelisted serials are on the beta channel: /beta/ checks it again.
    return f"{_base_url(request, svc)}/beta/{quote(serial.lower(), safe='')}"


@router.get("/", response_class=PlainTextResponse, summary="Uptime check")
async def ping() -> str:
    """Answers ``pong``."""
    return "pong"


@router.get(
    "/update",
    summary="The in-app updater's feed",
    response_class=Response,
    openapi_extra=_query(
        "channel", "serial", "revision", "version", "build", "distribution"
    ),
    responses={200: {"content": {XML: {}}}, 400: {"description": "Bad parameter"}},
)
async def update(request: Request) -> Response:
    """At most one release, newer than the client, for its channel and board."""
    svc = services(request)
    serial = param(request, "serial")
    revision = param(request, "revision")
    version = param(request, "version")
    channel = channel_of(param(request, "channel"), whitelisted=serial in svc.whitelist)
    device = match_device(revision, svc.settings.device_board_map)

    offer = None
    if not is_developer_build(version):
        client = parse_client_version(version)
        offer = select_update(svc.syncer.catalog, channel, device, client)
    body = update_xml(
        offer,
        _tracked_base(request, svc, updater=True),
        beta_base=_beta_base(request, svc, serial) if channel == "beta" else None,
    )

    svc.recorder.record(
        "update_checks",
        serial=serial or None,
        revision=revision or None,
        device=device.specific or device.general,
        client_version=version or None,
        channel=channel,
        address=_address(request, svc),
        offered=offer.release.name if offer else None,
    )
    return Response(body, media_type=XML)


@router.get(
    "/updated",
    summary="An update was staged",
    response_class=PlainTextResponse,
    openapi_extra=_query("channel", "fromVersion", "revision", "serial", "version"),
)
async def updated(request: Request) -> str:
    """Records that a device unpacked an update and is about to reboot into it."""
    svc = services(request)
    serial, revision = param(request, "serial"), param(request, "revision")
    device = match_device(revision, svc.settings.device_board_map)
    svc.recorder.record(
        "updates_staged",
        serial=serial or None,
        revision=revision or None,
        device=device.specific or device.general,
        from_version=param(request, "fromVersion") or None,
        version=param(request, "version") or None,
        channel=channel_of(
            param(request, "channel"), whitelisted=serial in svc.whitelist
        ),
        address=_address(request, svc),
    )
    return "Thanks for updating"


@router.get(
    "/devices",
    summary="The installer's device list",
    response_class=Response,
    responses={200: {"content": {JSON: {}}}},
)
async def devices(request: Request) -> Response:
    """Devices with an install image, the one to preselect first."""
    svc = services(request)
    names = dict(svc.settings.device_names)
    found = installable_devices(svc.syncer.catalog, list(names))
    return Response(
        devices_json([(d, names.get(d, d)) for d in found]), media_type=JSON
    )


@router.get(
    "/install",
    summary="The installer's image list",
    response_class=Response,
    openapi_extra=_query("platform", "device"),
    responses={200: {"content": {JSON: {}}}, 400: {"description": "Bad parameter"}},
)
async def install(request: Request) -> Response:
    """Stable and prerelease images for one device, the one to preselect first."""
    svc = services(request)
    platform = param(request, "platform", "unknown").lower() or "unknown"
    device = _canonical_device(svc, param(request, "device", "RPi") or "RPi")
    entries = installable(svc.syncer.catalog, device)
    body = install_json(entries, device, _tracked_base(request, svc, updater=False))

    svc.recorder.record(
        "installs",
        platform=platform if platform in PLATFORMS else "unknown",
        device=device,
        address=_address(request, svc),
    )
    return Response(body, media_type=JSON)


def _canonical_device(svc: Services, device: str) -> str:
    known = [d for d, _ in svc.settings.device_names]
    for release in svc.syncer.catalog.releases:
        known.extend(release.install)
    return next((k for k in known if k.lower() == device.lower()), device)


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
            address=_address(request, svc),
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
