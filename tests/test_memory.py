"""Predicted peak memory: the tracker, the prediction on meta, placements and the fit verdict."""
from __future__ import annotations

import json

import pytest

from inspector.results.records import ComponentMemory


@pytest.fixture(scope="module")
def tiny_meta(presets):
    from inspector.sources.loading import SourceSpec, load

    return load(SourceSpec(model="tiny-sd", weights="meta"), presets)


@pytest.fixture(scope="module")
def tiny_random(presets):
    from inspector.sources.loading import SourceSpec, load

    return load(SourceSpec(model="tiny-sd", weights="random", device="cpu"), presets)


@pytest.fixture(scope="module")
def meta_run(host, tiny_meta):
    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions

    return inspect_loaded(host, tiny_meta, InspectOptions(batch_size=2))


@pytest.fixture(scope="module")
def real_run(host, tiny_random):
    from inspector.inspection import inspect_loaded
    from inspector.plugin.context import InspectOptions

    return inspect_loaded(host, tiny_random, InspectOptions(batch_size=2))


def unet_kwargs(device: str):
    import torch

    gen = torch.Generator().manual_seed(0)
    kwargs = {"sample": torch.randn(2, 4, 16, 16, generator=gen), "timestep": torch.tensor(999),
              "encoder_hidden_states": torch.randn(2, 77, 32, generator=gen)}
    if device == "meta":
        kwargs = {k: torch.empty_like(v, device="meta") for k, v in kwargs.items()}
    return kwargs


def test_tracker_counts_what_it_creates_and_frees():
    import torch

    from inspector.measure.activations import tracking

    x = torch.ones(1000)  # made before: not counted
    with tracking() as tracker:
        a = x * 2  # 4000 bytes
        b = a + 1  # 8000 live
        view = b[:10]  # shares b's storage
        del a  # 4000 live
        c = b * 3  # 8000 live
        del view
    assert tracker.peak == 8000
    assert c.numel() == 1000


def test_tracker_agrees_with_torch_mem_tracker(tiny_random):
    """Our lean tracker and PyTorch's MemTracker see the same activation peak on real tensors."""
    import torch
    from torch.distributed._tools.mem_tracker import MemTracker, _MemRefType

    from inspector.measure.capture import capture

    unet = tiny_random.pipe.unet
    kwargs = unet_kwargs("cpu")
    ours = capture(unet, lambda: unet(**kwargs)).activation_bytes
    tracker = MemTracker()
    with torch.no_grad(), tracker:
        unet(**kwargs)
    snap = tracker.get_tracker_snapshot("peak")[torch.device("cpu")]
    theirs = snap[_MemRefType.ACT] + snap[_MemRefType.TEMP]
    inputs = sum(t.numel() * t.element_size() for t in kwargs.values())
    # MemTracker also counts the call's inputs once a module receives them; we leave inputs to the plan
    assert ours > 0
    assert 0 <= theirs - ours <= inputs, (ours, theirs, inputs)


def test_meta_prediction_equals_tracking_on_real_tensors(tiny_meta, tiny_random):
    """The whole point: what meta predicts is what the same call holds with real weights."""
    from inspector.measure.capture import capture

    predicted = capture(tiny_meta.pipe.unet, lambda: tiny_meta.pipe.unet(**unet_kwargs("meta"))).activation_bytes
    measured = capture(tiny_random.pipe.unet, lambda: tiny_random.pipe.unet(**unet_kwargs("cpu"))).activation_bytes
    assert abs(predicted - measured) <= 64, (predicted, measured)  # a scalar or two may differ


def test_meta_attention_counts_as_fused_not_as_the_math_fallback():
    """On meta, SDPA would decompose into bmm + softmax and hold the attention matrix; the fused
    kernels do not. With the eager processor the matrix is held, and counted."""
    import torch
    from diffusers.models.attention_processor import Attention, AttnProcessor, AttnProcessor2_0

    from inspector.measure.capture import capture

    attn = Attention(query_dim=32, heads=2, dim_head=16).to("meta")
    x = torch.empty(1, 1024, 32, device="meta")
    matrix = 1 * 2 * 1024 * 1024 * 4
    attn.set_processor(AttnProcessor2_0())
    fused = capture(attn, lambda: attn(x)).activation_bytes
    attn.set_processor(AttnProcessor())
    eager = capture(attn, lambda: attn(x)).activation_bytes
    assert fused < matrix
    assert eager >= matrix + fused // 2


def test_flops_unchanged_by_fused_attention_on_meta(tiny_meta):
    from torch.utils.flop_counter import FlopCounterMode

    from inspector.measure.capture import capture

    unet = tiny_meta.pipe.unet
    ours = capture(unet, lambda: unet(**unet_kwargs("meta"))).flops
    import torch

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        unet(**unet_kwargs("meta"))
    assert ours == counter.get_total_flops()


def test_plan_on_meta_equals_plan_on_real_weights(meta_run, real_run, tiny_meta, tiny_random):
    """The tensors' plan made on meta equals the one made on real weights; the run on CPU tensors
    plans for the CPU by default (convolution workspace included)."""
    import torch

    from inspector.measure.memory_plan import plan_memory
    from inspector.plugin.context import InspectContext, InspectOptions

    def ctx(loaded, device):
        return InspectContext(pipe=loaded.pipe, options=InspectOptions(batch_size=2), device=device,
                              dtype=torch.float32, height=128, width=128,
                              weights="meta" if device == "meta" else "random")

    predicted = {m.component: m for m in meta_run.memory_plan.components}
    tensors_on_cpu = plan_memory(tiny_random.pipe, ctx(tiny_random, "cpu"), real_run.components, cpu=False)
    measured = {m.component: m for m in tensors_on_cpu.components}
    assert set(predicted) == {"text_encoder", "unet", "vae"}
    for name, m in predicted.items():
        assert m.weights == measured[name].weights
        assert abs(m.activations - measured[name].activations) <= 0.001 * measured[name].activations, name
    assert meta_run.memory_plan.method == "tracked on meta tensors (no weights), tensors only (no kernel workspace)"
    assert not meta_run.memory_plan.cpu and real_run.memory_plan.cpu
    assert real_run.memory_plan.method == ("tracked on real tensors (cpu), for a CPU: convolution workspace included, "
                                           "no offload placements")
    assert {p.mode for p in real_run.memory_plan.placements} == {"all on device"}
    on_cpu = plan_memory(tiny_meta.pipe, ctx(tiny_meta, "meta"), meta_run.components, cpu=True)
    for m in on_cpu.components:
        assert m.activations >= predicted[m.component].activations
    unet = next(c for c in meta_run.components if c.name == "unet")
    assert unet.cpu_activation_bytes > unet.activation_bytes  # its convolutions' workspace shows
    real_unet = next(c for c in real_run.components if c.name == "unet")
    assert real_unet.cpu_activation_bytes == unet.cpu_activation_bytes


def test_decode_peak_taken_inside_the_inspection_equals_decoding_apart(meta_run, real_run, tiny_meta, tiny_random):
    """The plan reuses the VAE plugin's decode peak (a window inside its encode+decode example)
    instead of decoding again; it must be what decoding alone tracks, on meta and on real weights."""
    import torch

    from inspector.measure.activations import window
    from inspector.measure.memory_plan import vae_decode_peaks

    for run, loaded in ((meta_run, tiny_meta), (real_run, tiny_random)):
        details = next(c for c in run.components if c.name == "vae").details
        assert details["decode_input_shape"] == [2, 4, 16, 16]
        device = "meta" if loaded is tiny_meta else "cpu"
        apart = vae_decode_peaks(loaded.pipe.vae, 2, (16, 16), torch.float32, device, ("plain",))["plain"]
        assert details["decode_activation_bytes"] == apart > 0
        on_cpu = vae_decode_peaks(loaded.pipe.vae, 2, (16, 16), torch.float32, device, ("plain",), cpu=True)["plain"]
        assert details["decode_cpu_activation_bytes"] == on_cpu >= apart
        # on meta every convolution input is NCHW-contiguous, as on CUDA; on a CPU GroupNorm keeps
        # the channels-last layout attention leaves, where oneDNN reorders no input
        assert on_cpu > apart or device == "cpu"
        plain = next(p for p in run.memory_plan.placements if p.mode == "all on device" and p.vae == "plain")
        assert plain.activations >= apart
    with window() as outside:  # no tracker: nothing measured, nothing claimed
        torch.ones(4)
    assert not outside.tracked and outside.peak == 0


def test_sliced_decode_extrapolation_is_within_one_percent(tiny_meta):
    import torch

    from inspector.measure.activations import tracking
    from inspector.measure.memory_plan import vae_decode_peaks

    vae = tiny_meta.pipe.vae
    predicted = vae_decode_peaks(vae, 5, (16, 16), torch.float32, "meta", ("sliced",))["sliced"]
    vae.enable_slicing()
    try:
        with torch.no_grad(), tracking() as tracker:
            vae.decode(torch.empty(5, 4, 16, 16, device="meta"))
    finally:
        vae.disable_slicing()
    assert abs(predicted - tracker.peak) <= 0.01 * tracker.peak, (predicted, tracker.peak)
    assert vae.use_slicing is False


def test_placements_follow_diffusers_offload_rules():
    from inspector.measure.memory_plan import placements

    mems = [ComponentMemory("text_encoder", 100, 10, 110, largest_module=40),
            ComponentMemory("unet", 1000, 300, 1300, largest_module=50),
            ComponentMemory("vae", 200, 500, 700, largest_module=20, call="decode")]
    rows = {(p.mode, p.vae): p for p in placements(mems, {"plain": 500, "tiled": 60}, carried=5)}
    assert rows[("all on device", "plain")].peak == 1300 + 500 + 5
    assert rows[("all on device", "plain")].bottleneck == "vae"
    assert rows[("model cpu offload", "plain")].peak == 1000 + 300 + 5
    assert rows[("sequential cpu offload", "plain")].peak == 20 + 500 + 5
    assert rows[("all on device", "tiled")].peak == 1300 + 300 + 5
    assert ("all on device", "sliced") not in rows


def test_fit_search_finds_the_largest_batch_and_size():
    from inspector.measure.memory_plan import fit_verdicts, placements
    from inspector.results.records import MemoryPlan

    def plan_at(batch: int, height: int, width: int, vae: str = "plain") -> MemoryPlan:
        acts = batch * height * width
        return MemoryPlan(method="test", dtype="float32", attention="fused",
                          placements=placements([ComponentMemory("unet", 1000, acts, 1000 + acts)], {}, 0))

    usable = 1000 + 3 * 64 * 64
    verdicts = fit_verdicts(plan_at(1, 64, 64), usable, plan_at, 1, 64, 64, 64)
    top = [v for v in verdicts if v.mode == "all on device"][0]
    assert top.verdict == "fits"
    assert top.max_batch == 3
    assert top.max_size == 64  # 128x128 holds 4x the activations
    assert fit_verdicts(plan_at(1, 64, 64), 500, plan_at, 1, 64, 64, 64)[0].verdict == "does not fit"


def test_resolve_target_sizes_and_names():
    from inspector.errors import OptionError
    from inspector.measure.devices import DEVICES, resolve_target

    assert resolve_target("24GiB")[1] == 24 * 2**30
    assert resolve_target("16 GB")[1] == 16 * 10**9
    assert resolve_target("RTX4090")[1] == DEVICES["rtx4090"].memory
    label, capacity, reserve = resolve_target("cpu")
    assert 0 <= reserve < capacity
    for bad in ("banana", "0GiB", "-3GB", "24 parsecs"):
        with pytest.raises(OptionError):
            resolve_target(bad)


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_inspect_fits_in_every_front_end(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # no wrapping of table cells
    out = tmp_path / "run.json"
    result = cli("inspect", "tiny-sd", "--weights", "meta", "--fits", "1MiB", "--json", str(out),
                 "--csv", str(tmp_path / "csv"), "--html", str(tmp_path / "run.html"))
    assert result.code == 0, result.err
    assert "Will it fit" in result.out and "does not fit" in result.out
    data = json.loads(out.read_text())
    plan = data["memory_plan"]
    assert plan["capacity"] == 2**20
    assert {v["verdict"] for v in plan["verdicts"]} == {"does not fit"}
    assert all(v["max_batch"] is None for v in plan["verdicts"])
    # a size is planned as a GPU is: the tensors; the titles say so
    assert [v["title"] for v in data["views"]][:2] == [
        "Predicted memory by component (tensors only, no kernel workspace)",
        "Predicted peak memory by placement (tensors only, no kernel workspace)"]
    import pandas as pd

    table = pd.read_csv(tmp_path / "csv" / "view_pipeline_will_it_fit_1mib.csv")
    assert set(table["verdict"]) == {"does not fit"}
    from html.parser import HTMLParser

    class Sections(HTMLParser):
        ids: list = []

        def handle_starttag(self, tag, attrs):
            if tag == "section":
                self.ids.append(dict(attrs).get("id"))

    parser = Sections()
    parser.feed((tmp_path / "run.html").read_text())
    assert "pipeline-views" in parser.ids
    # byte columns: exact integers in JSON and CSV, binary units where people read them
    from inspector.results.units import human_bytes

    view = data["views"][1]
    peak = view["rows"][0][view["columns"].index("peak_bytes")]
    assert isinstance(peak, int) and peak == plan["placements"][0]["peak"]
    csv_peaks = pd.read_csv(tmp_path / "csv" / ("view_pipeline_predicted_peak_memory_by_placement_"
                                                "tensors_only_no_kernel_workspace.csv"))["peak_bytes"]
    assert int(csv_peaks[0]) == peak
    assert f"{peak:,}" not in result.out and str(peak) not in result.out
    terminal_row = next(line for line in result.out.splitlines() if "all on device" in line)
    assert human_bytes(peak) in terminal_row
    html = (tmp_path / "run.html").read_text()
    assert f'<td class="num">{human_bytes(peak)}</td>' in html and f"{peak:,}</td>" not in html  # right-aligned
    assert ">peak_bytes</th>" not in html and "<th class=\"num\">peak</th>" in html


def test_tui_shows_byte_columns_in_binary_units(meta_run):
    pytest.importorskip("textual")
    from inspector.results.units import human_bytes
    from inspector.tui.widgets.view_panel import table_text

    view = next(v for v in meta_run.views if v.title.startswith("Predicted peak memory by placement"))
    labels, rows = table_text(view)
    peak = view.rows[0][view.columns.index("peak_bytes")]
    assert "peak" in labels and "peak_bytes" not in labels
    assert rows[0][labels.index("peak")] == human_bytes(peak) and rows[0][0] == view.rows[0][0]


def test_bad_fits_value_is_one_line_and_exit_2(cli, tmp_path):
    out = tmp_path / "run.json"
    result = cli("inspect", "tiny-sd", "--fits", "lots", "--json", str(out))
    assert result.code == 2
    assert result.err.strip().count("\n") == 0 and "--fits" in result.err
    assert not out.exists()


def test_tui_gets_the_pipeline_memory_tab(host, meta_run):
    tabs = [t for group in host.pm.hook.component_tabs(component=meta_run.components[0], run=meta_run) if group
            for t in group]
    assert "Pipeline memory" in [t.title for t in tabs]


def test_roofline_bound_for_a_named_device(meta_run):
    from inspector.measure.devices import DEVICES, roofline_rows

    h100 = DEVICES["h100"]
    rows = {r[0]: r for r in roofline_rows(meta_run.components, h100, "float32", {})}
    unet = meta_run.component("unet")
    r = rows["unet"]
    assert r[3] == pytest.approx(unet.flops / 66.9e12 * 1e3)
    assert r[4] == pytest.approx((unet.parameters.bytes + unet.activation_bytes) / 3.35e12 * 1e3)
    assert r[5] == max(r[3], r[4]) and r[6] in ("compute", "memory")
    assert r[7] is None  # nothing measured on inspect


@pytest.mark.tiny  # the CLI, run in-process, builds the model
def test_inspect_fits_named_device_adds_roofline(cli, tmp_path):
    out = tmp_path / "run.json"
    assert cli("inspect", "tiny-sd", "--fits", "h100", "--json", str(out)).code == 0  # random weights: no search
    titles = [v["title"] for v in json.loads(out.read_text())["views"]]
    assert "Roofline bound: NVIDIA H100 SXM5 80GB, float32" in titles


def test_prediction_before_loading_matches_the_inspection(host, meta_run):
    """What a memory guard calls before weights exist gives the plan inspect gives."""
    import torch

    from inspector.inspection import predict_memory
    from inspector.measure.memory_plan import plan_memory, predicted_peak
    from inspector.plugin.context import InspectContext, InspectOptions
    from inspector.sources.loading import SourceSpec

    # for a GPU: the tensors, as inspect plans on meta
    plan = predict_memory(host, SourceSpec(model="tiny-sd", weights="random", device="cuda"),
                          InspectOptions(batch_size=2))
    for mode in ("all on device", "model cpu offload", "sequential cpu offload"):
        assert predicted_peak(plan, mode) == predicted_peak(meta_run.memory_plan, mode)
    # for the CPU: with convolution workspace, as ``--fits cpu`` plans
    plan = predict_memory(host, SourceSpec(model="tiny-sd", weights="random", device="cpu"),
                          InspectOptions(batch_size=2))
    pipe = host_pipe(host)
    ctx = InspectContext(pipe=pipe, options=InspectOptions(batch_size=2), device="meta", dtype=torch.float32,
                         height=128, width=128, weights="meta")
    on_cpu = plan_memory(pipe, ctx, meta_run.components, cpu=True)
    assert predicted_peak(plan) == predicted_peak(on_cpu) > predicted_peak(meta_run.memory_plan)
    for mode in ("model cpu offload", "sequential cpu offload"):  # offloading to the CPU frees nothing there
        assert predicted_peak(plan, mode) is None
    assert predicted_peak(None) is None


def host_pipe(host):
    from inspector.sources.loading import SourceSpec, load

    return load(SourceSpec(model="tiny-sd", weights="meta"), host.presets()).pipe


def test_a_search_that_reaches_its_limit_reads_as_a_lower_bound():
    """The largest batch searched up to 64 that still fits is "≥64" where people read it (the
    JSON keeps the integer), not a figure the search found."""
    from inspector.measure.memory_plan import MAX_BATCH, MAX_SIZE, at_least, fit_verdicts, placements, plan_views
    from inspector.results.records import MemoryPlan

    def plan_at(batch: int, height: int, width: int, vae: str = "plain") -> MemoryPlan:
        return MemoryPlan(method="test", dtype="float32", attention="fused",
                          placements=placements([ComponentMemory("unet", 10, batch, 10 + batch)], {}, 0))

    plan = plan_at(1, 64, 64)
    plan.verdicts = fit_verdicts(plan, 2**40, plan_at, 1, 64, 64, 64)
    plan.target, plan.capacity = "huge", 2**40
    top = [v for v in plan.verdicts if v.mode == "all on device"][0]
    assert top.max_batch == MAX_BATCH and top.max_size == MAX_SIZE
    table = next(v for v in plan_views(plan) if v.title.startswith("Will it fit"))
    row = table.rows[0]
    assert row[table.columns.index("largest batch")] == f"≥{MAX_BATCH}"
    assert row[table.columns.index("largest square size")] == f"≥{MAX_SIZE}"
    assert at_least(3, MAX_BATCH) == 3 and at_least(None, MAX_BATCH) is None


CONV_RSS = r"""
import json, torch
from inspector.measure.timing import MemoryMeter
from inspector.measure.activations import cpu_conv_workspace
out = []
with torch.no_grad():
    for enabled in (True, False):
        with torch.backends.mkldnn.flags(enabled=enabled):
            for c_in, size in ((128, 128), (512, 32)):
                conv = torch.nn.Conv2d(c_in, c_in, 3, padding=1)
                x = torch.randn(1, c_in, size, size)
                args = (x, conv.weight, conv.bias, [1, 1], [1, 1], [1, 1], False, [0, 0], 1)
                predicted = x.numel() * 4 + cpu_conv_workspace(torch.ops.aten.convolution.default, args)
                conv(x)
                peaks = []
                for _ in range(3):
                    with MemoryMeter("cpu") as meter:
                        y = conv(x)
                        del y
                    peaks.append(meter.stats.peak)
                out.append([enabled, c_in, size, predicted, min(peaks)])
print(json.dumps(out))
"""


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="peak RSS is read from /proc")
def test_cpu_convolution_workspace_is_what_the_process_holds():
    """An independent measurement: peak RSS growth over one convolution (glibc returning every
    freed block at once) is its output plus the workspace the rule predicts, with oneDNN and with
    PyTorch's own kernel (whose im2col buffer is 9x the input here)."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072", MALLOC_TRIM_THRESHOLD_="131072")
    proc = subprocess.run([sys.executable, "-c", CONV_RSS], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    for enabled, c_in, size, predicted, measured in rows:
        assert abs(predicted - measured) <= 0.1 * measured, (enabled, c_in, size, predicted, measured)
    native = [r for r in rows if not r[0] and r[1] == 128]
    assert native[0][4] > 8 * 128 * 128 * 128 * 4  # the im2col buffer is there to be seen
