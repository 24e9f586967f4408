"""Config files in a model folder, read as data from strangers: regular files only (a FIFO named
there would block a plain read forever), bounded in size, strict JSON (no ``NaN``), one line per
problem. The precheck and the loader read ``model_index.json`` through the same function, so both
refuse the same files."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from inspector.errors import InspectorError, SourceError
from inspector.files import read_regular

#: A config or tokenizer file larger than this is not a config (T5's tokenizer.json is 2.4 MB).
MAX_CONFIG_BYTES = 64 * 2**20
#: ``model_index.json`` names a few components; real ones are under 2 KB.
MAX_MODEL_INDEX_BYTES = 2**20


def read_json(path: Path, *, what: str = "JSON file", limit: int = MAX_CONFIG_BYTES) -> Any:
    """Parse a JSON file that must be regular and small; any problem is one line."""
    try:
        raw = read_regular(path, limit=limit, what=what)
    except InspectorError as exc:
        raise SourceError(str(exc)) from None
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant)
    except RecursionError:
        raise SourceError(f"cannot read {path}: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {' '.join(str(exc).split())[:200]}") from None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_model_index(folder: Path) -> dict[str, Any]:
    """The folder's ``model_index.json``, which must be a regular file holding a JSON object."""
    index = folder / "model_index.json"
    if not os.path.lexists(index):
        raise SourceError(f"{folder} has no model_index.json: not a diffusers pipeline folder")
    data = read_json(index, what="model_index.json", limit=MAX_MODEL_INDEX_BYTES)
    if not isinstance(data, dict):
        raise SourceError(f"{index} must hold a JSON object, got {type(data).__name__}")
    return data
