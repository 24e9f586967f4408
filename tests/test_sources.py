"""Every source kind goes through the same loading and inspection code."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from inspector.errors import SourceError
from inspector.inspection import inspect_loaded, run_inspect
from inspector.plugin.context import InspectOptions
from inspector.sources.loading import SourceSpec, load

from .conftest import make_hf_cache
from .ldm_format import to_ldm_state_dict

OPTIONS = InspectOptions(steps=4)


def summary(run):
    """What must not depend on where the pipeline came from: counts, shapes, FLOPs."""
    return {
        c.name: (c.present, c.class_name, c.parameters and c.parameters.total, c.flops,
                 [(o.name, o.shape) for o in c.outputs],
                 [(layer.name, layer.input_shapes, layer.output_shapes, layer.parameters, layer.flops)
                  for layer in c.layers])
        for c in run.components
    }


@pytest.fixture(scope="module")
def tiny_run(host):
    return run_inspect(host, SourceSpec(model="tiny-sd"), OPTIONS)


def test_default_model_is_tiny_with_random_weights(host, tiny_run):
    assert tiny_run.model.source == "tiny-sd"
    assert tiny_run.model.weights == "random"
    assert tiny_run.model.pipeline_class == "StableDiffusionPipeline"
    present = {c.name for c in tiny_run.components if c.present}
    assert present == {"vae", "text_encoder", "tokenizer", "unet", "scheduler"}


def test_absent_components_are_listed(tiny_run):
    absent = {c.name: c for c in tiny_run.components if not c.present}
    assert set(absent) >= {"safety_checker", "feature_extractor"}
    checker = absent["safety_checker"]
    assert checker.class_name == "StableDiffusionSafetyChecker"  # what the slot expects
    assert checker.parameters is None and checker.layers == [] and checker.flops is None


def test_meta_and_random_weights_give_identical_counts_and_shapes(host, tiny_run):
    meta = run_inspect(host, SourceSpec(model="tiny-sd", weights="meta"), OPTIONS)
    assert meta.model.weights == "meta"
    assert meta.component("unet").details["device"] == "meta"
    assert tiny_run.component("unet").details["device"] == "cpu"
    assert summary(meta) == summary(tiny_run)


def test_saved_folder_round_trips(host, tiny_saved, tiny_run):
    assert (tiny_saved / "unet" / "diffusion_pytorch_model.safetensors").exists()
    run = run_inspect(host, SourceSpec(model=str(tiny_saved)), OPTIONS)
    assert run.model.kind == "folder" and run.model.weights == "pretrained"
    assert summary(run) == summary(tiny_run)


def test_saved_folder_on_meta_reads_no_weights(host, tiny_saved, tmp_path, tiny_run):
    configs_only = tmp_path / "configs-only"
    shutil.copytree(tiny_saved, configs_only, ignore=shutil.ignore_patterns("*.safetensors"))
    run = run_inspect(host, SourceSpec(model=str(configs_only), weights="meta"), OPTIONS)
    assert run.model.weights == "meta"
    assert summary(run) == summary(tiny_run)


def test_single_file_checkpoint(host, presets, tmp_path, tiny_run, cli):
    from safetensors.torch import save_file

    original = load(SourceSpec(model="tiny-sd"), presets).pipe
    path = tmp_path / "tiny model ü.safetensors"  # spaces and non-ASCII in the path
    save_file(to_ldm_state_dict(original), str(path))
    loaded = load(SourceSpec(model=str(path), arch="tiny-sd"), presets)
    assert loaded.kind == "single_file" and loaded.weights == "pretrained"
    assert loaded.source == str(path)  # the user's string, not a Path: it goes into the JSON
    for name in ("unet", "vae", "text_encoder"):
        ours, theirs = getattr(original, name).state_dict(), getattr(loaded.pipe, name).state_dict()
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), name
    # the tokenizer reads the preset's shared vocabulary (transformers builds an empty one without it)
    prompt = "a photograph of an astronaut riding a horse"
    assert len(loaded.pipe.tokenizer) == len(original.tokenizer) == 982
    assert loaded.pipe.tokenizer(prompt).input_ids == original.tokenizer(prompt).input_ids
    assert summary(inspect_loaded(host, loaded, OPTIONS)) == summary(tiny_run)
    # the README's example with an output added: the run is written as JSON
    out = tmp_path / "out.json"
    result = cli("inspect", str(path), "--arch", "tiny-sd", "--steps", "2", "--json", str(out))
    assert result.code == 0, result.err
    model = json.loads(out.read_text(encoding="utf-8"))["model"]
    assert (model["source"], model["kind"], model["preset"]) == (str(path), "single_file", "tiny-sd")


def test_single_file_needs_arch(presets, tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"")
    with pytest.raises(SourceError, match="--arch"):
        load(SourceSpec(model=str(path)), presets)


def test_repo_id_from_local_hf_cache(host, presets, tiny_saved, tmp_path, monkeypatch, tiny_run):
    import huggingface_hub.constants as hf_constants

    cache = make_hf_cache(tmp_path / "hub", tiny_saved, "acme/tiny-sd")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    run = run_inspect(host, SourceSpec(model="acme/tiny-sd"), OPTIONS)
    assert run.model.kind == "hub_cache"
    assert summary(run) == summary(tiny_run)
    with pytest.raises(SourceError, match="not in the local Hugging Face cache"):
        load(SourceSpec(model="acme/absent"), presets)


def test_inspection_leaves_the_model_as_found(host, presets):
    loaded = load(SourceSpec(model="tiny-sd"), presets)
    unet = loaded.pipe.unet
    unet.train()
    before = {n: p.data_ptr() for n, p in unet.named_parameters()}
    steps_before = loaded.pipe.scheduler.num_inference_steps
    inspect_loaded(host, loaded, OPTIONS)
    assert unet.training and all(m.training for m in unet.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in unet.modules())
    assert {n: p.data_ptr() for n, p in unet.named_parameters()} == before
    assert next(unet.parameters()).dtype == torch.float32 and next(unet.parameters()).device.type == "cpu"
    assert loaded.pipe.scheduler.num_inference_steps == steps_before  # timesteps were set on a copy


def test_random_weights_are_seeded(presets):
    a = load(SourceSpec(model="tiny-sd", seed=1), presets).pipe.unet.conv_in.weight
    b = load(SourceSpec(model="tiny-sd", seed=1), presets).pipe.unet.conv_in.weight
    c = load(SourceSpec(model="tiny-sd", seed=2), presets).pipe.unet.conv_in.weight
    assert torch.equal(a, b) and not torch.equal(a, c)
