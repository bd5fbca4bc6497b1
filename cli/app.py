"""The ``vectra`` command group: global options, error handling and exit codes.

Exit codes (the README copies this table):

====  ===================================================================
0     success
1     failure: a provider or snapshot error (also: internal errors)
2     usage or configuration error (bad option, bad URL, unknown provider,
      missing driver, missing index); click's own usage errors are 2 too
3     finished, but some records failed (the result lists their ids; ``import``
      keeps them for ``--retry-failed``)
4     verification mismatch (``verify``, ``migrate``, ``demo``); for ``plan``: the plan
      found problems or records that would be refused, changed or have their ids mapped
130   interrupted (Ctrl-C); an interrupted export or import resumes when run
      again
====  ===================================================================

Errors are printed as one line ``error: ...`` on stderr; ``-v`` adds the
traceback (and INFO logging, ``-vv`` DEBUG). With ``--json`` an error is also
reported on stdout as ``{"ok": false, "error": ..., "exit_code": ...}``.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click

from vectra_io import __version__
from vectra_io.errors import ConfigError, VectraError
from vectra_io.providers.registry import PROVIDERS

from .endpoints import CLIError
from .options import storage_secrets
from .output import UI, Secrets, setup_logging

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_RECORD_ERRORS = 3
EXIT_MISMATCH = 4
EXIT_INTERRUPTED = 130

EPILOG = """\b
Endpoints are provider URLs, <provider>://<location> (<provider>+https:// for
TLS), e.g. lancedb:///data/db, qdrant://localhost:6333; `vectra providers`
lists them. A snapshot is a directory (or file://, s3:// URL; options of its
filesystem with --storage-option, or the standard AWS_* variables for S3).
API keys come from the provider's environment variable (see `vectra
providers`) or --api-key; they are never printed.

\b
Interrupted? Run the same command again: export continues from the
checkpoint in the snapshot's manifest, import from its state file
($VECTRA_STATE_DIR, else $XDG_STATE_HOME/vectra-io, else
~/.local/state/vectra-io; --state PATH). Records that failed are kept beside
the state file: `vectra import SNAPSHOT TARGET --retry-failed` replays them.

\b
Exit codes:
  0    success
  1    failure (provider or snapshot error)
  2    usage or configuration error
  3    finished, but some records failed (listed in the result)
  4    verification mismatch (plan: problems or records with issues)
  130  interrupted (export and import resume when run again)
"""


@dataclass
class State:
    """Options shared by every command (they may be given before or after the command)."""

    json: bool = False
    verbose: int = 0
    quiet: bool = False
    secrets: Secrets = field(default_factory=Secrets)
    _ui: UI | None = None

    def __post_init__(self) -> None:
        self.secrets.add_from_env(e.api_key_env for e in PROVIDERS.values())
        self.secrets.add_from_env(SECRET_ENV)

    @property
    def ui(self) -> UI:
        if self._ui is None:
            self._ui = UI(self.secrets, json_mode=self.json, quiet=self.quiet)
        return self._ui

    def start(self) -> UI:
        """Called when a command runs: options are all known, set up output and logging."""
        self._ui = None
        ui = self.ui
        setup_logging(ui, self.verbose)
        return ui


def _state() -> State:
    return click.get_current_context().ensure_object(State)


def _set_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).json = True


def _set_quiet(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(State).quiet = True


def _set_verbose(ctx: click.Context, _: click.Parameter, value: int) -> None:
    if value:
        ctx.ensure_object(State).verbose += value


F = TypeVar("F", bound=Callable[..., Any])
COMMON_PARAMS = ("json_output", "verbose", "quiet")
SECRET_PARAMS = ("api_key", "source_api_key")
#: credentials of the snapshot's filesystem that may sit in the environment
SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def common_options(f: F) -> F:
    """``--json``, ``-v``, ``-q``: accepted by the group and by every command."""
    f = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_quiet,
        help="No progress and no status lines (errors and results only).",
    )(f)
    f = click.option(
        "-v",
        "--verbose",
        count=True,
        expose_value=False,
        callback=_set_verbose,
        help="Show tracebacks and INFO logging; -vv for DEBUG.",
    )(f)
    f = click.option(
        "--json",
        "json_output",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Print the result as one JSON document on stdout (human output goes to stderr).",
    )(f)
    return f


@click.group(
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(
    __version__, "-V", "--version", prog_name="vectra", message="%(prog)s %(version)s"
)
@common_options
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Move vector databases between providers through exact, verifiable snapshots.

    \b
    vectra export qdrant://localhost:6333 ./snap      # provider -> snapshot
    vectra inspect ./snap                             # what is in it
    vectra validate ./snap                            # offline integrity check
    vectra plan ./snap qdrant://localhost:6333        # what an import would do
    vectra import ./snap lancedb:///data/db           # snapshot -> provider
    vectra verify ./snap lancedb:///data/db --sample 100
    vectra migrate qdrant://localhost:6333 lancedb:///data/db   # direct copy
    vectra demo                                       # try it all locally
    """
    ctx.ensure_object(State)


def command(name: str, **settings: Any) -> Callable[[F], Any]:
    """Register a ``vectra`` command. The function receives the UI first and returns an
    exit code (or None for 0)."""

    def decorate(f: F) -> Any:
        @functools.wraps(f)
        def run(*args: Any, **kwargs: Any) -> int:
            state = _state()
            for key in SECRET_PARAMS:  # known before anything can fail
                state.secrets.add(kwargs.get(key))
            for value in storage_secrets(kwargs.get("storage_options") or {}):
                state.secrets.add(value)
            ui = state.start()
            code = f(ui, *args, **kwargs)
            return int(code or 0)

        cmd = cli.command(name, **settings)(common_options(run))
        cmd.params.sort(key=lambda p: p.name in COMMON_PARAMS)  # shared options last in --help
        return cmd

    return decorate


# -- running and error handling ------------------------------------------------------


def _traceback_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _report(state: State, exc: BaseException, message: str, code: int, kind: str) -> int:
    ui = state.ui
    if state.verbose:
        ui.stderr.write(_traceback_text(exc))
    ui.error_line(message)
    if state.json:
        ui.emit_json(
            {
                "ok": False,
                "error": state.secrets.redact(" ".join(message.split())),
                "error_type": kind,
                "exit_code": code,
            }
        )
    return code


def run(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    state = State()
    try:
        rv = cli.main(args=argv, prog_name="vectra", standalone_mode=False, obj=state)
    except click.exceptions.ClickException as exc:  # usage errors: click's own message
        exc.show(file=state.ui.stderr)  # type: ignore[arg-type]
        return exc.exit_code
    except click.exceptions.Abort as exc:
        message = "interrupted (run the same command again to resume an export or import)"
        return _report(state, exc, message, EXIT_INTERRUPTED, "Interrupted")
    except CLIError as exc:
        return _report(state, exc, str(exc), exc.exit_code, exc.kind)
    except ConfigError as exc:
        return _report(state, exc, str(exc), EXIT_USAGE, type(exc).__name__)
    except VectraError as exc:
        return _report(state, exc, str(exc), EXIT_FAILURE, type(exc).__name__)
    except Exception as exc:
        hint = "" if state.verbose else "; run again with -v for the traceback"
        message = f"internal error: {type(exc).__name__}: {exc}{hint}"
        return _report(state, exc, message, EXIT_FAILURE, "InternalError")
    return rv if isinstance(rv, int) else 0


def main() -> None:
    sys.exit(run())


# the commands register themselves on import
from . import cmd_info, cmd_migrate, cmd_plan, cmd_snapshot, demo  # noqa: E402, F401
