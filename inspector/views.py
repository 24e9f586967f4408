"""Helpers plugins share for describing what they show (one rule, used by every plugin)."""
from __future__ import annotations

from typing import Any

from .results import Tab, View


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
