"""Figures that sit side by side belong to the same call, and counts that differ from what was asked say why."""
from __future__ import annotations

import pytest

from inspector.plugin.context import ProfileOptions
from inspector.profiling import run_profile
from inspector.sources.loading import SourceSpec


@pytest.fixture(scope="module")
def profiled(host, tmp_path_factory):
    out = tmp_path_factory.mktemp("truths") / "image.png"
    return run_profile(host, SourceSpec(model="tiny-sd"),
                       ProfileOptions(steps=3, warmup=0, repeats=1, e2e_repeats=1, image_out=str(out)))


def test_pndm_says_why_it_runs_one_more_timestep(profiled):
    scheduler = profiled.component("scheduler")
    assert scheduler.class_name == "PNDMScheduler" and len(scheduler.details["timesteps"]) == 4
    note = scheduler.details["timesteps_note"]
    assert note.startswith("PNDMScheduler runs 4 timesteps for --steps 3: it repeats timestep")
    assert note in profiled.notes  # a run note: every front end shows it
    assert profiled.pipeline.num_steps == 4


def test_no_note_when_the_count_matches():
    from inspector.plugins.scheduler import timesteps_note

    assert timesteps_note("DDIMScheduler", 3, [667, 334, 1]) is None
    assert "repeats timestep 961" in timesteps_note("PNDMScheduler", 2, [981, 961, 961])


def test_vae_time_goes_with_decode_flops_everywhere(profiled, tmp_path):
    import pandas as pd
    from rich.console import Console

    from inspector.cli.terminal import summary_table
    from inspector.reports import csv_report, html_report

    vae = profiled.component("vae")
    call = vae.timed_call()
    assert call.name == "decode" and call.timing == vae.timing
    assert call.flops == vae.details["decode_flops"] < vae.flops  # flops: encode + decode
    row = pd.read_csv(csv_report.write(profiled, tmp_path / "csv")[0]).set_index("component").loc["vae"]
    assert row["timed_call"] == "decode" and row["timed_call_flops"] == call.flops
    assert row["flops"] == vae.flops
    console = Console(record=True, width=250)
    console.print(summary_table(profiled))
    line = next(text for text in console.export_text().splitlines() if text.startswith("│ vae "))
    assert "decode" in line
    html = html_report.render(profiled)
    assert "<th>timed call</th>" in html


def test_timed_call_of_a_saved_run_matches(profiled):
    from inspector.results.records import RunResult, timed_call

    data = profiled.to_dict()
    saved = RunResult.from_dict(data)
    for comp, comp_dict in zip(saved.components, data["components"]):
        live = comp.timed_call()
        raw = timed_call(comp_dict)
        assert (live.name if live else None) == (raw["name"] if raw else None)
    assert saved.component("unet").timed_call().flops == saved.component("unet").flops
