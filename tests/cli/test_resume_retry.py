"""Resume, restart, failed records, retries and storage options at the command line.

The real ``vectra`` executable runs in a subprocess on embedded LanceDB databases; the
failing and flaky targets are ``faultylance://`` (tests/faults/providers.py), loaded into
the subprocess through ``sitecustomize``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import click
import numpy as np
import pytest

from tests.cli.helpers import Result, expect, run_vectra
from tests.faults.providers import site_env
from vectra_io import Client

lancedb = pytest.importorskip("lancedb")
pytest.importorskip("vectra_io.providers.lancedb")

SIZES = {"": 400, "b": 200}  # records per namespace of index "docs" (dim 8)
TOTAL = sum(SIZES.values())
REFUSED = r"(a|b)-00[0-4]7"  # a-0007 ... a-0047 and b-0007 ... b-0047: 5 per namespace


def _id(namespace: str, i: int) -> str:
    return f"{'a' if namespace == '' else 'b'}-{i:04d}"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"lancedb://{tmp_path_factory.mktemp('cli-resume') / 'source.lancedb'}"
    rng = np.random.default_rng(11)
    with Client(url=url) as client:
        client.create_index("docs", 8, "cosine")
        for ns, n in SIZES.items():
            client.upsert(
                "docs",
                [
                    {
                        "id": _id(ns, i),
                        "values": rng.standard_normal(8).astype(np.float32),
                        "metadata": {"i": i, "ns": ns, "nested": {"ok": i % 2 == 0}},
                    }
                    for i in range(n)
                ],
                namespace=ns or None,
            )
    return url


@pytest.fixture(scope="module")
def snapshot(source: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    snap = tmp_path_factory.mktemp("cli-resume-snap") / "snap"
    expect(run_vectra("export", source, snap, "--part-rows", "100", "--batch-size", "50"), 0)
    return snap


def lance_counts(path: Path) -> dict[str, int]:
    table = lancedb.connect(str(path)).open_table("docs")
    return {ns: table.count_rows(f"namespace = '{ns}'") for ns in SIZES}


def part_inodes(snap: Path) -> dict[str, tuple[int, int]]:
    """Identity of each part file: (inode, mtime); a rewritten file changes it."""
    return {
        str(p.relative_to(snap)): (p.stat().st_ino, p.stat().st_mtime_ns)
        for p in snap.rglob("part-*.parquet")
    }


def interrupt(snap: Path, namespace_key: str = "b") -> None:
    """Make ``snap`` look like an export killed before namespace ``namespace_key``."""
    manifest = json.loads((snap / "manifest.json").read_text())
    manifest["complete"], manifest["completed_at"] = False, None
    entry = manifest["indexes"]["docs"]["namespaces"].pop(namespace_key)
    shutil.rmtree(snap / entry["path"])
    (snap / "manifest.json").write_text(json.dumps(manifest))


# -- help ---------------------------------------------------------------------------------


def test_help_documents_the_options() -> None:
    export = expect(run_vectra("export", "--help"), 0).stdout
    assert "--resume / --restart" in export and "--force" in export
    assert "--no-resume" not in export  # hidden alias
    for text in ("--max-retries N", "default: 7", "--retry-max-time SECONDS", "default: 300"):
        assert text in export
    assert "--storage-option KEY=VALUE" in export and "AWS_" in " ".join(export.split())
    imp = " ".join(expect(run_vectra("import", "--help"), 0).stdout.split())
    for text in ("--state PATH", "--restart", "--retry-failed", "$VECTRA_STATE_DIR"):
        assert text in imp
    assert "~/.local/state/vectra-io" in imp and "--max-retries" in imp
    assert "--max-retries" in expect(run_vectra("migrate", "--help"), 0).stdout
    for command in ("verify", "inspect", "validate"):
        assert "--storage-option" in expect(run_vectra(command, "--help"), 0).stdout


# -- export: --resume / --restart / --force -----------------------------------------------------


def test_export_resume_restart_and_force(source: str, snapshot: Path, tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    shutil.copytree(snapshot, snap)
    args = [source, snap, "--part-rows", "100", "--batch-size", "50"]

    refused = expect(run_vectra("export", *args), 1)
    assert "already holds a complete snapshot" in refused.stderr
    assert "--force" in refused.stderr
    before = part_inodes(snap)
    expect(run_vectra("export", *args, "--force"), 0)
    assert set(part_inodes(snap)) == set(before)
    assert not set(part_inodes(snap).items()) & set(before.items())  # every part rewritten

    # interrupted before namespace b: the default resumes, keeping the parts of ""
    interrupt(snap)
    kept = part_inodes(snap)
    resumed = expect(run_vectra("export", *args, "--json"), 0)
    assert "resuming the interrupted export" in resumed.stderr
    assert "--restart starts over" in resumed.stderr
    rows = {k: v["rows"] for k, v in resumed.json["indexes"]["docs"]["namespaces"].items()}
    assert rows == {"__default__": 400, "b": 200}
    assert all(part_inodes(snap)[p] == ino for p, ino in kept.items())

    # --restart (and its old name --no-resume) start over: every part is written again
    for flag in ("--restart", "--no-resume"):
        interrupt(snap)
        kept = part_inodes(snap)
        again = expect(run_vectra("export", *args, flag, "--json"), 0)
        assert "resuming" not in again.stderr
        assert again.json["complete"] is True
        now = part_inodes(snap)
        assert len(now) == 6 and all(now[p] != ino for p, ino in kept.items())


def test_export_incomplete_snapshot_of_another_source(snapshot: Path, tmp_path: Path) -> None:
    snap = tmp_path / "snap"
    shutil.copytree(snapshot, snap)
    interrupt(snap)
    other = "memory://another-source"
    result = expect(run_vectra("export", other, snap), 1)
    assert "incomplete snapshot of another source" in result.stderr
    expect(run_vectra("export", other, snap, "--restart"), 0)
    assert json.loads((snap / "manifest.json").read_text())["source"]["endpoint"] == other


# -- import: --state, --restart, resume ---------------------------------------------------------


def test_import_state_location_resume_and_restart(snapshot: Path, tmp_path: Path) -> None:
    target = f"lancedb://{tmp_path / 'target.lancedb'}"
    state_dir = tmp_path / "my-state"
    state_dir.mkdir()

    first = expect(run_vectra("import", snapshot, target, "--state", state_dir, "--json"), 0)
    doc = first.json
    assert doc["imported_count"] == TOTAL and doc["skipped_count"] == 0
    assert Path(doc["state_file"]).parent == state_dir
    assert doc["state_dir"] == str(state_dir)
    assert doc["pending_failed"] == [] and doc["retry_command"] is None

    human = expect(run_vectra("import", snapshot, target, "--state", state_dir), 0)
    assert f"State: {doc['state_file']}" in " ".join(human.stdout.split())
    assert "600 skipped, imported by an earlier run" in human.stdout

    restarted = expect(
        run_vectra("import", snapshot, target, "--state", state_dir, "--restart", "--json"), 0
    )
    assert restarted.json["imported_count"] == TOTAL
    assert restarted.json["skipped_count"] == 0
    assert restarted.json["mode"] == "restart"
    assert lance_counts(tmp_path / "target.lancedb") == SIZES  # replaced, not duplicated

    # a file path is the state file itself; without --state: $VECTRA_STATE_DIR
    state_file = tmp_path / "elsewhere" / "progress.json"
    other = f"lancedb://{tmp_path / 'other.lancedb'}"
    doc = expect(run_vectra("import", snapshot, other, "--state", state_file, "--json"), 0).json
    assert doc["state_file"] == str(state_file) and state_file.is_file()
    doc = expect(run_vectra("import", snapshot, other, "--json"), 0).json
    assert doc["skipped_count"] == 0  # another state: its own progress
    assert Path(doc["state_file"]).parent == tmp_path / "vectra-state"  # tests/conftest.py


# -- failed records, --retry-failed and exit code 3 ---------------------------------------------


def _failing(tmp_path: Path) -> tuple[dict[str, str], Path]:
    refuse = tmp_path / "refuse.txt"
    refuse.write_text(REFUSED)
    return site_env(VECTRA_FAULT_REFUSE=str(refuse)), refuse


def test_failed_records_are_counted_kept_and_retried(snapshot: Path, tmp_path: Path) -> None:
    env, refuse = _failing(tmp_path)
    db = tmp_path / "target.lancedb"
    target = f"faultylance://{db}"
    state = tmp_path / "state"
    state.mkdir()
    args = [snapshot, target, "--state", state, "--namespace", "__default__", "--namespace", "b"]

    doc = expect(run_vectra("import", *args, "--json", env=env), 3).json
    assert doc["failed_count"] == 10 and doc["imported_count"] == TOTAL - 10
    failed = {(ns["target_namespace"], ns["failed"]) for ns in doc["namespaces"]}
    assert failed == {("", 5), ("b", 5)}
    assert doc["pending_failed"] == [
        {"target_index": "docs", "target_namespace": "", "records": 5},
        {"target_index": "docs", "target_namespace": "b", "records": 5},
    ]
    assert doc["pending_failed_count"] == 10
    assert Path(doc["failed_records"]).is_dir()
    assert Path(doc["failed_records"]).parent == state
    retry = doc["retry_command"]
    assert retry.startswith(f"vectra import {snapshot} {target} ")
    assert retry.endswith(f"--state {state} --retry-failed")
    assert "--namespace __default__ --namespace b" in retry
    ids = sorted(i for e in doc["errors"] for i in e["ids"])
    assert ids == sorted([f"a-00{d}7" for d in range(5)] + [f"b-00{d}7" for d in range(5)])

    # a plain re-run has nothing left to import but the failed records are still pending
    human = expect(run_vectra("import", *args, env=env), 3)
    out = " ".join(human.stdout.split())
    assert "10 failed records kept for retry:" in out
    assert "docs/__default__: 5 records" in out and "docs/b: 5 records" in out
    assert f"files: {doc['failed_records']}" in out
    assert f"retry: {retry}" in out
    assert "State: " in out

    # retried while the target still refuses them: still pending, still exit 3
    again = expect(run_vectra("import", *args, "--retry-failed", "--json", env=env), 3).json
    assert again["mode"] == "retry-failed"
    assert again["failed_count"] == 10 and again["pending_failed_count"] == 10

    refuse.unlink()
    done = expect(run_vectra("import", *args, "--retry-failed", "--json", env=env), 0).json
    assert done["imported_count"] == 10 and done["failed_count"] == 0
    assert done["pending_failed"] == [] and done["pending_failed_count"] == 0
    assert lance_counts(db) == SIZES
    human = expect(run_vectra("import", *args, "--retry-failed", env=env), 0)
    assert "No failed records are left to retry." in human.stdout

    conflict = expect(run_vectra("import", *args, "--retry-failed", "--restart", env=env), 2)
    assert "--restart" in conflict.stderr and "--retry-failed" in conflict.stderr


# -- retry policy ---------------------------------------------------------------------------------


def _flaky_import(snapshot: Path, tmp_path: Path, name: str, *extra: str) -> Result:
    env = site_env(VECTRA_FAULT_TRANSIENT="2")  # the first 2 upserts fail with a 503
    target = f"faultylance://{tmp_path / name}"
    args = ["import", snapshot, target, "--index", "docs", "--concurrency", "1"]
    return run_vectra(*args, "--chunk-size", "100", *extra, "--json", env=env)


def test_max_retries_and_retry_max_time(snapshot: Path, tmp_path: Path) -> None:
    healed = expect(_flaky_import(snapshot, tmp_path, "a.lancedb"), 0).json
    assert healed["imported_count"] == TOTAL and healed["failed_count"] == 0

    for flags in (("--max-retries", "0"), ("--retry-max-time", "0")):
        failed = expect(_flaky_import(snapshot, tmp_path, f"{flags[0]}.lancedb", *flags), 3)
        doc = failed.json
        assert doc["failed_count"] == 200  # two chunks of 100, each tried once
        assert doc["imported_count"] == TOTAL - 200
        assert "injected 503" in doc["errors"][0]["error"]

    one = expect(_flaky_import(snapshot, tmp_path, "c.lancedb", "--max-retries", "1"), 3).json
    assert one["failed_count"] == 100  # first chunk: 2 attempts, both 503; then all is well


def test_migrate_takes_the_retry_options(source: str, tmp_path: Path) -> None:
    env = site_env(VECTRA_FAULT_TRANSIENT="1")
    target = f"faultylance://{tmp_path / 'm.lancedb'}"
    args = ["migrate", source, target, "--concurrency", "1", "--json"]
    doc = expect(run_vectra(*args, "--max-retries", "0", env=env), 3).json
    assert doc["failed_count"] > 0
    target = f"faultylance://{tmp_path / 'n.lancedb'}"
    doc = expect(run_vectra("migrate", source, target, "--json", env=env), 0).json
    assert doc["migrated_count"] == TOTAL


# -- --storage-option ---------------------------------------------------------------------------


def test_storage_option_parsing() -> None:
    from vectra_cli.options import parse_storage_options, storage_secrets

    parsed = parse_storage_options(
        [
            "anon=TRUE",
            "use_ssl=false",
            "max_concurrency=8",
            "offset=-3",
            "key=007",
            "secret=a=b",
            "client_kwargs.region_name=eu-west-1",
            "endpoint_url=http://localhost:9000",
        ]
    )
    assert parsed == {
        "anon": True,
        "use_ssl": False,
        "max_concurrency": 8,
        "offset": -3,
        "key": "007",  # leading zeros: kept as a string
        "secret": "a=b",
        "client_kwargs": {"region_name": "eu-west-1"},
        "endpoint_url": "http://localhost:9000",
    }
    assert sorted(storage_secrets(parsed)) == ["007", "a=b"]
    assert storage_secrets({"client_kwargs": {"aws_session_token": "tok-123"}}) == ["tok-123"]
    for bad in (["novalue"], ["=x"], ["a.=x"], ["k=1", "k=2"], ["a=1", "a.b=2"]):
        with pytest.raises(click.BadParameter):
            parse_storage_options(bad)


def test_storage_option_usage_errors(tmp_path: Path) -> None:
    result = expect(run_vectra("inspect", tmp_path, "--storage-option", "hunter2-secret"), 2)
    assert "KEY=VALUE" in result.stderr
    assert "hunter2-secret" not in result.stderr  # values are not echoed
    result = expect(
        run_vectra("validate", tmp_path, "--storage-option", "a=1", "--storage-option", "a=2"), 2
    )
    assert "given twice" in result.stderr


@pytest.fixture
def s3_bucket(s3_server: Any) -> tuple[Any, str]:
    pytest.importorskip("s3fs")
    bucket = s3_server.make_bucket("cli-storage-options")
    return s3_server, bucket


def test_storage_options_reach_s3(
    s3_bucket: tuple[Any, str], source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Snapshot on S3 (moto): endpoint and credentials given with --storage-option only
    (no AWS_* variables), then with the AWS_* variables only."""
    server, bucket = s3_bucket
    for key in list(__import__("os").environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    secret = "s3cr3t-Kq7ZpW2xYv9"
    options = [
        "--storage-option",
        f"endpoint_url={server.endpoint_url}",
        "--storage-option",
        "key=AKIAVECTRATEST0001",
        "--storage-option",
        f"secret={secret}",
    ]
    snap = f"s3://{bucket}/archive/snap"
    outputs = []
    exported = expect(run_vectra("export", source, snap, *options, "--json"), 0)
    assert exported.json["complete"] is True
    outputs.append(exported)
    info = expect(run_vectra("inspect", snap, *options, "--json"), 0)
    assert info.json["rows"] == TOTAL
    outputs.append(info)
    outputs.append(expect(run_vectra("validate", snap, *options), 0))
    target = f"lancedb://{tmp_path / 't.lancedb'}"
    imported = expect(run_vectra("import", snap, target, *options, "--json"), 0)
    assert imported.json["imported_count"] == TOTAL
    outputs.append(imported)
    verified = expect(run_vectra("verify", snap, target, *options, "--sample", "20", "--json"), 0)
    assert verified.json["match"] is True
    outputs.append(verified)
    for result in outputs:
        assert secret not in result.stdout + result.stderr

    # without options nothing reaches the server ...
    assert run_vectra("inspect", snap, "--json").code != 0
    # ... with the standard AWS_* variables it does
    env = server.env()
    info = expect(run_vectra("inspect", snap, "--json", env=env), 0)
    assert info.json["rows"] == TOTAL
