"""Full-size architecture presets on meta: exact published parameter counts and pipeline shapes."""
from __future__ import annotations

import json

import pytest

from inspector.inspection import run_inspect
from inspector.plugin.context import InspectOptions
from inspector.sources.loading import SourceSpec

PUBLISHED = {
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    "sd21": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
    "sdxl": {"unet": 2_567_463_684, "vae": 83_653_863, "text_encoder": 123_060_480,
             "text_encoder_2": 694_659_840},
}


def outputs(comp):
    return {o.name: o.shape for o in comp.outputs}


@pytest.mark.parametrize("preset", sorted(PUBLISHED))
def test_parameter_counts_are_exact(host, preset):
    run = run_inspect(host, SourceSpec(model=preset), InspectOptions(height=512, width=512, steps=4))
    assert run.model.weights == "meta"
    for name, count in PUBLISHED[preset].items():
        comp = run.component(name)
        assert comp.parameters.total == count, name
        assert comp.parameters.trainable == count
        # float32 parameters, plus buffers (CLIP's int64 position ids)
        assert comp.parameters.by_dtype["float32"] == count * 4
        assert comp.parameters.bytes == sum(comp.parameters.by_dtype.values())
        assert comp.flops and comp.flops > 0
        assert not comp.errors


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_sd21_cli_json_matches_reference_table(cli, tmp_path):
    out = tmp_path / "out.json"
    result = cli("inspect", "sd21", "--height", "512", "--width", "512", "--json", str(out))
    assert result.code == 0, result.err
    data = json.loads(out.read_text())
    comps = {c["name"]: c for c in data["components"]}
    assert comps["unet"]["parameters"]["total"] == 865_910_724
    assert comps["vae"]["parameters"]["total"] == 83_653_863
    assert comps["text_encoder"]["parameters"]["total"] == 340_387_840
    te = {o["name"]: o["shape"] for o in comps["text_encoder"]["outputs"]}
    assert te["last_hidden_state"] == [1, 77, 1024]
    unet = {o["name"]: o["shape"] for o in comps["unet"]["outputs"]}
    # classifier-free guidance doubles the batch: shown, not hidden
    assert comps["unet"]["details"]["cfg_batch"] == 2
    assert unet["sample"] == [2, 4, 64, 64]
    assert comps["unet"]["details"]["latent_shape"] == [1, 4, 64, 64]
    vae = {o["name"]: o["shape"] for o in comps["vae"]["outputs"]}
    assert vae["latent"] == [1, 4, 64, 64]
    assert vae["decoded"] == [1, 3, 512, 512]
    # the UNet's FLOPs include attention matmuls: torchinfo's 209.52 G mult-adds (419 GFLOPs per image)
    # leave them out, so ours must be well above that
    assert comps["unet"]["flops"] / 2 > 2 * 209.52e9


def test_sdxl_conditioning_and_two_text_encoders(host):
    run = run_inspect(host, SourceSpec(model="sdxl"), InspectOptions(steps=4))
    assert (run.inputs.height, run.inputs.width) == (1024, 1024)  # native size
    unet = run.component("unet")
    names = {i.name for i in unet.inputs}
    assert {"added_cond_kwargs.text_embeds", "added_cond_kwargs.time_ids"} <= names
    assert outputs(unet)["sample"] == [2, 4, 128, 128]
    assert outputs(run.component("text_encoder_2"))["text_embeds"] == [1, 1280]
    assert run.component("text_encoder").details["pipeline_uses"] == "hidden_states[-2]"


def test_sd15_per_layer_table_has_shapes_and_flops(host):
    run = run_inspect(host, SourceSpec(model="sd15"), InspectOptions(steps=4))
    unet = run.component("unet")
    layers = {layer.name: layer for layer in unet.layers}
    conv_in = layers["conv_in"]
    assert conv_in.input_shapes == [[2, 4, 64, 64]] and conv_in.output_shapes == [[2, 320, 64, 64]]
    assert conv_in.parameters == 4 * 320 * 9 + 320
    # Conv FLOPs: 2 * in * out * k*k * H*W per image
    assert conv_in.flops == 2 * 2 * 4 * 320 * 9 * 64 * 64
    attn = layers["down_blocks.0.attentions.0.transformer_blocks.0.attn1"]
    assert attn.depth == 7 and attn.calls == 1
    # children's FLOPs add up to no more than their parent's
    block = layers["down_blocks.0"]
    children = [layer for layer in unet.layers
                if layer.name.startswith("down_blocks.0.") and layer.depth == block.depth + 1]
    assert sum(c.flops or 0 for c in children) <= block.flops
