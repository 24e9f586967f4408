"""Text from a run as the TUI may show it.

Names, notes, errors, layer names and plugin table cells are data from strangers (a saved run,
a plugin). Textual and rich read ``[...]`` in a plain string as markup: "[/oops]" raises and takes
the app down, "[link=...]" makes a link. Every such string passes through :func:`plain` first:
control characters shown as escapes (as the terminal output does), markup escaped.
"""
from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.text import Text

from inspector.results.units import printable


def plain(text: Any, *, newlines: bool = False) -> str:
    """``text`` shown literally: no markup, no escape sequence, no bidirectional override."""
    return escape(printable("" if text is None else text, newlines=newlines))


def literal(text: Any, style: str = "") -> Text:
    """``text`` as a rich ``Text`` (never read as markup) for rich tables, escapes shown."""
    return Text(printable("" if text is None else text, newlines=True), style=style)
