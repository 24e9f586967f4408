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
That holds however it is called: positionally (transformers, diffusers' ``AttnProcessor2_0``)
or with keywords only (diffusers' ``dispatch_attention_fn`` backends, which Flux, Wan and
QwenImage attend through), and for grouped-query attention (``enable_gqa``), which the fused
kernels read without repeating key and value. Where only the math path is allowed
(``sdpa_kernel(SDPBackend.MATH)``, diffusers' ``_native_math`` backend) a device holds the
matrix, and so does the prediction. With ``--attention eager`` the processors do explicit
matmuls and softmax and the matrix is counted, as it is allocated.

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

from inspector.measure.metaops import call
from inspector.runtime.signals import checkpoint


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

    tracker = ActivationTracker()

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            checkpoint()  # an interrupt held since the last operator is raised here, before this one
            out = call(func, args, kwargs or {})
            tracker.add(out, args, kwargs, func)
            return out

    try:
        with fused_attention_on_meta(), _Mode(), active(tracker):
            yield tracker
    finally:
        tracker.stop()


#: ``F.scaled_dot_product_attention``'s parameters, in order: callers pass any of them by keyword
#: (diffusers' ``dispatch_attention_fn`` backends pass every one of them so)
SDPA_PARAMETERS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale", "enable_gqa")


def sdpa_arguments(args: tuple, kwargs: dict) -> dict[str, Any] | None:
    """A call of ``F.scaled_dot_product_attention``'s arguments by name, positional or keyword;
    None where they do not bind (too many, an unknown or a repeated name, q/k/v missing): torch
    then answers that call itself."""
    if len(args) > len(SDPA_PARAMETERS):
        return None
    bound = dict(zip(SDPA_PARAMETERS, args))
    for name, value in kwargs.items():
        if name not in SDPA_PARAMETERS or name in bound:
            return None
        bound[name] = value
    if not all(name in bound for name in SDPA_PARAMETERS[:3]):
        return None
    return bound


def fused_kernel_enabled() -> bool:
    """Whether the SDPA backends a device would pick from include a fused one: off only under
    ``torch.nn.attention.sdpa_kernel(SDPBackend.MATH)`` (diffusers' ``_native_math`` attention
    backend) or with flash, memory-efficient and cuDNN attention all disabled, where a device
    runs the math path and holds the matrix."""
    import torch

    flags = torch.backends.cuda
    return bool(flags.flash_sdp_enabled() or flags.mem_efficient_sdp_enabled() or flags.cudnn_sdp_enabled())


def fused_on_meta(bound: dict[str, Any]) -> bool:
    """Whether a bound SDPA call (:func:`sdpa_arguments`) on meta tensors is one a fused kernel
    runs: 4-D query, key and value on ``meta`` with one batch and head size, key and value alike,
    query heads a multiple of key heads (grouped-query attention, which the fused kernels read
    without repeating key and value), no mask together with ``is_causal``."""
    import torch

    query, key, value = bound["query"], bound["key"], bound["value"]
    if not all(isinstance(t, torch.Tensor) and t.device.type == "meta" and t.dim() == 4 for t in (query, key, value)):
        return False
    heads, kv_heads = query.shape[1], key.shape[1]
    if query.shape[0] != key.shape[0] or key.shape != value.shape or query.shape[3] != key.shape[3]:
        return False
    if heads != kv_heads and not (bound.get("enable_gqa") and kv_heads and heads % kv_heads == 0):
        return False
    mask = bound.get("attn_mask")
    if mask is not None and (bound.get("is_causal") or not isinstance(mask, torch.Tensor)):
        return False
    return fused_kernel_enabled()


@contextlib.contextmanager
def fused_attention_on_meta() -> Iterator[None]:
    """Route ``F.scaled_dot_product_attention`` on ``meta`` tensors, called with positional or
    keyword arguments, to a fused kernel's meta function, so the prediction holds what fused
    attention holds (see the module docstring and :func:`fused_on_meta`)."""
    import torch
    import torch.nn.functional as F  # noqa: N812 - the PyTorch convention
    from torch.overrides import TorchFunctionMode

    fused = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

    class _Mode(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            checkpoint()
            kwargs = kwargs or {}
            if func is F.scaled_dot_product_attention and fused is not None:
                bound = sdpa_arguments(tuple(args), kwargs)
                if bound is not None and fused_on_meta(bound):
                    return fused(bound["query"], bound["key"], bound["value"],
                                 float(bound.get("dropout_p", 0.0) or 0.0), bool(bound.get("is_causal", False)),
                                 attn_mask=bound.get("attn_mask"), scale=bound.get("scale"))[0]
            return func(*args, **kwargs)

    with _Mode():
        yield
