"""The Textual front end. The only package of ldm-inspector that imports ``textual``.

It renders the same :class:`~inspector.results.records.RunResult` objects as the reports and
never measures anything itself: loading, inspection and profiling run in thread
workers through the same functions as the CLI.
"""
from __future__ import annotations

from typing import Any


def run_tui(target: str | None, **kwargs: Any) -> int:
    from inspector.tui.app import InspectorApp

    app = InspectorApp(target=target, **kwargs)
    app.run()
    return app.return_code or 0
