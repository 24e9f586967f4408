"""The JSON report: the run's result objects, versioned by ``schema_version``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspector.errors import InspectorError
from inspector.files import write_text
from inspector.results import READABLE_VERSIONS, SCHEMA_VERSION, RunResult, migrate


def dumps(run: RunResult) -> str:
    return json.dumps(run.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write(run: RunResult, path: str | Path) -> None:
    write_text(path, dumps(run))


def load(path: str | Path) -> RunResult:
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InspectorError(f"no such file: {path}") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InspectorError(f"{path} is not a JSON run: {exc}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise InspectorError(f"{path} is not an ldm-inspector run (no schema_version)")
    if data["schema_version"] not in READABLE_VERSIONS or isinstance(data["schema_version"], bool):
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise InspectorError(f"{path} has schema version {data['schema_version']!r}; this version reads {readable}")
    data = migrate(data)
    validate(data, path)
    try:
        return RunResult.from_dict(data)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:  # schema-valid yet unusable
        raise InspectorError(f"{path} does not match the run schema: {exc}") from None


def validate(data: Any, path: str | Path = "run") -> None:
    """Check ``data`` against the committed JSON Schema; the first problem becomes one line."""
    import jsonschema

    from .schema import committed_schema

    validator = jsonschema.Draft202012Validator(committed_schema())
    error = next(iter(sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = " ".join(error.message.split())
        raise InspectorError(f"{path} does not match the run schema at {where}: {message[:200]}")
