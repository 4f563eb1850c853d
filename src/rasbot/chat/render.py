"""Rendering replies as plain text: the terminal's form, and Slack's inside code."""

from __future__ import annotations

from collections.abc import Callable

from rasbot.chat import texts
from rasbot.chat.replies import Image, Reply, Table, Text

_GAP = "  "


def table_lines(table: Table) -> list[str]:
    """A table as aligned columns: title, headings, a rule, then the rows."""
    lines = [table.title] if table.title else []
    if not table.rows:
        return [*lines, texts.EMPTY_TABLE]
    widths = [
        max(len(cell) for cell in column)
        for column in zip(table.columns, *table.rows, strict=True)
    ]
    # A table of name-value pairs needs no headings.
    if any(table.columns):
        lines.append(_row(table.columns, widths))
        lines.append(_GAP.join("-" * width for width in widths))
    lines += [_row(row, widths) for row in table.rows]
    return lines


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    # The last cell is not padded: trailing spaces only wrap narrow windows.
    return _GAP.join(
        cell.ljust(width) for cell, width in zip(cells, widths, strict=True)
    ).rstrip()


def plain_text(reply: Reply, image: Callable[[Image], str]) -> str:
    """The whole reply as text; ``image`` says where an image went."""
    blocks: list[str] = []
    for part in reply.parts:
        if isinstance(part, Text):
            blocks.append(part.text)
        elif isinstance(part, Table):
            blocks.append("\n".join(table_lines(part)))
        else:
            blocks.append(image(part))
    return "\n\n".join(blocks)
