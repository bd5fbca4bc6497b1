"""The connection pool of the ``pgvector`` provider: up to ``pool_size`` psycopg connections
shared by concurrent calls, each with what it keeps for the provider (its temporary staging
tables and its write statements, rendered once per table layout).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from ...errors import FatalError, RetryableError
from .layout import Layout
from .statements import stage_table, write_statements


@dataclass
class Conn:
    conn: psycopg.Connection[Any]
    stages: set[str] = field(default_factory=set)
    # (schema, table, stage) -> (the layout, its write statements rendered for this connection)
    statements: dict[tuple[str, str, str], tuple[Layout, list[bytes]]] = field(default_factory=dict)

    def rendered_statements(self, lay: Layout, ext: str, stage: str | None) -> list[bytes]:
        """The statements writing the staging table (``stage``) or the unnested arrays (None)
        into ``lay``'s table, rendered once per connection and layout."""
        key = (lay.schema, lay.table, stage or "")
        cached = self.statements.get(key)
        if cached is None or cached[0] is not lay:
            rendered = [s.as_bytes(self.conn) for s in write_statements(lay, ext, stage)]
            cached = self.statements[key] = (lay, rendered)
        return cached[1]

    def staging_table(self, lay: Layout, ext: str) -> str:
        """A temporary staging table of this connection for this table's layout."""
        name = f"vectra_stage_{lay.signature()}"
        if name in self.stages:
            return name
        self.conn.execute(stage_table(name, lay, ext))
        self.stages.add(name)
        return name


class Pool:
    """A small thread-safe pool: connections are made in the caller's thread (so their
    errors are the caller's, exactly) and discarded when broken or left mid-transaction."""

    def __init__(self, connect: Any, size: int, timeout: float) -> None:
        self._connect = connect
        self._size = size
        self._timeout = timeout
        self._idle: list[Conn] = []
        self._open = 0
        self._closed = False
        self._cond = threading.Condition()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Conn]:
        item = self._get()
        try:
            yield item
        finally:
            self._put(item)

    def _get(self) -> Conn:
        deadline = time.monotonic() + self._timeout
        with self._cond:
            while True:
                if self._closed:
                    raise FatalError("the pgvector provider is closed", provider="pgvector")
                if self._idle:
                    return self._idle.pop()
                if self._open < self._size:
                    self._open += 1
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RetryableError(
                        f"no free database connection after {self._timeout:g}s "
                        f"(pool_size {self._size})",
                        provider="pgvector",
                    )
                self._cond.wait(left)
        try:
            return Conn(self._connect())
        except BaseException:
            with self._cond:
                self._open -= 1
                self._cond.notify()
            raise

    def _put(self, item: Conn) -> None:
        conn = item.conn
        healthy = not conn.closed and not conn.broken
        if healthy and conn.info.transaction_status != TransactionStatus.IDLE:
            try:
                conn.rollback()
            except psycopg.Error:
                healthy = False
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(item)
            else:
                self._open -= 1
                with contextlib.suppress(Exception):
                    conn.close()
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._cond.notify_all()
        for item in idle:
            with contextlib.suppress(Exception):
                item.conn.close()
