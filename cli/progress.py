"""Progress display for the engine's ``on_progress`` reports.

On a terminal: a rich live bar per phase (records, rate, ETA, current
index/namespace, failed records). Otherwise: a plain line every few seconds
(``VECTRA_PROGRESS_INTERVAL``, default 5) and one at the end of each phase.
"""

from __future__ import annotations

import os
import time
from types import TracebackType
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from .output import UI, count, ns_label

DEFAULT_INTERVAL = 5.0


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("VECTRA_PROGRESS_INTERVAL", DEFAULT_INTERVAL)))
    except ValueError:
        return DEFAULT_INTERVAL


def _where(report: dict[str, Any]) -> str:
    index = report.get("index")
    if index is None:
        return ""
    return f"{index}/{ns_label(report.get('namespace'))}"


def plain_line(report: dict[str, Any], *, final: bool = False) -> str:
    done = int(report.get("migrated", 0))
    failed = int(report.get("failed", 0))
    total = int(report.get("total", 0))
    rate = float(report.get("rate", 0.0))
    parts = [
        f"{report.get('phase', 'progress')}: {count(done)}/{count(total)} records"
        f" ({float(report.get('percentage', 0.0)):.1f}%)",
        f"{rate:,.0f} rec/s",
    ]
    if failed:
        parts.append(f"{count(failed)} failed")
    if not final:
        where = _where(report)
        if where:
            parts.append(f"at {where}")
        remaining = total - done - failed
        if rate > 0 and remaining > 0:
            parts.append(f"eta {_duration(remaining / rate)}")
    else:
        parts.append(f"done in {_duration(float(report.get('elapsed', 0.0)))}")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class ProgressDisplay:
    """A context manager whose :meth:`__call__` is an ``on_progress`` callback."""

    def __init__(self, ui: UI, *, enabled: bool = True) -> None:
        self.ui = ui
        self.enabled = enabled and not ui.quiet
        self.live = self.enabled and ui.interactive
        self.interval = _interval()
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._last: dict[str, Any] | None = None
        self._last_printed = 0.0
        self._printed_last = False

    def __enter__(self) -> ProgressDisplay:
        if self.live:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.fields[phase]}[/bold]"),
                # the index/namespace column gives way first when the terminal is narrow
                TextColumn(
                    "{task.description}",
                    markup=False,
                    table_column=Column(no_wrap=True, overflow="ellipsis", min_width=8, ratio=1),
                ),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TextColumn("{task.fields[failed]}", style="red"),
                TextColumn("eta"),
                TimeRemainingColumn(compact=True),
                console=self.ui.err,
                transient=False,
                refresh_per_second=8,
            )
            self._progress.start()
        self._last_printed = time.monotonic()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.finish()

    def finish(self) -> None:
        """End the current phase (the bar stays on screen; plain mode prints its last line)."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        elif self.enabled and self._last is not None and not self._printed_last:
            self.ui.err.print(plain_line(self._last, final=True), markup=False, highlight=False)
            self._printed_last = True

    def __call__(self, report: dict[str, Any]) -> None:
        if not self.enabled:
            return
        phase = str(report.get("phase", "progress"))
        if self._last is not None and self._last.get("phase") != phase and not self.live:
            self.finish()
        self._last = report
        self._printed_last = False
        if self._progress is not None:
            self._update_bar(phase, report)
            return
        now = time.monotonic()
        if now - self._last_printed >= self.interval:
            self._last_printed = now
            self.ui.err.print(plain_line(report), markup=False, highlight=False)

    def _update_bar(self, phase: str, report: dict[str, Any]) -> None:
        assert self._progress is not None
        failed = int(report.get("failed", 0))
        fields: dict[str, Any] = {
            "phase": phase,
            "rate": f"{float(report.get('rate', 0.0)):,.0f} rec/s",
            "failed": f"{count(failed)} failed" if failed else "",
        }
        total = max(int(report.get("total", 0)), 1)
        done = int(report.get("migrated", 0)) + failed
        task = self._tasks.get(phase)
        if task is None:
            task = self._progress.add_task(_where(report), total=total, **fields)
            self._tasks[phase] = task
        self._progress.update(
            task, completed=done, total=max(total, done), description=_where(report), **fields
        )
