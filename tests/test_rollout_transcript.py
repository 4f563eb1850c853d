"""A bad release from start to rollback, as the team sees it in Slack.

3,000 devices; 1.7.2 bricks the 3B+ (it never comes back after staging) and makes
the RPi2 crash. The watch halts both device types by itself, the team asks for the
status and rolls back. The channel's messages are checked, and written to
``test-artifacts/rollout-transcript.txt`` for people to read.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.conftest import services
from tests.rolloutfleet import CURRENT, NEW, Clock, Fleet, new_release, publish
from tests.test_chat_slack import (
    ADMIN,
    BOT_TOKEN,
    SECRET,
    SlackStub,
    deliver,
    mention,
)

ARTIFACT = Path(__file__).parent.parent / "test-artifacts" / "rollout-transcript.txt"
CHANNEL = "CRELEASES"


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub


class Story:
    """The fleet, Slack, and the transcript being written."""

    def __init__(self, fleet: Fleet, slack: SlackStub, clock: Clock) -> None:
        self.fleet, self.slack, self.clock = fleet, slack, clock
        self.lines: list[str] = []
        self.hours = 0.0

    def later(self, hours: float) -> None:
        self.clock.advance(hours=hours)
        self.hours += hours

    def note(self, text: str) -> None:
        self.lines.append(f"[t+{self.hours:g}h] {text}")

    def posted(self, since: int) -> list[str]:
        """Messages to the channel since message number ``since``, logged."""
        texts = [html.unescape(text) for _, text in self.slack.posted()[since:]]
        for text in texts:
            self.lines.append(f"[t+{self.hours:g}h] #releases rasbot:\n{text}\n")
        return texts

    def watch(self) -> list[str]:
        before = len(self.slack.posted())
        self.fleet.watch()
        return self.posted(before)

    def say(self, command: str) -> str:
        before = len(self.slack.posted())
        self.lines.append(f"[t+{self.hours:g}h] #releases ann: @rasbot {command}")
        event = mention(f"<@UBOT> {command}", user=ADMIN, channel=CHANNEL)
        assert deliver(self.fleet.client, event) == 200
        self.slack.wait_for("chat.postMessage", before + 1)
        return self.posted(before)[0]

    def round(self, **trouble: set[str]) -> Counter[str | None]:
        offers = Counter(self.fleet.round(**trouble).values())
        counts = ", ".join(f"{n} offered {v or 'nothing'}" for v, n in offers.items())
        self.note(f"every device asks /update: {counts}")
        return offers


def test_a_bad_release_halts_itself_and_is_rolled_back(
    make_client: Callable[..., TestClient],
    releases_file: Path,
    slack: SlackStub,
) -> None:
    client = make_client(
        slack_signing_secret=SECRET,
        slack_bot_token=BOT_TOKEN,
        slack_api_url=slack.url,
        slack_channel=CHANNEL,
        slack_max_lines=60,
        admins=ADMIN,
        rollout_check_seconds=3600,
    )
    clock = Clock()
    services(client).rollouts.clock = clock
    story = Story(Fleet.of(client, 3000), slack, clock)
    story.note("3000 devices on 1.7.1 (RPi, RPi2, RPi3bplus in turn); 1.7.2 published")
    publish(client, releases_file, new_release())

    (started,) = story.watch()
    story.round(broken={"RPi3bplus"}, crashing={"RPi2"})
    story.later(1)
    (crashing,) = story.watch()
    story.later(12)
    (missing,) = story.watch()
    status = story.say("rollout 1.7.2")
    rolled_back = story.say("rollback stable 1.7.1")
    offers = story.round()
    after = story.say("rollout 1.7.2")

    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text("\n".join(story.lines) + "\n")
    assert "started: 5% of devices from now" in started
    assert "halted for RPi2. RPi2: " in crashing
    assert "halted for RPi3bplus. RPi3bplus: " in missing
    assert "Halted for RPi2, RPi3bplus" in status
    assert "Devices on `1.7.2` (RPi2, RPi3bplus) are offered `1.7.1`" in rolled_back
    rpi2_on_new = offers[CURRENT]
    assert rpi2_on_new > 0 and offers[NEW] == 0
    assert "Devices on it are offered `1.7.1`." in after
    assert "Last change: rollback to 1.7.1 (slack:U123" in after
