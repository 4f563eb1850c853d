"""The long-lived parts of a running rasbot, built from the settings."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from rasbot import crashes, db, migrate, retention
from rasbot.answercache import AnswerCache
from rasbot.betadir import BetaDir
from rasbot.catalog import Catalog
from rasbot.catalogstore import CatalogStore
from rasbot.chat.audit import AuditLog
from rasbot.chat.render import plain_text
from rasbot.chat.replies import Reply
from rasbot.github import FileSource, GitHubSource, Source
from rasbot.githubcounts import DownloadCounts
from rasbot.lease import Lease
from rasbot.recording import Recorder
from rasbot.rollout import Rollouts
from rasbot.rolloutreport import Thresholds
from rasbot.rolloutwatch import RolloutWatch
from rasbot.settings import Settings
from rasbot.sync import Syncer
from rasbot.whitelist import Whitelist

if TYPE_CHECKING:
    from rasbot.chat.slack import SlackBot

log = structlog.get_logger(__name__)

# How often each process rereads state that another process may have changed.
WHITELIST_RELOAD_SECONDS = 5.0
ROLLOUT_RELOAD_SECONDS = 5.0
CATALOG_FOLLOW_SECONDS = 3.0
CRASH_CLEANUP_SECONDS = 3600.0


def make_source(settings: Settings) -> Source:
    """The release source the settings name: a file, or GitHub."""
    if settings.releases_file is not None:
        return FileSource(settings.releases_file)
    token = settings.github_token.get_secret_value() if settings.github_token else None
    return GitHubSource(
        settings.github_api_url,
        settings.github_repo,
        token=token,
        timeout_seconds=settings.github_timeout_seconds,
    )


@dataclass
class Services:
    """Database, catalog, whitelist and recorder of one process."""

    settings: Settings
    engine: AsyncEngine
    syncer: Syncer
    whitelist: Whitelist
    recorder: Recorder
    poller: Lease | None = None
    slack: SlackBot | None = None
    answers: AnswerCache = field(default_factory=AnswerCache)
    rollout_lease: Lease | None = None
    rollouts: Rollouts = field(init=False)
    rollout_watch: RolloutWatch = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        def catalog() -> Catalog:
            return self.syncer.catalog

        self.rollouts = Rollouts(self.engine, catalog)
        self.rollout_watch = RolloutWatch(
            self.rollouts,
            self.engine,
            catalog,
            AuditLog(self.engine),
            self.alert,
            Thresholds.from_settings(self.settings),
        )

    async def alert(self, reply: Reply) -> None:
        """Tell the operators: in the log, and in the Slack alert channel if set."""
        log.warning("alert", text=plain_text(reply, lambda image: image.title))
        channel = self.settings.slack_channel
        if self.slack is not None and channel:
            await self.slack.post_alert(channel, reply)

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Wire the parts together; nothing is connected until `start`."""
        engine = db.create_engine(settings.database_url)
        syncer = Syncer(
            make_source(settings),
            CatalogStore(engine),
            devices=[device for device, _ in settings.device_names],
            serve_beta_drafts=settings.serve_beta_drafts,
            in_beta_dir=BetaDir(settings.beta_dir).has if settings.beta_dir else None,
            on_change=AuditLog(engine).sync_changed,
            on_listing=DownloadCounts(engine).snapshot,
        )
        recorder = Recorder(
            engine,
            max_rows=settings.record_queue_max,
            flush_seconds=settings.record_flush_seconds,
        )
        return cls(settings, engine, syncer, Whitelist(engine), recorder)

    async def open(self, *, migrate_schema: bool = True) -> None:
        """Migrate, then load the stored catalog and whitelist (no background work)."""
        if migrate_schema:
            await migrate.upgrade(self.engine)
        await self.syncer.load()
        await self.whitelist.reload()
        await self.rollouts.reload()

    async def start(self) -> None:
        """Open, then start polling, reloading and recording in the background."""
        await self.open()
        self.recorder.start()
        self._spawn(self.whitelist.reload_forever(WHITELIST_RELOAD_SECONDS))
        self._spawn(self.syncer.follow_forever(CATALOG_FOLLOW_SECONDS))
        self._spawn(
            crashes.remove_expired_forever(
                self.engine,
                self.settings.crash_dir,
                self.settings.crash_keep_days,
                CRASH_CLEANUP_SECONDS,
            )
        )
        self._spawn(
            retention.compact_forever(self.engine, self.settings.stats_keep_days)
        )
        poll = self.settings.github_poll_seconds
        if poll > 0:
            self.poller = Lease(self.engine, "poller", self.settings.poll_lease_seconds)
            self._spawn(self.syncer.poll_forever(poll, self.poller))
        else:
            self._spawn(self._refresh_once())
        self._start_rollouts()
        self._start_slack()

    def _start_rollouts(self) -> None:
        """Follow rollout changes of other processes; watch them under the lease."""
        self._spawn(self.rollouts.reload_forever(ROLLOUT_RELOAD_SECONDS))
        seconds = self.settings.rollout_check_seconds
        # The holder renews at every check: the lease outlives the gap between two.
        self.rollout_lease = Lease(self.engine, "rollouts", 2 * seconds + 60)
        self._spawn(self.rollout_watch.watch_forever(seconds, self.rollout_lease))

    def _start_slack(self) -> None:
        """Answer Slack when a bot token is set: over HTTP, and Socket Mode if set."""
        if self.settings.slack_bot_token is None:
            return
        # Imported here: slack-bolt and aiohttp load only where Slack is configured.
        from rasbot.chat.slack import SlackBot

        self.slack = SlackBot(self)
        if self.slack.socket_mode:
            self._spawn(self.slack.run_socket_mode())

    async def _refresh_once(self) -> None:
        await self.syncer.refresh("start")

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        self._tasks.append(asyncio.create_task(job))

    async def close(self) -> None:
        """Stop background work, write what is recorded, close connections."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.poller is not None:
            await self.poller.release()
        if self.rollout_lease is not None:
            await self.rollout_lease.release()
        await self.recorder.stop()
        await self.syncer.aclose()
        await self.engine.dispose()
