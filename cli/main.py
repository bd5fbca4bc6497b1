"""Entry point of the `vectra` command."""

from __future__ import annotations


def main() -> None:
    from .app import cli

    cli()
