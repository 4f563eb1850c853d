"""UTC day and hour of a timestamp column, in SQL, on every database rasbot uses.

Each database truncates dates its own way, and PostgreSQL does it in the session's
time zone; these expressions give the same text everywhere, in UTC: `utc_day`
``YYYY-MM-DD`` and `utc_hour` ``YYYY-MM-DD HH``. Grouping by them lets the database
count per bucket instead of sending every row to Python.

SQLite and MySQL/MariaDB store rasbot's timestamps as UTC without a zone (rasbot
writes UTC), so their text is cut; PostgreSQL's are converted to UTC first.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["utc_day", "utc_hour"]


class _Bucket(FunctionElement[str]):
    type = sa.String()
    inherit_cache = True


# Lowercase, like the SQL functions they stand for (sa.func.count, ...).
class utc_day(_Bucket):
    """The UTC day of a timestamp: ``YYYY-MM-DD``."""

    name = "utc_day"
    inherit_cache = True


class utc_hour(_Bucket):
    """The UTC hour of a timestamp: ``YYYY-MM-DD HH``."""

    name = "utc_hour"
    inherit_cache = True


def _arg(element: _Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


# SQLite keeps timestamps as text `YYYY-MM-DD HH:MM:SS.ffffff`.
@compiles(utc_day)
def _sqlite_day(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({_arg(element, compiler, **kw)}, 1, 10)"


@compiles(utc_hour)
def _sqlite_hour(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"substr({_arg(element, compiler, **kw)}, 1, 13)"


# MySQL's DATE_FORMAT needs `%`, which the drivers' paramstyle would need doubled:
# casting to text avoids it.
@compiles(utc_day, "mysql")
@compiles(utc_day, "mariadb")
def _mysql_day(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"LEFT(CAST({_arg(element, compiler, **kw)} AS CHAR), 10)"


@compiles(utc_hour, "mysql")
@compiles(utc_hour, "mariadb")
def _mysql_hour(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"LEFT(CAST({_arg(element, compiler, **kw)} AS CHAR), 13)"


@compiles(utc_day, "postgresql")
def _postgres_day(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({_utc(element, compiler, **kw)}, 'YYYY-MM-DD')"


@compiles(utc_hour, "postgresql")
def _postgres_hour(element: utc_hour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"to_char({_utc(element, compiler, **kw)}, 'YYYY-MM-DD HH24')"


def _utc(element: _Bucket, compiler: SQLCompiler, **kw: Any) -> str:
    # Without it, PostgreSQL would cut days in the session's time zone.
    return f"({_arg(element, compiler, **kw)} AT TIME ZONE 'UTC')"
