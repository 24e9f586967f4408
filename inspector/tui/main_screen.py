"""The main screen: components on the left, the selected component's tabs on the right,
progress and status at the bottom."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, ProgressBar, Static

from inspector.tui.widgets.component_tree import ComponentTree


class MainScreen(Screen):
    CSS_PATH = "styles/main.tcss"

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="body"):
            tree = ComponentTree(id="components")
            tree.border_title = "params% · run%"  # fits the tree's narrowest width (80 columns)
            yield tree
            with Vertical(id="detail"):
                yield Static("loading…", id="placeholder", classes="note")
        with Horizontal(id="status-bar"):
            yield ProgressBar(total=1.0, show_eta=True, id="progress", classes="idle")
            yield Static("", id="status")
        yield Footer()
