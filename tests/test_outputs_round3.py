"""What the tool writes, at real sizes (issue 22): inputs are never outputs, nothing is written
outside its target, missing parent folders are made, the files are written whatever becomes of
stdout, the CSV folder is replaced as a whole, and the terminal gets no raw control characters.

Each test here failed on the code before this round (see the report of the ``outputs`` branch).
"""
from __future__ import annotations

import base64
import builtins
import errno
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from inspector import hookimpl
from inspector.sources.preset_files import materialize_preset

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "inspector" / "presets" / "tiny-sd"
SAVED_RUN = Path(__file__).parent / "data" / "tiny-profile.json"
PNG = base64.b64decode(  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
META = ("--weights", "meta")


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture
def never_works(monkeypatch):
    """Every check comes before any work: loading a pipeline or running a sweep point fails the test."""
    import inspector.inspection
    import inspector.profiling
    import inspector.sources.loading as loading
    import inspector.sweep.run

    def boom(*args, **kwargs):
        raise AssertionError("work started before the outputs were checked")

    for target in (loading, inspector.inspection, inspector.profiling):
        monkeypatch.setattr(target, "load", boom)
    monkeypatch.setattr(inspector.sweep.run, "run_process", boom)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- 1. inputs are never outputs ---------------------------------------------------------------

def test_an_input_named_as_an_output_is_refused_before_any_work(cli, tmp_path, never_works):
    image = tmp_path / "in.png"
    image.write_bytes(PNG)
    run_a, run_b = tmp_path / "a.json", tmp_path / "b.json"
    run_a.write_bytes(SAVED_RUN.read_bytes())
    run_b.write_bytes(SAVED_RUN.read_bytes())
    (tmp_path / "d").mkdir()
    os.symlink(run_a, tmp_path / "link.json")
    os.link(run_b, tmp_path / "hard.json")
    model = tmp_path / "model"
    materialize_preset(TINY, model)
    before = snapshot(tmp_path)
    cases = [
        ("profile", "--image", str(image), "--save-image", str(image)),
        ("profile", "--image", str(image), "--json", str(tmp_path / "in.json")),  # the default image: in.png
        ("compare", str(run_a), str(run_b), "--html", str(run_a)),
        ("compare", str(run_a), str(run_b), "--html", str(tmp_path / "hard.json")),  # a hard link of b.json
        ("report", str(run_a), "--html", str(run_a)),
        ("report", str(run_a), "--json", str(tmp_path / "link.json")),  # a symlink to the input
        ("report", str(run_a), "--html", str(tmp_path / "d" / ".." / "a.json")),
        ("inspect", str(model), *META, "--json", str(model / "model_index.json")),
        ("inspect", str(model), *META, "--html", str(model / "unet" / "config.json")),
    ]
    for args in cases:
        result = cli(*args)
        assert result.code == 2 and one_line(result.err), (args, result.err)
        assert "input" in result.err and "never overwritten" in result.err, (args, result.err)
    assert snapshot(tmp_path) == before


def test_outputs_that_name_one_path_are_refused_before_any_work(cli, tmp_path, never_works):
    fifo_folder = tmp_path / "tables"
    fifo_folder.mkdir()
    os.mkfifo(fifo_folder / "pipe.csv")
    cases = [
        (["--json", str(tmp_path / "out"), "--csv", str(tmp_path / "out")], "--csv"),
        (["--csv", str(tmp_path / "out"), "--html", str(tmp_path / "out")], "--csv"),
        (["--json", str(tmp_path / "x.json"), "--html", str(tmp_path / "d" / ".." / "x.json")], "same file"),
        (["--csv", str(fifo_folder)], "FIFO"),
    ]
    for args, message in cases:
        result = cli("inspect", *META, *args)
        assert result.code == 2 and one_line(result.err) and message in result.err, (args, result.err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables"]
    assert [p.name for p in fifo_folder.iterdir()] == ["pipe.csv"]


# --- 2. nothing written outside the target ------------------------------------------------------

def sweep_key(out: Path) -> str:
    from inspector.sweep.grid import Grid, expand, normalize

    return expand(normalize(Grid(model=["tiny-sd"], args=list(META))))[0].key


def test_a_sweep_never_writes_through_a_point_folder_that_is_a_symlink(cli, tmp_path, never_works):
    out, elsewhere = tmp_path / "sweep", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "run.json").write_text("mine")
    (elsewhere / "report.html").write_text("mine too")
    (out / "points").mkdir(parents=True)
    os.symlink(elsewhere, out / "points" / sweep_key(out))
    result = cli("sweep", "--out", str(out), "--model", "tiny-sd", "--", *META)
    assert result.code == 2 and one_line(result.err) and "symlink" in result.err, result.err
    assert snapshot(elsewhere) == {"report.html": b"mine too", "run.json": b"mine"}


def test_the_sweep_report_is_never_one_of_the_sweeps_own_files(cli, tmp_path, never_works):
    out = tmp_path / "sweep"
    out.mkdir()
    manifest = out / "manifest.json"
    manifest.write_text('{"mine": 1}')
    for html in (manifest, out / "table.csv", out / "points" / "x" / "report.html"):
        result = cli("sweep", "--out", str(out), "--model", "tiny-sd", "--html", str(html), "--", *META)
        assert result.code == 2 and one_line(result.err) and "sweep's own" in result.err, (html, result.err)
    assert manifest.read_text() == '{"mine": 1}' and sorted(p.name for p in out.iterdir()) == ["manifest.json"]


def saved_run_with_image(folder: Path) -> Path:
    data = json.loads(SAVED_RUN.read_text())
    data["pipeline"]["image"] = "run.png"
    run = folder / "run.json"
    run.write_text(json.dumps(data))
    return run


@pytest.mark.parametrize("kind", ["symlink", "not a png", "regular png"])
def test_report_embeds_only_a_regular_png_beside_the_run(cli, tmp_path, kind):
    run = saved_run_with_image(tmp_path)
    secret = tmp_path / "private" / "holiday.png"
    secret.parent.mkdir()
    secret.write_bytes(PNG)
    if kind == "symlink":
        os.symlink(secret, tmp_path / "run.png")
    elif kind == "not a png":
        (tmp_path / "run.png").write_bytes(b"GIF89a" + PNG)
    else:
        (tmp_path / "run.png").write_bytes(PNG)
    result = cli("report", str(run), "--html", str(tmp_path / "r.html"))
    assert result.code == 0, result.err
    embedded = base64.b64encode(PNG).decode() in (tmp_path / "r.html").read_text()
    assert embedded == (kind == "regular png")


# --- 3. missing parent folders are made --------------------------------------------------------

@pytest.mark.tiny  # the CLI, in-process, builds tiny-sd on meta
def test_missing_parent_folders_of_outputs_are_created(cli, tmp_path):
    json_path, csv_dir = tmp_path / "a" / "b" / "run.json", tmp_path / "x" / "y" / "tables"
    result = cli("inspect", *META, "--json", str(json_path), "--csv", str(csv_dir))
    assert result.code == 0, result.err
    assert json.loads(json_path.read_text())["model"]["source"] == "tiny-sd"
    assert (csv_dir / "components.csv").is_file()


def test_a_parent_that_is_not_a_folder_is_still_refused(cli, tmp_path, never_works):
    (tmp_path / "file").write_text("")
    os.mkfifo(tmp_path / "fifo")
    for args in (["--json", str(tmp_path / "file" / "x" / "run.json")], ["--csv", str(tmp_path / "fifo" / "t")]):
        result = cli("inspect", *META, *args)
        assert result.code == 2 and one_line(result.err) and "not a folder" in result.err, (args, result.err)
    result = cli("sweep", "--out", str(tmp_path / "file" / "sweep"), "--model", "tiny-sd", "--", *META)
    assert result.code == 2 and one_line(result.err), result.err


def test_a_sweep_folder_is_made_with_its_missing_parents(tmp_path):
    from inspector.sweep.folder import SweepFolder

    folder = SweepFolder(tmp_path / "sweeps" / "tiny")  # the README's example, on a fresh clone
    folder.prepare()
    assert folder.points_dir.is_dir()


def test_readme_install_lines_do_not_need_sudo():
    """Containers run as root without sudo: a command line that starts with sudo fails there."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", readme, re.S)
    commands = [line.split("#", 1)[0] for block in blocks for line in block.splitlines()]
    assert not [c for c in commands if re.search(r"(^|&&|;)\s*sudo\s", c)]


# --- 4. the files are written whatever becomes of stdout ----------------------------------------

@pytest.mark.tiny
def test_an_unreadable_columns_is_ignored(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "abc")
    result = cli("inspect", *META, "--json", str(tmp_path / "run.json"))
    assert result.code == 0, result.err
    assert (tmp_path / "run.json").is_file() and "UNet2DConditionModel" in result.out


@pytest.mark.tiny
def test_an_ascii_terminal_gets_replacement_characters_and_json_escapes(cli, tmp_path, monkeypatch):
    for fmt in ("table", "json"):
        raw = io.BytesIO()
        terminal = io.TextIOWrapper(raw, encoding="ascii", errors="strict", write_through=True)
        monkeypatch.setattr(sys, "stdout", terminal)
        out = tmp_path / f"{fmt}.json"
        result = cli("inspect", *META, "--prompt", "un café", "--json", str(out), "--format", fmt)
        monkeypatch.undo()
        terminal.flush()
        assert result.code == 0, result.err
        printed = raw.getvalue().decode("ascii")
        if fmt == "table":
            assert "UNet2DConditionModel" in printed and "?" in printed  # the table's "·" as "?"
        else:  # the same JSON as the file, "é" as its escape
            assert json.loads(printed) == json.loads(out.read_text()) and "caf\\u00e9" in printed
        assert "un café" in out.read_text(encoding="utf-8")


@pytest.mark.tiny
def test_a_prompt_that_is_not_utf8_is_written_and_read_back(cli, tmp_path):
    prompt = os.fsdecode(b"a \xff horse")  # as Python hands a non-UTF-8 argument over: '\udcff'
    result = cli("inspect", *META, "--prompt", prompt, "--json", str(tmp_path / "run.json"), "--details")
    assert result.code == 0, result.err
    from inspector.reports import json_report

    run = json_report.load(tmp_path / "run.json")
    assert prompt in json.dumps(run.to_dict(), ensure_ascii=False)


def cli_process(args: list[str], stdout, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "from inspector.cli.commands import main; main()", *args],
                          stdout=stdout, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, timeout=600)


def test_a_full_stdout_still_writes_the_json_and_says_so_in_one_line(tmp_path):
    with open("/dev/full", "w") as full:
        done = cli_process(["inspect", *META, "--json", "run.json"], full, tmp_path)
    assert done.returncode == 2 and one_line(done.stderr), done.stderr
    assert "cannot write to standard output: No space left on device" in done.stderr
    assert json.loads((tmp_path / "run.json").read_text())["model"]["source"] == "tiny-sd"


def test_a_closed_stdout_ends_quietly_with_the_json_written(tmp_path):
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the command prints anything: as `| head -1` after one line
    try:
        done = cli_process(["inspect", *META, "--json", "run.json"], write_end, tmp_path)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and done.stderr == "", done.stderr
    assert json.loads((tmp_path / "run.json").read_text())["model"]["source"] == "tiny-sd"


# --- 5. the CSV folder is replaced as a whole or not at all -------------------------------------

def old_tables(folder: Path) -> dict[str, bytes]:
    folder.mkdir()
    for name in ("components.csv", "layers.csv", "plugins.csv", "stale.csv"):
        (folder / name).write_text("old\n")
    return snapshot(folder)


@pytest.mark.parametrize("failure", ["ctrl-c", "disk full"])
def test_a_csv_write_cut_short_leaves_the_old_folder_whole(cli, tmp_path, monkeypatch, failure):
    folder = tmp_path / "tables"
    before = old_tables(folder)
    real_open = builtins.open

    def cut_short(file, mode="r", *args, **kwargs):
        if "w" in mode and "layers.csv" in os.path.basename(os.fsdecode(file)):
            if failure == "ctrl-c":
                raise KeyboardInterrupt  # the signal, taken by another thread, raised here
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", cut_short)
    monkeypatch.setattr(io, "open", cut_short)  # what pathlib calls
    result = cli("report", str(SAVED_RUN), "--csv", str(folder))
    monkeypatch.undo()
    assert result.code == (130 if failure == "ctrl-c" else 2) and one_line(result.err), result.err
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables"]  # no temporary folder left


def test_a_csv_folder_is_replaced_as_a_whole(cli, tmp_path):
    folder = tmp_path / "tables"
    old_tables(folder)
    result = cli("report", str(SAVED_RUN), "--csv", str(folder))
    assert result.code == 0, result.err
    names = sorted(p.name for p in folder.iterdir())
    assert "stale.csv" not in names and "components.csv" in names
    assert (folder / "components.csv").read_text() != "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables"]


# --- 6. the terminal --------------------------------------------------------------------------

def test_a_file_name_from_a_model_folder_reaches_stderr_escaped(cli, tmp_path):
    model = tmp_path / "model"
    materialize_preset(TINY, model)
    (model / "text_encoder" / "model\x1b]0;pwned\x07\x1b[2J.bin").write_bytes(b"x")
    result = cli("inspect", str(model), "--weights", "pretrained")
    assert result.code == 2 and one_line(result.err), result.err
    assert "\x1b" not in result.err and "\x07" not in result.err
    assert "model\\x1b]0;pwned\\x07\\x1b[2J.bin" in result.err


class Noisy:
    """A plugin that prints to stdout and changes the working folder."""

    def __init__(self, elsewhere: Path) -> None:
        self.elsewhere = elsewhere

    @hookimpl
    def inspect_component(self, context, component):
        print("hello from a plugin")
        os.chdir(self.elsewhere)
        return None


@pytest.mark.tiny
def test_a_plugin_neither_corrupts_json_on_stdout_nor_moves_relative_outputs(cli, tmp_path, monkeypatch):
    from inspector.plugin.host import Host

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    default = Host.default

    def with_noisy(*args, **kwargs):
        host = default(*args, **kwargs)
        host.register(Noisy(elsewhere), name="noisy")
        return host

    monkeypatch.setattr(Host, "default", with_noisy)
    monkeypatch.chdir(tmp_path)
    result = cli("inspect", *META, "--format", "json", "--json", "run.json", "--html", "run.html",
                 "--csv", "tables")
    assert result.code == 0, result.err
    assert json.loads(result.out)["model"]["source"] == "tiny-sd"  # stdout: the JSON and nothing else
    assert "hello from a plugin" in result.err
    assert (tmp_path / "run.json").is_file() and (tmp_path / "run.html").is_file()
    assert (tmp_path / "tables" / "components.csv").is_file()
    assert list(elsewhere.iterdir()) == []
