"""The Textual TUI, driven with Pilot: components, layer table, workers, cancel, palette, snapshots."""
from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import time

import pytest
from textual.css.query import NoMatches
from textual.widgets import DataTable, Input, Static, TabbedContent, Tree

from inspector.tui.app import InspectorApp, parse_keymap
from inspector.tui.widgets.component_detail import ComponentDetail
from inspector.tui.widgets.layer_table import COLUMNS, LayerTable

from .tui_app import SAVED_RUN, make_app

SIZE = (120, 40)
FAST = {"steps": 3, "repeats": 1, "warmup": 0, "e2e_repeats": 1}


def ready(app) -> bool:
    return app.result is not None and bool(app.screen.query("#component-tabs")
                                           or app.screen.query("#pipeline-overview"))


def first_key(data) -> str:
    from textual.coordinate import Coordinate

    return data.coordinate_to_cell_key(Coordinate(0, 0)).row_key.value


#: how long a change on screen may take before the test gives up (a load or a profile gets the default)
UI = 30.0


def condition_text(predicate) -> str:
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)


async def wait_for(pilot, predicate, timeout: float = 300.0) -> None:
    """Poll until ``predicate()`` holds: the app handles every pending message before each look. A
    widget not mounted yet (``NoMatches``) is a condition not met yet. Fails with the condition's
    source after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        await pilot.pause()
        try:
            if predicate():
                return
        except NoMatches:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for: {condition_text(predicate)}")
        await pilot.pause(0.05)


def detail_title(app) -> str:
    return str(app.screen.query_one("#detail").border_title)


def on_screen(widget) -> bool:
    """Laid out with a size on the screen, and so painted: a hidden tab's pane is not."""
    return widget.region.area > 0


def showing(app, name: str) -> bool:
    """The detail pane holds ``name``'s tabs, mounted and on screen."""
    details = app.screen.query(ComponentDetail)
    return (len(details) == 1 and details.first().comp.name == name
            and on_screen(details.first().query_one("#component-tabs")))


def pane_shown(app, pane_id: str) -> bool:
    """The component's tab ``pane_id`` is the active one and its pane is on screen."""
    tabs = app.screen.query_one("#component-tabs", TabbedContent)
    return tabs.active == pane_id and on_screen(tabs.query_one(f"#{pane_id}"))


def help_shown(app) -> bool:
    from inspector.tui.app import HelpScreen

    return isinstance(app.screen, HelpScreen) and app.screen.query_one("#help-table", DataTable).row_count > 0


def palette_offers(app, text: str) -> bool:
    """The command palette has ``text`` typed, and its highlighted hit (what Enter runs) is that command."""
    from textual.command import CommandList, CommandPalette

    screen = app.screen
    if not isinstance(screen, CommandPalette) or screen.query_one(Input).value != text:
        return False
    hits = screen.query_one(CommandList)
    return hits.highlighted is not None and text in str(hits.get_option_at_index(hits.highlighted).prompt)


async def type_text(pilot, text: str) -> None:
    await pilot.press(*(ch if ch != " " else "space" for ch in text))


def header(data) -> list[str]:
    return [str(c.label) for c in data.columns.values()]


def test_every_component_can_be_selected():
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: ready(app))
            tree = app.screen.query_one(Tree)
            names = []
            for node in tree.root.children:
                tree.select_node(node)
                names.append(node.data)
                comp = next(c for c in app.result.components if c.name == node.data)
                # selecting also moves the highlight, which the pane follows: wait for the pane, not a clock
                await wait_for(pilot, lambda comp=comp: detail_title(app) == f"{comp.name} · {comp.class_name}"
                               and bool(app.screen.query("#component-tabs")), timeout=60)
                tabs = app.screen.query_one("#component-tabs", TabbedContent)
                panes = [p.id for p in tabs.query("TabPane")]
                assert panes[0] == "tab-summary" and panes[-1] == "tab-plugins"
                assert ("tab-layers" in panes) == bool(comp.layers)
            assert names == [c.name for c in app.result.components]

    asyncio.run(scenario())


def test_the_detail_pane_follows_the_arrow_keys():
    """Moving the tree's highlight shows that component at once; Enter is not needed."""
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: ready(app))
            tree = app.screen.query_one(Tree)
            tree.focus()
            tree.move_cursor(tree.root)
            await wait_for(pilot, lambda: on_screen(app.screen.query_one("#pipeline-overview")), timeout=UI)
            seen = []
            for comp in app.result.components[:3]:
                await pilot.press("down")
                await wait_for(pilot,
                               lambda comp=comp: app.selected == comp.name and detail_title(app).startswith(comp.name),
                               timeout=30)
                seen.append(detail_title(app))
            assert seen == [f"{c.name} · {c.class_name}" for c in app.result.components[:3]]

    asyncio.run(scenario())


def test_plugin_tabs_come_from_the_hook():
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: ready(app))
            titles = {}
            for name in ("tokenizer", "scheduler", "vae", "unet"):
                await app.show_component(name)
                await wait_for(pilot, lambda name=name: showing(app, name), timeout=UI)
                tabs = app.screen.query_one("#component-tabs", TabbedContent)
                titles[name] = [str(t.label) for t in tabs.query("ContentTab")]
            assert "Tokenizer" in titles["tokenizer"] and "Scheduler" in titles["scheduler"]
            assert "VAE" in titles["vae"] and "Blocks" in titles["unet"]

    asyncio.run(scenario())


def test_layer_table_sorts_filters_and_folds():
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: ready(app))
            await app.show_component("unet")
            await wait_for(pilot, lambda: showing(app, "unet"), timeout=UI)
            app.screen.query_one("#component-tabs", TabbedContent).active = "tab-layers"
            await wait_for(pilot, lambda: pane_shown(app, "tab-layers")
                           and on_screen(app.screen.query_one("#layer-data")), timeout=UI)
            table = app.screen.query_one(LayerTable)
            data = app.screen.query_one("#layer-data", DataTable)
            unet = app.result.component("unet")
            assert data.row_count == sum(1 for layer in unet.layers if layer.depth <= 2)
            first = unet.layers[0]
            cells = dict(zip([str(c.label) for c in data.columns.values()], map(str, data.get_row_at(0))))
            assert cells["parameters"] == f"{first.parameters:,}" and cells["type"] == first.type[:14].rstrip("…")
            await pilot.press("d")  # unfold every depth
            await wait_for(pilot, lambda: data.row_count == len(unet.layers), timeout=UI)
            expected = [layer for layer in unet.layers if "attn1" in layer.name.lower()]
            assert expected
            table.query_one("#layer-filter", Input).value = "attn1"
            await wait_for(pilot, lambda: data.row_count == len(expected), timeout=UI)
            data.focus()
            await wait_for(pilot, lambda: app.focused is data, timeout=UI)
            for _ in range(len(COLUMNS)):  # `s` walks the sort columns; the header shows the mark
                if table.sort_key == "flops":
                    break
                before = table.sort_key
                await pilot.press("s")
                await wait_for(pilot, lambda before=before: table.sort_key != before, timeout=UI)
            assert table.sort_key == "flops" and table.reverse is True
            labels = header(data)
            assert "FLOPs ▼" in labels and labels[:4] == ["layer", "parameters", "%", "FLOPs ▼"]
            flops_of = {layer.name: layer.flops or 0 for layer in expected}
            assert flops_of[first_key(data)] == max(flops_of.values())
            await pilot.press("r")
            await wait_for(pilot, lambda: "FLOPs ▲" in header(data), timeout=UI)
            assert flops_of[first_key(data)] == min(flops_of.values())
            table.sort_by("parameters", reverse=True)
            assert first_key(data) == max(expected, key=lambda layer: layer.parameters).name
            # the selected row's inputs show under the table
            inputs = str(table.query_one("#layer-inputs", Static).render())
            assert max(expected, key=lambda layer: layer.parameters).name in inputs and "inputs (" in inputs
            await pilot.press("d")  # fold back to depth 2: no attn1 module that shallow
            await wait_for(pilot, lambda: data.row_count == 0, timeout=UI)

    asyncio.run(scenario())


def test_profile_in_a_worker_then_cancel_a_second_one(tmp_path):
    async def scenario():
        app = InspectorApp(target=None, export_dir=str(tmp_path), profile_options=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None and not app.busy)
            assert app.result.command == "inspect"
            await pilot.press("p")
            await wait_for(pilot, lambda: app.result.command == "profile" and not app.busy, timeout=300)
            assert not app.result.interrupted and app.result.pipeline is not None
            assert app.result.component("unet").timing is not None
            assert "profiled" in str(app.screen.query_one("#status", Static).render())
            # a second profile, cancelled as soon as the worker reports progress
            first = app.result
            app.start_profile()
            await wait_for(pilot, lambda: app.busy and "·" in str(app.screen.query_one("#status", Static).render()))
            await pilot.press("x")
            await wait_for(pilot, lambda: not app.busy and app.partial is not None, timeout=300)
            # the complete run stays on screen; the partial one is kept apart
            assert app.result is first and not app.result.interrupted
            assert app.partial.interrupted is True
            assert "cancelled" in str(app.screen.query_one("#status", Static).render())
            app.show_partial()
            await wait_for(pilot, lambda: app.result is not None and app.result.interrupted)
            assert "interrupted" in app.sub_title

    asyncio.run(scenario())


def test_export_html_from_the_command_palette(tmp_path):
    exports = tmp_path / "exports"  # missing: created by the export, as --csv creates its folder

    async def scenario():
        app = make_app(export_dir=str(exports))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None)
            await pilot.press("ctrl+p")
            await type_text(pilot, "Export HTML")
            await wait_for(pilot, lambda: palette_offers(app, "Export HTML"), timeout=UI)
            await pilot.press("enter")
            await wait_for(pilot, lambda: list(exports.glob("*.html")), timeout=30)
        files = list(exports.glob("*.html"))
        assert len(files) == 1 and files[0].name == "ldm-inspector-tiny-sd-profile.html"
        text = files[0].read_text()
        assert "<title>ldm-inspector · tiny-sd · profile</title>" in text

    asyncio.run(scenario())


def test_open_a_saved_run_from_the_palette(tmp_path):
    shutil.copy(SAVED_RUN, tmp_path / "saved-run.json")

    async def scenario():
        app = InspectorApp(autoload=False, export_dir=str(tmp_path))
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            assert app.result is None
            await pilot.press("ctrl+p")
            await type_text(pilot, "Open saved")
            await wait_for(pilot, lambda: palette_offers(app, "Open saved"), timeout=UI)
            await pilot.press("enter")
            await wait_for(pilot, lambda: app.result is not None, timeout=30)
            assert app.result.model.source == "tiny-sd" and app.result.command == "profile"
            assert app.loaded is None  # no model was loaded to show it

    asyncio.run(scenario())


def test_saved_run_given_as_the_target(tmp_path):
    async def scenario():
        app = InspectorApp(target=str(SAVED_RUN), export_dir=str(tmp_path))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None)
            assert app.result.command == "profile" and app.loaded is None

    asyncio.run(scenario())


def test_bindings_have_ids_and_can_be_remapped(monkeypatch):
    assert {b.id for b in InspectorApp.BINDINGS} >= {"profile", "cancel", "export_html", "toggle_depth"}
    assert parse_keymap("profile=f5, cancel=ctrl+x,broken") == {"profile": "f5", "cancel": "ctrl+x"}
    monkeypatch.setenv("LDM_INSPECTOR_KEYMAP", "toggle_depth=f6")

    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None)
            assert app.depth == 2
            await pilot.press("f6")
            await wait_for(pilot, lambda: app.depth == 99, timeout=UI)

    asyncio.run(scenario())


def test_export_dir_is_checked_like_csv(cli, tmp_path):
    (tmp_path / "file").write_text("")
    for folder, message in ((tmp_path / "no" / "exports", "does not exist"), (tmp_path / "file", "is a file")):
        result = cli("tui", "--export-dir", str(folder))
        assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1
    assert not (tmp_path / "no").exists()


def test_broken_saved_run_fails_in_one_line(cli, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    result = cli("tui", str(bad))
    assert result.code == 2 and "not a JSON run" in result.err and len(result.err.strip().splitlines()) == 1


def test_textual_only_in_the_tui_package():
    import subprocess
    import sys

    code = ("import sys, inspector.cli.commands, inspector.plugin.host, inspector.inspection, inspector.profiling, "
            "inspector.reports.html_report, inspector.reports.csv_report, inspector.reports.compare; "
            "from inspector.plugins import tokenizer, unet, vae, scheduler, text_encoder, generic; "
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


SNAPSHOTS = [
    ("overview", [], (80, 24)), ("overview", [], (120, 40)), ("overview", [], (200, 60)),
    ("layers", ["component:unet", "tab-layers"], (80, 24)), ("layers", ["component:unet", "tab-layers"], (120, 40)),
    ("layers", ["component:unet", "tab-layers"], (200, 60)),
    ("tokenizer", ["component:tokenizer", "tab-plugin-0"], (120, 40)),
    ("help", ["key:question_mark"], (80, 24)),
]


@pytest.mark.parametrize("name, steps, size", SNAPSHOTS, ids=[f"{n}-{w}x{h}" for n, _, (w, h) in SNAPSHOTS])
def test_snapshots(snap_compare, name, steps, size):
    async def run_before(pilot):
        app = pilot.app
        await wait_for(pilot, lambda: ready(app))
        for step in steps:
            if step.startswith("component:"):
                name = step.split(":", 1)[1]
                await app.show_component(name)
                await wait_for(pilot, lambda name=name: showing(app, name), timeout=UI)
            elif step == "key:question_mark":
                await pilot.press("question_mark")
                await wait_for(pilot, lambda: help_shown(app), timeout=UI)
            else:
                app.screen.query_one("#component-tabs", TabbedContent).active = step
                await wait_for(pilot, lambda step=step: pane_shown(app, step), timeout=UI)

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


def test_root_node_shows_the_pipeline_overview():
    async def scenario():
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: ready(app))
            await app.show_component("unet")
            await wait_for(pilot, lambda: showing(app, "unet"), timeout=UI)
            tree = app.screen.query_one(Tree)
            tree.select_node(tree.root)
            await wait_for(pilot, lambda: app.screen.query("#pipeline-overview"))
            assert app.screen.query("#overview-parts")
            from rich.console import Console

            from inspector.tui.widgets.component_detail import overview, parts_table

            console = Console(width=200, record=True, file=open(os.devnull, "w"))
            console.print(overview(app.result), parts_table(app.result))
            text = console.export_text()
            p = app.result.pipeline
            from inspector.results.units import human_ms, human_ratio

            assert human_ms(p.total) in text and f"{p.it_per_s:.2f} it/s" in text
            assert human_ratio(p.overhead_ratio, p.overhead_interval).split(" (")[0] in text
            assert "denoiser (all steps)" in text
            # the tree's time share is the component's share of the real run, not of isolated calls
            from inspector.tui.widgets.component_tree import shares

            unet_share = shares(app.result)["unet"][1]
            assert unet_share == pytest.approx(sum(s.denoiser for s in p.steps) / p.total)

    asyncio.run(scenario())


def test_help_lists_every_binding():
    async def scenario():
        app = make_app()
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: ready(app))
            from inspector.tui.app import HelpScreen

            for key in ("question_mark", "f1"):
                await pilot.press(key)
                await wait_for(pilot, lambda: help_shown(app), timeout=UI)
                table = app.screen.query_one("#help-table", DataTable)
                rows = [table.get_row_at(i) for i in range(table.row_count)]
                ids = {row[2] for row in rows}
                assert {b.id for b in InspectorApp.BINDINGS} <= ids and {"layers_sort", "layers_reverse"} <= ids
                keys = {row[2]: row[0] for row in rows}
                assert keys["help"] == "? / f1"  # as a person reads it, not "question_mark,f1"
                await pilot.press("escape")
                await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), timeout=UI)

    asyncio.run(scenario())


def test_open_tab_is_kept_when_the_component_changes():
    async def scenario():
        app = make_app()
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: ready(app))
            await app.show_component("vae")
            await wait_for(pilot, lambda: showing(app, "vae"), timeout=UI)
            app.screen.query_one("#component-tabs", TabbedContent).active = "tab-timing"
            await wait_for(pilot, lambda: pane_shown(app, "tab-timing"), timeout=UI)
            await app.show_component("unet")  # the new tabs open on Summary, then switch to Timing
            await wait_for(pilot, lambda: showing(app, "unet") and pane_shown(app, "tab-timing"), timeout=UI)
            app.screen.query_one("#component-tabs", TabbedContent).active = "tab-layers"
            await wait_for(pilot, lambda: pane_shown(app, "tab-layers"), timeout=UI)
            await app.show_component("scheduler")  # no layers: falls back to the first tab
            await wait_for(pilot, lambda: showing(app, "scheduler") and pane_shown(app, "tab-summary"), timeout=UI)
            await pilot.pause()  # a switch would come after the first refresh: give it that turn
            assert app.screen.query_one("#component-tabs", TabbedContent).active == "tab-summary"

    asyncio.run(scenario())


def test_one_progress_bar_for_the_whole_job_never_goes_back():
    from inspector.tui.app import OverallProgress

    progress = OverallProgress(["loading", "vae", "unet", "pipeline"], {"pipeline": 2.0})
    seen = [progress.update("loading", 1.0), progress.update("vae", 0.5), progress.update("vae", 1.0),
            progress.update("unet", 0.0), progress.update("vae", 0.2), progress.update("pipeline", 0.5),
            progress.update("pipeline", 1.0)]
    assert seen == sorted(seen) and seen[0] == pytest.approx(0.2) and seen[-1] == pytest.approx(1.0)
    assert seen[1] == pytest.approx(0.3) and seen[5] == pytest.approx(0.8)


def test_float16_is_not_offered_on_a_cpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    app = make_app()
    assert app.dtypes_offered() == ["float32", "bfloat16"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert "float16" in app.dtypes_offered()


def test_a_job_that_crashes_is_reported(tmp_path, monkeypatch):
    import inspector.profiling as profiling

    def boom(*args, **kwargs):
        raise RuntimeError("kaboom in a plugin-free place")

    monkeypatch.setattr(profiling, "run_profile", boom)

    async def scenario():
        app = make_app(export_dir=str(tmp_path))
        notified = []
        app.notify = lambda message, **kwargs: notified.append((message, kwargs.get("severity")))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_for(pilot, lambda: ready(app))
            await pilot.press("p")
            await wait_for(pilot, lambda: "kaboom" in str(app.screen.query_one("#status", Static).render()),
                           timeout=180)
            assert not app.busy
            assert any("kaboom" in message and severity == "error" for message, severity in notified)

    asyncio.run(scenario())


HOSTILE = "[/oops] [bold red]x[/] \x1b[31mred\x1b[0m\nline"


def test_markup_and_escape_sequences_in_a_saved_run_are_shown_not_obeyed(tmp_path):
    """Names, notes, layer names and view cells come from strangers: "[/oops]" would be read as
    markup (a MarkupError: the TUI dies) and an escape sequence would reach the terminal. Every
    component and every tab of such a run opens, and the text shows literally."""
    import json

    from inspector.reports import json_report

    data = json.loads(SAVED_RUN.read_text())
    for comp in data["components"]:
        comp["class_name"] = HOSTILE
        comp["notes"].append(HOSTILE)
        for layer in comp["layers"][:3]:
            layer["name"] = layer["name"] + HOSTILE
            layer["type"] = HOSTILE
        for view in comp["views"]:
            view["title"] = HOSTILE
            if view.get("tab"):
                view["tab"] = HOSTILE + view["tab"]
            if view.get("kind") == "table" and view["rows"]:
                view["rows"][0] = [HOSTILE] * len(view["rows"][0])
    data["components"][0]["name"] = HOSTILE
    data["model"]["source"] = HOSTILE
    data["notes"].append(HOSTILE)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(data))

    async def scenario():
        app = InspectorApp(run=json_report.load(path), autoload=False, entrypoints=False)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: ready(app), timeout=60)
            await app.show_overview()
            await wait_for(pilot, lambda: on_screen(app.screen.query_one("#pipeline-overview")), timeout=UI)
            for comp in app.result.components:
                await app.show_component(comp.name)
                await wait_for(pilot, lambda comp=comp: showing(app, comp.name), timeout=UI)
                tabs = app.screen.query_one("#component-tabs", TabbedContent)
                for pane in [p.id for p in tabs.query("TabPane")]:
                    tabs.active = pane
                    # on screen means laid out and painted: a markup error would have ended the app
                    await wait_for(pilot, lambda pane=pane: pane_shown(app, pane), timeout=UI)
            assert "[/oops]" in detail_title(app) or app.selected != data["components"][0]["name"]
            await app.show_component(data["components"][0]["name"])
            await wait_for(pilot, lambda: showing(app, data["components"][0]["name"]), timeout=UI)
            assert "[/oops]" in detail_title(app) and "\x1b" not in detail_title(app)

    asyncio.run(scenario())
