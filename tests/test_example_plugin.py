"""The example third-party plugin, installed by the README's test set-up, end to end through its
entry point: its metric shows in the terminal, JSON, CSV, HTML and TUI; uninstalled, it is gone."""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ldm-inspector-weight-stats"


def installed() -> bool:
    return any(ep.name == "weight_stats" for ep in metadata.entry_points(group="ldm_inspector"))


pytestmark = pytest.mark.skipif(not installed(), reason="the example plugin is not installed (see README set-up)")


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


def test_plugins_command_lists_it(cli):
    result = cli("plugins", "--json")
    assert result.code == 0
    records = {r["name"]: r for r in json.loads(result.out)}
    assert records["weight_stats"]["hooks"] == ["augment_component", "component_tabs"]
    assert records["weight_stats"]["version"] == "0.1.0"


def test_uninstalling_removes_it(tmp_path):
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    check = [sys.executable, "-c", "from inspector.host import Host; "
             "print('weight_stats' in {r.name for r in Host.default().plugin_records()})"]
    subprocess.run([*pip, "uninstall", "-y", "ldm-inspector-weight-stats"], check=True, capture_output=True)
    try:
        assert subprocess.run(check, capture_output=True, text=True, check=True).stdout.strip() == "False"
        out = tmp_path / "run.json"
        subprocess.run(["ldm-inspector", "inspect", "--json", str(out)], check=True, capture_output=True)
        unet = next(c for c in json.loads(out.read_text())["components"] if c["name"] == "unet")
        assert unet["metrics"] == {}
    finally:
        subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(EXAMPLE)], check=True,
                       capture_output=True)
    assert subprocess.run(check, capture_output=True, text=True, check=True).stdout.strip() == "True"
