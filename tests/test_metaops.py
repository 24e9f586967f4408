"""The cache of operator answers on ``meta`` (``inspector/measure/metaops.py``): an answer from the cache
is what the operator itself returns, views still share their input's storage, and a whole
inspection is the same with the cache and without it."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.measure import metaops

A = torch.ops.aten


def describe(t: torch.Tensor) -> tuple:
    return (tuple(t.shape), t.stride(), t.dtype, t.storage_offset(), t.untyped_storage().nbytes(), t.device.type)


def outputs(value) -> list[torch.Tensor]:
    return [value] if isinstance(value, torch.Tensor) else list(value)


@pytest.fixture(autouse=True)
def fresh_cache():
    metaops.clear()
    yield
    metaops.clear()
    metaops.ENABLED = True


def meta(shape, dtype=torch.float32, layout="contiguous"):
    t = torch.empty(shape, dtype=dtype, device="meta")
    if layout == "transposed" and t.dim() >= 2:
        t = torch.empty((*shape[:-2], shape[-1], shape[-2]), dtype=dtype, device="meta").transpose(-1, -2)
    elif layout == "channels_last" and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t


shapes = st.lists(st.integers(1, 6), min_size=1, max_size=4)
dtypes = st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.float64])
layouts = st.sampled_from(["contiguous", "transposed", "channels_last"])


def cases(draw) -> tuple:
    """An operator and its inputs, every random choice drawn before the call is built (the call
    runs three times and must see the same inputs each time)."""
    shape = draw(shapes)
    dtype = draw(dtypes)
    x = meta(shape, dtype, draw(layouts))
    # a second operand broadcast over some dimensions, perhaps of another dtype
    other_shape = [1 if draw(st.booleans()) else s for s in shape][draw(st.integers(0, len(shape) - 1)):]
    y = meta(other_shape, draw(dtypes), draw(layouts))
    c = shape[1] if len(shape) > 1 else shape[0]
    groups = draw(st.sampled_from([g for g in (1, 2, 3) if c % g == 0]))
    norm_weight = meta(shape[-2:], x.dtype, draw(layouts))
    norm_bias = meta(shape[-2:], draw(dtypes))
    group_weight = meta((c,), draw(dtypes))
    half_to_float = draw(st.booleans())
    dim = draw(st.integers(-len(shape), len(shape) - 1))
    softmax_dtype = draw(st.sampled_from([None, torch.float32]))
    bias = meta(draw(st.sampled_from([(shape[-1],), (1, shape[-1]), (shape[0], shape[-1]), (shape[0], 1),
                                      (shape[-1] + 1,)])), x.dtype, draw(layouts))
    m1 = meta((shape[0], draw(st.integers(1, 5))), x.dtype, draw(layouts))
    m2 = meta((m1.shape[1] if draw(st.booleans()) else draw(st.integers(1, 5)), shape[-1]), draw(dtypes),
              draw(layouts))
    hw = max(1, x.numel() // (shape[0] * c))
    return draw(st.sampled_from([
        ("add", lambda: A.add.Tensor(x, y)),
        ("mul", lambda: A.mul.Tensor(x, y)),
        ("div", lambda: A.div.Tensor(x, y)),
        ("mul.Scalar", lambda: A.mul.Scalar(x, 0.5)),
        ("gelu", lambda: A.gelu.default(x)),
        ("silu", lambda: A.silu.default(x)),
        ("softmax", lambda: A._softmax.default(x, -1, False)),
        ("layer_norm", lambda: A.native_layer_norm.default(x, [shape[-1]], None, None, 1e-5)),
        ("clone channels_last", lambda: A.clone.default(x, memory_format=torch.channels_last)
         if x.dim() == 4 else A.clone.default(x)),
        ("to float32", lambda: A._to_copy.default(x, dtype=torch.float32)),
        ("cat", lambda: A.cat.default([x, x], -1)),
        ("sum", lambda: A.sum.dim_IntList(x, [-1], True)),
        ("group_norm", lambda: A.native_group_norm.default(x, None, None, shape[0], c, hw, 1, 1e-5)),
        # the operators with rules for a first call, with weights and biases that fit or not
        ("group_norm affine", lambda: A.native_group_norm.default(
            x, group_weight, meta((c,), x.dtype), shape[0], c, hw, groups, 1e-5)),
        ("layer_norm affine", lambda: A.native_layer_norm.default(x, shape[-2:], norm_weight, norm_bias, 1e-5)),
        ("layer_norm bad weight", lambda: A.native_layer_norm.default(x, shape[-1:], meta((shape[-1] + 1,)), None,
                                                                      1e-5)),
        ("gelu tanh", lambda: A.gelu.default(x, approximate="tanh")),
        ("_softmax half_to_float", lambda: A._softmax.default(x, 0, half_to_float)),
        ("_safe_softmax", lambda: A._safe_softmax.default(x, dim, dtype=softmax_dtype)),
        ("addmm", lambda: A.addmm.default(bias, m1, m2)),
    ]))


def _same_as_the_operator(name, run):
    try:
        real = run()
    except (RuntimeError, ValueError, TypeError, IndexError, AssertionError):  # refused: so must the cache be
        with metaops.cached():
            for _ in range(2):
                with pytest.raises((RuntimeError, ValueError, TypeError, IndexError, AssertionError)):
                    run()
        return
    with metaops.cached():
        first = run()  # fills the cache (or is answered by a rule)
        second = run()  # answered from it
    assert [describe(t) for t in outputs(first)] == [describe(t) for t in outputs(real)], name
    assert [describe(t) for t in outputs(second)] == [describe(t) for t in outputs(real)], name
    assert type(second) is type(real)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_an_answer_from_the_cache_is_the_operators_own(data):
    _same_as_the_operator(*cases(data.draw))


#: mostly the plain layout the rules answer for, sometimes another
plain_layouts = st.sampled_from(["contiguous"] * 6 + ["transposed", "channels_last"])
plain_dtypes = st.sampled_from([torch.float32, torch.float32, torch.float16, torch.bfloat16, torch.float64])


def rule_case(draw, op: str) -> tuple:
    shape = draw(shapes)
    dtype = draw(plain_dtypes)
    x = meta(shape, dtype, draw(plain_layouts))
    other = lambda s: meta(s, dtype if draw(st.integers(0, 9)) else draw(plain_dtypes), draw(plain_layouts))  # noqa: E731
    if op == "group_norm":
        c = shape[1] if len(shape) > 1 else shape[0]
        groups = draw(st.sampled_from([1, 2, 3, 4]))
        n = shape[0] if draw(st.integers(0, 4)) else shape[0] + 1
        weight = draw(st.sampled_from([None, "c", "c+1"]))
        weight = None if weight is None else other((c,) if weight == "c" else (c + 1,))
        hw = max(1, x.numel() // (shape[0] * c)) + (0 if draw(st.integers(0, 4)) else 1)
        bias = None if weight is None else other((c,))
        return op, lambda: A.native_group_norm.default(x, weight, bias, n, c, hw, groups, 1e-5)
    if op == "layer_norm":
        k = draw(st.integers(1, len(shape)))
        normalized = list(shape[-k:]) if draw(st.integers(0, 4)) else [s + 1 for s in shape[-k:]]
        weight = other(tuple(normalized)) if draw(st.booleans()) else None
        bias = other(tuple(normalized)) if weight is not None else None
        return op, lambda: A.native_layer_norm.default(x, normalized, weight, bias, 1e-5)
    if op == "gelu":
        approximate = draw(st.sampled_from(["none", "tanh"]))
        return op, lambda: A.gelu.default(x, approximate=approximate)
    if op == "_softmax":
        dim, half = draw(st.integers(-len(shape) - 1, len(shape))), draw(st.booleans())
        return op, lambda: A._softmax.default(x, dim, half)
    if op == "_safe_softmax":
        dim, to = draw(st.integers(-len(shape) - 1, len(shape))), draw(st.sampled_from([None, torch.float32]))
        return op, lambda: A._safe_softmax.default(x, dim, dtype=to)
    rows, inner, cols = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    m1 = other((rows, inner))
    m2 = other((inner if draw(st.integers(0, 3)) else inner + 1, cols))
    bias = other(draw(st.sampled_from([(cols,), (1, cols), (rows, cols), (rows, 1), (cols + 1,), (1,), (),
                                       (2, rows, cols)])))
    return op, lambda: A.addmm.default(bias, m1, m2)


@pytest.mark.parametrize("op", ["group_norm", "layer_norm", "gelu", "_softmax", "_safe_softmax", "addmm"])
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_each_rule_answers_a_first_call_as_the_operator(op, data):
    _same_as_the_operator(*rule_case(data.draw, op))


def test_repeats_are_answered_from_the_cache_and_get_storages_of_their_own():
    x = meta((2, 320, 8, 8))
    w = meta((320,))
    with metaops.cached():
        a = A.native_group_norm.default(x, w, w, 2, 320, 64, 32, 1e-5)
        before = dict(metaops.STATS)
        b = A.native_group_norm.default(x, w, w, 2, 320, 64, 32, 1e-5)
    assert metaops.STATS["hits"] == before["hits"] + 1
    storages = {t.untyped_storage()._cdata for t in (*a, *b, x, w)}
    assert len(storages) == 8  # six outputs, each in a storage of its own, none an input's


def test_views_are_never_answered_from_the_cache():
    x = meta((4, 6))
    with metaops.cached():
        for _ in range(3):
            for view in (x.view(6, 4), x.t(), x[1:], A._unsafe_view.default(x, [24]), x.transpose(0, 1)):
                assert view.untyped_storage()._cdata == x.untyped_storage()._cdata
                assert view.storage_offset() in (0, 6)
    assert A._unsafe_view.default in metaops._UNCACHEABLE  # shares storage without saying so


def test_in_place_and_real_tensors_run_the_operator():
    x = meta((3, 3))
    cpu = torch.ones(3, 3)
    with metaops.cached():
        for _ in range(2):
            y = x.add_(1)
            assert y.untyped_storage()._cdata == x.untyped_storage()._cdata
            z = cpu + cpu
            assert float(z.sum()) == 18.0
    assert metaops.STATS["hits"] == 0


def test_the_check_mode_catches_a_wrong_answer(monkeypatch):
    x = meta((2, 3))
    with metaops.cached():
        A.gelu.default(x)
    (key,) = [k for k in metaops._CACHE if k[0] is A.gelu.default]
    container, _ = metaops._CACHE[key]
    metaops._CACHE[key] = (container, (((3, 2), (2, 1), torch.float32),))  # a wrong shape
    monkeypatch.setenv("LDM_INSPECTOR_CHECK_META_CACHE", "1")
    with metaops.cached(), pytest.raises(AssertionError, match="differently"):
        A.gelu.default(x)


def _scrub(value):
    """A run as data, less what differs between two runs of the same thing (times)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items() if k not in ("seconds", "environment", "notes")}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _inspect(host, source, options):
    from inspector.inspection import run_inspect
    from inspector.sources.loading import SourceSpec

    return _scrub(dataclasses.asdict(run_inspect(host, SourceSpec(model=source, weights="meta"), options)))


@pytest.mark.parametrize("model", ["tiny-sd", "tiny-sdxl", "tiny-flux", "corpus:controlnet", "corpus:animatediff"])
def test_an_inspection_is_the_same_with_the_cache_and_without(host, tmp_path, monkeypatch, model):
    """Every figure (shapes, FLOPs, layers, recorded calls, memory plan) with the cache off, then
    on with every answer it gives checked against the operator."""
    from inspector.plugin.context import InspectOptions

    options = InspectOptions()
    source = model
    if model.startswith("corpus:"):
        sys.path.insert(0, str(Path(__file__).parent))
        import corpus

        name = model.split(":", 1)[1]
        entry = corpus.CORPUS[name]
        corpus.build(name).save_pretrained(tmp_path / name, safe_serialization=True)
        source = str(tmp_path / name)
        options = InspectOptions(height=entry.height, width=entry.width, steps=2, guidance_scale=5.0,
                                 frames=2 if name == "animatediff" else None)
    metaops.ENABLED = False
    without = _inspect(host, source, options)
    metaops.ENABLED = True
    monkeypatch.setenv("LDM_INSPECTOR_CHECK_META_CACHE", "1")
    with_cache = _inspect(host, source, options)
    assert metaops.STATS["hits"] > 0
    assert with_cache == without
    assert all(not c["errors"] for c in with_cache["components"])
