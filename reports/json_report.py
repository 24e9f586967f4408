"""The JSON report: the run's result objects, versioned by ``schema_version``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspector.errors import InspectorError
from inspector.files import write_text
from inspector.results import SCHEMA_VERSION, RunResult


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
    if data["schema_version"] != SCHEMA_VERSION:
        raise InspectorError(f"{path} has schema version {data['schema_version']}; this version reads {SCHEMA_VERSION}")
    try:
        return RunResult.from_dict(data)
    except (TypeError, KeyError, AttributeError) as exc:
        raise InspectorError(f"{path} does not match the run schema: {exc}") from None
