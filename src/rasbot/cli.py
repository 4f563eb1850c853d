"""The ``rasbot`` command. Exit codes: 0 ok, 1 failure, 2 usage or settings error."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

import click

from rasbot import __version__, logconfig, migrate
from rasbot.catalog import Catalog, Release
from rasbot.db import create_engine
from rasbot.feeds import created_at
from rasbot.releasebody import parse_body
from rasbot.services import Services
from rasbot.settings import Settings, SettingsError, load_settings

T = TypeVar("T")


def _settings() -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo(f"rasbot: bad setting: {exc}", err=True)
        sys.exit(2)
    logconfig.configure(settings.log_format, settings.log_level)
    return settings


def _run(job: Callable[[Services], Awaitable[T]]) -> T:
    """Run ``job`` with opened services (no background work) and close them."""

    async def main() -> T:
        svc = Services.build(_settings())
        try:
            await svc.open()
            return await job(svc)
        finally:
            await svc.close()

    return asyncio.run(main())


def _exits(func: Callable[..., int]) -> Callable[..., None]:
    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        sys.exit(func(*args, **kwargs))

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rasbot")
def main() -> None:
    """rasbot: release server of the RasPlex distribution.

    Settings come from RASBOT_* environment variables (see the README).
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address.")
@click.option("--port", default=8000, show_default=True, help="TCP port.")
@click.option("--workers", default=1, show_default=True, help="Server processes.")
def serve(host: str, port: int, workers: int) -> None:
    """Run the HTTP server, the GitHub poller and the configured chat adapters."""
    import uvicorn

    settings = _settings()
    # Migrate once here, so that several workers do not race to do it.
    asyncio.run(_upgrade(settings))
    uvicorn.run(
        "rasbot.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # The access log would write X-Plex-Token query values to disk.
        access_log=False,
        log_config=None,
        server_header=False,
        proxy_headers=False,
    )


async def _upgrade(settings: Settings, revision: str = "head") -> None:
    engine = create_engine(settings.database_url)
    try:
        await migrate.upgrade(engine, revision)
    finally:
        await engine.dispose()


@main.command()
@_exits
def refresh() -> int:
    """Sync with the release source once; print what changed and every problem."""

    async def job(svc: Services) -> int:
        result = await svc.syncer.refresh("cli")
        if not result.ok:
            click.echo(f"refresh failed: {result.error}", err=True)
            click.echo("The catalog served before is unchanged.", err=True)
            return 1
        listing = "not modified" if result.not_modified else "downloaded"
        click.echo(f"listing {listing}; catalog revision {result.revision}")
        for line in result.changes or ("no changes",):
            click.echo(line)
        _echo_problems(svc.syncer.catalog)
        return 0

    return _run(job)


@main.command()
@_exits
def releases() -> int:
    """List the catalog the server is serving, per channel, and its problems."""

    async def job(svc: Services) -> int:
        catalog = svc.syncer.catalog
        if catalog.revision == 0:
            click.echo("No catalog stored yet: run `rasbot refresh` first.", err=True)
            return 1
        click.echo(f"catalog revision {catalog.revision}, {_synced(catalog)}")
        for channel in ("stable", "prerelease", "beta"):
            listed = [r for r in catalog.releases if r.channel == channel]
            click.echo(f"\n{channel} ({len(listed)})")
            for release in listed:
                click.echo("  " + _release_line(release))
        _echo_problems(catalog)
        return 0

    return _run(job)


def _synced(catalog: Catalog) -> str:
    if catalog.fetched_at is None:
        return "never synced"
    return f"last synced {created_at(catalog.fetched_at)}"


def _release_line(release: Release) -> str:
    install = ",".join(sorted(release.install)) or "-"
    update = ",".join(sorted(release.update)) or "-"
    draft = " draft" if release.draft else ""
    return (
        f"{release.name:<14} {created_at(release.published_at)}{draft}"
        f"  install: {install}  update: {update}"
    )


def _echo_problems(catalog: Catalog) -> None:
    click.echo(f"\nproblems ({len(catalog.problems)})")
    for problem in catalog.problems:
        click.echo(f"problem: {problem}")


@main.command("check-release")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@_exits
def check_release(file: Any) -> int:
    """Lint a release body (YAML) before it is published; exit 1 on problems."""
    body = parse_body(file.read())
    problems = list(body.problems)
    problems += [
        f"{p.device} {p.kind}: {p.problem}" for p in body.packages if p.problem
    ]
    if body.usable:
        click.echo(f"channel: {body.channel}, {len(body.changes)} changes")
        for package in body.packages:
            state = "ok" if package.usable else "UNUSABLE"
            click.echo(f"{package.device} {package.kind}: {package.file} {state}")
    for problem in problems:
        click.echo(f"problem: {problem}")
    return 1 if problems else 0


@main.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target.")
@_exits
def db_upgrade(revision: str) -> int:
    """Migrate the database schema (creates it when empty)."""

    asyncio.run(_upgrade(_settings(), revision))
    click.echo(f"database at {revision}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
