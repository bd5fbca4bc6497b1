"""``vectra providers``."""

from __future__ import annotations

from vectra_io.providers.registry import providers_info

from . import render
from .app import command
from .output import UI


@command("providers", short_help="List the providers and whether their drivers are installed.")
def providers_cmd(ui: UI) -> int:
    """List every provider: whether its driver is installed, how to install it, the form of
    its URL and the environment variable its API key is read from."""
    info = providers_info()
    ui.result(info, lambda out: render.providers_result(out, info))
    return 0
