"""Pytest fixtures for plugin authors, installed as a pytest plugin (entry point ``pytest11``).

::
    def test_my_plugin(ldm_plugin_host, ldm_run):
        host = ldm_plugin_host(my_plugin)            # built-ins + only the plugin under test
        run = ldm_run(host, "inspect")               # the tiny model, in a second or two
        assert run.component("unet").metrics["my_metric"] > 0

Fixtures:

``ldm_tiny_pipeline``
    The tiny Stable Diffusion pipeline with seeded random weights (a ``LoadedPipeline``; its
    ``.pipe`` is the diffusers pipeline). Built once per test session.
``ldm_plugin_host``
    A factory: ``ldm_plugin_host(plugin, name=None, builtins=True)`` returns a host with the
    built-in plugins and ``plugin``, and no entry-point plugins (so other installed plugins cannot
    interfere). It fails the test if the plugin does not register cleanly.
``ldm_run``
    A helper: ``ldm_run(host, "inspect" | "profile", model="tiny-sd", weights=None, **options)``
    runs the command in-process and returns the :class:`~inspector.results.records.RunResult`.
    Profile runs default to 2 steps, no warm-up, one repeat.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pytest

from inspector.inspection import run_inspect
from inspector.plugin.context import InspectOptions
from inspector.plugin.host import Host
from inspector.profiling import prepare_profile, run_profile
from inspector.sources.loading import SourceSpec, load

if TYPE_CHECKING:
    from inspector.plugin.preset import Weights


@pytest.fixture(scope="session")
def ldm_tiny_pipeline() -> Any:
    return load(SourceSpec(model="tiny-sd"), Host.default(entrypoints=False).presets())


@pytest.fixture
def ldm_plugin_host() -> Callable[..., Any]:
    def make(plugin: Any, name: str | None = None, builtins: bool = True) -> Host:
        host = Host.default(builtins=builtins, entrypoints=False)
        plugin_name = name or str(getattr(plugin, "__name__", type(plugin).__name__))
        if not host.register(plugin, name=plugin_name):
            pytest.fail(f"plugin {plugin_name} did not register: {host.records[plugin_name].error}")
        return host

    return make


@pytest.fixture
def ldm_run() -> Callable[..., Any]:
    def run(host: Any, command: str = "inspect", model: str = "tiny-sd", weights: Weights | None = None,
            **options: Any) -> Any:
        spec = SourceSpec(model=model, weights=weights)
        if command == "inspect":
            return run_inspect(host, spec, InspectOptions(**{"steps": 2, **options}))
        if command == "profile":
            defaults = {"steps": 2, "warmup": 0, "repeats": 1, "e2e_repeats": 1}
            spec, profile_options = prepare_profile(host, model, weights=weights, device="cpu",
                                                    **{**defaults, **options})
            return run_profile(host, spec, profile_options)
        raise ValueError(f"unknown command {command!r}: use 'inspect' or 'profile'")

    return run
