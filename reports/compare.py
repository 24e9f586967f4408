"""Compare two saved runs: per component and per block, differences and ratios.

Typical uses: float32 vs float16, sd15 vs sd21, DDIM vs Euler. Two runs are *not
comparable* for timing and memory when they ran on different devices or with
different inputs (size, batch, steps, guidance); the comparison says so first,
and still lists the differences. Ratios are B / A.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from inspector.results.blocks import top_level_blocks
from inspector.results.records import RunResult
from inspector.results.units import human_bytes, human_count, human_flops, human_ms, human_ratio

INPUT_FIELDS = ("height", "width", "batch_size", "steps", "guidance_scale")


@dataclass
class Comparison:
    a_label: str
    b_label: str
    comparable: bool
    problems: list[str] = field(default_factory=list)
    differences: list[str] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    pipeline: dict[str, Any] | None = None
    #: one line per run that is partial (interrupted, or its end-to-end call failed), and why a
    #: table is missing
    warnings: list[str] = field(default_factory=list)


def ratio(a: Any, b: Any) -> float | None:
    if a in (None, 0) or b is None:
        return None
    return b / a


def _pair(name: str, a: Any, b: Any) -> dict[str, Any]:
    return {f"{name}_a": a, f"{name}_b": b, f"{name}_ratio": ratio(a, b)}


def compare(a: RunResult, b: RunResult, a_label: str = "A", b_label: str = "B") -> Comparison:
    problems = []
    if a.environment.device != b.environment.device:
        problems.append(f"different devices: {a.environment.device} vs {b.environment.device}")
    for name in INPUT_FIELDS:
        va, vb = getattr(a.inputs, name), getattr(b.inputs, name)
        if va != vb:
            problems.append(f"different inputs: {name} {va} vs {vb}")
    if (a.profile is None) != (b.profile is None):
        problems.append(f"one run is {a.command}, the other {b.command}: only static figures compare")
    differences = []
    for label, va, vb in (("model", a.model.source, b.model.source),
                          ("pipeline", a.model.pipeline_class, b.model.pipeline_class),
                          ("weights", a.model.weights, b.model.weights),
                          ("dtype", a.environment.dtype, b.environment.dtype),
                          ("scheduler", a.profile and a.profile.scheduler, b.profile and b.profile.scheduler),
                          ("attention", a.profile and a.profile.attention, b.profile and b.profile.attention),
                          ("torch", a.environment.torch, b.environment.torch)):
        if va != vb:
            differences.append(f"{label}: {va} vs {vb}")
    comparison = Comparison(a_label, b_label, comparable=not problems, problems=problems, differences=differences)
    comps_a = {c.name: c for c in a.components}
    comps_b = {c.name: c for c in b.components}
    for name in list(comps_a) + [n for n in comps_b if n not in comps_a]:
        ca, cb = comps_a.get(name), comps_b.get(name)
        row: dict[str, Any] = {"component": name,
                               "class_a": ca.class_name if ca else None, "class_b": cb.class_name if cb else None}
        row.update(_pair("parameters", _get(ca, "parameters", "total"), _get(cb, "parameters", "total")))
        row.update(_pair("bytes", _get(ca, "parameters", "bytes"), _get(cb, "parameters", "bytes")))
        row.update(_pair("flops", ca.flops if ca else None, cb.flops if cb else None))
        row.update(_pair("time_ms", _get(ca, "timing", "median"), _get(cb, "timing", "median")))
        row.update(_pair("memory_bytes", _get(ca, "memory", "peak"), _get(cb, "memory", "peak")))
        # a time ratio is only as good as the two figures it divides
        row["time_ms_unstable"] = bool(_get(ca, "timing", "unstable") or _get(cb, "timing", "unstable"))
        comparison.components.append(row)
        if ca and cb and ca.kind in ("unet", "transformer") and ca.layers and cb.layers:
            blocks_b = {layer.name: layer for layer in top_level_blocks(cb.layers)}
            for la in top_level_blocks(ca.layers):
                lb = blocks_b.get(la.name)
                block = {"component": name, "block": la.name}
                block.update(_pair("parameters", la.parameters, lb.parameters if lb else None))
                block.update(_pair("flops", la.flops, lb.flops if lb else None))
                comparison.blocks.append(block)
    for label, run in ((a_label, a), (b_label, b)):
        comparison.warnings.extend(_partial(label, run))
    missing = {label: _no_end_to_end(run) for label, run in ((a_label, a), (b_label, b))}
    if any(missing.values()) and (a.profile is not None or b.profile is not None):
        comparison.warnings.append("no end-to-end table: " + "; ".join(
            f"{label} {reason}" for label, reason in missing.items() if reason))
    if not any(missing.values()) and a.pipeline and b.pipeline:
        pa, pb = a.pipeline, b.pipeline
        comparison.pipeline = {
            **_pair("total_ms", pa.total, pb.total),
            **_pair("bare_total_ms", pa.bare_total, pb.bare_total),
            **_pair("it_per_s", pa.it_per_s, pb.it_per_s),
            **_pair("steps", pa.num_steps, pb.num_steps),
            **_pair("text_encoding_ms", pa.text_encoding, pb.text_encoding),
            **_pair("denoiser_ms", pa.denoiser_total(), pb.denoiser_total()),
            **_pair("vae_decode_ms", pa.vae_decode, pb.vae_decode),
            **_pair("overhead_ratio", pa.overhead_ratio, pb.overhead_ratio),
        }
        for key, names in (("total_ms", ("total",)), ("bare_total_ms", ("bare_total",)),
                           ("it_per_s", ("total",)), ("text_encoding_ms", ("total",)), ("denoiser_ms", ("total",)),
                           ("vae_decode_ms", ("total",)), ("overhead_ratio", ("overhead_ratio",))):
            comparison.pipeline[f"{key}_unstable"] = any(n in (pa.unstable or []) or n in (pb.unstable or [])
                                                         for n in names)
    return comparison


def _partial(label: str, run: RunResult) -> list[str]:
    """A warning for a run whose figures are not all there."""
    out = []
    if run.interrupted:
        out.append(f"warning: {label} is partial: interrupted before it finished")
    if run.pipeline is not None and run.pipeline.error:
        out.append(f"warning: {label} is partial: its end-to-end call failed: {run.pipeline.error}")
    return out


def _no_end_to_end(run: RunResult) -> str | None:
    """Why ``run`` has no end-to-end figures to compare, or None when it has them."""
    if run.profile is None:
        return f"is an {run.command or 'inspect'} run (no end-to-end call)"
    if run.pipeline is None:
        return ("was interrupted before its end-to-end call" if run.interrupted
                else "was profiled without the end-to-end call (--no-end-to-end)")
    if run.pipeline.error:
        return "has no end-to-end figures (the call failed)"
    return None


def _get(comp: Any, attr: str, key: str) -> Any:
    if comp is None:
        return None
    value = getattr(comp, attr, None)
    return getattr(value, key, None) if value is not None else None


#: (field, label, how to show a value) of each compared quantity
COMPARED: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("parameters", "parameters", human_count), ("bytes", "size", human_bytes),
    ("flops", "FLOPs", human_flops), ("time_ms", "time", human_ms),
    ("memory_bytes", "peak memory", human_bytes))
PIPELINE_COMPARED: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("total_ms", "total", human_ms), ("bare_total_ms", "bare call", human_ms),
    ("it_per_s", "it/s", lambda v: "-" if v is None else f"{v:.2f}"),
    ("steps", "steps", human_count), ("text_encoding_ms", "text encoding", human_ms),
    ("denoiser_ms", "denoiser (all steps)", human_ms), ("vae_decode_ms", "vae decode", human_ms),
    ("overhead_ratio", "instrumentation overhead", human_ratio))
