"""``faultylance://PATH``: the LanceDB provider with faults injected, for subprocess tests.

A ``vectra`` subprocess gets it through ``sitecustomize`` (:func:`site_env`). Its
behaviour is set by environment variables, all optional:

``VECTRA_FAULT_DELAY``
    seconds every upsert sleeps before writing (a slow target, so that a kill lands while
    chunks are in flight);
``VECTRA_FAULT_ACK_LOG``
    a file to which every upsert appends ``namespace<TAB>id`` lines for the records the
    target committed, flushed and fsynced *before* the upsert returns: the ground truth of
    what the target acknowledged, even when the process is then killed;
``VECTRA_FAULT_REFUSE``
    a file holding a regular expression: while it exists, records whose id matches it
    (``re.fullmatch``) are refused one by one (``{id: reason}``), the others are written;
``VECTRA_FAULT_TRANSIENT``
    the first N upserts of the process fail with a RetryableError (a 503).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import threading
import time
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

NAME = "faultylance"
SITE = Path(__file__).parent / "site"
ROOT = Path(__file__).parents[2]


def site_env(**faults: str) -> dict[str, str]:
    """Environment entries that load the provider into a subprocess (plus ``faults``)."""
    path = os.pathsep.join([str(SITE), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {"PYTHONPATH": path.rstrip(os.pathsep), **faults}


def _provider_class() -> type:
    from vectra_io.errors import RetryableError
    from vectra_io.providers.lancedb import LanceDBProvider

    class FaultyLanceDB(LanceDBProvider):
        name: ClassVar[str] = NAME

        def __init__(self, location: str, **kwargs: Any) -> None:
            super().__init__(location, **kwargs)
            self.endpoint = f"{NAME}://{location}"
            self.delay = float(os.environ.get("VECTRA_FAULT_DELAY", "0") or 0)
            self.ack_log = os.environ.get("VECTRA_FAULT_ACK_LOG") or None
            self.refuse_file = os.environ.get("VECTRA_FAULT_REFUSE") or None
            self.transient = int(os.environ.get("VECTRA_FAULT_TRANSIENT", "0") or 0)
            self.calls = 0
            self.lock = threading.Lock()

        def _refused(self, ids: list[str]) -> set[str]:
            if not self.refuse_file:
                return set()
            try:
                pattern = re.compile(Path(self.refuse_file).read_text().strip())
            except FileNotFoundError:
                return set()
            return {i for i in ids if pattern.fullmatch(i)}

        def upsert(
            self, index: str, batch: pa.RecordBatch, namespace: str = ""
        ) -> Mapping[str, str]:
            with self.lock:
                self.calls += 1
                call = self.calls
            if call <= self.transient:
                raise RetryableError(
                    f"injected 503 (upsert {call} of {self.transient} failing)",
                    provider=NAME,
                    endpoint=self.endpoint,
                    index=index,
                )
            if self.delay:
                time.sleep(self.delay)
            refused = self._refused(batch.column("id").to_pylist())
            if refused:
                keep = pc.invert(pc.is_in(batch.column("id"), pa.array(sorted(refused))))
                batch = batch.filter(keep)
            result = dict(super().upsert(index, batch, namespace))
            result.update({i: "injected refusal" for i in refused})
            if self.ack_log:
                acked = [i for i in batch.column("id").to_pylist() if i not in result]
                lines = "".join(f"{namespace}\t{i}\n" for i in acked)
                with self.lock, open(self.ack_log, "a") as log:
                    log.write(lines)
                    log.flush()
                    os.fsync(log.fileno())
            return result

    return FaultyLanceDB


def register() -> None:
    """Make ``faultylance://`` known to the registry of this process."""
    from vectra_io.providers import registry

    base = registry.PROVIDERS["lancedb"]
    fields = {f.name for f in dataclasses.fields(base)}
    changes: dict[str, Any] = {"name": NAME, "cls": "FaultyLanceDB", "extra": None}
    if "module" in fields:  # older registries name the module separately
        changes["module"] = NAME
    if "url_example" in fields:
        changes["url_example"] = f"{NAME}:///path/to/db"
    module = types.ModuleType(f"vectra_io.providers.{NAME}")
    module.FaultyLanceDB = _LazyClass()  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    registry.PROVIDERS[NAME] = dataclasses.replace(base, **changes)


class _LazyClass:
    """Imports lancedb only when the provider is opened (``vectra --help`` stays fast)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _provider_class()(*args, **kwargs)


def ack_lines(path: Path) -> list[tuple[str, str]]:
    """Every ``(namespace, id)`` an ack log holds, repeats included (a torn last line, left
    by a kill in the middle of a write, is ignored)."""
    if not path.exists():
        return []
    *lines, _torn = path.read_text().split("\n")  # the last piece is "" or a torn line
    out = []
    for line in lines:
        ns, sep, rid = line.partition("\t")
        if sep:
            out.append((ns, rid))
    return out


def read_acks(path: Path) -> set[tuple[str, str]]:
    """The ``(namespace, id)`` pairs the target acknowledged."""
    return set(ack_lines(path))
