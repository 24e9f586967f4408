"""The border checks on model sources at real sizes (third round): layer counts, text lengths,
default image sizes, weight files named by an index, hub-cache refs, files read from a model
folder, and the values a run may hold so that ``report`` reads back whatever the tool writes.

Each limit is checked both ways: the absurd value is one line and exit 2, and what real libraries
write (transformers' ``int(1e30)`` "no limit", the layer counts of real models) passes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inspector.errors import SourceError
from inspector.sources.limits import (
    MAX_LAYER_COUNT,
    MAX_PER_BLOCK_COUNT,
    MAX_TEXT_LENGTH,
    check_config_values,
    text_length,
)
from inspector.sources.preset_files import materialize_preset

PRESETS = Path(__file__).resolve().parents[1] / "inspector" / "presets"
TINY = PRESETS / "tiny-sd"
TINY_SD3 = PRESETS / "tiny-sd3"


def tiny_folder(tmp_path: Path, preset: Path = TINY, name: str = "model") -> Path:
    folder = tmp_path / name
    materialize_preset(preset, folder)
    return folder


def edit_config(path: Path, **values) -> None:
    data = json.loads(path.read_text())
    data.update(values)
    path.write_text(json.dumps(data))


# --- 1. layer and block counts -----------------------------------------------------------

#: layer counts of real configs (hub config.json files), each of which must pass
REAL_COUNTS = {
    "t5-xxl": {"num_layers": 24, "num_decoder_layers": 24, "num_heads": 64},
    "llama-3-70b": {"num_hidden_layers": 80, "max_position_embeddings": 8192},
    "llama-3.1-405b": {"num_hidden_layers": 126, "max_position_embeddings": 131072},
    "qwen2.5-72b": {"num_hidden_layers": 80, "max_window_layers": 80, "max_position_embeddings": 32768},
    "gemma2-9b": {"num_hidden_layers": 42}, "gemma2-27b": {"num_hidden_layers": 46},
    "llama-4-scout": {"text_config": {"num_hidden_layers": 48, "max_position_embeddings": 10485760,
                                      "moe_layers": list(range(48)), "no_rope_layers": [1, 1, 1, 0] * 12}},
    "flux": {"num_layers": 19, "num_single_layers": 38},
    "hunyuan-video": {"num_layers": 20, "num_single_layers": 40, "num_refiner_layers": 2},
    "wan-14b": {"num_layers": 40}, "qwen-image": {"num_layers": 60}, "sd3.5-large": {"num_layers": 38},
    "auraflow": {"num_mmdit_layers": 4, "num_single_dit_layers": 32},
    "hidream": {"num_layers": 16, "num_single_layers": 32},
    "sdxl-unet": {"layers_per_block": 2, "transformer_layers_per_block": [1, 2, 10],
                  "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
                  "block_out_channels": [320, 640, 1280]},
    "stable-cascade": {"blocks": [[2, 6, 28, 6], [6, 28, 6, 2]], "block_repeat": [[1, 1, 1, 1], [3, 3, 2, 2]]},
    "whisper-large": {"encoder_layers": 32, "decoder_layers": 32},
    "kimi-linear": {"model_max_length": 1048576, "num_hidden_layers": 27},
}


@pytest.mark.parametrize("name", sorted(REAL_COUNTS))
def test_real_layer_counts_pass(name):
    check_config_values(f"{name}/config.json", REAL_COUNTS[name])


def test_the_defaults_of_every_diffusers_model_and_shipped_preset_pass():
    import inspect

    import diffusers

    checked = 0
    for path in PRESETS.rglob("*.json"):
        check_config_values(path, json.loads(path.read_text()))
        checked += 1
    for name in dir(diffusers):
        try:
            cls = getattr(diffusers, name)
        except Exception:  # noqa: BLE001 - an optional backend missing
            continue
        if not (isinstance(cls, type) and issubclass(cls, diffusers.ModelMixin)):
            continue
        params = inspect.signature(cls.__init__).parameters.values()
        defaults = {p.name: list(p.default) if isinstance(p.default, tuple) else p.default for p in params
                    if p.default is not inspect.Parameter.empty}
        check_config_values(name, defaults)
        checked += 1
    assert checked > 100


@pytest.mark.parametrize("config", [
    {"num_hidden_layers": 10**9}, {"num_layers": 10**5}, {"num_single_layers": 1001},
    {"layers_per_block": 10**5}, {"layers_per_block": MAX_PER_BLOCK_COUNT + 1},
    {"transformer_layers_per_block": [1, 2, 10**9]}, {"transformer_layers_per_block": [[1], [10**6]]},
    {"encoder_layers": 2**63}, {"num_decoder_layers": 1e300}, {"depth": 10**7}, {"n_layer": 10**6},
    {"text_config": {"num_hidden_layers": 10**9}}, {"vision_config": {"depth": 10**6}},
    {"down_block_types": ["DownBlock2D"] * 10**5},
    # each within its own limit, together far beyond any model
    {"layers_per_block": 100, "transformer_layers_per_block": 100},
    {"num_layers": 1000, "num_single_layers": 1000, "num_refiner_layers": 100},
    {"max_position_embeddings": 10**9}, {"n_positions": 10**12},
])
def test_absurd_layer_counts_are_refused(config):
    with pytest.raises(SourceError, match="beyond any real model|beyond any real pipeline"):
        check_config_values("x/config.json", config)


@pytest.mark.parametrize("component, key, value", [
    ("unet", "layers_per_block", 10**5), ("vae", "layers_per_block", 10**9),
    ("text_encoder", "num_hidden_layers", 10**5), ("unet", "transformer_layers_per_block", [1, 10**9]),
])
def test_a_folder_with_absurd_layer_counts_is_one_line_before_building(tmp_path, presets, component, key, value):
    from inspector.sources.loading import SourceSpec, load

    folder = tiny_folder(tmp_path)
    edit_config(folder / component / "config.json", **{key: value})
    with pytest.raises(SourceError, match=f"{key} = .* beyond any real model"):
        load(SourceSpec(model=str(folder), weights="meta"), presets)


def test_the_layer_limits_allow_the_real_margin():
    assert MAX_LAYER_COUNT >= 5 * 126 and MAX_PER_BLOCK_COUNT >= 5 * 10


# --- 1b. text lengths ------------------------------------------------------------------------

def test_a_tokenizer_padding_to_999999_tokens_is_refused():
    with pytest.raises(SourceError, match="model_max_length = 999999 is beyond"):
        check_config_values("tok/tokenizer_config.json", {"model_max_length": 999_999})


@pytest.mark.parametrize("length", [77, 256, 512, 8192, 131072, 262144])
def test_real_tokenizer_lengths_pass(length):
    check_config_values("tok/tokenizer_config.json", {"model_max_length": length})


# --- 2. transformers' own "no limit" -----------------------------------------------------------

def test_transformers_very_large_integer_means_no_limit():
    from transformers.tokenization_utils_base import VERY_LARGE_INTEGER

    check_config_values("tok/tokenizer_config.json", {"model_max_length": VERY_LARGE_INTEGER})
    with pytest.raises(SourceError):  # only the library's own value, not any huge number
        check_config_values("tok/tokenizer_config.json", {"model_max_length": VERY_LARGE_INTEGER + 1})

    class Tokenizer:
        model_max_length = VERY_LARGE_INTEGER

    class Encoder:
        class config:  # noqa: N801
            max_position_embeddings = 512

    class Pipeline:
        def __call__(self, prompt: str = "", max_sequence_length: int = 300) -> None: ...

    assert text_length(Tokenizer(), Pipeline(), Encoder()) == 300  # the pipeline's own default first
    assert text_length(Tokenizer(), None, Encoder()) == 512
    assert text_length(Tokenizer()) == 77
    Tokenizer.model_max_length = 10**12
    assert text_length(Tokenizer(), None, None, default=64) == 64
    Encoder.config.max_position_embeddings = 10**9
    assert text_length(Tokenizer(), None, Encoder()) <= MAX_TEXT_LENGTH


def save_t5_tokenizer_without_a_length(folder: Path) -> None:
    """A T5 tokenizer built here and written by transformers' own ``save_pretrained``, which
    writes ``model_max_length: int(1e30)`` for a tokenizer made without one."""
    from tokenizers import Tokenizer
    from transformers import T5TokenizerFast

    backend = Tokenizer.from_file(str(TINY_SD3 / "tokenizer_3" / "tokenizer.json"))
    tokenizer = T5TokenizerFast(tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                extra_ids=0)
    shutil.rmtree(folder)
    tokenizer.save_pretrained(folder)


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_a_folder_whose_tokenizer_transformers_saved_without_a_length_loads(tmp_path, cli):
    folder = tiny_folder(tmp_path, TINY_SD3)
    save_t5_tokenizer_without_a_length(folder / "tokenizer_3")
    saved = json.loads((folder / "tokenizer_3" / "tokenizer_config.json").read_text())
    assert saved["model_max_length"] == int(1e30)  # what transformers itself wrote
    out = tmp_path / "run.json"
    result = cli("inspect", str(folder), "--weights", "meta", "--json", str(out))
    assert result.code == 0, result.err
    run = json.loads(out.read_text())
    tok = next(c for c in run["components"] if c["name"] == "tokenizer_3")
    assert tok["details"]["model_max_length"] is None
    assert tok["details"]["text_length"] == 256  # StableDiffusion3Pipeline's max_sequence_length
    assert any("no maximum length" in note for note in tok["notes"])
    assert cli("report", str(out)).code == 0


# --- 3. the default size a config implies ------------------------------------------------------

@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_a_sample_size_past_the_size_limit_is_one_line_naming_the_key_and_the_way_out(tmp_path, cli):
    folder = tiny_folder(tmp_path)
    edit_config(folder / "unet" / "config.json", sample_size=4096)
    result = cli("inspect", str(folder), "--weights", "meta")
    assert result.code == 2
    line = result.err.strip()
    assert "\n" not in line and "sample_size 4096" in line and "--height" in line and "--width" in line
    given = cli("inspect", str(folder), "--weights", "meta", "--height", "64", "--width", "64")
    assert given.code == 0, given.err


def test_the_schema_holds_the_inputs_to_the_options_limits():
    from inspector.results import limits
    from inspector.results.schema import run_schema

    inputs = run_schema()["$defs"]["Inputs"]["properties"]
    assert inputs["height"]["maximum"] == inputs["width"]["maximum"] == limits.MAX_SIZE
    assert inputs["seed"]["maximum"] == limits.MAX_INT and inputs["seed"]["minimum"] == limits.MIN_INT
    assert inputs["guidance_scale"]["maximum"] == limits.MAX_GUIDANCE
    assert inputs["steps"]["maximum"] == limits.MAX_STEPS and inputs["batch_size"]["maximum"] == limits.MAX_BATCH


# --- 6. whatever the tool writes, report reads -----------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--guidance-scale", "1e19"], ["--guidance-scale", "nan"], ["--seed", str(2**64)],
    ["--seed", str(-(2**63) - 1)], ["--fits", "99999999999999999999TiB"], ["--fits", "9" * 400 + "GiB"],
    ["--frames", str(2**70)], ["--height", str(2**70)],
])
def test_options_past_what_a_run_holds_are_refused_at_the_border(cli, args):
    result = cli("inspect", "tiny-sd", "--weights", "meta", *args)
    assert result.code == 2 and result.err.count("\n") <= 1, result.err


@pytest.mark.parametrize("args", [
    ["--peak-tflops", "1e19"], ["--max-time", "1e30"], ["--max-spread", "nan"], ["--repeats", str(2**70)],
])
def test_profile_options_past_what_a_run_holds_are_refused(cli, args):
    result = cli("profile", "tiny-sd", *args)
    assert result.code == 2 and result.err.count("\n") <= 1, result.err


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_the_largest_options_accepted_write_a_run_report_reads(tmp_path, cli):
    out = tmp_path / "run.json"
    result = cli("inspect", "tiny-sd", "--weights", "meta", "--steps", "2", "--guidance-scale", "1000",
                 "--seed", str(2**64 - 1), "--json", str(out))
    assert result.code == 0, result.err
    assert cli("report", str(out)).code == 0


def test_fits_takes_sizes_up_to_an_exbibyte():
    from inspector.errors import OptionError
    from inspector.measure.devices import resolve_target

    assert resolve_target("1048576TiB")[1] == 2**60
    with pytest.raises(OptionError, match="more than 1 EiB"):
        resolve_target("1048577TiB")


def test_the_python_api_refuses_the_same_values():
    from inspector.python_api import INSPECT_OPTIONS

    for name, value in (("guidance_scale", 1e19), ("seed", 2**64), ("frames", 2**70)):
        with pytest.raises(ValueError):
            INSPECT_OPTIONS[name].check(name, value)


@pytest.mark.tiny  # builds the tiny model
def test_plugin_numbers_past_64_bits_are_dropped_and_blamed_and_the_run_reads_back(tmp_path):
    from inspector.api import hookimpl
    from inspector.inspection import run_inspect
    from inspector.plugin.context import InspectOptions
    from inspector.plugin.host import Host
    from inspector.reports import csv_report, json_report
    from inspector.sources.loading import SourceSpec

    class Huge:
        @hookimpl
        def augment_component(self, component, result):
            if component.name == "unet":
                result.metrics["huge"] = 10**30
                result.metrics["fine"] = 3
                result.flops = 2**70  # a FLOP count past 64 bits
                if result.layers:
                    result.layers[0].flops = 2**70

    host = Host.default(entrypoints=False)
    host.register(Huge(), name="huge")
    run = run_inspect(host, SourceSpec(model="tiny-sd", weights="meta"), InspectOptions(steps=2))
    unet = run.component("unet")
    assert "huge" not in unet.metrics and unet.metrics["fine"] == 3 and unet.flops is None
    assert unet.layers and unet.layers[0].flops is None  # the layer stays, its figure goes
    assert any(e["plugin"] == "huge" and "64 bits" in e["error"] for e in unet.errors)
    json_report.write(run, tmp_path / "run.json")
    csv_report.render_all(json_report.load(tmp_path / "run.json"))


def test_a_flop_count_past_64_bits_in_a_result_is_left_out_not_an_internal_error():
    from inspector.plugin.validation import repair_result
    from inspector.reports import json_report

    run = json_report.load(Path(__file__).parent / "data" / "tiny-profile.json")
    component = next(c for c in run.components if c.flops)
    component.flops = 2**64  # one past what 64 bits hold
    for m in component.measurements:
        m.flops = 2**65
    dropped = repair_result(component)
    assert component.flops is None and all(m.flops is None for m in component.measurements)
    assert dropped and all("64 bits" in d for d in dropped)


# --- 4. weight files by their content -------------------------------------------------------------

def _with_bin_shard(tiny_saved: Path, tmp_path: Path, index_name: str) -> Path:
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "saved"
    shutil.copytree(tiny_saved, folder)
    unet = folder / "unet"
    state = load_file(str(unet / "diffusion_pytorch_model.safetensors"))
    torch.save(state, unet / "diffusion_pytorch_model.bin")
    (unet / index_name).write_text(json.dumps({"metadata": {},
                                               "weight_map": {k: "diffusion_pytorch_model.bin" for k in state}}))
    return folder


@pytest.mark.parametrize("index_name", ["diffusion_pytorch_model.safetensors.index.json",
                                        "diffusion_pytorch_model.bin.index.json"])
def test_a_pickle_shard_an_index_names_is_refused(tiny_saved, tmp_path, presets, index_name):
    from inspector.sources.loading import SourceSpec, load

    folder = _with_bin_shard(tiny_saved, tmp_path, index_name)
    with pytest.raises(SourceError, match="names diffusion_pytorch_model.bin, a pickle-based checkpoint"):
        load(SourceSpec(model=str(folder)), presets)


@pytest.mark.parametrize("shard", ["../../outside.safetensors", "sub/dir.safetensors", "missing.safetensors",
                                   "diffusion_pytorch_model.txt"])
def test_index_shards_must_be_safetensors_files_beside_it(tiny_saved, tmp_path, presets, shard):
    from inspector.sources.loading import SourceSpec, load

    folder = tmp_path / "saved"
    shutil.copytree(tiny_saved, folder)
    (folder / "unet" / "diffusion_pytorch_model.txt").write_text("not weights")
    (folder / "unet" / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"conv_in.weight": shard}}))
    with pytest.raises(SourceError, match="index.json names"):
        load(SourceSpec(model=str(folder)), presets)


@pytest.fixture(scope="module")
def tiny_state_dict(presets):
    from inspector.sources.loading import SourceSpec, load

    from .ldm_format import to_ldm_state_dict

    return to_ldm_state_dict(load(SourceSpec(model="tiny-sd"), presets).pipe)


@pytest.mark.parametrize("name", ["model.SAFETENSORS", "model.ckpt", "model.Safetensors"])
def test_a_safetensors_file_is_read_as_safetensors_whatever_its_name(tmp_path, presets, tiny_state_dict, name):
    from safetensors.torch import save_file

    from inspector.sources.loading import SourceSpec, load
    from inspector.sources.precheck import check_source

    path = tmp_path / name
    save_file(tiny_state_dict, str(path))
    check_source(str(path), arch="tiny-sd")  # no --allow-pickle: it is not a pickle
    loaded = load(SourceSpec(model=str(path), arch="tiny-sd"), presets)
    assert loaded.kind == "single_file"


def test_a_pickle_named_safetensors_needs_consent(tmp_path, presets, tiny_state_dict):
    import torch

    from inspector.sources.loading import SourceSpec, load
    from inspector.sources.precheck import check_source

    path = tmp_path / "model.safetensors"
    torch.save(tiny_state_dict, path)
    for call in (lambda: check_source(str(path), arch="tiny-sd"),
                 lambda: load(SourceSpec(model=str(path), arch="tiny-sd"), presets)):
        with pytest.raises(SourceError, match="is a pickle-based checkpoint .whatever its name says"):
            call()
    assert load(SourceSpec(model=str(path), arch="tiny-sd", allow_pickle=True), presets).kind == "single_file"


# --- 5. files read from a model source ------------------------------------------------------------

def _hub(tmp_path: Path, monkeypatch) -> Path:
    import huggingface_hub.constants as hf_constants

    cache = tmp_path / "hub"
    repo = cache / "models--acme--tiny"
    (repo / "refs").mkdir(parents=True)
    materialize_preset(TINY, repo / "snapshots" / ("0" * 40))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    return repo / "refs" / "main"


def _refused_everywhere(presets, match: str) -> None:
    from inspector.sources.loading import SourceSpec, load
    from inspector.sources.precheck import check_source

    with pytest.raises(SourceError, match=match):
        check_source("acme/tiny")
    with pytest.raises(SourceError, match=match):
        load(SourceSpec(model="acme/tiny", weights="meta"), presets)


def test_a_hub_ref_that_is_a_fifo_is_refused_not_waited_on(tmp_path, monkeypatch, presets):
    import os

    os.mkfifo(_hub(tmp_path, monkeypatch))
    _refused_everywhere(presets, "not a regular file")


def test_a_hub_ref_pointing_at_dev_zero_is_refused_unread(tmp_path, monkeypatch, presets):
    _hub(tmp_path, monkeypatch).symlink_to("/dev/zero")
    _refused_everywhere(presets, "not a regular file")


def test_a_hub_ref_naming_a_folder_outside_the_cache_is_refused(tmp_path, monkeypatch, presets):
    ref = _hub(tmp_path, monkeypatch)
    materialize_preset(TINY, tmp_path / "outside" / "pipe")
    ref.write_text("../../../outside/pipe")
    _refused_everywhere(presets, "not a commit hash")


def test_a_good_hub_ref_still_loads(tmp_path, monkeypatch, presets):
    from inspector.sources.loading import SourceSpec, load

    _hub(tmp_path, monkeypatch).write_text("0" * 40)
    assert load(SourceSpec(model="acme/tiny", weights="meta"), presets).kind == "hub_cache"


def test_a_huge_merges_file_is_refused_before_any_library_reads_it(tmp_path, presets):
    from inspector.sources.loading import SourceSpec, load

    folder = tiny_folder(tmp_path)
    with open(folder / "tokenizer" / "merges.txt", "r+b") as fh:
        fh.truncate(2**30)  # sparse: a GiB on paper, nothing on disk
    with pytest.raises(SourceError, match="merges.txt is 1,073,741,824 bytes, more than"):
        load(SourceSpec(model=str(folder), weights="meta"), presets)


def test_real_tokenizer_file_sizes_pass():
    from inspector.sources.trust import MAX_SOURCE_FILE_BYTES

    gemma3_tokenizer_json = 33_384_568
    assert MAX_SOURCE_FILE_BYTES > 4 * gemma3_tokenizer_json


def test_diffusion_pipeline_itself_is_one_line(tmp_path, cli):
    folder = tiny_folder(tmp_path)
    edit_config(folder / "model_index.json", _class_name="DiffusionPipeline")
    result = cli("inspect", str(folder), "--weights", "meta")
    assert result.code == 2 and "base class" in result.err and result.err.count("\n") == 1


@pytest.mark.parametrize("weights", ["random", "meta"])
def test_a_vocabulary_of_no_tokens_is_one_line(tmp_path, presets, weights):
    from inspector.sources.loading import SourceSpec, load

    folder = tiny_folder(tmp_path)
    edit_config(folder / "text_encoder" / "config.json", vocab_size=0)
    with pytest.raises(SourceError, match="vocab_size = 0 is below any real model"):
        load(SourceSpec(model=str(folder), weights=weights), presets)


def test_a_parameter_of_no_elements_materializes():
    import torch

    from inspector.sources.loading import materialize

    with torch.device("meta"):
        model = torch.nn.Embedding(0, 8)
    materialize(model, 0, torch.float32)
    assert model.weight.shape == (0, 8) and not model.weight.is_meta
