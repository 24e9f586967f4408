"""The run's tidy tables: one row per observation, units in column names.

``components``, ``layers``, ``measurements`` (profile), ``steps`` and ``pipeline`` (profile:
end-to-end figures, intervals, what is unstable), ``plugins``, ``errors``, one
``view_<component>_<title>`` per table a plugin shows, and one ``view_pipeline_<title>`` per table
about the whole pipeline (predicted memory, fit verdict). The CSV export writes them as files
(``reports/csv_report.py``), :meth:`RunResult.tables` gives them as pandas DataFrames. Every table
is built from ``run.to_dict()``, so a run written during ``inspect``/``profile`` and one loaded back
from its JSON give identical tables.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from inspector.results.records import RunResult


def timed_call(component: Any) -> Any:
    """The measurement whose timing is the component's ``timing``, for a :class:`ComponentResult` or
    its JSON form (a dict); ``None`` when the component was not timed."""
    get = (lambda obj, key: obj.get(key)) if isinstance(component, dict) else getattr
    timing = get(component, "timing")
    if timing is None:
        return None
    return next((m for m in get(component, "measurements") or [] if get(m, "timing") == timing), None)


def shape_text(shapes: list[list[int]]) -> str:
    return ";".join("x".join(str(d) for d in shape) for shape in shapes)


def _timing(prefix: str, timing: dict | None) -> dict[str, Any]:
    timing = timing or {}
    return {f"{prefix}_ms_median": timing.get("median"), f"{prefix}_ms_iqr": timing.get("iqr"),
            f"{prefix}_ms_min": timing.get("min"), f"{prefix}_ms_max": timing.get("max"),
            f"{prefix}_count": timing.get("count"), f"{prefix}_ms_cold": timing.get("cold"),
            f"{prefix}_ms_p90": timing.get("p90"), f"{prefix}_ms_p99": timing.get("p99"),
            f"{prefix}_rel_spread": timing.get("rel_spread"),
            # absent (not measured) stays empty; measured and steady is False
            f"{prefix}_unstable": timing.get("unstable", False) if timing else None,
            f"{prefix}_flags": "; ".join(timing.get("flags") or []) if timing else None}


def _timed_call(component: dict) -> dict[str, Any]:
    """Which call ``time_*`` measured and its FLOPs: ``flops`` is the whole example call (the VAE's
    encode + decode), so a rate divides ``timed_call_flops`` by ``time_ms_median``."""
    call = timed_call(component) or {}
    return {"timed_call": call.get("name"), "timed_call_flops": call.get("flops")}


def _memory(memory: dict | None) -> dict[str, Any]:
    memory = memory or {}
    return {"memory_bytes_peak": memory.get("peak"), "memory_kind": memory.get("kind"),
            "memory_bytes_cold_peak": memory.get("cold_peak"), "memory_bytes_before": memory.get("before")}


def tables(run: RunResult) -> dict[str, tuple[list[str], list[dict[str, Any]]]]:
    """File name -> (columns, rows), all from the run's JSON form."""
    data = run.to_dict()
    out: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
    metric_names = sorted({k for c in data["components"] for k in (c.get("metrics") or {})})
    rows = []
    for c in data["components"]:
        params = c.get("parameters") or {}
        row = {"component": c["name"], "class_name": c["class_name"], "library": c["library"], "kind": c["kind"],
               "present": c["present"], "plugin": c["plugin"], "parameters_total": params.get("total"),
               "parameters_trainable": params.get("trainable"), "parameters_bytes": params.get("bytes"),
               "flops": c["flops"], **_timing("time", c.get("timing")), **_timed_call(c), **_memory(c.get("memory")),
               "activation_bytes": c.get("activation_bytes"), "cpu_activation_bytes": c.get("cpu_activation_bytes"),
               "errors_count": len(c.get("errors") or [])}
        row.update({f"metric_{name}": (c.get("metrics") or {}).get(name) for name in metric_names})
        rows.append(row)
    out["components.csv"] = (list(rows[0]) if rows else ["component"], rows)
    layer_rows = [{"component": c["name"], "layer": layer["name"], "type": layer["type"], "depth": layer["depth"],
                   "input_shapes": shape_text(layer["input_shapes"]),
                   "output_shapes": shape_text(layer["output_shapes"]),
                   "parameters": layer["parameters"], "flops": layer["flops"], "calls": layer["calls"]}
                  for c in data["components"] for layer in c["layers"]]
    out["layers.csv"] = (["component", "layer", "type", "depth", "input_shapes", "output_shapes", "parameters",
                          "flops", "calls"], layer_rows)
    if data.get("command") == "profile" or any(c.get("measurements") for c in data["components"]):
        m_rows = [{"component": c["name"], "measurement": m["name"], **_timing("time", m["timing"]),
                   **_memory(m.get("memory")), "flops": m["flops"], "flops_per_second": m["flops_per_second"],
                   "fraction_of_peak": m["fraction_of_peak"], "calls_per_run": m["calls_per_run"],
                   "error": m["error"]}
                  for c in data["components"] for m in c.get("measurements") or []]
        columns = ["component", "measurement", *_timing("time", None), *_memory(None), "flops", "flops_per_second",
                   "fraction_of_peak", "calls_per_run", "error"]
        out["measurements.csv"] = (columns, m_rows)
    pipeline = data.get("pipeline")
    if pipeline:
        s_rows = [{"step": s["index"], "timestep": s["timestep"], "denoiser_ms": s["denoiser"],
                   "scheduler_ms": s["scheduler"], "other_ms": s["other"], "total_ms": s["total"]}
                  for s in pipeline["steps"]]
        out["steps.csv"] = (["step", "timestep", "denoiser_ms", "scheduler_ms", "other_ms", "total_ms"], s_rows)
        machine = data.get("machine") or {}
        interval = pipeline.get("overhead_interval") or [None, None]
        sum_interval = pipeline.get("component_sum_ratio_interval") or [None, None]
        e2e = {"total_ms": pipeline.get("total"), "total_rel_spread": pipeline.get("total_rel_spread"),
               "bare_total_ms": pipeline.get("bare_total"), "bare_rel_spread": pipeline.get("bare_rel_spread"),
               "it_per_s": pipeline.get("it_per_s"), "repeats": pipeline.get("repeats"),
               "overhead_ratio": pipeline.get("overhead_ratio"), "overhead_ratio_low": interval[0],
               "overhead_ratio_high": interval[1], "component_sum_ratio": pipeline.get("component_sum_ratio"),
               "component_sum_ratio_low": sum_interval[0], "component_sum_ratio_high": sum_interval[1],
               "unstable": ";".join(pipeline.get("unstable") or []),
               "machine_busy": machine.get("busy") if machine else None,
               "machine_other_cpu_mean": machine.get("other_cpu_mean") if machine else None,
               "machine_load_max": machine.get("load_max") if machine else None,
               "error": pipeline.get("error")}
        out["pipeline.csv"] = (list(e2e), [e2e])
    out["plugins.csv"] = (["plugin", "version", "source", "distribution", "hooks", "error"], [
        {"plugin": p["name"], "version": p["version"], "source": p["source"], "distribution": p.get("distribution"),
         "hooks": ";".join(p.get("hooks") or []), "error": p["error"]} for p in data["plugins"]])
    out["errors.csv"] = (["component", "plugin", "hook", "kind", "error"], [
        {"component": c["name"], "plugin": e.get("plugin"), "hook": e.get("hook"), "kind": e.get("kind"),
         "error": e.get("error")} for c in data["components"] for e in c.get("errors") or []])
    for view in data.get("views") or []:  # views about the whole pipeline
        if view["kind"] == "table" and view["columns"]:
            columns = [str(col) for col in view["columns"]]
            out[f"view_pipeline_{slug(view['title'])}.csv"] = (columns,
                                                               [dict(zip(columns, row)) for row in view["rows"]])
    for c in data["components"]:
        for view in c.get("views") or []:
            if view["kind"] != "table" or not view["columns"]:
                continue
            name = f"view_{slug(c['name'])}_{slug(view['title'])}.csv"
            columns = [str(col) for col in view["columns"]]
            view_rows = [dict(zip(columns, row)) for row in view["rows"]]
            out[name] = (columns, view_rows)
    return out


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "table"


def frames(run: RunResult) -> dict[str, Any]:
    """Every table of ``run`` as a pandas DataFrame, by name (``components``, ``layers``, ...):
    the CSV export's tables and columns, whole numbers kept whole (``Int64`` where cells are
    missing), text as it is (the CSV export alone guards text against spreadsheet formulas)."""
    return {name.removesuffix(".csv"): frame(columns, rows) for name, (columns, rows) in tables(run).items()}


def frame(columns: list[str], rows: list[dict[str, Any]]) -> Any:
    """One table as a DataFrame: counts stay counts, where a column of ints with gaps would
    otherwise become float (316695.0)."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=columns)
    for col in df.columns:
        values = [r.get(col) for r in rows if r.get(col) is not None]
        # (pandas' Int64 holds signed 64 bits: a larger count, a seed up to 2^64-1, stays a Python int)
        if values and all(isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63 for v in values):
            df[col] = pd.array([r.get(col) for r in rows], dtype="Int64")
    return df
