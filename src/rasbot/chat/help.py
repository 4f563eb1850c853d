"""`help [query]`: generated from the registered commands."""

from __future__ import annotations

from rasbot.chat import texts
from rasbot.chat.registry import Command, Context, Family
from rasbot.chat.replies import Reply, table

family = Family("help")


@family.command(
    "help",
    args=r"(?P<query>.*)",
    usage="help [query]",
    synonyms=("commands",),
    help="The commands, or the ones about query.",
)
async def show_help(ctx: Context) -> Reply:
    """All commands in a table; one command in detail when the query names it."""
    query = " ".join(ctx.arg("query").lower().split())
    commands = ctx.registry.commands
    # `help whitelist` lists the whitelist commands, although `whitelist` alone
    # is a synonym of `whitelist show`: only a command's own name picks it.
    named = [c for c in commands if query == c.name]
    if named:
        return _details(named[0])

    matching = [c for c in commands if _about(c, query)]
    if not matching:
        return Reply.error(texts.HELP_NOTHING.format(query=query))
    if len(matching) == 1:
        return _details(matching[0])
    rows = [
        (c.usage, c.help + (texts.ADMINS_ONLY if c.changes else "")) for c in matching
    ]
    return Reply.say(texts.HELP_INTRO, table(texts.HELP_COLUMNS, rows))


def _about(command: Command, query: str) -> bool:
    haystack = " ".join((*command.verbs, command.usage, command.help)).lower()
    return query in haystack


def _details(command: Command) -> Reply:
    lines = [f"`{command.usage}`: {command.help}"]
    if command.synonyms:
        also = ", ".join(f"`{s}`" for s in command.synonyms)
        lines.append(texts.HELP_SYNONYMS.format(synonyms=also))
    if command.changes:
        lines.append(texts.HELP_ADMINS)
    return Reply.say("\n".join(lines))
