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
    outputs = [o for c in notebook.cells for o in c.get("outputs", [])]
    html = [o["data"]["text/html"] for o in outputs
            if 'class="ldm-inspector-run"' in o.get("data", {}).get("text/html", "")]
    assert len(html) == 2 and "inspect" in html[0] and "profile" in html[1]
    # progress as a widget (ipywidgets is in the test extra), never carriage returns in a cell
    widgets = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) >= 3  # inspect, profile, and the single model's inspect
    assert not [o for o in outputs if o["output_type"] == "stream" and "\r" in o["text"]]
    assert not [o for o in outputs if o["output_type"] == "error"]
    single = next(o["data"]["text/plain"] for c in notebook.cells if c.source.startswith("unet = ")
                  for o in c["outputs"] if o["output_type"] == "execute_result")
    assert " ".join(single.split()).startswith("(1427012, 'synthesized")  # IPython may wrap the tuple
    table = next(o["data"]["text/html"] for c in notebook.cells if c.source.startswith("run.to_pandas()")
                 for o in c["outputs"] if o["output_type"] == "execute_result")
    assert "<td>1427012</td>" in table
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


# --- one model instead of a pipeline ------------------------------------------------------

def test_a_single_model_counts_and_flops_as_inside_its_pipeline(runs):
    """``inspect(pipe.unet)`` synthesizes the inputs the pipeline's own call passes (same shapes), so
    its parameters and FLOPs equal the UNet's in the pipeline's run; the model is left as it was."""
    pipe = runs["pipe"]
    in_pipeline = runs["inspect"].component("unet")
    before = {n: (m.training, tuple(tuple(getattr(m, d)) for d in HOOK_DICTS)) for n, m in pipe.unet.named_modules()}
    run = inspector.inspect(pipe.unet, progress=False)
    comp = run.components[0]
    assert (run.model.kind, run.model.source, run.model.pipeline_class) == ("model", "UNet2DConditionModel",
                                                                            "UNet2DConditionModel")
    assert (comp.name, comp.plugin) == ("unet", "unet")
    assert comp.parameters.total == sum(p.numel() for p in pipe.unet.parameters()) == in_pipeline.parameters.total
    assert [i.shape for i in comp.inputs] == [i.shape for i in in_pipeline.inputs]
    assert comp.flops == in_pipeline.flops
    assert comp.inputs_source.startswith("synthesized") and "without inputs=" in " ".join(run.notes)
    after = {n: (m.training, tuple(tuple(getattr(m, d)) for d in HOOK_DICTS)) for n, m in pipe.unet.named_modules()}
    assert after == before


def test_a_models_own_inputs_are_replayed_and_counted_independently():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(8 * 6 * 6, 5))
    x = torch.randn(2, 3, 6, 6)
    with FlopCounterMode(display=False) as counter:
        expected = model(x)
    run = inspector.inspect(model, inputs=(x,), progress=False)
    comp = run.components[0]
    assert (comp.name, comp.plugin, comp.parameters.total) == ("model", "generic", 8 * 3 * 9 + 8 + 288 * 5 + 5)
    assert comp.flops == counter.get_total_flops() > 0
    assert comp.inputs_source.startswith("given: the inputs= passed with the model")
    assert [o.shape for o in comp.outputs] == [list(expected.shape)]
    assert {layer.name: layer.output_shapes for layer in comp.layers if layer.depth == 1}["3"] == [[2, 5]]
    # a dict is keyword arguments, one tensor the one positional argument
    assert inspector.inspect(model, inputs=x, progress=False).components[0].flops == comp.flops
    with pytest.raises(ValueError, match="keys must be strings"):
        inspector.inspect(model, inputs={1: x}, progress=False)


def test_a_single_model_profiles_without_an_end_to_end_call():
    import torch

    model = torch.nn.Linear(16, 16)
    run = inspector.profile(model, inputs=torch.randn(4, 16), progress=False, warmup=0, repeats=2, max_time=0,
                            operators=False)
    comp = run.components[0]
    assert run.pipeline is None and "no end-to-end call: one model was given" in " ".join(run.notes)
    assert comp.timing is not None and comp.timing.count >= 2 and run.profile.scheduler is None
    with pytest.raises(ValueError, match="needs a pipeline"):
        inspector.profile(model, inputs=torch.randn(4, 16), scheduler="EulerDiscreteScheduler", progress=False)
    with pytest.raises(TypeError, match="inputs= goes with a single model"):
        inspector.inspect("tiny-sd", inputs=torch.randn(1))


# --- tables, saving, progress, messages ---------------------------------------------------

def test_tables_are_the_csv_exports_as_dataframes(runs, tmp_path):
    import pandas as pd

    run = runs["profile"]
    frames = run.tables()
    written = run.save(tmp_path / "csv")
    assert sorted(f"{name}.csv" for name in frames) == sorted(p.name for p in written)
    for name, df in frames.items():
        from_csv = pd.read_csv(tmp_path / "csv" / f"{name}.csv")
        assert list(df.columns) == list(from_csv.columns), name
        assert len(df) == len(from_csv), name
    components = run.to_pandas()
    assert components.set_index("component")["parameters_total"].to_dict()["unet"] == \
        run.component("unet").parameters.total
    assert str(components["parameters_total"].dtype) == "Int64"
    with pytest.raises(KeyError, match="its tables: components"):
        run.to_pandas("nope")
    assert run.save(tmp_path / "r.json") == [tmp_path / "r.json"]
    assert inspector.load_run(tmp_path / "r.json").to_dict() == run.to_dict()


def test_progress_reaches_a_callable_and_false_is_silent(capsys):
    seen = []
    inspector.inspect("tiny-sd", weights="meta", steps=2, height=64, width=64,
                      progress=lambda stage, fraction, detail: seen.append((stage, fraction)))
    stages = [s for s, _ in seen]
    assert stages[0] == "loading" and "recording" in stages and "unet" in stages and stages[-1] == "memory plan"
    assert all(0.0 <= f <= 1.0 for _, f in seen)
    inspector.inspect("tiny-sd", weights="meta", steps=2, height=64, width=64, progress=False)
    assert capsys.readouterr().err == ""
    with pytest.raises(TypeError, match="progress="):
        inspector.inspect("tiny-sd", progress="yes")


@pytest.mark.unit
@pytest.mark.parametrize("cli, python", [
    ("preset 'sd15' ships no weights: use --weights meta or --weights random",
     "preset 'sd15' ships no weights: use weights='meta' or weights='random'"),
    ("--dtype float16 on a CPU: choose --dtype float32 or bfloat16, or pass --allow-cpu-float16 to run it",
     "dtype='float16' on a CPU: choose dtype='float32' or bfloat16, or pass allow_cpu_float16=True to run it"),
    ("--height 20000 is more than 16384", "height=20000 is more than 16384"),
    ("unknown --arch 'sdx'; choose one of sd15", "unknown arch='sdx'; choose one of sd15"),
    ("--image /tmp/in.png: no such file", "image='/tmp/in.png': no such file"),
    ("needs a pipeline (--scheduler); pass --force to try", "needs a pipeline (scheduler=); pass force=True to try"),
    ("skip it with --no-end-to-end", "skip it with end_to_end=False"),
    ("lower --height/--width or --steps, raise --max-minutes, or pass --force",
     "lower height=/width= or steps=, raise max_minutes=, or pass force=True"),
    ("--executor ray needs Ray", "--executor ray needs Ray"),  # no option of these functions
])
def test_messages_spell_options_as_keyword_arguments(cli, python):
    assert inspector.python_api.python_spelling(cli) == python


def test_the_command_line_runs_through_the_python_functions(monkeypatch, cli, tmp_path):
    """One code path: ``ldm-inspector inspect`` and ``profile`` call ``python_api.run_command``."""
    calls = []
    real = inspector.python_api.run_command

    def spy(command, target, options, **kwargs):
        calls.append((command, target, options["steps"]))
        return real(command, target, options, **kwargs)

    monkeypatch.setattr(inspector.python_api, "run_command", spy)
    result = cli("inspect", "tiny-sd", "--weights", "meta", "--steps", "2", "--json", str(tmp_path / "a.json"))
    assert result.code == 0, result.err
    assert calls == [("inspect", "tiny-sd", 2)]
    assert inspector.load_run(tmp_path / "a.json").inputs.steps == 2
