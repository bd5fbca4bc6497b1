"""The API key is written nowhere: not to stdout or stderr (``-vv``, ``--json``, errors with
tracebacks), not into the snapshot, not into the import state or the failed-records files.

The Qdrant double requires a long random key (with ``+``, ``/`` and ``=``, so that its
URL-encoded and base64 forms differ from it). The real ``vectra`` executable exports a
collection (two namespaces, string ids) and imports it into another collection while the
double refuses a chunk (HTTP 400), so failed-records files exist, then replays them with
``--retry-failed``; the key comes from ``$QDRANT_API_KEY`` or from ``--api-key``. Then
comes what must fail: a wrong key, no key, and a key put in the URL (refused). Every file
under the test's directory (snapshots, ``$VECTRA_STATE_DIR`` with its state files and
failed-records Parquet files, read as bytes and decoded through pyarrow) and everything
each run printed is searched for the key in every form.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from urllib.parse import quote, quote_plus

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.cli.helpers import Result, expect, run_vectra
from tests.doubles.qdrant import QdrantDouble
from vectra_io import Client

DIM = 8
PER_NAMESPACE = 120
NAMESPACES = ("", "tenant-b")


def new_key() -> str:
    """A long random key holding characters that URL-encoding and base64 change."""
    return "vq-" + base64.b64encode(os.urandom(36)).decode() + "+/=" + os.urandom(8).hex()


def forms(secret: str) -> dict[str, str]:
    """The secret as it could be written: as is, JSON-escaped, URL-encoded, base64 (the
    characters of each alignment that depend on the secret alone)."""
    raw = secret.encode()
    found = {
        "raw": secret,
        "json-escaped": secret.replace("/", "\\/"),
        "url-encoded": quote(secret, safe=""),
        "form-encoded": quote_plus(secret),
    }
    for shift in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * shift + raw).decode()
            found[f"{name}+{shift}"] = text[4:-4]
    return found


def parquet_text(path: Path) -> str:
    """Everything a Parquet file holds, decoded: values, column names, metadata."""
    pf = pq.ParquetFile(path)
    parts = [str(pf.metadata.created_by), pf.schema_arrow.to_string()]
    meta = pf.metadata.metadata or {}
    parts += [
        k.decode("utf-8", "replace") + "=" + v.decode("utf-8", "replace") for k, v in meta.items()
    ]
    table = pf.read()
    parts.append(json.dumps(table.to_pylist(), default=repr, ensure_ascii=False))
    return "\n".join(parts)


class Scan:
    """Where a secret was found, among files and captured outputs."""

    def __init__(self, *secrets: str) -> None:
        self.needles = {
            f"{i}:{name}": form for i, s in enumerate(secrets) for name, form in forms(s).items()
        }
        self.files = self.parquet_files = self.outputs = 0

    def text(self, where: str, text: str | bytes) -> list[str]:
        blob = text if isinstance(text, bytes) else text.encode()
        return [
            f"{where}: key {name}" for name, form in self.needles.items() if form.encode() in blob
        ]

    def result(self, number: int, result: Result) -> list[str]:
        """(The hits name the run, not its arguments: some hold a key on purpose.)"""
        self.outputs += 1
        where = f"run {number} (vectra {result.args[0]})"
        return self.text(f"{where} stdout", result.stdout) + self.text(
            f"{where} stderr", result.stderr
        )

    def tree(self, root: Path) -> list[str]:
        hits = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            self.files += 1
            hits += self.text(str(path), path.read_bytes())
            if ".parquet" in path.name:
                self.parquet_files += 1
                hits += self.text(f"{path} (decoded)", parquet_text(path))
        return hits


def test_the_scan_finds_a_key_in_every_form(tmp_path: Path) -> None:
    key = new_key()
    for form in forms(key).values():
        assert Scan(key).text("x", f"...{form}...")
    table = pa.table({"error": [f"denied for {key}"]})  # compressed, without statistics:
    pq.write_table(table, tmp_path / "f.parquet", compression="gzip", write_statistics=False)
    assert key.encode() not in (tmp_path / "f.parquet").read_bytes()  # only decoding finds it
    assert Scan(key).tree(tmp_path) == [f"{tmp_path / 'f.parquet'} (decoded): key 0:raw"]


@pytest.fixture
def secured(
    qdrant_double: QdrantDouble, monkeypatch: pytest.MonkeyPatch
) -> tuple[QdrantDouble, str]:
    """The double requiring a key, holding collection ``src`` (two namespaces)."""
    monkeypatch.delenv("QDRANT_API_KEY", raising=False)
    key = new_key()
    qdrant_double.api_key = key
    rng = np.random.default_rng(3)
    # without a payload index on the namespace key, namespaces are listed by scrolling
    # (the double does not model /facet)
    with Client(url=url(qdrant_double), api_key=key, namespace_index=False) as client:
        client.create_index("src", DIM, "cosine")
        for ns in NAMESPACES:
            records = [
                {
                    "id": f"doc-{i:04d}",
                    "values": rng.standard_normal(DIM).astype(np.float32),
                    "metadata": {"i": i, "note": f"record {i} of {ns or 'default'}"},
                }
                for i in range(PER_NAMESPACE)
            ]
            client.upsert("src", records, namespace=ns or None)
    return qdrant_double, key


def url(double: QdrantDouble) -> str:
    return f"qdrant://127.0.0.1:{double.url.rsplit(':', 1)[1]}"


def count(double: QdrantDouble, collection: str) -> int:
    return len(double.stored_points(collection))


def test_the_key_is_written_nowhere(
    secured: tuple[QdrantDouble, str], tmp_path: Path, _state_dir: Path
) -> None:
    double, key = secured
    target = url(double)
    by_env = {"QDRANT_API_KEY": key}
    runs: list[Result] = []

    # export: key from the environment (-vv --json), and from --api-key (-vv, human output)
    runs.append(
        expect(run_vectra("export", target, tmp_path / "snap", "-vv", "--json", env=by_env), 0)
    )
    exported = runs[-1].json["indexes"]["src"]["namespaces"]
    assert sum(ns["rows"] for ns in exported.values()) == len(NAMESPACES) * PER_NAMESPACE
    runs.append(
        expect(run_vectra("export", target, tmp_path / "snap2", "-vv", "--api-key", key), 0)
    )

    # import, the double refusing one chunk (400): failed-records files are written
    double.faults.operations = {"upsert_points"}
    double.faults.fail_next(1, 400)
    args = ("import", tmp_path / "snap", target, "--index", "src=dst", "--chunk-size", "40")
    runs.append(expect(run_vectra(*args, "-vv", "--json", env=by_env), 3))
    first = runs[-1].json
    assert first["failed_count"] == 40 and first["failed_records"]
    failed_files = list(Path(first["failed_records"]).rglob("*.parquet"))
    assert failed_files and "400" in pq.read_table(failed_files[0]).column("error")[0].as_py()
    double.faults.fail_next(1, 400)
    args2 = ("import", tmp_path / "snap2", target, "--index", "src=dst2", "--chunk-size", "40")
    runs.append(expect(run_vectra(*args2, "-vv", "--api-key", key), 3))
    assert "failed" in runs[-1].stdout and "--retry-failed" in runs[-1].stdout

    # searched now: the replay below removes the failed-records files
    scan = Scan(key)
    hits = scan.tree(tmp_path)
    failed = [p for p in _state_dir.rglob("*.parquet") if ".failed" in str(p)]
    assert len(failed) == 2 and scan.parquet_files >= len(failed) + 4  # + 2 parts x 2 snapshots
    assert len(list(_state_dir.glob("import-*.json"))) == 2  # one state file per target

    # the failed records replayed (the key by --api-key, then by the environment)
    runs.append(expect(run_vectra(*args, "--retry-failed", "-vv", "--api-key", key), 0))
    runs.append(expect(run_vectra(*args2, "--retry-failed", "-vv", "--json", env=by_env), 0))
    assert count(double, "dst") == count(double, "dst2") == count(double, "src")

    # refused credentials: a wrong key (option, environment), no key at all
    wrong = new_key()
    runs.append(expect(run_vectra(*args, "-vv", "--api-key", wrong), 1))
    refused_line = runs[-1].stderr.strip().splitlines()[-1]
    runs.append(
        expect(
            run_vectra(
                "export", target, tmp_path / "snap3", "--json", env={"QDRANT_API_KEY": wrong}
            ),
            1,
        )
    )
    refused_json = runs[-1].json
    runs.append(expect(run_vectra("export", target, tmp_path / "snap4"), 1))
    missing_line = runs[-1].stderr.strip()
    for line in (refused_line, refused_json["error"], missing_line.removeprefix("error: ")):
        assert "refused the credentials" in line and "HTTP 403" in line, line
        assert f"endpoint {target}" in line, line
    assert refused_line.startswith("error: ") and "\n" not in missing_line
    assert refused_json["ok"] is False and refused_json["exit_code"] == 1

    # a key in the URL is refused, and not echoed
    for name in ("api_key", "api-key"):
        runs.append(
            expect(
                run_vectra("import", tmp_path / "snap", f"{target}?{name}={quote(key, safe='')}"), 2
            )
        )
        assert "does not belong in the URL" in runs[-1].stderr
    runs.append(
        expect(
            run_vectra("export", f"{target}?api_key={key}", tmp_path / "snap5", "--json", "-vv"), 2
        )
    )
    assert "does not belong in the URL" in runs[-1].json["error"]

    scan = Scan(key, wrong)
    hits += scan.tree(tmp_path)
    for number, result in enumerate(runs, 1):
        hits += scan.result(number, result)
    assert not hits, "the API key leaked:\n" + "\n".join(hits)
    assert scan.outputs == len(runs) == 12 and scan.parquet_files >= 4 and scan.files >= 8
