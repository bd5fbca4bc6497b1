"""Tests of the spec-validating test doubles (tests/doubles), driven with raw httpx."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import httpx
import numpy as np
import orjson
import pytest
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30Validator
from openapi_schema_validator._format import oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.doubles import PineconeDouble, QdrantDouble, WeaviateDouble
from tests.doubles.openapi_server import OpenAPIDouble, Spec, load_spec

pytest_plugins = ["tests.doubles.fixtures"]

PC_HEADERS = {"Api-Key": "test-api-key", "X-Pinecone-Api-Version": "2026-04"}


# -- reference validator (openapi-schema-validator) for cross-checking ---------------------


def reference_validator(spec: Spec, ref: str) -> OAS30Validator:
    """The library validator for ``ref``; the uuid format matches the double's."""
    registry = Registry().with_resource("urn:spec", Resource.from_contents(spec.doc, DRAFT4))
    checker = FormatChecker()
    checker.checkers = dict(oas30_format_checker.checkers)
    uuid_check = spec.compiler.formats["uuid"]
    checker.checks("uuid")(lambda x: not isinstance(x, str) or uuid_check(x))
    return OAS30Validator({"$ref": "urn:spec" + ref}, registry=registry, format_checker=checker)


def assert_same_verdicts(spec: Spec, ref: str, samples: list) -> None:
    mine = spec.schema_check(ref)
    lib = reference_validator(spec, ref)
    for sample in samples:
        ours, theirs = mine(sample) is None, lib.is_valid(sample)
        assert ours == theirs, f"{ref}: compiled={ours} library={theirs} for {str(sample)[:200]}"


def qclient(d: OpenAPIDouble, **kw) -> httpx.Client:
    return httpx.Client(base_url=d.url, timeout=10, **kw)


def qdrant_collection(
    c: httpx.Client, name: str = "c", size: int = 4, distance: str = "Cosine"
) -> None:
    r = c.put(f"/collections/{name}", json={"vectors": {"size": size, "distance": distance}})
    assert r.status_code == 200, r.text


# ======================================================================================
# Generic layer: compiled validation
# ======================================================================================


def test_compiled_validator_agrees_with_openapi_schema_validator() -> None:
    q = load_spec("qdrant-openapi-v1.19.json")
    vec = [0.1, 0.2, 0.3]
    assert_same_verdicts(
        q,
        "#/components/schemas/PointInsertOperations",
        [
            {"points": [{"id": 1, "vector": vec, "payload": {"a": [1, {"b": None}]}}]},
            {
                "points": [
                    {
                        "id": str(uuid.uuid4()),
                        "vector": {"dense": vec, "sp": {"indices": [1], "values": [2.0]}},
                    }
                ]
            },
            {"points": [{"id": "not-a-uuid", "vector": vec}]},
            {"points": [{"id": -1, "vector": vec}]},
            {"points": [{"id": 1, "vector": [0.1, True]}]},
            {"points": [{"id": 1, "vector": [0.1, "0.2"]}]},
            {"points": [{"id": 1}]},
            {"batch": {"ids": [1, 2], "vectors": [vec, vec], "payloads": [None, {"x": 1}]}},
            {"batch": {"ids": [1], "vectors": {"a": [vec]}}},
            {"batch": {"ids": [1]}},
            {"points": [{"id": 1, "vector": {"sp": {"indices": [-1], "values": [1.0]}}}]},
        ],
    )
    assert_same_verdicts(
        q,
        "#/components/schemas/ScrollRequest",
        [
            {},
            {"limit": 5, "offset": 3, "with_vector": True, "with_payload": ["a"]},
            {"limit": 0},
            {"filter": {"must": [{"key": "a", "match": {"value": "x"}}]}},
            {"filter": {"must": [{"key": "a", "match": {"value": 1.5}}]}},
            {"filter": {"unknown": []}},
            {"with_vector": "yes"},
        ],
    )
    p = load_spec("pinecone-db-data-2026-04.oas.yaml")
    assert_same_verdicts(
        p,
        "#/components/schemas/UpsertRequest",
        [
            {"vectors": [{"id": "a", "values": vec, "metadata": {"k": "v"}}]},
            {"vectors": [{"id": "a", "sparseValues": {"indices": [1], "values": [0.5]}}]},
            {"vectors": [{"id": "a", "sparseValues": {"indices": [1]}}]},
            {"vectors": [{"id": "", "values": vec}]},
            {"vectors": [{"values": vec}]},
            {"namespace": "x"},
        ],
    )
    pc = load_spec("pinecone-db-control-2026-04.oas.yaml")
    assert_same_verdicts(
        pc,
        "#/components/schemas/IndexModel",
        [
            {
                "name": "i",
                "metric": "cosine",
                "host": "h",
                "vector_type": "dense",
                "status": {"ready": True, "state": "Ready"},
                "spec": {
                    "serverless": {
                        "cloud": "aws",
                        "region": "r",
                        "read_capacity": {"mode": "OnDemand", "status": {"state": "Ready"}},
                    }
                },
            },
            {
                "name": "i",
                "metric": "cosine",
                "host": "h",
                "vector_type": "dense",
                "status": {},
                "spec": {},
            },
            {
                "name": "i",
                "metric": "cosine",
                "host": "h",
                "vector_type": "dense",
                "status": {"ready": True, "state": "Ready"},
                "spec": {"pod": {"environment": "e", "pod_type": "p1.x1"}, "serverless": {}},
            },
        ],
    )


def test_numeric_fast_path_checks_every_element() -> None:
    check = load_spec("qdrant-openapi-v1.19.json").schema_check("#/components/schemas/PointStruct")
    good = {"id": 1, "vector": list(np.random.default_rng(0).random(768))}
    assert check(good) is None
    for bad_value in (True, "1.0", None, [1.0], {"a": 1}):
        bad = {"id": 1, "vector": list(good["vector"])}
        bad["vector"][700] = bad_value
        err = check(bad)
        assert err is not None, bad_value
    sparse = load_spec("qdrant-openapi-v1.19.json").schema_check(
        "#/components/schemas/SparseVector"
    )
    assert sparse({"indices": [0, 2**32 - 1], "values": [1.0, 2.0]}) is None
    assert sparse({"indices": [0, 2**32], "values": [1.0, 2.0]}) is not None  # uint32
    assert sparse({"indices": [0, -1], "values": [1.0, 2.0]}) is not None


def test_a_256x768_upsert_with_mixed_ids_validates() -> None:
    """A realistic upsert (integer and UUID ids, 768 floats each) passes the compiled check,
    and one bad float in it is found. Its cost is measured by
    benchmarks/bench_qdrant_latency.py ("CPU per upsert"), not asserted here."""
    op = load_spec("qdrant-openapi-v1.19.json").operation("upsert_points")
    rng = np.random.default_rng(1)
    body = orjson.loads(
        orjson.dumps(
            {
                "points": [
                    {
                        "id": i if i % 2 else str(uuid.uuid4()),
                        "vector": rng.random(768).tolist(),
                        "payload": {"i": i},
                    }
                    for i in range(256)
                ]
            }
        )
    )
    assert op.body_check is not None
    assert op.body_check(body) is None
    body["points"][200]["vector"][767] = "0.5"
    assert op.body_check(body) is not None


# ======================================================================================
# Generic layer: server behaviour, violations, faults
# ======================================================================================


def test_many_concurrent_keepalive_connections(qdrant_double: QdrantDouble) -> None:
    qdrant_double.create_collection("c", vectors={"size": 4, "distance": "Dot"})
    errors: list[str] = []
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    with qclient(qdrant_double, limits=limits) as c:

        def worker(n: int) -> None:
            for i in range(15):
                pid = n * 100 + i
                r = c.put(
                    "/collections/c/points", json={"points": [{"id": pid, "vector": [1, 2, 3, 4]}]}
                )
                r2 = c.post("/collections/c/points/count", json={})
                if r.status_code != 200 or r2.status_code != 200:
                    errors.append(r.text + r2.text)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert c.post("/collections/c/points/count", json={}).json()["result"]["count"] == 24 * 15
    assert len(qdrant_double.requests) == 24 * 15 * 2 + 1


def test_invalid_request_is_400_and_recorded(qdrant_double: QdrantDouble) -> None:
    with qclient(qdrant_double) as c:
        qdrant_collection(c)
        r = c.put("/collections/c/points", json={"points": [{"id": 1, "vector": [1, 2, True, 4]}]})
        assert r.status_code == 400
        assert "vector[2]" in r.json()["status"]["error"]
        assert set(r.json()) == {"status", "time", "result"}
        r = c.put(
            "/collections/c/points",
            content=b'{"points": [',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400 and r.json()["status"]["error"].startswith(
            "Format error in JSON body"
        )
        r = c.put(
            "/collections/c/points",
            content=b'{"points": []}',
            headers={"Content-Type": "text/plain"},
        )
        assert r.status_code == 400
        r = c.post("/collections/c/points/search", json={"vector": [1, 2, 3, 4], "limit": 1})
        assert r.status_code in (404, 405)  # /points/search is not in the v1.19 document
        r = c.post("/collections/c/points/scroll", params={"timeout": 0}, json={})
        assert r.status_code == 400  # timeout has minimum 1
    kinds = [v.kind for v in qdrant_double.take_violations()]
    assert kinds == ["request", "request", "request", "route", "request"]
    assert qdrant_double.violations == []


def test_faults_latency_429_and_retry_after(qdrant_double: QdrantDouble) -> None:
    f = qdrant_double.faults
    with qclient(qdrant_double) as c:
        qdrant_collection(c)
        f.latency_s = 0.2
        started = time.monotonic()
        assert c.get("/collections/c").status_code == 200
        assert time.monotonic() - started >= 0.2
        f.latency_s = 0
        f.rate_429, f.retry_after = 1.0, 1
        r = c.post("/collections/c/points/count", json={})
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "error" in r.json()["status"]
        time.sleep(float(r.headers["Retry-After"]))  # a well-behaved client
        f.rate_429 = 0
        assert c.post("/collections/c/points/count", json={}).status_code == 200
    last, retry = qdrant_double.requests[-2], qdrant_double.requests[-1]
    assert last.status == 429 and last.fault == "429" and retry.status == 200
    assert retry.time - last.responded >= 1.0


def test_fail_next_aims_at_write_operations(qdrant_double: QdrantDouble) -> None:
    f = qdrant_double.faults
    f.operations = set(QdrantDouble.WRITE_OPERATIONS)
    f.fail_next(2, 503)
    with qclient(qdrant_double) as c:
        assert c.get("/collections").status_code == 200  # reads are not aimed at
        point = {"points": [{"id": 1, "vector": [1, 0, 0, 0]}]}
        assert (
            c.put("/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code
            == 503
        )
        assert (
            c.put("/collections/c", json={"vectors": {"size": 4, "distance": "Dot"}}).status_code
            == 503
        )
        qdrant_collection(c, distance="Dot")
        assert c.put("/collections/c/points", json=point).status_code == 200
    assert [r.status for r in qdrant_double.requests] == [200, 503, 503, 200, 200]


def test_timeout_fault_applies_the_write_then_answers_late(qdrant_double: QdrantDouble) -> None:
    qdrant_double.create_collection("c", vectors={"size": 4, "distance": "Dot"})
    f = qdrant_double.faults
    f.rate_timeout, f.timeout_sleep_s = 1.0, 1.0
    f.operations = {"upsert_points"}
    with qclient(qdrant_double) as c:
        with pytest.raises(httpx.ReadTimeout):
            c.put(
                "/collections/c/points",
                json={"points": [{"id": 7, "vector": [1, 1, 1, 1]}]},
                timeout=0.3,
            )
        f.rate_timeout = 0
        assert c.post("/collections/c/points/count", json={}).json()["result"]["count"] == 1


def test_fault_rng_is_deterministic() -> None:
    def statuses(seed: int) -> list[int]:
        with QdrantDouble(seed=seed) as d, qclient(d) as c:
            d.faults.rate_503 = 0.5
            return [c.get("/collections").status_code for _ in range(30)]

    first, second, other = statuses(3), statuses(3), statuses(4)
    assert first == second and 503 in first and 200 in first
    assert first != other


def test_body_size_cap() -> None:
    with QdrantDouble(max_request_bytes=2000) as d, qclient(d) as c:
        qdrant_collection(c, size=200)
        body = {"points": [{"id": i, "vector": [0.5] * 200} for i in range(3)]}
        r = c.put("/collections/c/points", json=body)
        assert r.status_code == 400
        assert "is larger than allowed (limit: 2000 bytes)" in r.json()["status"]["error"]
        assert c.get("/collections/c").status_code == 200  # connection still usable
        assert d.violations == []


def test_chunked_request_body(qdrant_double: QdrantDouble) -> None:
    qdrant_double.create_collection("c", vectors={"size": 2, "distance": "Dot"})
    body = orjson.dumps({"points": [{"id": 1, "vector": [1, 2]}]})
    with qclient(qdrant_double) as c:
        chunks = iter([body[:10], body[10:]])
        r = c.put(
            "/collections/c/points", content=chunks, headers={"Content-Type": "application/json"}
        )
        assert r.status_code == 200 and r.request.headers["Transfer-Encoding"] == "chunked"
    assert list(qdrant_double.stored_points("c")) == [1]


def test_qdrant_api_key() -> None:
    with QdrantDouble(api_key="secret") as d, qclient(d) as c:
        assert c.get("/collections").status_code == 403
        assert c.get("/collections", headers={"api-key": "wrong"}).status_code == 403
        assert c.get("/collections", headers={"api-key": "secret"}).status_code == 200
        assert c.get("/collections", headers={"Authorization": "Bearer secret"}).status_code == 200
        assert d.violations == []


def test_answers_pass_the_reference_validator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every answer the doubles send in a replay of the other tests is also checked with
    openapi-schema-validator (the compiled validator must not let a bad answer through)."""
    sent: list[tuple[Spec, str, int, object]] = []
    original = OpenAPIDouble._checked

    def spy(self, spec, op, req, resp):  # type: ignore[no-untyped-def]
        checked = original(self, spec, op, req, resp)
        if checked.body is not None:
            sent.append((spec, op.op_id, checked.status, checked.body))
        return checked

    monkeypatch.setattr(OpenAPIDouble, "_checked", spy)
    for test in (
        test_qdrant_collections,
        test_qdrant_batch_named_and_sparse_vectors,
        test_qdrant_scroll_order_offset_defaults_and_filter,
        test_pinecone_data_plane,
        test_pinecone_limits,
        test_pinecone_pod_index_and_stats_lag,
        test_weaviate_tenants_batch_and_cursor,
    ):
        double = {"qdrant": QdrantDouble, "pinecone": PineconeDouble, "weaviate": WeaviateDouble}[
            test.__name__.split("_")[1]
        ]()
        with double:
            if isinstance(double, PineconeDouble):
                with httpx.Client(base_url=double.url, headers=PC_HEADERS) as c:
                    test((double, c))  # type: ignore[arg-type]
            elif isinstance(double, WeaviateDouble):
                with httpx.Client(base_url=double.url + "/v1") as c:
                    test((double, c))  # type: ignore[arg-type]
            else:
                test(double)  # type: ignore[arg-type]
    assert len(sent) > 60
    for spec, op_id, status, body in sent:
        op = spec.operation(op_id)
        documented = next(
            (
                op.responses[k]
                for k in (str(status), f"{str(status)[0]}XX", "default")
                if k in op.responses
            ),
            None,
        )
        media = (spec.compiler.resolve(documented) or {}).get("content", {}).get("application/json")
        schema = media["schema"] if media else {"$ref": "#/components/schemas/ErrorResponse"}
        registry = Registry().with_resource("urn:spec", Resource.from_contents(spec.doc, DRAFT4))
        validator = OAS30Validator(_rebase({"allOf": [schema]}), registry=registry)
        instance = orjson.loads(orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY))
        errors = list(validator.iter_errors(instance))
        assert errors == [], (op_id, status, errors[0].message[:300])


def _rebase(schema: object) -> object:
    """Points local $refs at the registered spec resource."""
    if isinstance(schema, dict):
        return {k: ("urn:spec" + v if k == "$ref" else _rebase(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebase(v) for v in schema]
    return schema


# ======================================================================================
# Qdrant semantics
# ======================================================================================


def test_qdrant_collections(qdrant_double: QdrantDouble) -> None:
    with qclient(qdrant_double) as c:
        body = {
            "vectors": {"dense": {"size": 3, "distance": "Dot"}},
            "sparse_vectors": {"sp": {"modifier": "idf"}},
            "hnsw_config": {"m": 32},
            "quantization_config": {"scalar": {"type": "int8"}},
        }
        assert c.put("/collections/a", json=body).json()["result"] is True
        assert c.put("/collections/a", json=body).status_code == 409
        assert c.get("/collections").json()["result"] == {"collections": [{"name": "a"}]}
        assert c.get("/collections/a/exists").json()["result"] == {"exists": True}
        assert c.get("/collections/zz/exists").json()["result"] == {"exists": False}
        info = c.get("/collections/a").json()["result"]
        assert info["config"]["params"]["vectors"] == body["vectors"]
        assert info["config"]["params"]["sparse_vectors"] == body["sparse_vectors"]
        assert info["config"]["hnsw_config"]["m"] == 32
        assert info["config"]["quantization_config"] == body["quantization_config"]
        assert info["points_count"] == 0
        r = c.put("/collections/a/index", json={"field_name": "tag", "field_schema": "keyword"})
        assert r.status_code == 200
        c.put(
            "/collections/a/points",
            json={"points": [{"id": 1, "vector": {}, "payload": {"tag": "x"}}]},
        )
        schema = c.get("/collections/a").json()["result"]["payload_schema"]
        assert schema == {"tag": {"data_type": "keyword", "points": 1}}
        assert c.get("/collections/nope").status_code == 404
        assert c.delete("/collections/a").json()["result"] is True
        assert c.get("/collections/a").status_code == 404


def test_qdrant_upsert_ids_overwrite_and_normalisation(qdrant_double: QdrantDouble) -> None:
    u = uuid.uuid4()
    with qclient(qdrant_double) as c:
        qdrant_collection(c, size=2)
        points = [
            {"id": 5, "vector": [3, 4], "payload": {"a": 1, "b": 2}},
            {"id": u.hex.upper(), "vector": [1, 0]},
            {"id": u.urn, "vector": [0, 2]},  # same point as the previous one
        ]
        r = c.put("/collections/c/points", params={"wait": "true"}, json={"points": points})
        assert r.json()["result"]["status"] == "completed"
        r = c.put(
            "/collections/c/points",
            json={"points": [{"id": 5, "vector": [1, 1], "payload": {"c": 3}}]},
        )
        assert r.json()["result"]["status"] == "acknowledged"
        got = c.post(
            "/collections/c/points", json={"ids": [5, str(u)], "with_vector": True}
        ).json()["result"]
        assert got[0]["payload"] == {"c": 3}  # whole-point overwrite, not a merge
        assert got[0]["vector"] == pytest.approx([2**-0.5, 2**-0.5], rel=1e-6)  # Cosine: normalised
        assert got[1]["id"] == str(u) and got[1]["vector"] == pytest.approx([0, 1])
        r = c.put("/collections/c/points", json={"points": [{"id": 1, "vector": [1, 2, 3]}]})
        assert r.status_code == 400 and "expected dim: 2, got 3" in r.json()["status"]["error"]
        r = c.put("/collections/c/points", json={"points": [{"id": "item-1", "vector": [1, 2]}]})
        assert r.status_code == 400 and r.json()["result"] is None
    assert [v.kind for v in qdrant_double.take_violations()] == ["request"]


def test_qdrant_batch_named_and_sparse_vectors(qdrant_double: QdrantDouble) -> None:
    qdrant_double.create_collection(
        "c", vectors={"img": {"size": 2, "distance": "Euclid"}}, sparse_vectors={"txt": {}}
    )
    with qclient(qdrant_double) as c:
        batch = {
            "ids": [1, 2, 3],
            "vectors": {
                "img": [[0, 0], [3, 4], [1, 1]],
                "txt": [
                    {"indices": [1, 7], "values": [0.5, 2]},
                    {"indices": [7], "values": [1]},
                    {"indices": [], "values": []},
                ],
            },
            "payloads": [{"k": "a"}, None, {"k": "b"}],
        }
        assert c.put("/collections/c/points", json={"batch": batch}).status_code == 200
        rec = c.get("/collections/c/points/1").json()["result"]
        assert rec["vector"] == {
            "img": [0, 0],
            "txt": {"indices": [1, 7], "values": [0.5, 2]},
        }  # no normalising
        hits = c.post(
            "/collections/c/points/query", json={"query": [3, 4], "using": "img", "limit": 2}
        ).json()
        assert [(h["id"], h["score"]) for h in hits["result"]["points"]] == [
            (2, 0.0),
            (3, pytest.approx(13**0.5)),
        ]
        hits = c.post(
            "/collections/c/points/query",
            json={"query": {"indices": [7], "values": [1.0]}, "using": "txt", "with_payload": True},
        ).json()["result"]["points"]
        assert (
            [h["id"] for h in hits] == [1, 2, 3]
            and hits[0]["score"] == 2.0
            and hits[0]["payload"] == {"k": "a"}
        )
        r = c.put("/collections/c/points", json={"points": [{"id": 9, "vector": {"nope": [1, 2]}}]})
        assert r.status_code == 400 and "Not existing vector name" in r.json()["status"]["error"]


def test_qdrant_scroll_order_offset_defaults_and_filter(qdrant_double: QdrantDouble) -> None:
    uuids = sorted(str(uuid.uuid4()) for _ in range(5))
    ids: list[int | str] = [*uuids[::-1], 10, 2, 300]
    with qclient(qdrant_double) as c:
        qdrant_collection(c, size=2, distance="Dot")
        points = [
            {"id": i, "vector": [1, n], "payload": {"n": n, "even": n % 2 == 0}}
            for n, i in enumerate(ids)
        ]
        c.put("/collections/c/points", json={"points": points})
        page = c.post("/collections/c/points/scroll", json={}).json()["result"]
        assert [p["id"] for p in page["points"]] == [2, 10, 300, *uuids]  # integers first
        assert page["next_page_offset"] is None
        assert page["points"][0]["vector"] is None and page["points"][0]["payload"] == {
            "n": 6,
            "even": True,
        }
        seen, offset = [], None
        while True:
            body = {
                "limit": 3,
                "with_vector": True,
                "with_payload": False,
                **({"offset": offset} if offset is not None else {}),
            }
            res = c.post("/collections/c/points/scroll", json=body).json()["result"]
            seen += res["points"]
            offset = res["next_page_offset"]
            if offset is None:
                break
        assert [p["id"] for p in seen] == [2, 10, 300, *uuids]
        assert seen[0]["payload"] is None and seen[0]["vector"] == [1, 6]
        r = c.post("/collections/c/points/scroll", json={"offset": 10, "limit": 1}).json()["result"]
        assert r["points"][0]["id"] == 10 and r["next_page_offset"] == 300  # offset is inclusive
        flt = {"must": [{"key": "even", "match": {"value": True}}]}
        res = c.post("/collections/c/points/scroll", json={"filter": flt, "limit": 100}).json()[
            "result"
        ]
        assert sorted(p["payload"]["n"] for p in res["points"]) == [0, 2, 4, 6]
        assert (
            c.post("/collections/c/points/count", json={"filter": flt, "exact": True}).json()[
                "result"
            ]["count"]
            == 4
        )
        c.post("/collections/c/points/delete", json={"filter": flt})
        c.post("/collections/c/points/delete", json={"points": [10]})
        assert c.post("/collections/c/points/count", json={}).json()["result"]["count"] == 3
        many = [{"id": 1000 + i, "vector": [0, 1]} for i in range(25)]
        c.put("/collections/c/points", json={"points": many})
        assert (
            len(c.post("/collections/c/points/scroll", json={}).json()["result"]["points"]) == 10
        )  # default limit


def test_qdrant_query_exact_top_k(qdrant_double: QdrantDouble) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(50, 8))
    qdrant_double.create_collection("c", vectors={"size": 8, "distance": "Cosine"})
    qdrant_double.add_points("c", [{"id": i, "vector": v.tolist()} for i, v in enumerate(vectors)])
    q = rng.normal(size=8)
    expected = np.argsort(
        -(vectors / np.linalg.norm(vectors, axis=1, keepdims=True)) @ (q / np.linalg.norm(q))
    )[:5]
    with qclient(qdrant_double) as c:
        res = c.post(
            "/collections/c/points/query", json={"query": {"nearest": q.tolist()}, "limit": 5}
        ).json()
        assert [p["id"] for p in res["result"]["points"]] == expected.tolist()
        assert all(
            p["payload"] is None for p in res["result"]["points"]
        )  # with_payload defaults to false


# ======================================================================================
# Pinecone semantics
# ======================================================================================


@pytest.fixture
def pc(pinecone_double: PineconeDouble) -> Iterator[tuple[PineconeDouble, httpx.Client]]:
    with httpx.Client(base_url=pinecone_double.url, headers=PC_HEADERS, timeout=10) as c:
        yield pinecone_double, c


def data_client(d: PineconeDouble, name: str, **headers: str) -> httpx.Client:
    return httpx.Client(
        base_url="http://" + d.index_host(name), headers={**PC_HEADERS, **headers}, timeout=10
    )


def test_pinecone_control_plane(pc: tuple[PineconeDouble, httpx.Client]) -> None:
    d, c = pc
    spec = {"serverless": {"cloud": "aws", "region": "us-east-1"}}
    r = c.post(
        "/indexes",
        json={
            "name": "docs",
            "dimension": 4,
            "metric": "dotproduct",
            "spec": spec,
            "tags": {"t": "1"},
        },
    )
    assert r.status_code == 201
    model = r.json()
    assert (
        model["host"] == f"127.0.0.1:{d.indexes['docs'].listener.port}" and model["status"]["ready"]
    )
    assert model["spec"]["serverless"]["region"] == "us-east-1" and model["tags"] == {"t": "1"}
    assert (
        c.post("/indexes", json={"name": "docs", "dimension": 4, "spec": spec}).status_code == 409
    )
    r = c.post("/indexes", json={"name": "Bad_Name", "dimension": 4, "spec": spec})
    assert (
        r.status_code == 400
        and r.json()["error"]["code"] == "INVALID_ARGUMENT"
        and r.json()["status"] == 400
    )
    assert c.get("/indexes/docs").json()["dimension"] == 4
    assert [i["name"] for i in c.get("/indexes").json()["indexes"]] == ["docs"]
    r = c.patch("/indexes/docs", json={"deletion_protection": "enabled"})
    assert r.status_code == 202
    assert c.delete("/indexes/docs").status_code == 403
    c.patch("/indexes/docs", json={"deletion_protection": "disabled"})
    r = c.delete("/indexes/docs")
    assert r.status_code == 202 and r.content == b""
    r = c.get("/indexes/docs")
    assert r.status_code == 404 and r.json()["error"]["code"] == "NOT_FOUND"
    r = c.get("/indexes", headers={"Api-Key": "wrong"})
    assert r.status_code == 401 and r.json() == {
        "error": {"code": "UNAUTHENTICATED", "message": "Invalid API Key"},
        "status": 401,
    }
    assert d.violations == []
    assert c.get("/indexes", headers={"X-Pinecone-Api-Version": "2025-10"}).status_code == 400
    without = {"Api-Key": "test-api-key"}
    assert httpx.get(d.url + "/indexes", headers=without).status_code == 400
    assert len(d.take_violations()) == 2


def test_pinecone_data_plane(pc: tuple[PineconeDouble, httpx.Client]) -> None:
    d, _ = pc
    d.create_index("idx", 3, "cosine")
    with data_client(d, "idx") as c:
        ids = ["b", "a", "B", "a#2", "é", "a#10"]
        vecs = [
            {"id": i, "values": [1, n + 1, 0], "metadata": {"n": n, "tags": ["x"]}}
            for n, i in enumerate(ids)
        ]
        assert c.post("/vectors/upsert", json={"vectors": vecs, "namespace": "ns1"}).json() == {
            "upsertedCount": 6
        }
        c.post(
            "/vectors/upsert", json={"vectors": [{"id": "z", "values": [0, 0, 1]}]}
        )  # default namespace
        fetched = c.get(
            "/vectors/fetch", params=[("ids", "a"), ("ids", "nope"), ("namespace", "ns1")]
        ).json()
        assert list(fetched["vectors"]) == ["a"]
        assert fetched["vectors"]["a"]["metadata"] == {"n": 1.0, "tags": ["x"]}
        assert isinstance(fetched["vectors"]["a"]["metadata"]["n"], float)
        listed, token = [], None
        while True:
            params = {
                "namespace": "ns1",
                "limit": 4,
                **({"paginationToken": token} if token else {}),
            }
            page = c.get("/vectors/list", params=params).json()
            listed += [v["id"] for v in page["vectors"]]
            token = page.get("pagination", {}).get("next")
            if not token:
                break
        assert listed == sorted(ids, key=lambda s: s.encode())  # bitwise order
        assert [
            v["id"]
            for v in c.get("/vectors/list", params={"namespace": "ns1", "prefix": "a#"}).json()[
                "vectors"
            ]
        ] == ["a#10", "a#2"]
        stats = c.post("/describe_index_stats", json={}).json()
        assert stats["namespaces"] == {"__default__": {"vectorCount": 1}, "ns1": {"vectorCount": 6}}
        assert stats["totalVectorCount"] == 7 and stats["dimension"] == 3
        names = c.get("/namespaces", params={"limit": 1}).json()
        assert (
            names["namespaces"] == [{"name": "__default__", "record_count": 1}]
            and names["pagination"]["next"]
        )
        nxt = c.get(
            "/namespaces", params={"limit": 1, "paginationToken": names["pagination"]["next"]}
        ).json()
        assert nxt["namespaces"] == [{"name": "ns1", "record_count": 6}] and "pagination" not in nxt
        assert c.get("/namespaces/ns1").json()["record_count"] == 6
        assert c.get("/namespaces/nope").status_code == 404
        res = c.post(
            "/query",
            json={"namespace": "ns1", "topK": 2, "vector": [0, 1, 0], "filter": {"n": {"$gte": 3}}},
        ).json()
        assert [m["id"] for m in res["matches"]] == ["a#10", "é"] and "values" not in res[
            "matches"
        ][0]
        c.post("/vectors/delete", json={"ids": ["a"], "namespace": "ns1"})
        assert c.get("/namespaces/ns1").json()["record_count"] == 5
    assert d.violations == []


def test_pinecone_limits(pc: tuple[PineconeDouble, httpx.Client]) -> None:
    d, _ = pc
    d.create_index("idx", 4, "dotproduct")
    v = [0.1, 0.2, 0.3, 0.4]

    def upsert(c: httpx.Client, *vectors: dict) -> httpx.Response:
        return c.post("/vectors/upsert", json={"vectors": list(vectors)})

    with data_client(d, "idx") as c:
        cases = {
            "too many": upsert(c, *[{"id": str(i), "values": v} for i in range(1001)]),
            "zero": upsert(c, {"id": "z", "values": [0, 0, 0, 0]}),
            "dimension": upsert(c, {"id": "d", "values": [1, 2]}),
            "null": upsert(c, {"id": "n", "values": v, "metadata": {"a": None}}),
            "nested": upsert(c, {"id": "n", "values": v, "metadata": {"a": {"b": 1}}}),
            "number list": upsert(c, {"id": "n", "values": v, "metadata": {"a": [1, 2]}}),
            "40KB": upsert(c, {"id": "n", "values": v, "metadata": {"a": "x" * 41_000}}),
            "sparse": upsert(
                c,
                {
                    "id": "s",
                    "values": v,
                    "sparseValues": {"indices": list(range(1001)), "values": [1.0] * 1001},
                },
            ),
            "fetch": c.get("/vectors/fetch", params=[("ids", str(i)) for i in range(1001)]),
        }
        for name, r in cases.items():
            assert r.status_code == 400, name
            assert r.json()["code"] == 3 and r.json()["message"], name
        big = [
            {"id": str(i), "values": [0.123456789] * 4, "metadata": {"t": "y" * 3000}}
            for i in range(900)
        ]
        r = upsert(c, *big)
        assert r.status_code == 400 and "exceeds the maximum" in r.json()["message"]
        assert d.violations == []
        r = upsert(c, {"id": "x" * 513, "values": v})  # maxLength 512 is in the schema
        assert r.status_code == 400
        assert len(d.take_violations()) == 1
        r = upsert(
            c, {"id": "ok", "values": v, "sparseValues": {"indices": [1, 5], "values": [0.5, 0.5]}}
        )
        assert r.status_code == 200
        r = c.get("/vectors/fetch", params={"ids": "ok"}).json()
        assert r["vectors"]["ok"]["sparseValues"] == {"indices": [1, 5], "values": [0.5, 0.5]}
    with data_client(d, "idx", **{"Api-Key": "bad"}) as c:
        r = c.post("/describe_index_stats", json={})
        assert r.status_code == 401 and r.json()["code"] == 16


def test_pinecone_pod_index_and_stats_lag(pc: tuple[PineconeDouble, httpx.Client]) -> None:
    d, _ = pc
    d.create_index("pod", 2, spec={"pod": {"environment": "us-east1-gcp", "pod_type": "p1.x1"}})
    d.create_index("srv", 2)
    d.stats_lag_writes = 1
    with data_client(d, "pod") as c:
        c.post(
            "/vectors/upsert",
            json={"vectors": [{"id": "a", "values": [1, 0], "metadata": {"g": "x"}}]},
        )
        assert c.post("/describe_index_stats", json={}).json()["totalVectorCount"] == 0  # lagging
        c.post("/vectors/upsert", json={"vectors": [{"id": "b", "values": [0, 1]}]})
        assert c.post("/describe_index_stats", json={}).json()["totalVectorCount"] == 1
        assert (
            c.post("/describe_index_stats", json={"filter": {"g": "x"}}).json()["totalVectorCount"]
            == 1
        )
        assert c.get("/vectors/fetch", params={"ids": "b"}).json()["vectors"]["b"]["values"] == [
            0,
            1,
        ]
        assert (
            c.post("/query", json={"topK": 1, "vector": [0, 1]}).json()["matches"][0]["id"] == "b"
        )
        r = c.get("/vectors/list")
        assert r.status_code == 501 and r.json()["code"] == 12
        assert c.get("/namespaces").status_code == 501
    d.stats_lag_writes = 0
    with data_client(d, "srv") as c:
        r = c.post("/describe_index_stats", json={"filter": {"g": "x"}})
        assert r.status_code == 400
    assert d.violations == []


# ======================================================================================
# Weaviate semantics
# ======================================================================================


@pytest.fixture
def wv(weaviate_double: WeaviateDouble) -> Iterator[tuple[WeaviateDouble, httpx.Client]]:
    with httpx.Client(base_url=weaviate_double.url + "/v1", timeout=10) as c:
        yield weaviate_double, c


def test_weaviate_schema_rules(wv: tuple[WeaviateDouble, httpx.Client]) -> None:
    d, c = wv
    body = {
        "class": "article",
        "properties": [
            {"name": "Title", "dataType": ["text"]},
            {"name": "year", "dataType": ["int"]},
        ],
        "vectorIndexConfig": {"distance": "dot"},
    }
    created = c.post("/schema", json=body).json()
    assert created["class"] == "Article" and [p["name"] for p in created["properties"]] == [
        "title",
        "year",
    ]
    assert created["vectorIndexConfig"]["distance"] == "dot" and created["vectorizer"] == "none"
    assert c.post("/schema", json=body).status_code == 422
    assert c.post("/schema", json={"class": "Bad-Name"}).status_code == 422
    r = c.post(
        "/schema", json={"class": "Other", "properties": [{"name": "id", "dataType": ["text"]}]}
    )
    assert r.status_code == 422 and "reserved" in r.json()["error"][0]["message"]
    assert (
        c.post(
            "/schema",
            json={"class": "Other", "properties": [{"name": "a-b", "dataType": ["text"]}]},
        ).status_code
        == 422
    )
    named = {
        "class": "Multi",
        "vectorConfig": {"img": {"vectorIndexConfig": {"distance": "l2-squared"}}, "txt": {}},
    }
    assert c.post("/schema", json=named).status_code == 200
    assert [x["class"] for x in c.get("/schema").json()["classes"]] == ["Article", "Multi"]
    assert (
        c.get("/schema/Multi").json()["vectorConfig"]["img"]["vectorIndexConfig"]["distance"]
        == "l2-squared"
    )
    r = c.get("/schema/Nope")
    assert r.status_code == 404 and r.content == b""
    assert c.delete("/schema/Multi").status_code == 200
    assert c.get("/schema/Multi").status_code == 404
    assert d.violations == []


def test_weaviate_tenants_batch_and_cursor(wv: tuple[WeaviateDouble, httpx.Client]) -> None:
    d, c = wv
    d.create_class(
        {
            "class": "Doc",
            "properties": [{"name": "n", "dataType": ["int"]}],
            "multiTenancyConfig": {"enabled": True},
        }
    )
    assert (
        c.post(
            "/schema/Doc/tenants",
            json=[{"name": "t1"}, {"name": "t2", "activityStatus": "INACTIVE"}],
        ).status_code
        == 200
    )
    assert c.get("/schema/Doc/tenants").json() == [
        {"name": "t1", "activityStatus": "ACTIVE"},
        {"name": "t2", "activityStatus": "INACTIVE"},
    ]
    ids = sorted(str(uuid.uuid4()) for _ in range(7))
    objs = [
        {"class": "Doc", "id": i, "properties": {"n": n}, "vector": [n, 1.0], "tenant": "t1"}
        for n, i in enumerate(ids)
    ]
    bad_id, injected = str(uuid.uuid4()), ids[3]
    d.fail_objects([injected])
    objs += [
        {
            "class": "Doc",
            "id": bad_id,
            "properties": {"n": 1},
            "vector": [1.0, 2.0, 3.0],
            "tenant": "t1",
        },
        {
            "class": "Doc",
            "id": bad_id,
            "properties": {"n": 1},
            "vector": [1.0, 2.0],
            "tenant": "nope",
        },
        {
            "class": "Doc",
            "id": bad_id,
            "properties": {"n": "one"},
            "vector": [1.0, 2.0],
            "tenant": "t1",
        },
        {
            "class": "Doc",
            "id": bad_id,
            "properties": {"n": 1},
            "vector": [1.0, 2.0],
            "tenant": "t2",
        },
        {"class": "Doc", "id": bad_id, "properties": {"n": 1}, "vector": [1.0, 2.0]},
    ]
    r = c.post("/batch/objects", json={"objects": objs})
    assert r.status_code == 200
    results = r.json()
    failed = [
        x["result"]["errors"]["error"][0]["message"]
        for x in results
        if x["result"]["status"] == "FAILED"
    ]
    assert len(failed) == 6
    assert (
        "injected failure" in failed[0]
        and "length 3" in failed[1]
        and 'tenant not found: "nope"' in failed[2]
    )
    assert (
        "invalid int property 'n'" in failed[3]
        and "not active" in failed[4]
        and "without tenant" in failed[5]
    )
    assert (
        c.post("/batch/objects", json={"objects": [objs[3]]}).json()[0]["result"]["status"]
        == "SUCCESS"
    )
    over = {**objs[0], "properties": {"n": 100}}
    c.post("/batch/objects", json={"objects": [over]})  # overwrite by UUID
    seen, after = [], ""
    while True:
        page = c.get(
            "/objects",
            params={
                "class": "Doc",
                "tenant": "t1",
                "limit": 3,
                "after": after,
                "include": "vector",
            },
        ).json()
        seen += page["objects"]
        if len(page["objects"]) < 3:
            break
        after = page["objects"][-1]["id"]
    assert [o["id"] for o in seen] == ids
    assert (
        seen[0]["properties"] == {"n": 100}
        and seen[1]["vector"] == [1.0, 1.0]
        and seen[0]["tenant"] == "t1"
    )
    assert (
        "vector"
        not in c.get("/objects", params={"class": "Doc", "tenant": "t1"}).json()["objects"][0]
    )
    r = c.get("/objects", params={"class": "Doc", "tenant": "t1", "after": ids[0], "offset": 2})
    assert r.status_code == 422
    assert c.get("/objects", params={"class": "Doc"}).status_code == 422  # MT class needs a tenant
    q = '{ Aggregate { Doc(tenant: "t1") { meta { count } } } }'
    assert c.post("/graphql", json={"query": q}).json() == {
        "data": {"Aggregate": {"Doc": [{"meta": {"count": 7}}]}}
    }
    assert c.post("/aggregate/Doc", json={"tenant": "t1"}).json()["count"] == 7
    assert d.violations == []


def test_weaviate_single_objects_named_vectors_and_auth() -> None:
    with (
        WeaviateDouble(api_key="k") as d,
        httpx.Client(base_url=d.url + "/v1", headers={"Authorization": "Bearer k"}) as c,
    ):
        assert httpx.get(d.url + "/v1/schema").status_code == 401
        d.create_class(
            {
                "class": "Pic",
                "vectorConfig": {"a": {}, "b": {}},
                "properties": [{"name": "t", "dataType": ["text"]}],
            }
        )
        oid = str(uuid.uuid4())
        obj = {
            "class": "Pic",
            "id": oid,
            "properties": {"t": "x"},
            "vectors": {"a": [1, 2], "b": [[1, 0], [0, 1]]},
        }
        assert (
            c.post("/batch/objects", json={"objects": [obj]}).json()[0]["result"]["status"]
            == "SUCCESS"
        )
        got = c.get(f"/objects/Pic/{oid}", params={"include": "vector"}).json()
        assert got["vectors"] == {"a": [1.0, 2.0], "b": [[1.0, 0.0], [0.0, 1.0]]}
        r = c.put(
            f"/objects/Pic/{oid}",
            json={"class": "Pic", "id": oid, "properties": {"t": "y"}, "vectors": {"a": [3, 4]}},
        )
        assert r.status_code == 200 and r.json()["properties"] == {"t": "y"}
        assert c.delete(f"/objects/Pic/{oid}").status_code == 204
        assert c.get(f"/objects/Pic/{oid}").status_code == 404
        assert d.violations == []
        assert c.get("/objects/Pic/not-a-uuid").status_code == 400
        assert [v.kind for v in d.take_violations()] == ["request"]
