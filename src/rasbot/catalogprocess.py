"""Parsing a large stored listing in a short-lived child process.

Parsing thousands of releases (the stored JSON, then a YAML body each) needs
several times the finished catalog's memory for a moment. In the server process
that moment would set its peak, and much of it would stay resident (freed memory
is fragmented, and each thread's malloc arena keeps its own). A child process
loads the stored listing, parses every release and hands back only the result,
pickled; it exits and takes its peak with it. Any trouble in the child leaves the
caller to parse in-process, as it does for small listings.

    python -m rasbot.catalogprocess RESULT    # a job pickled on stdin
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import structlog

from rasbot.catalog import Parsed, parse_releases

if TYPE_CHECKING:
    from rasbot.catalogstore import StoredCatalog

log = structlog.get_logger(__name__)

#: What the child hands back: the stored bookkeeping (pages without releases) and
#: every stored release parsed (rasbot.catalog.assemble makes the catalog of them);
#: None when nothing is stored.
Built = tuple["StoredCatalog", list[Parsed]] | None

# Releases per pickled chunk of the result.
_CHUNK_RELEASES = 500


@dataclass(frozen=True)
class Job:
    """What the child needs to load and parse the stored listing."""

    database_url: str
    devices: tuple[str, ...]
    serve_beta_drafts: bool
    in_beta_dir: Callable[[str], bool] | None


async def build(job: Job) -> tuple[bool, Built]:
    """(True, what the child built), or (False, None) when it could not."""
    try:
        payload = pickle.dumps(job)
    except (pickle.PicklingError, AttributeError, TypeError):
        # e.g. a beta-directory check that is a closure: only this process has it.
        return False, None
    with tempfile.TemporaryDirectory(prefix="rasbot-catalog-") as directory:
        # A file rather than a pipe: read back in frames, the result is never
        # held whole as bytes next to the objects made from it.
        result = Path(directory) / "catalog.pickle"
        if not await _run_child(payload, result):
            return False, None
        built: Built = await asyncio.to_thread(_read_result, result)
    return True, built


async def _run_child(payload: bytes, result: Path) -> bool:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", __name__, str(result), stdin=asyncio.subprocess.PIPE
    )
    try:
        await process.communicate(payload)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    if process.returncode != 0:
        log.warning("catalog.child_failed", returncode=process.returncode)
    return process.returncode == 0


def _read_result(path: Path) -> Built:
    with path.open("rb") as file:
        stored = _load(file)
        if stored is None:
            return None
        parsed: list[Parsed] = []
        while (chunk := _load(file)) is not None:
            parsed.extend(chunk)
    return stored, parsed


def _load(file: BinaryIO) -> Any:
    # Written by our own child process, from our own database.
    return pickle.load(file)  # noqa: S301


async def _load_and_build(job: Job) -> Built:
    from rasbot.catalogstore import CatalogStore
    from rasbot.db import create_engine
    from rasbot.sync import remembered

    engine = create_engine(job.database_url)
    try:
        stored = await CatalogStore(engine).load()
    finally:
        await engine.dispose()
    if stored is None:
        return None
    parsed = parse_releases(
        stored.releases(),
        devices=job.devices,
        serve_beta_drafts=job.serve_beta_drafts,
        in_beta_dir=job.in_beta_dir,
    )
    return replace(stored, pages=remembered(stored.pages)), parsed


def main() -> None:
    """The child: read a job on stdin, write what it parsed to the file named."""
    job = _unpickle_job(sys.stdin.buffer.read())
    built = asyncio.run(_load_and_build(job))
    with Path(sys.argv[1]).open("wb") as file:
        _write(built, file)


def _write(built: Built, file: BinaryIO) -> None:
    # In chunks, each with its own memo: unpickling one piece at a time keeps the
    # reader's table of every object read so far small.
    if built is None:
        pickle.dump(None, file)
        return
    stored, parsed = built
    pickle.dump(stored, file)
    for start in range(0, len(parsed), _CHUNK_RELEASES):
        pickle.dump(parsed[start : start + _CHUNK_RELEASES], file)
    pickle.dump(None, file)


def _unpickle_job(data: bytes) -> Job:
    # Written by the parent process that started this one.
    job: Job = pickle.loads(data)  # noqa: S301
    return job


if __name__ == "__main__":
    main()
