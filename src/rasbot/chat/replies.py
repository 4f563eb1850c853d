"""What a command answers: paragraphs, tables and images, not formatted text.

Each adapter renders a `Reply` its own way (aligned columns in a terminal, code
blocks and file uploads in Slack), so commands never deal with markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Text:
    """A paragraph; `backticks` mark commands and values, as in Slack and Markdown."""

    text: str


@dataclass(frozen=True)
class Table:
    """Rows of cells under column headings, with an optional title line."""

    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    title: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG image, such as a chart."""

    title: str
    png: bytes
    filename: str = "image.png"


Part = Text | Table | Image


@dataclass(frozen=True)
class Reply:
    """The answer to one command; ``ok`` is False when the command failed."""

    parts: tuple[Part, ...]
    ok: bool = True

    @classmethod
    def say(cls, *parts: str | Part) -> Reply:
        """A successful answer; strings become paragraphs."""
        return cls(tuple(_part(p) for p in parts))

    @classmethod
    def error(cls, *parts: str | Part) -> Reply:
        """A failed command's answer: what went wrong and what to do next."""
        return cls(tuple(_part(p) for p in parts), ok=False)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], title: str = ""
) -> Table:
    """A `Table` whose cells are written with ``str``."""
    cells = tuple(tuple(str(cell) for cell in row) for row in rows)
    return Table(tuple(columns), cells, title)


def _part(part: str | Part) -> Part:
    return Text(part) if isinstance(part, str) else part
