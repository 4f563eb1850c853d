"""Running a line of chat as a command for a caller: find, authorise, run, answer.

Whatever happens inside a command, the caller gets a short answer and the server
log gets the details: a command can fail, the chat adapter never does.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import structlog
from sqlalchemy.exc import SQLAlchemyError

from rasbot.chat import texts
from rasbot.chat.audit import AuditLog
from rasbot.chat.families import default_registry
from rasbot.chat.registry import BadArguments, Caller, Context, Found, Registry
from rasbot.chat.replies import Reply

if TYPE_CHECKING:
    from rasbot.services import Services

log = structlog.get_logger(__name__)

REFUSED_ACTION = "refused"
# An unknown command is quoted back at most this long.
_SHOWN_MAX = 60


class Dispatcher:
    """The commands of ``registry`` (by default every family) on ``services``."""

    def __init__(self, services: Services, registry: Registry | None = None) -> None:
        self.services = services
        self.registry = registry or default_registry()
        self.audit = AuditLog(services.engine)

    async def run(self, text: str, caller: Caller) -> Reply:
        """Answer one line of text sent by ``caller``."""
        line = " ".join(text.split())
        if not line:
            return Reply.error(texts.EMPTY_COMMAND)
        found = self.registry.find(line)
        if found is None:
            return self._unknown(line)
        if isinstance(found, BadArguments):
            return _usage(found)
        if found.command.changes and not caller.is_admin:
            return await self._refuse(found, line, caller)
        return await self._execute(found, caller)

    async def _execute(self, found: Found, caller: Caller) -> Reply:
        command = found.command
        context = Context(
            self.services, caller, command, found.args, self.registry, self.audit
        )
        try:
            reply = await command.handler(context)
        except SQLAlchemyError as exc:
            log.warning("chat.database_failed", command=command.name, exc_info=exc)
            return Reply.error(texts.DATABASE_DOWN.format(name=command.name))
        except Exception as exc:
            log.error("chat.command_failed", command=command.name, exc_info=exc)
            return Reply.error(texts.COMMAND_FAILED.format(name=command.name))
        log.info("chat.command", command=command.name, actor=caller.id, ok=reply.ok)
        return reply

    async def _refuse(self, found: Found, line: str, caller: Caller) -> Reply:
        # Logged twice on purpose: the server log for operators watching it, the
        # audit log for whoever asks `history` later.
        log.warning("chat.refused", command=found.command.name, actor=caller.id)
        await self.audit.record(caller.id, REFUSED_ACTION, line)
        return Reply.error(texts.REFUSED.format(name=found.command.name))

    def _unknown(self, line: str) -> Reply:
        shown = line if len(line) <= _SHOWN_MAX else line[: _SHOWN_MAX - 1] + "…"
        close = self._close_verbs(line.lower().split())
        if not close:
            return Reply.error(texts.UNKNOWN_COMMAND.format(text=shown))
        suggestions = " or ".join(f"`{verb}`" for verb in close)
        return Reply.error(
            texts.UNKNOWN_SUGGEST.format(text=shown, suggestions=suggestions)
        )

    def _close_verbs(self, words: list[str]) -> list[str]:
        """Verbs that look like a typo of the first one or two words."""
        verbs = [verb for c in self.registry.commands for verb in c.verbs]
        close: list[str] = []
        for length in (2, 1):
            head = " ".join(words[:length])
            close += difflib.get_close_matches(head, verbs, n=3, cutoff=0.75)
        return list(dict.fromkeys(close))[:3]


def _usage(bad: BadArguments) -> Reply:
    usages = "\n".join(f"`{c.usage}`" for c in bad.related)
    return Reply.error(
        texts.BAD_ARGUMENTS.format(name=bad.command.name) + "\n" + usages
    )
