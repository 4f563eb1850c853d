"""GitHub's webhook: a release changed, so refresh now instead of at the next poll.

The signature is checked on the raw bytes, in constant time, before anything of the
body is parsed; without a configured secret the endpoint does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from rasbot.devicefeeds import services

log = structlog.get_logger(__name__)
router = APIRouter()

# GitHub caps webhook payloads at 25 MB.
MAX_BODY_BYTES = 25 * 1024 * 1024
REFRESHING_ACTIONS = frozenset(
    {
        "published",
        "edited",
        "deleted",
        "prereleased",
        "released",
        "created",
        "unpublished",
    }
)


def signature_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is ``sha256=`` and the HMAC-SHA256 of ``body``."""
    if not header or not header.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), header.strip().encode())


async def _read_body(request: Request) -> bytes | None:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/github/webhook",
    summary="GitHub webhook",
    status_code=202,
    responses={
        200: {"description": "ping, or an event that changes nothing"},
        202: {"description": "refresh started"},
        401: {"description": "missing or wrong signature"},
        404: {"description": "no webhook secret configured"},
    },
)
async def github_webhook(request: Request) -> Response:
    """Start a refresh when a release event arrives with a valid signature."""
    svc = services(request)
    secret = svc.settings.github_webhook_secret
    if secret is None:
        return PlainTextResponse("Not Found\n", status_code=404)
    event = request.headers.get("x-github-event", "")
    delivery = request.headers.get("x-github-delivery", "")[:64]

    body = await _read_body(request)
    if body is None:
        return PlainTextResponse("payload too large\n", status_code=413)
    signature = request.headers.get("x-hub-signature-256")
    if not signature_valid(secret.get_secret_value().encode(), body, signature):
        log.warning(
            "webhook.rejected",
            gh_event=event[:64],
            delivery=delivery,
            signature_present=signature is not None,
        )
        return PlainTextResponse("bad signature\n", status_code=401)

    try:
        payload: Any = json.loads(body)
    except ValueError:
        return PlainTextResponse("body is not JSON\n", status_code=400)
    return _handle(request, event, delivery, payload)


def _handle(request: Request, event: str, delivery: str, payload: Any) -> Response:
    svc = services(request)
    action = payload.get("action") if isinstance(payload, dict) else None
    if event == "ping":
        return JSONResponse({"ok": True})
    if event != "release" or action not in REFRESHING_ACTIONS:
        return JSONResponse({"ok": True, "ignored": event}, status_code=200)
    if not _our_repository(payload, svc.settings.github_repo):
        return JSONResponse({"ok": True, "ignored": "another repository"})

    svc.syncer.request_refresh("webhook")
    log.info("webhook.refresh", action=action, delivery=delivery)
    return JSONResponse({"ok": True, "refresh": "started"}, status_code=202)


def _our_repository(payload: dict[str, Any], repo: str) -> bool:
    repository = payload.get("repository")
    name = repository.get("full_name") if isinstance(repository, dict) else None
    return not isinstance(name, str) or name.lower() == repo.lower()
