"""Results to and from JSON data: strict-JSON cleaning, rebuilding dataclasses from plain data, and
migration of runs written by older schema versions."""
from __future__ import annotations

import dataclasses
import math
import types
from typing import Any

SCHEMA_VERSION = 2
#: Versions :func:`migrate` can bring up to ``SCHEMA_VERSION``.
READABLE_VERSIONS = (1, 2)


#: Schema 1 had no ``View.tab``: the tab each built-in view belonged in, by title.
_V1_TABS = {"Blocks": "Blocks", "FLOPs by block": "Blocks", "Time by block": "Blocks",
            "Time by block (chart)": "Blocks", "Encode and decode": "VAE", "VAE timing and memory": "VAE",
            "Schedule": "Scheduler", "Timesteps": "Scheduler", "Compatible schedulers": "Scheduler",
            "Prompt tokens": "Tokenizer"}


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a run written by an older schema version up to ``SCHEMA_VERSION`` (a new dict).

    Version 1 -> 2: ``pipeline.steps[].unet`` became ``denoiser`` (it times a transformer or a
    prior just as well); views gained ``tab`` (the built-in views get the tab they were shown in)."""
    version = data.get("schema_version")
    if version == SCHEMA_VERSION or version not in READABLE_VERSIONS:
        return data
    # Copy only what changes: a saved run is data from anywhere, and a deep copy of a run nested
    # thousands of levels deep would exhaust the stack before validation could refuse it.
    data = dict(data)
    pipeline = data.get("pipeline")
    if isinstance(pipeline, dict) and isinstance(pipeline.get("steps"), list):
        data["pipeline"] = pipeline = dict(pipeline)
        pipeline["steps"] = [
            {**{k: v for k, v in step.items() if k != "unet"}, "denoiser": step["unet"]}
            if isinstance(step, dict) and "unet" in step and "denoiser" not in step else step
            for step in pipeline["steps"]]
    if isinstance(data.get("components"), list):
        components = []
        for comp in data["components"]:
            if isinstance(comp, dict) and isinstance(comp.get("views"), list):
                comp = dict(comp)
                comp["views"] = [
                    {**view, "tab": _V1_TABS.get(view["title"], "")}
                    if isinstance(view, dict) and "tab" not in view and isinstance(view.get("title"), str) else view
                    for view in comp["views"]]
            components.append(comp)
        data["components"] = components
    data["schema_version"] = SCHEMA_VERSION
    return data


def strict_json(value: Any) -> Any:
    """Make data strict-JSON safe: NaN and infinities become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def _build(cls: Any, data: Any) -> Any:
    """Rebuild nested dataclasses from plain data, ignoring keys this version does not know."""
    import typing

    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:
    import typing

    if value is None:
        return None
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if origin in (list,) and args and dataclasses.is_dataclass(args[0]):
        return [_build(args[0], v) for v in value]
    if origin in (typing.Union, types.UnionType):
        for arg in args:
            if dataclasses.is_dataclass(arg):
                return _build(arg, value)
        return value
    return value
