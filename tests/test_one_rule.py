"""One rule in one place: typed host methods per hook, one failure dataclass, schema 2 with
version-1 runs still loading, views that pick their tab by a field."""
from __future__ import annotations

import json

import pytest

from inspector.plugin import hookspecs
from inspector.results.records import HookFailure, RunResult
from inspector.results.serialize import migrate


def test_one_typed_method_per_hook_with_firstresult_from_the_spec(host):
    for name in hookspecs.hook_names():
        assert callable(getattr(host, name)), name
        spec = getattr(hookspecs, name).ldm_inspector_spec
        assert host.is_firstresult(name) is bool(spec.get("firstresult")), name
    assert host.is_firstresult("inspect_component") and not host.is_firstresult("augment_component")


def test_hook_failure_is_one_dataclass_that_reads_like_the_old_dict():
    from inspector.errors import HookTimeout

    failure = HookFailure.from_exception("p", "inspect_component", ValueError("bad"))
    assert failure["plugin"] == "p" and failure.get("kind") == "exception" and "bad" in failure["error"]
    assert HookFailure.from_exception("p", "h", MemoryError()).kind == "oom"
    assert HookFailure.from_exception("p", "h", HookTimeout("slow")).kind == "timeout"
    with pytest.raises(KeyError):
        failure["nope"]


def test_failures_round_trip_through_json(host):
    from inspector.inspection import run_inspect
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import SourceSpec

    class Exploding:
        @staticmethod
        @hookspecs.hookimpl
        def augment_component(component):
            if component.name == "vae":
                raise RuntimeError("boom")

    from inspector.plugin.host import Host

    h = Host.default(entrypoints=False)
    assert h.register(Exploding(), name="exploding")
    run = run_inspect(h, SourceSpec(model="tiny-sd"), InspectOptions(steps=2))
    vae = run.component("vae")
    assert vae.errors == [HookFailure("exploding", "augment_component", vae.errors[0].error, "exception")]
    again = RunResult.from_dict(json.loads(json.dumps(run.to_dict())))
    assert isinstance(again.component("vae").errors[0], HookFailure)


def test_version_1_runs_migrate(tmp_path):
    from inspector.reports import json_report

    v1 = {"schema_version": 1,
          "model": {"source": "tiny-sd", "pipeline_class": "StableDiffusionPipeline", "weights": "random"},
          "environment": {"python": "3", "torch": "2", "diffusers": "0", "transformers": "5", "device": "cpu",
                          "dtype": "float32"},
          "inputs": {"height": 64, "width": 64, "batch_size": 1, "prompt": "x"},
          "components": [{"name": "unet", "class_name": "UNet2DConditionModel", "library": "diffusers",
                          "present": True, "views": [{"title": "Blocks", "columns": ["a"], "rows": [[1]]},
                                                     {"title": "Mine", "kind": "note", "text": "t"}],
                          "errors": [{"plugin": "unet", "hook": "profile_component", "error": "oom", "kind": "oom"}]}],
          "pipeline": {"steps": [{"index": 0, "timestep": 999.0, "unet": 5.0, "scheduler": 1.0, "other": 0.5,
                                  "total": 6.5}]}}
    path = tmp_path / "v1.json"
    path.write_text(json.dumps(v1))
    run = json_report.load(path)
    assert run.schema_version == 2
    assert run.pipeline.steps[0].denoiser == 5.0
    unet = run.component("unet")
    assert [v.tab for v in unet.views] == ["Blocks", ""]
    assert unet.errors[0].kind == "oom"
    assert migrate(v1)["schema_version"] == 2 and v1["schema_version"] == 1  # the input is not changed
    future = dict(v1, schema_version=3)
    path.write_text(json.dumps(future))
    with pytest.raises(Exception, match="schema version 3"):
        json_report.load(path)


def test_views_pick_their_tab_by_field():
    from inspector.plugin.views import tabs_from_views
    from inspector.results.records import ComponentResult, View

    comp = ComponentResult(name="x", class_name="X", library=None, present=True, views=[
        View(title="A", tab="One"), View(title="B"), View(title="C", tab="Two"), View(title="Renamed", tab="One")])
    tabs = tabs_from_views(comp, lead={"Two": [View(title="lead", kind="note")]})
    assert [(t.title, [v.title for v in t.views]) for t in tabs] == [("Two", ["lead", "C"]), ("One", ["A", "Renamed"])]


def test_patches_keep_signatures_and_leave_objects_exactly_as_found():
    """Recording, tracing and trace spans wrap methods through one helper: the wrapper keeps the
    signature pipelines inspect, and removal restores an instance attribute or deletes the one it
    added, so the object's ``__dict__`` is what it was."""
    import inspect as pyinspect

    import torch

    from inspector.measure.patches import Patches

    class Scheduler:
        def step(self, model_output, timestep, sample, generator=None, return_dict=True):
            return model_output + timestep

    def own_decode(z, return_dict=True):
        return z * 2

    scheduler, vae = Scheduler(), Scheduler()
    vae.decode = own_decode  # an instance attribute before we came
    before = (dict(vars(scheduler)), dict(vars(vae)))
    module = torch.nn.Linear(2, 2)
    seen: list[str] = []
    patches = Patches()
    patches.wrap(scheduler, "step", lambda original, a, k: seen.append("step") or original(*a, **k))
    patches.wrap(vae, "decode", lambda original, a, k: seen.append("decode") or original(*a, **k))
    patches.hook(module, lambda m, a, k: seen.append("pre"), lambda m, a, k, out: seen.append("post"))
    assert "generator" in pyinspect.signature(scheduler.step).parameters
    assert list(pyinspect.signature(vae.decode).parameters) == ["z", "return_dict"]
    assert scheduler.step(1, 2, None) == 3 and vae.decode(3) == 6
    module(torch.ones(1, 2))
    assert seen == ["step", "decode", "pre", "post"]
    patches.remove()
    patches.remove()  # twice is harmless
    assert (dict(vars(scheduler)), dict(vars(vae))) == before and vae.decode is own_decode
    seen.clear()
    module(torch.ones(1, 2))
    assert scheduler.step(1, 2, None) == 3 and seen == []


def test_recording_on_meta_reuses_an_output_for_the_same_shapes_and_still_counts_the_call():
    """On meta, a forward's output depends only on shapes, dtypes and plain values: the second call
    with the same ones reuses the first output (the negative prompt, the next step), a call with
    other shapes runs; every call is recorded. With real weights nothing is reused."""
    import torch

    from inspector.measure.recording import Recorder

    class Counting(torch.nn.Linear):
        runs = 0

        def forward(self, x, scale=1.0):
            type(self).runs += 1
            return super().forward(x) * scale

    class Pipe:
        def __init__(self, device):
            with torch.device(device):
                self.components = {"unet": Counting(4, 4)}

        def __call__(self, device):
            unet = self.components["unet"]
            with torch.device(device):
                a = unet(torch.ones(2, 4))
                b = unet(torch.ones(2, 4))  # same shapes and values: reused on meta
                c = unet(torch.ones(3, 4))  # other shape: runs
                d = unet(torch.ones(2, 4), scale=2.0)  # other plain value: runs
            return a, b, c, d

    for device, runs in (("meta", 3), ("cpu", 4)):
        Counting.runs = 0
        pipe = Pipe(device)
        recorder = Recorder(pipe, reuse_outputs=device == "meta")
        with recorder:
            a, b, c, d = pipe(device)
        assert Counting.runs == runs and len(recorder.recording.calls["unet"]) == 4
        assert (a is b) == (device == "meta") and c.shape == (3, 4) and d.shape == (2, 4)
        assert "forward" not in vars(pipe.components["unet"])  # the wrapper is gone
