"""Deterministic kill points inside a ``vectra`` subprocess (loaded by ``sitecustomize``).

``VECTRA_FAULT_KILL_AT=final-checkpoint``
    SIGKILL the process right after the first manifest save that records the last part of
    a namespace (its cursor is null: the source scan is finished), before anything else
    is written: the moment between "the namespace's last part is checkpointed" and "the
    export goes on".
"""

from __future__ import annotations

import os
import signal
from typing import Any

ENV = "VECTRA_FAULT_KILL_AT"


def install() -> None:
    point = os.environ.get(ENV)
    if not point:
        return
    if point != "final-checkpoint":
        raise RuntimeError(f"unknown {ENV}={point!r}")
    from vectra_io.snapshot import manifest as mf

    real_save = mf.save

    def save(store: Any, manifest: dict[str, Any]) -> None:
        real_save(store, manifest)
        for entry in manifest["indexes"].values():
            for ns in entry["namespaces"].values():
                if ns["parts"] and ns["cursor"] is None:
                    os.kill(os.getpid(), signal.SIGKILL)

    mf.save = save
