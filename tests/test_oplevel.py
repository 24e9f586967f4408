"""profile: top operators per timed call, and the end-to-end trace with a span per step."""
from __future__ import annotations

import json

import pytest

from inspector.plugin.context import ProfileOptions
from inspector.profiling import run_profile
from inspector.sources.loading import SourceSpec

STEPS = 3


@pytest.fixture(scope="module")
def traced(host, tmp_path_factory):
    path = tmp_path_factory.mktemp("trace") / "trace.json"
    options = ProfileOptions(steps=STEPS, warmup=0, repeats=2, e2e_repeats=1, trace=str(path))
    return run_profile(host, SourceSpec(model="tiny-sd"), options), path


def spans(path) -> list[dict]:
    data = json.loads(path.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in events if e.get("ph") == "X"]


def test_trace_has_a_span_per_step_and_component(traced):
    run, path = traced
    names = [e["name"] for e in spans(path)]
    calls = len([s for s in run.pipeline.steps])
    assert calls >= STEPS
    for i in range(calls):
        assert f"denoising step {i}" in names
    assert f"denoising step {calls}" not in names
    assert names.count("unet") == calls
    assert names.count("scheduler.step") == calls
    assert "vae.decode" in names and "text_encoder" in names
    assert any("trace of one end-to-end call" in note for note in run.notes)


def test_steps_contain_their_denoiser_call(traced):
    _, path = traced
    events = spans(path)
    steps = sorted((e for e in events if e["name"].startswith("denoising step")), key=lambda e: e["ts"])
    unets = sorted((e for e in events if e["name"] == "unet"), key=lambda e: e["ts"])
    for step, unet in zip(steps, unets):
        assert step["ts"] <= unet["ts"] and unet["ts"] + unet["dur"] <= step["ts"] + step["dur"] + 1


def test_top_operators_per_measurement(traced):
    run, _ = traced
    unet = run.component("unet")
    table = next(v for v in unet.views if v.title == "Top operators: forward")
    assert table.columns == ["operator", "self_cpu_ms", "calls", "share", "flops"]
    assert 0 < len(table.rows) <= 12
    assert all(row[0].startswith("aten::") and row[2] >= 1 for row in table.rows)
    shares = [row[3] for row in table.rows]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 1.0001
    assert any(row[4] for row in table.rows), "convolutions and matmuls carry FLOPs"
    # the profiler's extra call is not a timed one
    forward = next(m for m in unet.measurements if m.name == "forward")
    assert forward.timing.count == 2


def test_operator_tables_reach_every_front_end(traced, host, tmp_path):
    from inspector.reports import csv_report, html_report

    run, _ = traced
    written = {p.name for p in csv_report.write(run, tmp_path / "csv")}
    assert "view_unet_top_operators_forward.csv" in written
    assert "Top operators: forward" in html_report.render(run)
    tabs = [t for group in host.pm.hook.component_tabs(component=run.component("unet"), run=run) if group
            for t in group]
    assert "Operators" in [t.title for t in tabs]


def test_trace_option_checks_its_folder(cli, tmp_path):
    (tmp_path / "file").write_text("")  # a missing folder is made; one that is a file is refused
    result = cli("profile", "--trace", str(tmp_path / "file" / "t.json"))
    assert result.code == 2 and "--trace" in result.err


def test_the_profiler_backend_writes_nothing_to_the_terminal():
    """kineto prints "USDT: ... profiler_start" to file descriptor 2 on every profiler start and
    stop, over the TUI and into the one-line error contract; a real process shows none of it,
    unless LDM_INSPECTOR_DEBUG=1 asks for the libraries' chatter."""
    import os
    import subprocess
    import sys

    code = ("import torch\n"
            "from inspector.measure.operators import top_operators\n"
            "top_operators(lambda: torch.ones(3) + 1, 'cpu', 'x')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KINETO_LOG_LEVEL", "LDM_INSPECTOR_DEBUG")}
    quiet = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr[-500:]
    loud = subprocess.run([sys.executable, "-c", code], env={**env, "LDM_INSPECTOR_DEBUG": "1"},
                          capture_output=True, text=True, timeout=300)
    assert loud.returncode == 0 and "profiler_start" in loud.stderr  # the knob is real: kineto does print
