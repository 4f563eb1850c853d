"""Slack without the internet: signed Events API requests in, a Web API stand-in out.

The stand-in is a small HTTP server on 127.0.0.1 that answers the Web API methods
the bot uses and records every call, so a test can read what the bot said and to
whom. Events reach the application at /slack/events, signed as Slack signs them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from starlette.testclient import TestClient
from websockets.asyncio.server import ServerConnection, serve

from rasbot.chat import slack
from rasbot.chat.dispatcher import Dispatcher
from rasbot.chat.families import default_registry
from rasbot.chat.registry import Context, Family
from rasbot.chat.replies import Image, Reply
from tests.conftest import services

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-test-bot-token-0000"
APP_TOKEN = "xapp-test-app-token-0000"
ADMIN, VISITOR = "U123", "U999"
SERIAL = "00000000abcdef12"


@dataclass(frozen=True)
class Call:
    """One Web API call the stand-in received."""

    method: str
    args: dict[str, Any]
    authorization: str | None


class SlackStub:
    """Slack's Web API on 127.0.0.1, recording every call."""

    def __init__(
        self,
        *,
        app_token_error: str | None = None,
        bot_token_error: str | None = None,
        socket_url: str = "ws://127.0.0.1:9/",
    ) -> None:
        self.calls: list[Call] = []
        self.app_token_error = app_token_error
        self.bot_token_error = bot_token_error
        self.socket_url = socket_url
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_port}/api/"

    def __enter__(self) -> SlackStub:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def called(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def wait_for(self, method: str, n: int = 1, seconds: float = 10) -> list[Call]:
        """The calls of ``method`` once there are ``n``; fails after ``seconds``."""
        deadline = time.monotonic() + seconds
        while len(self.called(method)) < n:
            assert time.monotonic() < deadline, f"{method} was not called {n} times"
            time.sleep(0.02)
        return self.called(method)

    def posted(self) -> list[tuple[str, str]]:
        """(channel, text) of every chat.postMessage."""
        return [
            (c.args["channel"], c.args["text"]) for c in self.called("chat.postMessage")
        ]

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        answers: dict[str, Callable[[], dict[str, Any]]] = {
            "auth.test": lambda: (
                {"ok": False, "error": self.bot_token_error}
                if self.bot_token_error
                else {
                    "ok": True,
                    "user": "rasbot",
                    "user_id": "UBOT",
                    "bot_id": "BBOT",
                    "team_id": "T1",
                }
            ),
            "chat.postMessage": lambda: {
                "ok": True,
                "channel": args.get("channel"),
                "ts": f"{time.time():.6f}",
            },
            "conversations.open": lambda: {"ok": True, "channel": {"id": "D0DM"}},
            "files.getUploadURLExternal": lambda: {
                "ok": True,
                "upload_url": self.url.replace("/api/", "/upload/F0FILE"),
                "file_id": "F0FILE",
            },
            "files.completeUploadExternal": lambda: {
                "ok": True,
                "files": [{"id": "F0FILE"}],
            },
            "apps.connections.open": lambda: (
                {"ok": False, "error": self.app_token_error}
                if self.app_token_error
                else {"ok": True, "url": self.socket_url}
            ),
        }
        found = answers.get(method)
        return found() if found else {"ok": False, "error": "unknown_method"}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                method = url.path.rsplit("/", 1)[-1]
                args = _args(url.query, body, self.headers.get("Content-Type", ""))
                with stub._lock:
                    stub.calls.append(
                        Call(method, args, self.headers.get("Authorization"))
                    )
                if url.path.startswith("/upload/"):
                    self._send(b"OK", "text/plain")
                else:
                    reply = stub.answer(method, args)
                    self._send(json.dumps(reply).encode(), "application/json")

            def _send(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _args(query: str, body: bytes, content_type: str) -> dict[str, Any]:
    args: dict[str, Any] = dict(parse_qsl(query))
    if content_type.startswith("application/json"):
        args.update(json.loads(body or b"{}"))
    elif content_type.startswith("application/x-www-form-urlencoded"):
        args.update(parse_qsl(body.decode()))
    elif body:
        args["body"] = body
    return args


# Events, signed as Slack signs them

_event_ids = count(1)


def envelope(event: dict[str, Any], event_id: str | None = None) -> bytes:
    """An Events API callback carrying ``event``."""
    return json.dumps(
        {
            "token": "unused",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id or f"Ev{next(_event_ids):08d}",
            "event_time": int(time.time()),
            "event": {"ts": f"{time.time():.6f}", "team": "T1", **event},
        }
    ).encode()


def signed(
    body: bytes, secret: str = SECRET, at: float | None = None
) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    base = f"v0:{timestamp}:".encode() + body
    signature = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }


def mention(text: str, user: str = ADMIN, channel: str = "C0CHAN") -> dict[str, Any]:
    return {"type": "app_mention", "user": user, "text": text, "channel": channel}


def message(
    text: str, user: str = ADMIN, channel: str = "C0CHAN", channel_type: str = "channel"
) -> dict[str, Any]:
    return {
        "type": "message",
        "user": user,
        "text": text,
        "channel": channel,
        "channel_type": channel_type,
    }


def deliver(client: TestClient, event: dict[str, Any], **headers: str) -> int:
    body = envelope(event)
    response = client.post(
        "/slack/events", content=body, headers=signed(body) | headers
    )
    return response.status_code


@pytest.fixture
def stub() -> Iterator[SlackStub]:
    with SlackStub() as running:
        yield running


@pytest.fixture
def bot(make_client: Callable[..., TestClient], stub: SlackStub) -> TestClient:
    """The application answering Slack events through the stand-in."""
    return make_client(
        slack_signing_secret=SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_api_url=stub.url,
        admins=ADMIN,
    )


def settle(client: TestClient, stub: SlackStub) -> list[tuple[str, str]]:
    """Everything posted once a last marker command has been answered.

    Commands run after the acknowledgement; a marker sent last and answered shows
    that earlier events had their chance to answer too.
    """
    before = len(stub.called("chat.postMessage"))
    assert deliver(client, mention("<@UBOT> piversion 0002", channel="CMARK")) == 200
    stub.wait_for("chat.postMessage", before + 1)
    time.sleep(0.2)
    return [post for post in stub.posted() if post[0] != "CMARK"]


# The endpoint


def test_events_endpoint_is_off_without_a_signing_secret(client: TestClient) -> None:
    body = envelope(mention("<@UBOT> releases"))
    response = client.post("/slack/events", content=body, headers=signed(body))

    assert response.status_code == 404


def test_url_verification_is_answered(bot: TestClient) -> None:
    body = json.dumps({"type": "url_verification", "challenge": "abc123"}).encode()
    response = bot.post("/slack/events", content=body, headers=signed(body))

    assert response.status_code == 200
    assert "abc123" in response.text


def test_mention_is_answered_in_the_channel(bot: TestClient, stub: SlackStub) -> None:
    assert deliver(bot, mention("<@UBOT> piversion a020d3")) == 200

    (post,) = stub.wait_for("chat.postMessage")
    assert post.args["channel"] == "C0CHAN"
    assert "Raspberry Pi 3 Model B+" in post.args["text"]
    assert "```" in post.args["text"]  # the board table, in a code block
    assert post.authorization == f"Bearer {BOT_TOKEN}"


def test_bad_signature_is_401_and_not_run(bot: TestClient, stub: SlackStub) -> None:
    body = envelope(mention("<@UBOT> releases"))
    forged = signed(body, secret="not-the-secret")

    response = bot.post("/slack/events", content=body, headers=forged)

    assert response.status_code == 401
    assert settle(bot, stub) == []


def test_stale_timestamp_is_rejected(bot: TestClient, stub: SlackStub) -> None:
    body = envelope(mention("<@UBOT> releases"))
    replayed = signed(body, at=time.time() - 600)

    response = bot.post("/slack/events", content=body, headers=replayed)

    assert response.status_code == 401
    assert settle(bot, stub) == []


def test_body_changed_after_signing_is_401(bot: TestClient, stub: SlackStub) -> None:
    body = envelope(mention("<@UBOT> releases"))
    headers = signed(body)
    changed = body.replace(b"releases", b"refresh!")

    response = bot.post("/slack/events", content=changed, headers=headers)

    assert response.status_code == 401


# Retries and loops


def test_retried_event_is_not_executed_twice(bot: TestClient, stub: SlackStub) -> None:
    body = envelope(mention(f"<@UBOT> whitelist add bob {SERIAL}"))
    assert (
        bot.post("/slack/events", content=body, headers=signed(body)).status_code == 200
    )
    stub.wait_for("chat.postMessage")

    retry = signed(body) | {
        "X-Slack-Retry-Num": "1",
        "X-Slack-Retry-Reason": "http_error",
    }
    response = bot.post("/slack/events", content=body, headers=retry)

    assert response.status_code == 200
    posted = settle(bot, stub)
    assert len(posted) == 1
    assert "Whitelisted" in posted[0][1]


def test_timeout_retry_is_left_to_the_first_delivery(
    bot: TestClient, stub: SlackStub
) -> None:
    # Another worker may have received the first delivery and still be answering.
    event = mention(f"<@UBOT> whitelist add bob {SERIAL}")
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}

    assert deliver(bot, event, **retry) == 200

    assert settle(bot, stub) == []
    assert SERIAL not in services(bot).whitelist


def test_bot_messages_are_ignored(bot: TestClient, stub: SlackStub) -> None:
    own = message("rasbot releases", user="UBOT")
    other_bot = {**message("rasbot releases"), "bot_id": "B0OTHER"}
    edited = {**message("rasbot releases"), "subtype": "message_changed"}

    for event in (own, other_bot, edited):
        assert deliver(bot, event) == 200

    assert settle(bot, stub) == []


def test_bot_is_addressed_by_name_in_a_channel(
    bot: TestClient, stub: SlackStub
) -> None:
    assert deliver(bot, message("rasbot: piversion a020d3")) == 200
    assert deliver(bot, message("RasBot, piversion 0010")) == 200
    assert deliver(bot, message("good morning all, releases are out")) == 200
    # Also an app_mention event: it is answered once, for that event.
    assert deliver(bot, message("<@UBOT> piversion 000e")) == 200

    texts = [text for _, text in settle(bot, stub)]
    assert len(texts) == 2
    assert any("3 Model B+" in text for text in texts)
    assert any("1 Model B+" in text for text in texts)


def test_direct_message_needs_no_address(bot: TestClient, stub: SlackStub) -> None:
    event = message(f"whitelist add bob {SERIAL}", channel="D0DM", channel_type="im")

    assert deliver(bot, event) == 200

    (post,) = stub.wait_for("chat.postMessage")
    assert post.args["channel"] == "D0DM"
    assert SERIAL in services(bot).whitelist


# Who may change things


def test_non_admin_is_refused_and_nothing_changes(
    bot: TestClient, stub: SlackStub
) -> None:
    assert deliver(bot, mention(f"<@UBOT> whitelist add eve {SERIAL}", VISITOR)) == 200

    (post,) = stub.wait_for("chat.postMessage")
    assert post.args["text"].startswith("Sorry, `whitelist add`")
    assert SERIAL not in services(bot).whitelist


def test_bad_arguments_get_the_usage(bot: TestClient, stub: SlackStub) -> None:
    assert deliver(bot, mention("<@UBOT> whitelist add bob")) == 200

    (post,) = stub.wait_for("chat.postMessage")
    assert "`whitelist add &lt;name&gt; &lt;serial&gt;`" in post.args["text"]


# Long answers, images


def test_long_answer_goes_to_a_direct_message(bot: TestClient, stub: SlackStub) -> None:
    assert deliver(bot, mention("<@UBOT> releases", channel="C0CHAN")) == 200

    (opened,) = stub.wait_for("conversations.open")
    stub.wait_for("chat.postMessage", 2)
    posts = dict(stub.posted())
    assert opened.args["users"] == ADMIN
    assert "stable (5)" in posts["D0DM"]
    assert (
        posts["C0CHAN"]
        == f"<@{ADMIN}> the answer is long, so I sent it to you directly."
    )


def test_long_answer_limit_is_a_setting(
    make_client: Callable[..., TestClient], stub: SlackStub
) -> None:
    roomy = make_client(
        slack_signing_secret=SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_api_url=stub.url,
        slack_max_lines=100,
    )

    assert deliver(roomy, mention("<@UBOT> releases")) == 200

    (post,) = stub.wait_for("chat.postMessage")
    assert post.args["channel"] == "C0CHAN"
    assert stub.called("conversations.open") == []


def chart_registry(svc: Any) -> Dispatcher:
    family = Family("charts")

    @family.command("test picture", help="A picture, for this test.")
    async def chart(ctx: Context) -> Reply:
        return Reply.say("Here:", Image("Updates", b"\x89PNG fake", "updates.png"))

    return Dispatcher(svc, default_registry(family))


def test_images_are_uploaded_as_files(bot: TestClient, stub: SlackStub) -> None:
    svc = services(bot)
    svc.slack = slack.SlackBot(svc, chart_registry(svc))

    assert deliver(bot, mention("<@UBOT> test picture")) == 200

    (completed,) = stub.wait_for("files.completeUploadExternal")
    (upload,) = stub.called("F0FILE")
    assert upload.args["body"] == b"\x89PNG fake"
    assert completed.args["channel_id"] == "C0CHAN"
    assert stub.posted()[0] == ("C0CHAN", "Here:")


# Outages and tokens


def test_slack_down_does_not_touch_the_http_service(
    make_client: Callable[..., TestClient],
) -> None:
    down = "http://127.0.0.1:9/api/"  # the discard port: nothing listens
    client = make_client(
        slack_signing_secret=SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_app_token=APP_TOKEN,
        slack_api_url=down,
    )

    # auth.test cannot be reached: a 500 makes Slack deliver the event again later.
    assert deliver(client, mention("<@UBOT> releases")) == 500
    assert client.get("/").text == "pong"
    assert client.get("/update?version=1.0.3").status_code == 200


def test_rejected_app_token_is_logged_once_without_any_token(
    make_client: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    logged: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(slack, "log", _Recorder(logged))
    caplog.set_level("DEBUG")

    with SlackStub(app_token_error="invalid_auth") as refusing:
        client = make_client(
            slack_bot_token=BOT_TOKEN,
            slack_app_token=APP_TOKEN,
            slack_api_url=refusing.url,
        )
        (call,) = refusing.wait_for("apps.connections.open")
        time.sleep(0.2)

        assert client.get("/").text == "pong"
        assert call.authorization == f"Bearer {APP_TOKEN}"
        assert logged == [
            ("slack.ready", {"events_api": False, "socket_mode": True}),
            ("slack.app_token_rejected", {"error": "invalid_auth"}),
        ]
        everything = repr(logged) + caplog.text
        assert BOT_TOKEN not in everything
        assert APP_TOKEN not in everything


def test_rejected_bot_token_answers_nothing_and_logs_no_token(
    make_client: Callable[..., TestClient],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    with SlackStub(bot_token_error="invalid_auth") as refusing:
        client = make_client(
            slack_signing_secret=SECRET,
            slack_bot_token=BOT_TOKEN,
            slack_api_url=refusing.url,
        )

        assert deliver(client, mention("<@UBOT> releases")) == 200

        assert len(refusing.called("auth.test")) == 1
        assert refusing.called("chat.postMessage") == []
        assert client.get("/").text == "pong"
        assert BOT_TOKEN not in caplog.text


class _Recorder:
    def __init__(self, into: list[tuple[str, dict[str, Any]]]) -> None:
        self._into = into

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda event, **fields: self._into.append((event, fields))


# Text in and out


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("<@UBOT> releases", "releases"),
        ("<@UBOT|rasbot>   whitelist show", "whitelist show"),
        ("rasbot: help refresh", "help refresh"),
        (
            "whitelist add A &amp; B 00000000abcdef12",
            "whitelist add A & B 00000000abcdef12",
        ),
        ("downloads <http://1.7.1|1.7.1>", "downloads 1.7.1"),
    ],
)
def test_incoming_text_loses_its_address_and_markup(text: str, command: str) -> None:
    assert slack._without_address(text, "UBOT") == command


def test_outgoing_text_is_escaped() -> None:
    reply = Reply.say("a <b> & c")

    assert slack.slack_text(reply) == "a &lt;b&gt; &amp; c"


# Socket Mode


class SocketModeStub:
    """Slack's Socket Mode endpoint on 127.0.0.1: says hello, relays envelopes."""

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._connected = threading.Event()
        self._socket: ServerConnection | None = None

    def __enter__(self) -> SocketModeStub:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server = self._call(self._open())
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}/"
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        self._call(self._server.wait_closed())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _call(self, job: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(job, self._loop).result(10)

    async def _open(self) -> Any:
        return await serve(self._session, "127.0.0.1", 0)

    async def _session(self, socket: ServerConnection) -> None:
        self._socket = socket
        await socket.send(json.dumps({"type": "hello", "num_connections": 1}))
        self._connected.set()
        async for text in socket:
            self.acks.append(json.loads(text))

    def send_event(self, event: dict[str, Any], envelope_id: str) -> None:
        """Send an events_api envelope, as Slack does over the socket."""
        assert self._connected.wait(10), "the bot did not connect"
        assert self._socket is not None
        payload = json.loads(envelope(event))
        message = {
            "envelope_id": envelope_id,
            "type": "events_api",
            "accepts_response_payload": False,
            "retry_attempt": 0,
            "payload": payload,
        }
        self._call(self._socket.send(json.dumps(message)))


def test_socket_mode_receives_events_and_answers(
    make_client: Callable[..., TestClient],
) -> None:
    with SocketModeStub() as socket, SlackStub(socket_url=socket.url) as stub:
        make_client(
            slack_bot_token=BOT_TOKEN,
            slack_app_token=APP_TOKEN,
            slack_api_url=stub.url,
            admins=ADMIN,
        )

        socket.send_event(mention("<@UBOT> piversion a020d3"), "env-1")

        (post,) = stub.wait_for("chat.postMessage")
        assert "3 Model B+" in post.args["text"]
        assert {"envelope_id": "env-1"}.items() <= socket.acks[0].items()
        assert all(
            c.authorization == f"Bearer {APP_TOKEN}"
            for c in stub.called("apps.connections.open")
        )
