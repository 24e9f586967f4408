"""Where the time goes, operator by operator: ``torch.profiler`` over calls ``profile`` already
timed, and a Chrome/Perfetto trace of one end-to-end call with the pipeline's structure on it.

Both run outside the timed calls (an extra call each), so the profiler's own overhead never
reaches a reported time. The trace names a span per component call (``text_encoder``,
``unet``/``transformer``, ``scheduler.step``, ``vae.decode``, ``safety_checker``) and per
denoising step (``denoising step N``: from the denoiser call to the end of its
``scheduler.step``), with ``torch.profiler.record_function``, so they sit on the same timeline
as the operators and kernels.
"""
from __future__ import annotations

from typing import Any, Callable

from inspector.files import atomic_path
from inspector.measure.patches import Patches
from inspector.results.records import View
from inspector.runtime.libraries import debug

TOP = 12
#: torch's profiler backend (kineto) writes its own log lines straight to file descriptor 2
#: ("USDT: ... profiler_start" on every start and stop): over the TUI's screen and into the
#: one-line error contract. Its levels run up to 5; 6 silences it unless the user set a level
#: or asked for the libraries' chatter with LDM_INSPECTOR_DEBUG=1.
KINETO_LOG_LEVEL = "KINETO_LOG_LEVEL"
KINETO_QUIET = "6"


def quiet_profiler() -> None:
    """Keep kineto's log lines off the terminal (read by kineto when a profiler starts)."""
    import os

    if not debug():
        os.environ.setdefault(KINETO_LOG_LEVEL, KINETO_QUIET)


def _self_time_us(event: Any, cuda: bool) -> float:
    if cuda:
        for attr in ("self_device_time_total", "self_cuda_time_total"):
            value = getattr(event, attr, None)
            if value:
                return float(value)
        return 0.0
    return float(event.self_cpu_time_total)


def top_operators(fn: Callable[[], Any], device: Any, title: str, top: int = TOP) -> View:
    """Run ``fn`` once under ``torch.profiler`` and return its top operators by self time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    quiet_profiler()
    cuda = str(device).startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with torch.no_grad(), profile(activities=activities, with_flops=True) as prof:
        fn()
        if cuda:
            torch.cuda.synchronize()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    total = sum(_self_time_us(e, cuda) for e in events) or 1.0
    events.sort(key=lambda e: _self_time_us(e, cuda), reverse=True)
    rows = []
    for e in events[:top]:
        self_us = _self_time_us(e, cuda)
        rows.append([e.key, round(self_us / 1000.0, 4), int(e.count), round(self_us / total, 4),
                     int(e.flops) if getattr(e, "flops", 0) else None])
    clock = "device" if cuda else "CPU"
    return View(title=title, columns=["operator", f"self_{clock.lower()}_ms", "calls", "share", "flops"], rows=rows)


class TraceSpans:
    """``record_function`` spans on a pipeline's components while ``with spans:`` is open."""

    def __init__(self, pipe: Any) -> None:
        self.pipe = pipe
        self._patches = Patches()
        self._open: list[Any] = []
        self._step: Any = None
        self.steps = 0

    def _enter(self, name: str) -> Any:
        from torch.autograd.profiler import record_function

        span = record_function(name)
        span.__enter__()
        return span

    def _hook(self, module: Any, name: str, denoiser: bool = False) -> None:
        stack: list[Any] = []

        def pre(_m: Any, args: tuple, kwargs: dict) -> None:
            if denoiser and self._step is None:
                self._step = self._enter(f"denoising step {self.steps}")
            stack.append(self._enter(name))

        def post(_m: Any, args: tuple, kwargs: dict, output: Any) -> None:
            if stack:
                stack.pop().__exit__(None, None, None)

        self._patches.hook(module, pre, post)

    def _wrap(self, obj: Any, attr: str, name: str, ends_step: bool = False) -> None:
        def around(original: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
            span = self._enter(name)
            try:
                return original(*args, **kwargs)
            finally:
                span.__exit__(None, None, None)
                if ends_step and self._step is not None:
                    self._step.__exit__(None, None, None)
                    self._step = None
                    self.steps += 1

        self._patches.wrap(obj, attr, around)

    def __enter__(self) -> TraceSpans:
        comps = self.pipe.components
        for name, comp in comps.items():
            if comp is None or not hasattr(comp, "register_forward_hook"):
                continue
            if name in ("unet", "transformer"):
                self._hook(comp, name, denoiser=True)
            elif name.startswith("text_encoder") or name == "safety_checker":
                self._hook(comp, name)
        if comps.get("scheduler") is not None:
            self._wrap(comps["scheduler"], "step", "scheduler.step", ends_step=True)
        if comps.get("vae") is not None:
            self._wrap(comps["vae"], "decode", "vae.decode")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._step is not None:
            self._step.__exit__(None, None, None)
            self._step = None
        self._patches.remove()


def write_trace(pipe: Any, call: Callable[[], Any], path: str, device: Any) -> int:
    """One extra end-to-end call under ``torch.profiler``, exported as a Chrome/Perfetto trace
    (atomically). Returns how many denoising steps the trace holds."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    quiet_profiler()
    cuda = str(device).startswith("cuda")
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    spans = TraceSpans(pipe)
    with profile(activities=activities) as prof:
        with spans:
            call()
        if cuda:
            torch.cuda.synchronize()
    with atomic_path(path) as tmp:
        prof.export_chrome_trace(str(tmp))
    return spans.steps
