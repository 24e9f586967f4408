"""``inspector.inspect(pipe)`` / ``inspector.profile(pipe)``: options as on the command line, the
caller's pipeline left exactly as it was, and runs that display themselves in a notebook."""
from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

import inspector
from inspector.python_api import INSPECT_OPTIONS, PROFILE_OPTIONS, notebook_html

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"
HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs")


# --- options ----------------------------------------------------------------------------

def test_options_have_the_cli_names_and_defaults():
    from inspector.cli import commands

    assert (commands.MAX_SIZE, commands.MAX_BATCH, commands.MAX_STEPS) == (
        inspector.python_api.MAX_SIZE, inspector.python_api.MAX_BATCH, inspector.python_api.MAX_STEPS)
    negated = {"no_end_to_end": "end_to_end", "no_operators": "operators", "scheduler_name": "scheduler",
               "image_path": "image", "trace_path": "trace"}
    display_only = {"model", "layers", "depth", "details", "json_path", "html_path", "csv_dir", "fmt"}
    for name, table in (("inspect", {**INSPECT_OPTIONS, **inspector.python_api.INSPECT_SOURCE}),
                        ("profile", {**PROFILE_OPTIONS, **inspector.python_api.PROFILE_SOURCE})):
        for param in commands.app.commands[name].params:
            if param.name in display_only:
                continue
            option = negated.get(param.name, param.name)
            assert option in table, f"{name}: --{param.name} has no keyword option"
            default = param.default
            if getattr(param, "is_flag", False) and not isinstance(default, bool):
                default = False  # newer click keeps a sentinel for a flag's unset default
            default = not default if param.name.startswith("no_") else default
            assert table[option].default == default, f"{name}: {option} defaults differ"


@pytest.mark.unit  # refused before anything is built
def test_an_unknown_option_is_a_type_error_with_a_suggestion():
    with pytest.raises(TypeError, match=r"'stpes' \(did you mean steps\b"):
        inspector.inspect("tiny-sd", stpes=2)
    with pytest.raises(TypeError, match="did you mean end_to_end"):
        inspector.profile("tiny-sd", no_end_to_end=True)
    with pytest.raises(TypeError, match="expected a diffusers pipeline"):
        inspector.inspect(object())


@pytest.mark.unit  # refused before anything is built
@pytest.mark.parametrize("options, message", [
    ({"steps": 0}, "steps=0: must be at least 1"),
    ({"batch_size": True}, "expected a whole number"),
    ({"height": 20000}, "at most 16384"),
    ({"guidance_scale": "7"}, "expected a number"),
    ({"weights": "randon"}, "did you mean random"),
    ({"fits": "rtx9999"}, "rtx9999"),
])
def test_a_bad_value_is_a_value_error(options, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        inspector.inspect("tiny-sd", **options)


@pytest.mark.unit  # refused before anything is built
def test_bad_profile_values_and_sources_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="attention='flash'"):
        inspector.profile("tiny-sd", attention="flash")
    with pytest.raises(ValueError, match="repeats=0"):
        inspector.profile("tiny-sd", repeats=0)
    with pytest.raises(ValueError):
        inspector.inspect(str(tmp_path / "no-such-model"))


def test_importing_the_package_imports_no_torch():
    code = "import sys, inspector; print(sorted(m for m in ('torch', 'diffusers', 'IPython') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout
    assert out.strip() == "[]"


# --- the pipeline in hand ---------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_pipe():
    from inspector.plugin.host import Host
    from inspector.sources.loading import SourceSpec, load

    return load(SourceSpec(model="tiny-sd", weights="random"), Host.default().presets()).pipe


def seeded_image(pipe):
    import torch

    return pipe("a cat", num_inference_steps=2, height=64, width=64, generator=torch.Generator().manual_seed(0),
                output_type="np").images


def pipeline_state(pipe):
    """Everything a run must leave as found, in a form ``==`` compares."""
    import numpy
    import torch

    s = pipe.scheduler
    state = {
        "scheduler": (id(s), type(s).__name__, dict(s.config)),
        "timesteps": None if getattr(s, "timesteps", None) is None else s.timesteps.tolist(),
        "counters": tuple(getattr(s, k, "absent") for k in ("num_inference_steps", "_step_index", "_begin_index")),
        "sigmas": None if getattr(s, "sigmas", None) is None else s.sigmas.tolist(),
        "scheduler_attributes": sorted(vars(s)),
        "alphas_cumprod": s.alphas_cumprod.tolist(),
        "model_outputs": len(getattr(s, "ets", None) or getattr(s, "model_outputs", None) or []),
        "progress_bar": dict(vars(pipe).get("_progress_bar_config", {"<absent>": True})),
        "components": {k: id(v) for k, v in pipe.components.items()},
        "torch_rng": torch.get_rng_state().tolist(),
        "numpy_rng": repr(numpy.random.get_state()),
        "random": random.getstate(),
    }
    for name, comp in pipe.components.items():
        if isinstance(comp, torch.nn.Module):
            for sub, module in comp.named_modules():
                state[f"{name}.{sub}"] = (module.training, tuple(tuple(getattr(module, d)) for d in HOOK_DICTS),
                                          sorted(k for k, v in vars(module).items() if callable(v)))
            if hasattr(comp, "attn_processors"):
                state[f"{name}.attn_processors"] = {k: id(v) for k, v in comp.attn_processors.items()}
    return state


def changed(before, after):
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


@pytest.fixture(scope="module")
def runs(tiny_pipe):
    """inspect and profile on the same pipeline object, with its state before and after each."""
    import numpy

    pipe = tiny_pipe
    pipe.set_progress_bar_config(disable=True, desc="mine")
    pipe.unet.down_blocks[0].train()  # a user's own mix of train and eval flags
    seeded_image(pipe)  # the scheduler holds timesteps from the user's last call
    image = seeded_image(pipe)
    random.seed(5)
    numpy.random.seed(5)
    before = pipeline_state(pipe)
    inspected = inspector.inspect(pipe, steps=2)
    after_inspect = pipeline_state(pipe)
    profiled = inspector.profile(pipe, steps=2, height=64, width=64, warmup=0, repeats=1, e2e_repeats=1,
                                 max_time=0, operators=False, scheduler="EulerDiscreteScheduler", attention="eager")
    after_profile = pipeline_state(pipe)
    return {"pipe": pipe, "image": image, "before": before, "after_inspect": after_inspect,
            "after_profile": after_profile, "inspect": inspected, "profile": profiled}


def test_inspect_and_profile_leave_the_pipeline_as_it_was(runs):
    import numpy

    assert changed(runs["before"], runs["after_inspect"]) == []
    assert changed(runs["before"], runs["after_profile"]) == []
    assert runs["profile"].profile.scheduler == "EulerDiscreteScheduler"  # swapped for the run only
    assert runs["profile"].pipeline is not None and runs["profile"].pipeline.error is None
    assert numpy.array_equal(seeded_image(runs["pipe"]), runs["image"])


def test_a_pipeline_object_is_recorded_as_an_object(runs):
    run = runs["inspect"]
    assert (run.model.source, run.model.kind, run.model.weights) == ("StableDiffusionPipeline", "object", "pretrained")
    assert run.inputs.steps == 2
    counts = {c.name: c.parameters.total for c in run.components if c.parameters}
    pipe = runs["pipe"]
    assert counts == {n: sum(p.numel() for p in pipe.components[n].parameters()) for n in counts}
    assert repr(run).startswith("<RunResult inspect StableDiffusionPipeline, weights pretrained, on cpu float32")
    assert f"{run.parameter_total():,} parameters" in repr(run)


def test_source_options_are_refused_with_a_pipeline_object(tiny_pipe):
    with pytest.raises(TypeError, match="pipe.to"):
        inspector.inspect(tiny_pipe, dtype="float16")


def test_the_state_comes_back_when_the_run_raises_or_is_interrupted(tiny_pipe):
    import torch

    from inspector.pipeline_state import preserved

    pipe = tiny_pipe
    seeded_image(pipe)  # a multistep scheduler now holds model outputs (tensors in a list)
    before = pipeline_state(pipe)
    for error in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(error)), preserved(pipe):
            pipe.set_progress_bar_config(disable=False, leave=False)
            pipe.scheduler.alphas_cumprod.mul_(0.5)  # in place
            pipe.scheduler.ets.append(torch.zeros(1))
            pipe.scheduler.set_timesteps(3)
            pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
            pipe.unet.eval()
            pipe.unet.set_attn_processor(type(next(iter(pipe.unet.attn_processors.values())))())
            pipe.vae.decoder.register_forward_hook(lambda *a: None)
            pipe.vae.encoder.register_forward_pre_hook(lambda *a, **k: None, with_kwargs=True)
            pipe.text_encoder.forward = lambda *a, **k: None
            torch.manual_seed(1)
            random.random()
            raise error
        assert changed(before, pipeline_state(pipe)) == []


# --- saved runs and the notebook view ---------------------------------------------------

def test_save_load_and_compare(runs, tmp_path):
    run = runs["inspect"]
    assert inspector.save_run(run, tmp_path / "a.json") == [tmp_path / "a.json"]
    loaded = inspector.load_run(tmp_path / "a.json")
    assert loaded.to_dict() == run.to_dict()
    comparison = inspector.compare(tmp_path / "a.json", run)
    assert comparison.a_label == "a.json" and comparison.comparable
    inspector.save_run(run, tmp_path / "a.html")
    assert "<html" in (tmp_path / "a.html").read_text(encoding="utf-8")
    assert inspector.save_run(run, tmp_path / "tables")
    with pytest.raises(ValueError, match="a folder for the CSV tables"):
        inspector.save_run(run, tmp_path / "a.txt")
    with pytest.raises(ValueError, match="not a JSON run"):
        (tmp_path / "bad.json").write_text("{", encoding="utf-8")
        inspector.load_run(tmp_path / "bad.json")


def component_rows(html):
    """component name -> parameters cell, from the notebook view's table."""
    return dict(re.findall(r'<tr class="[^"]*">\s*<td>([^<]*)</td><td>[^<]*</td>\s*<td class="num">([^<]*)</td>', html))


def test_the_notebook_view_is_compact_escaped_and_exact(runs):
    run = runs["profile"]
    html = notebook_html(run)
    assert "<script" not in html and "http" not in html and len(html) < 20_000
    rows = component_rows(html)
    pipe = runs["pipe"]
    for name in ("unet", "vae", "text_encoder"):
        assert rows[name] == f"{sum(p.numel() for p in pipe.components[name].parameters()):,}"
    assert "time (median)" in html and "End to end" in html
    hostile = inspector.results.records.RunResult.from_dict(
        json.loads(json.dumps(run.to_dict()).replace('"unet"', '"<img src=x onerror=alert(1)>"')))
    html = notebook_html(hostile)
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_runs_display_as_html_in_ipython(runs):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        assert inspector.python_api.register_notebook_display()
        data, _ = shell.display_formatter.format(runs["inspect"])
        assert data["text/html"] == notebook_html(runs["inspect"])
        assert data["text/plain"].startswith("<RunResult inspect StableDiffusionPipeline")
    finally:
        InteractiveShell.clear_instance()


@pytest.mark.subprocess  # nbclient runs the notebook in a kernel, a child process
def test_the_example_notebook_runs_and_shows_exact_counts(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    import torch

    from inspector.plugin.host import Host
    from inspector.sources.loading import SourceSpec, load

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") and not c.get("execution_count") for c in notebook.cells if c.cell_type == "code")
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env_path) if p)
    try:
        nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ["PYTHONPATH"] = env_path
    html = [o["data"]["text/html"] for c in notebook.cells for o in c.get("outputs", [])
            if "text/html" in o.get("data", {})]
    assert len(html) == 2 and "inspect" in html[0] and "profile" in html[1]
    pipe = load(SourceSpec(model="tiny-sd", weights="random"), Host.default().presets()).pipe
    expected = {name: f"{sum(p.numel() for p in comp.parameters()):,}" for name, comp in pipe.components.items()
                if isinstance(comp, torch.nn.Module)}
    for view in html:
        rows = component_rows(view)
        assert {name: rows[name] for name in expected} == expected
    last = notebook.cells[-2]["outputs"][-1]["data"]["text/plain"]
    assert last == "'pipeline untouched'"


def test_a_meta_pipeline_is_inspected_on_meta_and_refused_by_profile():
    from inspector.plugin.host import Host
    from inspector.sources.loading import SourceSpec, load

    pipe = load(SourceSpec(model="tiny-sd", weights="meta"), Host.default().presets()).pipe
    run = inspector.inspect(pipe, steps=2)
    assert (run.model.kind, run.model.weights, run.environment.device) == ("object", "meta", "meta")
    with pytest.raises(ValueError, match="real forward passes"):
        inspector.profile(pipe, steps=2)


def test_a_source_string_loads_as_on_the_command_line():
    run = inspector.inspect("tiny-sd", steps=2, weights="meta", height=64, width=64)
    assert (run.model.source, run.model.kind, run.model.weights) == ("tiny-sd", "preset", "meta")
    assert (run.inputs.height, run.inputs.width, run.inputs.steps) == (64, 64, 2)
