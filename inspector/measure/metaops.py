"""Operators on ``meta`` tensors, answered once per distinct input.

On ``meta`` an operator computes only its outputs' shapes, strides and dtypes, and in this torch
many of those meta functions are Python reference implementations: ``native_group_norm`` takes
about 1.6 ms, ``native_layer_norm`` 1.5 ms, ``addmm`` 0.6 ms, ``add`` 0.2 ms, where allocating a
``meta`` tensor takes 2 us. A diffusion model calls the same operator with the same input shapes
many times over (every transformer block of a stage, every denoising step, the recording call and
the inspection's own call), so :func:`call` keeps, per operator and exact input description, the
description of what it returned, and answers a repeat with new ``meta`` tensors of that
description (``empty_strided``): the same shapes, strides, dtypes and storage sizes, new storages,
as the operator itself would have made them.

What is answered from the cache, and only that:

* every tensor input is a plain strided ``meta`` tensor (described by shape, strides, storage
  offset, dtype and conjugate/negative bits); every other input is a plain value (numbers,
  strings, dtypes, devices, memory formats) or a list or tuple of these, compared by value;
* the operator does not mutate its inputs (``schema.is_mutable``);
* the first answer was a tensor, or a tuple or list of tensors, each in a storage of its own,
  none sharing an input's storage, at offset 0, in a storage exactly as large as ``empty_strided``
  makes for its strides. An operator whose answer breaks this (views: ``view``, ``transpose``,
  ``_unsafe_view``, which shares its input's storage with no alias annotation in its schema) is
  never cached again.

Anything else runs the operator. With ``LDM_INSPECTOR_CHECK_META_CACHE=1`` every answer from the
cache is checked against the operator itself (``tests/test_metaops.py`` runs every preset and test
pipeline that way), and a difference raises.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

from inspector.runtime.signals import checkpoint

#: entries kept before the cache starts again (each a few hundred bytes: at most some 25 MB; sd21 at
#: 512x512 makes about 330)
MAX_ENTRIES = 50_000

_CACHE: dict[tuple, tuple[type | None, tuple[tuple[tuple[int, ...], tuple[int, ...], Any], ...]]] = {}
_UNCACHEABLE: set[Any] = set()
_PLAIN: tuple[type, ...] = ()
STATS = {"hits": 0, "misses": 0, "bypassed": 0}
#: False runs every operator (benchmarks and tests compare the two)
ENABLED = True


class _NotCacheable(Exception):
    pass


def _describe(value: Any, tensor_type: type[Any], plain: tuple[type, ...]) -> Any:
    if isinstance(value, tensor_type):
        if value.device.type != "meta" or value.layout is not _STRIDED or type(value) not in _TENSOR_TYPES:
            raise _NotCacheable
        return (tuple(value.shape), value.stride(), value.storage_offset(), value.dtype, value.is_conj(),
                value.is_neg())
    if type(value) in plain:
        return (type(value), value)
    if isinstance(value, (list, tuple)):
        return (type(value), tuple(_describe(v, tensor_type, plain) for v in value))
    raise _NotCacheable


_STRIDED: Any = None
_TENSOR_TYPES: tuple[type, ...] = ()


def _setup() -> None:
    """Names from torch, looked up once (torch is imported on first use, not with this module)."""
    global _STRIDED, _TENSOR_TYPES, _PLAIN
    import torch

    _STRIDED = torch.strided
    _TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)
    _PLAIN = (bool, int, float, complex, str, type(None), torch.dtype, torch.device, torch.memory_format,
              torch.layout)


def _storage_size(shape: tuple[int, ...], stride: tuple[int, ...], itemsize: int) -> int:
    if any(s == 0 for s in shape):
        return 0
    return (1 + sum((s - 1) * st for s, st in zip(shape, stride))) * itemsize


def _checking() -> bool:
    return os.environ.get("LDM_INSPECTOR_CHECK_META_CACHE") == "1"


def call(func: Any, args: tuple, kwargs: dict) -> Any:
    """``func(*args, **kwargs)``, answered from the cache where that gives exactly what the
    operator would (see the module docstring)."""
    import torch

    if _STRIDED is None:
        _setup()
    if not ENABLED or func in _UNCACHEABLE or func._schema.is_mutable:
        STATS["bypassed"] += 1
        return func(*args, **kwargs)
    try:
        key = (func, _describe(args, torch.Tensor, _PLAIN),
               _describe(tuple(sorted(kwargs.items())), torch.Tensor, _PLAIN) if kwargs else ())
    except _NotCacheable:
        STATS["bypassed"] += 1
        return func(*args, **kwargs)
    found = _CACHE.get(key)
    if found is not None:
        STATS["hits"] += 1
        return _answer(func, args, kwargs, found)
    STATS["misses"] += 1
    rule = _rules().get(func)
    spec = rule(*args, **kwargs) if rule is not None else None
    if spec is not None:  # a first call answered by the rule, checked like a repeat
        _store(key, spec)
        return _answer(func, args, kwargs, spec)
    out = func(*args, **kwargs)
    spec = _spec_of(out, args, kwargs)
    if spec is None:
        _UNCACHEABLE.add(func)
    else:
        _store(key, spec)
    return out


# --- rules for a first call --------------------------------------------------------------
# The operators whose meta functions cost most (Python references, 0.5 to 1.6 ms a call), for
# the plainest inputs only: every tensor in the default contiguous layout, one floating dtype.
# Anything else returns None and the operator runs. Each rule states what the operator's own
# meta function returns for such inputs; tests/test_metaops.py checks every rule against it.

def _contiguous_strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    strides = []
    step = 1
    for size in reversed(shape):
        strides.append(step)
        step *= max(size, 1)
    return tuple(reversed(strides))


def _plain(*tensors: Any) -> Any:
    """The dtype shared by ``tensors`` (``None`` entries skipped) when each is a plain meta tensor
    of a floating dtype in the default contiguous layout; otherwise None."""
    import torch

    dtype = None
    for t in tensors:
        if t is None:
            continue
        if type(t) not in _TENSOR_TYPES or t.device.type != "meta" or not t.dtype.is_floating_point or \
                t.storage_offset() != 0 or t.stride() != _contiguous_strides(tuple(t.shape)):
            return None
        if dtype is not None and t.dtype != dtype:
            return None
        dtype = t.dtype
    return dtype if isinstance(dtype, torch.dtype) else None


def _like(shape: tuple[int, ...], dtype: Any) -> tuple[tuple[int, ...], tuple[int, ...], Any]:
    return (shape, _contiguous_strides(shape), dtype)


def _group_norm(x: Any, weight: Any, bias: Any, n: Any, c: Any, hw: Any, group: Any, eps: Any) -> Any:
    dtype = _plain(x, weight, bias)
    shape = tuple(x.shape)
    if dtype is None or x.dim() < 2 or type(group) is not int or group <= 0 or shape[0] != n or shape[1] != c \
            or c % group or x.numel() != n * c * hw or any(t is not None and tuple(t.shape) != (c,)
                                                           for t in (weight, bias)):
        return None
    return tuple, (_like(shape, dtype), _like((n, group), dtype), _like((n, group), dtype))


def _layer_norm(x: Any, normalized: Any, weight: Any, bias: Any, eps: Any) -> Any:
    import torch

    dtype = _plain(x, weight, bias)
    shape = tuple(x.shape)
    normalized = tuple(normalized) if isinstance(normalized, (list, tuple)) else None
    if dtype is None or not normalized or len(normalized) > len(shape) or shape[len(shape) - len(normalized):] != \
            normalized or any(t is not None and tuple(t.shape) != normalized for t in (weight, bias)):
        return None
    stats = shape[:len(shape) - len(normalized)] + (1,) * len(normalized)
    stats_dtype = torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype
    return tuple, (_like(shape, dtype), _like(stats, stats_dtype), _like(stats, stats_dtype))


def _unary(x: Any, *args: Any, **kwargs: Any) -> Any:
    dtype = _plain(x)
    return None if dtype is None else (None, (_like(tuple(x.shape), dtype),))


def _softmax(x: Any, dim: Any, half_to_float: Any) -> Any:
    dtype = _plain(x)
    if dtype is None or type(dim) is not int or not -x.dim() <= dim < max(x.dim(), 1) or half_to_float is not False:
        return None
    return None, (_like(tuple(x.shape), dtype),)


def _safe_softmax(x: Any, dim: Any, dtype: Any = None) -> Any:
    found = _plain(x)
    if found is None or dtype is not None or type(dim) is not int or not -x.dim() <= dim < max(x.dim(), 1):
        return None
    return None, (_like(tuple(x.shape), found),)


def _addmm(bias: Any, m1: Any, m2: Any, *, beta: Any = 1, alpha: Any = 1) -> Any:
    if m1.dim() != 2 or m2.dim() != 2 or m1.shape[1] != m2.shape[0] or bias.dim() > 2:
        return None
    # m2 is most often a weight's transpose: any layout of it gives the same contiguous result
    dtype = _plain(bias, m1)
    if dtype is None or m2.dtype != dtype or m2.device.type != "meta" or type(m2) not in _TENSOR_TYPES:
        return None
    out = (m1.shape[0], m2.shape[1])
    padded = (1,) * (2 - bias.dim()) + tuple(bias.shape)
    if any(b not in (1, o) for b, o in zip(padded, out)):
        return None
    return None, (_like(out, dtype),)


_RULES: dict[Any, Any] | None = None


def _rules() -> dict[Any, Any]:
    global _RULES
    if _RULES is None:
        import torch

        aten = torch.ops.aten
        _RULES = {aten.native_group_norm.default: _group_norm, aten.native_layer_norm.default: _layer_norm,
                  aten.gelu.default: _unary, aten._softmax.default: _softmax, aten.addmm.default: _addmm}
        safe = getattr(aten, "_safe_softmax", None)
        if safe is not None:
            _RULES[safe.default] = _safe_softmax
    return _RULES


def _store(key: tuple, spec: Any) -> None:
    if len(_CACHE) >= MAX_ENTRIES:
        _CACHE.clear()
    _CACHE[key] = spec


def _answer(func: Any, args: tuple, kwargs: dict, spec: Any) -> Any:
    """New ``meta`` tensors as ``spec`` describes them (checked against the operator when asked)."""
    import torch

    container, specs = spec
    outs = [torch.empty_strided(shape, stride, dtype=dtype, device="meta") for shape, stride, dtype in specs]
    value = outs[0] if container is None else container(outs)
    if _checking():
        _check(func, args, kwargs, value)
    return value


def _spec_of(out: Any, args: tuple, kwargs: dict) -> Any:
    """What to keep of an operator's answer, or None when a repeat cannot be answered from it."""
    import torch

    if type(out) is torch.Tensor:
        container, outs = None, [out]
    elif type(out) in (tuple, list) and out and all(type(o) is torch.Tensor for o in out):
        container, outs = type(out), list(out)
    else:
        return None
    inputs = set()
    for value in (*args, *kwargs.values()):
        for item in (value if isinstance(value, (list, tuple)) else (value,)):
            if isinstance(item, torch.Tensor):
                inputs.add(item.untyped_storage()._cdata)
    seen = set()
    specs = []
    for o in outs:
        if o.device.type != "meta" or o.layout is not torch.strided or o.is_conj() or o.is_neg() or \
                o.storage_offset() != 0:
            return None
        storage = o.untyped_storage()
        key = storage._cdata
        if key in inputs or key in seen:
            return None
        seen.add(key)
        shape, stride = tuple(o.shape), o.stride()
        if storage.nbytes() != _storage_size(shape, stride, o.element_size()):
            return None
        specs.append((shape, stride, o.dtype))
    return container, tuple(specs)


def _check(func: Any, args: tuple, kwargs: dict, value: Any) -> None:
    import torch

    real = func(*args, **kwargs)
    mine = [value] if isinstance(value, torch.Tensor) else list(value)
    theirs = [real] if isinstance(real, torch.Tensor) else list(real)
    if type(value) is not type(real) or len(mine) != len(theirs) or any(
            (tuple(a.shape), a.stride(), a.dtype, a.storage_offset(), a.untyped_storage().nbytes()) !=
            (tuple(b.shape), b.stride(), b.dtype, b.storage_offset(), b.untyped_storage().nbytes())
            for a, b in zip(mine, theirs)):
        raise AssertionError(f"meta cache answered {func} differently from the operator")


@contextlib.contextmanager
def cached() -> Iterator[None]:
    """Route every operator that runs inside through :func:`call` (for code that runs on
    ``meta`` outside a capture, such as the recording call)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Mode(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            checkpoint()  # an interrupt held since the last operator is raised here, before this one
            return call(func, args, kwargs or {})

    with _Mode():
        yield


def clear() -> None:
    """Forget every answer and count from zero (tests compare runs with and without the cache)."""
    _CACHE.clear()
    _UNCACHEABLE.clear()
    for key in STATS:
        STATS[key] = 0
