"""One public surface for plugin authors (``inspector.api``), and one record of every hook call."""
from __future__ import annotations

import ast
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

import inspector.api as api
from inspector.plugin.host import HookCall, Host

ROOT = Path(__file__).resolve().parents[1]
#: what plugin authors read and copy: the built-in plugins, the guide, the examples
PLUGIN_SOURCES = [*sorted((ROOT / "plugins").glob("*.py")), *sorted((ROOT / "examples").rglob("*.py"))]


def _python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def _inspector_imports(source: str) -> list[str]:
    """``module: name`` for every import of ours in ``source`` (at any depth)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "inspector":
            found += [f"{node.module}: {alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [f"{alias.name}: *" for alias in node.names if alias.name.split(".")[0] == "inspector"]
    return found


def _allowed(entry: str) -> bool:
    module, name = entry.split(": ")
    return module == "inspector.api" or (module == "inspector" and name == "hookimpl")


@pytest.mark.parametrize("path", PLUGIN_SOURCES + [ROOT / "docs" / "plugins.md"], ids=lambda p: p.name)
def test_plugins_and_the_guide_import_only_the_public_surface(path):
    text = path.read_text(encoding="utf-8")
    sources = _python_blocks(text) if path.suffix == ".md" else [text]
    # a plugin's tests may read saved runs back; everything a plugin itself needs comes from the surface
    imports = [i for s in sources for i in _inspector_imports(s) if not i.startswith("inspector.reports")]
    assert [i for i in imports if not _allowed(i)] == []


def test_every_public_name_is_there_and_the_surface_imports_no_heavy_library():
    assert sorted(api.__all__) == sorted(set(api.__all__))
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    code = ("import sys, inspector.api; print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'textual', "
            "'click', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("option", ["wrapper", "hookwrapper"])
def test_hook_wrappers_are_refused_at_registration_with_one_line(option):
    host = Host()
    plugin = types.ModuleType("wrapping")

    @api.hookimpl(**{option: True})
    def component_tabs(component, run):
        yield

    plugin.component_tabs = component_tabs
    before = set(host.pm.list_name_plugin())
    assert host.register(plugin, name="wrapping") is False
    error = host.records["wrapping"].error
    assert "component_tabs is a hook wrapper" in error and "\n" not in error
    assert host.pm.get_plugin("wrapping") is None and set(host.pm.list_name_plugin()) == before


def _run() -> types.SimpleNamespace:
    return types.SimpleNamespace(components=[])  # the hooks here never look at the run


def test_every_hook_call_is_one_record_with_its_duration():
    host = Host()
    calls: list[HookCall] = []
    host.tracer = calls.append
    good, bad, invalid = (types.ModuleType(n) for n in ("good", "bad", "invalid"))

    @api.hookimpl
    def component_tabs(component, run):
        return [api.Tab(title="T", views=[])]

    @api.hookimpl
    def raising_tabs(component, run):
        raise ValueError("no tabs today")

    @api.hookimpl
    def invalid_tabs(component, run):
        return "not a list of tabs"

    good.component_tabs, bad.component_tabs, invalid.component_tabs = component_tabs, raising_tabs, invalid_tabs
    for plugin in (good, bad, invalid):
        assert host.register(plugin, name=plugin.__name__, source="entrypoint")
    usage = host.usage()
    failed: list[HookCall] = []
    tabs = host.component_tabs(types.SimpleNamespace(name="unet"), _run(), on_error=failed.append)
    assert [t.title for result in tabs for t in result] == ["T"]
    assert {c.plugin: c.kind for c in calls} == {"good": "ok", "bad": "exception", "invalid": "exception"}
    assert all(c.hook == "component_tabs" and c.seconds >= 0 for c in calls)
    assert sorted(c.plugin for c in failed) == ["bad", "invalid"]
    assert failed[0].failure().plugin == failed[0].plugin and "no tabs today" in next(
        c for c in failed if c.plugin == "bad").failure().error
    records = {r.name: r for r in host.plugin_records(since=usage)}
    assert records["good"].calls == records["bad"].calls == 1
    assert records["good"].seconds == pytest.approx(next(c.seconds for c in calls if c.plugin == "good"))
    # the host's own record of the run is a copy: a later call does not change a finished run's figures
    host.component_tabs(types.SimpleNamespace(name="unet"), _run(), on_error=failed.append)
    assert records["good"].calls == 1 and host.plugin_records(since=usage)[0].calls == 2


def test_one_out_of_memory_test_for_every_kind_of_out_of_memory():
    torch = pytest.importorskip("torch")
    assert api.is_out_of_memory(MemoryError()) and api.is_out_of_memory(torch.OutOfMemoryError("CUDA out of memory"))
    assert api.is_out_of_memory(RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: not enough "
                                             "memory: you tried to allocate 1099511627776 bytes."))
    assert not api.is_out_of_memory(RuntimeError("shape mismatch")) and not api.is_out_of_memory(ValueError("memory"))
