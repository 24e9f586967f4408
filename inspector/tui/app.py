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
import threading
from pathlib import Path
from typing import Any, Callable, cast

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, ProgressBar, Static, TabbedContent, Tree
from textual.worker import Worker, WorkerState, get_current_worker

from inspector.results.records import RunResult
from inspector.runtime.signals import forget_thread, interrupt_thread
from inspector.sweep.folder import is_sweep_folder
from inspector.tui.commands import InspectorCommands
from inspector.tui.main_screen import MainScreen
from inspector.tui.messages import Progress, RunFailed, RunReady
from inspector.tui.text import plain
from inspector.tui.widgets.component_detail import ComponentDetail, PipelineOverview
from inspector.tui.widgets.component_tree import ComponentTree
from inspector.tui.widgets.layer_table import LayerTable

__all__ = ["InspectorApp", "OverallProgress", "HelpScreen", "parse_keymap"]


class Cancelled(KeyboardInterrupt):
    """Raised inside a worker's progress callback once the user cancelled; ``run_profile`` keeps
    what was measured and marks the run interrupted, as it does for Ctrl-C."""


class OverallProgress:
    """One bar for the whole job: each stage (loading, each component, the end-to-end pipeline)
    gets a weight, and a stage's own fraction moves the bar within its slice. Never goes back,
    so the bar's ETA means something."""

    def __init__(self, stages: list[str], weights: dict[str, float] | None = None) -> None:
        weights = weights or {}
        self.stages = list(stages)
        self.weights = {name: float(weights.get(name, 1.0)) for name in self.stages}
        self.total = sum(self.weights.values()) or 1.0
        self.done = 0.0
        self.current: str | None = None
        self.value = 0.0

    def update(self, stage: str, fraction: float) -> float:
        if stage in self.weights:
            if stage != self.current:
                index = self.stages.index(stage)
                self.done = sum(self.weights[s] for s in self.stages[:index])
                self.current = stage
            overall = (self.done + self.weights[stage] * max(0.0, min(1.0, fraction))) / self.total
            self.value = max(self.value, min(1.0, overall))
        return self.value


class HelpScreen(ModalScreen):
    """Every key binding of the app and of the focused widgets, with what it does."""

    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 90%; max-width: 100; height: auto; max-height: 90%; border: round $accent;
                            background: $surface; padding: 0 1; }
    HelpScreen DataTable { height: auto; max-height: 30; }
    """
    BINDINGS = [Binding("escape,q,question_mark,f1", "app.pop_screen", "Close", id="close_help")]

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("[b]Keys[/b] · escape closes · ctrl+p opens the command palette", id="help-title")
            table: DataTable[Any] = DataTable(id="help-table", cursor_type="row")
            table.add_columns("key", "what it does", "binding id")  # the id (for remapping) last: narrow screens cut it
            for row in self.rows:
                table.add_row(*row)
            yield table


def key_names(keys: str) -> str:
    """``"question_mark,f1"`` as a person reads it: ``"? / f1"``."""
    from textual.keys import format_key

    return " / ".join(format_key(k.strip()) for k in keys.split(",") if k.strip())


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
        Binding("question_mark,f1", "help", "Help", id="help", tooltip="Every key and what it does"),
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
        #: the thread of the running job (load, inspect or profile), which ``x`` interrupts
        self._job_thread: int | None = None
        #: a cancelled profile's partial run, kept apart from the complete run on screen
        self.partial: RunResult | None = None
        self.open_tab: str | None = None
        self.overall: OverallProgress | None = None
        self._host: Any = None
        self._entrypoints = entrypoints
        self.sweep: tuple[Any, ...] | None = None

    # --- set-up ----------------------------------------------------------------------

    @property
    def host(self) -> Any:
        if self._host is None:
            from inspector.plugin.host import Host

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
        overall = self.overall.update(stage, fraction) if self.overall is not None else fraction
        self.post_message(Progress(stage, overall, detail))

    @work(thread=True, exclusive=True, exit_on_error=False, group="run")
    def load_model(self) -> None:
        """Load the model and inspect it (shapes, FLOPs); profiling is a separate step."""
        from inspector.errors import InspectorError
        from inspector.inspection import activation_predictor, inspect_loaded
        from inspector.plugin.context import InspectOptions
        from inspector.sources.loading import SourceSpec, enforce_offline, load

        self.busy = True
        self.overall = None
        self._job_thread = threading.get_ident()
        enforce_offline(False)
        try:
            self.post_message(Progress("loading", 0.05, self.target or "tiny-sd"))
            spec = SourceSpec(model=self.target, **self.source_options)
            options = InspectOptions(**{k: v for k, v in self.profile_options.items()
                                        if k in InspectOptions.__dataclass_fields__})
            spec.activations = activation_predictor(self.host, options)  # the same memory guard as the CLI
            self.loaded = load(spec, self.host.presets())  # presets bring their default weights
            self.post_message(Progress("inspecting", 0.5, "shapes and FLOPs"))
            run = inspect_loaded(self.host, self.loaded, options)
            self.post_message(RunReady(run, "inspected"))
        except InspectorError as exc:
            self.post_message(RunFailed(str(exc)))
        except KeyboardInterrupt:
            self.post_message(RunFailed("loading cancelled"))
        finally:
            self._end_job()

    def start_profile(self, **overrides: Any) -> None:
        if self.busy:
            self.notify("a job is already running: cancel it first (x)", severity="warning")
            return
        self.profile_worker(overrides)

    @work(thread=True, exclusive=True, exit_on_error=False, group="run")
    def profile_worker(self, overrides: dict[str, Any]) -> None:
        from inspector.errors import InspectorError
        from inspector.plugin.context import ProfileOptions
        from inspector.profiling import prepare_profile, run_profile
        from inspector.sources.loading import load

        self.busy = True
        self.overall = OverallProgress(["loading"])
        self._job_thread = threading.get_ident()
        try:
            settings = {**self.profile_options, **overrides}
            dtype = settings.pop("dtype", "auto")
            source = {k: v for k, v in self.source_options.items() if k not in ("dtype", "weights", "device")}
            spec, options = prepare_profile(
                self.host, self.target, dtype=dtype, device=self.source_options.get("device", "cpu"), **source,
                **{k: v for k, v in settings.items() if k in ProfileOptions.__dataclass_fields__})
            loaded = self.loaded
            if loaded is None or loaded.weights == "meta" or dtype != "auto":
                self.post_message(Progress("loading", 0.0, "weights for profiling"))
                loaded = load(spec, self.host.presets())
            from inspector.inspection import components_of

            names = [c.name for c in components_of(loaded.pipe) if c.present]
            # the end-to-end calls take about as long as all isolated measurements together
            self.overall = OverallProgress(["loading", *names, "pipeline"],
                                           {"pipeline": max(3.0, len(names)) if options.end_to_end else 0.0})
            self.overall.update("loading", 1.0)
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
            self._end_job()

    def _end_job(self) -> None:
        """The worker's thread is done: a cancel it did not reach is dropped."""
        if self._job_thread is not None:
            forget_thread(self._job_thread)
        self._job_thread = None
        self.busy = False

    # --- messages --------------------------------------------------------------------

    @on(Progress)
    def show_progress(self, message: Progress) -> None:
        bar = self.screen.query_one("#progress", ProgressBar)
        bar.remove_class("idle")
        bar.update(progress=max(0.0, min(1.0, message.fraction)))
        self.screen.query_one("#status", Static).update(plain(f"{message.stage} · {message.detail}"))

    @on(RunReady)
    async def show_run(self, message: RunReady) -> None:
        previous = self.result
        if message.run.interrupted and previous is not None and not previous.interrupted \
                and message.run.command == "profile":
            # cancelled: the complete run stays on screen; the partial one is kept apart
            self.partial = message.run
            self.screen.query_one("#status", Static).update(
                "profile cancelled: the previous complete run is still shown; "
                "ctrl+p 'Show the partial run' to see what was measured")
            self.notify("profile cancelled: previous complete run kept", severity="warning")
            self.screen.query_one("#progress", ProgressBar).update(progress=0.0)
            self.screen.query_one("#progress", ProgressBar).add_class("idle")
            return
        self.result = message.run
        screen = self.screen
        screen.query_one("#progress", ProgressBar).update(progress=1.0)
        screen.query_one("#progress", ProgressBar).add_class("idle")
        screen.query_one("#status", Static).update(plain(message.note) if message.note else "ready")
        tree = screen.query_one(ComponentTree)
        tree.show_run(message.run)
        self.sub_title = f"{message.run.model.source} · {message.run.command}" + (
            " · interrupted" if message.run.interrupted else "")
        names = [c.name for c in message.run.components]
        if self.selected is None and message.run.pipeline is not None:
            await self.show_overview()
            return
        await self.show_component(self.selected if self.selected in names else (names[0] if names else None))

    @on(RunFailed)
    def show_failure(self, message: RunFailed) -> None:
        self.screen.query_one("#progress", ProgressBar).add_class("idle")
        self.screen.query_one("#status", Static).update(plain(f"error: {message.error}"))
        self.notify(plain(message.error), severity="error", timeout=8)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A job that fails in a way nobody expected still says so, in a notification and the status."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.busy = False
            self.post_message(RunFailed(f"{event.worker.name} failed: {type(error).__name__}: {error}"))

    @on(Tree.NodeSelected)
    @on(Tree.NodeHighlighted)
    async def node_selected(self, event: Tree.NodeSelected | Tree.NodeHighlighted) -> None:
        """The detail pane follows the tree's highlight: arrow keys show what they point at."""
        if event.node.data and event.node.data == self.selected:
            return
        if event.node.data:
            await self.show_component(event.node.data)
        elif event.node.is_root:
            await self.show_overview()

    def _remember_tab(self) -> None:
        from textual.css.query import NoMatches

        for tabs in self.screen.query("#component-tabs"):
            tabs = cast(TabbedContent, tabs)
            try:
                active = tabs.active_pane
                title = str(getattr(tabs.get_tab(active), "label_text", "") or "") if active is not None else ""
            except (ValueError, NoMatches):  # the tabs are being replaced right now
                continue
            self.open_tab = title or self.open_tab

    async def show_overview(self) -> None:
        if self.result is None:
            return
        self._remember_tab()
        self.selected = None
        detail = self.screen.query_one("#detail")
        await detail.remove_children()
        detail.border_title = plain(f"pipeline · {self.result.model.pipeline_class}")
        await detail.mount(PipelineOverview(self.result, id="pipeline-overview"))

    async def show_component(self, name: str | None) -> None:
        if self.result is None or name is None:
            return
        self._remember_tab()
        self.selected = name
        comp = next(c for c in self.result.components if c.name == name)
        tabs = self.component_tabs(comp)
        detail = self.screen.query_one("#detail")
        await detail.remove_children()
        detail.border_title = plain(f"{comp.name} · {comp.class_name}")
        await detail.mount(ComponentDetail(self.result, comp, tabs, self.depth, initial_tab=self.open_tab,
                                           id="component-detail"))

    def component_tabs(self, comp: Any) -> list[Any]:
        tabs: list[Any] = []
        for result in self.host.component_tabs(comp, self.result, on_error=lambda call: self.notify(
                plain(f"plugin {call.plugin} failed to build its tab: {call.error}"), severity="error")):
            tabs.extend(result or [])
        return tabs

    # --- actions ---------------------------------------------------------------------

    def action_profile(self) -> None:
        self.start_profile()

    def help_rows(self) -> list[tuple[str, str, str]]:
        rows = []
        seen = set()
        bindings = cast(list[Binding], [*self.BINDINGS, *self.screen.BINDINGS, *LayerTable.BINDINGS])
        for binding in bindings:
            ident = binding.id or binding.action
            if ident in seen:
                continue
            seen.add(ident)
            rows.append((key_names(binding.key), binding.tooltip or binding.description, ident))
        rows.append(("ctrl+p", "palette: other dtype, steps or scheduler; export; open a run", ""))
        rows.append(("click a header", "sort the layer table by that column", ""))
        return rows

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.help_rows()))

    def show_partial(self) -> None:
        if self.partial is None:
            self.notify("no cancelled run to show", severity="warning")
            return
        run, self.partial = self.partial, None
        self.result = None  # shown as a run of its own, marked interrupted (the sub-title says so)
        self.post_message(RunReady(run, "partial run (cancelled): figures are incomplete"))

    def action_cancel(self) -> None:
        if self.workers:
            self.workers.cancel_group(self, "run")
            if self._job_thread is not None:
                # the progress callback sees the cancel only between stages; our FLOP counter and
                # memory tracker check before every operator, so a long capture stops too
                interrupt_thread(self._job_thread, Cancelled)
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

        stem = re.sub(r"[^A-Za-z0-9._-]+", "-",
                      f"ldm-inspector-{self.result.model.source}-{self.result.command}").strip("-")
        folder = Path(self.export_dir)
        target = folder / (stem if kind == "csv" else f"{stem}.{kind}")
        try:
            folder.mkdir(exist_ok=True)  # like --csv: a missing folder is created, its parent must exist
            writers: dict[str, Callable[[RunResult, Path], Any]] = {
                "html": html_report.write, "csv": csv_report.write, "json": json_report.write}
            writers[kind](self.result, target)
        except InspectorError as exc:
            self.notify(plain(exc), severity="error")
            return None
        except OSError as exc:
            self.notify(plain(f"cannot write into {folder}: {exc.strerror or exc}"), severity="error")
            return None
        self.notify(plain(f"wrote {target}"))
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

    def dtypes_offered(self) -> list[str]:
        """Only what the device can run: float16 on a CPU is refused by profile, so not offered."""
        device = str(self.source_options.get("device") or "")
        if not device or device == "auto":
            try:
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
            except ImportError:  # pragma: no cover - torch is a dependency
                device = "cpu"
        return ["float32", "bfloat16"] + (["float16"] if device.startswith("cuda") else [])

    def open_sweep(self, root: str) -> None:
        """A sweep folder: its points first; Enter on one opens that point's run."""
        from inspector.errors import InspectorError
        from inspector.sweep.folder import load_sweep

        try:
            manifest, points, statuses = load_sweep(Path(root))
        except InspectorError as exc:
            self.post_message(RunFailed(str(exc)))
            return
        self.sweep = (root, manifest, points, statuses)
        self.action_show_sweep()

    def action_show_sweep(self) -> None:
        from inspector.tui.sweep_screen import SweepScreen

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
