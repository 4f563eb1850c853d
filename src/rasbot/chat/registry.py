"""Commands, the families that register them, and finding one from a line of text.

A command is named by one or more words (`whitelist add`), may have synonyms
(`update releases` for `refresh`), and takes arguments matched by a regular
expression whose named groups reach the handler. A module registers its commands
on its own `Family`; a `Registry` joins the families and finds the command a line
of text asks for. The help text is generated from these registrations.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rasbot.chat.audit import AuditLog
from rasbot.chat.replies import Reply

if TYPE_CHECKING:
    from rasbot.services import Services


@dataclass(frozen=True)
class Caller:
    """Who sent a command: ``id`` is the audit log's actor, e.g. ``slack:U123``."""

    id: str
    is_admin: bool


@dataclass(frozen=True)
class Context:
    """What a handler gets: the services, the caller and the parsed arguments."""

    services: Services
    caller: Caller
    command: Command
    args: Mapping[str, str]
    registry: Registry
    audit: AuditLog

    def arg(self, name: str) -> str:
        """The argument ``name``, stripped; empty when it was not given."""
        return (self.args.get(name) or "").strip()

    async def record(self, detail: str) -> None:
        """Write the change this command made to the audit log."""
        await self.audit.record(self.caller.id, self.command.name, detail)


Handler = Callable[[Context], Awaitable[Reply]]


@dataclass(frozen=True)
class Command:
    """One registered command."""

    name: str
    help: str
    handler: Handler
    args: re.Pattern[str]
    usage: str
    synonyms: tuple[str, ...] = ()
    changes: bool = False
    family: str = ""

    @property
    def verbs(self) -> tuple[str, ...]:
        """The name and the synonyms, each a few lowercase words."""
        return (self.name, *self.synonyms)


class Family:
    """The commands of one module, registered by decorating their handlers."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.commands: list[Command] = []

    def command(
        self,
        name: str,
        *,
        help: str,
        args: str = "",
        usage: str | None = None,
        synonyms: Iterable[str] = (),
        changes: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Register the decorated handler as ``name``.

        ``args`` is a regular expression the rest of the line must match in full
        (case-insensitively); ``changes`` makes the command admin-only and audited.
        """

        def register(handler: Handler) -> Handler:
            self.commands.append(
                Command(
                    name=_words(name),
                    help=help,
                    handler=handler,
                    args=re.compile(args, re.IGNORECASE),
                    usage=usage or name,
                    synonyms=tuple(_words(s) for s in synonyms),
                    changes=changes,
                    family=self.name,
                )
            )
            return handler

        return register


@dataclass(frozen=True)
class Found:
    """A command and the arguments it was given."""

    command: Command
    args: dict[str, str]


@dataclass(frozen=True)
class BadArguments:
    """A known command with arguments it does not take; ``related`` share its word."""

    command: Command
    related: tuple[Command, ...]


class Registry:
    """Every command of the given families, found by their words."""

    def __init__(self, families: Iterable[Family]) -> None:
        self.families = tuple(families)
        self._verbs: dict[tuple[str, ...], Command] = {}
        for command in self.commands:
            for verb in command.verbs:
                self._add(tuple(verb.split()), command)

    def _add(self, words: tuple[str, ...], command: Command) -> None:
        # Two commands answering to the same words would make one unreachable.
        clash = self._verbs.get(words)
        if clash is not None:
            raise ValueError(
                f"{' '.join(words)!r} is both {clash.name} and {command.name}"
            )
        self._verbs[words] = command

    @property
    def commands(self) -> list[Command]:
        """Every command, family by family, in registration order."""
        return [command for family in self.families for command in family.commands]

    def find(self, text: str) -> Found | BadArguments | None:
        """The command ``text`` asks for; the longest matching verb wins."""
        words = text.split()
        for length in range(min(len(words), _longest(self._verbs)), 0, -1):
            command = self._verbs.get(tuple(w.lower() for w in words[:length]))
            if command is not None:
                return _with_args(command, " ".join(words[length:]), self)
        return None

    def related(self, command: Command) -> tuple[Command, ...]:
        """Commands whose name starts with the same word (`whitelist ...`)."""
        first = command.name.split()[0]
        return tuple(c for c in self.commands if c.name.split()[0] == first)


def _with_args(command: Command, rest: str, registry: Registry) -> Found | BadArguments:
    match = command.args.fullmatch(rest)
    if match is None:
        return BadArguments(command, registry.related(command))
    args = {key: value for key, value in match.groupdict().items() if value is not None}
    return Found(command, args)


def _longest(verbs: Mapping[tuple[str, ...], Command]) -> int:
    return max((len(words) for words in verbs), default=0)


def _words(text: str) -> str:
    return " ".join(text.lower().split())
