"""The JSON report: the run's result objects, versioned by ``schema_version``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inspector.errors import InspectorError
from inspector.files import read_regular, write_text
from inspector.results.limits import MAX_FLOAT, MAX_INT, MIN_INT
from inspector.results.records import RunResult
from inspector.results.schema import run_schema
from inspector.results.serialize import READABLE_VERSIONS, migrate


def dumps(run: RunResult) -> str:
    return json.dumps(run.to_dict(), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write(run: RunResult, path: str | Path) -> None:
    write_text(path, dumps(run))


def load(path: str | Path) -> RunResult:
    raw = read_regular(path, limit=MAX_RUN_BYTES, what="file")  # a FIFO or device is refused, not read
    try:
        data: Any = json.loads(raw.decode("utf-8"), parse_constant=_no_constant, parse_float=_finite_float,
                               parse_int=_bounded_int)
    except RecursionError:
        raise InspectorError(f"{path} is not a JSON run: nested too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InspectorError(f"{path} is not a JSON run: {' '.join(str(exc).split())[:200]}") from None
    if not isinstance(data, dict) or "schema_version" not in data:
        raise InspectorError(f"{path} is not an ldm-inspector run (no schema_version)")
    if data["schema_version"] not in READABLE_VERSIONS or isinstance(data["schema_version"], bool):
        readable = ", ".join(map(str, READABLE_VERSIONS))
        raise InspectorError(f"{path} has schema version {data['schema_version']!r}; this version reads {readable}")
    data = migrate(data)
    validate(data, path)
    if not data.get("components") and data.get("interrupted") is not True:  # only a run cut short has none
        raise InspectorError(f"{path} holds no components and was not interrupted: not a run this tool wrote")
    try:
        return RunResult.from_dict(data)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:  # schema-valid yet unusable
        raise InspectorError(f"{path} does not match the run schema: {exc}") from None


#: A saved run larger than this is not one of ours (sd15's full profile with layers is ~2 MB).
MAX_RUN_BYTES = 512 * 2**20


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


#: No figure of a real run comes near these (:mod:`inspector.results.limits`, the same figures the
#: tool's own options and plugin values are held to): integers are 64-bit counts (parameters,
#: FLOPs, bytes) and seeds, and a float beyond 1e18 (milliseconds: 30 million years) is an edit,
#: not a measurement. Beyond them, formatting and float conversion would print 300-digit numbers or fail.


def _finite_float(text: str) -> float:
    value = float(text)
    if not -MAX_FLOAT <= value <= MAX_FLOAT:  # infinities too
        raise ValueError(f"the number {text[:20]} is out of range (at most {MAX_FLOAT:g} in magnitude)")
    return value


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > len(str(MAX_INT)) or not MIN_INT <= int(text) <= MAX_INT:
        raise ValueError(f"the integer {text[:20]}{'...' if len(text) > 20 else ''} is out of range (64 bits)")
    return int(text)


def validate(data: Any, path: str | Path = "run") -> None:
    """Check ``data`` against the committed JSON Schema; the first problem becomes one line."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(run_schema())
    # the most relevant error, descending into ``anyOf`` (a ``TimingStats | None`` field): "-5 is less
    # than the minimum of 0" at the number itself, not "... is not valid under any of the given schemas"
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        message = " ".join(error.message.split())
        raise InspectorError(f"{path} does not match the run schema at {where}: {message[:200]}")
