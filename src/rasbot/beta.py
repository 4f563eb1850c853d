"""GET /beta/<serial>/<name>: beta images, the only files this server serves itself.

The /update feed hands this URL, with the client's own serial, to whitelisted beta
clients (PROTOCOL.md 5). A serial that is not whitelisted gets 403; a name that is
not a file directly inside ``RASBOT_BETA_DIR`` gets 404 (`BetaDir.find`).

Starlette's `FileResponse` does the HTTP: Content-Length, ETag, Last-Modified,
HEAD, one Range (206, or 416 when it starts past the end), read from disk a chunk
at a time. Two kinds of Range header are ignored before it sees them, and the whole
file is sent (200): a unit other than ``bytes``, which RFC 9110 says to ignore
(Starlette would answer 400), and a request for several ranges, which no updater or
download manager needs, and for which the whole file is always a correct answer.

A beta file is replaced by copying the new one in under a new name (builds are
named by version): `FileResponse` opens the path after it was looked up, and a
file rewritten in place in between would not match the Content-Length sent.

A download is counted when a GET's answer starts at byte 0 (a 200, or a 206 from
byte 0), so a HEAD or a resumed download is not counted again.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from rasbot.addresses import client_address
from rasbot.betadir import BetaDir, BetaFile
from rasbot.catalog import Package, Release
from rasbot.devicefeeds import services
from rasbot.services import Services

router = APIRouter()

OCTETS = "application/octet-stream"


@router.head("/beta/{serial}/{name}", include_in_schema=False)
@router.get(
    "/beta/{serial}/{name}",
    summary="A beta image, for whitelisted serials",
    response_class=Response,
    responses={
        200: {"content": {OCTETS: {}}},
        206: {"description": "The requested range"},
        403: {"description": "Serial not whitelisted"},
        404: {"description": "No such beta file"},
        416: {"description": "Range not satisfiable"},
    },
)
async def beta_file(request: Request, serial: str, name: str) -> Response:
    """The file ``name`` of the beta directory, for a whitelisted ``serial``."""
    svc = services(request)
    if serial not in svc.whitelist:
        return PlainTextResponse("serial not on the beta whitelist\n", status_code=403)
    found = await _find(svc.settings.beta_dir, name)
    if found is None:
        return PlainTextResponse("no such beta file\n", status_code=404)
    return BetaFileResponse(found, on_download=partial(_record, request, svc, name))


async def _find(beta_dir: Path | None, name: str) -> BetaFile | None:
    if beta_dir is None:
        return None
    return await anyio.to_thread.run_sync(BetaDir(beta_dir).find, name)


class BetaFileResponse(FileResponse):
    """A `FileResponse` that drops unwanted Range headers and reports downloads."""

    # Starlette reads 64 KiB at a time, each read a thread hop: a quarter of the
    # hops for a gigabyte image, for 256 KiB of memory per download.
    chunk_size = 256 * 1024

    def __init__(self, found: BetaFile, *, on_download: Callable[[], None]) -> None:
        # Octets, not what the name suggests: a .tar.gz labelled gzip invites a
        # client to unpack it on the fly, and the updater checks the packed bytes.
        super().__init__(found.path, stat_result=found.stat, media_type=OCTETS)
        self._on_download = on_download

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counted = scope["method"] == "GET"

        async def observe(message: Message) -> None:
            if counted and _starts_at_first_byte(message):
                self._on_download()
            await send(message)

        await super().__call__(_usable_range_only(scope), receive, observe)


def _usable_range_only(scope: Scope) -> Scope:
    headers = scope["headers"]
    ranges = [value for key, value in headers if key == b"range"]
    if not ranges or _single_byte_range(ranges[-1]):
        return scope
    return {**scope, "headers": [(k, v) for k, v in headers if k != b"range"]}


def _single_byte_range(value: bytes) -> bool:
    unit, _, ranges = value.partition(b"=")
    parts = [part for part in ranges.split(b",") if part.strip()]
    return unit.strip().lower() == b"bytes" and len(parts) <= 1


def _starts_at_first_byte(message: Message) -> bool:
    if message["type"] != "http.response.start":
        return False
    status: int = message["status"]
    if status == 200:
        return True
    headers: dict[bytes, bytes] = dict(message.get("headers", ()))
    first = headers.get(b"content-range", b"").startswith(b"bytes 0-")
    return status == 206 and first


def _record(request: Request, svc: Services, name: str) -> None:
    release, package = _referenced_by(svc, name)
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    svc.recorder.record(
        "downloads",
        # A file no release names yet (a tester fetching it by hand) is release 0.
        release_id=release.id if release else 0,
        version=release.name if release else "",
        asset=name,
        device=package.device if package else None,
        kind=package.kind if package else None,
        address=client_address(peer, forwarded, svc.settings.trusted_proxy_networks),
    )


def _referenced_by(svc: Services, name: str) -> tuple[Release | None, Package | None]:
    # Highest version first: a file named by two releases counts for the newer.
    for release in svc.syncer.catalog.on_channels(("beta",)):
        for package in (*release.update.values(), *release.install.values()):
            if package.in_beta_dir and package.file_name == name:
                return release, package
    return None, None
