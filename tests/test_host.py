"""The plugin host isolates plugins: a broken one is reported by name and the others still run."""
from __future__ import annotations

import sys
import types
from importlib import metadata

import pytest

from inspector import hookimpl
from inspector.inspection import run_inspect
from inspector.plugin.context import InspectOptions
from inspector.plugin.host import BUILTIN_PLUGINS, Host
from inspector.sources.loading import SourceSpec

OPTIONS = InspectOptions(steps=4)


@pytest.fixture
def fresh_host():
    return Host.default(entrypoints=False)


def complete(run):
    """Every present model component got its full built-in result."""
    for name in ("unet", "vae", "text_encoder"):
        comp = run.component(name)
        assert comp.flops and comp.layers and comp.outputs, name
    assert run.component("tokenizer").details["prompt_ids"]
    assert run.component("scheduler").details["timesteps"]


def test_builtins_load_through_the_plugin_path(fresh_host):
    records = {r.name: r for r in fresh_host.plugin_records()}
    assert set(records) == {m.rsplit(".", 1)[-1] for m in BUILTIN_PLUGINS}
    assert all(r.source == "builtin" and r.error is None for r in records.values())
    assert records["unet"].hooks == ["component_tabs", "inspect_component", "profile_component"]


def test_plugin_raising_in_a_hook_is_reported_and_others_run(fresh_host):
    class Exploding:
        @hookimpl(tryfirst=True)
        def inspect_component(self, context, component):
            raise RuntimeError(f"boom on {component.name}")

        @hookimpl
        def augment_component(self, result):
            raise ValueError("augment failed")

    class Adding:
        @hookimpl
        def augment_component(self, component, result):
            result.details["seen_by_adding"] = component.name

    fresh_host.register(Exploding(), name="exploding")
    fresh_host.register(Adding(), name="adding")
    run = run_inspect(fresh_host, SourceSpec(model="tiny-sd"), OPTIONS)
    complete(run)
    unet = run.component("unet")
    errors = {(e["plugin"], e["hook"]) for e in unet.errors}
    assert errors == {("exploding", "inspect_component"), ("exploding", "augment_component")}
    assert "boom on unet" in unet.errors[0]["error"]
    assert unet.details["seen_by_adding"] == "unet"
    assert unet.plugin == "unet"


def test_failing_builtin_falls_back_to_the_next_plugin(fresh_host, monkeypatch):
    import inspector.plugins.vae as vae_plugin

    def broken(context, component):
        if component.name == "vae":
            raise MemoryError("simulated")

    monkeypatch.setattr(vae_plugin.inspect_component, "__code__", broken.__code__)
    run = run_inspect(fresh_host, SourceSpec(model="tiny-sd"), OPTIONS)
    vae = run.component("vae")
    assert vae.plugin == "generic" and vae.parameters.total > 0
    assert vae.errors[0]["plugin"] == "vae" and "MemoryError" in vae.errors[0]["error"]
    assert run.component("unet").flops  # the others are complete


def test_registration_that_fails_validation_leaves_nothing_behind(fresh_host):
    class BadArgs:
        @hookimpl
        def inspect_component(self, context, component, no_such_argument):
            return None

    before = set(fresh_host.pm.list_name_plugin())
    assert fresh_host.register(BadArgs(), name="badargs") is False
    assert "no_such_argument" in fresh_host.records["badargs"].error
    assert fresh_host.pm.get_plugin("badargs") is None
    assert set(fresh_host.pm.list_name_plugin()) == before
    complete(run_inspect(fresh_host, SourceSpec(model="tiny-sd"), OPTIONS))


def test_plugin_needing_a_newer_api_is_skipped(fresh_host):
    future = types.SimpleNamespace(LDM_INSPECTOR_API=99)
    assert fresh_host.register(future, name="future") is False
    assert "needs plugin API 99" in fresh_host.records["future"].error


class FakeDist:
    name = "acme-plugins"
    version = "1.2.3"


def fake_entry_points(monkeypatch, eps):
    monkeypatch.setattr(metadata, "entry_points", lambda group=None: [e for e in eps if e.group == group])


def make_ep(name, value):
    ep = metadata.EntryPoint(name=name, value=value, group="ldm_inspector")
    try:
        ep = ep._for(FakeDist())  # attach the distribution, as installed entry points have
    except AttributeError:  # pragma: no cover - older Pythons
        pass
    return ep


def test_broken_entry_point_is_reported_and_loading_goes_on(monkeypatch):
    good = types.ModuleType("acme_good_plugin")

    @hookimpl
    def augment_component(result):
        result.details["acme"] = True

    good.augment_component = augment_component
    monkeypatch.setitem(sys.modules, "acme_good_plugin", good)
    fake_entry_points(monkeypatch, [make_ep("broken", "acme_missing_module"), make_ep("good", "acme_good_plugin")])
    host = Host.default()
    records = {r.name: r for r in host.plugin_records()}
    assert records["broken"].source == "entrypoint"
    assert records["broken"].error.startswith("import failed: ModuleNotFoundError")
    assert records["good"].error is None and records["good"].version == "1.2.3"
    assert records["good"].distribution == "acme-plugins"
    run = run_inspect(host, SourceSpec(model="tiny-sd"), OPTIONS)
    assert run.component("unet").details["acme"] is True
    assert {p.name for p in run.plugins} >= {"broken", "good", "unet"}


def test_environment_blocks_and_disables_plugins(monkeypatch):
    monkeypatch.setitem(sys.modules, "acme_good_plugin", types.ModuleType("acme_good_plugin"))
    fake_entry_points(monkeypatch, [make_ep("good", "acme_good_plugin"), make_ep("other", "acme_good_plugin")])
    monkeypatch.setenv("LDM_INSPECTOR_BLOCK_PLUGINS", "vae, good")
    names = {r.name for r in Host.default().plugin_records()}
    assert "vae" not in names and "good" not in names and "other" in names
    monkeypatch.delenv("LDM_INSPECTOR_BLOCK_PLUGINS")
    monkeypatch.setenv("LDM_INSPECTOR_LOAD_PLUGINS", "good")
    names = {r.name for r in Host.default().plugin_records()}
    assert "good" in names and "other" not in names and "unet" in names
    monkeypatch.setenv("LDM_INSPECTOR_DISABLE_PLUGIN_AUTOLOAD", "1")
    names = {r.name for r in Host.default().plugin_records()}
    assert "good" not in names and "unet" in names


def test_blocked_builtin_component_falls_to_generic(monkeypatch):
    monkeypatch.setenv("LDM_INSPECTOR_BLOCK_PLUGINS", "unet")
    host = Host.default(entrypoints=False)
    run = run_inspect(host, SourceSpec(model="tiny-sd"), OPTIONS)
    unet = run.component("unet")
    assert unet.plugin == "generic" and unet.parameters.total == 1_427_012
    # the generic report still runs the unet on the pipeline's own recorded call
    assert unet.flops and unet.inputs_source.startswith("recorded")
    assert not [v for v in unet.views if v.title == "Blocks"]  # the unet plugin's views are gone with it


def test_duplicate_preset_is_rejected_by_the_host(fresh_host):
    from pathlib import Path

    from inspector.plugin.preset import Preset

    class Dup:
        @hookimpl
        def register_presets(self, register):
            register(Preset(name="tiny-sd", path=Path("/nowhere")))

    fresh_host.register(Dup(), name="dup")
    presets = fresh_host.presets()
    assert presets["tiny-sd"].path != Path("/nowhere")
    assert "already registered" in fresh_host.records["dup"].error


def test_hooks_see_the_callers_context_variables():
    """Hooks run in their own thread (for the time limit) but in a copy of the caller's context."""
    import contextvars

    current = contextvars.ContextVar("current", default="unset")

    class Reads:
        @hookimpl
        def augment_component(self, result):
            result.details["seen"] = current.get()

    host = Host.default(entrypoints=False)
    host.register(Reads(), name="reads")
    current.set("the caller's value")
    run = run_inspect(host, SourceSpec(model="tiny-sd", weights="meta"), OPTIONS)
    assert run.component("unet").details["seen"] == "the caller's value"
