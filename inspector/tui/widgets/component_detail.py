"""The right-hand side: tabs for the selected component (Summary, Layers, Timing, Memory,
the plugins' own tabs, Plugins)."""
from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from inspector.results import ComponentResult, RunResult, Tab

from .charts import SeriesChart
from inspector.units import human_bytes as _bytes
from inspector.units import human_count as human
from inspector.units import human_ms as _ms

from .layer_table import LayerTable
from .view_panel import ViewPanel


def summary(comp: ComponentResult) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows = [("class", comp.class_name), ("library", comp.library or "-"), ("present", str(comp.present)),
            ("handled by", comp.plugin or "-")]
    if comp.parameters:
        rows += [("parameters", f"{comp.parameters.total:,} ({comp.parameters.trainable:,} trainable)"),
                 ("size", _bytes(comp.parameters.bytes))]
    if comp.flops is not None:
        rows.append(("FLOPs (example call)", human(comp.flops)))
    for inp in comp.inputs:
        rows.append((f"input {inp.name}", f"{tuple(inp.shape)} {inp.dtype}"))
    for out in comp.outputs:
        rows.append((f"output {out.name}", f"{tuple(out.shape)} {out.dtype}"))
    if comp.timing:
        rows.append(("time (median)", f"{_ms(comp.timing.median)}  IQR {_ms(comp.timing.iqr)}, cold {_ms(comp.timing.cold)}"))
        call = comp.timed_call()  # the time's own call and FLOPs: a rate pairs these, not the example call's
        if call is not None:
            rows.append(("timed call", f"{call.name}, {human(call.flops)} FLOPs"))
    if comp.memory:
        rows.append(("peak memory", f"{_bytes(comp.memory.peak)} ({comp.memory.kind})"))
    for key, value in comp.metrics.items():
        rows.append((key, f"{value:.6g}" if isinstance(value, float) else str(value)))
    for label, value in rows:
        table.add_row(label, value)
    for note in comp.notes:
        table.add_row("note", Text(note, style="italic"))
    for err in comp.errors:
        table.add_row(Text("error", style="red"), Text(f"{err.get('plugin')} ({err.get('hook')}): {err.get('error')}",
                                                      style="red"))
    return table


def measurement_table(comp: ComponentResult) -> DataTable:
    table = DataTable(zebra_stripes=True)
    table.add_columns("call", "median", "IQR", "min", "cold", "n", "peak memory", "FLOP/s", "error")
    for m in comp.measurements:
        table.add_row(m.name, _ms(m.timing.median), _ms(m.timing.iqr), _ms(m.timing.min), _ms(m.timing.cold),
                      str(m.timing.count), _bytes(m.memory.peak) if m.memory else "-", human(
                          int(m.flops_per_second)) if m.flops_per_second else "-", m.error or "")
    return table


def plugins_table(run: RunResult) -> DataTable:
    table = DataTable(zebra_stripes=True)
    table.add_columns("plugin", "version", "source", "hooks", "status")
    for p in run.plugins:
        table.add_row(p.name, p.version or "", p.source, ", ".join(p.hooks), p.error or "ok")
    return table


class ComponentDetail(Vertical):
    """Tabs for one component; plugin tabs come from the ``component_tabs`` hook."""

    def __init__(self, run: RunResult, comp: ComponentResult, plugin_tabs: list[Tab], depth: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.run, self.comp, self.plugin_tabs, self.depth = run, comp, plugin_tabs, depth

    def compose(self) -> ComposeResult:
        with TabbedContent(id="component-tabs"):
            yield from self.panes()

    def panes(self) -> ComposeResult:
        run, comp = self.run, self.comp
        with TabPane("Summary", id="tab-summary"):
            yield VerticalScroll(Static(summary(comp)))
        if comp.layers:
            with TabPane("Layers", id="tab-layers"):
                yield LayerTable(comp.layers, depth=self.depth, id="layers")
        with TabPane("Timing", id="tab-timing"):
            with VerticalScroll():
                timed = [c for c in run.components if c.timing]
                if timed:
                    yield SeriesChart("time per component (ms, median)", [c.name for c in timed],
                                      {"ms": [c.timing.median for c in timed]})
                if run.pipeline and run.pipeline.steps:
                    steps = run.pipeline.steps
                    yield SeriesChart("denoising loop: ms per step (step 0 first)", [s.index for s in steps],
                                      {"unet": [s.unet for s in steps], "total": [s.total for s in steps]}, "step")
                if comp.measurements:
                    yield measurement_table(comp)
                if not timed:
                    yield Static("Not profiled yet: press p (or use the command palette) to profile.",
                                 classes="note")
        with TabPane("Memory", id="tab-memory"):
            with VerticalScroll():
                with_memory = [c for c in run.components if c.memory]
                if with_memory:
                    yield SeriesChart("peak memory per component (MiB)", [c.name for c in with_memory],
                                      {"MiB": [c.memory.peak / 2**20 for c in with_memory]})
                    yield measurement_table(comp)
                else:
                    params = [c for c in run.components if c.parameters]
                    yield SeriesChart("parameter memory per component (MiB)", [c.name for c in params],
                                      {"MiB": [c.parameters.bytes / 2**20 for c in params]})
        for i, tab in enumerate(self.plugin_tabs):
            with TabPane(tab.title, id=f"tab-plugin-{i}"):
                yield ViewPanel(tab.views)
        with TabPane("Plugins", id="tab-plugins"):
            yield plugins_table(run)
