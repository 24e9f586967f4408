"""Plain result objects: what every front end reads and nothing recomputes.

One versioned JSON schema (``SCHEMA_VERSION``) covers them. ``to_dict`` gives
JSON-ready data; ``RunResult.from_dict`` reads it back. Plugins describe what
they show as :class:`View` objects (titled tables, series for charts, notes), so
the terminal, TUI, HTML and CSV front ends can all render a plugin's view
without the plugin importing any of them.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from inspector.errors import HookTimeout, describe_exception, is_out_of_memory
from inspector.results import limits
from inspector.results.serialize import SCHEMA_VERSION, _build, strict_json
from inspector.results.tables import frames, timed_call

#: what :meth:`RunResult.save` calls, registered by the package root (``inspector.save_run``), so
#: the result model imports no report writer
_writer: Callable[[Any, Any], list[Any]] | None = None


def register_writer(writer: Callable[[Any, Any], list[Any]]) -> None:
    """Set what :meth:`RunResult.save` calls (done once, by :mod:`inspector.python_api`)."""
    global _writer
    _writer = writer

ViewKind = Literal["table", "series", "note"]


#: field metadata: a count, a duration, a size or a rate; never below zero. The JSON Schema says
#: ``minimum: 0`` for it, so a saved run with a negative time or parameter count is refused.
NON_NEGATIVE = {"minimum": 0}


def _range(low: float, high: float) -> dict[str, float]:
    """Field metadata for a value the schema bounds on both sides."""
    return {"minimum": low, "maximum": high}


@dataclass
class View:
    """Something a plugin wants shown, described as data.

    ``kind="table"``: ``columns`` names and ``rows`` (lists of cells, same order).
    ``kind="series"``: ``x`` and ``series`` (name -> list of y values), for a chart.
    ``kind="note"``: ``text``.
    """

    title: str
    kind: ViewKind = "table"
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    x: list[Any] = field(default_factory=list)
    x_label: str = ""
    series: dict[str, list[float]] = field(default_factory=dict)
    text: str = ""
    #: a rendering hint front ends may use ("tokens": colour each row's token); others show the table
    hint: str = ""
    #: the TUI tab this view belongs in ("" : only the component's general views); see
    #: :func:`inspector.plugin.views.tabs_from_views`
    tab: str = ""


@dataclass
class Tab:
    """A titled group of views: a tab in the TUI. Plugins return these from ``component_tabs``."""

    title: str
    views: list[View] = field(default_factory=list)


@dataclass
class TensorInfo:
    name: str
    shape: list[int]
    dtype: str


@dataclass
class ParameterStats:
    total: int = field(metadata=NON_NEGATIVE)
    trainable: int = field(metadata=NON_NEGATIVE)
    bytes: int = field(metadata=NON_NEGATIVE)
    by_dtype: dict[str, int] = field(default_factory=dict)


@dataclass
class TimingStats:
    """Milliseconds. ``cold`` is the first call for this shape, timed apart from the rest."""

    median: float = field(metadata=NON_NEGATIVE)
    iqr: float = field(metadata=NON_NEGATIVE)
    min: float = field(metadata=NON_NEGATIVE)
    max: float = field(metadata=NON_NEGATIVE)
    count: int = field(metadata=NON_NEGATIVE)
    cold: float | None = field(default=None, metadata=NON_NEGATIVE)
    unit: str = "ms"
    samples: list[float] = field(default_factory=list, metadata=NON_NEGATIVE)
    #: percentiles, each only with enough samples (p50 from 1, p90 from 10, p99 from 100)
    p50: float | None = field(default=None, metadata=NON_NEGATIVE)
    p90: float | None = field(default=None, metadata=NON_NEGATIVE)
    p99: float | None = field(default=None, metadata=NON_NEGATIVE)
    #: IQR / median: the spread relative to the figure (None with fewer than 2 samples)
    rel_spread: float | None = field(default=None, metadata=NON_NEGATIVE)
    #: the relative spread stayed above the run's threshold (or too few samples to know), or a
    #: reason in ``flags`` says the figure is not to be trusted
    unstable: bool = False
    #: why the figure is flagged beyond its spread: ``machine busy``, or an isolated time that
    #: disagrees with the same component's time inside the pipeline (:mod:`inspector.measure.flags`)
    flags: list[str] = field(default_factory=list)


@dataclass
class MemoryStats:
    """Bytes. ``peak`` is the growth over ``before`` while the measured calls ran.

    ``kind``: ``cuda_allocated`` (torch's allocator; ``reserved`` is its cache) or
    ``cpu_rss`` (the process's resident set)."""

    kind: str
    peak: int
    before: int = 0
    reserved: int | None = None
    absolute_peak: int | None = None
    cold_peak: int | None = None


@dataclass
class MachineSample:
    """The machine at one moment: ``seconds`` since the run started, 1-minute load average,
    mean CPU frequency (MHz), and the share of all CPUs other processes used since the
    previous sample (0..1). ``None``: not readable on this system."""

    seconds: float
    load: float | None = None
    cpu_mhz: float | None = None
    other_cpu: float | None = None


@dataclass
class MachineState:
    """The machine while a profile ran. ``busy`` with ``reasons`` when other work competed
    for the CPU: the run's time figures are then flagged, not stated as facts."""

    cpus: int
    start: MachineSample
    end: MachineSample | None = None
    samples: list[MachineSample] = field(default_factory=list)
    other_cpu_mean: float | None = None
    other_cpu_max: float | None = None
    load_max: float | None = None
    busy: bool = False
    reasons: list[str] = field(default_factory=list)


@dataclass
class Measurement:
    """One timed call of a component (a component may have several: encode and decode, say)."""

    name: str
    timing: TimingStats
    memory: MemoryStats | None = None
    flops: int | None = field(default=None, metadata=NON_NEGATIVE)
    flops_per_second: float | None = field(default=None, metadata=NON_NEGATIVE)
    fraction_of_peak: float | None = None
    calls_per_run: float | None = field(default=None, metadata=NON_NEGATIVE)
    error: str | None = None


@dataclass
class LayerRecord:
    """One module of a component. ``parameters`` counts the module with its children;
    ``flops`` is everything that ran inside it (children included), summed over ``calls``;
    shapes are those of the first call."""

    name: str
    type: str
    depth: int
    input_shapes: list[list[int]] = field(default_factory=list)
    output_shapes: list[list[int]] = field(default_factory=list)
    parameters: int = field(default=0, metadata=NON_NEGATIVE)
    flops: int | None = field(default=None, metadata=NON_NEGATIVE)
    calls: int = field(default=0, metadata=NON_NEGATIVE)
    #: position of the module's first call in the forward pass (execution order); None if never called
    order: int | None = None


@dataclass
class HookFailure:
    """One plugin's failure in one hook on one component, recorded the same way everywhere (as
    pytest's ``CallInfo`` records a call's outcome). ``kind``: ``exception`` (the plugin raised),
    ``oom`` (out of memory while measuring), ``timeout`` (the hook did not return in time).
    Reads like the dict it replaces: ``failure["plugin"]``, ``failure.get("kind")``."""

    plugin: str
    hook: str
    error: str
    kind: str = "exception"

    def __getitem__(self, key: str) -> Any:
        if key not in ("plugin", "hook", "error", "kind"):
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default) if key in ("plugin", "hook", "error", "kind") else default

    @classmethod
    def from_exception(cls, plugin: str, hook: str, exc: BaseException) -> HookFailure:
        kind = "timeout" if isinstance(exc, HookTimeout) else "oom" if is_out_of_memory(exc) else "exception"
        return cls(plugin=plugin, hook=hook, error=describe_exception(exc), kind=kind)


@dataclass
class ComponentResult:
    name: str
    class_name: str
    library: str | None
    present: bool
    kind: str = "other"
    plugin: str | None = None
    parameters: ParameterStats | None = None
    flops: int | None = field(default=None, metadata=NON_NEGATIVE)
    inputs: list[TensorInfo] = field(default_factory=list)
    #: where ``inputs`` came from: "recorded: ..." (the pipeline's own call) or "synthesized (...)"
    inputs_source: str | None = None
    outputs: list[TensorInfo] = field(default_factory=list)
    layers: list[LayerRecord] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    views: list[View] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[HookFailure] = field(default_factory=list)
    timing: TimingStats | None = None
    memory: MemoryStats | None = None
    measurements: list[Measurement] = field(default_factory=list)
    #: Scalar per-component figures a plugin adds (name -> number or short text). Every front
    #: end shows them: a column in components.csv (``metric_<name>``), the terminal summary,
    #: the HTML overview.
    metrics: dict[str, float | int | str | None] = field(default_factory=dict)
    #: peak bytes held by tensors the example call created (activations), tracked op by op
    activation_bytes: int | None = field(default=None, metadata=NON_NEGATIVE)
    #: the same peak on a CPU, where convolutions also hold a workspace while they run
    #: (``inspector.measure.activations.cpu_conv_workspace``); what ``--fits cpu`` and a run on a CPU plan with
    cpu_activation_bytes: int | None = field(default=None, metadata=NON_NEGATIVE)

    def timed_call(self) -> Measurement | None:
        """The measurement ``timing`` comes from (the VAE's ``decode``, the UNet's one call): its
        ``flops`` go with ``timing``, where ``flops`` above is the whole example call (the VAE's
        encode plus decode). A rate or a table row must pair these two, never ``flops`` with ``timing``."""
        return timed_call(self)


@dataclass
class ComponentMemory:
    """Predicted device memory of one component's call, in bytes.

    ``activations`` is the peak of the bytes held by tensors the call creates (inputs, which
    the previous component made, are counted in the plan's ``carried``); ``largest_module`` is
    the biggest single module's own parameters and buffers, what sequential CPU offload keeps
    on the device at once. ``call`` names what was run (``forward``, ``decode``, ...)."""

    component: str
    weights: int = field(metadata=NON_NEGATIVE)
    activations: int = field(metadata=NON_NEGATIVE)
    peak: int = field(metadata=NON_NEGATIVE)
    largest_module: int = field(default=0, metadata=NON_NEGATIVE)
    call: str = "forward"


@dataclass
class PlacementPrediction:
    """The pipeline's predicted peak device memory (bytes) under one of diffusers' placements.

    ``mode``: ``all on device``, ``model cpu offload`` (``enable_model_cpu_offload``: one model
    on the device at a time) or ``sequential cpu offload`` (``enable_sequential_cpu_offload``:
    one module's weights at a time). ``vae``: ``plain``, ``sliced`` or ``tiled`` decode.
    ``bottleneck`` is the component whose call reaches the peak."""

    mode: str
    vae: str
    peak: int = field(metadata=NON_NEGATIVE)
    weights_on_device: int = field(metadata=NON_NEGATIVE)
    activations: int = field(metadata=NON_NEGATIVE)
    bottleneck: str


@dataclass
class FitVerdict:
    """Whether one placement fits a device. ``usable`` = capacity less the runtime reserve;
    ``verdict``: ``fits`` (peak within 90% of usable), ``tight`` (within usable, under 10%
    headroom) or ``does not fit``. ``max_batch`` and ``max_size`` (square, pixels) are the
    largest that still fit, each found by predicting again; ``None`` when not even the smallest fits."""

    mode: str
    vae: str
    peak: int = field(metadata=NON_NEGATIVE)
    usable: int = field(metadata=NON_NEGATIVE)
    headroom: int
    verdict: str
    max_batch: int | None = field(default=None, metadata=NON_NEGATIVE)
    max_size: int | None = field(default=None, metadata=NON_NEGATIVE)


@dataclass
class MemoryPlan:
    """Predicted peak memory per component and per placement, from tracking the bytes of every
    tensor the components' example calls create (on ``meta`` for an inspection without weights).

    ``carried``: tensors alive between components (latents and text embeddings). ``target``,
    ``capacity`` and ``verdicts`` are set by ``--fits``."""

    method: str
    dtype: str
    attention: str
    components: list[ComponentMemory] = field(default_factory=list)
    placements: list[PlacementPrediction] = field(default_factory=list)
    carried: int = field(default=0, metadata=NON_NEGATIVE)
    target: str | None = None
    capacity: int | None = field(default=None, metadata=NON_NEGATIVE)
    reserve: int = field(default=0, metadata=NON_NEGATIVE)
    verdicts: list[FitVerdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: planned for a CPU: each convolution's workspace counted, and no offload placements (offloading
    #: to the CPU frees nothing there); otherwise the tensors alone, as for a GPU
    cpu: bool = False


@dataclass
class StepRecord:
    """One denoising step of the end-to-end call, in milliseconds. ``denoiser`` is the time
    inside the denoiser (UNet, transformer or prior; every call of the step); ``other`` is the
    step's time outside it and ``scheduler.step`` (CFG concat and guidance arithmetic).
    Schema version 1 called ``denoiser`` ``unet``; such runs are read with it renamed."""

    index: int
    timestep: float | None
    denoiser: float = field(metadata=NON_NEGATIVE)
    scheduler: float = field(metadata=NON_NEGATIVE)
    other: float
    total: float = field(metadata=NON_NEGATIVE)


@dataclass
class PipelineRun:
    """The real ``pipe(...)`` call, instrumented, and the same call bare. Milliseconds.

    ``total`` and ``bare_total`` are medians over ``repeats`` calls of each kind;
    ``steps`` and the per-component figures come from the median instrumented call.
    ``component_sum`` adds each component's isolated median times the calls one
    pipeline run makes; ``component_sum_ratio`` = component_sum / total."""

    steps: list[StepRecord] = field(default_factory=list)
    num_steps: int = 0
    text_encoding: float = field(default=0.0, metadata=NON_NEGATIVE)
    prepare: float = 0.0
    vae_decode: float | None = field(default=None, metadata=NON_NEGATIVE)
    safety_checker: float | None = None
    total: float = field(default=0.0, metadata=NON_NEGATIVE)
    it_per_s: float | None = None
    bare_total: float | None = field(default=None, metadata=NON_NEGATIVE)
    overhead_ratio: float | None = None
    component_sum: float | None = None
    component_sum_ratio: float | None = None
    repeats: int = 0
    totals: list[float] = field(default_factory=list, metadata=NON_NEGATIVE)
    bare_totals: list[float] = field(default_factory=list, metadata=NON_NEGATIVE)
    identical_output: bool | None = None
    image: str | None = None
    image_shape: list[int] = field(default_factory=list)
    memory: MemoryStats | None = None
    error: str | None = None
    unit: str = "ms"
    #: relative spread (IQR / median) of ``totals`` and ``bare_totals``
    total_rel_spread: float | None = None
    bare_rel_spread: float | None = None
    #: [low, high] of the ratio of paired calls (instrumented / bare, same round): all pairs
    #: up to 9, the middle 80% from 10
    overhead_interval: list[float] | None = None
    #: [low, high]: isolated first quartiles / slowest total .. third quartiles / fastest total
    component_sum_ratio_interval: list[float] | None = None
    #: which figures are not to be trusted ("total", "bare_total", "overhead_ratio",
    #: "component_sum_ratio"), and why
    unstable: list[str] = field(default_factory=list)
    unstable_reasons: list[str] = field(default_factory=list)

    def denoiser_total(self) -> float | None:
        """The time inside the denoiser over all steps (ms), or None without steps."""
        return sum(s.denoiser for s in self.steps) if self.steps else None

    def parts(self) -> list[tuple[str, str | None, float]]:
        """Where the median instrumented call spent its time: (label, component name or None, ms).
        Shares of ``total`` are each component's real share of the pipeline run."""
        rows: list[tuple[str, str | None, float | None]] = [
            ("text encoding", "text_encoder", self.text_encoding), ("prepare", None, self.prepare),
            ("denoiser (all steps)", None, self.denoiser_total() or 0.0),
            ("scheduler.step (all steps)", "scheduler", sum(s.scheduler for s in self.steps)),
            ("other in steps (CFG, guidance)", None, sum(s.other for s in self.steps)),
            ("vae decode", "vae", self.vae_decode), ("safety checker", "safety_checker", self.safety_checker)]
        return [(label, name, ms) for label, name, ms in rows if ms is not None]

    def component_share(self, name: str, kind: str = "") -> float | None:
        """A component's share of the pipeline run (0..1), from the parts above; None if not timed there."""
        if not self.total:
            return None
        if kind in ("unet", "transformer"):
            return (self.denoiser_total() or 0.0) / self.total
        if kind == "text_encoder" or name.startswith("text_encoder"):
            return self.text_encoding / self.total if name == "text_encoder" else None
        for _label, part_name, ms in self.parts():
            if part_name == name:
                return ms / self.total
        return None


@dataclass
class ProfileSettings:
    device: str
    device_name: str
    dtype: str
    warmup: int
    repeats: int
    threads: int
    peak_flops: float | None = None
    attention: str | None = None
    scheduler: str | None = None
    timer: str = "perf_counter"
    #: a measurement repeats past ``repeats`` until its relative spread is at most ``max_spread``
    #: or it has taken ``max_time`` seconds (0: exactly ``repeats`` calls)
    max_spread: float | None = None
    max_time: float | None = None


@dataclass
class ModelInfo:
    source: str
    pipeline_class: str
    weights: Literal["meta", "random", "pretrained"]
    kind: str = "preset"
    preset: str | None = None
    path: str | None = None


@dataclass
class Environment:
    python: str
    torch: str
    diffusers: str
    transformers: str
    device: str
    dtype: str
    platform: str = ""
    threads: int = 0


@dataclass
class Inputs:
    """The run's inputs, within the same limits as the options that set them (:mod:`inspector.results.limits`)."""

    height: int = field(metadata=_range(1, limits.MAX_SIZE))
    width: int = field(metadata=_range(1, limits.MAX_SIZE))
    batch_size: int = field(metadata=_range(1, limits.MAX_BATCH))
    prompt: str
    negative_prompt: str = ""
    guidance_scale: float = field(default=7.5, metadata=_range(-limits.MAX_GUIDANCE, limits.MAX_GUIDANCE))
    steps: int = field(default=50, metadata=_range(1, limits.MAX_STEPS))
    seed: int = field(default=0, metadata=_range(limits.MIN_INT, limits.MAX_INT))
    frames: int | None = field(default=None, metadata=_range(1, limits.MAX_FRAMES))


@dataclass
class RecordingInfo:
    """The short pipeline call whose arguments the components were inspected with: its denoising
    steps, seconds, why it stopped early (``error``; expected on ``meta`` weights) and how many
    calls each component got (``"name.method"`` -> count)."""

    steps: int = 0
    seconds: float = 0.0
    error: str | None = None
    calls: dict[str, int] = field(default_factory=dict)


@dataclass
class PluginRecord:
    name: str
    version: str | None
    source: Literal["builtin", "entrypoint"]
    error: str | None = None
    distribution: str | None = None
    hooks: list[str] = field(default_factory=list)
    #: hook implementation calls made in this run, and the seconds they took together
    calls: int = field(default=0, metadata=NON_NEGATIVE)
    seconds: float = field(default=0.0, metadata=NON_NEGATIVE)


@dataclass
class Headline:
    """The figures a run is read for first (:meth:`RunResult.headline`): derived from the run,
    never stored. ``peak_measured``: the peak is the end-to-end call's measured one, else the
    plan's prediction (all on the device, plain VAE decode). ``time_shares``: (part, share of the
    end-to-end total), largest first."""

    source: str
    parameters: int | None = None
    bytes: int | None = None
    generation_flops: int | None = None
    total_ms: float | None = None
    total_unstable: bool = False
    it_per_s: float | None = None
    step_median_ms: float | None = None
    step0_ms: float | None = None
    peak_bytes: int | None = None
    peak_measured: bool = False
    fits: str | None = None
    time_shares: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class RunResult:
    """One run of ``inspect`` or ``profile``: what was loaded, on what, with which inputs, and
    every component's result. ``profile`` and ``pipeline`` are set by ``profile`` only."""

    model: ModelInfo
    environment: Environment
    inputs: Inputs
    components: list[ComponentResult] = field(default_factory=list)
    plugins: list[PluginRecord] = field(default_factory=list)
    command: str = "inspect"
    schema_version: int = SCHEMA_VERSION
    profile: ProfileSettings | None = None
    pipeline: PipelineRun | None = None
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    recording: RecordingInfo | None = None
    #: the machine's load while ``profile`` ran (profile only)
    machine: MachineState | None = None
    #: predicted peak memory per component and placement (``inspect``; ``profile`` tracks real tensors)
    memory_plan: MemoryPlan | None = None
    #: views about the whole pipeline (memory plan, fit verdict, ...), rendered by every front end
    views: list[View] = field(default_factory=list)

    def __repr__(self) -> str:
        """One line (the generated one would print every layer of every component)."""
        present = sum(1 for c in self.components if c.present)
        params = self.parameter_total()
        source = self.model.source if self.model.source == self.model.pipeline_class else \
            f"{self.model.source} ({self.model.pipeline_class})"
        text = (f"{self.command} {source}, weights {self.model.weights}, on {self.environment.device} "
                f"{self.environment.dtype}: {present} components")
        if params is not None:
            text += f", {params:,} parameters"
        if self.pipeline is not None and self.pipeline.total and not self.pipeline.error:
            text += f", {self.pipeline.total:.1f} ms end to end"
        return f"<RunResult {text}{', interrupted' if self.interrupted else ''}>"

    def tables(self) -> dict[str, Any]:
        """Every table of the run as a pandas DataFrame, by name (``components``, ``layers``,
        ``measurements``, ``steps``, ``pipeline``, ``plugins``, ``errors``, ``view_...``): the
        CSV export's tables, with its columns (:mod:`inspector.results.tables`)."""
        return frames(self)

    def to_pandas(self, table: str = "components") -> Any:
        """One of :meth:`tables` (by default the components table) as a pandas DataFrame."""
        found = self.tables()
        if table not in found:
            raise KeyError(f"no table {table!r} in this run; its tables: {', '.join(found)}")
        return found[table]

    def save(self, path: Any) -> list[Any]:
        """Write the run by what ``path`` names: ``.json`` the run, ``.html`` the self-contained
        report, a folder the CSV tables (``inspector.save_run``). Returns the files written."""
        if _writer is None:
            raise RuntimeError("no writer registered: import inspector first")
        return _writer(self, path)

    def component(self, name: str) -> ComponentResult:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(name)

    # --- totals: computed here once, read by every front end --------------------------

    def parameter_total(self) -> int | None:
        """Parameters of every component that has any, or None when none was counted."""
        counted = [c.parameters.total for c in self.components if c.parameters]
        return sum(counted) if counted else None

    def parameter_bytes(self) -> int | None:
        """Bytes of those parameters, or None when none was counted."""
        counted = [c.parameters.bytes for c in self.components if c.parameters]
        return sum(counted) if counted else None

    def flops_total(self) -> int | None:
        """The FLOPs of one generation (:meth:`generation_flops`); where a part cannot be counted,
        every component's example call added up (the denoiser's is one step); None without FLOPs."""
        generation = self.generation_flops()
        if generation is not None:
            return generation[0]
        counted = [c.flops for c in self.components if c.flops is not None]
        return sum(counted) if counted else None

    def headline(self) -> Headline:
        """What the run found, as every front end's first (or last) words show it."""
        p = self.pipeline if self.pipeline is not None and not self.pipeline.error and self.pipeline.total else None
        generation = self.generation_flops()
        found = Headline(source=self.model.source, parameters=self.parameter_total(), bytes=self.parameter_bytes(),
                         generation_flops=generation[0] if generation else None)
        if p is not None:
            found.total_ms, found.it_per_s = p.total, p.it_per_s
            found.total_unstable = "total" in p.unstable
            steps = [s.total for s in p.steps]
            if steps:
                ordered = sorted(steps)
                found.step_median_ms, found.step0_ms = ordered[len(ordered) // 2], steps[0]
            if p.memory is not None:
                found.peak_bytes, found.peak_measured = p.memory.peak, True
            names = {"denoiser (all steps)": "denoiser", "other in steps (CFG, guidance)": "other in steps"}
            found.time_shares = sorted(((name or names.get(label, label), ms / p.total) for label, name, ms
                                        in p.parts() if ms), key=lambda item: -item[1])
        plan = self.memory_plan
        if plan is not None:
            row = next((x for x in plan.placements if x.mode == "all on device" and x.vae.startswith("plain")), None)
            if row is not None and found.peak_bytes is None:
                found.peak_bytes = row.peak
            if plan.verdicts:
                best = next((v for v in plan.verdicts if v.verdict == "fits"), None)
                found.fits = (f"fits on {plan.target} with {best.mode}, {best.vae} VAE decode" if best is not None
                              else f"{plan.verdicts[0].verdict} on {plan.target}, all on the device")
        return found

    def flops_note(self) -> str:
        """What the FLOPs column and its total count, in words, for every front end."""
        generation = self.generation_flops()
        text = "FLOPs: one example call of each component (the denoiser: one step"
        denoiser = next((c for c in self.components if c.kind in ("unet", "transformer") and c.flops), None)
        batch = denoiser.details.get("cfg_batch") if denoiser is not None else None
        if isinstance(batch, int) and batch > self.inputs.batch_size:
            text += f", CFG batch {batch}"
        text += "); total: "
        text += "those calls added" if generation is None else "one generation, " + " + ".join(generation[1])
        return text + "; multiply-adds (torchinfo's mult-adds) are about half the FLOPs"

    def generation_flops(self) -> tuple[int, list[str]] | None:
        """What one call of the pipeline computes, as ``(FLOPs, the parts in words)``: each text
        encoder times the calls a run makes of it, the denoiser times its steps (the scheduler's
        timesteps, the classifier-free-guidance batch inside each call), and the VAE's decode.
        None when the run has no denoiser with FLOPs (a single model, a failed inspection)."""
        denoisers = [c for c in self.components if c.kind in ("unet", "transformer") and c.flops]
        if not denoisers:
            return None
        scheduler = next((c for c in self.components if c.kind == "scheduler"), None)
        timesteps = scheduler.details.get("timesteps") if scheduler is not None else None
        steps = len(timesteps) if isinstance(timesteps, list) and timesteps else self.inputs.steps
        total, parts = 0, []
        for comp in self.components:
            if comp.kind == "text_encoder" and comp.flops:
                calls = comp.details.get("calls_per_run")
                calls = int(calls) if isinstance(calls, (int, float)) and calls >= 1 else 1
                total += comp.flops * calls
                parts.append(f"{comp.name} x{calls}")
        for comp in denoisers:
            total += (comp.flops or 0) * steps
            batch = comp.details.get("cfg_batch")
            parts.append(f"{comp.name} x{steps} steps" + (f" (CFG batch {batch})" if isinstance(batch, int)
                                                          and batch > self.inputs.batch_size else ""))
        for comp in self.components:
            decode = comp.details.get("decode_flops") if comp.kind == "vae" else None
            if isinstance(decode, int) and decode > 0:
                total += decode
                parts.append(f"{comp.name} decode")
        return total, parts

    def parameter_share(self, name: str) -> float | None:
        """A component's share of :meth:`parameter_total` (0..1), or None when it has no count."""
        total = self.parameter_total()
        comp = next((c for c in self.components if c.name == name), None)
        if not total or comp is None or comp.parameters is None:
            return None
        return comp.parameters.total / total

    def to_dict(self) -> dict[str, Any]:
        return strict_json(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        return _build(cls, data)
