"""Loaded by every Python process started with this directory on PYTHONPATH: registers the
test-only ``faultylance://`` provider (tests/faults/providers.py) and installs the kill
points asked for in the environment (tests/faults/killpoints.py)."""

from tests.faults import killpoints
from tests.faults.providers import register

register()
killpoints.install()
