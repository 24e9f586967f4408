"""A tiny app module for snapshot tests: the TUI on a saved run, no model loaded."""
from __future__ import annotations

from pathlib import Path

from inspector.reports import json_report
from inspector.tui.app import InspectorApp

SAVED_RUN = Path(__file__).parent / "data" / "tiny-profile.json"


def make_app(export_dir: str | None = None) -> InspectorApp:
    # built-in plugins only: snapshots must not depend on which plugins happen to be installed
    return InspectorApp(run=json_report.load(SAVED_RUN), autoload=False, export_dir=export_dir, entrypoints=False)


app = make_app()
