"""Predicted peak memory per pipeline under diffusers' placements (all on device, model and
sequential CPU offload, VAE slicing and tiling), and the ``--fits`` verdicts.

The per-call activation peaks come from :mod:`inspector.measure.activations`."""
from __future__ import annotations

from typing import Any, Callable

from inspector.measure.activations import tracking
from inspector.measure.recording import cast_to
from inspector.results.records import (
    ComponentMemory,
    ComponentResult,
    FitVerdict,
    MemoryPlan,
    PlacementPrediction,
    TensorInfo,
    View,
)
from inspector.results.units import human_bytes

MODES = ("all on device", "model cpu offload", "sequential cpu offload")
#: how far ``--fits`` searches: the largest batch and square image size it tries
MAX_BATCH = 64
MAX_SIZE = 2048
DENOISER_KINDS = ("unet", "transformer")
#: the plan's note when ``--fits`` could not search for the largest batch and size
NOT_SEARCHED = "largest batch and size are searched on meta weights only (--weights meta)"


def tensor_bytes(infos: list[TensorInfo]) -> int:
    """Bytes of tensors described by shape and dtype."""
    import torch

    total = 0
    for info in infos:
        dtype = getattr(torch, info.dtype, None)
        if not isinstance(dtype, torch.dtype):
            continue
        count = 1
        for d in info.shape:
            count *= int(d)
        total += count * (torch.finfo(dtype).bits if dtype.is_floating_point else torch.iinfo(dtype).bits
                          if dtype != torch.bool else 8) // 8
    return total


def _nbytes(tensor: Any, as_dtype: Any = None) -> int:
    """A tensor's bytes; ``as_dtype``: as they would be with its floating values cast to it."""
    if as_dtype is not None and tensor.is_floating_point():
        return tensor.numel() * as_dtype.itemsize
    return tensor.numel() * tensor.element_size()


def largest_module_bytes(module: Any, as_dtype: Any = None) -> int:
    """The biggest single module's own (not its children's) parameters and buffers, in bytes
    (``as_dtype``: cast to it, see :func:`_nbytes`)."""
    best = 0
    for mod in module.modules():
        own = sum(_nbytes(t, as_dtype) for t in mod.parameters(recurse=False))
        own += sum(_nbytes(t, as_dtype) for t in mod.buffers(recurse=False))
        best = max(best, own)
    return best


def module_bytes(module: Any, as_dtype: Any = None) -> int:
    """All of a module's parameters and buffers, in bytes (``as_dtype``: cast to it)."""
    return sum(_nbytes(t, as_dtype) for t in (*module.parameters(), *module.buffers()))


def run_dtype(result: ComponentResult) -> Any:
    """The dtype a component's plugin ran it in where the pipeline casts it for its call
    (``details["run_dtype"]``, the VAE of SDXL's pipelines); None where it runs as loaded."""
    import torch

    name = result.details.get("run_dtype")
    found = getattr(torch, name, None) if isinstance(name, str) else None
    return found if isinstance(found, torch.dtype) else None


def vae_decode_peaks(vae: Any, batch: int, latent_hw: tuple[int, int], dtype: Any, device: Any,
                     variants: tuple[str, ...] = ("plain", "sliced", "tiled"), plain: int | None = None,
                     cpu: bool = False) -> dict[str, int]:
    """Activation peak of ``vae.decode`` as a text-to-image pipeline calls it, plain and, where
    the VAE supports them, sliced (one image at a time) and tiled. The VAE's settings are restored.
    ``plain``: the plain decode's peak where the inspection already tracked it (the VAE plugin's
    decode inside its encode+decode example, same latent shape), so it is not decoded again.

    Sliced decoding beyond two images is extrapolated from one and two (each further image adds
    its latent slice and its decoded image, the rest of the peak is one image's decode; within 1%
    of decoding them all, ``tests/test_memory.py``), so a batch of 64 costs three decodes, not 64.
    ``cpu``: peaks on a CPU, convolution workspace included (``ActivationTracker.cpu_peak``)."""
    import torch

    channels = int(getattr(vae.config, "latent_channels", 4))
    switches = {"plain": None, "sliced": "enable_slicing", "tiled": "enable_tiling"}
    saved = {name: getattr(vae, name) for name in ("use_slicing", "use_tiling") if hasattr(vae, name)}

    def run(variant: str, n: int) -> int:
        for attr in saved:
            setattr(vae, attr, False)
        switch = switches[variant]
        if switch:
            getattr(vae, switch)()
        shape = (n, channels, *latent_hw)
        latent = torch.empty(shape, dtype=dtype, device=device) if str(device) == "meta" else \
            torch.zeros(shape, dtype=dtype, device=device)
        with torch.no_grad(), tracking() as tracker:
            out = vae.decode(latent)
            del out
        return tracker.cpu_peak if cpu else tracker.peak

    tile = getattr(vae, "tile_latent_min_size", None)
    same_as_plain = {"sliced": batch == 1,  # diffusers slices only batches of more than one
                     "tiled": isinstance(tile, int) and max(latent_hw) <= tile}  # one tile: the plain path
    peaks: dict[str, int] = {} if plain is None else {"plain": plain}
    try:
        for variant in variants:
            switch = switches.get(variant, "missing")
            if switch == "missing" or (switch and not callable(getattr(vae, switch, None))):
                continue
            if same_as_plain.get(variant):
                if "plain" not in peaks:
                    peaks["plain"] = run("plain", batch)
                peaks[variant] = peaks["plain"]
            elif variant == "sliced" and batch > 2:
                one, two = run(variant, 1), run(variant, 2)
                peaks[variant] = two + (batch - 2) * max(two - one, 0)
            elif variant not in peaks:
                peaks[variant] = run(variant, batch)
    finally:
        for attr, value in saved.items():
            setattr(vae, attr, value)
    return peaks


def component_memories(pipe: Any, components: list[ComponentResult], vae_peaks: dict[str, int] | None,
                       cpu: bool = False) -> list[ComponentMemory]:
    """One entry per component whose device memory counts: its weights and its call's activations
    (``cpu``: on a CPU, convolution workspace included)."""
    out = []
    for comp in components:
        if not comp.present or comp.parameters is None:
            continue
        module = pipe.components.get(comp.name)
        is_module = module is not None and hasattr(module, "modules")
        cast = run_dtype(comp) if is_module else None  # weights as the pipeline holds them for the call
        largest = largest_module_bytes(module, cast) if is_module else 0
        weights = module_bytes(module, cast) if cast is not None else comp.parameters.bytes
        if comp.kind == "vae" and vae_peaks:
            acts, call = vae_peaks.get("plain", 0), "decode"
        else:
            acts, call = (comp.cpu_activation_bytes if cpu and comp.cpu_activation_bytes is not None
                          else comp.activation_bytes) or 0, "forward"
        out.append(ComponentMemory(component=comp.name, weights=weights, activations=acts, peak=weights + acts,
                                   largest_module=largest, call=call))
    return out


def placements(memories: list[ComponentMemory], vae_peaks: dict[str, int], carried: int, cpu: bool = False
               ) -> list[PlacementPrediction]:
    """Peak device memory under each placement and VAE decode variant.

    all on device: every weight, plus the largest call's activations (components run one
    after another); model cpu offload: the largest weights-plus-activations of one model;
    sequential cpu offload: the largest activations plus the largest single module's
    weights. Tensors carried between components are added to each. On a CPU (``cpu``) only
    everything on the device: offloading to the CPU frees no memory there."""
    rows = []
    weights_total = sum(m.weights for m in memories)
    for vae_variant in [v for v in ("plain", "sliced", "tiled") if v in vae_peaks] or ["plain"]:
        calls = {m.component: (vae_peaks[vae_variant] if m.call == "decode" and vae_variant in vae_peaks
                               else m.activations) for m in memories}
        by = {m.component: m for m in memories}
        if not calls:
            continue
        top = max(calls, key=lambda c: calls[c])
        rows.append(PlacementPrediction("all on device", vae_variant, weights_total + calls[top] + carried,
                                        weights_total, calls[top], top))
        if cpu:
            continue
        top = max(calls, key=lambda c: by[c].weights + calls[c])
        rows.append(PlacementPrediction("model cpu offload", vae_variant, by[top].weights + calls[top] + carried,
                                        by[top].weights, calls[top], top))
        top = max(calls, key=lambda c: by[c].largest_module + calls[c])
        rows.append(PlacementPrediction("sequential cpu offload", vae_variant,
                                        by[top].largest_module + calls[top] + carried, by[top].largest_module,
                                        calls[top], top))
    return rows


def attention_kind(pipe: Any) -> str:
    names = set()
    for comp in pipe.components.values():
        processors = getattr(comp, "attn_processors", None)
        if processors:
            names |= {type(p).__name__ for p in processors.values()}
    if not names:
        return "as loaded"
    eager = {"AttnProcessor", "AttnAddedKVProcessor"}
    return "eager (attention matrix held)" if names <= eager else "fused (scaled_dot_product_attention)"


def plan_memory(pipe: Any, ctx: Any, components: list[ComponentResult],
                vae_variants: tuple[str, ...] = ("plain", "sliced", "tiled"), cpu: bool | None = None) -> MemoryPlan:
    """The memory plan of a pipeline whose components were just inspected (``ctx``: the run).
    ``cpu``: plan for a CPU, convolution workspace included; by default where the run's tensors
    are on the CPU."""
    dtype = str(ctx.dtype).replace("torch.", "")
    on_meta = ctx.on_meta
    if cpu is None:
        cpu = str(ctx.device) == "cpu"
    vae = pipe.components.get("vae")
    vae_peaks: dict[str, int] = {}
    notes: list[str] = []
    if vae is not None and callable(getattr(vae, "decode", None)):
        channels = int(getattr(vae.config, "latent_channels", 4))
        detail = "decode_cpu_activation_bytes" if cpu else "decode_activation_bytes"
        known = next((c.details.get(detail) for c in components if c.name == "vae" and
                      c.details.get("decode_input_shape") == [ctx.options.batch_size, channels, *ctx.latent_size]),
                     None)
        vae_result = next((c for c in components if c.name == "vae"), None)
        cast = run_dtype(vae_result) if vae_result is not None else None
        try:
            with cast_to(vae, cast):  # as the pipeline decodes: cast before, back after (not tracked)
                vae_peaks = vae_decode_peaks(vae, ctx.options.batch_size, ctx.latent_size, cast or ctx.dtype,
                                             ctx.device, vae_variants, plain=known if isinstance(known, int) else None,
                                             cpu=cpu)
        except Exception as exc:  # noqa: BLE001 - a VAE we cannot drive: its roundtrip figure stands in
            notes.append(f"VAE decode not predicted apart ({type(exc).__name__}); its encode+decode example used")
        if cast is not None:
            name = str(cast).replace("torch.", "")
            notes.append(f"vae: {type(pipe).__name__} casts the {dtype} VAE to {name} to decode, so its weights "
                         f"({human_bytes(module_bytes(vae, cast))} in {name}) and its decode are predicted in {name}")
    memories = component_memories(pipe, components, vae_peaks, cpu)
    carried = sum(tensor_bytes(c.inputs) for c in components if c.kind in DENOISER_KINDS and c.present)
    method = "tracked on meta tensors (no weights)" if on_meta else f"tracked on real tensors ({ctx.device})"
    plan = MemoryPlan(
        method=method + (", for a CPU: convolution workspace included, no offload placements" if cpu else
                         ", tensors only (no kernel workspace)"),
        dtype=dtype, attention=attention_kind(pipe), components=memories,
        placements=placements(memories, vae_peaks, carried, cpu), carried=carried, notes=notes, cpu=cpu)
    if not any(c.activation_bytes for c in components if c.present):
        plan.notes.append("no component ran an example call: activations are not predicted")
    return plan


def predicted_peak(plan: MemoryPlan | None, mode: str = "all on device", vae: str = "plain") -> int | None:
    """The predicted peak bytes for one placement: what a memory guard before loading compares
    with the memory it finds free. ``None`` without a plan."""
    if plan is None:
        return None
    for row in plan.placements:
        if row.mode == mode and row.vae == vae:
            return row.peak
    return None


def plan_views(plan: MemoryPlan) -> list[View]:
    """The plan as tables every front end renders (terminal, HTML, CSV, TUI)."""

    # byte columns hold exact integers (JSON, CSV); front ends show them in binary units
    basis = "on a CPU, convolution workspace included" if plan.cpu else "tensors only, no kernel workspace"
    views = [View(
        title=f"Predicted memory by component ({basis})",
        columns=["component", "call", "weights_bytes", "activations_bytes", "peak_bytes", "largest_module_bytes"],
        rows=[[m.component, m.call, m.weights, m.activations, m.peak, m.largest_module] for m in plan.components])]
    views.append(View(
        title=f"Predicted peak memory by placement ({basis})",
        columns=["placement", "vae decode", "peak_bytes", "weights_on_device_bytes", "activations_bytes",
                 "peak reached in"],
        rows=placement_rows(plan)))
    notes = [f"{plan.method}, {plan.dtype}, attention {plan.attention}; tensors carried between components "
             f"{human_bytes(plan.carried)}"] + plan.notes
    if plan.verdicts:
        views.append(View(
            title=f"Will it fit: {plan.target}",
            columns=["placement", "vae decode", "verdict", "peak_bytes", "usable_bytes", "headroom_bytes",
                     "largest batch", "largest square size"],
            rows=[[v.mode, v.vae, v.verdict, v.peak, v.usable, v.headroom, at_least(v.max_batch, MAX_BATCH),
                   at_least(v.max_size, MAX_SIZE)] for v in plan.verdicts]))
        held = "in use now" if plan.cpu else "reserved for the runtime"
        searched = NOT_SEARCHED not in plan.notes
        notes.append(f"{plan.target}: {human_bytes(plan.capacity)} less {human_bytes(plan.reserve)} {held}; 'fits' "
                     "leaves at least 10% of the rest free" + (
                         f"; largest batch searched up to {MAX_BATCH}, largest square size up to {MAX_SIZE} px"
                         if searched else ""))
    views.append(View(title="Memory prediction", kind="note", text="; ".join(notes)))
    return views


def placement_rows(plan: MemoryPlan) -> list[list[Any]]:
    """One row per placement and VAE decode, the VAE variants that predict the very same figures
    in one row (``plain = sliced = tiled``): a placement's rows differ only where the decode does."""
    rows: list[list[Any]] = []
    for mode in dict.fromkeys(p.mode for p in plan.placements):
        same: dict[tuple[Any, ...], list[str]] = {}
        for p in plan.placements:
            if p.mode == mode:
                same.setdefault((p.peak, p.weights_on_device, p.activations, p.bottleneck), []).append(p.vae)
        rows.extend([mode, " = ".join(vaes), *figures] for figures, vaes in same.items())
    return rows


def at_least(found: int | None, limit: int) -> int | str | None:
    """A search result as it reads: the search's own limit is a lower bound ("≥64"), not a figure
    (the JSON's ``verdicts`` keep the integer)."""
    return f"≥{limit}" if found is not None and found >= limit else found


def verdict(peak: int, usable: int) -> str:
    if peak <= 0.9 * usable:
        return "fits"
    if peak <= usable:
        return "tight"
    return "does not fit"


def fit_verdicts(plan: MemoryPlan, usable: int, probe: Callable[[int, int, int, str], MemoryPlan] | None,
                 batch: int, height: int, width: int, multiple: int, max_batch: int = MAX_BATCH,
                 max_size: int = MAX_SIZE) -> list[FitVerdict]:
    """One verdict per placement; ``probe(batch, height, width, vae_variant)`` predicts again
    (that VAE variant only) for the largest batch at the run's size and the largest square
    size at the run's batch that fit, up to ``max_batch`` and ``max_size``."""
    cache: dict[tuple[int, int, int, str], MemoryPlan] = {}

    def peak_at(b: int, h: int, w: int, mode: str, vae: str) -> int | None:
        if (b, h, w) == (batch, height, width):
            found = plan
        else:
            if (b, h, w, vae) not in cache:
                cache[(b, h, w, vae)] = probe(b, h, w, vae)  # type: ignore[misc]
            found = cache[(b, h, w, vae)]
        for row in found.placements:
            if row.mode == mode and row.vae == vae:
                return row.peak
        return None

    def largest(fits: Callable[[int], bool], low: int, high: int) -> int | None:
        """The largest n in [low, high] with fits(n), assuming memory grows with n."""
        if not fits(low):
            return None
        n = low
        while n * 2 <= high and fits(n * 2):
            n *= 2
        lo, hi = n, min(n * 2, high + 1)  # fits(lo); hi does not fit or is out of range
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if fits(mid):
                lo = mid
            else:
                hi = mid
        return lo

    out = []
    for row in plan.placements:
        item = FitVerdict(mode=row.mode, vae=row.vae, peak=row.peak, usable=usable, headroom=usable - row.peak,
                          verdict=verdict(row.peak, usable))
        if probe is not None:
            def fits_batch(b: int, row: PlacementPrediction = row) -> bool:
                p = peak_at(b, height, width, row.mode, row.vae)
                return p is not None and p <= usable

            def fits_size(k: int, row: PlacementPrediction = row) -> bool:
                p = peak_at(batch, k * multiple, k * multiple, row.mode, row.vae)
                return p is not None and p <= usable

            item.max_batch = largest(fits_batch, 1, max_batch)
            units = largest(fits_size, 1, max_size // multiple)
            item.max_size = units * multiple if units else None
        out.append(item)
    return out
