"""The example third-party plugin, installed by the README's test set-up, end to end through its
entry point: its metric shows in the terminal, JSON, CSV, HTML and TUI; uninstalled, it is gone."""
from __future__ import annotations

import asyncio
import json
from importlib import metadata

import pandas as pd
import pytest

from .optional import check_required, needs


def installed() -> bool:
    return any(ep.name == "weight_stats" for ep in metadata.entry_points(group="ldm_inspector"))


pytestmark = needs("EXAMPLE_PLUGIN", installed(), "the example plugin is not installed (see README set-up)")


def test_example_plugin_is_installed_where_required():
    check_required("EXAMPLE_PLUGIN", installed(), "pip install -e examples/ldm-inspector-weight-stats (see README)")


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_metric_in_terminal_json_csv_and_html(cli, tmp_path):
    result = cli("inspect", "--json", str(tmp_path / "run.json"), "--csv", str(tmp_path / "csv"),
                 "--html", str(tmp_path / "run.html"))
    assert result.code == 0, result.err
    assert "unet metrics: weight_abs_mean=" in result.out  # terminal
    data = json.loads((tmp_path / "run.json").read_text())
    unet = next(c for c in data["components"] if c["name"] == "unet")
    assert unet["metrics"]["weight_abs_mean"] > 0  # JSON
    plugin = next(p for p in data["plugins"] if p["name"] == "weight_stats")
    assert plugin["source"] == "entrypoint" and plugin["distribution"] == "ldm-inspector-weight-stats"
    csv = pd.read_csv(tmp_path / "csv" / "components.csv")
    assert csv.loc[csv["component"] == "unet", "metric_weight_abs_mean"].iloc[0] == pytest.approx(
        unet["metrics"]["weight_abs_mean"])  # CSV column
    assert (tmp_path / "csv" / "view_unet_weight_statistics.csv").exists()
    html = (tmp_path / "run.html").read_text()
    assert "<th class=\"num\">weight_abs_mean</th>" in html and "Weight statistics" in html  # HTML


def test_tab_in_the_tui(tmp_path):
    from inspector.tui.app import InspectorApp

    from .test_tui import SIZE, wait_for

    async def scenario():
        app = InspectorApp(target=None, export_dir=str(tmp_path), profile_options={"steps": 2})
        async with app.run_test(size=SIZE) as pilot:
            await wait_for(pilot, lambda: app.result is not None and app.screen.query("#component-tabs"))
            await app.show_component("unet")
            await pilot.pause(0.3)
            labels = [str(t.label) for t in app.screen.query("ContentTab")]
            assert "Weights" in labels

    asyncio.run(scenario())


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_meta_run_prints_why_there_is_no_value(cli):
    result = cli("inspect", "sd15", "--steps", "2", "--details")
    assert result.code == 0, result.err
    assert "unet metrics: weight_abs_mean=not measurable on meta" in result.out
    # without --details, metrics that could not be taken are not printed among the results
    result = cli("inspect", "sd15", "--steps", "2")
    assert result.code == 0 and "not measurable on meta" not in result.out


def test_plugins_command_lists_it(cli):
    result = cli("plugins", "--json")
    assert result.code == 0
    records = {r["name"]: r for r in json.loads(result.out)}
    assert records["weight_stats"]["hooks"] == ["augment_component", "component_tabs"]
    assert records["weight_stats"]["version"] == "0.1.0"


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_uninstalling_removes_it(cli, tmp_path, monkeypatch):
    """Uninstalled, as importlib.metadata sees it (its entry point gone), the plugin is gone from the
    plugin list and from the run. The installed environment itself is never changed."""
    from inspector.plugin.host import Host

    installed_entry_points = metadata.entry_points

    def without_weight_stats(group):
        return [ep for ep in installed_entry_points(group=group) if ep.name != "weight_stats"]

    monkeypatch.setattr("inspector.plugin.host.metadata.entry_points", without_weight_stats)
    assert "weight_stats" not in {r.name for r in Host.default().plugin_records()}
    out = tmp_path / "run.json"
    result = cli("inspect", "--steps", "2", "--json", str(out))
    assert result.code == 0, result.err
    data = json.loads(out.read_text())
    assert "weight_stats" not in {p["name"] for p in data["plugins"]}
    unet = next(c for c in data["components"] if c["name"] == "unet")
    assert unet["metrics"] == {}
    monkeypatch.undo()
    assert "weight_stats" in {r.name for r in Host.default().plugin_records()}  # installed all along
