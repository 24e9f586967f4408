"""The self-contained HTML report: one file, styles, scripts, charts and images inlined.

Built from Jinja2 templates with autoescaping on; every user-controlled string
(model path, prompt, component and plugin names, plugin error text) is text, never
markup. The run's data is embedded as JSON inside ``<script type="application/json">``
with ``<``, ``>`` and ``&`` escaped, so no string can close the block. A
Content-Security-Policy of ``default-src 'none'`` stops the page from fetching
anything. Charts are drawn by plotly.js's basic bundle (vendored in ``vendor/``, inlined)
from chart specifications made here, from the result objects: the page computes nothing
about the model. Each chart's values come scaled to one unit for its axis (``GFLOP``,
``MiB``, ``ms``), with the exact figure, formatted as everywhere else, in its hover text.
"""
from __future__ import annotations

import base64
import json
import os
import stat
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup

from inspector.files import atomic_path, read_regular
from inspector.reports.compare import PIPELINE_COMPARED
from inspector.results.blocks import top_level_blocks
from inspector.results.records import RunResult, timed_call
from inspector.results.units import (
    UNSTABLE_LEGEND,
    UNSTABLE_MARK,
    column_label,
    human_bytes,
    human_count,
    human_flops,
    human_ms,
    human_rate,
    human_ratio,
    human_spread,
    numeric_columns,
    view_cell,
)


def script_json(data: Any) -> Markup:
    """JSON safe inside a ``<script>`` element: ``</script>``, ``<!--`` and ``&`` cannot appear."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


@lru_cache(maxsize=1)
def plotly_js() -> str:
    js = (resources.files("inspector.reports") / "vendor" / "plotly-basic.min.js").read_text(encoding="utf-8")
    if "</script" in js.lower():  # never the case today; cheap insurance for the inline block
        js = js.replace("</script", "<\\/script").replace("</SCRIPT", "<\\/SCRIPT")
    return js


def _asset(name: str) -> str:
    return (resources.files("inspector.reports") / "templates" / name).read_text(encoding="utf-8")


def environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("inspector.reports", "templates"),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True,
    )
    env.filters["count"] = human_count
    env.filters["flops"] = human_flops
    env.filters["rate"] = human_rate
    env.filters["bytes"] = human_bytes
    env.filters["ms"] = human_ms
    env.filters["spread"] = human_spread
    env.filters["ratio"] = human_ratio
    env.globals["UNSTABLE_MARK"] = UNSTABLE_MARK
    env.globals["UNSTABLE_LEGEND"] = UNSTABLE_LEGEND
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    env.filters["scalar"] = _scalar
    env.filters["view_cell"] = _view_cell
    env.filters["column_label"] = column_label
    env.globals["numeric_columns"] = lambda columns, rows: numeric_columns(columns, rows) + [False] * max(
        0, max((len(r) for r in rows), default=0) - len(columns))
    return env


def _scalar(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return human_count(v)
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, dict)):
        text = json.dumps(v, ensure_ascii=False)
        return text if len(text) <= 300 else text[:300] + "…"
    return "" if v is None else str(v)


def _view_cell(v: Any, column: str) -> str:
    """A plugin view's cell as the terminal shows it (lists and dicts as short JSON)."""
    return _scalar(v) if isinstance(v, (list, dict)) else view_cell(v, column)


#: (unit, divisor) ladders for chart axes: one unit per chart, chosen from its largest value
UNIT_LADDERS: dict[str, list[tuple[str, float]]] = {
    "FLOP": [("FLOP", 1), ("kFLOP", 1e3), ("MFLOP", 1e6), ("GFLOP", 1e9), ("TFLOP", 1e12), ("PFLOP", 1e15)],
    "parameters": [("parameters", 1), ("thousand parameters", 1e3), ("million parameters", 1e6),
                   ("billion parameters", 1e9)],
    "bytes": [("B", 1), ("KiB", 1024), ("MiB", 1024 ** 2), ("GiB", 1024 ** 3), ("TiB", 1024 ** 4)],
    "ms": [("µs", 1e-3), ("ms", 1), ("s", 1e3)],
}
EXACT = {"FLOP": human_flops, "parameters": human_count, "bytes": human_bytes, "ms": human_ms}


def scale_series(series: dict[str, list], quantity: str) -> tuple[dict[str, list], str, dict[str, list[str]]]:
    """Values in one unit for the axis, the unit, and each value formatted exactly for hover text."""
    ladder = UNIT_LADDERS.get(quantity)
    if ladder is None:
        return series, "", {name: [_scalar(v) for v in values] for name, values in series.items()}
    top = max((abs(v) for values in series.values() for v in values if isinstance(v, (int, float))), default=0)
    unit, size = ladder[0]
    for candidate, candidate_size in ladder:
        if top >= candidate_size:
            unit, size = candidate, candidate_size
    scaled = {name: [v / size if isinstance(v, (int, float)) else None for v in values]
              for name, values in series.items()}
    text = {name: [EXACT[quantity](v) for v in values] for name, values in series.items()}
    return scaled, unit, text


def charts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Chart specifications (bar, line or stacked) from the run's data."""
    specs: list[dict[str, Any]] = []
    modules = [c for c in data["components"] if c["present"] and c.get("parameters")]

    def add(chart_id: str, title: str, kind: str, x: list, series: dict, x_label: str = "",
            quantity: str = "") -> None:
        if x and any(any(v for v in values if v) for values in series.values()):
            scaled, unit, text = scale_series(series, quantity)
            specs.append({"id": chart_id, "title": title, "kind": kind, "x": x, "series": scaled, "text": text,
                          "x_label": x_label, "y_label": unit})

    add("parameters-by-component", "Parameters by component", "bar", [c["name"] for c in modules],
        {"parameters": [c["parameters"]["total"] for c in modules]}, "component", "parameters")
    add("flops-by-component", "FLOPs by component (one example call)", "bar", [c["name"] for c in modules],
        {"FLOPs": [c["flops"] or 0 for c in modules]}, "component", "FLOP")
    for comp in data["components"]:
        if comp["kind"] in ("unet", "transformer") and comp["layers"]:
            blocks = top_level_blocks(comp["layers"])
            add(f"parameters-by-block-{comp['name']}", f"{comp['name']}: parameters by block", "bar",
                [b["name"] for b in blocks], {"parameters": [b["parameters"] for b in blocks]}, "block", "parameters")
    timed = [c for c in data["components"] if c.get("timing")]
    add("time-by-component", "Time per component (median of one call)", "bar", [c["name"] for c in timed],
        {"time": [c["timing"]["median"] for c in timed]}, "component", "ms")
    with_memory = [c for c in data["components"] if c.get("memory")]
    add("memory-by-component", "Peak memory per component", "bar", [c["name"] for c in with_memory],
        {"peak memory": [c["memory"]["peak"] for c in with_memory]}, "component", "bytes")
    pipeline = data.get("pipeline")
    if pipeline and pipeline.get("steps"):
        steps = pipeline["steps"]
        add("denoising-steps", "Denoising loop: time per step (step 0 first)", "stacked", [s["index"] for s in steps],
            {"denoiser": [s["denoiser"] for s in steps], "scheduler.step": [s["scheduler"] for s in steps],
             "other": [s["other"] for s in steps]}, "step", "ms")
    for comp in data["components"]:
        for i, view in enumerate(comp.get("views") or []):
            if view["kind"] == "series" and view["series"]:
                kind = "line" if all(isinstance(x, (int, float)) for x in view["x"]) else "bar"
                add(f"view-{comp['name']}-{i}", f"{comp['name']}: {view['title']}", kind, view["x"], view["series"],
                    view.get("x_label", ""), _quantity_of(view["series"]))
    return specs


def _quantity_of(series: dict[str, list]) -> str:
    """The unit of a plugin's single series, from its name (``FLOPs``, ``time_ms``, ``bytes``); else none."""
    if len(series) != 1:
        return ""
    name = next(iter(series)).lower()
    if "flop" in name and "/s" not in name:
        return "FLOP"
    if name.endswith("ms") or name.endswith("(ms)"):
        return "ms"
    if name.endswith("bytes"):
        return "bytes"
    return ""


#: the largest PNG embedded in a report (a generated 4096 x 4096 image is far less)
MAX_IMAGE_BYTES = 64 * 2**20


def image_data_uri(path: str | Path | None) -> str | None:
    """The PNG at ``path`` as a data URI. Callers pass only a file the tool wrote itself (the image of
    this run, or ``STEM.png`` beside a saved run); the path a run's data names is never read."""
    if not path:
        return None

    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):  # a symlink could name any picture on the machine
            return None
        raw = read_regular(path, limit=MAX_IMAGE_BYTES, what="image")
    except Exception:  # noqa: BLE001 - no image is better than no report
        return None
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


LAYER_KEYS = ("name", "type", "depth", "input_shapes", "output_shapes", "parameters", "flops", "calls",
              "parameters_text", "flops_text")


def layer_rows(layers: list[dict[str, Any]]) -> list[list[Any]]:
    """Layer records as rows in :data:`LAYER_KEYS` order (compact: sd21 has ~1,200 layers), with
    their numbers formatted as everywhere else; the page only sorts on the raw ones."""
    rows = []
    for layer in layers:
        if layer["calls"]:
            flops_text = human_flops(layer["flops"])
        else:  # a container that never ran itself carries its children's FLOPs
            flops_text = human_flops(layer["flops"]) + " (children)" if layer["flops"] is not None else "not called"
        text = {"parameters_text": human_count(layer["parameters"]), "flops_text": flops_text}
        rows.append([{**layer, **text}[key] for key in LAYER_KEYS])
    return rows


def render(run: RunResult, image_file: str | Path | None = None) -> str:
    """The report page. ``image_file``: the generated image to embed, which the caller vouches for."""
    data = run.to_dict()
    comps = data["components"]
    metric_names = sorted({k for c in comps for k in (c.get("metrics") or {})})
    pipeline = run.pipeline
    shares = {c.name: pipeline.component_share(c.name, c.kind) if pipeline else None for c in run.components}
    template = environment().get_template("report.html.j2")
    specs = charts(data)
    return template.render(
        run=data, total_params=run.parameter_total(), metric_names=metric_names,
        total_bytes=run.parameter_bytes(), total_flops=run.flops_total(), flops_note=run.flops_note(), shares=shares,
        headline=run.headline(),
        param_shares={c.name: run.parameter_share(c.name) for c in run.components},
        parts=pipeline.parts() if pipeline and not pipeline.error else [],
        timed_calls={c["name"]: timed_call(c) or {} for c in comps},
        charts=specs, data_json=script_json({"layer_keys": list(LAYER_KEYS), "components": [
            {"name": c["name"], "layers": layer_rows(c["layers"])} for c in comps if c["layers"]], "charts": specs}),
        image=image_data_uri(image_file),
        css=Markup(_asset("report.css")), js=Markup(_asset("report.js")), plotly=Markup(plotly_js()),
    )


def write(run: RunResult, path: str | Path, image_file: str | Path | None = None) -> None:
    html = render(run, image_file)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")



def render_notebook(run: RunResult) -> str:
    """A compact view of ``run`` for a notebook cell: the component table (parameters, size, FLOPs,
    time, peak memory), the end-to-end figure and the run's notes. One ``<div>`` with its own scoped
    styles, no scripts and nothing fetched; every name is escaped as in the full report."""
    data = run.to_dict()
    plan = run.memory_plan
    predicted = {m.component: m.peak for m in plan.components} if plan else {}
    placement = next((p for p in (plan.placements if plan else []) if p.mode == "all on device" and p.vae == "plain"),
                     None)
    template = environment().get_template("notebook.html.j2")
    return template.render(
        run=data, pipeline=data.get("pipeline"), predicted=predicted,
        peak=placement.peak if placement is not None and not run.profile else None,
        total_params=run.parameter_total(), total_bytes=run.parameter_bytes(), total_flops=run.flops_total(),
        flops_note=run.flops_note())

COMPARED = ("parameters", "bytes", "flops", "time_ms", "memory_bytes")
COMPARED_QUANTITY = {"parameters": "parameters", "bytes": "bytes", "flops": "FLOP", "time_ms": "ms",
                     "memory_bytes": "bytes"}
COMPARED_LABEL = {"parameters": "parameters", "bytes": "size", "flops": "FLOPs", "time_ms": "time",
                  "memory_bytes": "peak memory"}


def render_comparison(comparison: Any) -> str:
    rows = comparison.components
    specs = []
    for metric in COMPARED:
        present = [r for r in rows if r.get(f"{metric}_a") is not None or r.get(f"{metric}_b") is not None]
        if present and any(r.get(f"{metric}_a") or r.get(f"{metric}_b") for r in present):
            series = {comparison.a_label: [r.get(f"{metric}_a") or 0 for r in present],
                      comparison.b_label: [r.get(f"{metric}_b") or 0 for r in present]}
            if comparison.a_label == comparison.b_label:
                series = {f"A: {comparison.a_label}": series[comparison.a_label],
                          f"B: {comparison.b_label}": list(series[comparison.b_label])}
            scaled, unit, text = scale_series(series, COMPARED_QUANTITY[metric])
            specs.append({"id": f"compare-{metric}",
                          "title": f"{COMPARED_LABEL[metric]}: {comparison.a_label} vs {comparison.b_label}",
                          "kind": "bar", "x": [r["component"] for r in present], "series": scaled, "text": text,
                          "x_label": "component", "y_label": unit})
    template = environment().get_template("compare.html.j2")

    fmt = {"parameters": human_count, "bytes": human_bytes, "flops": human_flops, "time_ms": human_ms,
           "memory_bytes": human_bytes}
    return template.render(c=comparison, metrics=COMPARED, labels=COMPARED_LABEL, charts=specs, fmt=fmt,
                           pipeline_rows=PIPELINE_COMPARED,
                           data_json=script_json({"components": [], "charts": specs}),
                           css=Markup(_asset("report.css")), js=Markup(_asset("report.js")), plotly=Markup(plotly_js()))


def write_comparison(comparison: Any, path: str | Path) -> None:
    html = render_comparison(comparison)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
