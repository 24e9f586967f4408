"""Capture what a module does in one forward pass: per-layer shapes and FLOPs.

Hooks go on every submodule (``with_kwargs=True`` so keyword inputs count, and
outputs are flattened through tuples, dicts and diffusers' ``BaseOutput``
dataclasses, which torchinfo reduces to their last value). FLOPs come from
torch's FLOP formulas (``torch.utils.flop_counter``), which count attention matmuls;
each layer's share is the difference of the running total between its pre- and
post-hook, so nested modules and repeated calls add up correctly. Works on
``meta`` tensors. All hooks are removed and training flags restored afterwards.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from inspector.measure.activations import ActivationTracker, active, fused_attention_on_meta
from inspector.measure.metaops import call
from inspector.results.records import LayerRecord, TensorInfo
from inspector.runtime.signals import checkpoint


@dataclass
class Capture:
    """What ``capture`` saw: layers in module order, total FLOPs, the call's return value."""

    layers: list[LayerRecord] = field(default_factory=list)
    flops: int = 0
    value: Any = None
    #: peak bytes of the tensors the call created (see ``inspector.measure.memory_plan``)
    activation_bytes: int = 0
    #: the same with CPU convolution workspace (``ActivationTracker.cpu_peak``)
    cpu_activation_bytes: int = 0


def iter_tensors(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(name, tensor)`` for every tensor inside nested outputs."""
    import torch

    if isinstance(value, torch.Tensor):
        yield prefix or "output", value
    elif isinstance(value, dict):  # includes diffusers BaseOutput and transformers ModelOutput
        for key, item in value.items():
            yield from iter_tensors(item, f"{prefix}.{key}" if prefix else str(key))
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from iter_tensors(getattr(value, f.name), f"{prefix}.{f.name}" if prefix else f.name)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from iter_tensors(item, f"{prefix}[{i}]" if prefix else f"[{i}]")
    elif hasattr(value, "mean") and hasattr(value, "std") and hasattr(value, "parameters"):
        # diffusers' DiagonalGaussianDistribution
        yield from iter_tensors({"mean": value.mean, "std": value.std}, prefix)


def tensor_infos(value: Any, prefix: str = "") -> list[TensorInfo]:
    return [TensorInfo(name, list(t.shape), str(t.dtype).replace("torch.", ""))
            for name, t in iter_tensors(value, prefix)]


def _shapes(value: Any) -> list[list[int]]:
    return [list(t.shape) for _, t in iter_tensors(value)]


def _sdpa_cpu_flops(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query, key, value)


def flop_registry() -> dict[Any, Callable[..., int]]:
    """torch's FLOP formulas, plus the CPU's fused attention kernel.

    On a CPU, ``scaled_dot_product_attention`` dispatches to
    ``_scaled_dot_product_flash_attention_for_cpu``, which torch's registry does
    not know: attention would count as zero there while the same model on
    ``meta`` counts it. It gets the same formula as the CUDA kernels.
    """
    import torch
    from torch.utils.flop_counter import flop_registry as registry
    from torch.utils.flop_counter import shape_wrapper

    table = dict(registry)
    cpu_flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if cpu_flash is not None:
        table[cpu_flash] = shape_wrapper(_sdpa_cpu_flops)
    return table


#: FLOPs by operator and input shapes: torch's formulas read only shapes (and the plain
#: arguments), and spend most of their time mapping over the arguments to get them
_FLOPS: dict[tuple, int] = {}


def _flop_key(func: Any, args: tuple, kwargs: dict) -> tuple | None:
    """``(func, shapes and plain values of the arguments)``, or None where an argument is neither."""
    import torch

    def part(value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return ("T", tuple(value.shape), value.dtype)
        if isinstance(value, (list, tuple)):
            return (type(value).__name__, tuple(part(v) for v in value))
        if value is None or type(value) in (bool, int, float, str):
            return (type(value).__name__, value)
        raise TypeError

    try:
        return (func, part(args), tuple(sorted((k, part(v)) for k, v in kwargs.items())))
    except TypeError:
        return None


class FlopCounter:
    """Counts FLOPs of every op that runs inside it, with torch's own formulas.

    ``torch.utils.flop_counter.FlopCounterMode`` first tries a Python
    decomposition of every op it has no formula for (group norm, SiLU, add...),
    which costs seconds on a full-size UNet and adds no FLOPs (those
    decompositions hold no matmul or convolution). This mode runs each op once and
    scores it from the same registry; ``tests/test_capture.py`` checks the totals
    agree with ``FlopCounterMode``.
    """

    def __init__(self, *, count: bool = True, tracker: Any = None) -> None:
        self.total = 0
        self._registry = flop_registry() if count else {}
        self._mode: Any = None
        #: an ``inspector.measure.activations.ActivationTracker`` fed with every op's output, or None
        self.tracker = tracker

    def __enter__(self) -> FlopCounter:
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self

        class _Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
                checkpoint()  # an interrupt held since the last operator is raised here, before this one
                kwargs = kwargs or {}
                out = call(func, args, kwargs)
                formula = counter._registry.get(func._overloadpacket)
                if formula is not None:
                    key = _flop_key(func, args, kwargs)
                    flops = _FLOPS.get(key) if key is not None else None
                    if flops is None:
                        flops = int(formula(*args, **kwargs, out_val=out))
                        if key is not None and len(_FLOPS) < 100_000:
                            _FLOPS[key] = flops
                    counter.total += flops
                if counter.tracker is not None:
                    counter.tracker.add(out, args, kwargs, func)
                return out

        self._mode = _Mode()
        self._mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._mode.__exit__(*exc)
        self._mode = None

    def get_total_flops(self) -> int:
        return self.total


def capture(root: Any, call: Callable[[], Any], *, count_flops: bool = True, layers: bool = True) -> Capture:
    """Run ``call()`` (which uses ``root`` or its submodules) and record every submodule it runs,
    the FLOPs, and the peak bytes of the tensors it creates. ``layers=False, count_flops=False``
    tracks memory only (the quick pass ``--fits`` repeats at other sizes)."""
    import torch

    tracker = ActivationTracker()
    counter = FlopCounter(count=count_flops, tracker=tracker)
    modules = [(name, mod) for name, mod in root.named_modules() if name] if layers else []
    counts = subtree_parameters(root) if layers else {}
    records = {
        name: LayerRecord(name=name, type=type(mod).__name__, depth=name.count(".") + 1, parameters=counts[mod])
        for name, mod in modules
    }
    started: dict[str, list[int]] = {}
    first_calls = [0]
    handles = []

    def total() -> int:
        return counter.get_total_flops()

    def make_hooks(name: str) -> tuple[Callable, Callable]:
        record = records[name]

        def pre(_mod: Any, args: tuple, kwargs: dict) -> None:
            started.setdefault(name, []).append(total())
            if record.calls == 0 and record.order is None:
                record.input_shapes = _shapes(args) + _shapes(kwargs)
                record.order = first_calls[0]
                first_calls[0] += 1

        def post(_mod: Any, args: tuple, kwargs: dict, output: Any) -> None:
            stack = started.get(name)
            begin = stack.pop() if stack else total()
            if count_flops:
                record.flops = (record.flops or 0) + total() - begin
            if record.calls == 0:
                record.output_shapes = _shapes(output)
            record.calls += 1

        return pre, post

    training = {mod: mod.training for mod in root.modules()}
    try:
        for name, mod in modules:
            pre, post = make_hooks(name)
            handles.append(mod.register_forward_pre_hook(pre, with_kwargs=True))
            handles.append(mod.register_forward_hook(post, with_kwargs=True, always_call=True))
        root.eval()
        # no_grad, not inference_mode: under inference_mode composite ops such as
        # aten.linear reach the dispatch mode undecomposed and would score zero.
        with torch.no_grad(), fused_attention_on_meta(), counter, active(tracker):
            value = call()
    finally:
        tracker.stop()
        for handle in handles:
            handle.remove()
        for mod, was_training in training.items():  # each module's own flag (``train()`` would recurse)
            mod.training = was_training
    if counter is not None:
        sum_containers(records)
    return Capture(layers=list(records.values()), flops=total(), value=value, activation_bytes=tracker.peak,
                   cpu_activation_bytes=tracker.cpu_peak)


def subtree_parameters(root: Any) -> dict[Any, int]:
    """``sum(p.numel() for p in mod.parameters())`` for every module under ``root``, in one walk:
    each module's own parameters plus its children's totals. A parameter shared by two modules
    (tied weights) is counted once per subtree by ``parameters()``; where any is shared, each
    module is counted that way instead."""
    every = [mod for _, mod in root.named_modules(remove_duplicate=False)]
    modules = list(dict.fromkeys(every))
    params = [p for mod in modules for p in mod._parameters.values() if p is not None]
    if len(modules) != len(every) or len(params) != len(set(map(id, params))):
        return {mod: sum(p.numel() for p in mod.parameters()) for mod in modules}
    counts: dict[Any, int] = {}
    for mod in reversed(modules):  # every module after its descendants
        own = sum(p.numel() for p in mod._parameters.values() if p is not None)
        counts[mod] = own + sum(counts[child] for child in mod._modules.values() if child is not None)
    return counts


def sum_containers(records: dict[str, LayerRecord]) -> None:
    """Give modules that never ran themselves (``ModuleList`` containers such as ``down_blocks``)
    the FLOPs of their direct children: everything that ran inside them. ``calls`` stays 0 and
    they get no shapes, since they were never called."""
    children: dict[str, list[LayerRecord]] = {}
    for name, record in records.items():
        if "." in name:
            children.setdefault(name.rsplit(".", 1)[0], []).append(record)
    for record in sorted(records.values(), key=lambda r: -r.depth):
        if record.calls or record.name not in children:
            continue
        counted = [c.flops for c in children[record.name] if c.flops is not None]
        if counted:
            record.flops = sum(counted)


def parameter_stats(module: Any) -> dict[str, Any]:
    """Total and trainable parameter counts, and bytes by dtype (parameters and buffers)."""
    total = trainable = 0
    by_dtype: dict[str, int] = {}
    for p in module.parameters():
        n = p.numel()
        total += n
        trainable += n if p.requires_grad else 0
        key = str(p.dtype).replace("torch.", "")
        by_dtype[key] = by_dtype.get(key, 0) + n * p.element_size()
    for b in module.buffers():
        key = str(b.dtype).replace("torch.", "")
        by_dtype[key] = by_dtype.get(key, 0) + b.numel() * b.element_size()
    return {"total": total, "trainable": trainable, "bytes": sum(by_dtype.values()), "by_dtype": by_dtype}
