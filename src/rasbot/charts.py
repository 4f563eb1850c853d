"""PNG charts of the statistics, shared by the dashboard and chat.

A `Chart` says what to draw (plain data, so it can be cached and tested); `render`
draws it with matplotlib's Agg renderer, without pyplot and its global state.
matplotlib is imported on first use: a server that never draws a chart never
pays for it. Drawing takes tens of milliseconds of CPU, so the async callers use
`render_async`, which draws in a worker thread, one chart at a time (matplotlib's
font and text caches are not meant for concurrent use).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from matplotlib.axes import Axes

Kind = Literal["line", "stacked", "barh"]

#: Pixels of a chart: wide enough for a year of days, legible when a phone
#: scales it to its width.
WIDTH, HEIGHT, DPI = 800, 360, 100
FONT_SIZE = 13
NO_DATA = "No data for this period yet"

_lock = threading.Lock()


@dataclass(frozen=True)
class Series:
    """One named line, or one layer of stacked bars."""

    name: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class Chart:
    """A chart to draw: x values (days, hours, or labels for ``barh``) and series."""

    title: str
    kind: Kind
    x: tuple[date | datetime | str, ...]
    series: tuple[Series, ...]
    unit: str = ""

    @property
    def empty(self) -> bool:
        """True when there is nothing to draw."""
        return not self.x or not any(any(s.values) for s in self.series)


def render(chart: Chart) -> bytes:
    """``chart`` as PNG bytes."""
    from matplotlib import rc_context
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # Large type: a phone shows the 800 pixels about 360 wide.
    with _lock, rc_context({"font.size": FONT_SIZE}):
        figure = Figure(
            figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained"
        )
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        axes.set_title(_plain(chart.title), loc="left", fontsize="large")
        if chart.empty:
            _no_data(axes)
        else:
            _DRAW[chart.kind](axes, chart)
            _style(axes, chart)
        buffer = io.BytesIO()
        # No metadata: the PNG is then the same bytes for the same chart.
        figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


async def render_async(chart: Chart) -> bytes:
    """`render` in a worker thread, so the event loop keeps answering devices."""
    return await asyncio.to_thread(render, chart)


def _line(axes: Axes, chart: Chart) -> None:
    x: Any = chart.x  # matplotlib's stubs know no dates, though it draws them
    for series in chart.series:
        axes.plot(x, series.values, label=_plain(series.name), linewidth=1.8)
    _date_axis(axes)


def _stacked(axes: Axes, chart: Chart) -> None:
    x: Any = chart.x
    bottom = [0.0] * len(x)
    for series in chart.series:
        axes.bar(x, series.values, bottom=bottom, label=_plain(series.name), width=0.8)
        bottom = [b + v for b, v in zip(bottom, series.values, strict=True)]
    _date_axis(axes)


def _barh(axes: Axes, chart: Chart) -> None:
    labels = [_plain(str(x)) for x in chart.x]
    values = chart.series[0].values
    # Highest first, reading downwards.
    bars = axes.barh(labels[::-1], values[::-1], color="#4c72b0")
    axes.bar_label(bars, padding=3)
    axes.margins(x=0.12)


_DRAW = {"line": _line, "stacked": _stacked, "barh": _barh}


def _date_axis(axes: Axes) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    formatter = ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_formatter(formatter)


def _style(axes: Axes, chart: Chart) -> None:
    from matplotlib.ticker import MaxNLocator

    # Counts are whole numbers: no tick at 0.25 devices.
    counts = axes.xaxis if chart.kind == "barh" else axes.yaxis
    counts.set_major_locator(MaxNLocator(integer=True))
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="x" if chart.kind == "barh" else "y", alpha=0.3)
    if chart.kind != "barh":
        axes.set_ylim(bottom=0)
        axes.set_ylabel(chart.unit)
    if len(chart.series) > 1:
        axes.legend(frameon=False, fontsize="small", ncols=min(4, len(chart.series)))


def _no_data(axes: Axes) -> None:
    axes.set_axis_off()
    axes.text(0.5, 0.5, NO_DATA, ha="center", va="center", alpha=0.6)


def _plain(text: str) -> str:
    # matplotlib reads text between dollar signs as mathematics; names are not.
    return text.replace("$", r"\$")


def top(
    pairs: Sequence[tuple[str, int]], limit: int, rest: str
) -> list[tuple[str, int]]:
    """The ``limit`` largest pairs, the others added up under ``rest``."""
    ranked = sorted(pairs, key=lambda pair: (-pair[1], pair[0]))
    if len(ranked) <= limit:
        return ranked
    others = sum(n for _, n in ranked[limit - 1 :])
    return [*ranked[: limit - 1], (rest, others)]
