"""The provider conformance suite: every provider must pass it (see conftest.py)."""
