"""profile: trustworthy timing, per-step breakdown with step 0, faults kept per component."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from inspector import hookimpl
from inspector.measure.timing import measure, summarize
from inspector.measure.tracing import PipelineTracer
from inspector.plugin.context import ProfileOptions
from inspector.plugin.host import Host
from inspector.profiling import run_profile
from inspector.sources.loading import SourceSpec, load

FAST = dict(steps=4, warmup=0, repeats=2, e2e_repeats=1)


def profile(host, **overrides):
    options = ProfileOptions(**{**FAST, **overrides})
    return run_profile(host, SourceSpec(model="tiny-sd"), options)


@pytest.fixture(scope="module")
def run(host, tmp_path_factory):
    out = tmp_path_factory.mktemp("profile") / "image.png"
    return profile(host, image_out=str(out))


class FakeClock:
    """``time.perf_counter`` for ``inspector.measure.timing``: advances only when a timed call says so,
    so timing tests check the arithmetic exactly instead of a wall-clock window."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    import types

    import inspector.measure.timing

    fake = FakeClock()
    monkeypatch.setattr(inspector.measure.timing, "time", types.SimpleNamespace(perf_counter=fake.perf_counter))
    return fake


def test_measure_times_a_known_call(clock):
    durations = iter([0.09, 0.07, 0.05, 0.05, 0.04, 0.06, 0.05, 0.05, 0.05, 0.05])  # cold, warm-up, repeats
    result = measure(lambda: clock.sleep(next(durations)), "cpu", warmup=1, repeats=5)
    assert result.timing.count == 5 and len(result.timing.samples) == 5
    assert result.timing.cold == pytest.approx(90.0)
    assert sorted(result.timing.samples)[0] == pytest.approx(40.0)
    assert result.timing.median == pytest.approx(50.0) and result.timing.max == pytest.approx(60.0)
    assert result.memory.kind == "cpu_rss"


def test_summary_statistics():
    stats = summarize([4.0, 1.0, 3.0, 2.0], 9.0)
    assert (stats.median, stats.min, stats.max, stats.count, stats.cold) == (2.5, 1.0, 4.0, 4, 9.0)
    assert stats.iqr == pytest.approx(1.5)


def test_plugin_measurement_of_a_sleeping_component(host, clock):
    class Sleeper:
        @hookimpl(tryfirst=True)
        def profile_component(self, context, component, result):
            if component.name != "tokenizer":
                return None
            context.measure(result, "sleep", lambda: clock.sleep(0.02), calls_per_run=1)
            return True

    h = Host.default(entrypoints=False)
    h.register(Sleeper(), name="sleeper")
    run = run_profile(h, SourceSpec(model="tiny-sd"), ProfileOptions(**{**FAST, "end_to_end": False}))
    tok = run.component("tokenizer")
    assert [m.name for m in tok.measurements] == ["sleep"]
    assert tok.timing.median == pytest.approx(20.0)


def test_every_component_is_timed_and_json_has_the_additions(run, tmp_path):
    for name in ("text_encoder", "unet", "vae", "scheduler", "tokenizer"):
        comp = run.component(name)
        assert comp.timing and comp.timing.count >= 1 and comp.timing.median > 0, name
        assert comp.memory is not None and comp.memory.kind == "cpu_rss", name
        assert not comp.errors, comp.errors
    unet = run.component("unet").measurements[0]
    assert unet.flops == run.component("unet").flops
    assert unet.flops_per_second == pytest.approx(unet.flops / (unet.timing.median / 1000))
    assert unet.fraction_of_peak is None  # no peak is known for a CPU
    from inspector.reports import json_report

    path = tmp_path / "run.json"
    json_report.write(run, path)
    data = json.loads(path.read_text())
    assert data["command"] == "profile"
    comp = {c["name"]: c for c in data["components"]}
    assert {"median", "iqr", "min", "count", "cold"} <= set(comp["unet"]["timing"])
    assert {"peak", "kind"} <= set(comp["unet"]["memory"])
    assert len(data["pipeline"]["steps"]) == data["pipeline"]["num_steps"]
    assert data["profile"]["device"] == "cpu" and data["profile"]["timer"] == "perf_counter"


def test_every_step_including_step_0(run, host):
    p = run.pipeline
    scheduler = load(SourceSpec(model="tiny-sd"), host.presets()).pipe.scheduler
    scheduler.set_timesteps(4)
    assert [s.index for s in p.steps] == list(range(len(scheduler.timesteps)))
    assert [s.timestep for s in p.steps] == [float(t) for t in scheduler.timesteps]
    assert p.steps[0].denoiser > 0 and p.steps[0].total >= p.steps[0].denoiser + p.steps[0].scheduler
    parts = p.text_encoding + p.prepare + sum(s.total for s in p.steps) + (p.vae_decode or 0)
    assert parts <= p.total
    assert p.vae_decode > 0 and p.it_per_s > 0
    assert p.bare_total > 0 and p.overhead_ratio == pytest.approx(p.total / p.bare_total)


def test_profiled_image_equals_a_bare_call(run, host):
    p = run.pipeline
    assert p.identical_output is True
    pipe = load(SourceSpec(model="tiny-sd"), host.presets()).pipe
    pipe.set_progress_bar_config(disable=True)
    bare = pipe(prompt=[run.inputs.prompt], num_inference_steps=4, guidance_scale=7.5, height=128, width=128,
                output_type="np", generator=torch.Generator("cpu").manual_seed(0)).images[0]
    from PIL import Image

    saved = np.asarray(Image.open(p.image))
    assert saved.shape == (128, 128, 3)
    assert np.array_equal(saved, (np.clip(bare, 0, 1) * 255).round().astype("uint8"))


def test_tracer_leaves_nothing_behind(host):
    pipe = load(SourceSpec(model="tiny-sd"), host.presets()).pipe
    pipe.set_progress_bar_config(disable=True)
    tracer = PipelineTracer(pipe, "cpu")
    with pytest.raises(RuntimeError):
        tracer.call(lambda: (_ for _ in ()).throw(RuntimeError("fails mid-call")))
    assert "step" not in vars(pipe.scheduler) and "decode" not in vars(pipe.vae)
    assert "prepare_latents" not in vars(pipe)
    assert not pipe.unet._forward_hooks and not pipe.unet._forward_pre_hooks
    assert not pipe.text_encoder._forward_hooks


def test_scheduler_table_lists_every_compatible(run):
    sched = run.component("scheduler")
    table = next(v for v in sched.views if v.title == "Compatible schedulers")
    names = [row[0] for row in table.rows]
    from diffusers import PNDMScheduler

    expected = sorted({c.__name__ for c in PNDMScheduler().compatibles} | {"PNDMScheduler"})
    assert names == expected
    in_use = [row for row in table.rows if row[7]]
    assert [r[0] for r in in_use] == ["PNDMScheduler"]
    ok = [row for row in table.rows if not row[8]]
    assert len(ok) >= len(expected) - 2  # nearly all run with SD's config; failures carry their error


def test_out_of_memory_in_one_component_is_recorded_and_the_rest_runs(host):
    class Exhausting:
        @hookimpl(tryfirst=True)
        def profile_component(self, context, component, result):
            if component.name != "unet":
                return None

            def allocate():
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

            assert context.measure(result, "forward", allocate) is None
            return True

    h = Host.default(entrypoints=False)
    h.register(Exhausting(), name="exhausting")
    run = run_profile(h, SourceSpec(model="tiny-sd"), ProfileOptions(**FAST))
    unet = run.component("unet")
    assert unet.errors and unet.errors[0]["kind"] == "oom" and "out of memory" in unet.errors[0]["error"]
    assert unet.measurements[0].error and unet.timing is None
    for name in ("vae", "text_encoder", "scheduler"):
        assert run.component(name).timing is not None
    assert run.pipeline is not None and run.pipeline.num_steps == 5


def test_ctrl_c_keeps_what_was_measured(host, cli, tmp_path, monkeypatch):
    class Interrupting:
        @hookimpl(tryfirst=True)
        def profile_component(self, component):
            if component.name == "unet":
                raise KeyboardInterrupt

    # as if the signal handler had seen Ctrl-C (a plugin's own KeyboardInterrupt is only its failure)
    monkeypatch.setattr("inspector.plugin.host.real_interrupt", lambda: True)
    h = Host.default(entrypoints=False)
    h.register(Interrupting(), name="interrupting")
    run = run_profile(h, SourceSpec(model="tiny-sd"), ProfileOptions(**FAST))
    assert run.interrupted is True and run.pipeline is None
    names = [c.name for c in run.components]
    assert names[:4] == ["vae", "text_encoder", "tokenizer", "unet"]
    assert run.component("vae").timing is not None


@pytest.mark.profile  # the CLI, run in-process, profiles
def test_ctrl_c_in_the_cli_writes_partial_json_and_exits_130(cli, tmp_path, monkeypatch):
    def interrupted(ctx, run):
        raise KeyboardInterrupt

    monkeypatch.setattr("inspector.profiling.profile_pipeline", interrupted)
    out = tmp_path / "partial.json"
    result = cli("profile", "--steps", "2", "--repeats", "1", "--warmup", "0", "--json", str(out))
    assert result.code == 130
    data = json.loads(out.read_text())
    assert data["interrupted"] is True and data["pipeline"] is None
    assert {c["name"] for c in data["components"] if c["timing"]} >= {"unet", "vae", "text_encoder"}


def test_scheduler_and_attention_can_be_swapped(host):
    run = profile(host, scheduler="EulerDiscreteScheduler", attention="eager", end_to_end=False)
    assert run.profile.scheduler == "EulerDiscreteScheduler"
    assert run.component("scheduler").class_name == "EulerDiscreteScheduler"
    assert run.profile.attention == "AttnProcessor"
    assert run.component("unet").details["attention_processors"] == ["AttnProcessor"]


@pytest.mark.parametrize("args, message", [
    (["profile", "--dtype", "float16", "--device", "cpu"], "--allow-cpu-float16"),
    (["profile", "--scheduler", "NoSuchScheduler", "--steps", "2"], "unknown scheduler 'NoSuchScheduler'"),
    (["profile", "--image", "/no/such.png"], "--image /no/such.png: no such file"),
    (["profile", "--repeats", "0"], "--repeats"),
    (["profile", "sd15", "--weights", "meta"], "--weights"),
])
def test_bad_profile_input(cli, args, message):
    result = cli(*args)
    assert result.code == 2 and message in result.err
    assert len(result.err.strip().splitlines()) == 1


def test_unreadable_image_is_refused(cli, tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    result = cli("profile", "--image", str(bad))
    assert result.code == 2 and "not a readable image" in result.err


def test_vae_round_trip_on_a_given_image(host, tmp_path):
    from PIL import Image

    from inspector.plugins.vae import test_image

    path = tmp_path / "in.png"
    Image.fromarray((test_image(64, 96) * 255).astype("uint8")).save(path)
    run = profile(host, image_path=str(path), end_to_end=False)
    vae = run.component("vae")
    assert vae.details["image"] == str(path)
    assert np.isfinite(vae.details["psnr_db"])
    assert [m.name for m in vae.measurements][:2] == ["encode", "decode"]
    assert "decode (tiled)" in [m.name for m in vae.measurements]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_timing_matches_cuda_events():
    a = torch.randn(4096, 4096, device="cuda")
    result = measure(lambda: a @ a, "cuda", warmup=2, repeats=10)
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    a @ a
    end.record()
    torch.cuda.synchronize()
    assert result.timing.median == pytest.approx(start.elapsed_time(end), rel=0.3)
    assert result.memory.kind == "cuda_allocated"
