"""The command line: the default run, and one clear line with exit code 2 for bad input."""
from __future__ import annotations

import json
import os

import pytest


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_inspect_default_model(cli, tmp_path):
    out = tmp_path / "tiny.json"
    result = cli("inspect", "--json", str(out), "--layers", "--depth", "1", "--details")
    assert result.code == 0, result.err
    assert "tiny-sd" in result.out and "UNet2DConditionModel" in result.out
    assert "Prompt tokens" in result.out and "Timesteps" in result.out  # plugin views rendered
    data = json.loads(out.read_text())
    assert data["model"]["source"] == "tiny-sd"


def test_presets_command_lists_builtins(cli):
    result = cli("presets")
    assert result.code == 0
    for name in ("tiny-sd", "sd15", "sd21", "sdxl"):
        assert name in result.out


@pytest.mark.parametrize("args, message", [
    (["inspect", "no-such-model"], "unknown model 'no-such-model'"),
    (["inspect", "./missing/folder"], "no such file or directory"),
    (["inspect", "--width", "100"], "--width 100 must be a positive multiple of 8"),
    (["inspect", "--height", "0"], "--height 0 must be a positive multiple of 8"),
    (["inspect", "--steps", "0"], "--steps"),
    (["inspect", "--batch-size", "-1"], "--batch-size"),
    (["inspect", "--dtype", "float64"], "--dtype"),
    (["inspect", "sd21", "--height", "abc"], "--height"),
    (["inspect", "--arch", "sd15", "model.ckpt"], "no such file"),
    (["inspect", "acme/not-cached"], "not in the local Hugging Face cache"),
    (["inspect", "--json", "/dev/null/out.json"], "/dev/null is a character device, not a folder"),
    pytest.param(["inspect", "--device", "cuda"], "no CUDA device",
                 marks=pytest.mark.skipif(cuda_available(), reason="this machine has a CUDA device")),
])
def test_bad_input_is_one_line_exit_2(cli, args, message):
    result = cli(*args)
    assert result.code == 2
    assert message in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_folder_without_model_index(cli, tmp_path):
    (tmp_path / "unet").mkdir()
    result = cli("inspect", str(tmp_path))
    assert result.code == 2 and "has no model_index.json" in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_pickle_checkpoint_is_refused(cli, tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not really a pickle")
    result = cli("inspect", str(ckpt), "--arch", "sd15")
    assert result.code == 2 and "pickle-based checkpoint" in result.err


def test_failed_run_leaves_existing_json_untouched(cli, tmp_path):
    out = tmp_path / "keep.json"
    out.write_text("previous")
    result = cli("inspect", "no-such-model", "--json", str(out))
    assert result.code == 2
    assert out.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.json"]


def test_bare_command_prints_help(cli):
    result = cli()
    assert result.code == 0 and "inspect" in result.out


def test_installed_console_script_and_module_entry_point():
    import subprocess
    import sys

    for command in (["ldm-inspector"], [sys.executable, "-m", "inspector"]):
        proc = subprocess.run([*command, "inspect", "no-such-model"], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: unknown model 'no-such-model': not a preset (")
        assert "sd21" in lines[0] and "tiny-flux" in lines[0]


def test_a_profile_through_a_pipe_writes_nothing_but_results():
    """A real process with stdout and stderr piped: the table on stdout, and stderr empty (no
    progress bar's blank line, no profiler backend log lines, no library warnings)."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("KINETO_LOG_LEVEL", "LDM_INSPECTOR_DEBUG")}
    done = subprocess.run([sys.executable, "-m", "inspector", "profile", "--steps", "2", "--repeats", "1",
                           "--warmup", "0", "--e2e-repeats", "1", "--max-time", "0"],
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr[-1000:]
    assert "unet" in done.stdout and "end to end" in done.stdout


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_meta_run_says_in_words_what_its_recording_skipped(cli, tmp_path):
    """On meta weights the recording call cannot make an image: the note says what was skipped and
    why, with the library's own message after a colon, not a bare exception."""
    out = tmp_path / "meta.json"
    result = cli("inspect", "--weights", "meta", "--json", str(out), "--format", "plain")
    assert result.code == 0, result.err
    note = next(n for n in json.loads(out.read_text())["notes"] if "recorded from" in n)
    words, _, library = note.partition(": NotImplementedError")
    assert library.startswith(": Cannot copy out of meta tensor")
    assert "meta weights" in words and "skipped" in words and "hold no data" in words
    assert "image post-processing" in words  # the steps and the VAE decode ran; what came after did not
    assert f"note: {note}" in result.out
