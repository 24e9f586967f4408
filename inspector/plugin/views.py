"""Helpers plugins share for describing what they show (one rule, used by every plugin)."""
from __future__ import annotations

from typing import Any

from inspector.results.records import Tab, View


def tabs_from_views(component: Any, *, lead: dict[str, list[View]] | None = None) -> list[Tab]:
    """One TUI tab per distinct ``View.tab`` of ``component.views``, in first-seen order; views
    without a tab stay out. ``lead`` puts extra views (a summary note, say) first in a tab."""
    tabs: dict[str, list[View]] = {}
    for name, views in (lead or {}).items():
        tabs.setdefault(name, []).extend(views)
    for view in component.views:
        if view.tab:
            tabs.setdefault(view.tab, []).append(view)
    return [Tab(title, views) for title, views in tabs.items() if views]


def json_safe(value: Any) -> Any:
    """Configs and details as plain JSON data: containers kept, anything else as its text."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
