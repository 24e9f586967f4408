"""The terminal front end through a pipe: whole cells, four formats, totals, one number format,
container rows, and a comparison that fits 100 columns."""
from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys

import pytest

from inspector.cli.terminal import render, render_comparison
from inspector.reports import json_report
from inspector.reports.compare import compare
from inspector.results.records import PipelineRun, ProfileSettings, StepRecord, TimingStats


@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    """`ldm-inspector inspect --layers` as a user pipes it: a real process, stdout not a terminal."""
    out = tmp_path_factory.mktemp("piped") / "run.json"
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    proc = subprocess.run([sys.executable, "-m", "inspector", "inspect", "--layers", "--depth", "2",
                           "--json", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(out.read_text()), out


def test_piped_tables_keep_whole_cells(piped):
    text, data, _ = piped
    for comp in data["components"]:
        # each row holds its component and its class whole, on one line (no Autoencod/erKL)
        assert any(comp["name"] in line and comp["class_name"] in line for line in text.splitlines()), comp["name"]
    assert "\x1b[" not in text  # no colour codes in a pipe
    assert "loading" not in text  # the spinner went to stderr


def test_totals_row_and_one_number_format(piped):
    text, data, _ = piped
    from inspector.results.records import RunResult
    from inspector.results.units import human_flops

    total = sum(c["parameters"]["total"] for c in data["components"] if c["parameters"])
    # the total counts one generation: each text encoder per call, the UNet per step, the VAE's decode
    run = RunResult.from_dict(data)
    scheduler = next(c for c in data["components"] if c["kind"] == "scheduler")
    by = {c["name"]: c for c in data["components"]}
    flops = (by["text_encoder"]["flops"] * by["text_encoder"]["details"]["calls_per_run"]
             + by["unet"]["flops"] * len(scheduler["details"]["timesteps"]) + by["vae"]["details"]["decode_flops"])
    assert run.flops_total() == flops
    # the components' total row: the last "total" row (the per-layer tables come first)
    total_line = [line for line in text.splitlines() if re.search(r"^\W*total\b", line)][-1]
    assert f"{total:,}" in total_line and human_flops(flops) in total_line
    unet = next(c for c in data["components"] if c["name"] == "unet")
    assert f"{unet['parameters']['total']:,}" in text
    # no bare integers of 4+ digits outside shapes: counts carry separators, FLOPs SI units
    outside_shapes = re.sub(r"\([^)]*\)", "", text)
    assert re.findall(r"(?<![\d,.])\d{4,}(?![\d,.])", outside_shapes) == []


def test_container_rows_sum_their_children(piped):
    text, data, _ = piped
    unet = next(c for c in data["components"] if c["name"] == "unet")
    layers = {layer["name"]: layer for layer in unet["layers"]}
    container = layers["down_blocks"]
    children = [layer for n, layer in layers.items() if re.fullmatch(r"down_blocks\.\d+", n)]
    assert container["calls"] == 0 and children
    assert container["flops"] == sum(c["flops"] for c in children) > 0
    from inspector.results.units import human_flops

    unet_section = text.split("unet layers", 1)[1]
    row = next(line for line in unet_section.splitlines() if "down_blocks" in line and "ModuleList" in line)
    assert human_flops(container["flops"]) in row and "not called" not in row


@pytest.mark.parametrize("fmt", ["plain", "markdown", "json"])
def test_formats(piped, fmt):
    _, data, path = piped
    run = json_report.load(path)
    out = io.StringIO()
    render(run, out, layers=True, depth=1, fmt=fmt)
    text = out.getvalue()
    if fmt == "json":
        assert json.loads(text) == data
        return
    lines = text.splitlines()
    if fmt == "plain":
        header = next(i for i, line in enumerate(lines) if line.startswith("component "))
        assert set(lines[header + 1]) <= {"-", " "}  # a dashed rule, no box drawing anywhere
        assert not re.search("[│┃━─┏┗]", text)
        row = next(line for line in lines if line.startswith("unet "))
        assert "UNet2DConditionModel" in row
    else:
        assert any(line.startswith("|---|") for line in lines)
        row = next(line for line in lines if line.startswith("| unet |"))
        assert row.count("|") == lines[lines.index(row) - 1].count("|") or row.endswith("|")
        assert "**total**" in text


def _with_pipeline(run, total, unstable=()):
    steps = [StepRecord(index=i, timestep=999.0 - i, denoiser=total * 0.2, scheduler=1.0, other=0.5, total=total * 0.22)
             for i in range(4)]
    run.pipeline = PipelineRun(steps=steps, num_steps=4, text_encoding=3.0, prepare=1.0, vae_decode=20.0,
                               total=total, bare_total=total * 0.99, overhead_ratio=1.01, it_per_s=9.0,
                               overhead_interval=[0.98, 1.04], unstable=list(unstable), repeats=3,
                               totals=[total] * 3, bare_totals=[total * 0.99] * 3)
    run.profile = ProfileSettings(device="cpu", device_name="cpu", dtype="float32", warmup=1, repeats=5, threads=2)
    run.command = "profile"
    for comp in run.components:
        if comp.parameters:
            comp.timing = TimingStats(median=5.0, iqr=2.0, min=4.0, max=9.0, count=5, rel_spread=0.4,
                                      unstable=comp.name == "unet")
    return run


@pytest.mark.parametrize("fmt", ["table", "plain"])
def test_compare_fits_100_columns_with_components_blocks_and_end_to_end(piped, fmt, monkeypatch):
    _, _, path = piped
    a = _with_pipeline(json_report.load(path), 400.0)
    b = _with_pipeline(json_report.load(path), 300.0, unstable=("total",))
    monkeypatch.setenv("COLUMNS", "100")
    out = io.StringIO()
    render_comparison(compare(a, b, "float32-run-with-a-long-name.json", "bfloat16.json"), out, fmt=fmt)
    text = out.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 100
    for section in ("per component", "per block", "end to end", "down_blocks.0", "denoiser (all steps)"):
        assert section in text, section
    total_row = next(line for line in text.splitlines() if re.match(r"^[│┃ ]*total\b", line))
    assert "0.750" in total_row and "!" in total_row  # B/A of the totals, flagged: B's total is unstable
    unet_time = [line for line in text.splitlines() if " time " in line]
    assert any("!" in line for line in unet_time)


SAVED_PROFILE = os.path.join(os.path.dirname(__file__), "data", "tiny-profile.json")
_BOX = "│┃━─┏┓┗┛┡┩╇┳┻┼├┤└┘┌┐╋┯┷╈╉╊┠┨┢┪┣┫┬┴═║╔╗╚╝"


def _tokens(text: str) -> set[str]:
    """Words as a reader sees them: split on spaces and box drawing, trailing punctuation dropped."""
    return {t.rstrip(",;:") for t in re.split(f"[\\s{_BOX}]+", text)} - {""}


def _json_ints(value, found=None):
    found = set() if found is None else found
    if isinstance(value, bool):
        return found
    if isinstance(value, int):
        found.add(value)
    elif isinstance(value, float) and value.is_integer():
        found.add(int(value))
    elif isinstance(value, dict):
        for v in value.values():
            _json_ints(v, found)
    elif isinstance(value, list):
        for v in value:
            _json_ints(v, found)
    return found


def _table(run, monkeypatch, columns, **kwargs) -> str:
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    out = io.StringIO()
    render(run, out, fmt="table", **kwargs)
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("source", ["inspect", "profile"])
def test_a_narrow_terminal_never_splits_a_number_or_a_word(piped, source, width, monkeypatch):
    """At a set width every line fits, and every word and number is one a wide render has whole:
    a table too wide leaves columns out (said in a footnote) or stacks its rows, never `1,427,0`/`12`."""
    path = piped[2] if source == "inspect" else SAVED_PROFILE
    run = json_report.load(path)
    kwargs = dict(layers=True, depth=2, details=True)
    wide = _table(run, monkeypatch, None, **kwargs)
    narrow = _table(run, monkeypatch, width, **kwargs)
    assert max(len(line) for line in narrow.splitlines()) <= width
    from inspector.cli.terminal import LEFT_OUT

    allowed = _tokens(wide) | _tokens(LEFT_OUT.format(width=width, names=""))
    assert sorted(_tokens(narrow) - allowed) == []
    data = json.loads(open(path).read())
    ints = _json_ints(data) | {sum(c["parameters"]["total"] for c in data["components"] if c["parameters"])}
    for count in re.findall(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?![\d.,])", narrow):
        assert int(count.replace(",", "")) in ints, count
    # the most important columns survive: parameters always, time in a profile
    assert "parameters" in narrow and ("time" in narrow if source == "profile" else True)


@pytest.mark.parametrize("columns", [None, 80])
def test_no_printed_line_ends_in_spaces(piped, columns, monkeypatch):
    """rich pads titles and text to the table or console width; a pipe or a copy gets none of it."""
    run = json_report.load(SAVED_PROFILE)
    text = _table(run, monkeypatch, columns, layers=True, depth=2, details=True)
    padded = [line for line in text.splitlines() if line != line.rstrip()]
    assert padded == []
    lines = text.splitlines()
    # the details come first; the headline, which names the model, is among the last lines
    assert any(line.startswith(run.model.source + ":") for line in lines[-6:]), lines[-6:]


@pytest.mark.parametrize("partial", ["interrupted", "failed"])
def test_compare_says_which_run_is_partial_and_why_a_table_is_missing(piped, partial):
    _, _, path = piped
    a = _with_pipeline(json_report.load(path), 400.0)
    b = _with_pipeline(json_report.load(path), 300.0)
    if partial == "interrupted":
        b.interrupted, b.pipeline = True, None
    else:
        b.pipeline.error = "RuntimeError: out of memory"
    out = io.StringIO()
    render_comparison(compare(a, b, "a.json", "b.json"), out, fmt="plain")
    lines = out.getvalue().splitlines()
    warned = [line for line in lines if line.startswith("warning: b.json")]
    assert len(warned) == 1 and not any(line.startswith("warning: a.json") for line in lines)
    assert ("interrupted" in warned[0]) if partial == "interrupted" else ("out of memory" in warned[0])
    missing = [line for line in lines if line.startswith("no end-to-end table")]
    assert len(missing) == 1 and "b.json" in missing[0]
    assert "per component" in lines and "end to end" not in lines


def test_markdown_text_lines_stay_apart_when_rendered(piped):
    """Each `metrics:` or `note:` line is its own paragraph in a Markdown renderer, not one run-on."""
    from markdown_it import MarkdownIt

    run = json_report.load(SAVED_PROFILE)
    out = io.StringIO()
    render(run, out, fmt="markdown")
    html = MarkdownIt().render(out.getvalue())
    paragraphs = re.findall(r"<p>(.*?)</p>", html, flags=re.S)
    metrics = [c.name for c in run.components if c.metrics]
    assert len(metrics) >= 2
    for name in metrics:
        assert sum(p.startswith(f"{name} metrics:") and p.count(" metrics:") == 1 for p in paragraphs) == 1, name
    assert all("\n" not in p for p in paragraphs if " metrics:" in p or p.startswith("note:"))


@pytest.mark.parametrize("fmt", ["table", "plain", "markdown"])
def test_markup_and_escape_sequences_from_a_run_are_shown_not_obeyed(cli, tmp_path, fmt):
    """A saved run's names and notes are a stranger's text: "[/oops]" crashed the table renderer
    (rich read it as markup: exit 1), and an escape sequence or a bidirectional override reached the
    terminal. They print literally, control characters as escapes, one row per component."""
    import json
    from pathlib import Path

    hostile = "[/oops] \x1b[31mred\x1b[0m\nnext \u202eevil"
    data = json.loads((Path(__file__).parent / "data" / "tiny-profile.json").read_text())
    data["components"][0]["name"] = hostile
    data["notes"].append(hostile)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(data))
    result = cli("report", str(path), "--format", fmt)
    assert result.code == 0, result.err
    assert "\x1b" not in result.out and "\u202e" not in result.out
    shown = result.out.replace("\\\\", "\\") if fmt == "markdown" else result.out  # Markdown escapes backslashes
    assert "[/oops] \\x1b[31mred\\x1b[0m\\nnext \\u202eevil" in shown


def test_presets_through_a_pipe_keep_whole_rows(cli, monkeypatch):
    """Into a pipe a table keeps its natural width, as the README says: no description cut into lines."""
    monkeypatch.delenv("COLUMNS", raising=False)
    result = cli("presets")
    assert result.code == 0
    row = next(line for line in result.out.splitlines() if "tiny-sd" in line)
    assert "seeded random weights; runs on a CPU in seconds" in row
