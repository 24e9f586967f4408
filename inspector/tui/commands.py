"""Command-palette provider: profile again with another dtype, step count or scheduler; export;
open a saved run; toggle the layer depth."""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

if TYPE_CHECKING:
    from inspector.tui.app import InspectorApp


class InspectorCommands(Provider):
    def entries(self) -> list[tuple[str, Callable[[], Any], str]]:
        app = cast("InspectorApp", self.app)
        entries: list[tuple[str, Callable[[], Any], str]] = [
            ("Profile", partial(app.start_profile), "profile the loaded model with the current settings"),
        ]
        for dtype in app.dtypes_offered():
            entries.append((f"Profile in {dtype}", partial(app.start_profile, dtype=dtype),
                            f"rerun with --dtype {dtype}"))
        for steps in (4, 10, 20, 50):
            entries.append((f"Profile with {steps} steps", partial(app.start_profile, steps=steps),
                            f"rerun with --steps {steps}"))
        for name in app.compatible_schedulers():
            entries.append((f"Profile with scheduler {name}", partial(app.start_profile, scheduler=name),
                            "swap the scheduler and rerun"))
        for kind in ("HTML", "CSV", "JSON"):
            entries.append((f"Export {kind}", partial(app.export, kind.lower()),
                            f"write the current run as {kind} into {app.export_dir}"))
        for path in sorted(Path(app.export_dir).glob("*.json"))[:50]:
            entries.append((f"Open saved run {path.name}", partial(app.open_run, str(path)), str(path)))
        entries.append(("Toggle layer depth", app.action_toggle_depth, "fold the layer table to depth 2 or unfold it"))
        entries.append(("Cancel the running job", app.action_cancel, "keep what was measured"))
        if app.partial is not None:
            entries.append(("Show the partial run", app.show_partial, "what the cancelled profile measured"))
        entries.append(("Help: every key", app.action_help, "? or F1"))
        return entries

    async def discover(self) -> Hits:
        for label, callback, help_text in self.entries():
            yield DiscoveryHit(label, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for label, callback, help_text in self.entries():
            score = matcher.match(label)
            if score > 0:
                yield Hit(score, matcher.highlight(label), callback, help=help_text)
