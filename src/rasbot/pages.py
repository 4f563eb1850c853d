"""The Jinja2 environment of rasbot's HTML pages (the dashboards)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2 import Environment


def environment() -> Environment:
    """An environment for the package's templates, escaping every value.

    Jinja2 is imported here, at the first page asked for: a server that nobody
    looks at does without it.
    """
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(
        loader=PackageLoader("rasbot", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
