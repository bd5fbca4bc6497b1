"""Where output goes: consoles, JSON results, logging, and secret redaction.

stdout carries the result: one JSON document with ``--json``, otherwise the
human rendering. Progress, log messages and errors always go to stderr; with
``--json`` the human rendering goes to stderr as well, so stdout holds exactly
one JSON document. Every stream is wrapped so that known secrets (API keys given
on the command line or in the providers' environment variables, passwords in
URLs) are replaced by ``***`` before anything is written.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterable
from typing import IO, Any
from urllib.parse import unquote

from rich.console import Console
from rich.logging import RichHandler

REDACTED = "***"
#: secrets shorter than this are not redacted (they would garble unrelated text)
MIN_SECRET_LENGTH = 4
#: line width of the human output when it does not go to a terminal
PIPE_WIDTH = 200


class Secrets:
    """The set of strings that must never be written anywhere."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def add(self, value: str | None) -> None:
        if value and len(value) >= MIN_SECRET_LENGTH:
            self._values.add(value)
            decoded = unquote(value)
            if decoded != value and len(decoded) >= MIN_SECRET_LENGTH:
                self._values.add(decoded)

    def add_from_env(self, names: Iterable[str | None]) -> None:
        for name in names:
            if name:
                self.add(os.environ.get(name))

    def redact(self, text: str) -> str:
        # longest first, so that a secret containing another is replaced whole
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return text


class RedactingStream:
    """A text stream wrapper that redacts secrets from everything written through it."""

    def __init__(self, stream: IO[str], secrets: Secrets) -> None:
        self._stream = stream
        self._secrets = secrets

    def write(self, text: str) -> int:
        self._stream.write(self._secrets.redact(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        try:
            return self._stream.isatty()
        except (AttributeError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class UI:
    """The consoles of one run."""

    def __init__(self, secrets: Secrets, *, json_mode: bool, quiet: bool) -> None:
        self.secrets = secrets
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout = RedactingStream(sys.stdout, secrets)
        self.stderr = RedactingStream(sys.stderr, secrets)
        self.err = _console(self.stderr)
        #: where the human rendering of a result goes (never stdout with --json)
        self.out = self.err if json_mode else _console(self.stdout)

    @property
    def interactive(self) -> bool:
        """True when stderr is a terminal (live progress bars)."""
        return self.err.is_terminal

    def emit_json(self, document: Any) -> None:
        text = json.dumps(document, indent=2, ensure_ascii=False, default=_json_default)
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def result(self, document: Any, render: Callable[[Console], None]) -> None:
        """Show a command's result: one JSON document on stdout with --json, otherwise the
        human rendering on stdout."""
        if self.json_mode:
            self.emit_json(document)
        else:
            render(self.out)

    def note(self, message: str) -> None:
        """A human status line on stderr (not shown with --quiet)."""
        if not self.quiet:
            self.err.print(message, markup=False, highlight=False)

    def warn(self, message: str) -> None:
        self.err.print(f"warning: {message}", markup=False, highlight=False)

    def error_line(self, message: str) -> None:
        one_line = " ".join(message.split())
        self.stderr.write(f"error: {one_line}\n")
        self.stderr.flush()


def _console(stream: RedactingStream) -> Console:
    # a terminal gets its own width; a pipe or file gets wide lines rather than cut ones
    width = None if stream.isatty() or os.environ.get("COLUMNS") else PIPE_WIDTH
    return Console(file=stream, highlight=False, width=width)  # type: ignore[arg-type]


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


class _RedactFilter(logging.Filter):
    def __init__(self, secrets: Secrets) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:
            return True
        record.msg, record.args = self.secrets.redact(message), None
        return True


_HANDLER_MARK = "_vectra_cli_handler"


class _PlainFormatter(logging.Formatter):
    """``warning: message`` (like ``error: ...``); with -v also the time and logger name."""

    def __init__(self, *, with_name: bool) -> None:
        super().__init__("%(asctime)s %(name)s: %(message)s" if with_name else "%(message)s")
        self.with_name = with_name

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {super().format(record)}"


def setup_logging(ui: UI, verbose: int) -> None:
    """Send the library's log records to stderr: WARNING, INFO with -v, DEBUG with -vv."""
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logger = logging.getLogger("vectra_io")
    for old in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(old)
    handler: logging.Handler
    if ui.interactive:
        handler = RichHandler(
            console=ui.err,
            show_path=verbose >= 2,
            show_time=verbose >= 1,
            markup=False,
            rich_tracebacks=False,
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(ui.stderr)
        handler.setFormatter(_PlainFormatter(with_name=verbose > 0))
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(_RedactFilter(ui.secrets))
    handler.setLevel(level)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def ns_label(namespace: str | None) -> str:
    """A namespace as written on the command line (the default one is ``__default__``)."""
    if namespace is None:
        return "-"
    return "__default__" if namespace == "" else namespace
