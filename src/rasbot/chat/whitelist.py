"""`whitelist show|add|remove`: the serials entitled to beta releases."""

from __future__ import annotations

from rasbot.chat import texts
from rasbot.chat.registry import Context, Family
from rasbot.chat.replies import Reply, table
from rasbot.whitelist import WhitelistError, normalise_serial

family = Family("whitelist")

# The name may have spaces ("Ann Smith"); the serial is the last word.
_NAME_AND_SERIAL = r"(?P<name>.+?)\s+(?P<serial>\S+)"


@family.command(
    "whitelist show",
    synonyms=("whitelist", "whitelist list"),
    help="The devices that get beta releases.",
)
async def show(ctx: Context) -> Reply:
    """Every entry, by name."""
    entries = await ctx.services.whitelist.entries()
    if not entries:
        return Reply.say(texts.WHITELIST_EMPTY)
    rows = [(e.name, e.serial, e.added_by, texts.when(e.added_at)) for e in entries]
    title = texts.WHITELIST_TITLE.format(count=len(rows))
    return Reply.say(table(texts.WHITELIST_COLUMNS, rows, title))


@family.command(
    "whitelist add",
    args=_NAME_AND_SERIAL,
    usage="whitelist add <name> <serial>",
    changes=True,
    help="Give a device (serial: 16 hex digits) beta releases.",
)
async def add(ctx: Context) -> Reply:
    """Whitelist a serial under a name; the whitelist normalises the serial."""
    try:
        entry = await ctx.services.whitelist.add(
            ctx.arg("name"), ctx.arg("serial"), ctx.caller.id
        )
    except WhitelistError as exc:
        return Reply.error(texts.WHITELIST_FAILED.format(reason=exc))
    await ctx.record(f"{entry.name} {entry.serial}")
    return Reply.say(texts.WHITELIST_ADDED.format(name=entry.name, serial=entry.serial))


@family.command(
    "whitelist remove",
    args=_NAME_AND_SERIAL,
    usage="whitelist remove <name> <serial>",
    synonyms=("whitelist delete", "whitelist rm"),
    changes=True,
    help="Stop giving a device beta releases (the name must match).",
)
async def remove(ctx: Context) -> Reply:
    """Remove a serial; the name guards against a mistyped serial."""
    name = ctx.arg("name")
    try:
        await ctx.services.whitelist.remove(name, ctx.arg("serial"))
    except WhitelistError as exc:
        return Reply.error(texts.WHITELIST_FAILED.format(reason=exc))
    serial = normalise_serial(ctx.arg("serial")) or ctx.arg("serial")
    await ctx.record(f"{name} {serial}")
    return Reply.say(texts.WHITELIST_REMOVED.format(name=name, serial=serial))
