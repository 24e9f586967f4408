"""The terminal front end: rich tables over a :class:`RunResult`. Renders, never measures."""
from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .results import ComponentResult, LayerRecord, RunResult, View


def human_count(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} GiB"


def shape_text(shape: list[int]) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def summary_table(run: RunResult) -> Table:
    m, inp = run.model, run.inputs
    table = Table(title=f"{m.source} · {m.pipeline_class} · weights={m.weights} · {run.environment.device} "
                        f"{run.environment.dtype} · {inp.width}x{inp.height} batch {inp.batch_size}",
                  title_justify="left")
    for col, justify in (("component", "left"), ("class", "left"), ("parameters", "right"), ("size", "right"),
                         ("FLOPs", "right"), ("main output", "left"), ("notes", "left")):
        table.add_column(col, justify=justify, overflow="fold")
    for comp in run.components:
        style = None if comp.present else "dim"
        output = f"{comp.outputs[0].name} {shape_text(comp.outputs[0].shape)}" if comp.outputs else ""
        notes = "absent" if not comp.present else ""
        if comp.errors:
            notes = f"[red]{len(comp.errors)} plugin error(s)[/red]"
        table.add_row(comp.name, comp.class_name,
                      f"{comp.parameters.total:,}" if comp.parameters else "-",
                      human_bytes(comp.parameters.bytes) if comp.parameters else "-",
                      human_count(comp.flops), output, notes, style=style)
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
