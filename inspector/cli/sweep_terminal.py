"""The terminal side of a sweep: a progress bar with an ETA while points run, then a summary."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console
from rich.table import Table

from inspector.sweep.folder import PointStatus
from inspector.sweep.grid import AXES, Point


@contextlib.contextmanager
def sweep_progress(console: Console) -> Iterator[tuple[Any, Any]]:
    """Yields ``(on_start, on_point)`` callbacks for :func:`inspector.sweep.run.run_sweep`."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=True) as progress:
        task = progress.add_task("sweep", total=None)
        failed = 0

        def on_start(total: int, todo: int) -> None:
            skipped = total - todo
            progress.update(task, total=todo, description=f"{todo} point(s) to run"
                            + (f", {skipped} already measured" if skipped else ""))

        def on_point(status: PointStatus) -> None:
            nonlocal failed
            failed += status.status == "failed"
            progress.update(task, advance=1, description=f"last: {status.key} {status.status}"
                            + (f" · {failed} failed" if failed else ""))

        yield on_start, on_point


def figures_of(out: Path, key: str) -> dict[str, Any]:
    """A finished point's figures from its run.json (an unreadable one shows none)."""
    from inspector.errors import InspectorError
    from inspector.reports import json_report
    from inspector.sweep.folder import SweepFolder
    from inspector.sweep.tables import point_figures

    try:
        return point_figures(json_report.load(SweepFolder(out).run_path(key)))
    except InspectorError:
        return {}


def render_sweep(points: list[Point], statuses: dict[str, PointStatus], console: Console, out: Path,
                 report: Path) -> None:
    from rich.text import Text

    from inspector.results.units import human_bytes, human_count, human_flops, human_ms, printable

    def cell(text: Any) -> Text:  # data (a model's name, a point's stderr): no markup, no control characters
        return Text(printable(text))

    axes = [axis for axis in AXES if any(axis in p.params for p in points)]
    table = Table(title=cell(f"sweep {out} · {len(points)} point(s)"), title_justify="left")
    for axis in axes:
        table.add_column(axis, no_wrap=True)
    table.add_column("status", no_wrap=True)
    figures = {p.key: figures_of(out, p.key) for p in points
               if statuses.get(p.key) is not None and statuses[p.key].status == "ok"}
    shown = [(name, label, fmt) for name, label, fmt in (
        ("parameters", "parameters", human_count), ("flops", "FLOPs", human_flops),
        ("predicted_peak", "predicted peak", human_bytes), ("end_to_end_ms", "end to end", human_ms))
        if any(f.get(name) is not None for f in figures.values())]
    for _name, label, _fmt in shown:
        table.add_column(label, justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    reasons = any(statuses.get(p.key) is not None and statuses[p.key].reason for p in points)
    if reasons:
        table.add_column("reason", overflow="fold")
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    for point in points:
        status = statuses.get(point.key)
        if status is None:
            state, seconds, reason = "not run", "-", ""
        else:
            counts[status.status] += 1
            counts["skipped"] += status.skipped
            state = status.status + (" (earlier)" if status.skipped else "")
            seconds = f"{status.seconds:.1f}" if status.seconds is not None else "-"
            reason = status.reason or ""
        style = "red" if state.startswith("failed") else None
        found = figures.get(point.key, {})
        cells = [fmt(found[name]) + (" !" if name == "end_to_end_ms" and found.get("end_to_end_unstable") else "")
                 if found.get(name) is not None else "-" for name, _label, fmt in shown]
        table.add_row(*[cell(point.params.get(a, "")) for a in axes], state, *cells, seconds,
                      *([cell(reason)] if reasons else []), style=style)
    console.print(table)
    console.print(printable(f"{counts['ok']} ok, {counts['failed']} failed ({counts['skipped']} kept from an "
                            f"earlier run) · table: {out / 'table.csv'}, {out / 'table.parquet'} · report: {report}"),
                  markup=False, highlight=False)
