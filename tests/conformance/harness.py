"""What the conformance suite needs to know about one provider under test.

A provider's harness file (``harness_<provider>.py``, see ``conftest.py``) builds a
:class:`Harness`; the tests never contain provider-specific logic.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from vectra_io.errors import IndexNotFoundError
from vectra_io.providers.base import Provider


def unique_index_name(base: str) -> str:
    """``vc`` + the base's letters and digits + a random hex suffix, e.g. ``vcscan3f9a0c12be``.

    Lower-case letters and digits only, starting with a letter, at most 36 characters:
    valid as a table, collection, class-after-capitalising or Pinecone index name.
    """
    clean = re.sub(r"[^a-z0-9]", "", base.lower())[:24]
    return f"vc{clean}{uuid.uuid4().hex[:10]}"


def delete_index_if_exists(provider: Provider, index: str) -> None:
    """The default cleanup: delete the index, ignoring one that does not exist."""
    with contextlib.suppress(IndexNotFoundError):
        provider.delete_index(index)


@dataclass
class Harness:
    """One provider under test.

    ``factory`` returns a new provider connected to the store under test (each call
    a new connection to the same data; the suite closes it). ``index_name`` turns a
    base name into a unique valid index name; ``cleanup`` removes an index the suite
    created (called at teardown, also for indexes a test already deleted or never
    managed to create). ``skip`` maps a test function name (e.g.
    ``"test_metadata_round_trip"``) to the reason this provider deviates; prefer
    declaring a capability. ``xfail`` maps a test function name to a known bug: the
    test is a strict xfail, so it turns into an error once the bug is fixed.
    """

    name: str
    factory: Callable[[], Provider]
    index_name: Callable[[str], str] = unique_index_name
    cleanup: Callable[[Provider, str], None] = delete_index_if_exists
    skip: dict[str, str] = field(default_factory=dict)
    xfail: dict[str, str] = field(default_factory=dict)
