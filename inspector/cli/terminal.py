"""The terminal front end: a run (or a comparison) as tables. Renders, never measures.

Everything printed is first built as data (:class:`Grid` tables and :class:`Line` text),
then written in one of four formats:

- ``table``: rich tables. On a terminal they fit its width; when stdout is not a terminal
  they keep their natural width (rich would otherwise squeeze them into 80 columns and break
  words: ``Autoencod``/``erKL``), so a pipe or a file gets whole cells.
- ``plain``: aligned columns separated by two spaces, no box, no colour: for ``grep``/``awk``.
- ``markdown``: pipe tables, for pasting into an issue or a pull request.
- ``json``: the run itself (the same document as ``--json``).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from inspector.reports.compare import COMPARED, PIPELINE_COMPARED
from inspector.results.records import ComponentResult, LayerRecord, RunResult, View
from inspector.results.units import (
    UNSTABLE_LEGEND,
    UNSTABLE_MARK,
    column_label,
    human_bytes,
    human_count,
    human_flops,
    human_ms,
    human_pct,
    human_ratio,
    human_spread,
    human_timing,
    numeric_columns,
    printable,
    shape_text,
    view_cell,
)

FORMATS = ("table", "plain", "markdown", "json")

#: the footnote under a table that left columns out to fit the terminal
LEFT_OUT = "left out to fit {width} columns: {names}"


@dataclass
class Grid:
    """A table as data: ``columns`` are (name, "left"|"right"); ``total`` is an optional last row."""

    title: str
    columns: list[tuple[str, str]]
    rows: list[list[str]] = field(default_factory=list)
    dim: list[bool] = field(default_factory=list)
    total: list[str] | None = None
    caption: list[str] = field(default_factory=list)
    #: column indices a narrow terminal may leave out, least important first
    optional: list[int] = field(default_factory=list)

    def add(self, cells: list[Any], dim: bool = False) -> None:
        self.rows.append(["" if c is None else str(c) for c in cells])
        self.dim.append(dim)


@dataclass
class Line:
    text: str
    style: str | None = None


Block = Any  # Grid | Line


def progress_bar(console: Any) -> Any:
    """A context manager yielding ``report(stage, fraction, detail)`` that drives a rich progress bar."""
    import contextlib

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    @contextlib.contextmanager
    def manager() -> Any:
        if not console.is_terminal:  # through a pipe or into a file: no bar, and no blank line when it stops
            yield lambda stage, fraction, detail: None
            return
        with Progress(TextColumn("{task.description:<48}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task("loading", total=1.0)

            def report(stage: str, fraction: float, detail: str) -> None:
                progress.update(task, completed=min(max(fraction, 0.0), 1.0), description=f"{stage} · {detail}")

            yield report

    return manager()


# --- building blocks from a run ----------------------------------------------------------------


def summary_grid(run: RunResult) -> Grid:
    m, inp = run.model, run.inputs
    profiled = run.profile is not None
    columns = [("component", "left"), ("class", "left"), ("parameters", "right"), ("%", "right"),
               ("size", "right"), ("FLOPs", "right")]
    columns += ([("timed call, its FLOPs", "left"), ("time (median ±spread)", "right"), ("peak memory", "right")]
                if profiled else [("main output", "left")])
    columns += [("notes", "left")]
    grid = Grid(f"{m.source} · {m.pipeline_class} · {m.weights} weights · {run.environment.device} "
                f"{run.environment.dtype} · {inp.width}x{inp.height}, batch {inp.batch_size}", columns)
    total_params = run.parameter_total()
    absent = [c.name for c in run.components if not c.present and not c.errors]
    for comp in run.components:
        if comp.name in absent:  # listed under the table: a row of dashes says nothing
            continue
        notes = "absent" if not comp.present else ""
        if comp.errors:
            notes = f"{len(comp.errors)} plugin error(s)"
        params = comp.parameters.total if comp.parameters else None
        share = run.parameter_share(comp.name)
        cells = [comp.name, comp.class_name, human_count(params), human_pct(share) if share is not None else "-",
                 human_bytes(comp.parameters.bytes) if comp.parameters else "-", human_flops(comp.flops)]
        if profiled:  # time goes with the FLOPs of the same call, not the whole example call's
            call = comp.timed_call()
            cells += [f"{call.name} {human_flops(call.flops)}" if call else "-", human_timing(comp.timing),
                      human_bytes(comp.memory.peak) if comp.memory else "-"]
        else:
            cells += [f"{comp.outputs[0].name} {shape_text(comp.outputs[0].shape)}" if comp.outputs else ""]
        grid.add(cells + [notes], dim=not comp.present)
    total_bytes, total_flops = run.parameter_bytes(), run.flops_total()
    grid.total = ["total", "", human_count(total_params), "100.0%" if total_params else "-",
                  human_bytes(total_bytes) if total_bytes is not None else "-",
                  human_flops(total_flops) if total_flops is not None else "-"]
    grid.total += (["", "", ""] if profiled else [""]) + [""]
    if profiled and any(c.timing is not None and c.timing.unstable for c in run.components):
        grid.caption.append(UNSTABLE_LEGEND)
        busy = run.machine is not None and run.machine.busy
        if busy:
            grid.caption.append(f"{UNSTABLE_MARK} every time above: machine busy")
        for comp in run.components:  # why each flagged figure is flagged, beyond its spread
            flags = [f for f in (comp.timing.flags if comp.timing is not None else []) if f != "machine busy"]
            if flags:
                grid.caption.append(f"{UNSTABLE_MARK} {comp.name}: {'; '.join(flags)}")
    if absent:
        grid.caption.append("absent: " + ", ".join(absent))
    # on a narrow terminal, the columns left out first
    # (the class and the notes first; the shapes, FLOPs, time and peak memory last)
    grid.optional = [1, 9, 6, 3, 4, 2] if profiled else [1, 7, 3, 4]
    if total_flops is not None:
        grid.caption.append(run.flops_note())
    return grid


def pipeline_grid(run: RunResult) -> Block | None:
    p = run.pipeline
    if p is None:
        return None
    if p.error:
        return Line(f"pipeline: {p.error}", "red")

    def mark(name: str) -> str:
        return f" {UNSTABLE_MARK}" if name in p.unstable else ""

    steps = (f"{p.num_steps} steps" if p.num_steps == run.inputs.steps
             else f"{p.num_steps} scheduler steps for --steps {run.inputs.steps} (see note)")
    grid = Grid(f"end to end: {steps}, {human_ms(p.total)} {human_spread(p.total_rel_spread)}"
                f"{mark('total')} ({p.it_per_s or 0:.2f} it/s), median of {p.repeats} calls",
                [("part", "left"), ("time", "right"), ("share", "right")])
    for label, _name, ms in p.parts():
        grid.add([label, human_ms(ms), human_pct(ms / p.total) if p.total else "-"])
    grid.total = ["total", human_ms(p.total), "100.0%" if p.total else "-"]
    grid.caption.append(f"bare call {human_ms(p.bare_total)} {human_spread(p.bare_rel_spread)}"
                        f"{mark('bare_total')}; instrumentation overhead "
                        f"{human_ratio(p.overhead_ratio, p.overhead_interval)}{mark('overhead_ratio')}")
    first = p.steps[0] if p.steps else None
    if first is not None:
        grid.caption.append(f"step 0 {human_ms(first.total)} (denoiser {human_ms(first.denoiser)})")
    if p.component_sum_ratio:
        grid.caption.append(f"isolated components add up to {human_pct(p.component_sum_ratio)} of the total"
                            + (f" ({human_pct(p.component_sum_ratio_interval[0])}-"
                               f"{human_pct(p.component_sum_ratio_interval[1])})"
                               if p.component_sum_ratio_interval else "") + mark("component_sum_ratio"))
    if p.identical_output is not None:
        grid.caption.append("identical image with and without instrumentation" if p.identical_output
                            else "images differ with instrumentation")
    if p.image:
        grid.caption.append(f"image saved to {p.image}")
    for reason in p.unstable_reasons:
        grid.caption.append(f"{UNSTABLE_MARK} unstable: {reason}")
    return grid


def machine_lines(run: RunResult) -> list[Line]:
    state = run.machine
    if state is None:
        return []
    parts = []
    if state.start.load is not None:
        parts.append(f"load {state.start.load:.2f} at start"
                     + (f", up to {state.load_max:.2f}" if state.load_max is not None else ""))
    if state.start.cpu_mhz is not None:
        parts.append(f"CPU {state.start.cpu_mhz:.0f} MHz")
    if state.other_cpu_mean is not None:
        parts.append(f"other processes {human_pct(state.other_cpu_mean)} of {state.cpus} CPUs on average")
    lines = [Line("machine: " + ("; ".join(parts) or "state not readable here"))]
    if state.busy:
        lines.append(Line(f"{UNSTABLE_MARK} machine busy: " + "; ".join(state.reasons)
                          + ": time figures are flagged, rerun on a quiet machine", "bold yellow"))
    return lines


def layer_grid(comp: ComponentResult, depth: int) -> Grid:
    grid = Grid(f"{comp.name} layers (depth ≤ {depth})",
                [("layer", "left"), ("type", "left"), ("parameters", "right"), ("%", "right"),
                 ("FLOPs", "right"), ("%", "right"), ("output shapes", "left"), ("input shapes", "left")])
    total_params = comp.parameters.total if comp.parameters else None
    for layer in comp.layers:
        if layer.depth > depth:
            continue
        grid.add([_indent(layer), layer.type, human_count(layer.parameters),
                  human_pct(layer.parameters / total_params) if total_params else "-",
                  _layer_flops(layer), human_pct(layer.flops / comp.flops) if layer.flops and comp.flops else "-",
                  _shapes(layer.output_shapes) if layer.calls else "(container)" if layer.flops else "not called",
                  _shapes(layer.input_shapes)], dim=not layer.calls and not layer.flops)
    grid.total = ["total", comp.class_name, human_count(total_params), "100.0%" if total_params else "-",
                  human_flops(comp.flops), "100.0%" if comp.flops else "-", "", ""]
    grid.optional = [7, 3, 5, 6]  # input shapes, the two shares, output shapes
    return grid


def _layer_flops(layer: LayerRecord) -> str:
    if layer.flops is None:
        return "-" if layer.calls else "not called"
    return human_flops(layer.flops)


def _indent(layer: LayerRecord) -> str:
    return "  " * (layer.depth - 1) + layer.name.rsplit(".", 1)[-1] if layer.depth > 1 else layer.name


def _shapes(shapes: list[list[int]]) -> str:
    return " ".join(shape_text(s) for s in shapes[:3]) + (" …" if len(shapes) > 3 else "")


def view_block(view: View, max_rows: int = 40) -> Block:
    """A view as a table, numbers right-aligned, cells formatted by :func:`inspector.results.units.view_cell`
    (in the unit the column name states: ``peak_bytes`` headed ``peak``, its cells in MiB)."""
    if view.kind == "note":
        return Line(f"{view.title}: {view.text}")
    if view.kind == "series":
        return Line(series_text(view))
    rows = view.rows[:max_rows]
    numeric = numeric_columns(view.columns, rows)
    grid = Grid(view.title, [(column_label(c), "right" if numeric[i] else "left") for i, c in enumerate(view.columns)])
    for row in rows:
        grid.add([_cell(c) if isinstance(c, (list, dict))
                  else view_cell(c, view.columns[i] if i < len(view.columns) else "")
                  for i, c in enumerate(row)])
    if len(view.rows) > max_rows:
        grid.caption.append(f"{len(view.rows) - max_rows} more rows in the JSON/CSV/HTML reports")
    return grid


def series_text(view: View, width: int = 40) -> str:
    """A series as horizontal bars: enough to see a shape in a terminal."""
    lines = [view.title]
    for name, values in view.series.items():
        finite = [v for v in values if v is not None]
        top = max((abs(v) for v in finite), default=0) or 1
        lines.append(f"  {name}")
        for x, v in list(zip(view.x, values))[:40]:
            bar = "█" * int(round(width * abs(v or 0) / top))
            lines.append(f"  {str(x):>16} {bar} {_cell(v) if v is not None else '-'}")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return human_count(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return "" if value is None else str(value)


#: titles of the memory plan's views, shown in full with ``--fits`` or ``--details`` only
MEMORY_VIEWS = ("Predicted memory by component", "Predicted peak memory by placement", "Memory prediction")


def run_blocks(run: RunResult, *, layers: bool = False, depth: int = 2, details: bool = False) -> list[Block]:
    """Everything about the run, in the order a terminal's last screen wants it: the details
    (per-layer tables, plugin views, notes, the memory plan) first, then the component table, the
    end-to-end figures and the headline, so what a user came for is what stays on the screen."""
    blocks: list[Block] = []
    for comp in run.components:
        parts: list[Block] = []
        if layers and comp.layers:
            parts.append(layer_grid(comp, depth))
        if details:
            parts.extend(view_block(v) for v in comp.views)
        for note in comp.notes if (details or layers) else []:
            parts.append(Line(f"note: {note}", "italic"))
        if parts:
            blocks.append(Line(f"\n{comp.name} ({comp.class_name})", "bold"))
            blocks.extend(parts)
    full_plan = details or (run.memory_plan is not None and run.memory_plan.target is not None)
    for view in run.views:  # about the whole pipeline (memory plan, fit verdict): columns say their units
        if full_plan or not view.title.startswith(MEMORY_VIEWS):
            blocks.append(view_block(view))
    for note in run.notes:
        blocks.append(Line(f"note: {note}", "italic"))
    for comp in run.components:  # plugin metrics belong with the summary (not those that could not be taken)
        if comp.metrics and (details or not all(str(v).startswith("not measurable") for v in comp.metrics.values())):
            blocks.append(Line(f"{comp.name} metrics: " + ", ".join(f"{k}={_cell(v)}"
                                                                   for k, v in comp.metrics.items())))
    for comp in run.components:
        for err in comp.errors:
            blocks.append(Line(f"plugin {err['plugin']} failed on {comp.name} ({err['hook']}): {err['error']}",
                               "red"))
    for plugin in run.plugins:
        if plugin.error:
            blocks.append(Line(f"plugin {plugin.name} ({plugin.source}): {plugin.error}", "red"))
    pipeline = pipeline_grid(run)
    if pipeline is not None:
        blocks.append(pipeline)
    blocks.extend(machine_lines(run))
    blocks.append(summary_grid(run))
    if run.interrupted:
        blocks.append(Line("interrupted: the figures above are what was measured before Ctrl-C", "yellow"))
    blocks.extend(headline(run, full_plan))
    return blocks


def headline(run: RunResult, full_plan: bool = False) -> list[Line]:
    """What the run found (:meth:`RunResult.headline`), in two or three lines: the last thing printed."""
    h = run.headline()
    found = h.source + (f": {human_count(h.parameters)} parameters" if h.parameters is not None else "")
    if h.bytes is not None:
        found += f" ({human_bytes(h.bytes)})"
    if h.generation_flops is not None:
        found += (f"; one generation {human_flops(h.generation_flops)} "
                  f"({human_flops(h.generation_flops // 2).replace('FLOP', 'MAC')} multiply-adds)")
    lines = [Line(found, "bold")]
    if h.total_ms is not None:
        text = f"end to end {human_ms(h.total_ms)}" + (f" {UNSTABLE_MARK}" if h.total_unstable else "")
        if h.it_per_s:
            text += f" ({h.it_per_s:.2f} it/s)"
        if h.step_median_ms is not None:
            text += f"; per step median {human_ms(h.step_median_ms)}, step 0 {human_ms(h.step0_ms)}"
        if h.peak_measured:
            text += f"; peak memory {human_bytes(h.peak_bytes)}"
        if h.time_shares:
            text += "; time: " + ", ".join(f"{name} {human_pct(share)}" for name, share in h.time_shares[:3])
        lines.append(Line(text, "bold"))
    if h.fits is not None or (h.peak_bytes is not None and not h.peak_measured):
        text = f"predicted peak {human_bytes(h.peak_bytes)} all on the device" if not h.peak_measured else ""
        if h.fits is not None:
            text += f"; {h.fits}"
        elif not full_plan:
            text += " (--fits DEVICE for verdicts, --details for the plan by component and placement)"
        lines.append(Line(text.lstrip("; ")))
    return lines


def comparison_blocks(comparison: Any) -> list[Block]:
    """Per component, per block and end to end, each as a narrow table (B / A ratios)."""
    a, b = comparison.a_label, comparison.b_label
    blocks: list[Block] = []
    if not comparison.comparable:
        blocks.append(Line("NOT COMPARABLE for time and memory: " + "; ".join(comparison.problems), "bold red"))
    if comparison.differences:
        blocks.append(Line("differences: " + "; ".join(comparison.differences)))
    for warning in comparison.warnings:
        if not warning.startswith("no end-to-end table"):
            blocks.append(Line(warning, "bold yellow"))
    blocks.append(Line(f"A = {a}, B = {b}; ratios are B / A"))
    grid = Grid("per component", [("component", "left"), ("quantity", "left"), ("A", "right"), ("B", "right"),
                                  ("B/A", "right")])
    for row in comparison.components:
        first = True
        for metric, label, fmt in COMPARED:
            va, vb, r = row[f"{metric}_a"], row[f"{metric}_b"], row[f"{metric}_ratio"]
            if va is None and vb is None:
                continue
            flag = row.get(f"{metric}_unstable")
            grid.add([row["component"] if first else "", label, fmt(va), fmt(vb),
                      (f"{r:.3f}" if r is not None else "-") + (f" {UNSTABLE_MARK}" if flag else "")])
            first = False
    if any(row.get("time_ms_unstable") for row in comparison.components):
        grid.caption.append(UNSTABLE_LEGEND)
    blocks.append(grid)
    if comparison.blocks:
        blocks_grid = Grid("per block", [("block", "left"), ("params A", "right"), ("params B", "right"),
                                         ("params B/A", "right"), ("FLOPs A", "right"), ("FLOPs B", "right"),
                                         ("FLOPs B/A", "right")])
        for row in comparison.blocks:
            label = row["block"] if len({r["component"] for r in comparison.blocks}) == 1 else \
                f"{row['component']}.{row['block']}"
            blocks_grid.add([label, human_count(row["parameters_a"]), human_count(row["parameters_b"]),
                             _ratio(row["parameters_ratio"]), human_flops(row["flops_a"]),
                             human_flops(row["flops_b"]), _ratio(row["flops_ratio"])])
        blocks_grid.optional = [3, 1, 2]  # on a narrow terminal the FLOPs stay, the parameters go
        blocks.append(blocks_grid)
    if comparison.pipeline:
        e2e = Grid("end to end", [("quantity", "left"), ("A", "right"), ("B", "right"), ("B/A", "right")])
        for key, label, fmt in PIPELINE_COMPARED:
            if f"{key}_a" not in comparison.pipeline:
                continue
            va, vb = comparison.pipeline[f"{key}_a"], comparison.pipeline[f"{key}_b"]
            flag = comparison.pipeline.get(f"{key}_unstable")
            e2e.add([label, fmt(va), fmt(vb), _ratio(comparison.pipeline[f"{key}_ratio"])
                     + (f" {UNSTABLE_MARK}" if flag else "")])
        blocks.append(e2e)
    blocks.extend(Line(w, "yellow") for w in comparison.warnings if w.startswith("no end-to-end table"))
    return blocks


def _ratio(r: Any) -> str:
    return f"{r:.3f}" if r is not None else "-"


# --- writing blocks ------------------------------------------------------------------------------


def _printable_block(block: Block) -> Block:
    if isinstance(block, Line):
        return Line(printable(block.text, newlines=True), block.style)
    return dataclasses.replace(
        block, title=printable(block.title), columns=[(printable(n), j) for n, j in block.columns],
        rows=[[printable(c) for c in row] for row in block.rows],
        total=[printable(c) for c in block.total] if block.total is not None else None,
        caption=[printable(c, newlines=True) for c in block.caption])


def emit(blocks: list[Block], fmt: str, file: TextIO | None = None) -> None:
    file = file or sys.stdout
    blocks = [_printable_block(b) for b in blocks]
    if fmt in ("plain", "markdown"):
        write = _plain if fmt == "plain" else _markdown
        out = []
        for i, block in enumerate(blocks):
            if i:  # plain text lines stay together; tables stand apart, and so does every Markdown
                # line (a renderer would join lines one newline apart into one paragraph)
                together = fmt == "plain" and isinstance(block, Line) and isinstance(blocks[i - 1], Line)
                out.append("\n" if together else "\n\n")
            out.append(write(block))
        file.write("".join(out) + "\n")
    else:
        console = make_console(file)
        for block in blocks:
            _print(console, block)


#: what follows the last visible character of a line: spaces and colour codes
_TAIL = re.compile(r"(?:[ \t]|\x1b\[[0-9;]*m)+$")


def _print(console: Any, block: Block) -> None:
    """Print ``block`` fitted to the console's width, with no trailing spaces on any line (rich pads
    titles and text to the table or console width; a pipe or a copy-paste gets those spaces)."""
    with console.capture() as capture:
        console.print(_rich(block, console.width))
    lines = capture.get().split("\n")
    console.file.write("\n".join(_TAIL.sub(lambda m: "".join(re.findall(r"\x1b\[[0-9;]*m", m.group())), line)
                                 for line in lines))
    console.file.flush()


def make_console(file: TextIO | None = None) -> Any:
    """A rich console for ``file``; when it is not a terminal, wide enough that nothing wraps."""
    from rich.console import Console

    file = file or sys.stdout
    tty = hasattr(file, "isatty") and file.isatty()
    if tty:
        return Console(file=file)
    try:  # as rich does: a COLUMNS that is not a number is ignored
        width = int(os.environ.get("COLUMNS", "0") or 0)
    except ValueError:
        width = 0
    return Console(file=file, width=width if width > 0 else 1000, no_color=True, highlight=False,
                   color_system=None, emoji=False)


def _rich(block: Block, width: int | None = None) -> Any:
    """``block`` as a rich renderable. With ``width``, a table that does not fit keeps every number
    and word whole: it wraps text columns between words, then leaves out its ``optional`` columns
    (named in a footnote), and stacks its rows as ``column: value`` lines if even that is too wide."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    if isinstance(block, Line):
        return Text(block.text, style=block.style or "")
    fit = _fit(block, width) if width else (list(range(len(block.columns))), None, [])
    parts: list[Any] = [Text(block.title, style="italic")] if block.title else []
    caption = list(block.caption)
    if fit is None:
        parts += _stacked(block)
    else:
        kept, widths, left_out = fit
        table = Table(show_footer=False)
        for n, i in enumerate(kept):
            name, justify = block.columns[i]
            # a width no narrower than a number's cell: headers wrap between words, numbers never
            table.add_column(Text(name), justify=justify, overflow="fold", width=widths[n] if widths else None)
        wrap = [widths[n] if widths and not _whole(block, i) else None for n, i in enumerate(kept)]
        for cells, dim in zip(block.rows, block.dim):  # Text, not str: rich would read "[...]" as markup
            table.add_row(*map(Text, _pick(cells, kept, wrap)), style="dim" if dim else None)
        if block.total is not None:
            table.add_section()
            table.add_row(*map(Text, _pick(block.total, kept, wrap)), style="bold")
        parts.append(table)
        if left_out:
            caption.insert(0, LEFT_OUT.format(width=width, names="; ".join(left_out)))
    if caption:  # under the table, not squeezed into its width
        parts.append(Text("\n".join(caption)))
    return Group(*parts)


def _pick(cells: list[str], kept: list[int], wrap: list[int | None]) -> list[str]:
    picked = [cells[i] if i < len(cells) else "" for i in kept]
    return [_wrap(cell, width) if width else cell for cell, width in zip(picked, wrap)]


#: what wraps as one word: a shape such as ``(2, 4, 16, 16)`` stays on one line
_WORD = re.compile(r"\([^()\n]*\)|\S+")


def _wrap(text: str, width: int) -> str:
    """``text`` broken between words (see :data:`_WORD`) into lines of at most ``width``."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in _WORD.findall(paragraph):
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
    return "\n".join(lines)


def _whole(grid: Grid, i: int) -> bool:
    """The first column (the row's name) and numbers (right-aligned) are never wrapped."""
    return i == 0 or grid.columns[i][1] == "right"


def _span(text: str) -> int:
    return max((len(line) for line in text.split("\n")), default=0)


def _longest_word(text: str) -> int:
    return max((len(word) for word in _WORD.findall(text)), default=0)


def _fit(grid: Grid, width: int) -> tuple[list[int], list[int] | None, list[str]] | None:
    """(columns kept, their widths or None for natural widths, names left out), or None when only a
    stacked layout fits. A table is its columns plus 3 characters each (padding, rule) plus 1."""
    rows = _all_rows(grid)
    n = len(grid.columns)
    natural, least = [], []
    for i, (name, _) in enumerate(grid.columns):
        cells = [r[i] for r in rows if i < len(r)]
        natural.append(max([_span(name)] + [_span(c) for c in cells]))
        least.append(max([_longest_word(name)] + [_span(c) if _whole(grid, i) else _longest_word(c)
                                                  for c in cells]))
    kept = list(range(n))

    def room(widths: list[int]) -> int:
        return width - (3 * len(kept) + 1) - sum(widths[i] for i in kept)

    if room(natural) >= 0:
        return kept, None, []
    left_out: list[str] = []
    for i in grid.optional:
        if room(least) >= 0:
            break
        if i in kept and len(kept) > 1:
            kept.remove(i)
            name = grid.columns[i][0]  # a bare "%" says of what: the column before it
            left_out.append(f"% of {grid.columns[i - 1][0]}" if name == "%" and i else name)
    if room(least) < 0:
        return None
    if room(natural) >= 0:
        return kept, [natural[i] for i in kept], left_out
    spare, gaps = room(least), [natural[i] - least[i] for i in kept]
    widths = [least[i] + (spare * gap // sum(gaps) if sum(gaps) else 0) for i, gap in zip(kept, gaps)]
    return kept, widths, left_out


def _stacked(grid: Grid) -> list[Any]:
    """One row after another as ``column: value`` lines under the row's name: fits any width."""
    from rich.text import Text

    names = [name for name, _ in grid.columns]
    rows = list(zip(grid.rows, grid.dim)) + ([(grid.total, False)] if grid.total is not None else [])
    out = []
    for cells, dim in rows:
        text = Text(cells[0] if cells and cells[0].strip() else "-", style="bold dim" if dim else "bold")
        for name, cell in zip(names[1:], cells[1:]):
            if cell.strip():
                text.append(f"\n  {name}: {cell}", style="dim" if dim else "")
        out.append(text)
    return out


def _all_rows(grid: Grid) -> list[list[str]]:
    rows = [list(r) for r in grid.rows]
    if grid.total is not None:
        rows.append(list(grid.total))
    return rows


def _plain(block: Block) -> str:
    if isinstance(block, Line):
        return block.text.strip("\n")
    header = [name for name, _ in block.columns]
    rows = _all_rows(block)
    widths = [max([len(header[i])] + [len(r[i]) for r in rows if i < len(r)]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        out = []
        for i, (cell, (_, justify)) in enumerate(zip(cells, block.columns)):
            out.append(cell.rjust(widths[i]) if justify == "right" else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    lines = [block.title, line(header), "  ".join("-" * w for w in widths)]
    lines += [line(r) for r in block.rows]
    if block.total is not None:
        lines.append(line(block.total))
    lines += block.caption
    return "\n".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _markdown(block: Block) -> str:
    if isinstance(block, Line):
        text = block.text.strip("\n")
        return f"```\n{text}\n```" if "\n" in text else _md_cell(text)
    lines = [f"**{_md_cell(block.title)}**", ""]
    lines.append("| " + " | ".join(_md_cell(n) for n, _ in block.columns) + " |")
    lines.append("|" + "|".join("---:" if j == "right" else "---" for _, j in block.columns) + "|")
    for r in block.rows:
        lines.append("| " + " | ".join(_md_cell(c) for c in r) + " |")
    if block.total is not None:
        lines.append("| " + " | ".join(f"**{_md_cell(c)}**" if c else "" for c in block.total) + " |")
    if block.caption:
        lines.append("")
        lines += [_md_cell(c) + "  " for c in block.caption]
    return "\n".join(lines)


# --- entry points --------------------------------------------------------------------------------


def json_for(file: Any, text: str) -> str:
    """JSON text as ``file`` can take it: where its encoding is not UTF-8 (``PYTHONIOENCODING=ascii``),
    every non-ASCII character becomes its ``\\uXXXX`` escape (the same JSON, not a ``?``)."""
    import codecs

    try:
        encoding = codecs.lookup(getattr(file, "encoding", None) or "utf-8").name
    except LookupError:
        encoding = "ascii"
    if encoding.startswith("utf-") and not re.search("[\ud800-\udfff]", text):
        return text

    def escape(m: re.Match) -> str:
        code = ord(m.group())
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xd800 + (code >> 10):04x}\\u{0xdc00 + (code & 0x3ff):04x}"

    return re.sub("[^\x00-\x7f]", escape, text)


def render(run: RunResult, console_or_file: Any = None, *, layers: bool = False, depth: int = 2,
           details: bool = False, fmt: str = "table") -> None:
    """Print ``run`` in ``fmt`` (table, plain, markdown, json) to a file (default stdout)."""
    file = getattr(console_or_file, "file", console_or_file)
    if fmt == "json":
        from inspector.reports.json_report import dumps

        file = file or sys.stdout
        file.write(json_for(file, dumps(run)))
        return
    emit(run_blocks(run, layers=layers, depth=depth, details=details), fmt, file)


def render_comparison(comparison: Any, console_or_file: Any = None, fmt: str = "table") -> None:
    file = getattr(console_or_file, "file", console_or_file)
    if fmt == "json":
        from dataclasses import asdict

        from inspector.results.serialize import strict_json

        file = file or sys.stdout
        file.write(json_for(file, json.dumps(strict_json(asdict(comparison)), indent=2, ensure_ascii=False) + "\n"))
        return
    emit(comparison_blocks(comparison), fmt, file)


def summary_table(run: RunResult) -> Any:
    """The component summary as a rich renderable (for callers that print with their own console)."""
    return _rich(summary_grid(run))
