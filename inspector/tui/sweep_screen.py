"""The sweep screen: every point of a sweep folder with its status; Enter opens a point's run
in the main screen, ``b`` comes back here. Reads the files the sweep wrote; measures nothing."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from inspector.tui.text import plain

if TYPE_CHECKING:
    from inspector.tui.app import InspectorApp


class SweepScreen(Screen):
    BINDINGS = [
        Binding("enter", "open_point", "Open point", id="open_point", tooltip="Show the selected point's run"),
        Binding("escape", "app.pop_screen", "Close", id="close_sweep", tooltip="Back to the open run"),
    ]
    DEFAULT_CSS = """
    SweepScreen #sweep-summary { padding: 0 1; height: auto; }
    SweepScreen DataTable { height: 1fr; }
    """

    def __init__(self, root: str | Path, manifest: dict[str, Any], points: list[Any], statuses: dict[str, Any]) -> None:
        super().__init__()
        self.root = Path(root)
        self.manifest = manifest
        self.points = points
        self.statuses = statuses

    def compose(self) -> ComposeResult:
        from inspector.sweep.grid import AXES

        yield Header()
        ok = sum(1 for s in self.statuses.values() if s.status == "ok")
        failed = sum(1 for s in self.statuses.values() if s.status == "failed")
        how = ((self.manifest.get("execution") or {}).get("how")
               if isinstance(self.manifest.get("execution"), dict) else None)
        yield Static(plain(f"sweep {self.root} · {len(self.points)} point(s): {ok} ok, {failed} failed"
                           + (f" · ran {how}" if isinstance(how, str) else "")
                           + " · Enter opens a point, b comes back here"),
                     id="sweep-summary")
        table: DataTable = DataTable(id="sweep-points", cursor_type="row", zebra_stripes=True)
        self.axes = [a for a in AXES if any(a in p.params for p in self.points)]
        table.add_columns(*self.axes, "status", "seconds", "reason")
        for point in self.points:
            status = self.statuses.get(point.key)
            table.add_row(*[plain(point.params.get(a, "")) for a in self.axes],
                          status.status if status else "not run",
                          f"{status.seconds:.1f}" if status and status.seconds is not None else "-",
                          plain(status.reason or "") if status else "", key=point.key)
        yield table
        yield Footer()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_open_point()

    def action_open_point(self) -> None:
        table = self.query_one(DataTable)
        if not self.points:
            return
        point = self.points[table.cursor_row]
        status = self.statuses.get(point.key)
        run_path = self.root / "points" / point.key / "run.json"
        if status is None or status.status != "ok" or not run_path.is_file():
            reason = status.reason if status else "not run yet"
            self.app.notify(plain(f"{point.key}: no run to open ({reason})"), severity="warning")
            return
        self.app.pop_screen()
        cast("InspectorApp", self.app).open_run(str(run_path))
