"""Everything rasbot says in chat, kept together so that it reads as one voice.

`backticks` mark commands and values: Slack shows them as code, a terminal as is.
Help lines live with the registrations they describe.
"""

from __future__ import annotations

from datetime import datetime

from rasbot.clock import as_utc

BOT_NAME = "rasbot"


def when(moment: datetime) -> str:
    """A moment as `YYYY-MM-DD HH:MM UTC`, whatever the server's time zone."""
    return as_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


# The dispatcher
EMPTY_COMMAND = "Say `help` to see what I can do."
UNKNOWN_COMMAND = "I don't know `{text}`. Say `help` for the commands."
UNKNOWN_SUGGEST = "I don't know `{text}`. Did you mean {suggestions}? Say `help` too."
BAD_ARGUMENTS = "That is not how `{name}` is used. Usage:"
REFUSED = (
    "Sorry, `{name}` changes what rasbot serves, so only its admins may run it. "
    "Ask one of them; your request was logged."
)
COMMAND_FAILED = "`{name}` failed on my side; the details are in the server log."
DATABASE_DOWN = "The database is not answering; try `{name}` again in a minute."

# Terminal
TERMINAL_GREETING = "rasbot chat: say `help` for the commands, `quit` to leave."
TERMINAL_QUIT = frozenset({"quit", "exit", "bye"})
IMAGE_SAVED = "[{title}: saved to {path}]"

# Slack
SLACK_MOVED_TO_DM = "<@{user}> the answer is long, so I sent it to you directly."
SLACK_TRUNCATED = "… ({more} more lines: ask me in a direct message to see them all)"

# Tables
EMPTY_TABLE = "(none)"
NOTHING = "nothing"
UNKNOWN = "unknown"
NEVER = "never"

# help
HELP_INTRO = "My commands; those marked (admins) change things and need an admin."
HELP_COLUMNS = ("command", "does")
ADMINS_ONLY = " (admins)"
HELP_NOTHING = "No command is about `{query}`. Say `help` for all of them."
HELP_SYNONYMS = "Also: {synonyms}."
HELP_ADMINS = "Admins only: it changes what rasbot serves, and it is logged."

# releases, refresh, problems
NO_CATALOG = "No catalog yet: say `refresh` to sync with GitHub."
CATALOG_SUMMARY = (
    "Catalog revision {revision}, synced {synced}: {releases} releases, "
    "{problems} problems (say `problems`)."
)
CHANNEL_TITLE = "{channel} ({count})"
DRAFT = " (draft)"
RELEASE_COLUMNS = ("version", "published", "devices", "problems")
REFRESH_FAILED = (
    "Refresh failed: {error}. The catalog served before is unchanged; "
    "I will try again at the next poll."
)
REFRESH_UNCHANGED = "Synced: nothing changed (catalog revision {revision})."
REFRESH_CHANGED = "Synced: catalog revision {revision}."
PROBLEMS_HINT = "{count} problems: say `problems` to see them."
NO_PROBLEMS = "No problems: every release and device package is served."
PROBLEMS_TITLE = "{count} problems in catalog revision {revision}"
PROBLEM_COLUMNS = ("release", "device", "package", "reason")

# downloads
NO_SUCH_RELEASE = "No release `{version}` in the catalog: say `releases` for the list."
DOWNLOADS_NOTE = (
    "GitHub's counts (as of the sync at {synced}) include the downloads through "
    "rasbot; rasbot counts its own download redirects."
)
DOWNLOAD_COLUMNS = ("release", "device", "GitHub install", "GitHub update", "rasbot")
OTHER_FILES = "other files"

# whitelist
WHITELIST_EMPTY = "The beta whitelist is empty."
WHITELIST_TITLE = "Beta whitelist ({count})"
WHITELIST_COLUMNS = ("name", "serial", "added by", "added")
WHITELIST_FAILED = "Whitelist unchanged: {reason}."
WHITELIST_ADDED = "Whitelisted `{serial}` as {name}: it gets beta releases from now on."
WHITELIST_REMOVED = "Removed `{serial}` ({name}) from the beta whitelist."

# piversion
NOT_A_REVISION = (
    "`{revision}` is not a revision code: give the hex `Revision` of "
    "/proc/cpuinfo, like `a020d3`. (The server treats such a device as `RPi`.)"
)
BOARD_TITLE = "Revision `{revision}`: Raspberry Pi {model}"
BOARD_COLUMNS = ("", "")
VOIDED = "voided (overvolted)"
INTACT = "intact"
GETS_GENERAL = "It gets `{general}` packages."
GETS_SPECIFIC = (
    "It gets `{specific}` packages from releases that declare `{specific}`, "
    "and `{general}` packages from the others."
)
NEWEST_UPDATES = "Newest update by channel (beta needs the whitelist): {offers}."

# history
HISTORY_COLUMNS = ("when", "who", "what", "detail")
HISTORY_EMPTY = "Nothing in the audit log yet."
HISTORY_NONE_SINCE = "No changes in the last {age}."
HISTORY_NONE_MATCH = "No change mentions `{text}`."
BAD_AGE = "`{age}` is not an age: say `history since 2h` (s, m, h, d or w)."

# stats, graph
BAD_PERIOD = (
    "`{period}` is not a period: say a number of days (`30`) or weeks (`8w`), "
    "at most two years."
)
STATS_ACTIVE_TITLE = "Active devices (each counted once)"
STATS_ACTIVE_COLUMNS = ("period", "devices")
STATS_LAST_DAY = "last 24 hours"
STATS_LAST_WEEK = "last 7 days"
STATS_LAST_DAYS = "last {days} days"
STATS_VERSIONS_TITLE = "Versions in the field (each device's latest)"
STATS_VERSION_COLUMNS = ("version", "devices")
STATS_INSTALLS = "Installs in the last {days} days (distinct addresses): {installs}."
STATS_DOWNLOADS = (
    "Downloads in the last {days} days: {github} counted by GitHub, {tracked} "
    "through rasbot. Say `graph downloads` or `downloads` for more."
)
GRAPH_TITLE = "{title}, last {days} days"

# rollout, rollback, and what the rollout watch tells the alert channel
ROLLOUT_FAILED = "Rollout unchanged: {reason}."
ROLLOUT_BAD_PLAN = "`{plan}` is not a plan: {reason}."
ROLLOUT_STARTED = (
    "Rollout of `{version}` ({channel}) started: {share} of devices from now, "
    "plan `{plan}`."
)
ROLLOUT_ADVANCED = (
    "Rollout of `{version}` advanced to {share} (stage {stage} of {stages}): healthy."
)
ROLLOUT_COMPLETE = "Rollout of `{version}` complete: every device is offered it."
ROLLOUT_HALTED_DEVICES = (
    "Rollout of `{version}` halted for {devices}. {reasons}. They are offered it no "
    "more, and the rollout holds at {share}. Say `rollout {version} status`, "
    "`rollout {version} resume`, or `rollback {channel} <earlier version>`."
)
ROLLOUT_HALTED_ALL = (
    "Rollout of `{version}` halted. {reasons}. No device is offered it any more. "
    "Say `rollout {version} status`, `rollout {version} resume`, or "
    "`rollback {channel} <earlier version>`."
)
ROLLOUT_MISSING = (
    "{device}: {missing} of {judged} devices missing {hours}h after staging "
    "({rate} against {before} before)"
)
ROLLOUT_CRASHING = (
    "{device}: {crashes} crash reports from {confirmed} devices "
    "({rate}/100 against {before}/100 before)"
)
ROLLOUT_PAUSED = (
    "Rollout of `{version}` paused at {share}: it advances no more until "
    "`rollout {version} resume`."
)
ROLLOUT_RESUMED = "Rollout of `{version}` resumed at {share}; health counts from now."
ROLLOUT_HALTED_BY_HAND = (
    "Rollout of `{version}` halted: no device is offered it any more. Devices on "
    "it can be offered an earlier release with `rollback {channel} <version>`."
)
ROLLOUT_PLAN_SET = "Rollout of `{version}` follows `{plan}` from now, at {share}."
ROLLBACK_FAILED = "No rollback: {reason}."
ROLLBACK_DONE = "Devices on `{halted}`{devices} are offered `{target}` from now on."
ROLLOUT_NO_PLAN = "`{version}` ({channel}) has no rollout plan: every device gets it."
ROLLOUT_STATUS = (
    "`{version}` ({channel}): {state} at {share}, stage {stage} of {stages} "
    "since {since}."
)
ROLLOUT_NEXT = "Next: {share} from {at}, if healthy."
ROLLOUT_PLAN = "Plan: `{plan}` ({source})."
ROLLOUT_PLAN_FROM_BODY = "from the release body"
ROLLOUT_PLAN_FROM_CHAT = "set from chat or the CLI"
ROLLOUT_HALTED_FOR = "Halted for {devices}: they are offered it no more."
ROLLOUT_ROLLBACK = "Devices on it are offered `{target}`."
ROLLOUT_LAST_CHANGE = "Last change: {reason} ({who}, {when})."
ROLLOUT_HEALTH = "Health per device type since {since}"
ROLLOUT_HEALTH_BEFORE = "; before: `{previous}` over its first {hours}h"
ROLLOUT_HEALTH_COLUMNS = (
    "device",
    "offered",
    "staged",
    "confirmed",
    "missing",
    "crashes",
    "missing before",
    "crashes before",
)
ROLLOUT_NOT_STARTED = "starting"
ROLLOUTS_NONE = "No rollouts: releases without a plan go to every device at once."
ROLLOUTS_COLUMNS = ("version", "channel", "state", "share", "stage", "since")
