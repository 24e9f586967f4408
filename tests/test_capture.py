"""The capture layer: FLOPs agree with torch's FlopCounterMode, hooks see nested outputs."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
from torch.utils.flop_counter import FlopCounterMode

from inspector.measure.capture import FlopCounter, capture, iter_tensors
from inspector.sources.loading import SourceSpec, load


def unet_flops(presets, weights):
    unet = load(SourceSpec(model="tiny-sd", weights=weights), presets).pipe.unet
    device = "meta" if weights == "meta" else "cpu"
    args = (torch.zeros(2, 4, 16, 16, device=device), torch.full((), 10, device=device),
            torch.zeros(2, 77, 32, device=device))
    with torch.no_grad(), FlopCounterMode(display=False) as reference:
        unet(*args)
    return capture(unet, lambda: unet(*args)).flops, reference.get_total_flops()


def test_flops_match_torch_flop_counter_and_cpu_matches_meta(presets):
    meta_ours, meta_torch = unet_flops(presets, "meta")
    cpu_ours, cpu_torch = unet_flops(presets, "random")
    assert meta_ours == meta_torch > 0
    assert cpu_ours == meta_ours
    # torch scores the CPU's fused attention kernel as zero; we do not
    assert cpu_torch < cpu_ours


def test_cpu_fused_attention_counts_like_meta():
    counts = {}
    for device in ("cpu", "meta"):
        q = torch.zeros(1, 4, 77, 8, device=device)
        with FlopCounter() as counter:
            F.scaled_dot_product_attention(q, q, q)
        counts[device] = counter.get_total_flops()
    assert counts["cpu"] == counts["meta"] == 2 * 2 * 4 * 77 * 77 * 8


def test_iter_tensors_sees_every_value_of_dict_outputs():
    from diffusers.models.autoencoders.vae import DecoderOutput

    out = DecoderOutput(sample=torch.zeros(1, 3, 8, 8))
    nested = {"a": (torch.zeros(2), [torch.zeros(3, 1)]), "b": out}
    assert [(n, list(t.shape)) for n, t in iter_tensors(nested)] == [
        ("a[0]", [2]), ("a[1][0]", [3, 1]), ("b.sample", [1, 3, 8, 8])]


def test_repeated_calls_add_flops_and_keep_first_shapes():
    lin = torch.nn.Sequential(torch.nn.Linear(4, 8))

    def twice():
        lin(torch.zeros(1, 4))
        return lin(torch.zeros(3, 4))

    cap = capture(lin, twice)
    layer = cap.layers[0]
    assert layer.calls == 2
    assert layer.input_shapes == [[1, 4]] and layer.output_shapes == [[1, 8]]
    assert layer.flops == 2 * 4 * 8 * (1 + 3) == cap.flops


def _naive_counts(root):
    return {mod: sum(p.numel() for p in mod.parameters()) for mod in root.modules()}


@pytest.mark.parametrize("model", ["tiny-sd", "tiny-sdxl", "tiny-sd3", "tiny-flux"])
def test_parameters_per_layer_are_what_parameters_counts(presets, model):
    from inspector.measure.capture import subtree_parameters
    from inspector.sources.loading import SourceSpec, load

    pipe = load(SourceSpec(model=model, weights="meta"), presets).pipe
    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            assert subtree_parameters(comp) == _naive_counts(comp)


def test_parameters_per_layer_with_tied_weights_and_shared_modules():
    from inspector.measure.capture import subtree_parameters

    shared = torch.nn.Linear(3, 3)
    tied = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False))
    tied[1].weight = tied[0].weight
    models = [
        torch.nn.Sequential(torch.nn.Sequential(shared, torch.nn.ReLU()), torch.nn.Sequential(shared)),
        torch.nn.Sequential(shared, shared),
        tied,
        torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ModuleList([torch.nn.Linear(2, 5), None])),
    ]
    for model in models:
        assert subtree_parameters(model) == _naive_counts(model)


def test_capture_leaves_each_modules_training_flag_as_it_was():
    from inspector.measure.capture import capture

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.Dropout(), torch.nn.Linear(2, 2)))
    model.train()
    model[1].eval()
    model[0].training = False
    before = {name: m.training for name, m in model.named_modules()}
    capture(model, lambda: model(torch.ones(1, 2)))
    assert {name: m.training for name, m in model.named_modules()} == before
