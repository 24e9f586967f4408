"""The plugin guide's last example (recorded calls, replayed with timing hooks) runs as documented."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "attention_share.py"


def load_example():
    spec = importlib.util.spec_from_file_location("attention_share", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guide_shows_the_example_file_verbatim():
    guide = (ROOT / "docs" / "plugins.md").read_text()
    assert EXAMPLE.read_text() in guide
    last_heading = [line for line in guide.splitlines() if line.startswith("### ")][-1]
    assert last_heading == "### Example: attention share"


@pytest.mark.profile  # ldm_run(host, "profile")
def test_attention_share_under_profile(ldm_plugin_host, ldm_run):
    plugin = load_example()
    host = ldm_plugin_host(plugin, name="attention_share")
    run = ldm_run(host, "profile", steps=2)
    unet = run.component("unet")
    share = unet.metrics["attention_share"]
    assert 0.0 < share < 1.0
    view = next(v for v in unet.views if v.title == "Time in attention (last replay)")
    assert view.tab == "Attention" and view.rows
    assert all(".attn" in name and ms >= 0 for name, ms in view.rows)
    assert not unet.errors and "attention_share" not in run.component("vae").metrics


def test_hooks_are_removed(ldm_tiny_pipeline):
    from types import SimpleNamespace

    from inspector.measure.recording import RecordedCall
    from inspector.plugin.context import Component

    plugin = load_example()
    unet = ldm_tiny_pipeline.pipe.unet
    modules = [m for _, m in plugin.attention_modules(unet)]
    before = [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules]
    import torch

    call = RecordedCall("unet", "forward", (torch.randn(2, 4, 16, 16), 10),
                        {"encoder_hidden_states": torch.randn(2, 77, 32)}, 0)
    context = SimpleNamespace(measure=True, on_meta=False, device="cpu", options=SimpleNamespace(repeats=1),
                              recorded_calls=lambda name, method: [call])
    result = SimpleNamespace(metrics={}, views=[], notes=[])
    plugin.augment_component(context, Component("unet", unet), result)
    assert 0 < result.metrics["attention_share"] < 1
    assert [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in modules] == before


def test_attention_share_does_nothing_under_inspect(ldm_plugin_host, ldm_run):
    host = ldm_plugin_host(load_example(), name="attention_share")
    run = ldm_run(host, "inspect")
    assert "attention_share" not in run.component("unet").metrics
