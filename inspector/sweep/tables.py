"""The sweep's tables: one row per point and component, as CSV and Parquet."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from inspector.errors import InspectorError
from inspector.files import atomic_path, write_text
from inspector.reports import csv_report, json_report
from inspector.results.tables import tables
from inspector.sweep.folder import PointStatus, SweepFolder
from inspector.sweep.grid import AXES, Point

# --- the table ---------------------------------------------------------------------------

TABLE_LEAD = ["point", "status", "reason", "seconds", *AXES]


def table_rows(folder: SweepFolder, points: list[Point],
               statuses: dict[str, PointStatus]) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per point and component (components.csv of each point, prefixed by its parameters),
    a ``(pipeline)`` row for the end-to-end call of profiled points, and one row per failed point."""

    columns: list[str] = list(TABLE_LEAD)
    rows: list[dict[str, Any]] = []
    for point in points:
        status = statuses.get(point.key)
        lead = {"point": point.key, "status": status.status if status else "not run",
                "reason": status.reason if status else None, "seconds": status.seconds if status else None,
                **{axis: point.params.get(axis) for axis in AXES}}
        run = None
        if status is not None and status.status == "ok":
            try:
                run = json_report.load(folder.run_path(point.key))
            except InspectorError as exc:
                lead.update(status="failed", reason=f"its run.json does not load: {exc}")
        if run is None:
            rows.append(lead)
            continue
        for axis, value in run_axes(run).items():  # an axis the grid left out: what the point really ran with
            if lead.get(axis) is None:
                lead[axis] = value
        comp_columns, comp_rows = tables(run)["components.csv"]
        for name in comp_columns:
            if name not in columns:
                columns.append(name)
        for row in comp_rows:
            rows.append({**lead, **row})
        plan_row = memory_plan_row(run)
        if plan_row is not None:
            for name in plan_row:
                if name not in columns:
                    columns.append(name)
            rows.append({**lead, **plan_row})
        if run.pipeline is not None:
            p = run.pipeline
            extra = {"component": "(pipeline)", "kind": "pipeline", "present": True, "time_ms_median": p.total,
                     "pipeline_it_per_s": p.it_per_s, "pipeline_steps": p.num_steps,
                     "pipeline_overhead_ratio": p.overhead_ratio, "pipeline_error": p.error,
                     "memory_bytes_peak": p.memory.peak if p.memory else None}
            for name in extra:
                if name not in columns:
                    columns.append(name)
            rows.append({**lead, **extra})
    return columns, rows


def point_figures(run: Any) -> dict[str, Any]:
    """The figures a sweep's summary shows per point, as its run recorded them: parameters and
    FLOPs of the present components (their sum: the totals row of the point's own table), the
    predicted peak with everything on the device, and, when profiled, the end-to-end time."""
    present = [c for c in run.components if c.present]
    row = memory_plan_row(run) or {}
    pipeline = run.pipeline
    return {
        "parameters": sum(c.parameters.total for c in present if c.parameters) if present else None,
        "flops": sum(c.flops for c in present if c.flops) or None,
        "predicted_peak": row.get("predicted_peak_bytes"),
        "end_to_end_ms": pipeline.total if pipeline is not None and not pipeline.error and pipeline.total else None,
        "end_to_end_unstable": bool(pipeline is not None and "total" in pipeline.unstable),
    }


def run_axes(run: Any) -> dict[str, Any]:
    """The sweep's axes as one point's run records them (dtype, steps, ...), for the columns of
    axes the grid did not vary: the table says what ran, never leaves it blank."""
    inputs, settings = run.inputs, run.profile
    size = f"{inputs.height}" if inputs.height == inputs.width else f"{inputs.height}x{inputs.width}"
    axes = {"model": run.model.source, "size": size, "batch": inputs.batch_size, "dtype": run.environment.dtype}
    if settings is not None:  # the attention backend, scheduler and steps matter (and are recorded) when timed
        axes.update(attention=settings.attention, scheduler=settings.scheduler, steps=inputs.steps)
    return {axis: value for axis, value in axes.items() if value is not None}


#: the placement a sweep charts and judges: the pipeline as most people run it
PLAN_MODE, PLAN_VAE = "all on device", "plain"


def memory_plan_row(run: Any) -> dict[str, Any] | None:
    """A ``(memory plan)`` row: the point's predicted peak with everything on the device, and, when
    the point ran with ``--fits``, the verdict, the usable memory and the largest batch and size."""
    plan = getattr(run, "memory_plan", None)
    if plan is None or not plan.placements:
        return None
    base = next((p for p in plan.placements if p.mode == PLAN_MODE and p.vae == PLAN_VAE), plan.placements[0])
    row: dict[str, Any] = {"component": "(memory plan)", "kind": "memory_plan", "predicted_peak_bytes": base.peak,
                           "predicted_placement": f"{base.mode}, {base.vae} VAE decode"}
    verdict = next((v for v in plan.verdicts if v.mode == base.mode and v.vae == base.vae), None)
    if verdict is not None:
        row.update(fits_target=plan.target, fits_usable_bytes=verdict.usable, fits_verdict=verdict.verdict,
                   fits_max_batch=verdict.max_batch, fits_max_size=verdict.max_size)
    return row


def write_table(folder: SweepFolder, points: list[Point], statuses: dict[str, PointStatus]) -> list[Path]:
    """``table.csv`` (spreadsheet-safe cells) and ``table.parquet`` (typed columns), atomically."""

    columns, rows = table_rows(folder, points, statuses)
    csv_path = folder.root / "table.csv"
    write_text(csv_path, csv_report.render(columns, rows))
    parquet_path = folder.root / "table.parquet"
    frame = parquet_frame(columns, rows)
    with atomic_path(parquet_path) as tmp:
        frame.to_parquet(tmp, index=False)
    return [csv_path, parquet_path]


def parquet_frame(columns: list[str], rows: list[dict[str, Any]]) -> Any:
    """A frame Parquet can store: a column mixing numbers and text becomes text."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=columns)
    for col in columns:
        values = [row.get(col) for row in rows]
        present = [v for v in values if v is not None and not (isinstance(v, float) and v != v)]
        kinds = {type(v) for v in present}
        if kinds == {int}:  # counts stay whole numbers, with missing values as nulls
            df[col] = pd.array(values, dtype="Int64")
        elif len(kinds) > 1 and not kinds <= {int, float}:
            df[col] = [None if v is None or (isinstance(v, float) and v != v) else str(v) for v in values]
    return df
