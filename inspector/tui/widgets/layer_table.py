"""The per-layer table: sort by any column (click its header), filter by name or type, fold by depth."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, Static

from inspector.results import LayerRecord
from inspector.units import human_count as human

COLUMNS = (("layer", "name"), ("type", "type"), ("depth", "depth"), ("inputs", "input_shapes"),
           ("outputs", "output_shapes"), ("parameters", "parameters"), ("FLOPs", "flops"), ("calls", "calls"))


def shapes(value: list[list[int]]) -> str:
    return " ".join("(" + ", ".join(map(str, s)) + ")" for s in value)


class LayerTable(Vertical):
    DEFAULT_CSS = """
    LayerTable > Horizontal { height: auto; }
    LayerTable Input { width: 1fr; min-width: 18; }
    LayerTable Select { width: 20; }
    LayerTable #layer-count { width: auto; padding: 1 1; }
    """

    def __init__(self, layers: list[LayerRecord], depth: int = 2, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records = layers
        self.max_depth = max((l.depth for l in layers), default=1)
        self.depth = min(depth, self.max_depth)
        self.sort_key: str | None = None
        self.reverse = False

    def compose(self) -> ComposeResult:
        types = sorted({l.type for l in self.records})
        with Horizontal():
            yield Input(placeholder="filter by name", id="layer-filter")
            yield Select([(t, t) for t in types], prompt="any type", id="layer-type", allow_blank=True)
            yield Select([(f"depth ≤ {d}", d) for d in range(1, self.max_depth + 1)], value=self.depth,
                         id="layer-depth", allow_blank=False)
            yield Static("", id="layer-count")
        yield DataTable(id="layer-data", zebra_stripes=True, cursor_type="row")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        self.refill()

    def visible(self) -> list[LayerRecord]:
        text = self.query_one("#layer-filter", Input).value.lower()
        type_select = self.query_one("#layer-type", Select)
        type_value = None if type_select.is_blank() else type_select.value
        rows = [l for l in self.records if l.depth <= self.depth and (not text or text in l.name.lower())
                and (type_value is None or l.type == type_value)]
        if self.sort_key:
            def key(l: LayerRecord) -> Any:
                value = getattr(l, self.sort_key)
                return str(value) if isinstance(value, list) else value

            # rows without a value (modules that never ran have no FLOPs) stay last in either direction
            known = sorted((l for l in rows if getattr(l, self.sort_key) is not None), key=key, reverse=self.reverse)
            rows = known + [l for l in rows if getattr(l, self.sort_key) is None]
        return rows

    def refill(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        rows = self.visible()
        for l in rows:
            table.add_row("  " * (l.depth - 1) + l.name, l.type, str(l.depth), shapes(l.input_shapes),
                          shapes(l.output_shapes), human(l.parameters), human(l.flops) if l.calls else "not called",
                          str(l.calls), key=l.name)
        self.query_one("#layer-count", Static).update(f"{len(rows)} of {len(self.records)}")

    def set_depth(self, depth: int) -> None:
        self.depth = max(1, min(depth, self.max_depth))
        self.query_one("#layer-depth", Select).value = self.depth

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refill()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "layer-depth" and isinstance(event.value, int):
            self.depth = event.value
        self.refill()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        self.reverse = not self.reverse if self.sort_key == key else False
        self.sort_key = key
        self.refill()
