"""Human renderings of the results (tables on the result console)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .output import count, human_bytes, ns_label, plural

MAX_ERRORS_SHOWN = 10
MAX_IDS_SHOWN = 5


def _table(*columns: str, title: str | None = None) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for col in columns:
        numeric = col.lower() in {
            "rows",
            "parts",
            "bytes",
            "rejected",
            "imported",
            "skipped",
            "failed",
            "written",
            "snapshot",
            "source",
            "target",
            "sampled",
            "records",
        }
        table.add_column(col, justify="right" if numeric else "left", overflow="fold")
    return table


def _row(table: Table, *cells: object) -> None:
    """Add a row of plain text (no rich markup: names like ``vectra-io[lancedb]`` stay)."""
    table.add_row(*(Text(str(c)) for c in cells))


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_SHOWN])
    more = len(ids) - MAX_IDS_SHOWN
    return f"{shown}, ... (+{more})" if more > 0 else shown


def record_errors(console: Console, errors: list[dict[str, Any]]) -> None:
    if not errors:
        return
    total = sum(len(e.get("ids", [])) for e in errors)
    console.print(f"{count(total)} records failed (all ids are in the --json result):", style="red")
    for err in errors[:MAX_ERRORS_SHOWN]:
        where = f"{err.get('index')}/{ns_label(err.get('namespace'))}"
        ids = err.get("ids", [])
        console.print(
            f"  {where}: {len(ids)} records ({_ids(ids)}): {err.get('error')}",
            markup=False,
            highlight=False,
        )
    if len(errors) > MAX_ERRORS_SHOWN:
        console.print(f"  ... and {len(errors) - MAX_ERRORS_SHOWN} more groups")


def export_result(console: Console, snapshot: str, result: dict[str, Any]) -> None:
    table = _table("index", "namespace", "rows", "rejected", "parts", "bytes")
    rows = parts = size = 0
    for index, entry in result.get("indexes", {}).items():
        for key, ns in entry.get("namespaces", {}).items():
            ns_bytes = sum(int(p.get("bytes", 0)) for p in ns.get("parts", []))
            _row(
                table,
                index,
                key,
                count(ns.get("rows")),
                count(ns.get("rejected", 0)),
                count(len(ns.get("parts", []))),
                human_bytes(ns_bytes),
            )
            rows += int(ns.get("rows", 0))
            parts += len(ns.get("parts", []))
            size += ns_bytes
    console.print(table)
    source = result.get("source", {})
    console.print(
        f"Exported {count(rows)} records from {source.get('endpoint')} to {snapshot} "
        f"({count(parts)} parts, {human_bytes(size)}).",
        markup=False,
        highlight=False,
    )
    record_errors(console, result.get("errors", []))


def import_result(console: Console, target: str, result: dict[str, Any]) -> None:
    retrying = result.get("mode") == "retry-failed"
    table = _table(
        "index",
        "namespace",
        "target index",
        "target namespace",
        "snapshot",
        "imported",
        "skipped",
        "failed",
    )
    for ns in result.get("namespaces", []):
        _row(
            table,
            ns["index"],
            ns_label(ns["namespace"]),
            ns["target_index"],
            ns_label(ns["target_namespace"]),
            count(ns.get("snapshot_rows")),
            count(ns.get("imported")),
            count(ns.get("skipped")),
            count(ns.get("failed")),
        )
    console.print(table)
    what = "Retried failed records: imported" if retrying else "Imported"
    skipped = int(result.get("skipped_count") or 0)
    console.print(
        f"{what} {count(result.get('imported_count'))} records into {target} "
        f"in {result.get('elapsed', 0):.1f}s ({result.get('rate', 0):,.0f} records/s)"
        + (f"; {count(skipped)} skipped, imported by an earlier run." if skipped else "."),
        markup=False,
        highlight=False,
    )
    record_errors(console, result.get("errors", []))
    failed_records(console, result)
    if result.get("state_file"):
        console.print(
            f"State: {result['state_file']} (run the same command again to resume; "
            "--restart starts over).",
            markup=False,
            highlight=False,
        )


def failed_records(console: Console, result: dict[str, Any]) -> None:
    """Where the records that failed for good wait, per namespace, and how to retry them."""
    pending = result.get("pending_failed") or []
    if not pending:
        if result.get("mode") == "retry-failed":
            console.print("No failed records are left to retry.", markup=False, highlight=False)
        return
    total = sum(int(p["records"]) for p in pending)
    console.print(f"{plural(total, 'failed record')} kept for retry:", style="red", markup=False)
    for p in pending:
        console.print(
            f"  {p['target_index']}/{ns_label(p['target_namespace'])}: "
            f"{plural(int(p['records']), 'record')}",
            markup=False,
            highlight=False,
        )
    console.print(f"  files: {result.get('failed_records')}", markup=False, highlight=False)
    if result.get("retry_command"):
        console.print(f"  retry: {result['retry_command']}", markup=False, highlight=False)


def migrate_result(console: Console, result: dict[str, Any]) -> None:
    table = _table("index", "namespace", "target index", "target namespace", "written", "failed")
    for ns in result.get("namespaces", []):
        _row(
            table,
            ns["index"],
            ns_label(ns["namespace"]),
            ns["target_index"],
            ns_label(ns["target_namespace"]),
            count(ns.get("written")),
            count(ns.get("failed")),
        )
    console.print(table)
    console.print(
        f"Migrated {count(result.get('migrated_count'))} records "
        f"in {result.get('elapsed', 0):.1f}s ({result.get('rate', 0):,.0f} records/s).",
        markup=False,
        highlight=False,
    )
    record_errors(console, result.get("errors", []))
    check = result.get("verification")
    if check:
        table = _table(
            "source index",
            "source namespaces",
            "target index",
            "target namespace",
            "source",
            "target",
            "result",
            title="Count verification",
        )
        for row in check["namespaces"]:
            _row(
                table,
                row["index"],
                ", ".join(ns_label(n) for n in row["namespaces"]),
                row["target_index"],
                ns_label(row["target_namespace"]),
                count(row["source_count"]),
                count(row["target_count"]),
                "ok" if row["match"] else "MISMATCH",
            )
        console.print(table)
        _verdict(console, check)


def _verdict(console: Console, result: dict[str, Any]) -> None:
    if result.get("match"):
        console.print("Verification passed.", style="green")
    else:
        console.print("Verification FAILED:", style="bold red")
        for row in result.get("namespaces", []):
            for reason in row.get("reasons", []):
                where = f"{row['target_index']}/{ns_label(row['target_namespace'])}"
                console.print(f"  {where}: {reason}", markup=False, highlight=False)


def verify_result(console: Console, result: dict[str, Any]) -> None:
    with_source = result.get("source_count") is not None
    cols = ["index", "namespaces", "target index", "target namespace", "snapshot"]
    cols += ["source"] if with_source else []
    cols += ["target", "sampled", "result"]
    table = _table(*cols)
    for row in result.get("namespaces", []):
        cells = [
            row["index"],
            ", ".join(ns_label(n) for n in row["namespaces"]),
            row["target_index"],
            ns_label(row["target_namespace"]),
            count(row["manifest_count"]),
        ]
        if with_source:
            cells.append(count(row.get("source_count")))
        sampled = row.get("sample_checked")
        cells += [
            count(row["target_count"]),
            "-" if sampled is None else f"{count(sampled)}",
            "ok" if row["match"] else "MISMATCH",
        ]
        _row(table, *cells)
    console.print(table)
    for row in result.get("namespaces", []):
        mismatches = row.get("sample_mismatches", [])
        where = f"{row['target_index']}/{ns_label(row['target_namespace'])}"
        for mismatch in mismatches[:MAX_IDS_SHOWN]:
            console.print(
                f"  {where} id {mismatch.get('id')}: {mismatch.get('reason')}",
                markup=False,
                highlight=False,
            )
        if len(mismatches) > MAX_IDS_SHOWN:
            console.print(
                f"  {where}: ... and {len(mismatches) - MAX_IDS_SHOWN} more (see --json)",
                markup=False,
                highlight=False,
            )
    _verdict(console, result)


def inspect_result(console: Console, info: dict[str, Any]) -> None:
    status = "complete" if info["complete"] else "INCOMPLETE (the export did not finish)"
    source = info.get("source") or {}
    lines = [
        f"Snapshot   {info['snapshot']}",
        f"Status     {status}",
        f"Source     {source.get('endpoint')} ({source.get('provider')})",
        f"Created    {info.get('created_at')}"
        + (f", completed {info['completed_at']}" if info.get("completed_at") else ""),
        f"Format     {info.get('format')} v{info.get('format_version')}, written by vectra-io "
        f"{info.get('tool_version')}, compression {info.get('compression')}",
        f"Contents   {plural(info['rows'], 'record')} in "
        f"{plural(len(info['indexes']), 'index', 'indexes')}, "
        f"{plural(info['parts'], 'part')}, {human_bytes(info['bytes'])}",
    ]
    for line in lines:
        console.print(line, markup=False, highlight=False)
    idx_table = _table(
        "index",
        "dimension",
        "metric",
        "id type",
        "vectors",
        "rows",
        "parts",
        "bytes",
        title="Indexes",
    )
    ns_table = _table(
        "index", "namespace", "rows", "rejected", "parts", "bytes", "status", title="Namespaces"
    )
    for index in info["indexes"]:
        extras = []
        if index["sparse"]:
            extras.append("sparse")
        extras += [f"named:{n}" for n in index["named_vectors"]]
        _row(
            idx_table,
            index["index"],
            str(index["dimension"]),
            str(index["metric"]),
            str(index["id_type"]),
            ", ".join(["dense", *extras]) if index["dimension"] else ", ".join(extras),
            count(index["rows"]),
            count(index["parts"]),
            human_bytes(index["bytes"]),
        )
        for ns in index["namespaces"]:
            _row(
                ns_table,
                index["index"],
                ns["namespace"],
                count(ns["rows"]),
                count(ns["rejected"]),
                count(ns["parts"]),
                human_bytes(ns["bytes"]),
                str(ns["status"]),
            )
    console.print()
    console.print(idx_table)
    console.print()
    console.print(ns_table)


def validate_result(console: Console, result: dict[str, Any]) -> None:
    for warning in result.get("warnings", []):
        console.print(f"warning: {warning}", markup=False, highlight=False)
    if result["valid"]:
        console.print(
            f"Snapshot {result['snapshot']} is valid: {count(result['parts_checked'])} parts, "
            f"{count(result['rows_checked'])} records, {human_bytes(result['bytes_checked'])} "
            "checked (size, sha256 and crc32, rows, schema).",
            markup=False,
            highlight=False,
        )
        return
    console.print(
        f"Snapshot {result['snapshot']} is NOT valid: {len(result['problems'])} problems "
        f"({count(result['parts_checked'])} parts checked).",
        style="bold red",
        markup=False,
        highlight=False,
    )
    for problem in result["problems"]:
        what = (
            f"part {problem['path']}"
            if problem.get("path")
            else (
                f"index {problem['index']}"
                + (f" namespace {problem['namespace']}" if problem.get("namespace") else "")
                if problem.get("index")
                else "snapshot"
            )
        )
        console.print(
            f"  {what}: {problem['kind']}: {problem['message']}", markup=False, highlight=False
        )


def providers_result(console: Console, providers: list[dict[str, Any]]) -> None:
    table = _table("provider", "installed", "install", "URL", "API key env")
    for p in providers:
        _row(
            table,
            p["name"],
            "yes" if p["installed"] else "no",
            "(core)" if not p.get("extra") else p["install"],
            p["url"],
            p.get("api_key_env") or "-",
        )
    console.print(table)


def _vectors_text(vectors: dict[str, Any]) -> str:
    parts = []
    dense = vectors.get("dense")
    if dense:
        parts.append(
            f"dense {dense['dimension']} ({dense['metric']} -> "
            f"{dense.get('target_metric') or 'NOT EXPRESSIBLE'})"
        )
    if vectors.get("sparse"):
        parts.append(f"sparse: {vectors['sparse']}")
    for name, v in (vectors.get("named") or {}).items():
        kept = "" if v.get("kept") else ", NOT KEPT"
        parts.append(
            f"named {name} {v['dimension']} ({v['metric']} -> "
            f"{v.get('target_metric') or 'NOT EXPRESSIBLE'}{kept})"
        )
    return "; ".join(parts) or "-"


def plan_result(console: Console, result: dict[str, Any]) -> None:
    """``vectra plan``: per index the action and the mappings, then the records with issues
    per namespace and reason (counts and example ids), then the verdict."""

    def line(text: str, **kwargs: Any) -> None:
        console.print(text, markup=False, highlight=False, **kwargs)

    line(
        f"Plan: {result['source']} ({result['source_kind']}) -> {result['target']}; "
        "nothing was written."
        + ("" if result.get("scanned") else " Records not scanned (--no-scan).")
    )
    for idx in result["indexes"]:
        console.print()
        line(f"Index {idx['source_index']} -> {idx['target_index']}: {idx['action']}", style="bold")
        rows = [
            ("vectors", _vectors_text(idx.get("vectors") or {})),
            ("ids", str(idx.get("id_mapping") or idx.get("ids"))),
            ("namespaces", str(idx.get("namespace_mapping", "-"))),
            ("metadata", str(idx.get("metadata", "-"))),
        ]
        if idx.get("normalized"):
            rows.append(("note", "the source normalised its vectors (compared by direction)"))
        for key, value in rows:
            line(f"  {key:<11} {value}")
        for problem in idx["problems"]:
            line(f"  problem     {problem}", style="red")
        table = _table("namespace", "target namespace", "records")
        for ns in idx["namespaces"]:
            _row(table, ns_label(ns["source"]), ns_label(ns["target"]), count(ns["records"]))
        console.print(table)
        for ns in idx["namespaces"]:
            for issue in ns.get("issues") or []:
                line(
                    f"  {ns_label(ns['source'])}: {plural(issue['records'], 'record')}: "
                    f"{issue['reason']} (e.g. {_ids(issue['examples'])})",
                    style="yellow",
                )
    console.print()
    records = int(result.get("records") or 0)
    with_issues = int(result.get("records_with_issues") or 0)
    problems = int(result.get("problems") or 0)
    where = f"{plural(records, 'record')} in {plural(len(result['indexes']), 'index', 'indexes')}"
    if result.get("clean"):
        line(f"Plan clean: {where}, no problem found.", style="green")
        return
    found = []
    if problems:
        found.append(plural(problems, "problem"))
    if with_issues:
        found.append(f"{plural(with_issues, 'record')} with issues")
    line(f"Plan found {' and '.join(found)} ({where}).", style="bold red")
