"""Pipelines beyond SD 1/2: SDXL, SD3, Flux (tiny presets run, full presets are exact), unknown ones."""
from __future__ import annotations

import json

import pytest
import torch

from inspector.errors import SourceError
from inspector.inspection import run_inspect
from inspector.plugin.context import InspectOptions, ProfileOptions
from inspector.profiling import run_profile
from inspector.sources.loading import SourceSpec

PUBLISHED = {
    "sd3": {"transformer": 2_028_328_000, "text_encoder": 123_650_304, "text_encoder_2": 694_659_840,
            "text_encoder_3": 4_762_310_656, "vae": 83_819_683},
    "flux": {"transformer": 11_901_408_320, "text_encoder": 123_060_480, "text_encoder_2": 4_762_310_656,
             "vae": 83_819_683},
}


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_full_size_presets_match_published_counts(host, preset):
    run = run_inspect(host, SourceSpec(model=preset), InspectOptions(steps=4, height=512, width=512))
    for name, count in PUBLISHED[preset].items():
        comp = run.component(name)
        assert comp.parameters.total == count, name
        assert comp.flops and not comp.errors, name
    assert run.component("transformer").plugin == "transformer"


@pytest.mark.parametrize("preset, denoiser, batch", [
    ("tiny-sdxl", "unet", 2), ("tiny-sd3", "transformer", 2), ("tiny-flux", "transformer", 1)])
def test_tiny_presets_inspect_and_profile(host, preset, denoiser, batch):
    run = run_profile(host, SourceSpec(model=preset), ProfileOptions(steps=2, repeats=1, warmup=0, e2e_repeats=1))
    assert run.notes and all(n.startswith("inputs recorded from one 2-step call") for n in run.notes)
    for comp in run.components:
        assert not comp.errors, (comp.name, comp.errors)
        if comp.present and comp.kind in ("unet", "transformer", "text_encoder", "vae"):
            assert comp.timing is not None and comp.flops, comp.name
    den = run.component(denoiser)
    assert den.outputs[0].shape[0] == batch  # CFG doubles SDXL and SD3, not the guidance-distilled Flux
    p = run.pipeline
    assert p.error is None and p.identical_output is True and p.num_steps >= 2
    assert p.steps[0].index == 0 and p.steps[0].denoiser > 0


def test_sdxl_specifics(host):
    run = run_inspect(host, SourceSpec(model="tiny-sdxl"), InspectOptions(steps=2))
    unet = run.component("unet")
    assert unet.details["addition_embed_type"] == "text_time"
    assert {i.name for i in unet.inputs} >= {"added_cond_kwargs.text_embeds", "added_cond_kwargs.time_ids"}
    assert run.component("vae").details["force_upcast"] is True
    assert run.component("text_encoder_2").class_name == "CLIPTextModelWithProjection"
    assert run.component("tokenizer_2").details["pad_token"] == "!"


def test_flux_and_sd3_sizes_are_multiples_of_16(cli):
    for preset in ("tiny-sd3", "tiny-flux"):
        result = cli("inspect", preset, "--height", "136", "--width", "136")
        assert result.code == 2 and "multiple of 16" in result.err


def test_t5_tokenizer_is_a_labelled_stand_in(host):
    run = run_inspect(host, SourceSpec(model="tiny-flux"), InspectOptions(steps=2))
    tok = run.component("tokenizer_2")
    assert "stand-in T5 vocabulary" in tok.notes[0]
    assert len(tok.details["prompt_ids"]) <= 512
    assert run.component("text_encoder_2").outputs[0].shape == [1, 512, 64]


def test_unknown_pipeline_gets_the_generic_report(host, tmp_path):
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(sample_size=8, in_channels=3, out_channels=3, block_out_channels=(8, 16),
                       down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                       norm_num_groups=8, layers_per_block=1)
    DDPMPipeline(unet=unet, scheduler=DDPMScheduler()).save_pretrained(tmp_path / "ddpm")
    run = run_inspect(host, SourceSpec(model=str(tmp_path / "ddpm")), InspectOptions(steps=2))
    comp = run.component("unet")
    assert comp.plugin == "generic" and comp.parameters.total == sum(p.numel() for p in unet.parameters())
    # no plugin knows UNet2DModel: the generic report captures it on the pipeline's own call
    assert comp.flops and comp.inputs_source.startswith("recorded: DDPMPipeline's own call of unet")
    assert comp.inputs[0].shape == [1, 3, 8, 8]
    assert run.notes == [n for n in run.notes if n.startswith("inputs recorded from one 2-step call of DDPMPipeline")]


def test_custom_pipeline_code_is_never_run(host, tmp_path):
    folder = tmp_path / "custom"
    folder.mkdir()
    marker = tmp_path / "code-ran"
    (folder / "model_index.json").write_text(json.dumps({"_class_name": ["pipeline", "EvilPipeline"],
                                                         "_diffusers_version": "0.42.1"}))
    (folder / "pipeline.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                        "from diffusers import DiffusionPipeline\n"
                                        "class EvilPipeline(DiffusionPipeline):\n    pass\n")
    with pytest.raises(SourceError):
        run_inspect(host, SourceSpec(model=str(folder)), InspectOptions(steps=2))
    assert not marker.exists()
