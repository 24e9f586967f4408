"""What a plugin is handed: the component to inspect and the run around it (:class:`InspectContext`;
for ``profile_component``, :class:`ProfileContext`, which adds ``measure``)."""
from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any, Callable

from inspector.errors import OptionError, describe_exception, is_out_of_memory
from inspector.measure.calls import UnsupportedCall, call_kwargs
from inspector.measure.capture import Capture, capture, parameter_stats, tensor_infos
from inspector.measure.machine import MachineMonitor
from inspector.measure.operators import top_operators
from inspector.measure.recording import Recording, record, strength_of
from inspector.measure.timing import DEFAULT_MAX_SPREAD, Measured, measure
from inspector.results.records import ComponentResult, HookFailure, Measurement, ParameterStats, TensorInfo, TimingStats


@dataclass
class Component:
    """One entry of ``pipe.components``. ``obj`` is ``None`` when the component is absent."""

    name: str
    obj: Any
    library: str | None = None
    declared_class: str | None = None

    @property
    def present(self) -> bool:
        return self.obj is not None

    @property
    def class_name(self) -> str:
        if self.obj is None:
            return self.declared_class or "None"
        return type(self.obj).__name__

    @property
    def is_module(self) -> bool:
        import torch

        return isinstance(self.obj, torch.nn.Module)


@dataclass
class InspectOptions:
    height: int | None = None
    width: int | None = None
    batch_size: int = 1
    prompt: str = "a photo of an astronaut riding a horse on mars"
    negative_prompt: str = ""
    guidance_scale: float = 7.5
    steps: int = 50
    seed: int = 0
    #: frames of a video pipeline (AnimateDiff, Wan); None: the pipeline's own default
    frames: int | None = None
    #: ``--fits``: a device name or memory size to judge the predicted peak against
    fits: str | None = None


@dataclass
class InspectContext:
    """The run a plugin sees. Shapes follow the pipeline: latents at ``height/width``
    divided by the VAE's scale factor, and the batch doubled under classifier-free guidance."""

    pipe: Any
    options: InspectOptions
    device: Any
    dtype: Any
    height: int = 0
    width: int = 0
    weights: str | None = None
    shared: dict[str, Any] = field(default_factory=dict)
    #: what the pipeline itself passed to its components in one short call (see :meth:`record_calls`)
    recording: Any = None

    @property
    def vae_scale_factor(self) -> int:
        return vae_scale_factor(self.pipe)

    @property
    def cfg(self) -> bool:
        """Whether the pipeline runs classifier-free guidance (two denoiser batches per image).
        Flux is guidance-distilled: the scale goes in as an input, the batch is not doubled."""
        return self.options.guidance_scale > 1.0 and not self.is_flux

    @property
    def cfg_batch(self) -> int:
        return self.options.batch_size * (2 if self.cfg else 1)

    @property
    def latent_size(self) -> tuple[int, int]:
        return self.height // self.vae_scale_factor, self.width // self.vae_scale_factor

    def denoise_calls(self) -> int:
        """How many denoising iterations (UNet calls) one pipeline run makes: the length of the
        scheduler's timesteps for ``--steps``, which is not always ``--steps`` (PNDM adds one)."""
        if "denoise_calls" not in self.shared:
            scheduler = getattr(self.pipe, "scheduler", None)
            count = self.options.steps
            if scheduler is not None:
                count = len(planned_scheduler(scheduler, self.options.steps, self.image_seq_len).timesteps)

            try:
                strength = strength_of(self.pipe, self.pipeline_call())
            except Exception:  # noqa: BLE001 - a call that cannot be made has no strength
                strength = None
            if strength and 0 < strength < 1:  # image-to-image denoises the last strength * steps only
                count = min(int(self.options.steps * strength), count)
            self.shared["denoise_calls"] = count
        return self.shared["denoise_calls"]

    @property
    def image_seq_len(self) -> int:
        """Image tokens a packing transformer sees (Flux: 2x2 latent patches)."""
        h, w = self.latent_size
        return (h // 2) * (w // 2)

    @property
    def is_flux(self) -> bool:
        return type(self.pipe).__name__.startswith("Flux")

    @property
    def size_multiple(self) -> int:
        """What height and width must be multiples of: the VAE's scale factor, times the
        transformer's patch size (SD3) or the 2x2 latent packing (Flux)."""
        scale = self.vae_scale_factor
        if self.is_flux:
            return scale * 2
        transformer = getattr(self.pipe, "transformer", None)
        patch = getattr(getattr(transformer, "config", None), "patch_size", None)
        if isinstance(patch, (list, tuple)):  # Wan: (frames, height, width)
            patch = patch[-1] if patch else 1
        return scale * (patch if isinstance(patch, int) and patch > 0 else 1)

    @property
    def on_meta(self) -> bool:
        return str(self.device) == "meta"

    def example(self, *shape: int, dtype: Any = None, low: float = -1.0, high: float = 1.0) -> Any:
        """A seeded example tensor on the component's device (empty on ``meta``)."""
        import torch

        dtype = dtype or self.dtype
        if self.on_meta:
            return torch.empty(shape, dtype=dtype, device="meta")
        gen = torch.Generator().manual_seed(self.options.seed)
        data = torch.rand(shape, generator=gen, dtype=torch.float32) * (high - low) + low
        return data.to(device=self.device, dtype=dtype)

    # --- the pipeline's own calls ------------------------------------------------------

    def pipeline_call(self) -> dict[str, Any]:
        """The keyword arguments ``pipe(...)`` is called with (no generator), the same for the
        recording call, the bare and the instrumented end-to-end calls. Raises
        :class:`inspector.measure.calls.UnsupportedCall` if the pipeline needs what cannot be synthesized."""
        if "pipeline_call" not in self.shared:
            o = self.options
            kwargs, notes = call_kwargs(self.pipe, prompt=o.prompt, negative_prompt=o.negative_prompt,
                                        steps=o.steps, guidance_scale=o.guidance_scale, height=self.height,
                                        width=self.width, batch_size=o.batch_size, seed=o.seed, frames=o.frames)
            self.shared["pipeline_call"] = kwargs
            self.shared["pipeline_call_notes"] = notes
        return self.shared["pipeline_call"]

    def record_calls(self) -> Any:
        """Run the pipeline once, briefly, and keep what it passed to each component
        (:class:`inspector.measure.recording.Recording`). Done once per run, before any plugin runs."""
        if self.recording is None:
            try:
                kwargs = self.pipeline_call()
            except UnsupportedCall as exc:
                self.recording = Recording(error=str(exc))
            else:
                self.recording = record(self.pipe, kwargs, seed=self.options.seed)
        return self.recording

    def recorded_calls(self, name: str, method: str | None = None) -> list[Any]:
        """Calls the pipeline made to component ``name`` (``method``: ``"forward"``, ``"encode"``,
        ``"decode"``; None: all) in the recording call, first call first, as
        :class:`inspector.measure.recording.RecordedCall` objects a plugin can ``replay(module)``.
        Empty when nothing was recorded (the recording failed early, or the pipeline never
        calls that component directly)."""
        return self.recording.of(name, method) if self.recording is not None else []

    def calls_per_run(self, name: str, method: str = "forward") -> float | None:
        """How often one pipeline run at ``--steps`` calls ``name.method``, from the recording."""
        if self.recording is None:
            return None
        return self.recording.calls_per_run(name, method, self.denoise_calls())

    def capture(self, module: Any, call: Any) -> Capture:
        if self.shared.get("memory_only"):  # a --fits probe: activations only, no hooks, no FLOPs
            return capture(module, call, count_flops=False, layers=False)
        if self.shared.get("flops_only"):  # a run's cost, predicted on meta: FLOPs, no layer hooks
            return capture(module, call, layers=False)
        return capture(module, call)

    def replay(self, result: ComponentResult, module: Any, call: Any) -> Capture:
        """Capture ``module`` running the recorded ``call`` again (layers, FLOPs, outputs) and
        record on ``result`` the call's inputs and where they came from."""
        # the same computation, with the output's field names kept (pipelines pass return_dict=False)
        named = call if "return_dict" not in call.kwargs else type(call)(
            call.component, call.method, call.args, {k: v for k, v in call.kwargs.items() if k != "return_dict"},
            call.step, call.dtype)
        with call.as_called(module):  # in the dtype the pipeline called it in; the cast is not tracked
            cap = self.capture(module, lambda: named.replay(module))
        result.inputs = [TensorInfo(n, list(t.shape), str(t.dtype).replace("torch.", "")) for n, t in call.tensors()]
        result.inputs_source = self.origin(call)
        self.fill_capture(result, cap, cap.value)
        return cap

    def origin(self, call: Any) -> str:
        """Where a replayed call's inputs came from, in words: the pipeline's own call, recorded,
        or the caller's ``inputs=``, given with a single model."""
        called = f"{call.component}{'' if call.method == 'forward' else '.' + call.method}(...)"
        if getattr(self.recording, "given", False):
            return f"given: the inputs= passed with the model, as {called}"
        return f"recorded: {type(self.pipe).__name__}'s own call of {called} in denoising step {call.step}"

    def synthesized(self, result: ComponentResult, inputs: Any, how: str) -> None:
        """Record synthesized ``inputs`` (a dict or tensor) on ``result`` and why they were synthesized."""
        result.inputs = tensor_infos(inputs)
        reason = self.recording.error if self.recording is not None and self.recording.error else \
            "the recording call did not call it"
        result.inputs_source = f"synthesized ({how}); not recorded: {reason}"

    def base_result(self, component: Component, kind: str, plugin: str) -> ComponentResult:
        """A result filled with what every component has: identity and, for modules, parameters."""
        result = ComponentResult(
            name=component.name, class_name=component.class_name,
            library=component.library or _library_of(component.obj), present=component.present,
            kind=kind, plugin=plugin,
        )
        if component.present and component.is_module:
            result.parameters = ParameterStats(**parameter_stats(component.obj))
            result.details["dtype"] = _module_dtype(component.obj)
            result.details["device"] = _module_device(component.obj)
        return result

    def fill_capture(self, result: ComponentResult, cap: Capture, outputs: Any, prefix: str = "") -> None:
        result.layers.extend(cap.layers)
        result.flops = (result.flops or 0) + cap.flops
        result.activation_bytes = max(result.activation_bytes or 0, cap.activation_bytes)
        result.cpu_activation_bytes = max(result.cpu_activation_bytes or 0, cap.cpu_activation_bytes)
        result.outputs.extend(tensor_infos(outputs, prefix))


def vae_scale_factor(pipe: Any) -> int:
    """How much the pipeline's autoencoder shrinks an image's height and width, under the several
    names pipelines give it (``vae_scale_factor``, Wan's ``vae_scale_factor_spatial``, Kandinsky's
    ``movq_scale_factor``); 8 when the pipeline names none."""
    for name in ("vae_scale_factor", "vae_scale_factor_spatial", "movq_scale_factor"):
        value = getattr(pipe, name, None)
        if isinstance(value, (int, float)) and value >= 1:
            return int(value)
    return 8


def _library_of(obj: Any) -> str | None:
    if obj is None:
        return None
    return type(obj).__module__.split(".")[0]


def _module_dtype(module: Any) -> str | None:
    for p in module.parameters():
        return str(p.dtype).replace("torch.", "")
    return None


def _module_device(module: Any) -> str | None:
    for p in module.parameters():
        return str(p.device)
    return None


def check_size(height: int, width: int, multiple: int) -> None:
    for label, value in (("height", height), ("width", width)):
        if value <= 0 or value % multiple:
            raise OptionError(f"--{label} {value} must be a positive multiple of {multiple} for this pipeline")


def dynamic_shift(config: Any, image_seq_len: int) -> float:
    """The ``mu`` a Flux pipeline passes to a scheduler with ``use_dynamic_shifting`` (linear in the
    number of image tokens between ``base_image_seq_len`` and ``max_image_seq_len``)."""
    base_len = config.get("base_image_seq_len", 256)
    max_len = config.get("max_image_seq_len", 4096)
    base_shift = config.get("base_shift", 0.5)
    max_shift = config.get("max_shift", 1.15)
    slope = (max_shift - base_shift) / (max_len - base_len)
    return image_seq_len * slope + base_shift - slope * base_len


def planned_scheduler(scheduler: Any, steps: int, image_seq_len: int = 4096) -> Any:
    """A fresh copy of ``scheduler`` with its timesteps set for ``steps`` as the pipeline would
    set them; the pipeline's own scheduler is never touched."""
    copy = type(scheduler).from_config(scheduler.config)
    kwargs = {}
    if copy.config.get("use_dynamic_shifting", False):
        kwargs["mu"] = dynamic_shift(copy.config, image_seq_len)
    copy.set_timesteps(steps, **kwargs)
    return copy


#: progress(stage, fraction, detail): stage is a component name or "pipeline".
Progress = Callable[[str, float, str], None]


@dataclass
class ProfileOptions(InspectOptions):
    warmup: int = 1
    repeats: int = 5
    e2e_repeats: int = 3
    scheduler: str | None = None
    attention: str | None = None
    peak_tflops: float | None = None
    image_path: str | None = None
    image_out: str | None = None
    end_to_end: bool = True
    #: seconds one measurement may keep repeating to get its relative spread under
    #: ``max_spread`` (0: exactly ``repeats`` calls); the end-to-end pairs use the same budget
    max_time: float = 0.0
    max_spread: float = DEFAULT_MAX_SPREAD
    #: run each timed call once more under torch.profiler for its top operators (untimed)
    operators: bool = True
    #: write a Chrome/Perfetto trace of one extra end-to-end call here
    trace: str | None = None


@dataclass
class ProfileContext(InspectContext):
    """What a profiling plugin is handed: the inspection context (``options`` is a
    :class:`ProfileOptions`) plus ``measure``."""

    options: ProfileOptions
    peak_flops: float | None = None
    progress: Progress | None = None
    #: the machine monitor of this run (its ``state`` so far is readable at any time)
    machine: MachineMonitor | None = None

    def measure(self, result: ComponentResult, name: str, fn: Callable[[], Any], *, flops: int | None = None,
                calls_per_run: float | None = None, repeats: int | None = None,
                warmup: int | None = None) -> Measured | None:
        """Time ``fn`` and record a :class:`Measurement` named ``name`` on ``result``.

        Returns the measurement (its ``value`` is ``fn``'s last return value), or
        ``None`` when the call ran out of memory; that is recorded on the result.
        """
        import torch

        def tick(i: int, total: int) -> None:
            if self.progress:
                self.progress(result.name, i / total, name)

        oom: BaseException | None = None
        measured: Measured
        try:
            with torch.no_grad():
                measured = measure(fn, self.device, warmup=self.options.warmup if warmup is None else warmup,
                                   repeats=self.options.repeats if repeats is None else repeats, on_call=tick,
                                   max_time=self.options.max_time, max_spread=self.options.max_spread)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            oom = exc
        if oom is not None:
            # Free outside the except block: the traceback holds the frames' tensors until then.
            message = f"out of memory: {describe_exception(oom)}"
            del oom
            free_memory(self.device)
            result.measurements.append(Measurement(name=name, timing=_empty_timing(), error=message))
            result.errors.append(HookFailure(plugin=result.plugin or "", hook="profile_component", error=message,
                                             kind="oom"))
            return None
        per_second = flops / (measured.timing.median / 1000.0) if flops and measured.timing.median > 0 else None
        fraction = per_second / self.peak_flops if per_second and self.peak_flops else None
        result.measurements.append(Measurement(
            name=name, timing=measured.timing, memory=measured.memory, flops=flops,
            flops_per_second=per_second, fraction_of_peak=fraction, calls_per_run=calls_per_run))
        if result.timing is None:
            result.timing, result.memory = measured.timing, measured.memory
        if getattr(self.options, "operators", False):
            self._operators(result, name, fn)
        return measured

    def _operators(self, result: ComponentResult, name: str, fn: Callable[[], Any]) -> None:
        """One more call, untimed, under torch.profiler: the top operators as a view."""

        try:
            result.views.append(top_operators(fn, self.device, f"Top operators: {name}"))
        except Exception as exc:  # noqa: BLE001 - the timing stands without the table
            result.notes.append(f"no operator table for {name}: {type(exc).__name__}: {exc}")


def _empty_timing() -> TimingStats:
    return TimingStats(median=float("nan"), iqr=float("nan"), min=float("nan"), max=float("nan"), count=0)


def free_memory(device: Any) -> None:
    gc.collect()
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.empty_cache()
