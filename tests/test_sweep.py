"""Sweeps: a grid of points, each in its own process, locally and through a local Ray instance.

The expensive sweeps run once per module (fixtures) and several tests read their folders.
"""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.errors import OptionError
from inspector.sweep.grid import Grid, expand, normalize, parse_size, point_key, split_list
from inspector.sweep.points import Outcome, failure_reason

from .browser import chromium_path, open_page

STATIC_GRID = ["--model", "tiny-sd,sd15", "--size", "64,128,256", "--batch", "1,2", "--dtype", "float32,bfloat16"]
PROFILE_GRID = ["--mode", "profile", "--model", "tiny-sd", "--size", "64,128", "--batch", "1,2"]
FAST_PROFILE = ["--", "--steps", "2", "--warmup", "0", "--repeats", "1", "--e2e-repeats", "1"]
#: columns that do not depend on timing: the executors must agree on every one of them
STABLE_COLUMNS = ["point", "status", "model", "size", "batch", "dtype", "component", "class_name", "kind",
                  "present", "parameters_total", "parameters_bytes", "flops"]


def sweep(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "inspector", "sweep", *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=Path(__file__).parent)


def num(text: str) -> float:
    return float(text) if text else 0.0


def read_table(folder: Path) -> list[dict[str, str]]:
    with open(folder / "table.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def stable(rows: list[dict[str, str]]) -> list[tuple]:
    return sorted(tuple(row.get(col) for col in STABLE_COLUMNS) for row in rows)


def statuses(folder: Path) -> dict[str, dict]:
    return {p.name: json.loads((p / "status.json").read_text()) for p in (folder / "points").iterdir()}


@pytest.fixture(scope="module")
def static_local(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "static-local"
    result = sweep("--out", str(out), *STATIC_GRID, "--jobs", "2", "--no-point-reports")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def static_ray(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "static-ray"
    result = sweep("--out", str(out), *STATIC_GRID, "--jobs", "2", "--no-point-reports", "--executor", "ray")
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def profile_local(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "profile-local"
    result = sweep("--out", str(out), *PROFILE_GRID, *FAST_PROFILE)
    assert result.returncode == 0, result.stderr
    return out


# --- the grid, without running anything ------------------------------------------------

def test_grid_expands_in_axis_order_with_unique_keys():
    grid = normalize(Grid(model=["tiny-sd", "sd15"], size=["64", "96x64"], batch=["1", "2"], dtype=["float32"]))
    points = expand(grid)
    assert len(points) == 8
    assert points[0].params == {"model": "tiny-sd", "size": "64", "batch": 1, "dtype": "float32"}
    assert points[1].params["batch"] == 2 and points[2].params["size"] == "96x64"
    assert len({p.key for p in points}) == 8
    assert points[2].argv[:6] == ["inspect", "tiny-sd", "--width", "96", "--height", "64"]


def test_key_depends_on_every_parameter_and_stays_a_plain_name():
    a = point_key({"model": "../../etc/passwd", "size": "64"})
    b = point_key({"model": "../../etc/passwd", "size": "72"})
    assert a != b and "/" not in a and not a.startswith(".")


@pytest.mark.parametrize("text, expected", [("512", (512, 512)), ("768x512", (768, 512)), (" 64 ", (64, 64))])
def test_sizes(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("grid, message", [
    (Grid(size=["100"]), "multiple of 8"),
    (Grid(size=["0"]), "multiple of 8"),
    (Grid(size=["big"]), "WIDTHxHEIGHT"),
    (Grid(batch=["0"]), "between 1 and"),
    (Grid(batch=["two"]), "not a whole number"),
    (Grid(dtype=["float32; rm -rf /"]), "not a name"),
    (Grid(model=["-rf"]), "not a model name"),
    (Grid(batch=["1", "1"]), "listed twice"),
    (Grid(mode="train"), "inspect or profile"),
    (Grid(batch=[str(i) for i in range(1, 101)], steps=[str(i) for i in range(1, 101)],
          size=[str(8 * i) for i in range(1, 3)]),
     "at most"),
])
def test_bad_grids_are_option_errors(grid, message):
    with pytest.raises(OptionError, match=message):
        normalize(grid)


def test_empty_list_items_are_refused():
    with pytest.raises(OptionError, match="empty item"):
        split_list("--size", "512,,768")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40), st.text(max_size=40))
def test_any_grid_text_is_accepted_or_an_option_error(size, batch, dtype):
    try:
        grid = normalize(Grid(size=split_list("--size", size), batch=split_list("--batch", batch),
                              dtype=split_list("--dtype", dtype)))
    except OptionError:
        return
    for point in expand(grid):
        assert all(isinstance(arg, str) and arg for arg in point.argv)


def test_failure_reasons_are_one_line():
    assert failure_reason(Outcome(0, "", 1.0), 10) is None
    assert failure_reason(Outcome(2, "warning\nerror: unknown model 'x'\n", 1.0), 10) == "exit 2: unknown model 'x'"
    assert failure_reason(Outcome(-9, "", 1.0), 10).startswith("killed by SIGKILL")
    assert failure_reason(Outcome(-9, "", 10.0, timed_out=True), 10) == "timed out after 10 s (killed)"


@pytest.mark.parametrize("args, message", [
    (["--size", "100"], "multiple of 8"),
    (["--dtype", "float64"], "float64"),
    (["--attention", "sdpa"], "--attention"),  # inspect points take no attention backend
    (["--model", "tiny-sd", "--", "--json", "x.json"], "chooses each point's output files"),
    (["--address", "127.0.0.1:1"], "--address goes with --executor ray"),
    (["--model", "tiny-sd,sd-21"], "did you mean sd21"),
])
def test_bad_sweeps_stop_before_any_point_runs(cli, tmp_path, args, message):
    out = tmp_path / "sweep"
    result = cli("sweep", "--out", str(out), *args)
    assert result.code == 2
    assert message in result.err and len(result.err.strip().splitlines()) == 1
    assert not (out / "points").exists() or not any((out / "points").iterdir())


def test_config_file_unknown_keys_and_bad_toml(cli, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("model = ['tiny-sd']\nsizes = [64]\n")
    result = cli("sweep", "--out", str(tmp_path / "s"), "--config", str(bad))
    assert result.code == 2 and "unknown key 'sizes'" in result.err
    bad.write_text("model = [")
    result = cli("sweep", "--out", str(tmp_path / "s"), "--config", str(bad))
    assert result.code == 2 and "not valid TOML" in result.err


# --- running sweeps -----------------------------------------------------------------------

def test_static_sweep_measures_all_24_points(static_local):
    rows = read_table(static_local)
    points = {r["point"] for r in rows}
    assert len(points) == 24 and all(r["status"] == "ok" for r in rows)
    unet = {(r["model"], r["size"], r["batch"], r["dtype"]): r for r in rows if r["component"] == "unet"}
    assert len(unet) == 24
    # FLOPs grow with the image and the batch; parameters do not
    for model in ("tiny-sd", "sd15"):
        small, large = unet[(model, "64", "1", "float32")], unet[(model, "128", "1", "float32")]
        assert num(large["flops"]) > num(small["flops"]) > 0
        assert large["parameters_total"] == small["parameters_total"]
        assert num(unet[(model, "64", "2", "float32")]["flops"]) > num(small["flops"])
    assert num(unet[("sd15", "64", "1", "float32")]["parameters_total"]) == 859_520_964
    manifest = json.loads((static_local / "manifest.json").read_text())
    assert manifest["execution"]["jobs"] == 2 and manifest["grid"]["mode"] == "inspect"
    assert manifest["versions"]["torch"] and len(manifest["points"]) == 24


def test_parquet_table_matches_the_csv(static_local):
    import pandas as pd

    df = pd.read_parquet(static_local / "table.parquet")
    rows = read_table(static_local)
    assert len(df) == len(rows)
    assert str(df["parameters_total"].dtype) == "Int64"  # counts stay whole numbers
    assert sorted(df["point"].unique()) == sorted({r["point"] for r in rows})


def test_ray_executor_gives_the_same_table(static_local, static_ray):
    assert stable(read_table(static_ray)) == stable(read_table(static_local))
    assert {s["executor"] for s in statuses(static_ray).values()} == {"ray"}


def test_rerun_skips_finished_points(cli, static_local):
    before = {k: s["finished"] for k, s in statuses(static_local).items()}
    result = cli("sweep", "--out", str(static_local), *STATIC_GRID, "--jobs", "2", "--no-point-reports")
    assert result.code == 0, result.err
    assert "24 kept from an earlier run" in " ".join(result.out.split())
    assert {k: s["finished"] for k, s in statuses(static_local).items()} == before


def test_versions_change_means_measure_again(static_local):
    from inspector.sweep.folder import SweepFolder
    from inspector.sweep.grid import Point, point_argv
    from inspector.sweep.run import pending_points

    folder = SweepFolder(static_local)
    key = next(iter(statuses(static_local)))
    status = folder.read_status(key)
    point = Point(params=status.params, key=key, argv=point_argv("inspect", status.params))
    todo, kept = pending_points(folder, [point], retry_failed=False)
    assert not todo and key in kept
    status.versions = {**status.versions, "torch": "0.0.1"}
    folder.write_status(status)
    todo, kept = pending_points(folder, [point], retry_failed=False)
    assert todo == [point] and not kept


def test_profile_sweep_locally_and_through_ray(profile_local, tmp_path):
    local = read_table(profile_local)
    assert len({r["point"] for r in local}) == 4 and all(r["status"] == "ok" for r in local)
    pipeline = [r for r in local if r["component"] == "(pipeline)"]
    assert len(pipeline) == 4 and all(float(r["time_ms_median"]) > 0 for r in pipeline)
    assert all(float(r["time_ms_median"]) > 0 for r in local if r["component"] == "unet")
    # axes the grid left out say what the points ran with, not blank
    assert {(r["dtype"], r["steps"]) for r in local} == {("float32", "2")}
    manifest = json.loads((profile_local / "manifest.json").read_text())
    assert manifest["execution"]["jobs"] == 1  # timed points one at a time
    out = tmp_path / "profile-ray"
    result = sweep("--out", str(out), *PROFILE_GRID, "--executor", "ray", *FAST_PROFILE)
    assert result.returncode == 0, result.stderr
    assert stable(read_table(out)) == stable(local)
    assert all((out / "points" / key / "report.html").is_file() for key in statuses(out))


def test_a_failing_point_leaves_the_others_and_retry_reruns_only_it(cli, tmp_path):
    out = tmp_path / "fail"
    # tiny-sd3 takes multiples of 16 only: 72 is impossible for it, fine for tiny-sd
    grid = ["--model", "tiny-sd,tiny-sd3", "--size", "72", "--no-point-reports"]
    result = sweep("--out", str(out), *grid)
    assert result.returncode == 3, result.stderr
    st_ = statuses(out)
    failed = [s for s in st_.values() if s["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["params"]["model"] == "tiny-sd3"
    assert failed[0]["exit_code"] == 2 and "multiple of 16" in failed[0]["reason"]
    ok = [s for s in st_.values() if s["status"] == "ok"]
    assert len(ok) == 1 and (out / "points" / ok[0]["key"] / "run.json").is_file()
    rows = read_table(out)
    assert any(r["status"] == "failed" and "multiple of 16" in r["reason"] for r in rows)
    # the summary shows each finished point's figures whole (through a pipe: nothing cut), "-" for the failure
    summary = [line for line in result.stdout.splitlines() if "tiny-sd" in line]
    params = sum(int(r["parameters_total"]) for r in rows if r["status"] == "ok" and r["parameters_total"]
                 and r["present"] == "True")
    assert any(f"{params:,}" in line and "MiB" in line for line in summary if "tiny-sd3" not in line), summary
    assert any("tiny-sd3" in line and " - " in line for line in summary), summary
    # again: the failure is kept, nothing runs; with --retry-failed only the failure runs
    result = cli("sweep", "--out", str(out), *grid)
    assert result.code == 3 and statuses(out)[ok[0]["key"]]["finished"] == ok[0]["finished"]
    assert statuses(out)[failed[0]["key"]]["finished"] == failed[0]["finished"]
    result = cli("sweep", "--out", str(out), *grid, "--retry-failed")
    assert result.code == 3
    after = statuses(out)
    assert after[ok[0]["key"]]["finished"] == ok[0]["finished"]
    assert after[failed[0]["key"]]["finished"] > failed[0]["finished"]


def test_a_killed_point_fails_alone(tmp_path):
    import psutil

    out = tmp_path / "kill"
    args = [sys.executable, "-m", "inspector", "sweep", "--out", str(out), "--model", "tiny-sd", "--size", "64,128",
            "--jobs", "2", "--no-point-reports"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parent, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline and proc.poll() is None:
        for child in psutil.Process(proc.pid).children(recursive=True):
            try:
                cmd = child.cmdline()
            except psutil.Error:
                continue
            if "--width" in cmd and cmd[cmd.index("--width") + 1] == "128":
                victim = child
                break
        time.sleep(0.05)
    assert victim is not None, "the 128 point never started"
    victim.send_signal(signal.SIGKILL)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 3, err
    by_size = {s["params"]["size"]: s for s in statuses(out).values()}
    assert by_size["64"]["status"] == "ok"
    assert by_size["128"]["status"] == "failed" and by_size["128"]["reason"].startswith("killed by SIGKILL")


@pytest.mark.subprocess  # the sweep, run in-process, runs each point in a child process
def test_a_point_past_its_time_limit_is_killed(cli, tmp_path):
    out = tmp_path / "slow"
    result = cli("sweep", "--out", str(out), "--model", "tiny-sd", "--size", "64", "--timeout", "1",
                 "--no-point-reports")
    assert result.code == 3
    (status,) = statuses(out).values()
    assert status["status"] == "failed" and status["reason"] == "timed out after 1 s (killed)"


@pytest.mark.skipif(chromium_path() is None and os.environ.get("LDM_INSPECTOR_REQUIRE_BROWSER") != "1",
                    reason="Chromium is not installed (apt-get install chromium)")
def test_sweep_report_in_the_browser(static_local, tmp_path):
    from inspector.reports import sweep_report

    report = tmp_path / "sweep.html"
    sweep_report.write(static_local, report)
    html = report.read_text()
    assert html.count("<tr") == 25  # a header and 24 points
    result = open_page(report, tmp_path / "sweep.png", tmp_path / "profile")
    assert not result.errors and result.requests == [report.resolve().as_uri()]
    assert result.charts >= 6 and result.charts_rendered == result.charts


def test_tui_opens_a_sweep_folder(static_local):
    import asyncio

    from textual.widgets import DataTable

    from inspector.tui.app import InspectorApp
    from inspector.tui.sweep_screen import SweepScreen

    async def scenario():
        app = InspectorApp(target=str(static_local), autoload=False, entrypoints=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.5)
            assert isinstance(app.screen, SweepScreen)
            table = app.screen.query_one(DataTable)
            assert table.row_count == 24
            first = app.screen.points[0]
            await pilot.press("enter")
            for _ in range(100):
                if app.result is not None:
                    break
                await pilot.pause(0.1)
            assert not isinstance(app.screen, SweepScreen)
            assert app.result.model.source == first.params["model"]
            assert app.result.inputs.width == int(first.params["size"])
            await pilot.press("b")
            await pilot.pause(0.3)
            assert isinstance(app.screen, SweepScreen)

    asyncio.run(scenario())


@pytest.mark.subprocess  # the sweep, run in-process, runs each point in a child process
def test_predicted_memory_and_the_fits_boundary(cli, tmp_path):
    out = tmp_path / "fits"
    result = cli("sweep", "--out", str(out), "--model", "tiny-sd", "--size", "64,128", "--no-point-reports",
                 "--", "--fits", "1GiB")
    assert result.code == 0, result.err
    plans = {r["size"]: r for r in read_table(out) if r["component"] == "(memory plan)"}
    assert set(plans) == {"64", "128"}
    assert num(plans["128"]["predicted_peak_bytes"]) > num(plans["64"]["predicted_peak_bytes"]) > 0
    assert {r["fits_verdict"] for r in plans.values()} == {"fits"} and plans["64"]["fits_target"]
    html = (out / "report.html").read_text()
    assert "usable on " in html and "<th>fits</th>" in html
