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

#: entries kept before the cache starts again (each is a few hundred bytes)
MAX_ENTRIES = 200_000

_CACHE: dict[tuple, tuple[type | None, tuple[tuple[tuple[int, ...], tuple[int, ...], Any], ...]]] = {}
_UNCACHEABLE: set[Any] = set()
_PLAIN: tuple[type, ...] | None = None
STATS = {"hits": 0, "misses": 0, "bypassed": 0}
#: False runs every operator (benchmarks and tests compare the two)
ENABLED = True


class _NotCacheable(Exception):
    pass


def _plain_types() -> tuple[type, ...]:
    global _PLAIN
    if _PLAIN is None:
        import torch

        _PLAIN = (bool, int, float, complex, str, type(None), torch.dtype, torch.device, torch.memory_format,
                  torch.layout)
    return _PLAIN


def _describe(value: Any, tensor_type: type, plain: tuple[type, ...]) -> Any:
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
    global _STRIDED, _TENSOR_TYPES
    import torch

    _STRIDED = torch.strided
    _TENSOR_TYPES = (torch.Tensor, torch.nn.Parameter)


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
    plain = _plain_types()
    try:
        key = (func, _describe(args, torch.Tensor, plain),
               _describe(tuple(sorted(kwargs.items())), torch.Tensor, plain) if kwargs else ())
    except _NotCacheable:
        STATS["bypassed"] += 1
        return func(*args, **kwargs)
    found = _CACHE.get(key)
    if found is not None:
        STATS["hits"] += 1
        container, specs = found
        outs = [torch.empty_strided(shape, stride, dtype=dtype, device="meta") for shape, stride, dtype in specs]
        value = outs[0] if container is None else container(outs)
        if _checking():
            _check(func, args, kwargs, value)
        return value
    STATS["misses"] += 1
    out = func(*args, **kwargs)
    spec = _spec_of(out, args, kwargs)
    if spec is None:
        _UNCACHEABLE.add(func)
    else:
        if len(_CACHE) >= MAX_ENTRIES:
            _CACHE.clear()
        _CACHE[key] = spec
    return out


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
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            return call(func, args, kwargs or {})

    with _Mode():
        yield


def clear() -> None:
    """Forget every answer and count from zero (tests compare runs with and without the cache)."""
    _CACHE.clear()
    _UNCACHEABLE.clear()
    for key in STATS:
        STATS[key] = 0
