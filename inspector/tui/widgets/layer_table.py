"""The per-layer table: what people open it for first (parameters, FLOPs, their shares, the
output shape), sortable from the keyboard (``s`` next column, ``r`` reverse) or by clicking a
header, with the sort column marked; filter by name or type, fold by depth. The selected
row's inputs show under the table."""
from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Input, Select, Static

from inspector.results.records import LayerRecord
from inspector.results.units import human_count, human_flops, human_pct, shape_text
from inspector.tui.text import plain

#: (label, sort key); the table leads with what matters, inputs are shown for the selected row
#: the numbers people come for right after the name, the module type after them: at 80 columns
#: the pane shows the name, parameters and their share before anything scrolls
COLUMNS = (("layer", "name"), ("parameters", "parameters"), ("%", "param_share"), ("FLOPs", "flops"),
           ("%", "flops_share"), ("type", "type"), ("output shape", "output_shapes"))
#: the widest a text column gets, so the numbers stay on screen at 120 columns
TEXT_WIDTH = {"name": 20, "type": 14}


def shapes(value: list[list[int]]) -> str:
    return " ".join(shape_text(s) for s in value)


def _right(text: str) -> Any:
    from rich.text import Text

    return Text(text, justify="right")


def _fit(text: str, key: str) -> str:
    width = TEXT_WIDTH[key]
    return text if len(text) <= width else text[: width - 1] + "…"


class LayerTable(Vertical):
    DEFAULT_CSS = """
    LayerTable > Horizontal { height: 1; }
    LayerTable Input { width: 1fr; min-width: 12; height: 1; border: none; padding: 0 1; }
    LayerTable Select { width: 16; height: 1; }
    LayerTable SelectCurrent { height: 1; border: none; padding: 0 1; }
    LayerTable #layer-count { width: auto; padding: 0 1; }
    LayerTable #layer-inputs { height: 1; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("s", "sort_next", "Sort", id="layers_sort", tooltip="Sort the layers by the next column"),
        Binding("r", "sort_reverse", "Reverse", id="layers_reverse", tooltip="Reverse the sort order"),
    ]

    def __init__(self, layers: list[LayerRecord], depth: int = 2, total_parameters: int | None = None,
                 total_flops: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records = layers
        self.max_depth = max((layer.depth for layer in layers), default=1)
        self.depth = min(depth, self.max_depth)
        self.sort_key: str | None = None
        self.reverse = False
        self.total_parameters = total_parameters or max((layer.parameters for layer in layers if layer.depth == 1),
                                                        default=0)
        self.total_flops = total_flops

    def compose(self) -> ComposeResult:
        types = sorted({layer.type for layer in self.records})
        with Horizontal():
            yield Input(placeholder="filter by name", id="layer-filter")
            yield Select([(t, t) for t in types], prompt="any type", id="layer-type", allow_blank=True)
            yield Select([(f"depth ≤ {d}", d) for d in range(1, self.max_depth + 1)], value=self.depth,
                         id="layer-depth", allow_blank=False)
            yield Static("", id="layer-count")
        yield DataTable(id="layer-data", zebra_stripes=True, cursor_type="row")
        yield Static("", id="layer-inputs")

    def on_mount(self) -> None:
        self.refill()

    def value(self, layer: LayerRecord, key: str) -> Any:
        if key == "param_share":
            return layer.parameters / self.total_parameters if self.total_parameters else None
        if key == "flops_share":
            return layer.flops / self.total_flops if layer.flops is not None and self.total_flops else None
        return getattr(layer, key)

    # shadows Textual's DOMNode.visible (a bool property): Textual reads this bound method, always true.
    # Renaming it is a change of behaviour of its own, not part of typing.
    def visible(self) -> list[LayerRecord]:  # type: ignore[override]
        text = self.query_one("#layer-filter", Input).value.lower()
        type_select = self.query_one("#layer-type", Select)
        type_value = None if type_select.is_blank() else type_select.value
        rows = [layer for layer in self.records
                if layer.depth <= self.depth and (not text or text in layer.name.lower())
                and (type_value is None or layer.type == type_value)]
        if self.sort_key:
            sort_key = self.sort_key

            def key(layer: LayerRecord) -> Any:
                value = self.value(layer, sort_key)
                return str(value) if isinstance(value, list) else value

            # rows without a value (modules that never ran have no FLOPs) stay last in either direction
            known = sorted((layer for layer in rows if self.value(layer, sort_key) is not None), key=key,
                           reverse=self.reverse)
            rows = known + [layer for layer in rows if self.value(layer, sort_key) is None]
        return rows

    def refill(self) -> None:
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for label, key in COLUMNS:
            mark = (" ▼" if self.reverse else " ▲") if key == self.sort_key else ""
            table.add_column(label + mark, key=key, width=TEXT_WIDTH.get(key))
        rows = self.visible()
        for layer in rows:
            flops = human_flops(layer.flops) if layer.flops is not None else ("-" if layer.calls else "not called")
            cells = {
                "name": plain(_fit("  " * (layer.depth - 1) + layer.name.rsplit(".", 1)[-1] if layer.depth > 1
                                   else layer.name, "name")),
                "type": plain(_fit(layer.type, "type")),
                "parameters": _right(human_count(layer.parameters)),
                "param_share": _right(human_pct(self.value(layer, "param_share"))),
                "flops": _right(flops), "flops_share": _right(human_pct(self.value(layer, "flops_share"))),
                "output_shapes": (plain(shapes(layer.output_shapes)) if layer.calls
                                  else ("(container)" if layer.flops is not None else "")),
            }
            table.add_row(*(cells[key] for _, key in COLUMNS), key=layer.name)  # cells follow the header's order
        self.query_one("#layer-count", Static).update(f"{len(rows)} of {len(self.records)}")
        self.show_inputs(rows[0] if rows else None)

    def show_inputs(self, layer: LayerRecord | None) -> None:
        text = ("" if layer is None
                else f"{layer.name} · inputs {shapes(layer.input_shapes) or '-'} · calls {layer.calls}")
        self.query_one("#layer-inputs", Static).update(plain(text))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        name = event.row_key.value if event.row_key is not None else None
        self.show_inputs(next((layer for layer in self.records if layer.name == name), None))

    def set_depth(self, depth: int) -> None:
        self.depth = max(1, min(depth, self.max_depth))
        self.query_one("#layer-depth", Select).value = self.depth

    def on_input_changed(self, event: Input.Changed) -> None:
        self.refill()

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "layer-depth" and isinstance(event.value, int):
            self.depth = event.value
        self.refill()

    def sort_by(self, key: str, reverse: bool | None = None) -> None:
        if reverse is None:
            reverse = (not self.reverse) if self.sort_key == key else key not in ("name", "type")
        self.sort_key, self.reverse = key, reverse
        self.refill()

    def action_sort_next(self) -> None:
        keys = [key for _, key in COLUMNS]
        following = keys[(keys.index(self.sort_key) + 1) % len(keys)] if self.sort_key in keys else "parameters"
        self.sort_by(following, reverse=following not in ("name", "type"))  # big numbers first

    def action_sort_reverse(self) -> None:
        if self.sort_key:
            self.sort_by(self.sort_key, reverse=not self.reverse)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        self.sort_by(str(event.column_key.value))
