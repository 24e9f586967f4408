"""The run's JSON Schema, generated from the result dataclasses.

``reports/schema/run.schema.json`` is this module's output, committed so that other tools can
validate runs without importing us; a test fails when the two drift apart. Regenerate with
``python -m inspector.results.schema > reports/schema/run.schema.json``.

Fields without a default are required (the minimum contract); fields added later have
defaults, so older runs of the same version still validate. Unknown properties are allowed,
so later versions and plugins can add without breaking readers. ``float`` fields may be
``null``: NaN and infinities are written as ``null``.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from typing import Any

from inspector.results import records
from inspector.results.serialize import SCHEMA_VERSION

SCHEMA_ID = "https://ldm-inspector.invalid/schema/run-v{}.json"


def _type(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return {}
    if hint is type(None):
        return {"type": "null"}
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer"}
    if hint is float:
        return {"type": ["number", "null"]}
    if hint is str:
        return {"type": "string"}
    if dataclasses.is_dataclass(hint):
        _define(hint, defs)
        return {"$ref": f"#/$defs/{typing.cast(type, hint).__name__}"}
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (typing.Union, types.UnionType):
        options = [_type(a, defs) for a in args]
        return {"anyOf": options}
    if origin is list:
        return {"type": "array", "items": _type(args[0], defs) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type(args[1], defs) if args else {}}
    raise TypeError(f"no JSON Schema for {hint!r}")


def _bounded(schema: dict[str, Any], f: dataclasses.Field) -> dict[str, Any]:
    """A field marked ``NON_NEGATIVE`` gets ``minimum: 0`` (on its items, for a list), one with a
    range (the inputs: ``_range`` in :mod:`inspector.results.records`) ``minimum`` and ``maximum``; the keywords
    constrain numbers only, so ``null`` stays allowed where the type allows it."""
    bounds = {k: f.metadata[k] for k in ("minimum", "maximum") if k in f.metadata}
    if not bounds:
        return schema
    if schema.get("type") == "array":
        return {**schema, "items": {**schema["items"], **bounds}}
    return {**schema, **bounds}


def _define(cls: Any, defs: dict[str, Any]) -> None:
    if cls.__name__ in defs:
        return
    defs[cls.__name__] = {}  # reserve: recursive types
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    doc = " ".join((cls.__doc__ or "").split())
    if doc.startswith(cls.__name__ + "("):  # the signature dataclasses write when there is no docstring
        doc = ""
    defs[cls.__name__] = {
        "type": "object",
        **({"description": doc} if doc else {}),
        "properties": {f.name: _bounded(_type(hints[f.name], defs), f) for f in fields},
        # the minimum contract: fields without a default. Fields added later carry defaults, so a
        # run written before they existed still validates (add freely, remove nothing).
        "required": [f.name for f in fields
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING],
        "additionalProperties": True,
    }


def build_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    _define(records.RunResult, defs)
    root = dict(defs.pop("RunResult"))
    root["properties"] = dict(root["properties"], schema_version={"const": SCHEMA_VERSION})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID.format(SCHEMA_VERSION),
        "title": f"ldm-inspector run, schema version {SCHEMA_VERSION}",
        **root,
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    return json.dumps(build_schema(), indent=2, ensure_ascii=False) + "\n"


@functools.lru_cache(maxsize=1)
def run_schema() -> dict[str, Any]:
    """The schema runs are validated against (built once per process; treat it as read-only)."""
    return build_schema()


def _type_text(prop: dict[str, Any]) -> str:
    if "$ref" in prop:
        return prop["$ref"].rsplit("/", 1)[-1]
    if "const" in prop:
        return json.dumps(prop["const"])
    if "enum" in prop:
        return "|".join(json.dumps(v) for v in prop["enum"])
    if "anyOf" in prop:
        return " | ".join(_type_text(p) for p in prop["anyOf"])
    kind = prop.get("type")
    if kind == "array":
        return f"[{_type_text(prop.get('items', {}))}]"
    if isinstance(kind, list):
        kind = "|".join(k for k in kind)
    return {"string": "str", "integer": "int", "number": "float", "number|null": "float", "boolean": "bool",
            "object": "{...}", "null": "null", None: "any"}.get(kind, str(kind))


def outline(width: int = 100) -> str:
    """The schema as a field list a person reads in a minute: one paragraph per object, its fields in
    order with their types (``Name`` another object, ``[Name]`` a list, ``| null`` optional). The
    README's "JSON output" section is this text (``tests/test_docs.py`` checks it):
    ``python -m inspector.results.schema --outline``."""
    schema = build_schema()
    objects = [("RunResult", schema), *sorted(schema["$defs"].items())]
    lines: list[str] = []
    for name, definition in objects:
        fields = [f"{key}: {_type_text(prop)}" for key, prop in definition.get("properties", {}).items()]
        line = f"{name}:"
        for i, text in enumerate(fields):
            piece = f" {text}" + ("," if i < len(fields) - 1 else "")
            if len(line) + len(piece) > width:
                lines.append(line)
                line = "   "
            line += piece
        lines.append(line)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(outline() if sys.argv[1:] == ["--outline"] else schema_text(), end="")
