"""The ``rasbot`` command. Exit codes: 0 ok, 1 failure, 2 usage or settings error."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from rasbot import __version__, logconfig, migrate, retention, servers, statsreport
from rasbot.betadir import BetaDir, body_section, digests, guess_device, guess_kind
from rasbot.catalog import INSTALL, UPDATE, Catalog, Release
from rasbot.chat import terminal
from rasbot.db import create_engine
from rasbot.feeds import created_at
from rasbot.releasebody import parse_body
from rasbot.services import Services
from rasbot.settings import Settings, SettingsError, load_settings
from rasbot.stats import Stats
from rasbot.whitelist import Whitelist, WhitelistError

T = TypeVar("T")


def _settings(*, default_log_level: str | None = None) -> Settings:
    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo(f"rasbot: bad setting: {exc}", err=True)
        sys.exit(2)
    level = settings.log_level
    if default_log_level and "log_level" not in settings.model_fields_set:
        level = default_log_level
    logconfig.configure(settings.log_format, level)
    return settings


def _run(
    job: Callable[[Services], Awaitable[T]], *, default_log_level: str | None = None
) -> T:
    """Run ``job`` with opened services (no background work) and close them."""

    async def main() -> T:
        svc = Services.build(_settings(default_log_level=default_log_level))
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


class _Group(click.Group):
    """Turns an unreachable database into one sentence instead of a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (SQLAlchemyError, OSError) as exc:
            if isinstance(exc, click.ClickException):
                raise
            click.echo(_database_trouble(exc), err=True)
            sys.exit(1)


def _database_trouble(exc: Exception) -> str:
    url = os.environ.get("RASBOT_DATABASE_URL", "the default SQLite file")
    with contextlib.suppress(Exception):
        url = make_url(url).render_as_string(hide_password=True)
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
    return (
        f"rasbot: cannot use the database at {url}: {reason}\n"
        "Check that the database server is running and that RASBOT_DATABASE_URL "
        "is right, then try again."
    )


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rasbot")
def main() -> None:
    """rasbot: release server of the RasPlex distribution.

    Settings come from RASBOT_* environment variables (see the README).
    """


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address.")
@click.option("--port", default=8000, show_default=True, help="TCP port.")
@click.option("--workers", default=1, show_default=True, help="Server processes.")
@click.option(
    "--server",
    type=click.Choice(["auto", *servers.SERVERS]),
    default=None,
    help="HTTP server; default RASBOT_SERVER (auto: granian when installed).",
)
def serve(host: str, port: int, workers: int, server: str | None) -> None:
    """Run the HTTP server, the GitHub poller and the configured chat adapters."""
    settings = _settings()
    chosen = servers.choose(server or settings.server)
    if not servers.available(chosen):
        click.echo(f"rasbot: the {chosen} server is not installed.", err=True)
        sys.exit(2)
    # Migrate once here, so that several workers do not race to do it, and in a
    # process of its own, so that the server does not keep Alembic in memory.
    migrated = subprocess.run(
        [sys.executable, "-m", "rasbot.cli", "db", "upgrade"],
        stdout=subprocess.DEVNULL,
        check=False,
    )
    if migrated.returncode != 0:
        sys.exit(migrated.returncode)
    servers.run(chosen, host, port, workers)


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


@main.command("stats")
@click.option(
    "--days",
    default=30,
    show_default=True,
    type=click.IntRange(1, statsreport.MAX_DAYS),
    help="Days to cover.",
)
@click.option(
    "--compact",
    is_flag=True,
    help="First roll up finished days and delete raw rows older than "
    "RASBOT_STATS_KEEP_DAYS (the server does this daily).",
)
@_exits
def stats_command(days: int, compact: bool) -> int:
    """Print the top-line usage numbers of the last DAYS days."""

    async def job(svc: Services) -> int:
        try:
            if compact:
                done = await retention.compact(svc.engine, svc.settings.stats_keep_days)
                click.echo(
                    f"compacted: {done.days_rolled_up} days rolled up, "
                    f"{done.weeks_kept} weeks kept, {done.rows_deleted} raw rows "
                    f"deleted; raw rows kept from {done.kept_from.isoformat()}"
                )
            stats = Stats(svc.engine)
            found = await statsreport.summary(stats, svc.syncer.catalog, days)
        except (SQLAlchemyError, OSError) as exc:
            click.echo(f"rasbot: cannot read the statistics: {exc}", err=True)
            return 1
        for line in statsreport.summary_lines(found):
            click.echo(line)
        return 0

    return _run(job, default_log_level="warning")


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
        if body.rollout is not None:
            click.echo(f"rollout: {body.rollout}")
        for package in body.packages:
            state = "ok" if package.usable else "UNUSABLE"
            click.echo(f"{package.device} {package.kind}: {package.file} {state}")
    for problem in problems:
        click.echo(f"problem: {problem}")
    return 1 if problems else 0


@main.command()
@click.option("-c", "--command", "text", help='One command to run, e.g. "releases".')
@_exits
def chat(text: str | None) -> int:
    """The chat commands in a terminal, as an admin; `help` lists them.

    Without -c, read commands line by line until `quit` or end of input. With -c,
    run one and exit 1 if it failed.
    """
    # The conversation is the output: unless RASBOT_LOG_LEVEL says otherwise, log
    # only trouble, so that log lines do not interleave with it.
    quiet = "warning"
    if text is not None:
        return _run(
            lambda svc: terminal.run_command(svc, text), default_log_level=quiet
        )
    return _run(terminal.run_interactive, default_log_level=quiet)


@main.command()
@click.argument("version")
@click.argument(
    "action",
    type=click.Choice(["status", "pause", "resume", "halt", "set"]),
    default="status",
)
@click.argument("plan", nargs=-1)
@_exits
def rollout(version: str, action: str, plan: tuple[str, ...]) -> int:
    """The staged rollout of release VERSION: its status, or one change to it.

    `rasbot rollout 1.8.0 set 5%, 25% after 1d, 100% after 3d` sets its plan
    (docs/rollouts.md). Changes are in the audit log under your Unix user.
    """
    if plan and action != "set":
        raise click.UsageError("only `set` takes a plan")
    text = f"rollout {version} {action} {' '.join(plan)}".strip()
    return _run(
        lambda svc: terminal.run_command(svc, text), default_log_level="warning"
    )


@main.command()
@click.argument("channel", type=click.Choice(["stable", "prerelease"]))
@click.argument("version")
@_exits
def rollback(channel: str, version: str) -> int:
    """Offer release VERSION to the devices on CHANNEL's halted release."""
    text = f"rollback {channel} {version}"
    return _run(
        lambda svc: terminal.run_command(svc, text), default_log_level="warning"
    )


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


@main.group("whitelist")
def whitelist_group() -> None:
    """The beta whitelist: serials offered beta releases on channel 4."""


@whitelist_group.command("show")
@_exits
def whitelist_show() -> int:
    """List the whitelisted serials."""

    async def job(whitelist: Whitelist) -> int:
        entries = await whitelist.entries()
        for entry in entries:
            added = f"added by {entry.added_by} {created_at(entry.added_at)}"
            click.echo(f"{entry.serial}  {entry.name}  ({added})")
        if not entries:
            click.echo("The beta whitelist is empty.")
        return 0

    return _with_whitelist(job)


@whitelist_group.command("add")
@click.argument("name")
@click.argument("serial")
@_exits
def whitelist_add(name: str, serial: str) -> int:
    """Whitelist SERIAL (16 hex digits) under NAME, e.g. the tester's name."""

    async def job(whitelist: Whitelist) -> int:
        entry = await whitelist.add(name, serial, f"cli:{_unix_user()}")
        click.echo(f"{entry.serial} whitelisted as {entry.name}")
        return 0

    return _with_whitelist(job)


@whitelist_group.command("remove")
@click.argument("name")
@click.argument("serial")
@_exits
def whitelist_remove(name: str, serial: str) -> int:
    """Remove SERIAL; NAME must be the one it was added under."""

    async def job(whitelist: Whitelist) -> int:
        await whitelist.remove(name, serial)
        click.echo(f"{serial.strip().lower()} removed from the whitelist")
        return 0

    return _with_whitelist(job)


def _with_whitelist(job: Callable[[Whitelist], Awaitable[int]]) -> int:
    settings = _settings()

    async def run() -> int:
        engine = None
        try:
            engine = create_engine(settings.database_url)
            await migrate.upgrade(engine)
            return await job(Whitelist(engine))
        except WhitelistError as exc:
            click.echo(f"rasbot: {exc}", err=True)
        except (SQLAlchemyError, OSError) as exc:
            click.echo(f"rasbot: cannot use the database: {exc}", err=True)
            click.echo("Check RASBOT_DATABASE_URL and that it is reachable.", err=True)
        finally:
            if engine is not None:
                await engine.dispose()
        return 1

    return asyncio.run(run())


def _unix_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


@main.group("beta")
def beta_group() -> None:
    """Beta images in RASBOT_BETA_DIR, served by this server."""


@beta_group.command("add")
@click.argument("file")
@click.option("--device", help="Device id; guessed from the file name if left out.")
@click.option(
    "--kind",
    type=click.Choice([INSTALL, UPDATE]),
    help="install (image) or update (archive); guessed from the file name.",
)
@_exits
def beta_add(file: str, device: str | None, kind: str | None) -> int:
    """Print the release body section for FILE, a file in RASBOT_BETA_DIR.

    Paste it into a release whose body says `channel: beta`, without uploading
    FILE to GitHub: whitelisted serials then download it from this server.
    """
    settings = _settings()
    if settings.beta_dir is None:
        click.echo("rasbot: RASBOT_BETA_DIR is not set; set it first.", err=True)
        return 1
    found = BetaDir(settings.beta_dir).find(Path(file).name)
    if found is None or (os.sep in file and Path(file).resolve() != found.path):
        click.echo(
            f"rasbot: {file} is not a file in the beta directory "
            f"{settings.beta_dir}; copy it there first.",
            err=True,
        )
        return 1
    name = found.path.name
    kind = kind or _guessed(guess_kind(name), "kind", "install or update")
    known = [d for d, _ in settings.device_names] + list(settings.device_board_map)
    device = _guessed(guess_device(device or name, known), "device", "e.g. RPi2")
    click.echo(body_section(name, kind, device, digests(found.path)), nl=False)
    return 0


def _guessed(value: str | None, option: str, example: str) -> str:
    if value is None:
        raise click.UsageError(
            f"cannot tell the {option} from the file name; pass --{option} ({example})"
        )
    return value


if __name__ == "__main__":  # pragma: no cover
    main()
