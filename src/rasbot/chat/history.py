"""`history [n | since 2h | search <text>]`: the audit log."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from rasbot.chat import texts
from rasbot.chat.audit import AuditEntry
from rasbot.chat.registry import Context, Family
from rasbot.chat.replies import Reply, table

family = Family("history")

DEFAULT_ENTRIES = 10
MAX_ENTRIES = 200
# A first sync lists every release; a table cell shows the start of it.
DETAIL_SHOWN_MAX = 100

_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_AGE = re.compile(r"(?P<amount>\d{1,5})\s*(?P<unit>[smhdw])", re.IGNORECASE)


@family.command(
    "history",
    args=r"(?:(?P<count>\d+)|since\s+(?P<since>.+)|search\s+(?P<text>.+))?",
    usage="history [n | since 2h | search <text>]",
    synonyms=("audit", "log"),
    help="Changes made through chat, the CLI and syncs, newest first.",
)
async def history(ctx: Context) -> Reply:
    """The newest entries, those within an age, or those mentioning a text."""
    audit = ctx.audit
    if ctx.arg("since"):
        age = parse_age(ctx.arg("since"))
        if age is None:
            return Reply.error(texts.BAD_AGE.format(age=ctx.arg("since")))
        entries = await audit.since(datetime.now(UTC) - age, MAX_ENTRIES)
        empty = texts.HISTORY_NONE_SINCE.format(age=ctx.arg("since"))
    elif ctx.arg("text"):
        entries = await audit.search(ctx.arg("text"), MAX_ENTRIES)
        empty = texts.HISTORY_NONE_MATCH.format(text=ctx.arg("text"))
    else:
        count = int(ctx.arg("count") or DEFAULT_ENTRIES)
        entries = await audit.recent(max(1, min(count, MAX_ENTRIES)))
        empty = texts.HISTORY_EMPTY
    return _entries(entries, empty)


def parse_age(text: str) -> timedelta | None:
    """`2h`, `30m`, `1 d`: a duration; None when it is not one."""
    match = _AGE.fullmatch(text.strip())
    if match is None:
        return None
    unit = _UNITS[match["unit"].lower()]
    return timedelta(**{unit: int(match["amount"])})


def _entries(entries: list[AuditEntry], empty: str) -> Reply:
    if not entries:
        return Reply.say(empty)
    rows = [(texts.when(e.at), e.actor, e.action, _clip(e.detail)) for e in entries]
    return Reply.say(table(texts.HISTORY_COLUMNS, rows))


def _clip(detail: str) -> str:
    if len(detail) <= DETAIL_SHOWN_MAX:
        return detail
    return detail[: DETAIL_SHOWN_MAX - 1] + "…"
