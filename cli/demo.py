"""``vectra demo``: the whole export -> inspect -> validate -> import -> verify cycle on
embedded LanceDB databases, with realistic sample data; no server needed."""

from __future__ import annotations

import json
import shlex
import shutil
import time
from pathlib import Path
from typing import Any

import click
import numpy as np
import pyarrow as pa

from vectra_io import Client, export_snapshot, import_snapshot, verify_snapshot
from vectra_io.inspect import validate_snapshot
from vectra_io.providers.base import IndexSpec
from vectra_io.records import METADATA, VALUES, record_schema

from . import render
from .app import EXIT_FAILURE, EXIT_MISMATCH, EXIT_RECORD_ERRORS, command
from .endpoints import CLIError
from .output import UI, count, human_bytes
from .progress import ProgressDisplay

MARKER = ".vectra-demo"
INDEX = "products"
DIMENSION = 384
#: namespace -> share of the rows
NAMESPACES = {"catalog": 0.75, "archive": 0.25}
SAMPLE = 200
BACKEND = "lancedb"  # "memory" works too, inside one process

CATEGORIES = {
    "electronics": ["headphones", "charger", "monitor", "keyboard", "speaker", "camera"],
    "books": ["novel", "cookbook", "atlas", "biography", "textbook", "comic"],
    "home": ["lamp", "blanket", "vase", "mirror", "rug", "clock"],
    "garden": ["hose", "planter", "shovel", "sprinkler", "bench", "lantern"],
    "toys": ["puzzle", "robot", "kite", "doll", "train set", "board game"],
    "sports": ["racket", "yoga mat", "helmet", "football", "dumbbell", "bottle"],
    "beauty": ["serum", "perfume", "brush set", "shampoo", "lip balm", "mask"],
    "grocery": ["coffee", "green tea", "olive oil", "honey", "pasta", "chocolate"],
}
ADJECTIVES = [
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Ultra",
    "Smart",
    "Vintage",
    "Pro",
    "Mini",
    "Premium",
    "Café",
    "Nordic",
    "Zen",
    "Über",
    "Tokyo 東京",
]
TAGS = [
    "new",
    "sale",
    "bestseller",
    "gift",
    "eco-friendly",
    "limited",
    "handmade",
    "imported",
    "refurbished",
    "bundle",
    "premium",
    "clearance",
]
COLORS = ["black", "white", "red", "blue", "green", "silver", "beige"]
SIZES = ["XS", "S", "M", "L", "XL"]
SELLERS = [
    ("Acme Corp", "US"),
    ("Globex", "DE"),
    ("Initech", "GB"),
    ("Umbrella", "JP"),
    ("Soylent", "FR"),
    ("Hooli", "US"),
    ("Vehement", "BR"),
    ("Massive Dynamic", "CA"),
]


def sample_metadata(rng: np.random.Generator, n: int, start: int) -> list[str | None]:
    """Realistic product metadata as JSON strings: strings, ints, floats, bools, lists,
    nested objects, big integers, unicode, null values and a few records with none."""
    cats = list(CATEGORIES)
    # numpy draws all values at once; .tolist() makes them plain Python values for json
    cat = rng.integers(0, len(cats), n).tolist()
    noun = rng.integers(0, 6, n).tolist()
    adj = rng.integers(0, len(ADJECTIVES), n).tolist()
    price = np.round(rng.lognormal(3.2, 0.9, n), 2).tolist()
    price_null = (rng.random(n) < 0.03).tolist()
    in_stock = (rng.random(n) < 0.8).tolist()
    stock = rng.integers(1, 500, n).tolist()
    rating = np.round(rng.uniform(1.0, 5.0, n), 1).tolist()
    rating_null = (rng.random(n) < 0.1).tolist()
    reviews = rng.integers(0, 20_000, n).tolist()
    ntags = rng.integers(0, 5, n).tolist()
    tag_pick = rng.integers(0, len(TAGS), (n, 4)).tolist()
    seller = rng.integers(0, len(SELLERS), n).tolist()
    verified = (rng.random(n) < 0.7).tolist()
    since = rng.integers(1998, 2025, n).tolist()
    dims = np.round(rng.uniform(1.0, 120.0, (n, 3)), 1).tolist()
    base_day = np.datetime64("2017-01-01", "D")
    released = (
        (base_day + rng.integers(0, 365 * 8, n).astype("timedelta64[D]")).astype(str).tolist()
    )
    discount = np.round(rng.uniform(0.05, 0.5, n), 2).tolist()
    has_discount = (rng.random(n) < 0.2).tolist()
    nvariants = rng.integers(0, 4, n).tolist()
    no_meta = (rng.random(n) < 0.005).tolist()
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    out: list[str | None] = []
    for i in range(n):
        if no_meta[i]:
            out.append(None)
            continue
        c = cats[cat[i]]
        name, country = SELLERS[seller[i]]
        w, h, d = dims[i]
        meta: dict[str, Any] = {
            "title": f"{ADJECTIVES[adj[i]]} {CATEGORIES[c][noun[i]]} {start + i:05d}",
            "category": c,
            "sku": f"SKU-{start + i:06d}",
            "ean": 4_000_000_000_000 + (start + i) * 7919,
            "price": None if price_null[i] else price[i],
            "currency": "EUR" if country in ("DE", "FR") else "USD",
            "in_stock": in_stock[i],
            "stock": stock[i] if in_stock[i] else 0,
            "rating": None if rating_null[i] else rating[i],
            "reviews": reviews[i],
            "tags": sorted({TAGS[t] for t in tag_pick[i][: ntags[i]]}),
            "seller": {
                "name": name,
                "country": country,
                "verified": verified[i],
                "since": since[i],
            },
            "dimensions_cm": {"w": w, "h": h, "d": d},
            "released": released[i],
            "discount": discount[i] if has_discount[i] else None,
        }
        if nvariants[i]:
            meta["variants"] = [
                {"color": COLORS[(i + k) % len(COLORS)], "size": SIZES[(i * 3 + k) % len(SIZES)]}
                for k in range(nvariants[i])
            ]
        out.append(dumps(meta))
    return out


def sample_vectors(rng: np.random.Generator, n: int, dimension: int) -> np.ndarray:
    """Unit vectors clustered around one centroid per category (like real embeddings)."""
    centroids = rng.standard_normal((len(CATEGORIES), dimension), dtype=np.float32)
    labels = rng.integers(0, len(CATEGORIES), n)
    vectors = rng.standard_normal((n, dimension), dtype=np.float32)
    vectors *= np.float32(0.6)
    vectors += centroids[labels]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def sample_batch(spec: IndexSpec, rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
    schema = record_schema(spec)
    dimension = int(spec.dimension or DIMENSION)
    vectors = sample_vectors(rng, n, dimension)
    ids = pa.array([f"prod-{start + i:06d}" for i in range(n)], pa.string())
    values = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), dimension)
    columns = {"id": ids, VALUES: values, METADATA: pa.array(sample_metadata(rng, n, start))}
    return pa.RecordBatch.from_arrays([columns[f.name] for f in schema], schema=schema)


def create_sample(url: str, rows: int, seed: int = 42) -> dict[str, int]:
    """Create the ``products`` index at ``url`` with ``rows`` records over two namespaces."""
    rng = np.random.default_rng(seed)
    written: dict[str, int] = {}
    with Client(url=url) as client:
        client.create_index(INDEX, DIMENSION, "cosine")
        provider = client.backend
        spec = provider.describe_index(INDEX)
        step = min(5000, provider.capabilities.max_batch_rows or 5000)
        start = 0
        shares = list(NAMESPACES.items())
        for k, (namespace, share) in enumerate(shares):
            n = rows - start if k == len(shares) - 1 else int(rows * share)
            for offset in range(0, n, step):
                batch = sample_batch(spec, rng, start + offset, min(step, n - offset))
                refused = provider.upsert(INDEX, batch, namespace)
                if refused:
                    raise CLIError(f"the demo source refused {len(refused)} sample records")
            written[namespace] = n
            start += n
    return written


def _urls(directory: Path) -> tuple[str, str]:
    if BACKEND == "memory":
        return "memory://vectra-demo-source", "memory://vectra-demo-target"
    return f"lancedb://{directory / 'source.lancedb'}", f"lancedb://{directory / 'target.lancedb'}"


def _prepare(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise CLIError(f"{directory} exists and is not a directory; choose another DIR", 2)
    if directory.is_dir() and any(directory.iterdir()) and not (directory / MARKER).exists():
        raise CLIError(
            f"{directory} is not empty and was not made by `vectra demo`; "
            "choose another DIR (or an empty or new one)",
            2,
        )
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("source.lancedb", "target.lancedb", "snapshot"):
        path = directory / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    (directory / MARKER).write_text("made by `vectra demo`; safe to delete\n")


def demo_commands(source: str, target: str, snapshot: str) -> list[str]:
    q = shlex.quote
    return [
        f"vectra export {q(source)} {q(snapshot)} --force",
        f"vectra inspect {q(snapshot)}",
        f"vectra validate {q(snapshot)}",
        f"vectra import {q(snapshot)} {q(target)}",
        f"vectra verify {q(snapshot)} {q(target)} --source {q(source)} --sample {SAMPLE}",
    ]


@command("demo", short_help="Run a local export/import/verify cycle on sample data.")
@click.argument("directory", default="vectra-demo", metavar="[DIR]")
@click.option(
    "--rows",
    type=click.IntRange(min=100),
    metavar="N",
    default=20_000,
    show_default=True,
    help="Number of sample records.",
)
def demo_cmd(ui: UI, directory: str, rows: int) -> int:
    """Create sample products (384-dimensional vectors, varied metadata, two namespaces) in
    the LanceDB database DIR/source.lancedb, export it to DIR/snapshot, validate it,
    import it into DIR/target.lancedb and verify the copy. No server needed; DIR defaults
    to ./vectra-demo. Prints the equivalent vectra commands to repeat each step."""
    root = Path(directory).expanduser().resolve()
    _prepare(root)
    source_url, target_url = _urls(root)
    snapshot = str(root / "snapshot")
    timings: dict[str, float] = {}

    def step(name: str, message: str) -> float:
        ui.note(f"[{len(timings) + 1}/5] {message}")
        timings[name] = 0.0
        return time.monotonic()

    t = step("generate", f"creating {count(rows)} sample records in {source_url}")
    written = create_sample(source_url, rows)
    timings["generate"] = time.monotonic() - t

    t = step("export", f"exporting to {snapshot}")
    with ProgressDisplay(ui) as progress:
        exported = export_snapshot(source_url, snapshot, on_progress=progress, force=True)
    timings["export"] = time.monotonic() - t

    t = step("validate", "validating the snapshot offline")
    validation = validate_snapshot(snapshot)
    timings["validate"] = time.monotonic() - t

    t = step("import", f"importing into {target_url}")
    with ProgressDisplay(ui) as progress:
        imported = import_snapshot(snapshot, target_url, on_progress=progress)
    timings["import"] = time.monotonic() - t

    t = step("verify", f"verifying (counts, and {SAMPLE} sampled records per namespace)")
    verified = verify_snapshot(snapshot, target_url, source=source_url, sample=SAMPLE)
    timings["verify"] = time.monotonic() - t

    parts = [
        p
        for e in exported["indexes"].values()
        for n in e["namespaces"].values()
        for p in n["parts"]
    ]
    commands = demo_commands(source_url, target_url, snapshot)
    ok = bool(validation["valid"] and verified["match"] and not imported["failed_count"])
    result = {
        "ok": ok,
        "directory": str(root),
        "source": source_url,
        "snapshot": snapshot,
        "target": target_url,
        "index": INDEX,
        "dimension": DIMENSION,
        "namespaces": written,
        "rows": sum(written.values()),
        "snapshot_parts": len(parts),
        "snapshot_bytes": sum(int(p["bytes"]) for p in parts),
        "valid": validation["valid"],
        "imported_count": imported["imported_count"],
        "failed_count": imported["failed_count"],
        "match": verified["match"],
        "verify": verified,
        "seconds": {k: round(v, 2) for k, v in timings.items()},
        "commands": commands,
    }

    def show(out: Any) -> None:
        render.verify_result(out, verified)
        if not validation["valid"]:
            render.validate_result(out, validation)
        out.print()
        out.print(
            f"{count(result['rows'])} records of dimension {DIMENSION} in namespaces "
            f"{', '.join(written)}; snapshot: {len(parts)} parts, "
            f"{human_bytes(result['snapshot_bytes'])}; "
            + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
            markup=False,
            highlight=False,
        )
        out.print()
        out.print("Repeat each step yourself:", style="bold")
        for line in commands:
            out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)

    ui.result(result, show)
    if not validation["valid"]:
        return EXIT_FAILURE
    if imported["failed_count"]:
        return EXIT_RECORD_ERRORS
    return 0 if verified["match"] else EXIT_MISMATCH
