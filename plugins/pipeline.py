"""Views about the whole pipeline (predicted memory, fit verdict), shown in the TUI as a tab
beside every component's own. The views are made in the core (``inspector.memory``); this
plugin only hands them to the TUI through ``component_tabs``."""
from __future__ import annotations

from inspector import hookimpl


@hookimpl
def component_tabs(component, run):
    if not run.views:
        return None
    from inspector.results import Tab

    return [Tab("Pipeline memory", list(run.views))]
