"""``ldm-inspector tui``: browse a pipeline's components, layers, timings and memory.

Loading, inspecting and profiling run in thread workers (``@work(thread=True)``) that post
:mod:`~inspector.tui.messages`; the UI stays responsive, a progress bar and the status line
show where a run is, and ``x`` cancels it, keeping what was measured (the run is marked
interrupted). Key bindings have ids, so users can remap them, e.g.
``LDM_INSPECTOR_KEYMAP="profile=f5,cancel=ctrl+x"``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import App
from textual.binding import Binding
from textual.widgets import ProgressBar, Static, Tree
from textual.worker import get_current_worker

from inspector.results import RunResult
from inspector.sweep import is_sweep_folder

from .commands import InspectorCommands
from .main_screen import MainScreen
from .messages import Progress, RunFailed, RunReady
from .widgets.component_detail import ComponentDetail
from .widgets.component_tree import ComponentTree
from .widgets.layer_table import LayerTable


class Cancelled(KeyboardInterrupt):
    """Raised inside a worker's progress callback once the user cancelled; ``run_profile`` keeps
    what was measured and marks the run interrupted, as it does for Ctrl-C."""


def parse_keymap(text: str) -> dict[str, str]:
    pairs = (item.split("=", 1) for item in text.split(",") if "=" in item)
    return {k.strip(): v.strip() for k, v in pairs if k.strip() and v.strip()}


class InspectorApp(App):
    TITLE = "ldm-inspector"
    CSS_PATH = "styles/app.tcss"
    COMMANDS = App.COMMANDS | {InspectorCommands}
    BINDINGS = [
        Binding("p", "profile", "Profile", id="profile", tooltip="Time every component and the whole pipeline"),
        Binding("x", "cancel", "Cancel", id="cancel", tooltip="Stop the running job, keep what was measured"),
        Binding("e", "export('html')", "Export HTML", id="export_html", tooltip="Write the HTML report"),
        Binding("d", "toggle_depth", "Depth", id="toggle_depth", tooltip="Fold the layer table to depth 2, or unfold"),
        Binding("b", "show_sweep", "Sweep", id="show_sweep", tooltip="Back to the sweep's points (a sweep folder)",
                show=False),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, target: str | None = None, *, run: RunResult | None = None, export_dir: str | None = None,
                 profile_options: dict[str, Any] | None = None, source_options: dict[str, Any] | None = None,
                 autoload: bool = True, entrypoints: bool | None = None) -> None:
        super().__init__()
        self.target = target
        self.result: RunResult | None = run
        self.export_dir = export_dir or os.getcwd()
        self.profile_options = dict(profile_options or {})
        self.source_options = dict(source_options or {})
        self.autoload = autoload
        self.loaded: Any = None
        self.selected: str | None = None
        self.depth = 2
        self.busy = False
        self._host: Any = None
        self._entrypoints = entrypoints
        self.sweep: tuple[Any, ...] | None = None

    # --- set-up ----------------------------------------------------------------------

    @property
    def host(self) -> Any:
        if self._host is None:
            from inspector.host import Host

            self._host = Host.default(entrypoints=self._entrypoints)
        return self._host

    def on_mount(self) -> None:
        keymap = parse_keymap(os.environ.get("LDM_INSPECTOR_KEYMAP", ""))
        if keymap:
            self.set_keymap(keymap)
        self.push_screen(MainScreen())
        if self.result is not None:
            self.post_message(RunReady(self.result))
        elif self.target and self.target.endswith(".json") and Path(self.target).is_file():
            self.open_run(self.target)
        elif self.target and is_sweep_folder(self.target):
            self.open_sweep(self.target)
        elif self.autoload:
            self.load_model()

    # --- workers ---------------------------------------------------------------------

    def _progress(self, stage: str, fraction: float, detail: str) -> None:
        if get_current_worker().is_cancelled:
            raise Cancelled
        self.post_message(Progress(stage, fraction, detail))

    @work(thread=True, exclusive=True, exit_on_error=False, group="run")
    def load_model(self) -> None:
        """Load the model and inspect it (shapes, FLOPs); profiling is a separate step."""
        from inspector.context import InspectOptions
        from inspector.errors import InspectorError
        from inspector.inspection import inspect_loaded
        from inspector.loading import SourceSpec, enforce_offline, load

        self.busy = True
        enforce_offline(False)
        try:
            self.post_message(Progress("loading", 0.05, self.target or "tiny-sd"))
            spec = SourceSpec(model=self.target, **self.source_options)
            self.loaded = load(spec, self.host.presets())  # presets bring their default weights
            self.post_message(Progress("inspecting", 0.5, "shapes and FLOPs"))
            options = InspectOptions(**{k: v for k, v in self.profile_options.items()
                                        if k in InspectOptions.__dataclass_fields__})
            run = inspect_loaded(self.host, self.loaded, options)
            self.post_message(RunReady(run, "inspected"))
        except InspectorError as exc:
            self.post_message(RunFailed(str(exc)))
        except KeyboardInterrupt:
            self.post_message(RunFailed("loading cancelled"))
        finally:
            self.busy = False

    def start_profile(self, **overrides: Any) -> None:
        if self.busy:
            self.notify("a job is already running: cancel it first (x)", severity="warning")
            return
        self.profile_worker(overrides)

    @work(thread=True, exclusive=True, exit_on_error=False, group="run")
    def profile_worker(self, overrides: dict[str, Any]) -> None:
        from inspector.errors import InspectorError
        from inspector.loading import SourceSpec, load
        from inspector.profiling import ProfileOptions, run_profile

        self.busy = True
        try:
            settings = {**self.profile_options, **overrides}
            dtype = settings.pop("dtype", "auto")
            spec = SourceSpec(model=self.target, dtype=dtype, **{k: v for k, v in self.source_options.items()
                                                                   if k not in ("dtype", "weights")})
            presets = self.host.presets()
            if (self.target or "tiny-sd") in presets:
                spec.weights = "random"
            loaded = self.loaded
            if loaded is None or loaded.weights == "meta" or dtype != "auto":
                self.post_message(Progress("loading", 0.0, "weights for profiling"))
                from inspector.profiling import resolve_dtype

                spec.dtype = resolve_dtype(spec.dtype, spec.device, False)
                loaded = load(spec, presets)
            options = ProfileOptions(**{k: v for k, v in settings.items() if k in ProfileOptions.__dataclass_fields__})
            run = run_profile(self.host, spec, options, loaded=loaded, progress=self._progress)
            if dtype == "auto":
                self.loaded = loaded
            note = "profile cancelled: partial results kept" if run.interrupted else "profiled"
            self.post_message(RunReady(run, note))
        except InspectorError as exc:
            self.post_message(RunFailed(str(exc)))
        except KeyboardInterrupt:
            self.post_message(RunFailed("cancelled while loading"))
        finally:
            self.busy = False

    # --- messages --------------------------------------------------------------------

    @on(Progress)
    def show_progress(self, message: Progress) -> None:
        self.screen.query_one("#progress", ProgressBar).update(progress=max(0.0, min(1.0, message.fraction)))
        self.screen.query_one("#status", Static).update(f"{message.stage} · {message.detail}")

    @on(RunReady)
    async def show_run(self, message: RunReady) -> None:
        self.result = message.run
        screen = self.screen
        screen.query_one("#progress", ProgressBar).update(progress=1.0)
        screen.query_one("#status", Static).update(message.note or "ready")
        tree = screen.query_one(ComponentTree)
        tree.show_run(message.run)
        self.sub_title = f"{message.run.model.source} · {message.run.command}" + (
            " · interrupted" if message.run.interrupted else "")
        names = [c.name for c in message.run.components]
        await self.show_component(self.selected if self.selected in names else (names[0] if names else None))

    @on(RunFailed)
    def show_failure(self, message: RunFailed) -> None:
        self.screen.query_one("#status", Static).update(f"error: {message.error}")
        self.notify(message.error, severity="error", timeout=8)

    @on(Tree.NodeSelected)
    async def node_selected(self, event: Tree.NodeSelected) -> None:
        if event.node.data:
            await self.show_component(event.node.data)

    async def show_component(self, name: str | None) -> None:
        if self.result is None or name is None:
            return
        self.selected = name
        comp = next(c for c in self.result.components if c.name == name)
        tabs = self.component_tabs(comp)
        detail = self.screen.query_one("#detail")
        await detail.remove_children()
        detail.border_title = f"{comp.name} · {comp.class_name}"
        await detail.mount(ComponentDetail(self.result, comp, tabs, self.depth, id="component-detail"))

    def component_tabs(self, comp: Any) -> list[Any]:
        tabs: list[Any] = []
        for result in self.host.call_each("component_tabs", component=comp, run=self.result,
                                          on_error=lambda plugin, exc: self.notify(
                                              f"plugin {plugin} failed to build its tab: {exc}", severity="error")):
            tabs.extend(result or [])
        return tabs

    # --- actions ---------------------------------------------------------------------

    def action_profile(self) -> None:
        self.start_profile()

    def action_cancel(self) -> None:
        if self.workers:
            self.workers.cancel_group(self, "run")
            self.screen.query_one("#status", Static).update("cancelling…")

    def action_toggle_depth(self) -> None:
        self.depth = 99 if self.depth <= 2 else 2
        for table in self.screen.query(LayerTable):
            table.set_depth(self.depth)
            table.refill()

    def action_export(self, kind: str) -> None:
        self.export(kind)

    def export(self, kind: str) -> Path | None:
        """Write the current run with the same writers as the CLI."""
        if self.result is None:
            self.notify("nothing to export yet", severity="warning")
            return None
        from inspector.errors import InspectorError
        from inspector.reports import csv_report, html_report, json_report

        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", f"ldm-inspector-{self.result.model.source}-{self.result.command}").strip("-")
        folder = Path(self.export_dir)
        target = folder / (stem if kind == "csv" else f"{stem}.{kind}")
        try:
            folder.mkdir(exist_ok=True)  # like --csv: a missing folder is created, its parent must exist
            {"html": html_report.write, "csv": csv_report.write, "json": json_report.write}[kind](self.result, target)
        except InspectorError as exc:
            self.notify(str(exc), severity="error")
            return None
        except OSError as exc:
            self.notify(f"cannot write into {folder}: {exc.strerror or exc}", severity="error")
            return None
        self.notify(f"wrote {target}")
        return target

    def open_run(self, path: str) -> None:
        from inspector.errors import InspectorError
        from inspector.reports import json_report

        try:
            run = json_report.load(path)
        except InspectorError as exc:
            self.post_message(RunFailed(str(exc)))
            return
        self.loaded = None
        self.target = run.model.source
        self.post_message(RunReady(run, f"opened {path}"))

    def open_sweep(self, root: str) -> None:
        """A sweep folder: its points first; Enter on one opens that point's run."""
        from inspector.errors import InspectorError
        from inspector.sweep import load_sweep

        try:
            manifest, points, statuses = load_sweep(Path(root))
        except InspectorError as exc:
            self.post_message(RunFailed(str(exc)))
            return
        self.sweep = (root, manifest, points, statuses)
        self.action_show_sweep()

    def action_show_sweep(self) -> None:
        from .sweep_screen import SweepScreen

        if self.sweep is None:
            self.notify("no sweep open: start the TUI with a sweep folder", severity="warning")
            return
        if not isinstance(self.screen, SweepScreen):
            self.push_screen(SweepScreen(*self.sweep))

    def compatible_schedulers(self) -> list[str]:
        if self.result is None:
            return []
        for comp in self.result.components:
            if comp.kind == "scheduler":
                return list(comp.details.get("compatibles") or [])
        return []
