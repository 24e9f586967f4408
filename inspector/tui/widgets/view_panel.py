"""Renders plugin views (tables, series, notes) — the same data the HTML and CSV reports show."""
from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from inspector.results.records import View
from inspector.results.units import column_label, printable, view_cell
from inspector.tui.text import plain
from inspector.tui.widgets.charts import SeriesChart

TOKEN_COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return "" if value is None else str(value)


def token_chips(view: View) -> Text:
    """Each token on its own colour, so BPE splits show at a glance."""
    text = Text()
    token_col = view.columns.index("token") if "token" in view.columns else 1
    for i, row in enumerate(view.rows):
        token = printable(str(row[token_col]).replace("</w>", "·"))
        text.append(f" {token} ", style=f"bold white on {TOKEN_COLOURS[i % len(TOKEN_COLOURS)]}")
        text.append(" ")
    return text


def table_text(view: View) -> tuple[list[str], list[list[str]]]:
    """A table view's headings and cells as shown: byte columns in binary units (``peak_bytes``
    headed ``peak``, ``1.5 MiB``), the same rule as the terminal and HTML."""
    padded = [*view.columns, *[""] * max((len(row) for row in view.rows), default=0)]
    return ([plain(column_label(c)) for c in view.columns],
            [[plain(cell(v) if isinstance(v, (list, dict)) else view_cell(v, col)) for col, v in zip(padded, row)]
             for row in view.rows])


def view_widgets(view: View) -> list[Any]:
    if view.kind == "note":
        return [Static(Text(printable(f"{view.title}: {view.text}", newlines=True)), classes="note")]
    if view.kind == "series":
        return [SeriesChart(printable(view.title), view.x, view.series, printable(view.x_label or ""), classes="chart")]
    widgets: list[Any] = [Static(Text(printable(view.title), style="bold"), classes="view-title")]
    if view.hint == "tokens":
        widgets.append(Static(token_chips(view), classes="tokens"))
    table: DataTable[Any] = DataTable(zebra_stripes=True, classes="view-table")
    labels, rows = table_text(view)
    table.add_columns(*labels)
    table.add_rows(rows)
    widgets.append(table)
    return widgets


class ViewPanel(VerticalScroll):
    """A scrollable column of views."""

    def __init__(self, views: list[View], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._views = views

    def compose(self) -> ComposeResult:
        if not self._views:
            yield Static("nothing to show", classes="note")
        for view in self._views:
            yield from view_widgets(view)
