"""Generic spec-validating HTTP test double.

An :class:`OpenAPIDouble` serves one or more OpenAPI 3.0 documents on 127.0.0.1.
Every request is routed by the spec's path templates and validated (path, query
and header parameters, JSON body); the handler's answer is validated against the
operation's response schema for its status code.  Anything that does not
validate is answered with HTTP 400 (a vendor-shaped error body) and recorded in
``double.violations``.  Faults (latency, 429/503, slow answers, fail-next) are
configured at runtime through ``double.faults``; every request is logged in
``double.requests``.

Schemas are compiled once into plain Python closures (``SchemaCompiler``): a
generic jsonschema walk costs ~60 ms per 256x768 upsert, the compiled form a few
ms.  Arrays whose items are plain numbers are checked in one pass over the list
(``set(map(type, xs))``; ``bool`` is its own type, so booleans are rejected)
plus one ``min``/``max`` for bounds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import copy
import datetime as _dt
import json
import math
import random
import re
import socket
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

SPECS_DIR = Path("/work/shared/specs")

# --------------------------------------------------------------------------------------
# Schema compiler
# --------------------------------------------------------------------------------------


class SchemaError(Exception):
    """A validation failure: ``path`` is built leaf-first, reversed for display."""

    __slots__ = ("msg", "path")

    def __init__(self, msg: str, path: list[str | int] | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.path: list[str | int] = path or []

    def at(self, key: str | int) -> SchemaError:
        self.path.append(key)
        return self

    def __str__(self) -> str:
        where = "$" + "".join(
            f"[{k}]" if isinstance(k, int) else f".{k}" for k in reversed(self.path)
        )
        return f"{where}: {self.msg}"


Check = Callable[[Any], SchemaError | None]


def _short(x: Any, limit: int = 80) -> str:
    s = repr(x)
    return s if len(s) <= limit else s[: limit - 3] + "..."


_HYPHENATED = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID_FORMS = re.compile(
    rf"^(?:{_HYPHENATED}|[0-9a-fA-F]{{32}}|urn:uuid:{_HYPHENATED}|\{{{_HYPHENATED}\}})$"
)


def _is_uuid_any(x: str) -> bool:
    """The forms Rust's ``Uuid::try_parse`` takes: hyphenated, simple, urn, braced."""
    return _UUID_FORMS.match(x) is not None


def _is_date_time(x: str) -> bool:
    try:
        _dt.datetime.fromisoformat(x)
    except ValueError:
        return False
    return "T" in x.upper()


def _is_byte(x: str) -> bool:
    try:
        base64.b64decode(x, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


_INT_RANGES = {
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
    "uint": (0, 2**64 - 1),
}

# String formats; integer formats are handled through _INT_RANGES.
DEFAULT_STRING_FORMATS: dict[str, Callable[[str], bool]] = {
    "uuid": _is_uuid_any,
    "date-time": _is_date_time,
    "byte": _is_byte,
}

_NUMBER_TYPES = frozenset({int, float})
_INT_TYPES = frozenset({int})
_NUMERIC_KEYS = frozenset(
    {"type", "format", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
    | {"description", "example", "title", "default", "deprecated"}
)


def _is_number(x: Any) -> bool:
    t = type(x)
    return t is float or t is int or isinstance(x, (np.floating, np.integer))


def _is_integer(x: Any) -> bool:
    return type(x) is int or isinstance(x, np.integer)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda x: type(x) is str,
    "number": _is_number,
    "integer": _is_integer,
    "boolean": lambda x: type(x) is bool,
    "array": lambda x: type(x) is list or isinstance(x, (tuple, np.ndarray)),
    "object": lambda x: type(x) is dict or isinstance(x, Mapping),
}


class SchemaCompiler:
    """Compiles OpenAPI 3.0 schema objects (resolving local ``$ref``s) into checks."""

    def __init__(self, document: dict, string_formats: Mapping[str, Callable[[str], bool]]) -> None:
        self.doc = document
        self.formats = dict(string_formats)
        self._refs: dict[str, list[Check | None]] = {}
        self._memo: dict[int, tuple[Any, Check]] = {}
        self._lock = threading.RLock()

    def resolve(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema:
            schema = self.pointer(schema["$ref"])
            seen += 1
            if seen > 50:
                raise ValueError("circular $ref chain")
        return schema

    def pointer(self, ref: str) -> Any:
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported: {ref}")
        node: Any = self.doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def compile(self, schema: Any) -> Check:
        with self._lock:
            return self._compile(schema)

    def compile_ref(self, ref: str) -> Check:
        return self._ref(ref)

    # -- internals ------------------------------------------------------------------

    def _compile(self, schema: Any) -> Check:
        if schema is True or schema is None or schema == {}:
            return _ok
        if schema is False:
            return lambda x: SchemaError("no value allowed here")
        memo = self._memo.get(id(schema))
        if memo is not None:
            return memo[1]
        # OAS 3.0: siblings of $ref are ignored
        fn = self._ref(schema["$ref"]) if "$ref" in schema else self._node(schema)
        self._memo[id(schema)] = (schema, fn)  # keeps the schema alive: its id stays unique
        return fn

    def _ref(self, ref: str) -> Check:
        with self._lock:
            cell = self._refs.get(ref)
            if cell is None:
                cell = self._refs[ref] = [None]
                try:
                    cell[0] = self._compile(self.pointer(ref))
                except Exception:
                    del self._refs[ref]
                    raise
        if cell[0] is not None:
            return cell[0]

        def trampoline(x: Any, cell: list[Check | None] = cell) -> SchemaError | None:
            return cell[0](x)  # type: ignore[misc]

        return trampoline

    def _node(self, s: dict) -> Check:
        checks: list[Check] = []
        nullable = s.get("nullable") is True
        typ = s.get("type")
        if typ is not None:
            checks.append(self._type(typ))
        if "enum" in s:
            checks.append(_enum(s["enum"]))
        fmt = s.get("format")
        if fmt in _INT_RANGES and typ in ("integer", None):
            checks.append(_int_range(fmt))
        elif fmt in self.formats and typ in ("string", None):
            checks.append(_string_format(fmt, self.formats[fmt]))
        if "minimum" in s or "maximum" in s:
            checks.append(_bounds(s))
        if "multipleOf" in s:
            checks.append(_multiple_of(s["multipleOf"]))
        if "minLength" in s or "maxLength" in s or "pattern" in s:
            checks.append(_string_limits(s))
        if "items" in s or "minItems" in s or "maxItems" in s or s.get("uniqueItems"):
            checks.append(self._array(s))
        if {
            "properties",
            "required",
            "additionalProperties",
            "minProperties",
            "maxProperties",
        } & s.keys():
            checks.append(self._object(s))
        for kw in ("allOf", "anyOf", "oneOf"):
            if kw in s:
                checks.append(self._combinator(kw, s[kw], s.get("discriminator")))
        if "not" in s:
            inner = self._compile(s["not"])
            checks.append(
                lambda x: (
                    SchemaError("must not match the 'not' schema") if inner(x) is None else None
                )
            )
        return _all(checks, nullable)

    def _type(self, typ: str) -> Check:
        test = _TYPE_CHECKS.get(typ)
        if test is None:
            return _ok

        def check(x: Any) -> SchemaError | None:
            return None if test(x) else SchemaError(f"{_short(x)} is not of type {typ!r}")

        return check

    def _array(self, s: dict) -> Check:
        items = s.get("items")
        item_check = self._compile(items) if items is not None else None
        fast = self._numeric_items(items) if items is not None else None
        min_items, max_items, unique = s.get("minItems"), s.get("maxItems"), s.get("uniqueItems")

        def check(x: Any) -> SchemaError | None:
            if not (type(x) is list or isinstance(x, (tuple, np.ndarray))):
                return None
            n = len(x)
            if min_items is not None and n < min_items:
                return SchemaError(f"array has {n} items, fewer than minItems {min_items}")
            if max_items is not None and n > max_items:
                return SchemaError(f"array has {n} items, more than maxItems {max_items}")
            if unique and not isinstance(x, np.ndarray):
                seen = {json.dumps(v, sort_keys=True, default=str) for v in x}
                if len(seen) != n:
                    return SchemaError("array items are not unique")
            if item_check is None or (fast is not None and fast(x)):
                return None
            for i, v in enumerate(x):  # slow path: find and locate the error
                err = item_check(v)
                if err is not None:
                    return err.at(i)
            return None

        return check

    def _numeric_items(self, items: Any) -> Callable[[Any], bool] | None:
        """A whole-array check for ``items: {type: number|integer, format?, min?, max?}``."""
        s = self.resolve(items)
        if (
            not isinstance(s, dict)
            or s.get("type") not in ("number", "integer")
            or not s.keys() <= _NUMERIC_KEYS
        ):
            return None
        integer = s["type"] == "integer"
        allowed = _INT_TYPES if integer else _NUMBER_TYPES
        lo, hi = _INT_RANGES.get(s.get("format", ""), (None, None)) if integer else (None, None)
        lo_x = hi_x = False
        if "minimum" in s:
            lo, lo_x = (
                (s["minimum"] if lo is None else max(lo, s["minimum"])),
                bool(s.get("exclusiveMinimum")),
            )
        if "maximum" in s:
            hi, hi_x = (
                (s["maximum"] if hi is None else min(hi, s["maximum"])),
                bool(s.get("exclusiveMaximum")),
            )

        def in_bounds(mn: Any, mx: Any) -> bool:
            if lo is not None and (mn < lo or (lo_x and mn == lo)):
                return False
            return not (hi is not None and (mx > hi or (hi_x and mx == hi)))

        def check(x: Any) -> bool:
            if isinstance(x, np.ndarray):  # answers built by the doubles
                if x.ndim != 1 or x.dtype.kind not in ("iu" if integer else "fiu"):
                    return False
                if x.dtype.kind == "f" and not np.isfinite(x).all():
                    return False
                return x.size == 0 or (lo is None and hi is None) or in_bounds(x.min(), x.max())
            if not x:
                return True
            if not set(map(type, x)) <= allowed:
                return False
            return (lo is None and hi is None) or in_bounds(min(x), max(x))

        return check

    def _object(self, s: dict) -> Check:
        props = [(k, self._compile(v)) for k, v in (s.get("properties") or {}).items()]
        names = frozenset(k for k, _ in props)
        required = list(s.get("required") or [])
        extra = s.get("additionalProperties", True)
        extra_check = self._compile(extra) if isinstance(extra, dict) and extra else None
        forbid_extra = extra is False
        min_p, max_p = s.get("minProperties"), s.get("maxProperties")

        def check(x: Any) -> SchemaError | None:
            if not (type(x) is dict or isinstance(x, Mapping)):
                return None
            for k in required:
                if k not in x:
                    return SchemaError(f"required property {k!r} is missing")
            if min_p is not None and len(x) < min_p:
                return SchemaError(f"object has fewer than {min_p} properties")
            if max_p is not None and len(x) > max_p:
                return SchemaError(f"object has more than {max_p} properties")
            for k, sub in props:
                if k in x:
                    err = sub(x[k])
                    if err is not None:
                        return err.at(k)
            if forbid_extra or extra_check is not None:
                for k in x:
                    if k in names:
                        continue
                    if forbid_extra:
                        return SchemaError(f"additional property {k!r} is not allowed")
                    err = extra_check(x[k])  # type: ignore[misc]
                    if err is not None:
                        return err.at(k)
            return None

        return check

    def _combinator(self, kw: str, subs: list, discriminator: dict | None) -> Check:
        checks = [self._compile(sub) for sub in subs]
        if discriminator and kw in ("anyOf", "oneOf"):
            prop = discriminator["propertyName"]
            mapping = {k: self._ref(v) for k, v in (discriminator.get("mapping") or {}).items()}

            def by_discriminator(x: Any) -> SchemaError | None:
                if not isinstance(x, Mapping):
                    return SchemaError(f"{_short(x)} is not of type 'object'")
                value = x.get(prop)
                target = mapping.get(value) if isinstance(value, str) else None
                if target is None and isinstance(value, str):
                    ref = f"#/components/schemas/{value}"
                    try:
                        target = self._ref(ref)
                    except (KeyError, ValueError):
                        target = None
                if target is None:
                    return SchemaError(f"discriminator {prop!r} has unknown value {_short(value)}")
                return target(x)

            return by_discriminator

        if kw == "allOf":

            def all_of(x: Any) -> SchemaError | None:
                for c in checks:
                    err = c(x)
                    if err is not None:
                        return err
                return None

            return all_of

        if kw == "anyOf":

            def any_of(x: Any) -> SchemaError | None:
                errors = []
                for c in checks:
                    err = c(x)
                    if err is None:
                        return None
                    errors.append(err)
                return _best(errors, x)

            return any_of

        def one_of(x: Any) -> SchemaError | None:
            errors, matched = [], 0
            for c in checks:
                err = c(x)
                if err is None:
                    matched += 1
                else:
                    errors.append(err)
            if matched == 1:
                return None
            if matched > 1:
                return SchemaError(
                    f"value matches {matched} schemas of oneOf, expected exactly one"
                )
            return _best(errors, x)

        return one_of


def _ok(x: Any) -> None:
    return None


def _all(checks: list[Check], nullable: bool) -> Check:
    if not checks:
        return _ok
    if len(checks) == 1 and not nullable:
        return checks[0]

    def check(x: Any) -> SchemaError | None:
        if x is None and nullable:
            return None
        for c in checks:
            err = c(x)
            if err is not None:
                return err
        return None

    return check


def _best(errors: list[SchemaError], x: Any) -> SchemaError:
    deepest = max(errors, key=lambda e: len(e.path))
    if deepest.path:
        return deepest
    return SchemaError(
        f"{_short(x)} matches none of the allowed schemas ({'; '.join(e.msg for e in errors[:4])})"
    )


def _enum(values: list) -> Check:
    def check(x: Any) -> SchemaError | None:
        for v in values:
            if x == v and (type(x) is bool) == (type(v) is bool):
                return None
        return SchemaError(f"{_short(x)} is not one of {_short(values, 120)}")

    return check


def _int_range(fmt: str) -> Check:
    lo, hi = _INT_RANGES[fmt]

    def check(x: Any) -> SchemaError | None:
        if type(x) is int and not lo <= x <= hi:
            return SchemaError(f"{x} is out of range for format {fmt}")
        return None

    return check


def _string_format(fmt: str, test: Callable[[str], bool]) -> Check:
    def check(x: Any) -> SchemaError | None:
        if type(x) is str and not test(x):
            return SchemaError(f"{_short(x)} is not a valid {fmt}")
        return None

    return check


def _bounds(s: dict) -> Check:
    lo, hi = s.get("minimum"), s.get("maximum")
    lo_x, hi_x = bool(s.get("exclusiveMinimum")), bool(s.get("exclusiveMaximum"))

    def check(x: Any) -> SchemaError | None:
        if not _is_number(x):
            return None
        if lo is not None and (x < lo or (lo_x and x == lo)):
            return SchemaError(f"{x} is less than the minimum {lo}")
        if hi is not None and (x > hi or (hi_x and x == hi)):
            return SchemaError(f"{x} is greater than the maximum {hi}")
        return None

    return check


def _multiple_of(m: float) -> Check:
    def check(x: Any) -> SchemaError | None:
        if _is_number(x) and not math.isclose(x / m, round(x / m)):
            return SchemaError(f"{x} is not a multiple of {m}")
        return None

    return check


def _string_limits(s: dict) -> Check:
    lo, hi = s.get("minLength"), s.get("maxLength")
    pattern = re.compile(s["pattern"]) if "pattern" in s else None

    def check(x: Any) -> SchemaError | None:
        if type(x) is not str:
            return None
        if lo is not None and len(x) < lo:
            return SchemaError(f"string is shorter than minLength {lo}")
        if hi is not None and len(x) > hi:
            return SchemaError(f"string is longer than maxLength {hi}")
        if pattern is not None and not pattern.search(x):
            return SchemaError(f"{_short(x)} does not match pattern {pattern.pattern!r}")
        return None

    return check


# --------------------------------------------------------------------------------------
# Spec: operations and routing
# --------------------------------------------------------------------------------------


@dataclass
class Param:
    name: str
    location: str  # path | query | header
    required: bool
    schema: Any
    check: Check
    explode: bool = True


@dataclass
class Operation:
    op_id: str
    method: str
    template: str
    params: list[Param]
    body_check: Check | None
    body_required: bool
    responses: dict[str, Any]


class Spec:
    """One OpenAPI 3.0 document: routes, parameter/body checks, response checks."""

    def __init__(
        self,
        document: dict,
        string_formats: Mapping[str, Callable[[str], bool]] | None = None,
    ) -> None:
        self.doc = document
        self.compiler = SchemaCompiler(
            document, {**DEFAULT_STRING_FORMATS, **(string_formats or {})}
        )
        server = (document.get("servers") or [{"url": ""}])[0]
        url = server["url"]
        for var, info in (server.get("variables") or {}).items():
            url = url.replace("{" + var + "}", str(info.get("default", "")))
        self.base_path = urllib.parse.urlsplit(url).path.rstrip("/")
        self._routes: list[tuple[re.Pattern[str], list[str], dict[str, Operation]]] = []
        self._by_id: dict[str, Operation] = {}
        self._response_checks: dict[tuple[str, str], Check | None] = {}
        self._build_routes()

    def _build_routes(self) -> None:
        routes = []
        for template, item in self.doc.get("paths", {}).items():
            shared = item.get("parameters", [])
            ops: dict[str, Operation] = {}
            for method, op in item.items():
                if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                    continue
                op_id = op.get("operationId") or f"{method} {template}"
                operation = Operation(
                    op_id=op_id,
                    method=method.upper(),
                    template=template,
                    params=self._params(shared, op.get("parameters", [])),
                    body_check=None,
                    body_required=False,
                    responses=op.get("responses", {}),
                )
                body = self.compiler.resolve(op.get("requestBody"))
                if body:
                    media = body.get("content", {}).get("application/json")
                    if media is not None:
                        operation.body_check = self.compiler.compile(media.get("schema", {}))
                    operation.body_required = bool(body.get("required"))
                ops[method.upper()] = operation
                self._by_id[op_id] = operation
            names = re.findall(r"{([^}]+)}", template)
            regex = re.escape(self.base_path + template)
            for name in names:
                regex = regex.replace(re.escape("{" + name + "}"), "([^/]+)")
            routes.append((len(names), -len(template), re.compile(regex + "$"), names, ops))
        routes.sort(key=lambda r: (r[0], r[1]))  # literal segments win over templates
        self._routes = [(rx, names, ops) for _, _, rx, names, ops in routes]

    def _params(self, shared: list, own: list) -> list[Param]:
        merged: dict[tuple[str, str], dict] = {}
        for p in list(shared) + list(own):
            p = self.compiler.resolve(p)
            merged[(p["name"], p["in"])] = p
        out = []
        for p in merged.values():
            if p["in"] not in ("path", "query", "header"):
                continue
            schema = p.get("schema", {})
            out.append(
                Param(
                    name=p["name"],
                    location=p["in"],
                    required=bool(p.get("required")) or p["in"] == "path",
                    schema=schema,
                    check=self.compiler.compile(schema),
                    explode=p.get("explode", p.get("style", "form") == "form"),
                )
            )
        return out

    def operation(self, op_id: str) -> Operation:
        return self._by_id[op_id]

    def match(self, method: str, path: str) -> tuple[Operation, dict[str, str]] | str | None:
        """``(operation, raw path params)``; ``"method"`` if only the method is wrong; None."""
        wrong_method = False
        for rx, names, ops in self._routes:
            m = rx.match(path)
            if m is None:
                continue
            op = ops.get(method)
            if op is None:
                wrong_method = True
                continue
            return op, {n: urllib.parse.unquote(v) for n, v in zip(names, m.groups(), strict=True)}
        return "method" if wrong_method else None

    def response_check(self, op: Operation, status: int) -> tuple[bool, Check | None]:
        """(documented?, body check or None when the spec gives no JSON schema)."""
        key = None
        for candidate in (str(status), f"{str(status)[0]}XX", "default"):
            if candidate in op.responses:
                key = candidate
                break
        if key is None:
            return False, None
        cache_key = (op.op_id, key)
        if cache_key not in self._response_checks:
            resp = self.compiler.resolve(op.responses[key]) or {}
            media = (resp.get("content") or {}).get("application/json")
            self._response_checks[cache_key] = (
                self.compiler.compile(media.get("schema", {})) if media is not None else None
            )
        return True, self._response_checks[cache_key]

    def schema_check(self, ref: str) -> Check:
        return self.compiler.compile_ref(ref)

    def has(self, ref: str) -> bool:
        try:
            self.compiler.pointer(ref)
        except (KeyError, IndexError, ValueError):
            return False
        return True

    def coerce(self, raw: str, schema: Any) -> Any:
        """Converts a parameter string to the type its schema asks for (best effort)."""
        s = self.compiler.resolve(schema) or {}
        alternatives = [self.compiler.resolve(a) for a in (s.get("anyOf") or s.get("oneOf") or [s])]
        typed = sorted(alternatives, key=lambda a: a.get("type") in ("string", None))
        for alt in typed:
            t = alt.get("type")
            if t == "integer" and re.fullmatch(r"-?\d+", raw):
                return int(raw)
            if t == "number":
                try:
                    return int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)
                except ValueError:
                    continue
            if t == "boolean" and raw in ("true", "false"):
                return raw == "true"
            if t in ("string", None):
                return raw
        return raw


_SPEC_CACHE: dict[tuple, Spec] = {}
_SPEC_LOCK = threading.Lock()


def load_spec(
    filename: str,
    patches: Mapping[str, Any] | None = None,
    string_formats: Mapping[str, Callable[[str], bool]] | None = None,
) -> Spec:
    """Loads (once per process) a spec from SPECS_DIR, applying JSON-pointer ``patches``.

    Patches document deliberate deviations from the vendor text; each double lists its own.
    """
    key = (
        filename,
        json.dumps(patches or {}, sort_keys=True),
        tuple(sorted((string_formats or {}).items())),
    )
    with _SPEC_LOCK:
        spec = _SPEC_CACHE.get(key)
        if spec is None:
            text = (SPECS_DIR / filename).read_bytes()
            if filename.endswith((".yaml", ".yml")):
                loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
                doc = yaml.load(text, Loader=loader)
            else:
                doc = orjson.loads(text)
            for pointer, value in (patches or {}).items():
                _set_pointer(doc, pointer, copy.deepcopy(value))
            spec = _SPEC_CACHE[key] = Spec(doc, string_formats)
        return spec


def _set_pointer(doc: dict, pointer: str, value: Any) -> None:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node = doc
    for part in parts[:-1]:
        node = node[part]
    node[parts[-1]] = value


# --------------------------------------------------------------------------------------
# Requests, responses, faults, records
# --------------------------------------------------------------------------------------


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    raw_body: bytes
    context: Any = None  # what the listener serves (e.g. a Pinecone index name)
    operation: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # coerced path/query/header params
    body: Any = None
    content_length: int = 0
    too_large: bool = False


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able (numpy arrays allowed); None = empty body
    headers: dict[str, str] = field(default_factory=dict)


class HTTPError(Exception):
    """Raised by handlers; turned into the vendor's error body unless ``body`` is given."""

    def __init__(
        self,
        status: int,
        message: str = "",
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.body, self.headers = status, message, body, headers or {}


class NotModelled(HTTPError):
    """A valid request using a feature the double does not model: 501 + a violation."""

    def __init__(self, message: str) -> None:
        super().__init__(501, f"not modelled by the test double: {message}")


@dataclass(frozen=True)
class Violation:
    kind: str  # request | response | route | unimplemented | internal
    method: str
    path: str
    operation: str | None
    message: str

    def __str__(self) -> str:
        return (
            f"{self.kind} violation on {self.method} {self.path} [{self.operation}]: {self.message}"
        )


@dataclass
class RequestRecord:
    method: str
    path: str
    operation: str | None
    time: float  # time.monotonic() when the request arrived
    status: int = 0
    responded: float = 0.0  # time.monotonic() when the answer was sent
    fault: str | None = None  # which injected fault shaped the answer


class Faults:
    """Runtime fault injection.  All rates are probabilities per targeted request.

    ``operations`` / ``methods`` restrict which requests faults (latency included) apply to
    (None = all).
    ``fail_next(n, status)`` answers the next n targeted requests with ``status``.
    ``rate_timeout`` executes the request, then waits ``timeout_sleep_s`` before answering.
    """

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.reset(seed)

    def reset(self, seed: int = 0) -> None:
        """Back to no faults, re-seeded."""
        self.latency_s = 0.0
        self.rate_429 = 0.0
        self.retry_after: float | None = 1
        self.rate_503 = 0.0
        self.rate_timeout = 0.0
        self.timeout_sleep_s = 5.0
        self.operations: set[str] | None = None
        self.methods: set[str] | None = None
        self._fail_next: deque[int] = deque()
        self.seed(seed)

    def seed(self, seed: int) -> None:
        with self._lock:
            self.rng = random.Random(seed)

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._fail_next.extend([status] * n)

    def targets(self, operation: str | None, method: str) -> bool:
        if self.operations is not None and operation not in self.operations:
            return False
        return self.methods is None or method in self.methods

    def decide(self, operation: str | None, method: str) -> tuple[str, int] | None:
        """None, or (fault name, status) for this request; 0 status = answer normally (timeout)."""
        if not self.targets(operation, method):
            return None
        with self._lock:
            if self._fail_next:
                return "fail_next", self._fail_next.popleft()
            if not (self.rate_429 or self.rate_503 or self.rate_timeout):
                return None
            r = self.rng.random()
        if r < self.rate_429:
            return "429", 429
        if r < self.rate_429 + self.rate_503:
            return "503", 503
        if r < self.rate_429 + self.rate_503 + self.rate_timeout:
            return "timeout", 0
        return None


# --------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "vectra-io-double"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.discard(self.connection)  # type: ignore[attr-defined]

    def handle_any(self) -> None:
        self.server.listener.serve(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    allow_reuse_address = True


class Listener:
    """One listening socket serving one spec for a double."""

    def __init__(self, double: OpenAPIDouble, spec: Spec, context: Any = None) -> None:
        self.double, self.spec, self.context = double, spec, context
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.listener = self  # type: ignore[attr-defined]
        self._server.connections = set()  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        for conn in list(self._server.connections):  # type: ignore[attr-defined]
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._server.server_close()

    def serve(self, h: _Handler) -> None:
        record = RequestRecord(h.command, h.path, None, time.monotonic())
        raw_path, _, qs = h.path.partition("?")
        req = Request(
            method=h.command,
            path=raw_path,
            query=urllib.parse.parse_qs(qs, keep_blank_values=True),
            headers={k.lower(): v for k, v in h.headers.items()},
            raw_body=b"",
            context=self.context,
        )
        try:
            self._read_body(h, req)
        except (OSError, ValueError):
            h.close_connection = True
            return
        try:
            resp, fault, delay = self.double._process(self, req)
        except Exception as exc:  # a bug in the double must fail the test, not hang it
            self.double._violation("internal", req, f"{type(exc).__name__}: {exc}")
            resp, fault, delay = Response(500, {"error": f"test double crashed: {exc}"}), None, 0.0
        record.operation, record.fault, record.status = req.operation, fault, resp.status
        faults = self.double.faults
        latency = faults.latency_s if faults.targets(req.operation, req.method) else 0.0
        self.double._pause(delay + latency)
        record.responded = time.monotonic()
        self.double.requests.append(record)  # before sending: the client may look right after
        try:
            self._send(h, resp)
        except OSError:
            h.close_connection = True

    def _read_body(self, h: _Handler, req: Request) -> None:
        limit = self.double.max_body_bytes
        if "chunked" in h.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                data = h.rfile.read(size)
                h.rfile.readline()
                total += size
                if limit is None or total <= limit:
                    chunks.append(data)
            req.content_length = total
            req.too_large = limit is not None and total > limit
            req.raw_body = b"" if req.too_large else b"".join(chunks)
            return
        length = int(h.headers.get("Content-Length") or 0)
        req.content_length = length
        if limit is not None and length > limit:
            req.too_large = True
            remaining = length
            while remaining > 0:  # drain so the connection stays usable
                got = h.rfile.read(min(remaining, 1 << 20))
                if not got:
                    raise OSError("client went away")
                remaining -= len(got)
            return
        req.raw_body = h.rfile.read(length) if length else b""

    @staticmethod
    def _send(h: _Handler, resp: Response) -> None:
        if resp.body is None:
            payload = b""
        elif isinstance(resp.body, bytes):
            payload = resp.body
        else:
            payload = orjson.dumps(
                resp.body, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
            )
        try:
            reason = HTTPStatus(resp.status).phrase
        except ValueError:
            reason = "Unknown"
        head = [f"HTTP/1.1 {resp.status} {reason}", f"Content-Length: {len(payload)}"]
        if payload and not any(k.lower() == "content-type" for k in resp.headers):
            head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in resp.headers.items()]
        if h.close_connection:
            head.append("Connection: close")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        h.wfile.write(data + payload if h.command != "HEAD" else data)


# --------------------------------------------------------------------------------------
# The double
# --------------------------------------------------------------------------------------


def operation(*op_ids: str) -> Callable[[Callable], Callable]:
    """Marks a double method as the handler of the given spec operationIds."""

    def deco(fn: Callable) -> Callable:
        fn._operations = op_ids  # type: ignore[attr-defined]
        return fn

    return deco


class OpenAPIDouble:
    """Base class: subclasses set ``spec`` in ``__init__`` and decorate handlers with
    :func:`operation`.  A handler takes a validated :class:`Request` and returns a
    :class:`Response` (or raises :class:`HTTPError`).  Handlers run under ``self.lock``.
    """

    _handlers: dict[str, str] = {}
    #: ``$ref`` of the vendor's error schema, used for undocumented error statuses.
    error_schema_ref: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        handlers: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                for op_id in getattr(attr, "_operations", ()):
                    handlers[op_id] = name
        cls._handlers = handlers

    def __init__(self, spec: Spec, *, max_body_bytes: int | None = None, seed: int = 0) -> None:
        self.spec = spec
        self.max_body_bytes = max_body_bytes
        self.faults = Faults(seed)
        self.violations: list[Violation] = []
        self.requests: list[RequestRecord] = []
        self.lock = threading.RLock()
        self._stopping = threading.Event()
        self._listeners: list[Listener] = []
        self._main = self.add_listener(spec)
        self._started = False

    # -- lifecycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._main.url

    def add_listener(self, spec: Spec, context: Any = None) -> Listener:
        listener = Listener(self, spec, context)
        self._listeners.append(listener)
        if getattr(self, "_started", False):
            listener.start()
        return listener

    def remove_listener(self, listener: Listener) -> None:
        self._listeners.remove(listener)
        listener.stop()

    def start(self) -> OpenAPIDouble:
        self._stopping.clear()
        for listener in self._listeners:
            listener.start()
        self._started = True
        return self

    def stop(self) -> None:
        self._stopping.set()
        for listener in list(self._listeners):
            listener.stop()
        self._started = False

    def __enter__(self) -> OpenAPIDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def take_violations(self) -> list[Violation]:
        """Returns and clears the recorded violations (for tests that provoke them)."""
        taken, self.violations[:] = list(self.violations), []
        return taken

    # -- vendor hooks -----------------------------------------------------------------

    def error_body(self, status: int, message: str, req: Request) -> Any:
        return {"error": message}

    def authenticate(self, req: Request) -> None:
        """Raise HTTPError to reject the request."""

    def too_large(self, req: Request) -> HTTPError:
        return HTTPError(
            413, f"request body of {req.content_length} bytes exceeds {self.max_body_bytes}"
        )

    def bad_json(self, req: Request, error: str) -> str:
        return f"invalid JSON body: {error}"

    def describe_problem(self, req: Request, problem: str) -> str:
        """The message sent back for a request that does not validate."""
        return f"request does not match the API spec: {problem}"

    def check_request(self, req: Request) -> str | None:
        """Vendor checks beyond the schema; a returned message is a violation."""
        return None

    # -- request processing -----------------------------------------------------------

    def _pause(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _violation(self, kind: str, req: Request, message: str) -> None:
        self.violations.append(Violation(kind, req.method, req.path, req.operation, message))

    def _error(self, req: Request, err: HTTPError) -> Response:
        body = err.body if err.body is not None else self.error_body(err.status, err.message, req)
        return Response(err.status, body, dict(err.headers))

    def _process(self, listener: Listener, req: Request) -> tuple[Response, str | None, float]:
        """Returns (validated response, injected fault name, extra delay before sending)."""
        spec = listener.spec
        matched = spec.match(req.method, req.path)
        if not isinstance(matched, tuple):
            wrong_method = matched == "method"
            what = "method not allowed for" if wrong_method else "no operation in the spec for"
            self._violation("route", req, f"{what} {req.method} {req.path}")
            err = HTTPError(405 if wrong_method else 404, f"{what} {req.method} {req.path}")
            return self._error(req, err), None, 0.0
        op, raw_params = matched
        req.operation = op.op_id
        early = self._reject(spec, op, req, raw_params)
        if early is not None:
            return self._checked(spec, op, req, early), None, 0.0
        fault = self.faults.decide(op.op_id, req.method)
        if fault is not None and fault[1]:  # answer with the injected status instead
            resp = self._fault_response(req, fault[1])
            return self._checked(spec, op, req, resp), fault[0], 0.0
        delay = self.faults.timeout_sleep_s if fault is not None else 0.0  # timeout: answer late
        resp = self._handle(op, req)
        return self._checked(spec, op, req, resp), fault and fault[0], delay

    def _reject(
        self, spec: Spec, op: Operation, req: Request, raw_params: dict[str, str]
    ) -> Response | None:
        """Auth, size cap and validation, in that order; None when the request may proceed."""
        try:
            self.authenticate(req)
            if req.too_large:
                raise self.too_large(req)
        except HTTPError as err:
            return self._error(req, err)
        problem = self._validate_request(spec, op, req, raw_params) or self.check_request(req)
        if problem is None:
            return None
        self._violation("request", req, problem)
        return self._error(req, HTTPError(400, self.describe_problem(req, problem)))

    def _fault_response(self, req: Request, status: int) -> Response:
        headers = {}
        if status == 429 and self.faults.retry_after is not None:
            ra = self.faults.retry_after
            headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
        what = "too many requests" if status == 429 else f"status {status}"
        return self._error(req, HTTPError(status, f"injected fault: {what}", headers=headers))

    def _handle(self, op: Operation, req: Request) -> Response:
        handler_name = self._handlers.get(op.op_id)
        try:
            if handler_name is None:
                raise NotModelled(f"operation {op.op_id}")
            with self.lock:
                return getattr(self, handler_name)(req)
        except HTTPError as err:
            if isinstance(err, NotModelled):
                self._violation("unimplemented", req, err.message)
            return self._error(req, err)
        except Exception as exc:  # a bug in the double must fail the test
            self._violation("internal", req, f"{type(exc).__name__}: {exc}")
            return self._error(req, HTTPError(500, f"test double crashed: {exc!r}"))

    def _validate_request(
        self, spec: Spec, op: Operation, req: Request, raw: dict[str, str]
    ) -> str | None:
        for p in op.params:
            if p.location == "path":
                value: Any = spec.coerce(raw[p.name], p.schema)
            elif p.location == "query":
                values = req.query.get(p.name)
                if values is None:
                    if p.required:
                        return f"required query parameter {p.name!r} is missing"
                    continue
                s = spec.compiler.resolve(p.schema) or {}
                if s.get("type") == "array":
                    if not p.explode:
                        values = [v for item in values for v in item.split(",")]
                    value = [spec.coerce(v, s.get("items", {})) for v in values]
                else:
                    value = spec.coerce(values[-1], p.schema)
            else:
                header = req.headers.get(p.name.lower())
                if header is None:
                    if p.required:
                        return f"required header {p.name!r} is missing"
                    continue
                value = spec.coerce(header, p.schema)
            err = p.check(value)
            if err is not None:
                return f"{p.location} parameter {p.name!r}: {err}"
            req.params[p.name] = value
        if op.body_check is None:
            return None
        if not req.raw_body.strip():
            return "request body is required" if op.body_required else None
        ctype = req.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "application/json":
            return f"Content-Type must be application/json, got {ctype!r}"
        try:
            req.body = orjson.loads(req.raw_body)
        except orjson.JSONDecodeError as exc:
            return self.bad_json(req, str(exc))
        err = op.body_check(req.body)
        return None if err is None else f"request body {err}"

    def _checked(self, spec: Spec, op: Operation, req: Request, resp: Response) -> Response:
        """Validates a response against the spec; an invalid one becomes a 400 + violation."""
        documented, check = spec.response_check(op, resp.status)
        if not documented:
            if resp.status < 400 or not (self.error_schema_ref and spec.has(self.error_schema_ref)):
                problem = f"status {resp.status} is not documented for {op.op_id}"
                self._violation("response", req, problem)
                return self._error(req, HTTPError(400, problem))
            check = spec.schema_check(self.error_schema_ref)
        if check is None:
            if resp.body is None:
                return resp
            if resp.status >= 400:  # documented without content: send none, as the spec says
                return Response(resp.status, None, resp.headers)
            problem = f"status {resp.status} of {op.op_id} has no JSON body in the spec"
            self._violation("response", req, problem)
            return self._error(req, HTTPError(400, problem))
        if resp.body is None:
            problem = f"status {resp.status} of {op.op_id} requires a JSON body"
        else:
            err = check(resp.body)
            if err is None:
                return resp
            problem = f"response body (status {resp.status}) {err}"
        self._violation("response", req, problem)
        return self._error(req, HTTPError(400, problem))

    # -- direct calls (seeding helpers) -----------------------------------------------

    def call(
        self,
        op_id: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        context: Any = None,
        spec: Spec | None = None,
    ) -> Response:
        """Runs a handler in-process (no HTTP, no validation, no faults); raises HTTPError."""
        op = (spec or self.spec).operation(op_id)
        req = Request(op.method, op.template, {}, {}, b"", context=context, operation=op_id)
        req.params = dict(params or {})
        req.body = body
        with self.lock:
            return getattr(self, self._handlers[op_id])(req)
