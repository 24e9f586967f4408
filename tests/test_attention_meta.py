"""Predictions at real sizes: attention on ``meta`` as the fused kernels hold it, however SDPA is
called; a VAE that its pipeline casts to another dtype (SDXL's ``force_upcast``) measured as it runs.

diffusers' ``dispatch_attention_fn`` (Flux, Wan, QwenImage and other newer models) calls
``F.scaled_dot_product_attention`` with keywords only; transformers and the older processors pass
query, key and value positionally. Each way must reach the fused kernel's meta function, or the
prediction holds the attention matrix that no fused kernel allocates. The reference is the same
tracking on real tensors on this CPU, where SDPA runs the CPU flash kernel.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


def _tracked(call) -> int:
    import torch

    from inspector.measure.activations import tracking

    with torch.no_grad(), tracking() as tracker:
        out = call()
        del out
    return tracker.peak


def _qkv(device: str, dtype, heads: int = 4, kv_heads: int = 4, length: int = 256, dim: int = 32):
    import torch

    gen = torch.Generator().manual_seed(0)
    q = torch.randn(1, heads, length, dim, generator=gen).to(dtype)
    k = torch.randn(1, kv_heads, length, dim, generator=gen).to(dtype)
    v = torch.randn(1, kv_heads, length, dim, generator=gen).to(dtype)
    return tuple(t.to(device) for t in (q, k, v))


def test_sdpa_arguments_bind_positional_keyword_and_mixed_calls():
    from inspector.measure.activations import sdpa_arguments

    q, k, v, m = object(), object(), object(), object()
    expected = {"query": q, "key": k, "value": v, "attn_mask": m}
    assert sdpa_arguments((q, k, v, m), {}) == expected
    assert sdpa_arguments((), {"query": q, "key": k, "value": v, "attn_mask": m}) == expected
    assert sdpa_arguments((q, k), {"value": v, "attn_mask": m}) == expected
    full = sdpa_arguments((), {"query": q, "key": k, "value": v, "attn_mask": None, "dropout_p": 0.0,
                               "is_causal": False, "scale": None, "enable_gqa": True})
    assert full is not None and full["enable_gqa"] is True
    # what does not bind is left to torch, which raises its own error for it
    assert sdpa_arguments((q, k), {"key": k, "value": v}) is None  # key twice
    assert sdpa_arguments((q, k, v), {"mask": m}) is None  # no such parameter
    assert sdpa_arguments((q, k), {}) is None  # no value
    assert sdpa_arguments((q, k, v, None, 0.0, False, None, False, 1), {}) is None  # too many


@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
@pytest.mark.parametrize("how", ["positional", "keyword", "diffusers"])
@pytest.mark.parametrize("kv_heads", [4, 2])  # 2: grouped-query attention (enable_gqa)
def test_sdpa_on_meta_holds_what_the_fused_kernel_holds(dtype_name, how, kv_heads):
    """Each way of calling SDPA predicts on meta what the same call holds on real tensors: the
    output and the float32 log-sum-exp, never the (heads x length x length) matrix."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    from inspector.measure.activations import fused_attention_on_meta

    dtype = getattr(torch, dtype_name)
    gqa = kv_heads != 4

    def call(q, k, v):
        if how == "positional":
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        if how == "keyword":
            return F.scaled_dot_product_attention(query=q, key=k, value=v, enable_gqa=gqa)
        from diffusers.models.attention_dispatch import dispatch_attention_fn

        # diffusers' layout: (batch, length, heads, head_dim); its native backend permutes
        return dispatch_attention_fn(*(t.transpose(1, 2) for t in (q, k, v)), enable_gqa=gqa)

    cpu, meta = _qkv("cpu", dtype, kv_heads=kv_heads), _qkv("meta", dtype, kv_heads=kv_heads)
    real = _tracked(lambda: call(*cpu))
    predicted = _tracked(lambda: call(*meta))
    matrix = 4 * 256 * 256 * 4
    assert predicted == real < matrix, (predicted, real)
    with torch.no_grad(), fused_attention_on_meta():
        out = call(*meta)
    assert out.shape == (1, 256, 4, 32) if how == "diffusers" else out.shape == (1, 4, 256, 32)
    assert out.dtype == dtype


@pytest.mark.parametrize("backend", ["native", "_native_flash", "_native_efficient", "_native_cudnn"])
def test_diffusers_fused_backends_predict_the_fused_peak(backend):
    """diffusers' native backends that pick a fused kernel (``attention_backend``) all predict the
    fused peak on meta (their kernels are for CUDA; on this CPU only the default one runs)."""
    import torch
    from diffusers.models.attention_dispatch import attention_backend, dispatch_attention_fn

    cpu = [t.transpose(1, 2) for t in _qkv("cpu", torch.bfloat16)]
    meta = [t.transpose(1, 2) for t in _qkv("meta", torch.bfloat16)]
    fused = _tracked(lambda: dispatch_attention_fn(*cpu))
    with attention_backend(backend):
        predicted = _tracked(lambda: dispatch_attention_fn(*meta))
    assert predicted == fused < 4 * 256 * 256 * 4


def test_math_backend_holds_the_matrix_on_meta_as_on_a_device():
    """Where only the math path is allowed (diffusers' ``_native_math`` backend, or
    ``sdpa_kernel(SDPBackend.MATH)``) a device holds the matrix, and so does the prediction."""
    import torch
    import torch.nn.functional as F  # noqa: N812
    from diffusers.models.attention_dispatch import attention_backend, dispatch_attention_fn
    from torch.nn.attention import SDPBackend, sdpa_kernel

    cpu = [t.transpose(1, 2) for t in _qkv("cpu", torch.float32)]
    meta = [t.transpose(1, 2) for t in _qkv("meta", torch.float32)]
    with attention_backend("_native_math"):
        real = _tracked(lambda: dispatch_attention_fn(*cpu))
        predicted = _tracked(lambda: dispatch_attention_fn(*meta))
    assert predicted == real >= 4 * 256 * 256 * 4
    q, k, v = _qkv("meta", torch.float32)
    with sdpa_kernel(SDPBackend.MATH):
        assert _tracked(lambda: F.scaled_dot_product_attention(query=q, key=k, value=v)) >= 4 * 256 * 256 * 4


def test_flops_of_a_keyword_or_grouped_call_on_meta_are_torch_formulas():
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

    from inspector.measure.capture import capture

    class Attend(torch.nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(query=q, key=k, value=v, enable_gqa=True)

    module = Attend()
    expected = sdpa_flop_count((1, 8, 256, 32), (1, 2, 256, 32), (1, 2, 256, 32))
    on_meta, on_cpu = _qkv("meta", torch.float32, heads=8, kv_heads=2), _qkv("cpu", torch.float32, heads=8, kv_heads=2)
    meta = capture(module, lambda: module(*on_meta))
    real = capture(module, lambda: module(*on_cpu))
    assert meta.flops == real.flops == expected
    with FlopCounterMode(display=False) as counter:
        module(*on_meta)
    assert counter.get_total_flops() == expected


# --- whole denoisers, as their pipelines call them ------------------------------------------

def _to_meta(value):
    import torch

    if isinstance(value, torch.Tensor):
        return torch.empty_strided(value.shape, value.stride(), dtype=value.dtype, device="meta")
    if isinstance(value, (list, tuple)):
        return type(value)(_to_meta(v) for v in value)
    if isinstance(value, dict):
        return {k: _to_meta(v) for k, v in value.items()}
    return value


def _pipeline_call(name: str, dtype):
    """A corpus pipeline in ``dtype`` and the arguments it passed its transformer in step one."""
    import corpus
    import torch

    pipe = corpus.build(name).to(dtype)
    pipe.set_progress_bar_config(disable=True)
    entry = corpus.CORPUS[name]
    size = {"wan": 64, "flux": 64}.get(name, entry.height)  # enough tokens for attention to show
    kwargs = {"prompt": "a cat", "height": size, "width": size, "num_inference_steps": 1, "output_type": "latent"}
    if name == "wan":
        kwargs["num_frames"] = 9
    seen: list = []
    handle = pipe.transformer.register_forward_pre_hook(
        lambda _m, args, kw: seen.append((args, dict(kw))) if not seen else None, with_kwargs=True)
    try:
        with torch.no_grad():
            pipe(**kwargs)
    finally:
        handle.remove()
    return pipe.transformer, seen[0]


def _qwenimage_call(dtype):
    """QwenImage's transformer as diffusers' fast tests build it (``get_dummy_components`` in
    tests/pipelines/qwenimage), with the inputs its pipeline passes (packed latents, a text mask
    with padding, ``img_shapes``); its text encoder needs a tokenizer from the hub."""
    import torch
    from diffusers import QwenImageTransformer2DModel

    torch.manual_seed(0)
    model = QwenImageTransformer2DModel(patch_size=2, in_channels=16, out_channels=4, num_layers=2,
                                        attention_head_dim=16, num_attention_heads=3, joint_attention_dim=16,
                                        guidance_embeds=False, axes_dims_rope=(8, 4, 4)).eval().to(dtype)
    gen = torch.Generator().manual_seed(0)
    side, text = 8, 16  # 64x64 image: 8x8 packed latents (8 px per latent, 2x2 patches)
    mask = torch.ones(1, text, dtype=torch.long)
    mask[:, 12:] = 0
    kwargs = {"hidden_states": torch.randn(1, side * side, 16, generator=gen).to(dtype),
              "encoder_hidden_states": torch.randn(1, text, 16, generator=gen).to(dtype),
              "encoder_hidden_states_mask": mask, "timestep": torch.full((1,), 0.5, dtype=dtype),
              "img_shapes": [(1, side, side)], "return_dict": False}
    return model, ((), kwargs)


@pytest.mark.parametrize("dtype_name", ["float32", "bfloat16"])
@pytest.mark.parametrize("name", ["flux", "sd3", "wan", "qwenimage"])
def test_transformer_prediction_on_meta_is_tracking_on_real_tensors(name, dtype_name):
    """The denoiser built on meta (as ``--weights meta`` builds it: under ``torch.device("meta")``)
    predicts, within 10%, the activation peak that the same call tracks with real weights. Flux,
    Wan and QwenImage attend through ``dispatch_attention_fn`` (keywords; QwenImage with a mask);
    SD3's processor passes query, key and value positionally."""
    import torch

    from inspector.measure.capture import capture

    dtype = getattr(torch, dtype_name)
    model, (args, kwargs) = _qwenimage_call(dtype) if name == "qwenimage" else _pipeline_call(name, dtype)
    tracked = capture(model, lambda: model(*args, **kwargs)).activation_bytes
    with torch.device("meta"):
        on_meta = type(model).from_config(model.config).to(dtype).eval()
    meta_args, meta_kwargs = _to_meta(args), _to_meta(kwargs)
    predicted = capture(on_meta, lambda: on_meta(*meta_args, **meta_kwargs)).activation_bytes
    assert abs(predicted - tracked) <= 0.1 * tracked, (predicted, tracked)


def test_tiny_flux_inspection_on_meta_predicts_what_random_weights_track(host, presets):
    """The inspection's own path (the pipeline's recorded call, replayed) in bfloat16: the
    transformer's predicted activations are within 10% of the same inspection on real weights."""
    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import SourceSpec, load

    found = {}
    for weights in ("meta", "random"):
        loaded = load(SourceSpec(model="tiny-flux", weights=weights, dtype="bfloat16", device="cpu"), presets)
        run = inspect_loaded(host, loaded, InspectOptions())
        found[weights] = run.component("transformer").activation_bytes
    assert found["random"] > 0
    assert abs(found["meta"] - found["random"]) <= 0.1 * found["random"], found


# --- a VAE the pipeline casts for its decode (SDXL's force_upcast) --------------------------

def test_cast_to_casts_for_the_block_and_back_and_leaves_mixed_modules_alone():
    import torch

    from inspector.measure.recording import cast_to, floating_dtype

    layer = torch.nn.Linear(4, 4).to(torch.float16)
    with cast_to(layer, torch.float32) as cast:
        assert cast and layer.weight.dtype == torch.float32
    assert layer.weight.dtype == torch.float16
    with pytest.raises(RuntimeError), cast_to(layer, torch.float32):
        raise RuntimeError("the call failed")
    assert layer.weight.dtype == torch.float16  # put back however the block ends
    with cast_to(layer, None) as cast:
        assert not cast and layer.weight.dtype == torch.float16
    mixed = torch.nn.Sequential(torch.nn.Linear(4, 4).to(torch.float16), torch.nn.LayerNorm(4))
    assert floating_dtype(mixed) is None
    with cast_to(mixed, torch.float32) as cast:  # a model that keeps some layers in float32: as it is
        assert not cast and mixed[0].weight.dtype == torch.float16


@pytest.fixture(scope="module")
def sdxl_half(host, presets):
    """tiny-sdxl in float16 with random weights on the CPU, inspected (its VAE config sets
    force_upcast, as SDXL's does)."""
    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import SourceSpec, load

    loaded = load(SourceSpec(model="tiny-sdxl", weights="random", dtype="float16", device="cpu"), presets)
    assert loaded.pipe.vae.config.force_upcast
    return loaded, inspect_loaded(host, loaded, InspectOptions())


def test_sdxl_float16_vae_is_measured_in_float32_as_its_pipeline_decodes(sdxl_half):
    """StableDiffusionXLPipeline casts a float16 VAE with ``force_upcast`` to float32, decodes, casts
    it back. The VAE plugin replays that decode as it ran (it failed on the dtype mismatch before),
    its decode peak is what tracking the pipeline's own decode holds, and the plan counts the VAE's
    weights in float32 and says why."""
    import torch

    from inspector.measure.activations import tracking
    from inspector.measure.memory_plan import module_bytes

    loaded, run = sdxl_half
    pipe, vae = loaded.pipe, loaded.pipe.vae
    result = run.component("vae")
    assert result.plugin == "vae" and not result.errors, result.errors
    assert result.details["run_dtype"] == "float32"
    assert any("casts the float16 VAE to float32" in n for n in result.notes), result.notes
    assert vae.dtype == torch.float16  # put back as loaded

    peaks = []
    decode = vae.decode

    def tracked_decode(*args, **kwargs):
        with tracking() as tracker:
            out = decode(*args, **kwargs)
        peaks.append(tracker.peak)
        return out

    vae.decode = tracked_decode
    try:
        with torch.no_grad():
            pipe(prompt="a cat", height=run.inputs.height, width=run.inputs.width, num_inference_steps=1,
                 output_type="np")
    finally:
        del vae.decode
    assert len(peaks) == 1 and peaks[0] > 0
    predicted = result.details["decode_activation_bytes"]
    assert abs(predicted - peaks[0]) <= 0.1 * peaks[0], (predicted, peaks[0])

    plan = run.memory_plan
    memory = next(m for m in plan.components if m.component == "vae")
    half = sum(t.numel() * t.element_size() for t in (*vae.parameters(), *vae.buffers()))
    assert memory.weights == module_bytes(vae, torch.float32) == 2 * half
    assert memory.call == "decode" and memory.activations > 0
    assert any("casts the float16 VAE to float32 to decode" in n for n in plan.notes), plan.notes


def test_sdxl_float16_vae_on_meta_predicts_the_float32_decode(host, presets, sdxl_half):
    """On meta weights (``inspect sdxl --dtype float16``, the README's example) the recording sees
    the same cast, and the VAE's decode is predicted as on real weights."""
    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions
    from inspector.sources.loading import SourceSpec, load

    loaded = load(SourceSpec(model="tiny-sdxl", weights="meta", dtype="float16"), presets)
    calls = {c.method: c for c in inspect_recording(loaded)}
    import torch

    assert calls["decode"].dtype == torch.float32
    run = inspect_loaded(host, loaded, InspectOptions())
    result = run.component("vae")
    assert result.plugin == "vae" and result.details["run_dtype"] == "float32"
    real = sdxl_half[1].component("vae").details["decode_activation_bytes"]
    assert abs(result.details["decode_activation_bytes"] - real) <= 0.1 * real
    unet = run.component("unet")
    assert unet.inputs and all(i.dtype == "float16" for i in unet.inputs if i.name == "sample")


def inspect_recording(loaded):
    """The VAE's recorded calls of one recording call of the pipeline."""
    from inspector.measure.recording import record

    recording = record(loaded.pipe, {"prompt": "a cat", "num_inference_steps": 2, "height": 128, "width": 128})
    return recording.of("vae")


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_readme_example_measures_the_vae(cli):
    # the README's example judges a device: the plan, with its notes, is printed with --fits
    result = cli("inspect", "tiny-sdxl", "--dtype", "float16", "--fits", "rtx4090")
    assert result.code == 0, result.err
    assert "plugin vae failed" not in result.out + result.err
    assert "casts the float16 VAE to float32 to decode" in " ".join((result.out + result.err).split())
