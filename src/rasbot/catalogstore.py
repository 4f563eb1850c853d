"""The last good listing in the database, and its bookkeeping.

One row of ``catalog_state`` holds the revision, the digest of what is served and
when it was fetched and changed; the listing itself is in ``catalog_listing`` as
zlib-compressed JSON, so that a sync that finds nothing changed updates only the
small row. Every process serving the same database follows the revision.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from rasbot import db, jsonarray
from rasbot.clock import as_utc
from rasbot.github import Listing, Page, SourceError, compact_json, releases_of

log = structlog.get_logger(__name__)

_STATE_NAME = "main"


@dataclass(frozen=True)
class StoredCatalog:
    """The catalog as persisted: the raw listing and its bookkeeping."""

    revision: int
    digest: str
    source: str
    pages: tuple[Page, ...]
    fetched_at: datetime
    changed_at: datetime

    def releases(self) -> Iterator[dict[str, Any]]:
        """Every release of the stored pages, decoded a page at a time."""
        return releases_of(self.pages)


class CatalogStore:
    """The last good listing in the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self) -> StoredCatalog | None:
        """The stored listing, or None when there is none yet."""
        table, listing = db.catalog_state, db.catalog_listing
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(sa.select(table).where(table.c.name == _STATE_NAME))
            ).first()
            pages: bytes | None = await conn.scalar(
                sa.select(listing.c.pages).where(listing.c.name == _STATE_NAME)
            )
        if row is None or pages is None:
            return None
        return StoredCatalog(
            revision=row.revision,
            digest=row.digest,
            source=row.source,
            pages=_pages_from_blob(pages),
            fetched_at=as_utc(row.fetched_at),
            changed_at=as_utc(row.changed_at),
        )

    async def size_chars(self) -> int | None:
        """The length of the stored listing's text; None when there is none yet."""
        return await self._number(db.catalog_listing.c.chars)

    async def _number(self, column: sa.Column[int]) -> int | None:
        async with self._engine.connect() as conn:
            found: int | None = await conn.scalar(
                sa.select(column).where(column.table.c.name == _STATE_NAME)
            )
        return found

    @property
    def database_url(self) -> str | None:
        """The URL another process can reach this store at; None for memory."""
        url = self._engine.url
        in_memory = url.database in (None, "", ":memory:")
        if url.get_backend_name() == "sqlite" and in_memory:
            return None
        return url.render_as_string(hide_password=False)

    async def revision(self) -> int | None:
        """The stored revision: a cheap check whether another process synced."""
        return await self._number(db.catalog_state.c.revision)

    async def touch(self) -> StoredCatalog:
        """Note a sync that found nothing changed; the stored pages stay as they are."""
        now = datetime.now(UTC)
        table = db.catalog_state
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(table)
                .where(table.c.name == _STATE_NAME)
                .values(fetched_at=now)
            )
            row = (
                await conn.execute(
                    sa.select(
                        table.c.revision,
                        table.c.digest,
                        table.c.source,
                        table.c.changed_at,
                    ).where(table.c.name == _STATE_NAME)
                )
            ).first()
        if row is None:
            raise SourceError("the stored catalog is gone; the next sync lists all")
        return StoredCatalog(
            row.revision, row.digest, row.source, (), now, as_utc(row.changed_at)
        )

    async def save(self, listing: Listing, source: str) -> StoredCatalog:
        """Store ``listing``; the revision goes up when its releases changed."""
        try:
            return await self._save(listing, source)
        except IntegrityError:
            # Processes started together on an empty database each store a first
            # listing; the one that writes second finds the other's row now.
            log.info("catalog.stored_meanwhile")
            return await self._save(listing, source)

    async def _save(self, listing: Listing, source: str) -> StoredCatalog:
        now = datetime.now(UTC)
        table = db.catalog_state
        digest = listing.digest
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(table.c.revision, table.c.digest, table.c.changed_at)
                    .where(table.c.name == _STATE_NAME)
                    .with_for_update()
                )
            ).first()
            await self._save_pages(conn, *_pages_to_blob(listing.pages))
            values: dict[str, Any] = {
                "digest": digest,
                "source": source,
                "fetched_at": now,
            }
            if row is None:
                revision, changed_at = 1, now
                await conn.execute(
                    sa.insert(table).values(
                        name=_STATE_NAME, revision=1, changed_at=now, **values
                    )
                )
            else:
                same = row.digest == digest
                revision = row.revision if same else row.revision + 1
                changed_at = as_utc(row.changed_at) if same else now
                await conn.execute(
                    sa.update(table)
                    .where(table.c.name == _STATE_NAME)
                    .values(revision=revision, changed_at=changed_at, **values)
                )
        return StoredCatalog(revision, digest, source, listing.pages, now, changed_at)

    @staticmethod
    async def _save_pages(conn: AsyncConnection, chars: int, pages: bytes) -> None:
        # Replaced rather than updated: the same statements on every database.
        table = db.catalog_listing
        await conn.execute(sa.delete(table).where(table.c.name == _STATE_NAME))
        await conn.execute(
            sa.insert(table).values(name=_STATE_NAME, chars=chars, pages=pages)
        )


def _pages_to_blob(pages: Sequence[Page]) -> tuple[int, bytes]:
    """The pages as zlib-compressed JSON, and the length of that JSON.

    Written a page at a time: the JSON text of thousands of releases is never
    held whole, and what is stored is a sixth of its size.
    """
    compressor = zlib.compressobj()
    parts: list[bytes] = []
    chars = 0

    def write(text: str) -> None:
        nonlocal chars
        chars += len(text)
        parts.append(compressor.compress(text.encode()))

    write("[")
    for number, page in enumerate(pages):
        head = {"url": page.url, "etag": page.etag, "next_url": page.next_url}
        write(("," if number else "") + compact_json(head)[:-1] + ',"releases":')
        write(page.releases_json())
        write("}")
    write("]")
    parts.append(compressor.flush())
    return chars, b"".join(parts)


def _pages_from_blob(blob: bytes) -> tuple[Page, ...]:
    # A page at a time: the stored listing decoded whole is many times its text.
    try:
        return tuple(
            Page.holding(
                item["url"], item["releases"], item.get("etag"), item.get("next_url")
            )
            for item in jsonarray.items(jsonarray.zlib_pieces(blob))
            if isinstance(item, dict)
        )
    except (zlib.error, ValueError, KeyError, TypeError) as exc:
        # Serving nothing from it beats not starting: the next sync lists all.
        log.error("catalog.stored_listing_unreadable", error=type(exc).__name__)
        return ()
