"""The sweep report: one self-contained HTML page for a sweep folder.

Time, memory and FLOPs against image size and batch, one chart per component and metric,
one line per combination of the other axes (model, dtype, attention, ...), a table of every
point with its status, and links to each point's own report and run. Like the run report it
is built from Jinja2 templates with autoescaping on, its data embedded as escaped JSON, and
a Content-Security-Policy that lets it fetch nothing; every figure comes from the points'
saved runs (through the sweep table), nothing is recomputed.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from markupsafe import Markup

from inspector.files import atomic_path
from inspector.reports.html_report import _asset, environment, plotly_js, script_json
from inspector.sweep.folder import SweepFolder, load_sweep
from inspector.sweep.grid import AXES, parse_size
from inspector.sweep.tables import table_rows

#: (table column, chart title, unit): the metrics charted when any point has them
METRICS = (("time_ms_median", "time (median)", "ms"), ("memory_bytes_peak", "peak memory", "bytes"),
           ("flops", "FLOPs of one call", "FLOPs"),
           ("predicted_peak_bytes", "predicted peak memory, all on the device", "bytes"))


def _size_order(value: Any) -> tuple[int, str]:
    try:
        width, height = parse_size(str(value))
        return width * height, str(value)
    except Exception:  # noqa: BLE001 - a value we did not write sorts last
        return 1 << 62, str(value)


def charts(rows: list[dict[str, Any]], axes: list[str]) -> list[dict[str, Any]]:
    """Line charts: for each x axis that varies (size, batch), metric and component, one line
    per combination of the other varying axes."""
    ok = [r for r in rows if r.get("status") == "ok" and r.get("component")]
    varying = [a for a in axes if len({str(r.get(a)) for r in ok}) > 1]
    specs = []
    for x_axis in ("size", "batch"):
        if x_axis not in varying:
            continue
        xs = sorted({r.get(x_axis) for r in ok}, key=_size_order if x_axis == "size" else (lambda v: (int(v), "")))
        group_axes = [a for a in varying if a != x_axis]
        for column, title, unit in METRICS:
            components = sorted({r["component"] for r in ok if r.get(column) is not None})
            for comp in components:
                series: dict[str, list[Any]] = {}
                flagged: dict[str, list[Any]] = {}  # a time figure's flags, marked on its point
                for r in ok:
                    if r["component"] != comp or r.get(column) is None:
                        continue
                    name = " · ".join(f"{a}={r.get(a)}" for a in group_axes) or comp
                    at = xs.index(r.get(x_axis))
                    series.setdefault(name, [None] * len(xs))[at] = r[column]
                    if column.startswith("time_") and r.get("time_unstable") in (True, "True", "true"):
                        flagged.setdefault(name, [None] * len(xs))[at] = str(r.get("time_flags") or "") or \
                            "relative spread above the threshold"
                usable = {r.get("fits_target"): r.get("fits_usable_bytes") for r in ok
                          if r["component"] == comp and r.get("fits_usable_bytes")}
                if column == "predicted_peak_bytes" and usable:  # the fits / does-not-fit boundary
                    for target, limit in usable.items():
                        series[f"usable on {target}"] = [limit] * len(xs)
                if any(v for values in series.values() for v in values if v):
                    label, series = in_unit(series, unit)
                    specs.append({"id": f"{x_axis}-{column}-{comp}", "title": f"{comp}: {title} by {x_axis}",
                                  "x": [str(x) for x in xs], "x_label": X_LABELS[x_axis], "y_label": label,
                                  "series": dict(sorted(series.items())), "flagged": flagged})
    return specs


X_LABELS = {"size": "image size (px)", "batch": "batch size"}
#: bytes read in binary units, as everywhere else in the tool (the chart's axis would say "20M")
BINARY = ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB"))


def in_unit(series: dict[str, list[Any]], unit: str) -> tuple[str, dict[str, list[Any]]]:
    """The axis label and the series in the unit that reads best: bytes in the largest binary
    unit the biggest value reaches (a change of unit, not of the figure)."""
    if unit != "bytes":
        return unit, series
    top = max((v for values in series.values() for v in values if isinstance(v, (int, float))), default=0)
    for size, name in BINARY:
        if top >= size:
            return name, {k: [v / size if isinstance(v, (int, float)) else v for v in values]
                          for k, values in series.items()}
    return "bytes", series


def render(root: Path, report_path: Path) -> str:
    manifest, points, statuses = load_sweep(root)
    columns, rows = table_rows(SweepFolder(root), points, statuses)
    axes = [a for a in AXES if any(a in p.params for p in points)]
    link_base = os.path.relpath(root.resolve(), report_path.resolve().parent)
    point_rows = []
    for point in points:
        status = statuses.get(point.key)
        pdir = root / "points" / point.key

        def href(name: str, key: str = point.key) -> str:
            return Path(link_base, "points", key, name).as_posix()

        point_rows.append({
            "key": point.key, "params": point.params, "status": status.status if status else "not run",
            "reason": status.reason if status else None, "seconds": status.seconds if status else None,
            "fits": next((f"{r['fits_verdict']} on {r['fits_target']}" for r in rows
                          if r.get("point") == point.key and r.get("fits_verdict")), None),
            "report": href("report.html") if (pdir / "report.html").is_file() else None,
            "run": href("run.json") if (pdir / "run.json").is_file() else None,
        })
    specs = charts(rows, axes)
    execution = manifest["execution"] if isinstance(manifest.get("execution"), dict) else {}
    grid = manifest["grid"] if isinstance(manifest.get("grid"), dict) else {}
    versions = manifest["versions"] if isinstance(manifest.get("versions"), dict) else {}
    template = environment().get_template("sweep.html.j2")
    return template.render(
        title=str(root), mode=str(grid.get("mode", "")), axes=axes, points=point_rows,
        ok=sum(1 for p in point_rows if p["status"] == "ok"),
        failed=sum(1 for p in point_rows if p["status"] == "failed"),
        execution={str(k): v for k, v in execution.items() if isinstance(v, (str, int, float)) or v is None},
        versions={str(k): str(v) for k, v in versions.items()}, args=[str(a) for a in grid.get("args") or []],
        charts=specs, data_json=script_json({"charts": specs}),
        css=Markup(_asset("report.css")), js=Markup(_asset("sweep.js")), plotly=Markup(plotly_js()),
    )


def write(root: str | Path, path: str | Path) -> None:
    html = render(Path(root), Path(path))
    with atomic_path(path) as tmp:
        tmp.write_text(html, encoding="utf-8")
