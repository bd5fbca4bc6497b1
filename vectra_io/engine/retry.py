"""The one retry policy of the engine.

Only :class:`~vectra_io.errors.RetryableError` is retried: providers classify
their failures at their boundary. A ``Retry-After`` seen by one worker closes a
shared gate, so every worker of the run waits, not only the one that was told.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from ..errors import RetryableError

log = logging.getLogger("vectra_io.retry")
T = TypeVar("T")


class BackoffGate:
    """A shared 'not before' time that all workers respect."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._not_before = 0.0
        self._lock = threading.Lock()

    def close_for(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)

    def wait(self, sleep: Callable[[float], None] = time.sleep) -> None:
        while True:
            with self._lock:
                delay = self._not_before - self._clock()
            if delay <= 0:
                return
            sleep(delay)


@dataclass
class RetryPolicy:
    """Exponential backoff with full jitter, bounded in attempts and in total time."""

    max_attempts: int = 8
    max_elapsed: float = 300.0
    base_delay: float = 0.25
    max_delay: float = 30.0
    gate: BackoffGate = field(default_factory=BackoffGate)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay_for(self, attempt: int, error: RetryableError) -> float:
        if error.retry_after is not None:
            return max(0.0, min(error.retry_after, self.max_delay * 4))
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(cap / 2, cap)

    def call(self, fn: Callable[[], T], what: str = "request") -> T:
        start = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            self.gate.wait(self.sleep)
            try:
                return fn()
            except RetryableError as exc:
                self.backoff(exc, attempt, start, what)

    def backoff(self, exc: RetryableError, attempt: int, start: float, what: str) -> None:
        """Wait before attempt ``attempt + 1``, or re-raise ``exc`` when the budget is spent."""
        delay = self.delay_for(attempt, exc)
        elapsed = time.monotonic() - start
        if attempt >= self.max_attempts or elapsed + delay > self.max_elapsed:
            log.warning("%s failed after %d attempts: %s", what, attempt, exc)
            raise exc
        if exc.retry_after is not None:
            self.gate.close_for(delay)  # every worker waits, not only this one; close it first
        log.info("%s: %s; retry %d/%d in %.2fs", what, exc, attempt, self.max_attempts - 1, delay)
        if exc.retry_after is not None:
            self.gate.wait(self.sleep)
        else:
            self.sleep(delay)
