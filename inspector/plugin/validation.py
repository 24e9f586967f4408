"""What plugins hand back is checked at the border: type and JSON-safety, per hook.

A hook's return value, and the ``result`` it was handed to fill, become part of a run that is
written as strict JSON and read by every front end. A value of the wrong type (a string where a
``ComponentResult`` belongs) or one that is not JSON data (a tensor, a set, a numpy scalar) is
dropped and blamed on the plugin by name; the run goes on with everything else.
"""
from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Any

from inspector.results.limits import out_of_range
from inspector.results.records import ComponentResult, Tab, View
from inspector.results.schema import run_schema
from inspector.results.serialize import strict_json

MAX_DEPTH = 64


class PluginOutputError(Exception):
    """A plugin returned, or left in a result, a value the run cannot hold (it was dropped)."""


def json_problem(value: Any, where: str, depth: int = 0) -> str | None:
    """Why ``value`` is not plain JSON data (dataclasses of it allowed), or None."""
    if depth > MAX_DEPTH:
        return f"{where} is nested more than {MAX_DEPTH} deep"
    if value is None or isinstance(value, (bool, str)):
        return None
    if isinstance(value, (int, float)):
        problem = out_of_range(value)
        return f"{where}: {problem}, more than a run holds" if problem else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for name in _field_names(type(value)):
            problem = json_problem(getattr(value, name), f"{where}.{name}", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, (list, tuple)):
        if all(type(item) in _PLAIN for item in value) and not any(map(out_of_range, value)):
            return None  # shapes, rows of numbers: nothing to walk
        for i, item in enumerate(value):
            problem = json_problem(item, f"{where}[{i}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has a key of type {type(key).__name__}"
            problem = json_problem(item, f"{where}[{key!r}]", depth + 1)
            if problem:
                return problem
        return None
    return f"{where} is a {type(value).__module__}.{type(value).__name__}, not JSON data"


_PLAIN = frozenset({int, float, str, bool, type(None)})


@lru_cache(maxsize=256)
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


@lru_cache(maxsize=1)
def _component_validator() -> Any:
    import jsonschema

    schema = run_schema()
    return jsonschema.Draft202012Validator({"$ref": "#/$defs/ComponentResult", "$defs": schema["$defs"]})


def _schema_problems(result: Any) -> list[tuple[list[Any], str]]:
    """(path, message) for every place the component does not match the committed run schema.
    ``layers`` come from the tool's own capture and are left out (checked for JSON-safety only)."""

    data = strict_json(dataclasses.asdict(dataclasses.replace(result, layers=[])))
    return [(list(e.absolute_path), " ".join(e.message.split())[:120])
            for e in _component_validator().iter_errors(data)]


def repair_result(result: Any) -> list[str]:
    """Drop whatever in ``result`` is not JSON data or not of its schema type; say what was dropped."""

    if not isinstance(result, ComponentResult):
        return []
    dropped: list[str] = []
    _clear_out_of_range(result, "", dropped)
    defaults = {f.name: f for f in dataclasses.fields(result)}
    for name, f in defaults.items():
        value = getattr(result, name)
        if not json_problem(value, name):
            continue
        if isinstance(value, dict):
            for key in list(value):
                problem = (json_problem(key, name) if not isinstance(key, str)
                           else json_problem(value[key], f"{name}[{key!r}]"))
                if problem or not isinstance(key, str):
                    dropped.append(problem or f"{name} has a non-string key")
                    del value[key]
        elif isinstance(value, list):
            keep = []
            for i, item in enumerate(value):
                problem = json_problem(item, f"{name}[{i}]")
                (dropped.append(problem) if problem else keep.append(item))
            value[:] = keep
        else:
            dropped.append(json_problem(value, name) or name)
            _reset(result, f)
    for _ in range(50):  # each pass removes one offending item or field
        problems = _schema_problems(result)
        if not problems:
            break
        path, message = problems[0]
        field_name = path[0] if path else None
        if field_name not in defaults:
            break
        value = getattr(result, field_name)
        if len(path) >= 2 and isinstance(value, list) and isinstance(path[1], int) and path[1] < len(value):
            del value[path[1]]
        elif len(path) >= 2 and isinstance(value, dict) and path[1] in value:
            del value[path[1]]
        else:
            _reset(result, defaults[field_name])
        dropped.append(f"{'/'.join(map(str, path))}: {message}")
    return dropped


def _clear_out_of_range(obj: Any, where: str, dropped: list[str], depth: int = 0) -> None:
    """A number in a result's own fields that no run can hold (a FLOP count past 64 bits) becomes
    ``None`` where the field allows it, so the layer or measurement stays and only the figure goes;
    numbers in ``details``, ``metrics`` and views are dropped with their key by :func:`repair_result`."""
    if depth > MAX_DEPTH or not dataclasses.is_dataclass(obj) or isinstance(obj, type):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        problem = out_of_range(value) if isinstance(value, (int, float)) else None
        if problem and f.default is None:
            setattr(obj, f.name, None)
            dropped.append(f"{where}{f.name}: {problem}; left out")
        elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            for i, item in enumerate(value):
                _clear_out_of_range(item, f"{where}{f.name}[{i}].", dropped, depth + 1)
        elif dataclasses.is_dataclass(value):
            _clear_out_of_range(value, f"{where}{f.name}.", dropped, depth + 1)


def _reset(result: Any, f: dataclasses.Field) -> None:
    if f.default is not dataclasses.MISSING:
        setattr(result, f.name, f.default)
    elif f.default_factory is not dataclasses.MISSING:
        setattr(result, f.name, f.default_factory())


def check_hook_output(hook: str, plugin: str, value: Any, kwargs: dict[str, Any]) -> tuple[Any, str | None]:
    """(the value to use, what was dropped or None) for one implementation's call."""

    problems: list[str] = []
    if hook == "inspect_component":
        if value is not None and not isinstance(value, ComponentResult):
            return None, f"returned a {type(value).__name__}, not a ComponentResult; ignored"
        problems = repair_result(value) if value is not None else []
    elif hook in ("profile_component", "augment_component"):
        problems = repair_result(kwargs.get("result"))
        if hook == "profile_component" and value is not None and not isinstance(value, bool):
            problems.append(f"returned a {type(value).__name__}, not True or None")
            value = True  # it did run: do not let a second plugin profile the same component again
        if hook == "augment_component":
            value = None
    elif hook == "component_tabs":
        if value is None:
            return None, None
        if not isinstance(value, list):
            return None, f"returned a {type(value).__name__}, not a list of Tab; ignored"
        good = []
        for i, tab in enumerate(value):
            if not (isinstance(tab, Tab) and isinstance(tab.title, str) and isinstance(tab.views, list)
                    and all(isinstance(v, View) for v in tab.views)):
                problems.append(f"tab {i} is not a Tab of Views")
            elif json_problem(tab, f"tab {i}"):
                problems.append(json_problem(tab, f"tab {i}") or "")
            else:
                good.append(tab)
        value = good
    elif hook == "register_presets":
        value = None
    if problems:
        return value, "dropped what the run cannot hold: " + "; ".join(problems[:3]) + (
            f" (and {len(problems) - 3} more)" if len(problems) > 3 else "")
    return value, None
