"""Flags on every time figure they concern: a busy machine marks every time of the run, and an
isolated time far from the same component's in-pipeline time is flagged, in every front end."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest

from inspector.measure.flags import BUSY, disagreement, flag_run
from inspector.reports import json_report

pytestmark = pytest.mark.unit

SAVED = Path(__file__).parent / "data" / "tiny-profile.json"  # taken on a busy machine


@pytest.fixture()
def busy_run():
    return json_report.load(SAVED)


@pytest.fixture()
def quiet_run(busy_run):
    run = copy.deepcopy(busy_run)
    run.machine.busy, run.machine.reasons = False, []
    for comp in run.components:
        for timing in [comp.timing] + [m.timing for m in comp.measurements]:
            if timing is not None:
                timing.unstable, timing.flags = False, []
    run.pipeline.unstable, run.pipeline.unstable_reasons = [], []
    return run


def test_a_busy_machine_flags_every_time_figure(busy_run):
    assert not any(c.timing.flags for c in busy_run.components if c.timing)  # as saved: the run was flagged, no row
    flag_run(busy_run)
    timings = [t for c in busy_run.components for t in [c.timing] + [m.timing for m in c.measurements] if t]
    assert len(timings) >= 8
    assert all(t.unstable and BUSY in t.flags for t in timings)
    assert {"total", "bare_total", "steps"} <= set(busy_run.pipeline.unstable)
    assert any(r.startswith("every time of this run: machine busy") for r in busy_run.pipeline.unstable_reasons)
    flag_run(busy_run)  # idempotent
    assert all(t.flags.count(BUSY) == 1 for t in timings)


def test_an_isolated_time_far_from_its_in_pipeline_time_is_flagged(quiet_run):
    flag_run(quiet_run)
    vae = quiet_run.component("vae")  # decode: 6,849 ms isolated vs 2,521 ms in the pipeline's call
    assert vae.timing.unstable and vae.timing.flags == [disagreement(6848.886606000178, 2521.151182000267)]
    assert "(2.7x)" in vae.timing.flags[0]
    text = quiet_run.component("text_encoder")  # 2 x 405 ms vs 633 ms: within 2x
    assert not text.timing.unstable and text.timing.flags == []
    unet = quiet_run.component("unet")
    in_pipeline = quiet_run.pipeline.denoiser_total() / 5
    assert bool(unet.timing.flags) == (not 0.5 <= 4386.653588000172 / in_pipeline <= 2.0)
    assert quiet_run.pipeline.unstable == []


@pytest.mark.parametrize("isolated, in_pipeline, flagged", [
    (736.0, 1.0, True), (1860.0, 16.0, True), (10.0, 10.0, False), (19.9, 10.0, False), (20.1, 10.0, True),
    (4.9, 10.0, True), (5.1, 10.0, False), (0.0, 10.0, False),
])
def test_disagreement_is_beyond_2x_either_way(isolated, in_pipeline, flagged):
    assert (disagreement(isolated, in_pipeline) is not None) == flagged


def test_every_front_end_shows_the_flags(busy_run, tmp_path):
    from inspector.cli.terminal import render
    from inspector.reports import csv_report, html_report

    flag_run(busy_run)
    csv = csv_report.render_all(busy_run)["components.csv"].splitlines()
    header = csv[0].split(",")
    vae = next(line for line in csv if line.startswith("vae,"))
    assert "time_flags" in header and "machine busy" in vae and "isolated" in vae
    html = html_report.render(busy_run)
    assert 'title="machine busy; isolated' in html
    import io

    out = io.StringIO()
    render(busy_run, out, fmt="plain")
    assert "! every time above: machine busy" in out.getvalue() and "! vae: isolated" in out.getvalue()
    json_report.write(busy_run, tmp_path / "run.json")
    back = json_report.load(tmp_path / "run.json")
    assert back.component("vae").timing.flags == busy_run.component("vae").timing.flags


def test_the_sweep_chart_marks_flagged_points():
    from inspector.reports.sweep_report import charts

    rows = [{"status": "ok", "component": "unet", "size": s, "time_ms_median": t, "time_unstable": u,
             "time_flags": f} for s, t, u, f in (("64", 10.0, False, ""), ("128", 30.0, True, "machine busy"))]
    spec = next(c for c in charts(rows, ["size"]) if c["id"] == "size-time_ms_median-unet")
    assert spec["flagged"] == {"unet": [None, "machine busy"]}
