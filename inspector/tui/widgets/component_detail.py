"""The right-hand side: tabs for the selected component (Summary, Layers, Timing, Memory,
the plugins' own tabs, Plugins)."""
from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import DataTable, Static, TabbedContent, TabPane

from inspector.results.records import ComponentResult, RunResult, Tab
from inspector.results.units import (
    UNSTABLE_LEGEND,
    UNSTABLE_MARK,
    human_flops,
    human_pct,
    human_rate,
    human_ratio,
    human_spread,
    human_timing,
)
from inspector.results.units import human_bytes as _bytes
from inspector.results.units import human_count as human
from inspector.results.units import human_ms as _ms
from inspector.tui.text import literal, plain
from inspector.tui.widgets.charts import SeriesChart
from inspector.tui.widgets.layer_table import LayerTable
from inspector.tui.widgets.view_panel import ViewPanel


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
        rows.append(("FLOPs (example call)", human_flops(comp.flops)))
    for inp in comp.inputs:
        rows.append((f"input {inp.name}", f"{tuple(inp.shape)} {inp.dtype}"))
    for out in comp.outputs:
        rows.append((f"output {out.name}", f"{tuple(out.shape)} {out.dtype}"))
    if comp.timing:
        t = comp.timing
        rows.append(("time (median)", f"{human_timing(t)}  IQR {_ms(t.iqr)}, p90 {_ms(t.p90)}, cold {_ms(t.cold)}, "
                                      f"n {t.count}" + (f"  ({UNSTABLE_LEGEND})" if t.unstable else "")))
        call = comp.timed_call()  # the time's own call and FLOPs: a rate pairs these, not the example call's
        if call is not None:
            rows.append(("timed call", f"{call.name}, {human_flops(call.flops)}"))
    if comp.memory:
        rows.append(("peak memory", f"{_bytes(comp.memory.peak)} ({comp.memory.kind})"))
    for key, value in comp.metrics.items():
        rows.append((key, f"{value:.6g}" if isinstance(value, float) else str(value)))
    for label, value in rows:
        table.add_row(literal(label), literal(value))
    for note in comp.notes:
        table.add_row("note", literal(note, style="italic"))
    for err in comp.errors:
        table.add_row(Text("error", style="red"),
                      literal(f"{err.get('plugin')} ({err.get('hook')}): {err.get('error')}", style="red"))
    return table


def measurement_table(comp: ComponentResult) -> DataTable:
    table: DataTable[Any] = DataTable(zebra_stripes=True)
    table.add_columns("call", "median", "spread", "p90", "min", "cold", "n", "peak memory", "FLOP/s", "error")
    for m in comp.measurements:
        t = m.timing
        table.add_row(plain(m.name), _ms(t.median) + (f" {UNSTABLE_MARK}" if t.unstable else ""),
                      human_spread(t.rel_spread), _ms(t.p90), _ms(t.min), _ms(t.cold), human(t.count),
                      _bytes(m.memory.peak) if m.memory else "-",
                      human_rate(m.flops_per_second), plain(m.error or ""))
    return table


def overview(run: RunResult) -> Table:
    """The root node: what the whole pipeline run took, and each component's real share of it."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    m, inp = run.model, run.inputs
    table.add_row("model", literal(f"{m.source} · {m.pipeline_class} · weights {m.weights}"))
    table.add_row("inputs", f"{inp.width}x{inp.height}, batch {inp.batch_size}, {inp.steps} steps, "
                            f"guidance {inp.guidance_scale}")
    table.add_row("parameters", f"{run.parameter_total() or 0:,}")
    p = run.pipeline

    def flag(name: str) -> str:
        return f" {UNSTABLE_MARK}" if p is not None and name in p.unstable else ""

    if p is None:
        table.add_row("end to end", Text("not profiled yet: press p", style="italic"))
    elif p.error:
        table.add_row("end to end", literal(p.error, style="red"))
    else:
        table.add_row("end to end", f"{_ms(p.total)} {human_spread(p.total_rel_spread)}{flag('total')} · "
                                    f"{p.it_per_s or 0:.2f} it/s · {p.num_steps} steps · median of {p.repeats}")
        table.add_row("bare call", f"{_ms(p.bare_total)} {human_spread(p.bare_rel_spread)}{flag('bare_total')}")
        table.add_row("overhead", human_ratio(p.overhead_ratio, p.overhead_interval) + flag("overhead_ratio"))
        if p.component_sum_ratio:
            interval = p.component_sum_ratio_interval
            table.add_row("isolated sum", f"{human_pct(p.component_sum_ratio)} of the total"
                          + (f" ({human_pct(interval[0])}-{human_pct(interval[1])})" if interval else "")
                          + flag("component_sum_ratio"))
        for reason in p.unstable_reasons:
            table.add_row(Text(f"{UNSTABLE_MARK} unstable", style="yellow"), literal(reason))
    if run.machine is not None:
        mc = run.machine
        state = f"load {mc.start.load} at start" if mc.start.load is not None else "load not readable"
        if mc.other_cpu_mean is not None:
            state += f", other processes {human_pct(mc.other_cpu_mean)} of {mc.cpus} CPUs"
        table.add_row("machine", Text(state + (" · BUSY" if mc.busy else ""), style="yellow" if mc.busy else ""))
    if run.interrupted:
        table.add_row("run", Text("interrupted: partial figures", style="yellow"))
    return table


def parts_table(run: RunResult) -> Table:
    """Where the median instrumented pipeline call went, part by part, with shares of its total."""
    p = run.pipeline
    parts = Table(title="where the pipeline run went", title_justify="left", box=None, padding=(0, 1))
    parts.add_column("part", no_wrap=True)
    parts.add_column("time", justify="right", no_wrap=True)
    parts.add_column("share", justify="right", no_wrap=True)
    if p is None or not p.total:
        return parts
    for label, _name, ms in p.parts():
        parts.add_row(label, _ms(ms), human_pct(ms / p.total))
    parts.add_row(Text("total", style="bold"), Text(_ms(p.total), style="bold"), "100.0%")
    return parts


class PipelineOverview(VerticalScroll):
    """Shown when the tree's root (the pipeline) is selected."""

    def __init__(self, run: RunResult, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run

    def compose(self) -> ComposeResult:
        yield Static(overview(self.run), id="overview-text")
        p = self.run.pipeline
        if p is not None and not p.error and p.total:
            yield Static(parts_table(self.run), id="overview-parts")
        if p is not None and p.steps:
            yield SeriesChart("denoising loop: ms per step (step 0 first)", [s.index for s in p.steps],
                              {"denoiser": [s.denoiser for s in p.steps], "total": [s.total for s in p.steps]}, "step")


def plugins_table(run: RunResult) -> DataTable:
    table: DataTable[Any] = DataTable(zebra_stripes=True)
    table.add_columns("plugin", "version", "source", "hooks", "status")
    for p in run.plugins:
        table.add_row(plain(p.name), plain(p.version or ""), plain(p.source), plain(", ".join(p.hooks)),
                      plain(p.error or "ok"))
    return table


class ComponentDetail(Vertical):
    """Tabs for one component; plugin tabs come from the ``component_tabs`` hook."""

    def __init__(self, run: RunResult, comp: ComponentResult, plugin_tabs: list[Tab], depth: int,
                 initial_tab: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run, self.comp, self.plugin_tabs, self.depth = run, comp, plugin_tabs, depth
        self.initial_tab = initial_tab

    def pane_titles(self) -> dict[str, str]:
        """Tab title -> pane id, in order."""
        titles = {"Summary": "tab-summary"}
        if self.comp.layers:
            titles["Layers"] = "tab-layers"
        titles.update({"Timing": "tab-timing", "Memory": "tab-memory"})
        for i, tab in enumerate(self.plugin_tabs):
            titles.setdefault(tab.title, f"tab-plugin-{i}")
        titles.setdefault("Plugins", "tab-plugins")
        return titles

    def compose(self) -> ComposeResult:
        with TabbedContent(id="component-tabs"):
            yield from self.panes()

    def on_mount(self) -> None:
        # the tab that was open for the previous component stays open, when this one has it (by title);
        # switched after the first refresh, once the tabs exist
        wanted = self.pane_titles().get(self.initial_tab or "")
        if wanted and wanted != "tab-summary":
            self.call_after_refresh(self._activate, wanted)

    def _activate(self, pane_id: str) -> None:
        from textual.css.query import NoMatches

        try:
            self.query_one("#component-tabs", TabbedContent).active = pane_id
        except (ValueError, NoMatches):  # replaced meanwhile by another component's tabs
            pass

    def panes(self) -> ComposeResult:
        run, comp = self.run, self.comp
        with TabPane("Summary", id="tab-summary"):
            yield VerticalScroll(Static(summary(comp)))
        if comp.layers:
            with TabPane("Layers", id="tab-layers"):
                yield LayerTable(comp.layers, depth=self.depth, id="layers",
                                 total_parameters=comp.parameters.total if comp.parameters else None,
                                 total_flops=comp.flops)
        with TabPane("Timing", id="tab-timing"):
            with VerticalScroll():
                timed = [c for c in run.components if c.timing]
                if timed:
                    yield SeriesChart("time per component (ms, median)", [c.name for c in timed],
                                      {"ms": [c.timing.median for c in timed if c.timing]})
                if run.pipeline and run.pipeline.steps:
                    steps = run.pipeline.steps
                    yield SeriesChart("denoising loop: ms per step (step 0 first)", [s.index for s in steps],
                                      {"denoiser": [s.denoiser for s in steps], "total": [s.total for s in steps]},
                                      "step")
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
                                      {"MiB": [c.memory.peak / 2**20 for c in with_memory if c.memory]})
                    yield measurement_table(comp)
                else:
                    params = [c for c in run.components if c.parameters]
                    yield SeriesChart("parameter memory per component (MiB)", [c.name for c in params],
                                      {"MiB": [c.parameters.bytes / 2**20 for c in params if c.parameters]})
        for i, tab in enumerate(self.plugin_tabs):
            with TabPane(tab.title, id=f"tab-plugin-{i}"):
                yield ViewPanel(tab.views)
        with TabPane("Plugins", id="tab-plugins"):
            yield plugins_table(run)
