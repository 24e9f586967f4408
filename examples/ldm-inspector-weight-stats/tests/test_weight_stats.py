"""Tests for the example plugin, written the way a plugin author would, with ldm-inspector's fixtures."""
from __future__ import annotations

import math

import ldm_inspector_weight_stats as plugin


def test_metrics_on_random_weights(ldm_plugin_host, ldm_run):
    host = ldm_plugin_host(plugin, name="weight_stats")
    run = ldm_run(host, "inspect")
    unet = run.component("unet")
    assert 0 < unet.metrics["weight_abs_mean"] < 1
    assert 0 <= unet.metrics["weight_near_zero_pct"] <= 100
    table = next(v for v in unet.views if v.title == plugin.TITLE)
    assert {row[0] for row in table.rows} >= {"conv_in", "down_blocks", "up_blocks", "mid_block"}
    assert sum(row[1] for row in table.rows) == unet.parameters.total
    assert "weight_stats" in {p.name for p in run.plugins}


def test_meta_weights_say_why_there_is_no_value(ldm_plugin_host, ldm_run):
    run = ldm_run(ldm_plugin_host(plugin, name="weight_stats"), "inspect", model="tiny-sd", weights="meta")
    unet = run.component("unet")
    assert unet.metrics == {"weight_abs_mean": "not measurable on meta",
                            "weight_near_zero_pct": "not measurable on meta"}
    assert any("meta" in note for note in unet.notes)
    (tab,) = plugin.component_tabs(unet, run)
    assert tab.views[0].text == "weights: not measurable on meta"


def test_statistics_helper():
    import torch

    count, mean, largest, near_zero = plugin.statistics([torch.tensor([0.0, 0.5, -1.0, 0.0005])])
    assert count == 4 and math.isclose(mean, 0.375125, rel_tol=1e-6) and largest == 1.0 and near_zero == 50.0
