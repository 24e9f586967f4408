"""The self-contained HTML report: one file, styles, scripts, charts and images inlined.

Built from Jinja2 templates with autoescaping on; every user-controlled string
(model path, prompt, component and plugin names, plugin error text) is text, never
markup. The run's data is embedded as JSON inside ``<script type="application/json">``
with ``<``, ``>`` and ``&`` escaped, so no string can close the block. A
Content-Security-Policy of ``default-src 'none'`` stops the page from fetching
anything. Charts are drawn by plotly.js (inlined) from chart specifications made
here, from the result objects: the page computes nothing about the model.
"""
from __future__ import annotations

import base64
import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from markupsafe import Markup

from inspector.blocks import top_level_blocks
from inspector.files import atomic_path
from inspector.results import RunResult, timed_call
from inspector.units import human_bytes, human_count, human_ms


def script_json(data: Any) -> Markup:
    """JSON safe inside a ``<script>`` element: ``</script>``, ``<!--`` and ``&`` cannot appear."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    js = get_plotlyjs()
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
    env.filters["count"] = lambda n: human_count(n, " ")
    env.filters["bytes"] = human_bytes
    env.filters["ms"] = human_ms
    env.filters["pct"] = lambda v: "-" if v is None else f"{100 * v:.1f}%"
    env.filters["scalar"] = _scalar
    return env


def _scalar(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (list, dict)):
        text = json.dumps(v, ensure_ascii=False)
        return text if len(text) <= 300 else text[:300] + "…"
    return "" if v is None else str(v)


def charts(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Chart specifications (bar, line or stacked) from the run's data."""
    specs: list[dict[str, Any]] = []
    modules = [c for c in data["components"] if c["present"] and c.get("parameters")]

    def add(chart_id: str, title: str, kind: str, x: list, series: dict, x_label: str = "", y_label: str = "") -> None:
        if x and any(any(v for v in values if v) for values in series.values()):
            specs.append({"id": chart_id, "title": title, "kind": kind, "x": x, "series": series,
                          "x_label": x_label, "y_label": y_label})

    add("parameters-by-component", "Parameters by component", "bar", [c["name"] for c in modules],
        {"parameters": [c["parameters"]["total"] for c in modules]}, "component", "parameters")
    add("flops-by-component", "FLOPs by component (one example call)", "bar", [c["name"] for c in modules],
        {"FLOPs": [c["flops"] or 0 for c in modules]}, "component", "FLOPs")
    for comp in data["components"]:
        if comp["kind"] in ("unet", "transformer") and comp["layers"]:
            blocks = top_level_blocks(comp["layers"])
            add(f"parameters-by-block-{comp['name']}", f"{comp['name']}: parameters by block", "bar",
                [b["name"] for b in blocks], {"parameters": [b["parameters"] for b in blocks]}, "block", "parameters")
    timed = [c for c in data["components"] if c.get("timing")]
    add("time-by-component", "Time per component (median of one call)", "bar", [c["name"] for c in timed],
        {"time_ms": [c["timing"]["median"] for c in timed]}, "component", "ms")
    with_memory = [c for c in data["components"] if c.get("memory")]
    add("memory-by-component", "Peak memory per component", "bar", [c["name"] for c in with_memory],
        {"memory_bytes": [c["memory"]["peak"] for c in with_memory]}, "component", "bytes")
    pipeline = data.get("pipeline")
    if pipeline and pipeline.get("steps"):
        steps = pipeline["steps"]
        add("denoising-steps", "Denoising loop: time per step (step 0 first)", "stacked", [s["index"] for s in steps],
            {"unet": [s["unet"] for s in steps], "scheduler.step": [s["scheduler"] for s in steps],
             "other": [s["other"] for s in steps]}, "step", "ms")
    for comp in data["components"]:
        for i, view in enumerate(comp.get("views") or []):
            if view["kind"] == "series" and view["series"]:
                kind = "line" if all(isinstance(x, (int, float)) for x in view["x"]) else "bar"
                add(f"view-{comp['name']}-{i}", f"{comp['name']}: {view['title']}", kind, view["x"], view["series"],
                    view.get("x_label", ""), "")
    return specs


def image_data_uri(path: str | None) -> str | None:
    if not path:
        return None
    try:
        raw = Path(path).read_bytes()
    except OSError:
        return None
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    return "data:image/png;base64," + base64.b64encode(raw).decode("ascii")


def render(run: RunResult) -> str:
    data = run.to_dict()
    comps = data["components"]
    total_params = sum((c.get("parameters") or {}).get("total") or 0 for c in comps) or None
    total_time = sum((c.get("timing") or {}).get("median") or 0 for c in comps) or None
    metric_names = sorted({k for c in comps for k in (c.get("metrics") or {})})
    template = environment().get_template("report.html.j2")
    return template.render(
        run=data, total_params=total_params, total_time=total_time, metric_names=metric_names,
        timed_calls={c["name"]: timed_call(c) or {} for c in comps},
        charts=charts(data), data_json=script_json({"components": [
            {"name": c["name"], "layers": c["layers"]} for c in comps if c["layers"]], "charts": charts(data)}),
        image=image_data_uri((data.get("pipeline") or {}).get("image")),
        css=Markup(_asset("report.css")), js=Markup(_asset("report.js")), plotly=Markup(plotly_js()),
    )


def write(run: RunResult, path: str | Path) -> None:
    html = render(run)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")


COMPARED = ("parameters", "bytes", "flops", "time_ms", "memory_bytes")


def render_comparison(comparison: Any) -> str:
    rows = comparison.components
    specs = []
    for metric in COMPARED:
        present = [r for r in rows if r.get(f"{metric}_a") is not None or r.get(f"{metric}_b") is not None]
        if present and any(r.get(f"{metric}_a") or r.get(f"{metric}_b") for r in present):
            specs.append({"id": f"compare-{metric}", "title": f"{metric}: {comparison.a_label} vs {comparison.b_label}",
                          "kind": "bar", "x": [r["component"] for r in present],
                          "series": {comparison.a_label: [r.get(f"{metric}_a") or 0 for r in present],
                                     comparison.b_label: [r.get(f"{metric}_b") or 0 for r in present]},
                          "x_label": "component", "y_label": metric})
    template = environment().get_template("compare.html.j2")
    return template.render(c=comparison, metrics=COMPARED, charts=specs,
                           data_json=script_json({"components": [], "charts": specs}),
                           css=Markup(_asset("report.css")), js=Markup(_asset("report.js")), plotly=Markup(plotly_js()))


def write_comparison(comparison: Any, path: str | Path) -> None:
    html = render_comparison(comparison)
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
