"""Tabs the TUI shows beside every component's own: the pipeline's predicted memory (views
made in the core by ``inspector.measure.memory_plan``) and, after ``profile``, the component's top
operators (views made by ``inspector.measure.operators``). This plugin only hands existing views over."""
from __future__ import annotations

from typing import TYPE_CHECKING

from inspector.api import Tab, hookimpl

if TYPE_CHECKING:
    from inspector.api import ComponentResult, RunResult, Tab


@hookimpl
def component_tabs(component: ComponentResult, run: RunResult) -> list[Tab] | None:
    tabs = []
    operators = [v for v in component.views if v.title.startswith("Top operators")]
    if operators:
        tabs.append(Tab("Operators", operators))
    if run.views:
        tabs.append(Tab("Pipeline memory", list(run.views)))
    return tabs or None
