"""`stats [days]` and `graph <chart> [period]`: usage statistics in chat.

The numbers and charts are the dashboard's (rasbot.statsreport, rasbot.charts);
`graph` posts the chart as an image, which the terminal saves to a file.
"""

from __future__ import annotations

import re

from rasbot import charts, statsreport
from rasbot.chat import texts
from rasbot.chat.registry import Context, Family
from rasbot.chat.replies import Image, Reply, table
from rasbot.stats import Period, Stats
from rasbot.statsreport import MAX_DAYS, OTHERS

family = Family("stats")

DEFAULT_DAYS = 30
#: Rows of each table of `stats`: chat answers stay short.
SHOWN = 5

_PERIOD = re.compile(r"(?P<amount>\d{1,4})\s*(?P<unit>[dw]?)", re.IGNORECASE)
_CHARTS = "|".join(name for name in statsreport.CHARTS if name != "adoption")


@family.command(
    "stats",
    args=r"(?P<period>\d{1,4}\s*[dw]?)?",
    usage="stats [days]",
    synonyms=("statistics", "usage"),
    help="Active devices, versions, installs and downloads of the last days (30).",
)
async def stats(ctx: Context) -> Reply:
    """The top-line numbers of a period."""
    days = period_days(ctx.arg("period") or str(DEFAULT_DAYS))
    if days is None:
        return Reply.error(texts.BAD_PERIOD.format(period=ctx.arg("period")))
    catalog = ctx.services.syncer.catalog
    found = await statsreport.summary(Stats(ctx.services.engine), catalog, days)
    active = [
        (texts.STATS_LAST_DAY, found.active_day),
        (texts.STATS_LAST_WEEK, found.active_week),
        (texts.STATS_LAST_DAYS.format(days=days), found.active_period),
    ]
    installs = ", ".join(f"{p} {n}" for p, n in found.installs.items())
    return Reply.say(
        table(texts.STATS_ACTIVE_COLUMNS, active, texts.STATS_ACTIVE_TITLE),
        table(
            texts.STATS_VERSION_COLUMNS,
            charts.top(found.versions, SHOWN, OTHERS),
            texts.STATS_VERSIONS_TITLE,
        ),
        texts.STATS_INSTALLS.format(days=days, installs=installs),
        texts.STATS_DOWNLOADS.format(
            days=days,
            github=found.github_downloads,
            tracked=sum(n for _, _, n in found.downloads),
        ),
    )


@family.command(
    "graph",
    args=(
        rf"(?:(?P<chart>{_CHARTS})|adoption\s+(?P<version>\S+))"
        r"(?:\s+(?P<period>\d{1,4}\s*[dw]?))?"
    ),
    usage=f"graph <{_CHARTS}|adoption <version>> [days, or weeks: 8w]",
    synonyms=("chart", "plot"),
    help="A chart of the statistics, as an image (default: the last 30 days).",
)
async def graph(ctx: Context) -> Reply:
    """Draw one chart of the dashboard."""
    days = period_days(ctx.arg("period") or str(DEFAULT_DAYS))
    if days is None:
        return Reply.error(texts.BAD_PERIOD.format(period=ctx.arg("period")))
    catalog = ctx.services.syncer.catalog
    name, release = ctx.arg("chart").lower() or "adoption", None
    if ctx.arg("version"):
        release = statsreport.find_release(catalog, ctx.arg("version"))
        if release is None:
            return Reply.error(texts.NO_SUCH_RELEASE.format(version=ctx.arg("version")))

    stats_ = Stats(ctx.services.engine)
    chart = await statsreport.chart(name, stats_, catalog, Period.last(days), release)
    png = await charts.render_async(chart)
    title = texts.GRAPH_TITLE.format(title=chart.title, days=days)
    return Reply.say(Image(title, png, filename=f"rasbot-{name}-{days}d.png"))


def period_days(text: str) -> int | None:
    """`30`, `30d` or `8w` as days (at most a `MAX_DAYS`); None when not a period."""
    match = _PERIOD.fullmatch(text.strip())
    if match is None:
        return None
    days = int(match["amount"]) * (7 if match["unit"].lower() == "w" else 1)
    return days if 1 <= days <= MAX_DAYS else None
