"""The chat commands in a terminal: `rasbot chat` and `rasbot chat -c "releases"`.

Whoever has a shell on the server can change its database anyway, so the terminal
caller is an admin; the audit log names the Unix user.
"""

from __future__ import annotations

import getpass
import sys
import tempfile
from typing import TYPE_CHECKING

import click

from rasbot.chat import texts
from rasbot.chat.dispatcher import Dispatcher
from rasbot.chat.registry import Caller
from rasbot.chat.render import plain_text
from rasbot.chat.replies import Image, Reply

if TYPE_CHECKING:
    from rasbot.services import Services

PROMPT = "rasbot> "


def terminal_caller() -> Caller:
    """The Unix user at the terminal, as an admin."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        # A container may run as a uid without a passwd entry or $USER.
        user = "unknown"
    return Caller(f"terminal:{user}", is_admin=True)


def render(reply: Reply) -> str:
    """A reply as terminal text; images are saved to files that are named."""
    return plain_text(reply, _save_image)


def _save_image(image: Image) -> str:
    with tempfile.NamedTemporaryFile(
        prefix="rasbot-", suffix=".png", delete=False
    ) as file:
        file.write(image.png)
    return texts.IMAGE_SAVED.format(title=image.title, path=file.name)


async def run_command(svc: Services, text: str) -> int:
    """Run one command: exit status 0 when it succeeded, 1 when it failed."""
    reply = await Dispatcher(svc).run(text, terminal_caller())
    click.echo(render(reply), err=not reply.ok)
    return 0 if reply.ok else 1


async def run_interactive(svc: Services) -> int:
    """Read commands line by line until end of input or `quit`."""
    dispatcher, caller = Dispatcher(svc), terminal_caller()
    interactive = sys.stdin.isatty()
    if interactive:
        click.echo(texts.TERMINAL_GREETING)
    while True:
        # Reading blocks the loop on purpose: nothing runs in the background here,
        # and Ctrl-C then stops the read at once instead of a thread's.
        line = _read_line(PROMPT if interactive else "")
        if line is None or line.strip().lower() in texts.TERMINAL_QUIT:
            return 0
        if line.strip():
            click.echo(render(await dispatcher.run(line, caller)))


def _read_line(prompt: str) -> str | None:
    # input() gives line editing when the readline module is loaded.
    try:
        return input(prompt)
    except (EOFError, KeyboardInterrupt):
        return None
