"""Everything a plugin author imports, in one module: the plugin surface of ldm-inspector.

Built-in plugins (``inspector.plugins.*``) import from here and nowhere else, exactly as third-party
plugins do; ``tests/test_plugin_api.py`` keeps it so. The guide is ``docs/plugins.md``::

    from inspector.api import View, hookimpl

    @hookimpl
    def augment_component(context, component, result):
        result.views.append(View(title="My figure", kind="note", text="..."))

Names here are the stable surface (versioned by :data:`API_VERSION`); the modules they come from
may move. Nothing here imports torch, diffusers or a front end.
"""
from __future__ import annotations

from inspector.errors import describe_exception, is_out_of_memory
from inspector.measure.activations import window
from inspector.measure.capture import iter_tensors, tensor_infos
from inspector.measure.recording import RecordedCall
from inspector.plugin.context import Component, InspectContext, ProfileContext, planned_scheduler
from inspector.plugin.hookspecs import API_VERSION, hookimpl
from inspector.plugin.preset import Preset, Weights
from inspector.plugin.views import json_safe, tabs_from_views
from inspector.results.blocks import add_block_timing, top_level_blocks
from inspector.results.records import (
                                       ComponentResult,
                                       LayerRecord,
                                       Measurement,
                                       MemoryStats,
                                       RunResult,
                                       Tab,
                                       TensorInfo,
                                       TimingStats,
                                       View,
)
from inspector.sources.limits import text_length
from inspector.sources.preset_files import materialize_preset, shipped_presets

__all__ = [
    # hooks
    "API_VERSION", "hookimpl",
    # what a hook is handed
    "Component", "InspectContext", "ProfileContext", "RecordedCall", "planned_scheduler",
    # what a hook gives back
    "ComponentResult", "LayerRecord", "Measurement", "MemoryStats", "Preset", "RunResult", "Tab", "TensorInfo",
    "TimingStats", "View", "Weights",
    # helpers
    "add_block_timing", "describe_exception", "is_out_of_memory", "iter_tensors", "json_safe",
    "materialize_preset", "shipped_presets", "tabs_from_views", "tensor_infos", "text_length", "top_level_blocks",
    "window",
]
