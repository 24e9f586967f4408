"""Hostile files, folders, saved runs, outputs and plugins: each case a user could hand us.

Promises (docs/reliability.md, "Trust"): data never names code; outputs are regular files checked
before any work; CSV and HTML carry no formulas and no foreign files; memory is checked before
weights exist; plugin outputs are checked at the border; every malformed input is one line, exit 2.
"""
from __future__ import annotations

import csv
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from inspector import hookimpl
from inspector.errors import InspectorError, SourceError
from inspector.inspection import run_inspect
from inspector.plugin.context import InspectOptions
from inspector.plugin.host import Host
from inspector.reports import csv_report, html_report, json_report
from inspector.results.records import View
from inspector.results.serialize import SCHEMA_VERSION
from inspector.sources.loading import SourceSpec
from inspector.sources.preset_files import materialize_preset

TINY = Path(__file__).resolve().parents[1] / "inspector" / "presets" / "tiny-sd"
SAVED_RUN = Path(__file__).parent / "data" / "tiny-profile.json"
MARKER_CODE = "import pathlib; pathlib.Path({path!r}).write_text('ran')\nclass Thing: pass\n"


def one_line(err: str) -> bool:
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.fixture
def configs(tmp_path) -> Path:
    """tiny-sd's configs (no weights) in a folder of the test's own."""
    folder = tmp_path / "model"
    materialize_preset(TINY, folder)  # with the shared vocabulary: a complete folder
    return folder


def edit_index(folder: Path, **changes) -> None:
    index = json.loads((folder / "model_index.json").read_text())
    index.update(changes)
    (folder / "model_index.json").write_text(json.dumps(index))


# --- 1. data never names code ----------------------------------------------------------

@pytest.mark.parametrize("weights", ["meta", "random", "pretrained"])
def test_a_module_named_by_model_index_is_never_imported(configs, cli, weights, monkeypatch):
    marker = configs / "RAN"
    (configs / "evilmod.py").write_text(MARKER_CODE.format(path=str(marker)))
    edit_index(configs, unet=["evilmod", "Thing"])
    monkeypatch.syspath_prepend(str(configs))  # as if started from inside the folder
    result = cli("inspect", str(configs), "--weights", weights)
    assert result.code == 2 and one_line(result.err)
    assert "component unet names module 'evilmod'" in result.err and "refused" in result.err
    assert not marker.exists() and "evilmod" not in sys.modules


def test_python_m_from_inside_the_folder_imports_nothing_from_it(configs):
    """``python -m`` puts the current folder first on sys.path: a ``transformers.py`` lying
    beside ``model_index.json`` would shadow the real library, and an evil module could be named."""
    marker = configs / "RAN"
    (configs / "transformers.py").write_text(MARKER_CODE.format(path=str(marker)))
    (configs / "evilmod.py").write_text(MARKER_CODE.format(path=str(marker)))
    env = {**os.environ, "LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD": "1"}
    ok = subprocess.run([sys.executable, "-m", "inspector", "inspect", ".", "--weights", "meta"], cwd=configs,
                        capture_output=True, text=True, env=env, timeout=300)
    assert ok.returncode == 0, ok.stderr
    edit_index(configs, unet=["evilmod", "Thing"])
    refused = subprocess.run([sys.executable, "-m", "inspector", "inspect", ".", "--weights", "meta"], cwd=configs,
                             capture_output=True, text=True, env=env, timeout=300)
    assert refused.returncode == 2 and one_line(refused.stderr) and "evilmod" in refused.stderr
    assert not marker.exists()


@pytest.mark.parametrize("index, message", [
    ([1, 2], "JSON object"),
    (None, "JSON object"),
    ({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel", "x"]},
     "[library, class]"),
    ({"_class_name": "StableDiffusionPipeline", "unet": ["transformers", "pipeline"]}, "not a class"),
    ({"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "logging"]}, "not a class"),
    ({"_class_name": "StableDiffusionPipeline", "unet": ["transformers", "TrainingArguments"]},
     "not a component class"),
    ({"_class_name": "StableDiffusionPipeline", "../../etc": ["diffusers", "AutoencoderKL"]}, "not a plain name"),
    ({"_class_name": "StableDiffusionPipeline", **{f"c{i}": None for i in range(10_000)}}, "at most 64"),
    ({"_class_name": ["evilmod", "Pipeline"]}, "custom pipeline code is never run"),
    ({"_class_name": "AutoencoderKL"}, "not a diffusers pipeline"),
    ({"_class_name": "StableDiffusionPipeline", "unet": [3, {"a": 1}]}, "two strings"),
    ({"_class_name": "StableDiffusionPipeline", "unet": ["os", "system"]}, "names module 'os'"),
    ({"_class_name": "StableDiffusionPipeline", "unet": {"library": "diffusers"}}, "[library, class]"),
])
def test_odd_model_index_shapes_are_one_line(configs, cli, index, message):
    (configs / "model_index.json").write_text(json.dumps(index))
    for weights in ("meta", "pretrained"):
        result = cli("inspect", str(configs), "--weights", weights)
        assert result.code == 2 and one_line(result.err) and message in result.err, (weights, result.err)


def test_auto_map_is_refused_never_asked(configs, cli, monkeypatch):
    config = json.loads((configs / "text_encoder" / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    (configs / "text_encoder" / "config.json").write_text(json.dumps(config))
    monkeypatch.setattr("sys.stdin", None)  # any prompt would fail loudly
    for weights in ("meta", "random", "pretrained"):
        result = cli("inspect", str(configs), "--weights", weights)
        assert result.code == 2 and one_line(result.err) and "auto_map" in result.err, result.err


@pytest.mark.parametrize("where, key, value", [
    ("tokenizer/tokenizer_config.json", "model_max_length", 10**9),
    ("scheduler/scheduler_config.json", "num_train_timesteps", 10**10),
    ("text_encoder/config.json", "max_position_embeddings", 1e12),
])
def test_absurd_config_sizes_are_refused_before_allocating(configs, cli, where, key, value):
    path = configs / where
    data = json.loads(path.read_text())
    data[key] = value
    path.write_text(json.dumps(data))
    result = cli("inspect", str(configs), "--weights", "random")
    assert result.code == 2 and one_line(result.err) and key in result.err and "refused" in result.err


def test_special_files_as_inputs_are_refused_not_read(configs, tmp_path, cli):
    fifo = tmp_path / "weights.safetensors"
    os.mkfifo(fifo)
    assert cli("inspect", str(fifo), "--arch", "tiny-sd").code == 2
    run_fifo = tmp_path / "run.json"
    os.mkfifo(run_fifo)
    for args in (["report", str(run_fifo)], ["compare", str(run_fifo), str(run_fifo)], ["tui", str(run_fifo)],
                 ["profile", "--image", str(run_fifo)]):
        result = cli(*args)
        assert result.code == 2 and one_line(result.err) and "FIFO" in result.err, (args, result.err)
    os.mkfifo(configs / "unet" / "diffusion_pytorch_model.safetensors")
    result = cli("inspect", str(configs), "--weights", "meta")
    assert result.code == 2 and "FIFO" in result.err
    (configs / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    (configs / "model_index.json").unlink()
    os.mkfifo(configs / "model_index.json")
    result = cli("inspect", str(configs))
    assert result.code == 2 and "FIFO" in result.err


@pytest.mark.parametrize("args, message", [
    (["inspect", "~no-such-user-here/model"], "~no-such-user-here/model"),
    (["inspect", "sd15", "--seed", str(2**64)], "--seed"),
    (["inspect", "sd15", "--seed", str(-2**63 - 1)], "--seed"),
])
def test_odd_paths_and_numbers_are_one_line(cli, args, message):
    result = cli(*args)
    assert result.code == 2 and one_line(result.err) and message in result.err


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_huge_seeds_in_range_work(cli):
    assert cli("inspect", "sd15", "--seed", str(2**64 - 1)).code == 0


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims this size (no pixel data: enough for Image.open)."""
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def test_decompression_bomb_image_is_one_line(cli, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(30000, 30000))
    result = cli("profile", "--image", str(bomb))
    assert result.code == 2 and one_line(result.err) and "--image" in result.err


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "soon"])
def test_hook_timeout_setting_must_be_a_finite_number(cli, monkeypatch, value):
    monkeypatch.setenv("LDM_INSPECTOR_HOOK_TIMEOUT", value)
    result = cli("inspect", "sd15")
    assert result.code == 2 and one_line(result.err) and "LDM_INSPECTOR_HOOK_TIMEOUT" in result.err


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"schema_version": 1e400}', "out of range"),
    ('{"schema_version": NaN}', "not strict JSON"),
])
def test_saved_runs_nested_deep_or_holding_huge_numbers(cli, tmp_path, text, message):
    path = tmp_path / "run.json"
    path.write_text(text)
    for args in (["report", str(path)], ["compare", str(path), str(path)]):
        result = cli(*args)
        assert result.code == 2 and one_line(result.err) and message in result.err, result.err


@pytest.mark.parametrize("where, value, message", [
    (("components", 3, "flops"), 10**400, "out of range"),
    (("components", 3, "timing", "median"), 1e300, "out of range"),
    (("components", 3, "timing", "median"), -5, "minimum"),
    (("components", 3, "parameters", "total"), -1, "minimum"),
    (("pipeline", "totals"), [-1.0], "minimum"),
    (("components",), [], "no components"),
])
def test_saved_runs_with_numbers_no_run_holds_are_refused(cli, tmp_path, where, value, message):
    """A hand-edited run with a 400-digit FLOP count crashed ``report`` (exit 1) and a time of
    1e300 ms or -5 ms was printed as if measured."""
    data = json.loads((Path(__file__).parent / "data" / "tiny-profile.json").read_text())
    node = data
    for key in where[:-1]:
        node = node[key]
    assert where[-1] in node  # the edit lands on a real field
    node[where[-1]] = value
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    result = cli("report", str(path), "--html", str(tmp_path / "r.html"))
    assert result.code == 2 and one_line(result.err) and message in result.err, result.err
    assert not (tmp_path / "r.html").exists()


# --- 2. outputs ------------------------------------------------------------------------

@pytest.fixture
def never_loads(monkeypatch):
    """Output checks must come before any loading: loading fails the test."""
    # imported before the patch: imported after it, they would bind the patched ``load`` for good
    # (monkeypatch restores what it found there) and every later test in the session would fail
    import inspector.inspection
    import inspector.profiling  # noqa: F401
    import inspector.sources.loading as loading

    def boom(*args, **kwargs):
        raise AssertionError("the pipeline was loaded before the outputs were checked")

    monkeypatch.setattr(loading, "load", boom)
    monkeypatch.setattr("inspector.inspection.load", boom)
    monkeypatch.setattr("inspector.profiling.load", boom)


@pytest.mark.parametrize("command", ["inspect", "profile"])
def test_special_and_clashing_outputs_are_refused_before_any_work(cli, tmp_path, never_loads, command):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "folder"
    folder.mkdir()
    same = tmp_path / "same.json"
    cases = [
        (["--json", "/dev/null"], "character device"),
        (["--json", str(fifo)], "FIFO"),
        (["--html", str(fifo)], "FIFO"),
        (["--json", str(folder)], "directory"),
        (["--csv", "/dev/null"], "not a folder"),
        (["--json", str(same), "--html", str(same)], "name the same file"),
        (["--json", "/proc/ldm-inspector-test.json"], "cannot write in /proc"),  # unwritable, even for root
        (["--csv", str(tmp_path / "csv"), "--html", str(tmp_path / "csv" / "components.csv")], "folder"),
    ]
    if command == "profile":
        cases += [(["--json", str(tmp_path / "run.json"), "--html", str(tmp_path / "run.png")], "same file"),
                  (["--save-image", "/dev/null"], "character device")]
    for args, message in cases:
        result = cli(command, *args)
        assert result.code == 2 and one_line(result.err) and message in result.err, (args, result.err)
    assert os.path.exists("/dev/null") and not Path("/dev/null").is_file()  # the device node is still one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "out.fifo"]


def test_a_failed_write_names_itself_after_writing_the_rest(cli, tmp_path, monkeypatch):
    run_json = tmp_path / "run.json"
    html = tmp_path / "run.html"
    html.write_text("previous html")
    original = Path.write_text

    def html_disk_full(self, *args, **kwargs):
        if self.name.startswith(".run.html."):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", html_disk_full)
    result = cli("report", str(SAVED_RUN), "--json", str(run_json), "--html", str(html), "--csv", str(tmp_path / "c"))
    assert result.code == 2 and one_line(result.err)
    assert f"cannot write {html}: No space left on device" in result.err
    assert "other 2 output(s) were written" in result.err
    assert json.loads(run_json.read_text())["schema_version"] == SCHEMA_VERSION
    assert (tmp_path / "c" / "components.csv").exists()
    assert html.read_text() == "previous html"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_a_run_that_fails_to_render_replaces_no_output(cli, tmp_path, monkeypatch):
    run_json = tmp_path / "run.json"
    run_json.write_text("previous")

    def broken(*args, **kwargs):
        raise InspectorError("the HTML report cannot be rendered")

    monkeypatch.setattr(html_report, "render", broken)
    result = cli("report", str(SAVED_RUN), "--json", str(run_json), "--html", str(tmp_path / "r.html"))
    assert result.code == 2 and run_json.read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


# --- 3. CSV and HTML -------------------------------------------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def test_no_csv_cell_or_header_is_a_formula_or_splits_a_row(tmp_path):
    run = json_report.load(SAVED_RUN)
    hostile = ["conv_in\r=2+5", "=cmd|' /C calc'!A0", "\r\n@SUM(1)", "+1\n-2", "ok"]
    run.components[0].views.append(View(title="hostile", columns=["=HYPERLINK(\"x\")", "\rname", "value"],
                                        rows=[[cell, cell, i] for i, cell in enumerate(hostile)]))
    run.components[0].class_name = "\r=1+1"
    run.components[0].notes.append("\r=1+1")
    written = csv_report.write(run, tmp_path / "csv")
    view_file = next(p for p in written if p.name.startswith("view_") and "hostile" in p.name)
    for path in written:
        with path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
        for row in rows:
            for cell in row:
                assert not cell.startswith(FORMULA_STARTS) or is_number(cell), (path.name, cell)
            assert len(row) == len(rows[0]), (path.name, row)  # no cell split into a row of its own
    with view_file.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert len(rows) == 1 + len(hostile) and rows[1][0] == "conv_in\r=2+5" and rows[2][0] == "'=cmd|' /C calc'!A0"
    assert rows[0] == ["'=HYPERLINK(\"x\")", "'\rname", "value"]


EMBEDDED_IMAGE = re.compile(r'<img[^>]*src="data:image/png;base64,')


def test_report_embeds_no_file_a_saved_run_merely_names(tmp_path, cli):
    from PIL import Image

    secret = tmp_path / "private" / "secret.png"
    secret.parent.mkdir()
    Image.new("RGB", (4, 4), (255, 0, 0)).save(secret)
    data = json.loads(SAVED_RUN.read_text())
    data["pipeline"]["image"] = str(secret)
    shared = tmp_path / "shared"
    shared.mkdir()
    run_path = shared / "run.json"
    run_path.write_text(json.dumps(data))
    result = cli("report", str(run_path), "--html", str(shared / "a.html"))
    assert result.code == 0, result.err
    assert not EMBEDDED_IMAGE.search((shared / "a.html").read_text())
    # the image profile itself writes beside its JSON (STEM.png) is still shown
    shutil.copy(secret, shared / "run.png")
    data["pipeline"]["image"] = str(shared / "run.png")
    run_path.write_text(json.dumps(data))
    assert cli("report", str(run_path), "--html", str(shared / "b.html")).code == 0
    assert EMBEDDED_IMAGE.search((shared / "b.html").read_text())


# --- 5. memory -------------------------------------------------------------------------

@pytest.fixture
def small_machine(monkeypatch):
    import inspector.sources.memory_guard as memory_guard

    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: [("in memory", 24 * 2**30)])


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_flux_with_random_weights_is_refused_before_allocating(cli, small_machine):
    import psutil

    before = psutil.Process().memory_info().rss
    result = cli("inspect", "flux", "--weights", "random")
    assert result.code == 2 and one_line(result.err)
    assert "random weights needs 6" in result.err and "GiB (the weights alone; activations not predicted), 24.0 GiB " \
        "available" in result.err and "--force" in result.err
    assert psutil.Process().memory_info().rss - before < 2 * 2**30


def test_pretrained_weights_are_checked_and_force_overrides(cli, tiny_saved, monkeypatch):
    import inspector.sources.memory_guard as memory_guard

    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: [("in memory", 1024)])
    result = cli("inspect", str(tiny_saved))
    assert result.code == 2 and "the pretrained weights needs" in result.err and "1.0 KiB available" in result.err
    assert cli("inspect", "tiny-sd", "--weights", "random").code == 2
    assert cli("inspect", "tiny-sd", "--weights", "random", "--force").code == 0


def tiny_sd_weights_and_activations(batch: int) -> tuple[int, int]:
    """tiny-sd's float32 weight bytes and its predicted activations at ``batch``, as the guard sees them."""
    import torch

    from inspector.inspection import activation_predictor
    from inspector.sources.loading import build_from_configs, quiet_libraries
    from inspector.sources.memory_guard import module_bytes

    quiet_libraries()  # as the CLI does before diffusers is imported
    host = Host.default()
    folder = host.presets()["tiny-sd"].path
    spec = SourceSpec(model="tiny-sd", weights="random", libraries=host.libraries())
    pipe = build_from_configs(folder, "meta", spec)
    weights = module_bytes([c for c in pipe.components.values() if isinstance(c, torch.nn.Module)], torch.float32)
    predicted = activation_predictor(host, InspectOptions(batch_size=batch))(folder, spec)
    assert predicted is not None and predicted.at == "128x128, batch %d" % batch
    return weights, predicted.bytes


@pytest.mark.profile  # cli("profile", ...) in-process: run_profile refuses the run
def test_a_run_that_fits_by_weights_but_not_by_predicted_peak_is_refused(cli, monkeypatch, capsys):
    import inspector.sources.memory_guard as memory_guard
    from inspector.results.units import human_bytes

    weights, activations = tiny_sd_weights_and_activations(batch=2)
    capsys.readouterr()  # the libraries' chatter while the figures were computed here
    available = weights + activations // 2  # the weights fit, leaving less than the activations need
    # tiny-sd's activations on a CPU (convolution workspace included) outweigh its weights at
    # batch 2; predict from a quarter, so this memory is one where the guard predicts
    monkeypatch.setattr(memory_guard, "PREDICT_FROM", 0.25)
    assert weights >= memory_guard.PREDICT_FROM * available
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: [("in memory", available)])
    result = cli("inspect", "tiny-sd", "--weights", "random", "--batch-size", "2")
    assert result.code == 2 and one_line(result.err), result.err
    assert (f"random weights needs {human_bytes(weights + activations)} (weights {human_bytes(weights)} + peak "
            f"activations {human_bytes(activations)} at 128x128, batch 2), {human_bytes(available)} available in "
            "memory; pass --force") in result.err
    result = cli("profile", "tiny-sd", "--batch-size", "2", "--no-end-to-end", "--repeats", "1", "--warmup", "0",
                 "--max-time", "0", "--no-operators")
    assert result.code == 2 and one_line(result.err) and "+ peak activations" in result.err, result.err
    # the same run at batch 1 fits in weights + its own activations
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: [("in memory", weights + activations)])
    assert cli("inspect", "tiny-sd", "--weights", "random").code == 0
    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: [("in memory", available)])
    assert cli("inspect", "tiny-sd", "--weights", "random", "--batch-size", "2", "--force").code == 0


def test_the_guard_predicts_only_when_the_weights_take_half_the_memory_and_says_when_it_could_not(monkeypatch):
    import inspector.sources.memory_guard as memory_guard
    from inspector.sources.memory_guard import PredictedActivations, check_memory

    monkeypatch.setattr(memory_guard, "available_bytes", lambda device: [("in memory", 100 * 2**20)])
    calls = []

    def predict(found):
        return lambda: calls.append(1) or found

    check_memory(49 * 2**20, "cpu", force=False, what="w", predict=predict(PredictedActivations(2**40, "8x8, batch 1")))
    assert calls == []  # under half: the weights alone decide, nothing is predicted
    with pytest.raises(memory_guard.OptionError, match=r"^w needs 101\.0 MiB \(weights 50\.0 MiB \+ peak activations "
                       r"51\.0 MiB at 8x8, batch 1\), 100\.0 MiB available in memory; pass --force"):
        check_memory(50 * 2**20, "cpu", force=False, what="w",
                     predict=predict(PredictedActivations(51 * 2**20, "8x8, batch 1")))
    check_memory(50 * 2**20, "cpu", force=False, what="w", predict=predict(PredictedActivations(50 * 2**20, "8x8, b")))
    assert len(calls) == 2
    with pytest.raises(memory_guard.OptionError,
                       match=r"needs 101\.0 MiB \(the weights alone; activations not predicted\)"):
        check_memory(101 * 2**20, "cpu", force=False, what="w", predict=predict(None))
    assert len(calls) == 2  # more than all of it: the weights alone decide
    check_memory(60 * 2**20, "cpu", force=False, what="w", predict=predict(None))  # no prediction: weights only
    check_memory(60 * 2**20, "cpu", force=True, what="w", predict=predict(PredictedActivations(2**40, "x")))


def test_a_failed_cpu_allocation_is_recorded_like_an_oom():
    import torch

    from inspector.plugin.context import ProfileContext, ProfileOptions
    from inspector.results.records import ComponentResult

    ctx = ProfileContext(pipe=None, options=ProfileOptions(warmup=0, repeats=1), device=torch.device("cpu"),
                         dtype=torch.float32)
    result = ComponentResult(name="unet", class_name="X", library=None, present=True, kind="unet", plugin="unet")

    def allocate():
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] . DefaultCPUAllocator: can't allocate memory: "
                           "you tried to allocate 68719476736 bytes")

    assert ctx.measure(result, "forward", allocate) is None
    assert result.errors[0]["kind"] == "oom" and result.measurements[0].error.startswith("out of memory")
    with pytest.raises(RuntimeError, match="something else"):
        ctx.measure(result, "other", lambda: (_ for _ in ()).throw(RuntimeError("something else")))


# --- 7. one line on stderr -------------------------------------------------------------

def test_loading_a_folder_prints_nothing_but_our_line(cli, tiny_saved, monkeypatch):
    result = cli("inspect", str(tiny_saved))
    assert result.code == 0 and result.err == ""
    missing = Path(str(tiny_saved) + "-missing")
    result = cli("inspect", str(missing))
    assert result.code == 2 and one_line(result.err)


def test_library_warnings_are_captured_and_shown_with_debug(capsys, monkeypatch):
    import warnings

    from inspector.runtime.libraries import captured, library_warnings

    with library_warnings():
        warnings.warn("torch_dtype is deprecated", FutureWarning, stacklevel=1)
    assert capsys.readouterr().err == "" and any("torch_dtype is deprecated" in w for w in captured)
    monkeypatch.setenv("LDM_INSPECTOR_DEBUG", "1")
    with library_warnings():
        warnings.warn("scheduler config attribute", DeprecationWarning, stacklevel=1)
    assert "warning: DeprecationWarning: scheduler config attribute" in capsys.readouterr().err


# --- 8. plugins at the border ----------------------------------------------------------

def test_bad_plugin_values_are_dropped_and_blamed_while_the_run_goes_on(tmp_path):
    import torch

    class Sloppy:
        @hookimpl
        def augment_component(self, component, result):
            if component.name == "unet":
                result.details["tensor"] = torch.ones(2)
                result.details["fine"] = 1
                result.metrics["a_set"] = {1, 2}
                result.notes.append(7)
                result.flops = "many"

    class WrongType:
        @hookimpl(tryfirst=True)
        def inspect_component(self, component):
            return "not a result" if component.name == "vae" else None

    host = Host.default(entrypoints=False)
    host.register(Sloppy(), name="sloppy")
    host.register(WrongType(), name="wrong-type")
    run = run_inspect(host, SourceSpec(model="tiny-sd", weights="meta"), InspectOptions(steps=2))
    unet, vae = run.component("unet"), run.component("vae")
    assert unet.details["fine"] == 1 and "tensor" not in unet.details and "a_set" not in unet.metrics
    assert 7 not in unet.notes and unet.flops != "many"
    blamed = [e for e in unet.errors if e["plugin"] == "sloppy"]
    assert blamed and "torch.Tensor" in blamed[0]["error"]
    assert vae.plugin == "vae" and any(e["plugin"] == "wrong-type" and "not a ComponentResult" in e["error"]
                                       for e in vae.errors)
    json_report.write(run, tmp_path / "run.json")  # strict JSON: it all serialized
    json_report.load(tmp_path / "run.json")


def test_a_misspelled_hook_is_rejected_at_registration():
    class Misspelled:
        @hookimpl
        def augment_componnt(self, component, result):
            raise AssertionError("never called")

    host = Host.default(entrypoints=False)
    assert host.register(Misspelled(), name="misspelled") is False
    record = host.records["misspelled"]
    assert "unknown hook(s) augment_componnt" in record.error and host.pm.get_plugin("misspelled") is None


def test_a_short_time_limit_never_cuts_built_in_measurement(monkeypatch):
    monkeypatch.setenv("LDM_INSPECTOR_HOOK_TIMEOUT", "0.000001")
    host = Host.default(entrypoints=False)
    run = run_inspect(host, SourceSpec(model="tiny-sd", weights="meta"), InspectOptions(steps=2))
    assert run.component("unet").flops and run.component("vae").flops
    assert not [e for c in run.components for e in c.errors]


def test_an_abandoned_hook_thread_cannot_write_into_the_run(monkeypatch):
    release, finished = threading.Event(), threading.Event()

    class Late:
        @hookimpl
        def augment_component(self, component, result):
            if component.name == "unet":
                release.wait(30)
                result.details["late"] = "written after the limit"
                result.notes.append("late")
                finished.set()

    monkeypatch.setenv("LDM_INSPECTOR_HOOK_TIMEOUT", "0.3")
    host = Host.default(entrypoints=False)
    host.register(Late(), name="late")
    run = run_inspect(host, SourceSpec(model="tiny-sd", weights="meta"), InspectOptions(steps=2))
    release.set()
    assert finished.wait(30)
    unet = run.component("unet")
    assert "late" not in unet.details and "late" not in unet.notes
    assert any(e["plugin"] == "late" and "did not return" in e["error"] for e in unet.errors)


def test_a_plugin_may_declare_a_library_model_folders_can_name(configs, monkeypatch):
    """The one way to widen what a folder may import: a registered plugin says so."""
    import types

    fake = types.ModuleType("ldm_test_components")
    from diffusers import AutoencoderKL

    class MyVae(AutoencoderKL):
        pass

    fake.MyVae = MyVae
    monkeypatch.setitem(sys.modules, "ldm_test_components", fake)
    edit_index(configs, vae=["ldm_test_components", "MyVae"])
    spec = SourceSpec(model=str(configs), weights="meta")
    with pytest.raises(SourceError, match="ldm_test_components"):
        run_inspect(Host.default(entrypoints=False), spec, InspectOptions(steps=2))

    class Declares:
        LDM_INSPECTOR_LIBRARIES = ("ldm_test_components",)

        @hookimpl
        def augment_component(self, component, result):
            return None

    host = Host.default(entrypoints=False)
    assert host.register(Declares(), name="declares")
    run = run_inspect(host, SourceSpec(model=str(configs), weights="meta"), InspectOptions(steps=2))
    assert run.component("vae").class_name == "MyVae"


def test_a_run_interrupted_before_any_component_still_reads(cli, tmp_path):
    """Ctrl-C while loading writes a run with no components, marked interrupted: ours, so it reads;
    the same without the mark is refused above."""
    data = json.loads((Path(__file__).parent / "data" / "tiny-profile.json").read_text())
    data["components"], data["interrupted"], data["pipeline"] = [], True, None
    path = tmp_path / "early.json"
    path.write_text(json.dumps(data))
    result = cli("report", str(path))
    assert result.code == 0, result.err
