"""Predicted peak memory: per component, and per pipeline under diffusers' placements.

How: while a component's example call runs (``capture``), every tensor an operator
returns is tracked by its storage; the bytes of the storages still alive are summed
and their peak kept (:class:`ActivationTracker`). On ``meta`` this costs no memory and
works for any size, batch and dtype, so it predicts what a device would hold; on real
tensors the same tracking measures it, which is how ``bench/memory_prediction.py``
checks the prediction.

Why not ``torch.distributed._tools.mem_tracker.MemTracker``: it does the same
storage-level accounting (and works under ``FakeTensorMode`` and on ``meta``), and on
a tiny UNet its activation peak equals ours (``tests/test_memory.py`` checks this), but
it installs module hooks of its own and classifies every tensor; on SD 2.1's UNet that
took a 0.6 s capture to 3.4 s, and ``inspect`` already walks the modules once. We need
one number per call, so the count rides in the dispatch mode the FLOP counter already
runs.

Attention: on ``meta``, ``scaled_dot_product_attention`` falls back to its math
decomposition and would materialise the full attention matrix, which no fused kernel
does (CPU flash attention, CUDA flash and memory-efficient attention). Under
:func:`fused_attention_on_meta` it is routed to the CPU flash kernel's meta function,
which returns what the fused kernels return (the output and a float32 log-sum-exp).
With ``--attention eager`` the processors do explicit matmuls and softmax and the matrix
is counted, as it is allocated.

CPU convolution workspace: a CPU convolution allocates inside the operator, beyond the tensor
it returns, and frees it before returning: with oneDNN (PyTorch's default CPU path for float32
NCHW inputs) a copy of the input and of the weight reordered into the blocked layouts its
kernels read; with PyTorch's own kernel (``torch.backends.mkldnn.enabled = False``) the im2col
buffer of the whole batch, ``N * C_in * k_h * k_w * H_out * W_out`` elements. Both follow from
the shapes (:func:`cpu_conv_workspace`; ``bench/memory_prediction.py`` checks one convolution
and whole calls against peak RSS), so the tracker also keeps ``cpu_peak``: the highest of the
live bytes plus the running convolution's workspace. It is what a CPU holds, and what ``--fits
cpu`` and a run on a CPU use; other devices get ``peak``.

What is not counted: other kernels' private workspaces (cuDNN convolution workspaces, which
depend on the algorithm cuDNN picks; cuBLAS handles; CPU matmul packing buffers), the CUDA
context (reserved apart in the fit verdict) and allocator rounding.
"""
from __future__ import annotations

import contextlib
import contextvars
import weakref
from typing import Any, Callable, Iterator

from .results import (ComponentMemory, ComponentResult, FitVerdict, MemoryPlan, PlacementPrediction, TensorInfo,
                      View)

MODES = ("all on device", "model cpu offload", "sequential cpu offload")
#: how far ``--fits`` searches: the largest batch and square image size it tries
MAX_BATCH = 64
MAX_SIZE = 2048
DENOISER_KINDS = ("unet", "transformer")
#: the plan's note when ``--fits`` could not search for the largest batch and size
NOT_SEARCHED = "largest batch and size are searched on meta weights only (--weights meta)"


def _storage_keys(values: tuple) -> set[int]:
    import torch

    keys = set()
    for value in values:
        items = value if isinstance(value, (tuple, list)) else (value,)
        for item in items:
            if isinstance(item, torch.Tensor):
                try:
                    keys.add(item.untyped_storage()._cdata)
                except (RuntimeError, NotImplementedError):
                    pass
    return keys


class ActivationTracker:
    """Live and peak bytes of the storages operators create while it counts.

    A storage is counted once (views and in-place results share it) and uncounted when
    it is freed (a weak reference's callback). Tensors that existed before, such as
    parameters and inputs, are never counted."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0
        #: the peak with each CPU convolution's workspace added while it runs (module docstring);
        #: never below ``peak``: every new storage updates both
        self.cpu_peak = 0
        self._refs: dict[int, tuple[Any, int]] = {}
        #: open :class:`Window` s, each keeping the highest ``live`` since it opened
        self._windows: list[Window] = []

    def add(self, out: Any, args: tuple = (), kwargs: dict | None = None, func: Any = None) -> None:
        """Count ``out``'s storages unless they alias an input's (views, in-place results,
        ``weight.t()``: those bytes were there before the op). ``func``, the operator that made
        ``out``, tells a convolution apart for ``cpu_peak``."""
        import torch

        outs = [out] if isinstance(out, torch.Tensor) else \
            [t for t in out if isinstance(t, torch.Tensor)] if isinstance(out, (tuple, list)) else []
        if outs:
            inputs = _storage_keys(args)
            if kwargs:
                inputs |= _storage_keys(tuple(kwargs.values()))
            for tensor in outs:
                self._add_tensor(tensor, inputs)
        workspace = cpu_conv_workspace(func, args) if func is not None else 0
        if workspace:  # without one, each new storage has updated cpu_peak already
            self._cpu_top(self.live + workspace)

    def _cpu_top(self, value: int) -> None:
        if value > self.cpu_peak:
            self.cpu_peak = value
        for window in self._windows:
            if value > window.cpu_top:
                window.cpu_top = value

    def _add_tensor(self, tensor: Any, inputs: set[int]) -> None:
        try:
            storage = tensor.untyped_storage()
        except (RuntimeError, NotImplementedError):  # sparse and other storage-less tensors
            return
        key = storage._cdata
        if key in self._refs or key in inputs:
            return
        size = storage.nbytes()
        self._refs[key] = (weakref.ref(storage, self._freed(key)), size)
        self.live += size
        if self.live > self.peak:
            self.peak = self.live
        for window in self._windows:
            if self.live > window.top:
                window.top = self.live
        self._cpu_top(self.live)

    def _freed(self, key: int) -> Callable[[Any], None]:
        def callback(_ref: Any) -> None:
            entry = self._refs.pop(key, None)
            if entry is not None:
                self.live -= entry[1]

        return callback

    def stop(self) -> None:
        """Forget every storage: callbacks that fire later change nothing."""
        self._refs.clear()


class Window:
    """The activation peak of one part of a tracked call (a VAE's decode inside its encode+decode
    example): the highest bytes held since it opened, less those held when it opened. Equals
    tracking that part alone as long as nothing held before is freed inside it (the caller
    keeps its earlier results referenced)."""

    def __init__(self, base: int) -> None:
        self.base = base
        self.top = base
        self.cpu_top = base
        #: whether a tracker was counting (``peak`` means nothing otherwise)
        self.tracked = False

    @property
    def peak(self) -> int:
        return self.top - self.base

    @property
    def cpu_peak(self) -> int:
        return self.cpu_top - self.base


#: the tracker counting in this context (set by :func:`tracking` and ``capture``), for :func:`window`
_ACTIVE: contextvars.ContextVar[ActivationTracker | None] = contextvars.ContextVar("ldm_inspector_tracker",
                                                                                  default=None)


def cpu_conv_workspace(func: Any, args: tuple) -> int:
    """Bytes a CPU convolution allocates inside the operator for ``aten.convolution(args)``
    (module docstring), with this torch's CPU backend settings; 0 for any other operator and for
    what is not modelled (transposed or grouped convolutions, dtypes other than float32,
    layouts other than NCHW-contiguous)."""
    import torch

    if func is not torch.ops.aten.convolution.default or len(args) < 9:
        return 0
    x, weight, _bias, stride, padding, dilation, transposed, _output_padding, groups = args[:9]
    if not isinstance(x, torch.Tensor) or not isinstance(weight, torch.Tensor) or transposed or groups != 1 or \
            x.dtype != torch.float32 or x.dim() not in (4, 5) or not x.is_contiguous():
        return 0
    kernel = list(weight.shape[2:])
    stride, padding, dilation = list(stride), list(padding), list(dilation)
    pointwise = all(k == 1 for k in kernel) and all(s == 1 for s in stride) and all(p == 0 for p in padding)
    # PyTorch's choice (Convolution.cpp, use_mkldnn): oneDNN for float32 unless a single-threaded
    # unstrided 1x1 convolution of a batch under 16, which goes to a matmul
    onednn = torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled and not (
        pointwise and x.shape[0] < 16 and torch.get_num_threads() <= 1 and all(d == 1 for d in dilation))
    if onednn:
        return x.numel() * x.element_size() + weight.numel() * weight.element_size()
    if pointwise:
        return 0
    out_elems = 1
    for i, k in enumerate(kernel):
        out_elems *= (x.shape[2 + i] + 2 * padding[i] - dilation[i] * (k - 1) - 1) // stride[i] + 1
    columns = x.shape[0] * x.shape[1] * out_elems
    for k in kernel:
        columns *= k
    return columns * x.element_size()


@contextlib.contextmanager
def active(tracker: ActivationTracker) -> Iterator[ActivationTracker]:
    """Make ``tracker`` the one :func:`window` reads while the block runs."""
    token = _ACTIVE.set(tracker)
    try:
        yield tracker
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def window() -> Iterator[Window]:
    """Measure the activation peak of the block inside the tracked call that runs it; outside
    any tracking it measures nothing (``tracked`` stays False)."""
    tracker = _ACTIVE.get()
    found = Window(tracker.live if tracker else 0)
    if tracker is None:
        yield found
        return
    found.tracked = True
    tracker._windows.append(found)
    try:
        yield found
    finally:
        tracker._windows.remove(found)


@contextlib.contextmanager
def tracking() -> Iterator[ActivationTracker]:
    """Track the activation bytes of whatever runs inside (no FLOPs, no module hooks)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    from .metaops import call

    tracker = ActivationTracker()

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            out = call(func, args, kwargs or {})
            tracker.add(out, args, kwargs, func)
            return out

    try:
        with fused_attention_on_meta(), _Mode(), active(tracker):
            yield tracker
    finally:
        tracker.stop()


@contextlib.contextmanager
def fused_attention_on_meta() -> Iterator[None]:
    """Route ``F.scaled_dot_product_attention`` on ``meta`` tensors to a fused kernel's meta
    function, so the prediction holds what fused attention holds (see the module docstring)."""
    import torch
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode

    fused = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

    class _Mode(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention and fused is not None and args and \
                    getattr(args[0], "device", None) is not None and args[0].device.type == "meta" and \
                    not kwargs.get("enable_gqa", False) and len(args) <= 6:
                names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")
                bound = dict(zip(names, args), **kwargs)
                query, key, value = bound["query"], bound["key"], bound["value"]
                if query.dim() == 4 and key.shape[1] == query.shape[1]:
                    return fused(query, key, value, float(bound.get("dropout_p", 0.0) or 0.0),
                                 bool(bound.get("is_causal", False)), attn_mask=bound.get("attn_mask"),
                                 scale=bound.get("scale"))[0]
            return func(*args, **kwargs)

    with _Mode():
        yield


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


def largest_module_bytes(module: Any) -> int:
    """The biggest single module's own (not its children's) parameters and buffers, in bytes."""
    best = 0
    for mod in module.modules():
        own = sum(t.numel() * t.element_size() for t in mod.parameters(recurse=False))
        own += sum(t.numel() * t.element_size() for t in mod.buffers(recurse=False))
        best = max(best, own)
    return best


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
        if switches[variant]:
            getattr(vae, switches[variant])()
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
            if switches.get(variant, "missing") == "missing" or \
                    (switches[variant] and not callable(getattr(vae, switches[variant], None))):
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
        largest = largest_module_bytes(module) if module is not None and hasattr(module, "modules") else 0
        weights = comp.parameters.bytes
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
        try:
            vae_peaks = vae_decode_peaks(vae, ctx.options.batch_size, ctx.latent_size, ctx.dtype, ctx.device,
                                         vae_variants, plain=known if isinstance(known, int) else None, cpu=cpu)
        except Exception as exc:  # a VAE we cannot drive: its roundtrip figure stands in
            notes.append(f"VAE decode not predicted apart ({type(exc).__name__}); its encode+decode example used")
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


def best(plan: MemoryPlan, mode: str) -> PlacementPrediction | None:
    """The lowest peak of a placement mode over the VAE variants."""
    rows = [p for p in plan.placements if p.mode == mode]
    return min(rows, key=lambda p: p.peak) if rows else None


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
    from .units import human_bytes

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
        rows=[[p.mode, p.vae, p.peak, p.weights_on_device, p.activations, p.bottleneck] for p in plan.placements]))
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
