"""Progress reports: plain dicts handed to the user's ``on_progress`` callback."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("vectra_io.progress")
ProgressCallback = Callable[[dict[str, Any]], None]


class Progress:
    """Counts records and batches of one run and reports them.

    Keys always present: ``percentage``, ``migrated``, ``total``,
    ``batches_processed``, ``total_batches``; also ``phase``, ``index``,
    ``namespace``, ``failed``, ``rate`` (records/s) and ``elapsed``.
    """

    def __init__(
        self,
        callback: ProgressCallback | None,
        phase: str,
        total: int,
        batch_size: int,
        total_batches: int | None = None,
    ) -> None:
        self.callback = callback
        self.phase = phase
        self.total = total
        self.total_batches = (
            total_batches
            if total_batches is not None
            else math.ceil(total / batch_size)
            if batch_size
            else 0
        )
        self.done = 0
        self.skipped = 0  # done by an earlier run: counted as done, not in the rate
        self.failed = 0
        self.batches = 0
        self.index: str | None = None
        self.namespace: str | None = None
        self.started = time.monotonic()

    def at(self, index: str, namespace: str) -> None:
        self.index, self.namespace = index, namespace

    def add(self, records: int, batches: int = 1, failed: int = 0) -> None:
        self.done += records
        self.failed += failed
        self.batches += batches
        self.report()

    def skip(self, records: int, batches: int = 0) -> None:
        """Records an earlier (interrupted) run already moved."""
        self.skipped += records
        self.add(records, batches)

    def snapshot(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        finished = self.done + self.failed
        pct = 100.0 if self.total <= 0 else min(100.0, 100.0 * finished / self.total)
        return {
            "phase": self.phase,
            "index": self.index,
            "namespace": self.namespace,
            "percentage": round(pct, 2),
            "migrated": self.done,
            "failed": self.failed,
            "total": self.total,
            "batches_processed": self.batches,
            "total_batches": max(self.total_batches, self.batches),
            "elapsed": round(elapsed, 3),
            "skipped": self.skipped,
            "rate": round((self.done - self.skipped) / elapsed, 1) if elapsed > 0 else 0.0,
        }

    def report(self) -> None:
        if self.callback is None:
            return
        try:
            self.callback(self.snapshot())
        except Exception:  # a broken callback must not break the copy
            log.exception("on_progress callback failed")
