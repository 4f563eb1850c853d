"""POST /crashes: crash dumps from the updater's crash submitter (PROTOCOL.md 6).

The client deletes its dump when it gets a 200 and sends it again later otherwise,
so 200 means stored (file renamed into place and row committed) and every failure to
store is a 503. What the client got wrong is a 400, a dump over the limit a 413.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio
import structlog
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from starlette.requests import ClientDisconnect

from rasbot import crashes
from rasbot.addresses import client_address
from rasbot.crashform import DumpDecoder, DumpTooLarge, FormError, body_limit
from rasbot.devicefeeds import param, services
from rasbot.devices import match_device
from rasbot.services import Services

log = structlog.get_logger(__name__)

router = APIRouter()

_QUERY = (
    "version",
    "platform",
    "submitter_version",
    "serial",
    "revision",
    "uuid",
    "serverUuid",
)
# How long a client should wait before sending a dump we could not store again.
_RETRY_AFTER_SECONDS = "300"


@dataclass(frozen=True)
class _Received:
    part: Path
    size: int
    minidump_ok: bool


@router.post(
    "/crashes",
    summary="A crash dump from the updater",
    response_class=PlainTextResponse,
    openapi_extra={
        "parameters": [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in _QUERY
        ],
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {"dumpfileb64": {"type": "string"}},
                        "required": ["dumpfileb64"],
                    }
                }
            }
        },
    },
    responses={
        200: {"description": "Stored; the body is the crash id"},
        400: {"description": "Not a crash form"},
        413: {"description": "Dump too large"},
        503: {"description": "Not stored; send it again later"},
    },
)
async def upload(request: Request) -> PlainTextResponse:
    """Store a crash dump; answer its short id."""
    svc = services(request)
    report = _report(request, svc)
    max_bytes = svc.settings.crash_max_bytes
    _refuse_declared_size(request, body_limit(max_bytes))

    received = await _receive(request, max_bytes, svc.settings.crash_dir)
    try:
        public_id = await crashes.store(
            svc.engine,
            received.part,
            report,
            size=received.size,
            minidump_ok=received.minidump_ok,
        )
    except crashes.NotStored:
        raise _unavailable() from None
    log.info("crash.stored", id=public_id, size=received.size, version=report.version)
    return PlainTextResponse(public_id)


def _report(request: Request, svc: Services) -> crashes.CrashReport:
    revision = param(request, "revision")
    device = match_device(revision, svc.settings.device_board_map)
    peer = request.client.host if request.client else None
    forwarded = request.headers.get("x-forwarded-for")
    return crashes.CrashReport(
        serial=param(request, "serial").lower() or None,
        revision=revision or None,
        device=device.specific or device.general,
        version=param(request, "version") or None,
        platform=param(request, "platform") or None,
        # Older builds send no submitter_version.
        submitter_version=param(request, "submitter_version") or None,
        uuid=param(request, "uuid") or None,
        server_uuid=param(request, "serverUuid") or None,
        address=client_address(peer, forwarded, svc.settings.trusted_proxy_networks),
    )


def _refuse_declared_size(request: Request, limit: int) -> None:
    # Refuse before reading a byte when the client says how much is coming.
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(f"the body is over {limit} bytes")


async def _receive(request: Request, max_bytes: int, directory: Path) -> _Received:
    """Decode the body into a new file of ``directory`` as it arrives."""
    try:
        fd, name = await anyio.to_thread.run_sync(_new_part, directory)
    except OSError as exc:
        log.warning("crash.not_stored", error=str(exc))
        raise _unavailable() from None
    part = Path(name)
    try:
        with os.fdopen(fd, "wb") as file:
            decoder = await _decode_body(request, max_bytes, file)
            await anyio.to_thread.run_sync(_flush, file)
    except OSError as exc:  # flushing or closing: the disk is full or gone
        _discard(part)
        log.warning("crash.not_stored", error=str(exc))
        raise _unavailable() from None
    except BaseException:
        # Synchronous on purpose: it must happen even when the task is cancelled.
        _discard(part)
        raise
    return _Received(part, decoder.size, decoder.is_minidump)


async def _decode_body(request: Request, max_bytes: int, file: BinaryIO) -> DumpDecoder:
    decoder, limit, read = DumpDecoder(max_bytes), body_limit(max_bytes), 0
    try:
        async for chunk in request.stream():
            read += len(chunk)
            if read > limit:
                raise DumpTooLarge(f"the body is over {limit} bytes")
            await _write(file, decoder.feed(chunk))
        await _write(file, decoder.finish())
    except FormError as exc:
        raise HTTPException(400, str(exc)) from None
    except DumpTooLarge as exc:
        raise _too_large(str(exc)) from None
    except ClientDisconnect:
        raise HTTPException(400, "the upload was cut short") from None
    except OSError as exc:
        log.warning("crash.not_stored", error=str(exc))
        raise _unavailable() from None
    if decoder.size == 0:
        raise HTTPException(400, "dumpfileb64 is empty")
    return decoder


async def _write(file: BinaryIO, data: bytes) -> None:
    if data:
        await anyio.to_thread.run_sync(file.write, data)


def _new_part(directory: Path) -> tuple[int, str]:
    directory.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(
        prefix=crashes.PART_PREFIX, suffix=crashes.PART_SUFFIX, dir=directory
    )


def _flush(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)


def _too_large(reason: str) -> HTTPException:
    return HTTPException(413, reason)


def _unavailable() -> HTTPException:
    return HTTPException(
        503,
        "the crash dump could not be stored; send it again later",
        headers={"Retry-After": _RETRY_AFTER_SECONDS},
    )
