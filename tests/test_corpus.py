"""Every pipeline class of the corpus (``tests/corpus.py``): inspected and profiled through the CLI,
with the shapes the pipeline itself passes, and instrumentation that changes nothing.

The tiny pipelines are built and saved once per test session (``corpus_folders``); the CLI runs
load them back from those folders, as a user's ``save_pretrained`` folder would be.
"""
from __future__ import annotations

import inspect
import json
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import corpus

NAMES = sorted(corpus.CORPUS)
#: Frames for the video pipelines: few, so the suite stays cheap.
FRAMES = {"animatediff": 2, "wan": 5}


def size_args(name: str) -> list[str]:
    entry = corpus.CORPUS[name]
    args = ["--height", str(entry.height), "--width", str(entry.width), "--steps", "2", "--guidance-scale", "5"]
    if name in FRAMES:
        args += ["--frames", str(FRAMES[name])]
    return args


@pytest.fixture(scope="session")
def corpus_pipes():
    """Each corpus pipeline, built on first use and kept for the session."""
    built: dict[str, object] = {}

    def get(name: str):
        if name not in built:
            built[name] = corpus.build(name)
        return built[name]

    return get


@pytest.fixture(scope="session")
def corpus_folders(tmp_path_factory, corpus_pipes):
    """Each corpus pipeline written by ``save_pretrained`` (safetensors), on first use."""
    root = tmp_path_factory.mktemp("corpus")
    saved: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in saved:
            folder = root / name
            corpus_pipes(name).save_pretrained(folder, safe_serialization=True)
            saved[name] = folder
        return saved[name]

    return get


def test_corpus_covers_the_pipeline_classes_the_issue_names():
    classes = {entry.pipeline_class for entry in corpus.CORPUS.values()}
    assert len(classes) >= 14
    assert {"StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline", "StableDiffusionInpaintPipeline",
            "StableDiffusionXLPipeline", "StableDiffusion3Pipeline", "FluxPipeline", "PixArtAlphaPipeline",
            "StableDiffusionControlNetPipeline", "StableDiffusionXLControlNetPipeline",
            "LatentConsistencyModelPipeline", "AnimateDiffPipeline", "KandinskyV22Pipeline",
            "KandinskyV22PriorPipeline", "WanPipeline", "SanaPipeline", "AuraFlowPipeline", "Lumina2Pipeline",
            "StableCascadePriorPipeline"} <= classes


@pytest.mark.parametrize("name", NAMES)
def test_inspect_through_the_cli(cli, corpus_folders, tmp_path, name):
    out = tmp_path / "run.json"
    res = cli("inspect", str(corpus_folders(name)), *size_args(name), "--json", str(out))
    assert res.code == 0, res.err
    run = json.loads(out.read_text())
    assert run["model"]["pipeline_class"] == corpus.CORPUS[name].pipeline_class
    assert run["recording"]["calls"], run["notes"]
    for comp in run["components"]:
        assert not comp["errors"], (comp["name"], comp["errors"])
        called = any(key == comp["name"] or key.startswith(comp["name"] + ".") for key in run["recording"]["calls"])
        if called:  # every module the pipeline calls is captured on the pipeline's own inputs
            assert comp["flops"], comp["name"]
            assert comp["inputs_source"].startswith("recorded"), comp["name"]


@pytest.mark.parametrize("name", NAMES)
def test_profile_through_the_cli(cli, corpus_folders, tmp_path, name):
    out = tmp_path / "run.json"
    res = cli("profile", str(corpus_folders(name)), *size_args(name), "--warmup", "0", "--repeats", "1",
              "--e2e-repeats", "1", "--json", str(out))
    assert res.code == 0, res.err
    run = json.loads(out.read_text())
    p = run["pipeline"]
    assert p["error"] is None
    assert p["identical_output"] is True
    assert p["num_steps"] >= 1 and p["steps"][0]["denoiser"] > 0
    for comp in run["components"]:
        assert not comp["errors"], (comp["name"], comp["errors"])
        if comp["flops"] and comp["kind"] not in ("tokenizer", "scheduler"):
            assert comp["timing"] is not None, comp["name"]


def _own_calls(pipe, kwargs):
    """What the pipeline passes to its denoiser and text encoders, seen by independent hooks."""
    seen: dict[str, list] = {}
    handles = []
    for name, comp in pipe.components.items():
        if isinstance(comp, torch.nn.Module):
            def pre(_m, args, kw, _name=name):
                if _name not in seen:
                    from inspector.measure.capture import iter_tensors

                    tensors = list(iter_tensors(list(args))) + list(iter_tensors(kw))
                    seen[_name] = [list(t.shape) for _, t in tensors]
            handles.append(comp.register_forward_pre_hook(pre, with_kwargs=True))
    try:
        with torch.no_grad():
            pipe(**kwargs, generator=torch.Generator().manual_seed(0))
    finally:
        for h in handles:
            h.remove()
    return seen


@pytest.mark.parametrize("name", ["lcm", "sd3", "pixart", "auraflow", "sdxl", "wan", "kandinsky22", "controlnet"])
def test_shapes_match_the_pipelines_own_calls(host, corpus_pipes, name):
    from inspector.inspection import inspect_loaded
    from inspector.measure.calls import call_kwargs
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import LoadedPipeline

    entry = corpus.CORPUS[name]
    pipe = corpus_pipes(name)
    options = InspectOptions(height=entry.height, width=entry.width, steps=2, guidance_scale=5.0,
                             frames=FRAMES.get(name))
    run = inspect_loaded(host, LoadedPipeline(pipe=pipe, source=name, kind="folder", weights="random"), options)
    kwargs, _ = call_kwargs(pipe, prompt=options.prompt, negative_prompt="", steps=2, guidance_scale=5.0,
                            height=entry.height, width=entry.width, frames=FRAMES.get(name))
    seen = _own_calls(pipe, kwargs)
    assert seen
    for comp_name, shapes in seen.items():
        inspected = [i.shape for i in run.component(comp_name).inputs]
        assert inspected == shapes, comp_name


def test_known_shape_rules(host, corpus_pipes):
    """The cases the issue found wrong: sequence lengths and batches are the pipeline's."""
    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import LoadedPipeline

    def inspected(name):
        entry = corpus.CORPUS[name]
        return inspect_loaded(host, LoadedPipeline(pipe=corpus_pipes(name), source=name, kind="folder",
                                                   weights="random"),
                              InspectOptions(height=entry.height, width=entry.width, steps=2, guidance_scale=5.0))

    sd3 = inspected("sd3")
    assert sd3.component("text_encoder_3").inputs[0].shape == [1, 256]  # max_sequence_length, not 512
    assert sd3.component("transformer").details["text_sequence_length"] == 77 + 256
    pixart = inspected("pixart")
    assert pixart.component("text_encoder").inputs[0].shape == [1, 120]
    auraflow = inspected("auraflow")
    assert auraflow.component("text_encoder").inputs[0].shape == [1, 256]
    lcm = inspected("lcm")
    unet = lcm.component("unet")
    assert unet.details["cfg_batch"] == 1 and unet.details["cfg"] is False  # guidance is an embedding
    assert lcm.component("text_encoder").details["calls_per_run"] == 1


@pytest.mark.parametrize("name", ["sd", "lcm", "flux"])
def test_instrumented_equals_bare_for_every_compatible_scheduler(corpus_pipes, name):
    from inspector.measure.calls import call_kwargs, pipeline_output
    from inspector.measure.tracing import PipelineTracer

    entry = corpus.CORPUS[name]
    pipe = corpus_pipes(name)
    original = pipe.scheduler
    kwargs, _ = call_kwargs(pipe, prompt="a horse", negative_prompt="", steps=2, guidance_scale=5.0,
                            height=entry.height, width=entry.width)

    def call():
        with torch.no_grad():
            return pipeline_output(pipe(**kwargs, generator=torch.Generator().manual_seed(0)))

    tried = []
    try:
        for cls in sorted({original.__class__, *original.compatibles}, key=lambda c: c.__name__):
            try:
                pipe.scheduler = cls.from_config(original.config)
                bare = call()
            except Exception:  # noqa: BLE001 - a scheduler this pipeline cannot run bare is out of scope
                continue
            tracer = PipelineTracer(pipe, "cpu")
            instrumented = tracer.call(call)
            assert np.array_equal(bare, instrumented, equal_nan=True), cls.__name__
            assert tracer.trace.scheduler, cls.__name__
            tried.append(cls.__name__)
    finally:
        pipe.scheduler = original
    assert tried
    if name == "sd":  # SD's compatibles list holds over ten schedulers; most run on this pipeline
        assert len(tried) >= 10, tried


def test_wrappers_keep_the_wrapped_signature(corpus_pipes):
    from inspector.measure.recording import Recorder
    from inspector.measure.tracing import PipelineTracer

    pipe = corpus_pipes("lcm")
    before = {name: inspect.signature(getattr(pipe.components[c], name))
              for c, name in (("scheduler", "step"), ("vae", "decode"), ("vae", "encode"))}
    for installer in (PipelineTracer(pipe, "cpu"), Recorder(pipe)):
        with installer:
            for (c, name), sig in zip((("scheduler", "step"), ("vae", "decode"), ("vae", "encode")), before.values()):
                assert getattr(pipe.components[c], name).__wrapped__ is not None
                assert inspect.signature(getattr(pipe.components[c], name)) == sig
                assert "generator" in inspect.signature(pipe.scheduler.step).parameters
        assert "step" not in vars(pipe.scheduler)  # removed afterwards


def test_end_to_end_failure_keeps_measurements(cli, corpus_folders, tmp_path, monkeypatch):
    """A pipeline call that raises: components measured, JSON written, pipeline.error set, exit 3."""
    def broken(self, *args, **kwargs):
        raise RuntimeError("boom")

    out = tmp_path / "run.json"
    folder = corpus_folders("sd")
    from inspector.measure import tracing

    real = tracing.profile_pipeline

    def failing(ctx, run):
        monkeypatch.setattr(type(ctx.pipe), "__call__", broken)
        return real(ctx, run)

    monkeypatch.setattr("inspector.profiling.profile_pipeline", failing)
    res = cli("profile", str(folder), *size_args("sd"), "--warmup", "0", "--repeats", "1", "--e2e-repeats", "1",
              "--json", str(out))
    assert res.code == 3, res.err
    assert "boom" in res.err and "kept" in res.err
    run = json.loads(out.read_text())
    assert "RuntimeError: boom" in run["pipeline"]["error"]
    unet = next(c for c in run["components"] if c["name"] == "unet")
    assert unet["timing"]["median"] > 0


def test_dedicated_views(host, corpus_pipes):
    """ControlNet residuals and scale, motion frames, prior embeddings, DC-AE compression, Gemma's
    real sequence length."""
    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import LoadedPipeline

    def inspected(name):
        entry = corpus.CORPUS[name]
        return inspect_loaded(host, LoadedPipeline(pipe=corpus_pipes(name), source=name, kind="folder",
                                                   weights="random"),
                              InspectOptions(height=entry.height, width=entry.width, steps=2, guidance_scale=5.0,
                                             frames=FRAMES.get(name)))

    controlnet = inspected("controlnet").component("controlnet")
    assert controlnet.kind == "controlnet" and controlnet.details["conditioning_scale"] == 1.0
    residuals = next(v for v in controlnet.views if v.tab == "ControlNet")
    assert len(residuals.rows) == len(controlnet.outputs) > 2
    unet = inspected("animatediff").component("unet")
    assert unet.details["frames"] == 2 and unet.details["motion_module_groups"] > 0
    prior = inspected("kandinsky22-prior").component("prior")
    assert prior.flops and any(v.tab == "Prior" for v in prior.views)
    sana = inspected("sana")
    vae = sana.component("vae")
    assert vae.class_name == "AutoencoderDC" and vae.details["latent_channels"] == 4
    assert vae.details["spatial_compression"] == 32 // vae.details["latent_shape"][-1]
    encoder = sana.component("text_encoder")
    assert encoder.details["model_type"] == "gemma2"
    assert encoder.details["sequence_length"] == encoder.inputs[0].shape[-1]


def test_motion_module_table_matches_the_pipelines_own_call(host, corpus_pipes):
    """The Motion tab's table, one row per motion-module group, against hooks on a real call of the
    pipeline: the frames its UNet was passed, and the sequence each group's temporal attention saw."""
    from inspector.inspection import inspect_loaded
    from inspector.measure.calls import call_kwargs
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import LoadedPipeline

    frames = 3  # neither the suite's 2 nor AnimateDiff's default 16
    entry = corpus.CORPUS["animatediff"]
    pipe = corpus_pipes("animatediff")
    run = inspect_loaded(host, LoadedPipeline(pipe=pipe, source="animatediff", kind="folder", weights="random"),
                         InspectOptions(height=entry.height, width=entry.width, steps=2, guidance_scale=5.0,
                                        frames=frames))
    unet = run.component("unet")
    table = next(v for v in unet.views if v.tab == "Motion")
    assert table.kind == "table" and table.columns[3] == "sequence length (frames)"
    rows = {row[0]: row for row in table.rows}

    samples: list = []
    attention: dict[str, list[int]] = {}
    handles = [pipe.unet.register_forward_pre_hook(
        lambda _m, args, kw: samples.append(list((kw.get("sample") if "sample" in kw else args[0]).shape)),
        with_kwargs=True)]
    groups = {name: mod for name, mod in pipe.unet.named_modules() if name.endswith("motion_modules")}
    for name, group in groups.items():
        def seen(_m, args, _n=name):  # returns None: the call goes on unchanged
            attention.setdefault(_n, list(args[0].shape))
        handles.append(group[0].transformer_blocks[0].attn1.register_forward_pre_hook(seen))
    kwargs, _ = call_kwargs(pipe, prompt=InspectOptions().prompt, negative_prompt="", steps=2, guidance_scale=5.0,
                            height=entry.height, width=entry.width, frames=frames)
    try:
        with torch.no_grad():
            pipe(**kwargs, generator=torch.Generator().manual_seed(0))
    finally:
        for handle in handles:
            handle.remove()

    batch, passed_frames = samples[0][0], samples[0][2]
    assert passed_frames == frames == unet.details["frames"]
    assert set(rows) == set(groups) and len(rows) == 5
    for name, (positions, sequence, channels) in attention.items():
        _, modules, parameters, table_frames, tokens, table_channels = rows[name]
        assert table_frames == sequence == passed_frames, name
        assert tokens == positions // batch, name
        assert table_channels == channels, name
        assert modules == len(groups[name]) and parameters == sum(p.numel() for p in groups[name].parameters())
    # execution order: down blocks, mid block, up blocks
    assert [row[0] for row in table.rows][2] == "mid_block.motion_modules"


class _Tables(HTMLParser):
    """Each ``<details class="view">`` of an HTML report: its summary text and its body rows' cells."""

    def __init__(self):
        super().__init__()
        self.views: list[list] = []  # [summary, rows]
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "details" and "view" in (dict(attrs).get("class") or "").split():
            self.views.append(["", []])
        elif not self.views:
            return
        elif tag == "summary":
            self._in = "summary"
        elif tag == "tr":
            self.views[-1][1].append([])
        elif tag == "td":
            self._in = "td"
            self.views[-1][1][-1].append("")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "summary":
            self.views[-1][0] += data
        elif self._in == "td":
            self.views[-1][1][-1][-1] += data


@pytest.mark.parametrize("name, component, title", [("controlnet", "controlnet", "Residuals per block"),
                                                    ("animatediff", "unet", "Motion modules")])
def test_dedicated_views_reach_every_front_end(cli, corpus_folders, tmp_path, monkeypatch, name, component, title):
    """The terminal (``--details``), JSON, CSV and HTML all carry the dedicated table, row for row."""
    import csv

    from inspector.results.units import human_count

    monkeypatch.delenv("COLUMNS", raising=False)
    out = tmp_path
    res = cli("inspect", str(corpus_folders(name)), *size_args(name), "--details", "--json", str(out / "run.json"),
              "--html", str(out / "run.html"), "--csv", str(out / "csv"))
    assert res.code == 0, res.err
    comp = next(c for c in json.loads((out / "run.json").read_text())["components"] if c["name"] == component)
    view = next(v for v in comp["views"] if v["title"] == title)
    rows = view["rows"]
    assert view["kind"] == "table" and len(rows) >= 5

    def text(cell):
        return human_count(cell) if isinstance(cell, int) and not isinstance(cell, bool) else str(cell)

    # terminal: the title, then one grid line per row with every cell
    shown = res.out[res.out.index(title):]
    lines = [[c.strip() for c in line.split("│")[1:-1]] for line in shown.splitlines() if line.startswith("│")]
    for row in rows:
        assert [text(c) for c in row] in lines, row
    # CSV: one file for the view, the same rows
    csv_path = out / "csv" / f"view_{component}_{title.lower().replace(' ', '_')}.csv"
    with csv_path.open(newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    assert table[0] == view["columns"] and [r[0] for r in table[1:]] == [str(r[0]) for r in rows]
    # HTML: a details block titled after the view, with a body row per row
    parser = _Tables()
    parser.feed((out / "run.html").read_text(encoding="utf-8"))
    html_rows = next(cells for summary, cells in parser.views if summary.startswith(title))
    body = [r for r in html_rows if r]
    assert [r[0] for r in body] == [text(r[0]) for r in rows]


def test_sd15_safety_checker_is_inspected_on_meta(host):
    from inspector.inspection import run_inspect
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import SourceSpec

    run = run_inspect(host, SourceSpec(model="sd15"), InspectOptions(steps=2, height=256, width=256))
    checker = run.component("safety_checker")
    assert checker.plugin == "safety_checker" and checker.parameters.total == 303_981_588
    assert checker.flops and checker.details["clip_input_shape"] == [1, 3, 224, 224]
    assert run.component("feature_extractor").present


@pytest.mark.slow
def test_sd15_end_to_end_profile_times_the_safety_checker(cli, tmp_path):
    """Random-weight SD 1.5 at 64x64, one step: the safety checker runs in the pipeline call and is timed."""
    out = tmp_path / "sd15.json"
    res = cli("profile", "sd15", "--height", "64", "--width", "64", "--steps", "1", "--warmup", "0", "--repeats", "1",
              "--e2e-repeats", "1", "--json", str(out))
    assert res.code == 0, res.err
    run = json.loads(out.read_text())
    assert run["pipeline"]["safety_checker"] > 0 and run["pipeline"]["identical_output"] is True
    checker = next(c for c in run["components"] if c["name"] == "safety_checker")
    assert checker["timing"]["median"] > 0 and checker["inputs_source"].startswith("recorded")
