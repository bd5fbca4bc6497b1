"""Reaching a Milvus store: parsing a ``milvus://`` location into the pymilvus URI, the
printable endpoint, the database and whether it is an embedded Milvus Lite file; the
gRPC options of the provider's own connection; and the process-wide locks that send one
write at a time to each Milvus Lite store.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from ...errors import ConfigError

DEFAULT_PORT = 19530

#: The provider's own gRPC connection (closed with it, not pooled for the whole process),
#: sending no keepalive pings while no call is active. pymilvus pings every 10 s even when
#: idle; Milvus Lite's gRPC server counts those as abuse and drops the connection with
#: GOAWAY "too many pings", which then fails a later call or connection in the process.
CONNECTION_OPTIONS: dict[str, Any] = {
    "dedicated": True,
    "grpc_options": {"grpc.keepalive_permit_without_calls": False},
}

#: calls that change a Milvus Lite store, sent one at a time per store (see the package docstring)
LITE_WRITES = frozenset({"upsert", "insert", "delete", "flush"})
_lite_write_locks: dict[str, threading.Lock] = {}
_lite_write_locks_guard = threading.Lock()


def lite_write_lock(endpoint: str) -> threading.Lock:
    """The process-wide lock of the Milvus Lite store at ``endpoint``."""
    with _lite_write_locks_guard:
        return _lite_write_locks.setdefault(endpoint, threading.Lock())


def parse_location(location: str, tls: bool, db: str | None) -> tuple[str, str, str | None, bool]:
    """-> (pymilvus uri, printable endpoint, database, embedded)."""
    loc = location.strip()
    if not loc:
        raise ConfigError(
            "milvus needs a location: milvus://host:19530 or milvus:///path/to/lite.db"
        )
    if loc.startswith(("/", "./", "../", "~")):
        path = os.path.abspath(os.path.expanduser(loc))
        if not path.endswith(".db"):
            raise ConfigError(
                f"a Milvus Lite location must end in .db (pymilvus's rule), got {location!r}"
            )
        if not os.path.isdir(os.path.dirname(path)):
            raise ConfigError(f"the directory of the Milvus Lite store does not exist: {path}")
        if db not in (None, "", "default"):
            raise ConfigError("Milvus Lite files have one database: drop the db option")
        return path, f"milvus://{path}", None, True
    hostport, _, path = loc.partition("/")
    if "@" in hostport:
        raise ConfigError("put Milvus credentials in MILVUS_TOKEN (or the api key), not in the URL")
    if "?" in loc or "#" in loc:
        raise ConfigError(f"unexpected query or fragment in the Milvus location {location!r}")
    if hostport.startswith("["):
        host, _, rest = hostport[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
        host_out = f"[{host}]"
    else:
        host, _, port_text = hostport.partition(":")
        host_out = host
    if not host:
        raise ConfigError(f"no host in the Milvus location {location!r}")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise ConfigError(f"bad port in the Milvus location {location!r}") from None
    path = path.strip("/")
    if "/" in path:
        raise ConfigError(f"the Milvus location takes at most a database: {location!r}")
    if path and db and path != db:
        raise ConfigError(f"database {path!r} in the URL and db={db!r} disagree")
    database = path or db or None
    scheme = "https" if tls else "http"
    uri = f"{scheme}://{host_out}:{port}"
    endpoint = f"milvus{'+https' if tls else ''}://{host_out}:{port}"
    if database:
        endpoint += f"/{database}"
    return uri, endpoint, database, False
