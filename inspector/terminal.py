"""The terminal front end: rich tables over a :class:`RunResult`. Renders, never measures."""
from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .results import ComponentResult, LayerRecord, RunResult, View
from .units import human_bytes, human_count, human_ms


def shape_text(shape: list[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def progress_bar(console: Console) -> Any:
    """A context manager yielding ``report(stage, fraction, detail)`` that drives a rich progress bar."""
    import contextlib

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    @contextlib.contextmanager
    def manager() -> Any:
        with Progress(TextColumn("{task.description:<48}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("loading", total=1.0)

            def report(stage: str, fraction: float, detail: str) -> None:
                progress.update(task, completed=min(max(fraction, 0.0), 1.0), description=f"{stage} · {detail}")

            yield report

    return manager()


def summary_table(run: RunResult) -> Table:
    m, inp = run.model, run.inputs
    table = Table(title=f"{m.source} · {m.pipeline_class} · weights={m.weights} · {run.environment.device} "
                        f"{run.environment.dtype} · {inp.width}x{inp.height} batch {inp.batch_size}",
                  title_justify="left")
    profiled = run.profile is not None
    columns = [("component", "left"), ("class", "left"), ("parameters", "right"), ("size", "right"),
               ("FLOPs", "right")]
    columns += ([("timed call, its FLOPs", "left"), ("time (median)", "right"), ("peak memory", "right")]
                if profiled else [("main output", "left")])
    columns += [("notes", "left")]
    for col, justify in columns:
        table.add_column(col, justify=justify, overflow="fold")
    for comp in run.components:
        style = None if comp.present else "dim"
        notes = "absent" if not comp.present else ""
        if comp.errors:
            notes = f"[red]{len(comp.errors)} plugin error(s)[/red]"
        cells = [comp.name, comp.class_name, f"{comp.parameters.total:,}" if comp.parameters else "-",
                 human_bytes(comp.parameters.bytes) if comp.parameters else "-", human_count(comp.flops)]
        if profiled:  # time goes with the FLOPs of the same call, not the whole example call's
            call = comp.timed_call()
            cells += [f"{call.name} {human_count(call.flops)}" if call else "-",
                      human_ms(comp.timing.median) if comp.timing else "-",
                      human_bytes(comp.memory.peak) if comp.memory else "-"]
        else:
            cells += [f"{comp.outputs[0].name} {shape_text(comp.outputs[0].shape)}" if comp.outputs else ""]
        table.add_row(*cells, notes, style=style)
    return table


def pipeline_table(run: RunResult) -> Any:
    p = run.pipeline
    if p is None:
        return Text("")
    if p.error:
        return Text(f"pipeline: {p.error}", style="red")
    steps = (f"{p.num_steps} steps" if p.num_steps == run.inputs.steps
             else f"{p.num_steps} scheduler steps for --steps {run.inputs.steps} (see note)")
    table = Table(title=f"end to end: {steps}, {human_ms(p.total)} "
                        f"({p.it_per_s or 0:.2f} it/s), median of {p.repeats}", title_justify="left")
    table.add_column("part")
    table.add_column("time", justify="right")
    table.add_column("share", justify="right")
    parts = [("text encoding", p.text_encoding), ("prepare", p.prepare),
             ("unet (all steps)", sum(s.unet for s in p.steps)),
             ("scheduler.step (all steps)", sum(s.scheduler for s in p.steps)),
             ("other in steps (CFG, guidance)", sum(s.other for s in p.steps)),
             ("vae decode", p.vae_decode), ("safety checker", p.safety_checker)]
    for label, ms in parts:
        if ms is not None:
            table.add_row(label, human_ms(ms), f"{100 * ms / p.total:.1f}%" if p.total else "-")
    first = p.steps[0] if p.steps else None
    caption = [f"bare call {human_ms(p.bare_total)}, instrumentation overhead x{p.overhead_ratio or 0:.3f}"]
    if first is not None:
        caption.append(f"step 0 {human_ms(first.total)} (unet {human_ms(first.unet)})")
    if p.component_sum_ratio:
        caption.append(f"isolated components add up to {100 * p.component_sum_ratio:.1f}% of the total")
    if p.identical_output is not None:
        caption.append("identical image with and without instrumentation" if p.identical_output
                       else "images differ with instrumentation")
    if p.image:
        caption.append(f"image saved to {p.image}")
    table.caption = "; ".join(caption)
    return table


def layer_table(comp: ComponentResult, depth: int) -> Table:
    table = Table(title=f"{comp.name} layers (depth ≤ {depth})", title_justify="left")
    for col, justify in (("layer", "left"), ("type", "left"), ("input shapes", "left"), ("output shapes", "left"),
                         ("parameters", "right"), ("FLOPs", "right")):
        table.add_column(col, justify=justify, overflow="fold")
    for layer in comp.layers:
        if layer.depth > depth:
            continue
        table.add_row(_indent(layer), layer.type, _shapes(layer.input_shapes), _shapes(layer.output_shapes),
                      f"{layer.parameters:,}", human_count(layer.flops) if layer.calls else "not called",
                      style=None if layer.calls else "dim")
    return table


def _indent(layer: LayerRecord) -> str:
    return "  " * (layer.depth - 1) + layer.name.rsplit(".", 1)[-1] if layer.depth > 1 else layer.name


def _shapes(shapes: list[list[int]]) -> str:
    return " ".join(shape_text(s) for s in shapes[:3]) + (" …" if len(shapes) > 3 else "")


def view_renderable(view: View, max_rows: int = 40) -> Any:
    if view.kind == "note":
        return Text(f"{view.title}: {view.text}")
    if view.kind == "series":
        return series_text(view)
    table = Table(title=view.title, title_justify="left")
    for col in view.columns:
        table.add_column(str(col), overflow="fold")
    for row in view.rows[:max_rows]:
        table.add_row(*[_cell(c) for c in row])
    if len(view.rows) > max_rows:
        table.caption = f"{len(view.rows) - max_rows} more rows in the JSON/CSV/HTML reports"
    return table


def series_text(view: View, width: int = 40) -> Text:
    """A series as horizontal bars: enough to see a shape in a terminal."""
    text = Text(f"{view.title}\n", style="bold")
    for name, values in view.series.items():
        finite = [v for v in values if v is not None]
        top = max((abs(v) for v in finite), default=0) or 1
        text.append(f"  {name}\n")
        for x, v in list(zip(view.x, values))[:40]:
            bar = "█" * int(round(width * abs(v or 0) / top))
            text.append(f"  {str(x):>16} {bar} {human_count(v) if isinstance(v, int) else f'{v:.4g}' if v is not None else '-'}\n")
    return text


def _cell(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


def render(run: RunResult, console: Console, *, layers: bool = False, depth: int = 2, details: bool = False) -> None:
    console.print(summary_table(run))
    for comp in run.components:  # plugin metrics are part of the summary
        if comp.metrics:
            console.print(Text(f"{comp.name} metrics: " + ", ".join(f"{k}={_cell(v)}" for k, v in comp.metrics.items())))
    if run.pipeline is not None:
        console.print(pipeline_table(run))
    for view in run.views:  # views about the whole pipeline (memory plan, fit verdict)
        console.print(view_renderable(view))
    if run.interrupted:
        console.print(Text("interrupted: the figures above are what was measured before Ctrl-C", style="yellow"))
    for note in run.notes:
        console.print(Text(f"note: {note}", style="italic"))
    for comp in run.components:
        parts: list[Any] = []
        if layers and comp.layers:
            parts.append(layer_table(comp, depth))
        if details:
            parts.extend(view_renderable(v) for v in comp.views)
        for note in comp.notes if (details or layers) else []:
            parts.append(Text(f"note: {note}", style="italic"))
        if parts:
            console.print(Text(f"\n{comp.name} ({comp.class_name})", style="bold"))
            console.print(Group(*parts))
    failures = [(c.name, e) for c in run.components for e in c.errors]
    for comp_name, err in failures:
        console.print(Text(f"plugin {err['plugin']} failed on {comp_name} ({err['hook']}): {err['error']}",
                           style="red"))
    for plugin in run.plugins:
        if plugin.error:
            console.print(Text(f"plugin {plugin.name} ({plugin.source}): {plugin.error}", style="red"))


def render_comparison(comparison: Any, console: Console) -> None:
    """Per-component ratios of two runs (B / A); the reasons they are not comparable come first."""
    if not comparison.comparable:
        console.print(Text("NOT COMPARABLE for time and memory: " + "; ".join(comparison.problems), style="bold red"))
    if comparison.differences:
        console.print("differences: " + "; ".join(comparison.differences))
    table = Table(title=f"{comparison.a_label} vs {comparison.b_label} (ratios B / A)", title_justify="left")
    table.add_column("component")
    for metric in ("parameters", "bytes", "flops", "time_ms", "memory_bytes"):
        table.add_column(f"{metric} A", justify="right")
        table.add_column(f"{metric} B", justify="right")
        table.add_column("B/A", justify="right")
    for row in comparison.components:
        cells = [row["component"]]
        for metric in ("parameters", "bytes", "flops", "time_ms", "memory_bytes"):
            a, b, r = row[f"{metric}_a"], row[f"{metric}_b"], row[f"{metric}_ratio"]
            fmt = human_ms if metric == "time_ms" else human_bytes if metric.endswith("bytes") else human_count
            cells += [fmt(a) if a is not None else "-", fmt(b) if b is not None else "-",
                      f"{r:.3f}" if r is not None else "-"]
        table.add_row(*cells)
    console.print(table)
