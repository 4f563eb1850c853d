"""POST /slack/events: Slack's Events API, in the same application as the feeds."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from rasbot.devicefeeds import services

router = APIRouter()

# Slack's event payloads are a few kilobytes; anything far larger is not Slack.
MAX_BODY_BYTES = 1024 * 1024


@router.post(
    "/slack/events",
    summary="Slack Events API",
    responses={
        200: {"description": "event acknowledged"},
        401: {"description": "bad or stale Slack signature"},
        404: {"description": "no Slack signing secret configured"},
        411: {"description": "no Content-Length"},
        413: {"description": "body too large"},
    },
)
async def slack_events(request: Request) -> Response:
    """Hand a signed Slack event to the bot; slack-bolt checks the signature."""
    bot = services(request).slack
    if bot is None or not bot.http_enabled:
        return PlainTextResponse("Not Found\n", status_code=404)
    # The server reads exactly Content-Length bytes, so checking it bounds the body
    # that slack-bolt reads into memory; Slack always sends it.
    length = request.headers.get("content-length", "")
    if not length.isdigit():
        return PlainTextResponse("length required\n", status_code=411)
    if int(length) > MAX_BODY_BYTES:
        return PlainTextResponse("payload too large\n", status_code=413)
    return await bot.handle_http(request)
