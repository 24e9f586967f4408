"""Every pipeline class of the corpus (``tests/corpus.py``): inspected and profiled through the CLI,
with the shapes the pipeline itself passes, and instrumentation that changes nothing.

The tiny pipelines are built and saved once per test session (``corpus_folders``); the CLI runs
load them back from those folders, as a user's ``save_pretrained`` folder would be.
"""
from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
import corpus  # noqa: E402

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
                    from inspector.capture import iter_tensors

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
    from inspector.calls import call_kwargs
    from inspector.context import InspectOptions
    from inspector.inspection import inspect_loaded
    from inspector.loading import LoadedPipeline

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
    from inspector.context import InspectOptions
    from inspector.inspection import inspect_loaded
    from inspector.loading import LoadedPipeline

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
    from inspector.calls import call_kwargs, pipeline_output
    from inspector.tracing import PipelineTracer

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
            except Exception:  # a scheduler this pipeline cannot run bare is out of scope
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
    from inspector.recording import Recorder
    from inspector.tracing import PipelineTracer

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
    from inspector import tracing

    real = tracing.profile_pipeline

    def failing(ctx, run):
        monkeypatch.setattr(type(ctx.pipe), "__call__", broken)
        return real(ctx, run)

    monkeypatch.setattr(tracing, "profile_pipeline", failing)
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
    from inspector.context import InspectOptions
    from inspector.inspection import inspect_loaded
    from inspector.loading import LoadedPipeline

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


def test_sd15_safety_checker_is_inspected_on_meta(host):
    from inspector.context import InspectOptions
    from inspector.inspection import run_inspect
    from inspector.loading import SourceSpec

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
