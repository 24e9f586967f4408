"""The Textual TUI, driven with Pilot: components, layer table, workers, cancel, palette, snapshots."""
from __future__ import annotations

import asyncio
import shutil
import time

import pytest
from textual.widgets import DataTable, Input, Static, TabbedContent, Tree

from inspector.tui.app import InspectorApp, parse_keymap
from inspector.tui.widgets.layer_table import LayerTable

from .tui_app import SAVED_RUN, make_app

SIZE = (120, 40)
FAST = {"steps": 3, "repeats": 1, "warmup": 0, "e2e_repeats": 1}


async def wait_for(pilot, predicate, timeout: float = 90.0) -> None:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out waiting")
        await pilot.pause(0.1)
    await pilot.pause(0.2)


def detail_title(app) -> str:
    return str(app.screen.query_one("#detail").border_title)


def test_every_component_can_be_selected():
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None and app.screen.query("#component-tabs"))
            tree = app.screen.query_one(Tree)
            names = []
            for node in tree.root.children:
                tree.select_node(node)
                await pilot.pause(0.2)
                names.append(node.data)
                comp = next(c for c in app.result.components if c.name == node.data)
                assert detail_title(app) == f"{comp.name} · {comp.class_name}"
                tabs = app.screen.query_one("#component-tabs", TabbedContent)
                panes = [p.id for p in tabs.query("TabPane")]
                assert panes[0] == "tab-summary" and panes[-1] == "tab-plugins"
                assert ("tab-layers" in panes) == bool(comp.layers)
            assert names == [c.name for c in app.result.components]

    asyncio.run(scenario())


def test_plugin_tabs_come_from_the_hook():
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None and app.screen.query("#component-tabs"))
            titles = {}
            for name in ("tokenizer", "scheduler", "vae", "unet"):
                await app.show_component(name)
                await pilot.pause(0.2)
                tabs = app.screen.query_one("#component-tabs", TabbedContent)
                titles[name] = [str(t.label) for t in tabs.query("ContentTab")]
            assert "Tokenizer" in titles["tokenizer"] and "Scheduler" in titles["scheduler"]
            assert "VAE" in titles["vae"] and "Blocks" in titles["unet"]

    asyncio.run(scenario())


def test_layer_table_sorts_filters_and_folds():
    async def scenario():
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None and app.screen.query("#component-tabs"))
            await app.show_component("unet")
            await pilot.pause(0.2)
            app.screen.query_one("#component-tabs", TabbedContent).active = "tab-layers"
            await pilot.pause(0.3)
            table = app.screen.query_one(LayerTable)
            data = app.screen.query_one("#layer-data", DataTable)
            unet = app.result.component("unet")
            assert data.row_count == sum(1 for l in unet.layers if l.depth <= 2)
            await pilot.press("d")  # unfold every depth
            await pilot.pause(0.2)
            assert data.row_count == len(unet.layers)
            table.query_one("#layer-filter", Input).value = "attn1"
            await pilot.pause(0.3)
            expected = [l for l in unet.layers if "attn1" in l.name.lower()]
            assert data.row_count == len(expected) > 0
            x = 0  # where the FLOPs header is: the render widths of the columns before it
            for column in data.ordered_columns:
                if column.key.value == "flops":
                    break
                x += column.get_render_width(data)
            for _ in range(2):  # ascending, then descending
                data.scroll_to(x=x, animate=False)  # the shape columns are wide: bring the header on screen
                await pilot.pause(0.2)
                assert await pilot.click(data, offset=(x - round(data.scroll_x) + 1, 0))
                await pilot.pause(0.2)
            assert (table.sort_key, table.reverse) == ("flops", True)
            first = data.get_row_at(0)[0].strip()
            assert first == max(expected, key=lambda l: l.flops or 0).name
            table.sort_key, table.reverse = "parameters", True
            table.refill()
            assert data.get_row_at(0)[0].strip() == max(expected, key=lambda l: l.parameters).name
            await pilot.press("d")  # fold back to depth 2: no attn1 module that shallow
            await pilot.pause(0.2)
            assert data.row_count == 0

    asyncio.run(scenario())


def test_profile_in_a_worker_then_cancel_a_second_one(tmp_path):
    async def scenario():
        app = InspectorApp(target=None, export_dir=str(tmp_path), profile_options=FAST)
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None and not app.busy)
            assert app.result.command == "inspect"
            await pilot.press("p")
            await wait_for(pilot, lambda: app.result.command == "profile" and not app.busy, timeout=120)
            assert not app.result.interrupted and app.result.pipeline is not None
            assert app.result.component("unet").timing is not None
            assert "profiled" in str(app.screen.query_one("#status", Static).render())
            # a second profile, cancelled as soon as the worker reports progress
            first = app.result
            app.start_profile()
            await wait_for(pilot, lambda: app.busy and "·" in str(app.screen.query_one("#status", Static).render()))
            await pilot.press("x")
            await wait_for(pilot, lambda: not app.busy and app.result is not first, timeout=120)
            assert app.result.interrupted is True
            assert "cancelled" in str(app.screen.query_one("#status", Static).render())

    asyncio.run(scenario())


def test_export_html_from_the_command_palette(tmp_path):
    exports = tmp_path / "exports"  # missing: created by the export, as --csv creates its folder

    async def scenario():
        app = make_app(export_dir=str(exports))
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None)
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            for ch in "Export HTML":
                await pilot.press(ch if ch != " " else "space")
            await pilot.pause(0.5)
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
            await pilot.pause(0.3)
            assert app.result is None
            await pilot.press("ctrl+p")
            await pilot.pause(0.3)
            for ch in "Open saved":
                await pilot.press(ch if ch != " " else "space")
            await pilot.pause(0.5)
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
            await pilot.pause(0.1)
            assert app.depth == 99

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

    code = ("import sys, inspector.cli, inspector.host, inspector.inspection, inspector.profiling, "
            "inspector.reports.html_report, inspector.reports.csv_report, inspector.reports.compare; "
            "from inspector.plugins import tokenizer, unet, vae, scheduler, text_encoder, generic; "
            "print('textual' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


@pytest.mark.parametrize("name, steps", [
    ("summary", []),
    ("layers", ["tab-layers"]),
    ("tokenizer", ["component:tokenizer", "tab-plugin-0"]),
])
def test_snapshots(snap_compare, name, steps):
    async def run_before(pilot):
        app = pilot.app
        await wait_for(pilot, lambda: app.result is not None and app.screen.query("#component-tabs"))
        for step in steps:
            if step.startswith("component:"):
                await app.show_component(step.split(":", 1)[1])
            else:
                app.screen.query_one("#component-tabs", TabbedContent).active = step
            await pilot.pause(0.3)

    assert snap_compare(make_app(), terminal_size=SIZE, run_before=run_before)
