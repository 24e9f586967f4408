"""Record what a pipeline really passes to its components, in one short call of the pipeline itself.

Every ``torch.nn.Module`` in ``pipe.components`` gets a forward pre-hook, and the VAE's
``encode``/``decode`` methods (methods, not ``forward``) are wrapped with :func:`functools.wraps`,
so the pipeline's signature checks see the originals. The pipeline then runs at the requested size
for :data:`RECORD_STEPS` denoising steps; the arguments of every call are kept (tensors detached
and copied; on ``meta`` the copies cost nothing). Each call also records in which denoising step
it happened (``scheduler.step`` calls so far), so a plugin can tell components called once per run
(text encoders, the VAE's decode) from those called once per step (the denoiser, a ControlNet).

On ``meta`` weights the pipeline cannot finish (it converts the image to numpy at the end, and
some schedulers read timesteps as numbers); whatever was recorded before it stopped is kept, and
the reason it stopped is kept with it.

This is a supported plugin API: ``context.recorded_calls(name)`` returns the
:class:`RecordedCall` list of one component, and :meth:`RecordedCall.replay` calls the module (or
method) again with the same arguments.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Iterator

from inspector.errors import describe_exception
from inspector.measure.capture import iter_tensors
from inspector.measure.metaops import cached
from inspector.measure.patches import Patches
from inspector.results.records import RecordingInfo

#: Denoising steps of the recording call: two, so that per-step components are told apart from
#: per-run ones (a component called in step 1 is called in every step).
RECORD_STEPS = 2
#: Calls kept per component and method; later ones are only counted.
KEEP_CALLS = 4

WRAPPED_METHODS = ("encode", "decode")


def floating_dtype(module: Any) -> Any:
    """The one floating dtype of ``module``'s parameters and buffers; None where it has none, or
    several (a model that keeps some layers in float32), or is not a module."""
    import torch

    if not isinstance(module, torch.nn.Module):
        return None
    found = {t.dtype for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()}
    return found.pop() if len(found) == 1 else None


@contextlib.contextmanager
def cast_to(module: Any, dtype: Any) -> Iterator[bool]:
    """Run the block with ``module`` cast to ``dtype`` and cast it back after, as pipelines do
    around a call (SDXL's ``vae.to(torch.float32)`` before decoding with a float16 VAE whose
    config says ``force_upcast``, ``vae.to(torch.float16)`` after). Yields whether it cast:
    nothing is done for ``dtype`` None, a module already in it, or one of several dtypes."""
    current = floating_dtype(module)
    if dtype is None or current is None or current == dtype:
        yield False
        return
    module.to(dtype=dtype)
    try:
        yield True
    finally:
        module.to(dtype=current)


@dataclass
class RecordedCall:
    """One call the pipeline made: ``getattr(module, method)(*args, **kwargs)`` in denoising step ``step``
    (``step`` counts ``scheduler.step`` calls made before it). ``dtype``: the module's floating dtype
    at that moment (:func:`floating_dtype`), which the pipeline may have cast it to for the call."""

    component: str
    method: str
    args: tuple
    kwargs: dict
    step: int
    dtype: Any = None

    def replay(self, module: Any) -> Any:
        """Call ``module`` (or its ``method``) again with the recorded arguments. The module is used
        as it is: run the replay inside :meth:`as_called` for the dtype the pipeline called it in
        (outside any memory tracking, so the cast weights are not counted as activations)."""
        target = module if self.method == "forward" else getattr(module, self.method)
        return target(*self.args, **self.kwargs)

    def as_called(self, module: Any) -> contextlib.AbstractContextManager[bool]:
        """``with call.as_called(module):`` the module in the dtype the pipeline called it in
        (:func:`cast_to`); yields whether that took a cast."""
        return cast_to(module, self.dtype)

    def tensors(self) -> list[tuple[str, Any]]:
        """``(name, tensor)`` for every tensor among the arguments (positional ones as ``[i]``)."""

        found = list(iter_tensors(list(self.args)))
        found += list(iter_tensors(self.kwargs))
        return found


@dataclass
class Recording:
    """Every call the recording run saw, by component; ``counts`` includes calls not kept."""

    calls: dict[str, list[RecordedCall]] = field(default_factory=dict)
    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)
    steps: int = 0
    error: str | None = None
    seconds: float = 0.0
    #: the calls are the caller's own inputs (``inputs=``), not recorded from a pipeline call
    given: bool = False
    #: what the run's notes say of the inputs, where no pipeline call was made (a single model)
    note: str | None = None

    def info(self) -> Any:
        """The recording as plain result data (:class:`inspector.results.records.RecordingInfo`)."""

        calls: dict[str, int] = {}
        for (name, method, _step), n in self.counts.items():
            key = name if method == "forward" else f"{name}.{method}"
            calls[key] = calls.get(key, 0) + n
        return RecordingInfo(steps=self.steps, seconds=self.seconds, error=self.error, calls=calls)

    def of(self, component: str, method: str | None = None) -> list[RecordedCall]:
        return [c for c in self.calls.get(component, []) if method is None or c.method == method]

    def calls_per_run(self, component: str, method: str, denoise_calls: int) -> float | None:
        """How often one pipeline run of ``denoise_calls`` steps calls ``component.method``:
        per step if the recording saw it in step 1, else as often as the recording saw it."""
        seen = {step: n for (name, m, step), n in self.counts.items() if name == component and m == method}
        if not seen:
            return None
        if self.steps >= 2 and seen.get(1):
            return float(seen[1] * denoise_calls)
        return float(sum(seen.values()))


def _copy(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return type(value)({k: _copy(v) for k, v in value.items()}) if type(value) is dict else \
            {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value


class Recorder:
    """Installs the recording hooks for the duration of ``with recorder:``; removes them on exit."""

    def __init__(self, pipe: Any, *, timesteps_on_cpu: bool = False, reuse_outputs: bool = False) -> None:
        self.pipe = pipe
        self.timesteps_on_cpu = timesteps_on_cpu
        self.reuse_outputs = reuse_outputs
        self._outputs: dict[tuple, Any] = {}
        self.recording = Recording()
        self._patches = Patches()
        #: the components that are modules, by name (a call's dtype is read from its module)
        self._modules: dict[str, Any] = {}

    def _note(self, component: str, method: str, args: tuple, kwargs: dict) -> None:
        rec = self.recording
        key = (component, method, rec.steps)
        rec.counts[key] = rec.counts.get(key, 0) + 1
        kept = rec.calls.setdefault(component, [])
        if sum(1 for c in kept if c.method == method) < KEEP_CALLS:
            kept.append(RecordedCall(component, method, _copy(args), _copy(kwargs), rec.steps,
                                     floating_dtype(self._modules.get(component))))

    def _wrap(self, obj: Any, name: str, before: Callable[[tuple, dict], None] | None,
              after: Callable[[], None] | None = None) -> None:
        def around(original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
            if before is not None:
                before(args, kwargs)
            try:
                return original(*args, **kwargs)
            finally:
                if after is not None:
                    after()

        self._patches.wrap(obj, name, around)

    def __enter__(self) -> Recorder:
        import torch

        try:
            for name, comp in self.pipe.components.items():
                if isinstance(comp, torch.nn.Module):
                    self._modules[name] = comp

                    def pre(_m: Any, args: tuple, kwargs: dict, _name: str = name) -> None:
                        self._note(_name, "forward", args, kwargs)

                    self._patches.hook(comp, pre)
                    if self.reuse_outputs:
                        self._reuse_outputs(name, comp)
                    for method in WRAPPED_METHODS:
                        if callable(getattr(comp, method, None)):
                            self._wrap(comp, method, partial(self._note, name, method))
            scheduler = self.pipe.components.get("scheduler")
            if scheduler is not None and callable(getattr(scheduler, "step", None)):
                self._wrap(scheduler, "step", None, after=self._step_done)
                if self.timesteps_on_cpu and callable(getattr(scheduler, "set_timesteps", None)):
                    self._timesteps_on_cpu(scheduler)
        except BaseException:
            self.remove()
            raise
        return self

    def _reuse_outputs(self, name: str, module: Any) -> None:
        """On ``meta`` a forward's output depends only on the shapes, dtypes and plain values it is
        given: a second call with the same ones (the negative prompt's encoding, the next denoising
        step) gets the first call's output instead of running every layer again. The call is still
        recorded and counted (the hooks sit on ``__call__``)."""

        def around(original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
            key = (name, _signature(args), _signature(kwargs))
            if key not in self._outputs:
                self._outputs[key] = original(*args, **kwargs)
            return self._outputs[key]

        self._patches.wrap(module, "forward", around)

    def _timesteps_on_cpu(self, scheduler: Any) -> None:
        """On ``meta`` weights the pipeline asks for timesteps on ``meta``, where schedulers cannot
        read them (``.item()``, ``nonzero``); keep them on the CPU (they are data, not weights)."""

        def around(original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
            if "device" in kwargs:
                kwargs["device"] = "cpu"
            elif len(args) > 1:
                args = (args[0], "cpu", *args[2:])
            return original(*args, **kwargs)

        self._patches.wrap(scheduler, "set_timesteps", around)

    def _step_done(self) -> None:
        self.recording.steps += 1

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def remove(self) -> None:
        self._patches.remove()


def record(pipe: Any, kwargs: dict[str, Any], seed: int = 0) -> Recording:
    """Run ``pipe(**kwargs)`` once with recording hooks; never raises an ordinary exception (the
    reason the call stopped is kept in ``error``). Ctrl-C is raised again.

    On ``meta`` weights a call that stops before its denoising steps are done is tried again the
    other way: with the scheduler's timesteps on the CPU (most schedulers read them with
    ``.item()``, which ``meta`` cannot answer), or as the pipeline asks; the recording that got
    further is kept. A UNet pipeline starts with the timesteps on the CPU (its schedulers stop in
    the first step otherwise, and the UNet moves them to its sample's device); a transformer moves
    nothing and starts as the pipeline asks. Either order gives the same recording; this one
    calls the pipeline once instead of twice."""
    on_meta = _on_meta(pipe)
    cpu_first = on_meta and getattr(pipe, "components", {}).get("unet") is not None
    recording = _record_once(pipe, kwargs, seed, timesteps_on_cpu=cpu_first)
    if on_meta and recording.error is not None and recording.steps < RECORD_STEPS:
        second = _record_once(pipe, kwargs, seed, timesteps_on_cpu=not cpu_first)
        better = (second.steps, sum(second.counts.values())) > (recording.steps, sum(recording.counts.values()))
        if better:
            second.seconds += recording.seconds
            return second
    return recording


def _record_once(pipe: Any, kwargs: dict[str, Any], seed: int, *, timesteps_on_cpu: bool) -> Recording:
    import torch

    recorder = Recorder(pipe, timesteps_on_cpu=timesteps_on_cpu, reuse_outputs=_on_meta(pipe))
    started = time.perf_counter()
    kwargs = dict(kwargs)
    if "num_inference_steps" in kwargs:
        kwargs["num_inference_steps"] = record_steps(pipe, kwargs)
    bar = dict(getattr(pipe, "_progress_bar_config", {}) or {})
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(**{**bar, "disable": True})
    # The call sets timesteps on the scheduler it uses: give it a fresh copy, so recording leaves
    # the pipeline's own scheduler as it was found.
    own_scheduler = getattr(pipe, "scheduler", None)
    fresh = None
    if own_scheduler is not None and callable(getattr(type(own_scheduler), "from_config", None)):
        try:
            fresh = type(own_scheduler).from_config(own_scheduler.config)
        except Exception:  # noqa: BLE001 - then the call uses the pipeline's own, as before
            fresh = None
    if fresh is not None:
        pipe.scheduler = fresh

    try:
        with recorder, torch.no_grad(), (cached() if _on_meta(pipe) else contextlib.nullcontext()):
            generator = torch.Generator("cpu").manual_seed(seed)
            pipe(**kwargs, generator=generator)
    except Exception as exc:  # noqa: BLE001 - a recording that stops early is still a recording
        recorder.recording.error = describe_exception(exc)
    finally:
        if fresh is not None:
            pipe.scheduler = own_scheduler
        if hasattr(pipe, "_progress_bar_config"):
            pipe._progress_bar_config = bar
    recorder.recording.seconds = time.perf_counter() - started
    return recorder.recording


def strength_of(pipe: Any, kwargs: dict[str, Any]) -> float | None:
    """The ``strength`` an image-to-image call runs at (it denoises only that fraction of the steps)."""
    import inspect

    if "strength" in kwargs:
        return float(kwargs["strength"])
    param = inspect.signature(type(pipe).__call__).parameters.get("strength")
    default = getattr(param, "default", None)
    return float(default) if isinstance(default, (int, float)) and not isinstance(default, bool) else None


def record_steps(pipe: Any, kwargs: dict[str, Any]) -> int:
    """``num_inference_steps`` that make :data:`RECORD_STEPS` denoising steps, ``strength`` included."""
    import math

    strength = strength_of(pipe, kwargs)
    if strength and 0 < strength < 1:
        return math.ceil(RECORD_STEPS / strength) + 1
    return RECORD_STEPS


def _signature(value: Any) -> Any:
    """What a forward's output on ``meta`` can depend on: tensors by shape, dtype and device,
    containers by their items, plain values as they are; anything else by identity (never shared)."""
    import torch

    if isinstance(value, torch.Tensor):
        return ("tensor", tuple(value.shape), str(value.dtype), value.device.type)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_signature(v) for v in value))
    if isinstance(value, dict):
        return ("dict", tuple((str(k), _signature(v)) for k, v in value.items()))
    if value is None or isinstance(value, (bool, int, float, str)):
        return (type(value).__name__, value)
    return ("object", id(value))


def _on_meta(pipe: Any) -> bool:
    import torch

    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            for p in comp.parameters():
                return p.device.type == "meta"
    return False
