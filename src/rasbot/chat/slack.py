"""Slack: the chat commands over Socket Mode and the Events API, with slack-bolt.

The bot answers when it is mentioned or addressed by name (`rasbot releases`) in a
channel, and to anything in a direct message. slack-bolt checks each HTTP request's
signature and timestamp and acknowledges an event at once; the command runs after
the acknowledgement, so a slow command never makes Slack retry. Slack's outages
and a bad token only ever cost the chat: the HTTP service does not depend on them.
Tokens go to Slack in headers and nowhere else, logs included.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
import structlog
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp, AsyncBoltContext, AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import Response

from rasbot.chat import texts
from rasbot.chat.dispatcher import Dispatcher
from rasbot.chat.registry import Caller
from rasbot.chat.render import table_lines
from rasbot.chat.replies import Image, Reply, Table, Text

if TYPE_CHECKING:
    from rasbot.services import Services

log = structlog.get_logger(__name__)

# Slack delivers an event again when it got no 200 within 3 seconds, and Socket
# Mode may too; the ids of this many recent events are remembered.
SEEN_EVENTS_MAX = 5000
# Socket Mode reconnects after a network failure, waiting between these bounds.
RETRY_MIN_SECONDS = 5.0
RETRY_MAX_SECONDS = 300.0
# Errors of apps.connections.open that only a new token can cure.
_TOKEN_REJECTED = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "account_inactive"}
)
# chat.postMessage keeps 40,000 characters of a text; leave room for a note.
_POST_MAX_CHARS = 39_000
_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)

_MENTION = re.compile(r"<@(?P<user>[A-Z0-9]+)(?:\|[^<>]*)?>")
_LINK = re.compile(r"<(?P<target>[^<>|]+)(?:\|(?P<label>[^<>]+))?>")
_BY_NAME = re.compile(rf"@?{texts.BOT_NAME}\b[:,]?", re.IGNORECASE)


@dataclass(frozen=True)
class Message:
    """A command for the bot: who sent it, where, and its text without the address."""

    user: str
    channel: str
    text: str
    direct: bool
    thread_ts: str | None = None


class SlackBot:
    """The bolt app, its HTTP handler and its Socket Mode connection."""

    def __init__(self, services: Services, dispatcher: Dispatcher | None = None):
        settings = services.settings
        self._settings = settings
        self._dispatcher = dispatcher or Dispatcher(services)
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.http_enabled = settings.slack_signing_secret is not None
        self.socket_mode = settings.slack_app_token is not None
        self.app = _bolt_app(services)
        self.app.middleware(self._once)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.error(self._on_error)
        self._http = AsyncSlackRequestHandler(self.app)
        log.info(
            "slack.ready", events_api=self.http_enabled, socket_mode=self.socket_mode
        )

    async def handle_http(self, request: Request) -> Response:
        """Answer a POST of the Events API; bolt checks signature and timestamp."""
        return await self._http.handle(request)

    # Incoming events

    async def _once(
        self,
        req: AsyncBoltRequest,
        body: dict[str, Any],
        # bolt injects arguments by name: this one has to shadow the builtin.
        next: Callable[[], Awaitable[None]],
    ) -> BoltResponse | None:
        """Acknowledge a retried event without running its command again."""
        event_id = body.get("event_id")
        # A retry after a timeout means the first delivery reached a process (this
        # or another worker) that is still answering it.
        reason = _header(req, "x-slack-retry-reason")
        if isinstance(event_id, str) and (
            self._seen_before(event_id) or reason == "http_timeout"
        ):
            log.info("slack.retry_skipped", event_id=event_id, reason=reason)
            return BoltResponse(status=200, body="")
        await next()
        return None

    def _seen_before(self, event_id: str) -> bool:
        # TODO: keep the ids in the database once several hosts take Slack events.
        if event_id in self._seen:
            return True
        self._seen[event_id] = None
        if len(self._seen) > SEEN_EVENTS_MAX:
            self._seen.popitem(last=False)
        return False

    async def _on_mention(
        self, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """`@rasbot releases` in a channel."""
        if _from_a_bot(event, context.bot_user_id):
            return
        text = _without_address(event.get("text") or "", context.bot_user_id)
        await self._answer(_message(event, text), client)

    async def _on_message(
        self, event: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
    ) -> None:
        """Anything in a direct message; `rasbot releases` in a channel."""
        if _from_a_bot(event, context.bot_user_id):
            return
        raw = event.get("text") or ""
        text: str | None
        if event.get("channel_type") == "im":
            text = _without_address(raw, context.bot_user_id)
        elif _mentions(raw, context.bot_user_id):
            return  # the app_mention event of the same message answers it
        else:
            text = _addressed_by_name(_incoming(raw))
        if text is not None:
            await self._answer(_message(event, text), client)

    async def _on_error(self, error: Exception) -> None:
        if isinstance(error, _NETWORK_ERRORS):
            # Slack is out of reach (auth.test at the first event): not our bug.
            log.warning("slack.unreachable", error=_why(error))
            return
        log.error("slack.listener_failed", exc_info=error)

    # Answers

    async def _answer(self, message: Message, client: AsyncWebClient) -> None:
        admin = message.user in self._settings.admin_ids
        caller = Caller(f"slack:{message.user}", is_admin=admin)
        reply = await self._dispatcher.run(message.text, caller)
        try:
            await self._post(reply, message, client)
        except (SlackApiError, *_NETWORK_ERRORS) as exc:
            log.warning("slack.post_failed", channel=message.channel, error=_why(exc))

    async def _post(
        self, reply: Reply, message: Message, client: AsyncWebClient
    ) -> None:
        text = slack_text(reply)
        images = [part for part in reply.parts if isinstance(part, Image)]
        if message.direct or not self._too_long(text):
            await _send(client, message.channel, text, images, message.thread_ts)
            return
        try:
            opened = await client.conversations_open(users=message.user)
            direct = opened["channel"]["id"]
        except SlackApiError as exc:
            # Without the im:write scope, a shortened answer beats none.
            log.warning("slack.dm_failed", error=_why(exc))
            short = self._shortened(text)
            await _send(client, message.channel, short, images, message.thread_ts)
            return
        await _send(client, direct, text, images, None)
        note = texts.SLACK_MOVED_TO_DM.format(user=message.user)
        await _send(client, message.channel, note, [], message.thread_ts)

    async def post_alert(self, channel: str, reply: Reply) -> None:
        """Post ``reply`` to the alert ``channel``; Slack's trouble is only logged."""
        images = [part for part in reply.parts if isinstance(part, Image)]
        try:
            await _send(self.app.client, channel, slack_text(reply), images, None)
        except (SlackApiError, *_NETWORK_ERRORS) as exc:
            log.warning("slack.alert_failed", channel=channel, error=_why(exc))

    def _too_long(self, text: str) -> bool:
        settings = self._settings
        return (
            text.count("\n") + 1 > settings.slack_max_lines
            or len(text) > settings.slack_max_chars
        )

    def _shortened(self, text: str) -> str:
        lines = text.splitlines()
        kept = lines[: self._settings.slack_max_lines]
        if sum(line.startswith("```") for line in kept) % 2:
            kept.append("```")  # close the code block the cut opened
        more = len(lines) - self._settings.slack_max_lines
        return "\n".join([*kept, texts.SLACK_TRUNCATED.format(more=more)])

    # Socket Mode

    async def run_socket_mode(self) -> None:
        """Stay connected over Socket Mode; give up only when the token is refused."""
        token = self._settings.slack_app_token
        assert token is not None, "Socket Mode needs RASBOT_SLACK_APP_TOKEN"
        delay = RETRY_MIN_SECONDS
        while True:
            usable = await self._app_token_usable(token.get_secret_value())
            if usable is None:
                return
            if usable:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
        await self._stay_connected(token.get_secret_value())

    async def _app_token_usable(self, token: str) -> bool | None:
        """True if Slack takes the app token, False to retry, None if it never will.

        slack_sdk retries a refused token every few seconds forever, each time with
        a traceback; asking once first keeps a bad setting to one log line.
        """
        try:
            await self.app.client.apps_connections_open(app_token=token)
        except SlackApiError as exc:
            if exc.response.get("error") in _TOKEN_REJECTED:
                log.error("slack.app_token_rejected", error=_why(exc))
                return None
            log.warning("slack.socket_mode_unavailable", error=_why(exc))
            return False
        except _NETWORK_ERRORS as exc:
            log.warning("slack.socket_mode_unavailable", error=_why(exc))
            return False
        return True

    async def _stay_connected(self, token: str) -> None:
        handler = AsyncSocketModeHandler(self.app, token)
        try:
            await handler.connect_async()  # type: ignore[no-untyped-call]
            log.info("slack.socket_mode_connected")
            # slack_sdk reconnects by itself from here on.
            await asyncio.Event().wait()
        finally:
            await handler.close_async()  # type: ignore[no-untyped-call]


def _bolt_app(services: Services) -> AsyncApp:
    settings = services.settings
    bot_token = settings.slack_bot_token
    secret = settings.slack_signing_secret
    client = AsyncWebClient(
        token=bot_token.get_secret_value() if bot_token else None,
        base_url=_with_slash(settings.slack_api_url),
    )
    _quiet_libraries()
    # Every value is passed in: given None, bolt would read SLACK_* variables.
    # The bot token is checked lazily (auth.test at the first event), so a Slack
    # outage at start-up cannot stop the server.
    return AsyncApp(
        client=client,
        signing_secret=secret.get_secret_value() if secret else "",
        request_verification_enabled=secret is not None,
        process_before_response=False,
        name="rasbot",
    )


def _quiet_libraries() -> None:
    # At DEBUG, slack_sdk logs request bodies (an app token among them) and the
    # Socket Mode URL; rasbot's own debug logging must not turn that on.
    for name in ("slack_sdk", "slack_bolt"):
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)


async def _send(
    client: AsyncWebClient,
    channel: str,
    text: str,
    images: list[Image],
    thread_ts: str | None,
) -> None:
    if text:
        clipped = text[:_POST_MAX_CHARS]
        await client.chat_postMessage(
            channel=channel, text=clipped, thread_ts=thread_ts
        )
    for image in images:
        await client.files_upload_v2(
            channel=channel,
            content=image.png,
            filename=image.filename,
            title=image.title,
            thread_ts=thread_ts,
        )


def slack_text(reply: Reply) -> str:
    """A reply as Slack mrkdwn: paragraphs, and tables in code blocks."""
    blocks: list[str] = []
    for part in reply.parts:
        if isinstance(part, Text):
            blocks.append(_escape(part.text))
        elif isinstance(part, Table):
            lines = "\n".join(table_lines(part))
            blocks.append(f"```\n{_escape(lines)}\n```")
    return "\n\n".join(blocks)


def _escape(text: str) -> str:
    # Slack reads <...> as links and mentions, and &...; as entities.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _incoming(text: str) -> str:
    """Slack's markup undone: links to their labels, entities to characters."""
    text = _LINK.sub(lambda m: m["label"] or m["target"], text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _mentions(text: str, bot_user_id: str | None) -> bool:
    return bot_user_id is not None and any(
        m["user"] == bot_user_id for m in _MENTION.finditer(text)
    )


def _without_address(text: str, bot_user_id: str | None) -> str:
    """The command in `<@BOT> releases`, `rasbot: releases` or `releases`."""
    text = text.strip()
    first = _MENTION.match(text)
    if first is not None and first["user"] == bot_user_id:
        text = text[first.end() :]
    text = _incoming(text).strip()
    rest = _addressed_by_name(text)
    return text if rest is None else rest


def _addressed_by_name(text: str) -> str | None:
    """The rest of `rasbot releases` or `rasbot, releases`; None if not addressed."""
    match = _BY_NAME.match(text.strip())
    if match is None:
        return None
    return text.strip()[match.end() :].strip()


def _from_a_bot(event: dict[str, Any], bot_user_id: str | None) -> bool:
    # Edits, joins and other subtypes are not commands; bots, this one included,
    # are never answered, so two bots cannot talk to each other forever.
    return (
        bool(event.get("bot_id"))
        or event.get("subtype") is not None
        or event.get("user") is None
        or event.get("user") == bot_user_id
    )


def _message(event: dict[str, Any], text: str) -> Message:
    return Message(
        user=str(event.get("user")),
        channel=str(event.get("channel")),
        text=text,
        direct=event.get("channel_type") == "im",
        thread_ts=event.get("thread_ts"),
    )


def _header(req: AsyncBoltRequest, name: str) -> str | None:
    values = req.headers.get(name)
    return values[0] if values else None


def _why(exc: Exception) -> str:
    """A Slack error's code, or the exception's type: never a request or a token."""
    if isinstance(exc, SlackApiError):
        return str(exc.response.get("error") or "slack_error")
    return type(exc).__name__


def _with_slash(url: str) -> str:
    # slack_sdk appends the method name to the base URL as it is.
    return url if url.endswith("/") else url + "/"
