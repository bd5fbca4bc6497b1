"""Entry point of the `vectra` command."""

from __future__ import annotations


def main() -> None:
    import sys

    from .app import run

    sys.exit(run())
