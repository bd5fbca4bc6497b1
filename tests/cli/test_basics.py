"""The command line itself: version, providers, usage errors, error lines, secrets."""

from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest

import vectra_io
from tests.cli.helpers import expect, run_vectra

SECRET = "sk-live-7Hq2ZxV9pLmN4rT8"
URL_PASSWORD = "pw-9f8e7d6c5b"


def test_version() -> None:
    result = expect(run_vectra("--version"), 0)
    assert result.stdout.split() == ["vectra", vectra_io.__version__]


def test_help_documents_exit_codes() -> None:
    out = expect(run_vectra("--help"), 0).stdout
    for line in ("0    success", "2    usage or configuration error", "4    verification mismatch"):
        assert line in out
    for command in ("export", "import", "verify", "migrate", "inspect", "validate", "providers"):
        assert command in out


def test_providers_json() -> None:
    result = expect(run_vectra("providers", "--json"), 0)
    providers = {p["name"]: p for p in result.json}
    assert {"memory", "lancedb", "qdrant", "pgvector"} <= set(providers)
    assert providers["memory"]["installed"] is True
    assert providers["qdrant"]["api_key_env"] == "QDRANT_API_KEY"
    assert providers["lancedb"]["extra"] == "lancedb"
    assert providers["lancedb"]["url"].startswith("lancedb://")
    assert result.stderr == ""


def test_providers_human() -> None:
    out = expect(run_vectra("providers"), 0).stdout
    assert 'pip install "vectra-io[lancedb]"' in out
    assert "QDRANT_API_KEY" in out


@pytest.mark.parametrize(
    "args",
    [
        ("export",),  # missing arguments
        ("export", "memory://x", "snap", "--batch-size", "0"),
        ("export", "memory://x", "snap", "--index", "a=b"),  # no renames on export
    ],
)
def test_usage_error_exits_2(args: tuple[str, ...], tmp_path: Path) -> None:
    result = expect(run_vectra(*args, cwd=tmp_path), 2)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unknown_provider_is_one_line_exit_2(tmp_path: Path) -> None:
    result = expect(run_vectra("export", "nosuch://host:1", tmp_path / "snap"), 2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: source nosuch://host:1: unknown provider 'nosuch'")
    assert "lancedb" in lines[0]  # names the known providers
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_verbose_shows_traceback(tmp_path: Path) -> None:
    result = expect(run_vectra("-v", "export", "nosuch://host:1", tmp_path / "snap"), 2)
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")
    # -v after the command works too
    result = expect(run_vectra("export", "nosuch://host:1", tmp_path / "snap", "-v"), 2)
    assert "Traceback (most recent call last)" in result.stderr


def test_error_in_json_mode_is_one_json_document(tmp_path: Path) -> None:
    result = expect(run_vectra("inspect", tmp_path / "nothing-here", "--json"), 1)
    doc = result.json
    assert doc["ok"] is False
    assert doc["exit_code"] == 1
    assert doc["error_type"] == "SnapshotError"
    assert "manifest.json" in doc["error"]
    assert result.stderr.startswith("error: ")


def test_snapshot_and_url_mixed_up(tmp_path: Path) -> None:
    result = expect(run_vectra("import", "memory://x", tmp_path / "snap"), 2)
    assert "provider URL" in result.stderr


# -- secrets ---------------------------------------------------------------------------

LEAKY = '''
"""A deliberately careless provider: it puts the key in its errors, logs and endpoint."""
import logging
import sys
import types

from vectra_io.errors import AuthError
from vectra_io.providers import registry
from vectra_io.providers.base import ProviderBase


class LeakyProvider(ProviderBase):
    name = "leaky"

    def __init__(self, location, *, api_key=None, tls=False, **options):
        self.location = location
        self.endpoint = "leaky://" + location.rpartition("@")[2]
        self.key = api_key
        log = logging.getLogger("vectra_io.leaky")
        log.warning("connecting to %s with key %s", location, api_key)

    def _fail(self, *args, **kwargs):
        raise AuthError(f"key {self.key!r} refused by {self.location}", provider="leaky",
                        endpoint=self.endpoint)

    list_indexes = describe_index = list_namespaces = count = scan = fetch = _fail
    create_index = upsert = delete_index = _fail


module = types.ModuleType("vectra_io.providers.leaky")
module.LeakyProvider = LeakyProvider
sys.modules[module.__name__] = module
registry.PROVIDERS["leaky"] = registry.ProviderEntry(
    "leaky", "LeakyProvider", None, (), "LEAKY_API_KEY", "leaky://host"
)
'''


@pytest.fixture
def leaky_env(tmp_path: Path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent(LEAKY))
    return {"PYTHONPATH": str(site)}


@pytest.mark.parametrize(
    ("how", "verbose"), [("env", ()), ("option", ("-v",)), ("url", ("-vv", "--json"))]
)
def test_api_key_never_printed(
    how: str, verbose: tuple[str, ...], leaky_env: dict[str, str], tmp_path: Path
) -> None:
    env = dict(leaky_env)
    args: list[str | Path] = ["export", "leaky://h:1", tmp_path / "snap", *verbose]
    if how == "env":
        env["LEAKY_API_KEY"] = SECRET
    elif how == "option":
        args += ["--api-key", SECRET]
    else:
        args[1] = f"leaky://admin:{URL_PASSWORD}@h:1"
    result = expect(run_vectra(*args, env=env), 1)
    secret = URL_PASSWORD if how == "url" else SECRET
    assert "refused" in result.stderr  # the error was reported...
    assert secret not in result.stdout  # ...without the secret
    assert secret not in result.stderr
    assert "***" in result.stderr
    if "-v" in verbose:
        assert "Traceback" in result.stderr
    for path in (tmp_path / "snap").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace")


def test_api_key_never_printed_for_source_of_migrate(leaky_env: dict[str, str]) -> None:
    result = expect(
        run_vectra(
            "migrate", "leaky://a:1", "memory://t", "--source-api-key", SECRET, env=leaky_env
        ),
        1,
    )
    assert SECRET not in result.stdout + result.stderr
    assert "error: " in result.stderr


@pytest.mark.skipif(
    importlib.util.find_spec("vectra_io.providers.qdrant") is None,
    reason="the qdrant provider is not there yet",
)
@pytest.mark.parametrize("how", ["env", "option"])
def test_api_key_not_in_connection_error(how: str, tmp_path: Path) -> None:
    env = {"QDRANT_API_KEY": SECRET} if how == "env" else {}
    extra = ["--api-key", SECRET] if how == "option" else []
    result = run_vectra("-v", "export", "qdrant://127.0.0.1:9", tmp_path / "snap", *extra, env=env)
    assert result.code in (1, 2), str(result)
    assert "error: " in result.stderr
    assert SECRET not in result.stdout + result.stderr
