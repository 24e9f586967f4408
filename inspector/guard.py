"""Guards the whole run needs: memory before weights exist, absurd sizes, signals, library warnings.

* **Memory.** Before random or pretrained weights are materialized, their bytes are predicted
  (from the models built on ``meta``, or from the safetensors headers), and when they take at
  least half the memory available, the activations of one pipeline call too (the architecture
  built on ``meta`` at the requested size, batch and dtype, see :mod:`inspector.memory`). The sum
  is compared with what the device has: ``psutil``'s available memory on a CPU, free CUDA memory
  on a GPU. A run that cannot fit is refused in one line ("needs X GiB (weights W + peak
  activations A at HxW, batch B), Y GiB available") unless ``--force``.
* **Absurd sizes.** Config values that only make sense as attacks or typos (a tokenizer padding
  to a billion tokens, ten billion training timesteps) are refused before anything allocates.
* **Signals.** SIGTERM is turned into the same path as Ctrl-C (a :class:`Terminated`, which is a
  ``KeyboardInterrupt``), so partial results are kept; the exit code says which signal it was
  (130 for SIGINT, 143 for SIGTERM).
* **Warnings.** torch, diffusers and transformers warn about their own deprecations while we call
  them; :func:`library_warnings` captures those at the call, so stderr carries our one line only.
  ``LDM_INSPECTOR_DEBUG=1`` prints them.

No torch at module level: the CLI imports this before it knows whether it will need torch.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import os
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

from .errors import OptionError, SourceError

GIB = 2**30
#: the activations are predicted before loading only when the weights alone take this share of the
#: available memory: the prediction costs about a second on a full-size model, and more than the
#: whole run on a tiny one (``docs/benchmarks.md``)
PREDICT_FROM = 0.5
ENV_DEBUG = "LDM_INSPECTOR_DEBUG"

# --- memory ----------------------------------------------------------------------------


def available_bytes(device: str) -> list[tuple[str, int]]:
    """(where, bytes available) for every memory the weights must fit in."""
    import psutil

    found = [("in memory", int(psutil.virtual_memory().available))]
    if str(device).startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(device))
        found.append((f"free on {device}", int(free)))
    return found


@dataclass(frozen=True)
class PredictedActivations:
    """The activation part of a predicted peak: bytes above the weights under the pipeline's
    default placement (everything on the device), and the inputs it was predicted for."""

    bytes: int
    #: "512x512, batch 1"
    at: str


#: source of the activation prediction; ``None`` when the architecture cannot be built on meta
Predictor = Callable[[], "PredictedActivations | None"]


def check_memory(needed: int, device: str, *, force: bool, what: str, predict: Predictor | None = None) -> None:
    """Refuse to materialize ``needed`` bytes of weights, plus the activations of one call of the
    pipeline when ``predict`` can predict them, that the device does not have (unless ``force``).

    The prediction (building the architecture on ``meta`` and tracking one example call of each
    component) runs only when the weights alone take at least :data:`PREDICT_FROM` of the memory
    available (and not more than all of it: then the weights alone decide). Below that the check
    is the weights' alone: a run whose activations need more than the other half is not caught
    before loading (it fails as an out-of-memory error when it runs)."""
    if force:
        return
    from .units import human_bytes

    found = available_bytes(device)
    device_free = found[-1][1]  # the device's own memory: host memory on a CPU, free CUDA memory on a GPU
    activations = None
    if predict is not None and PREDICT_FROM * device_free <= needed <= device_free:
        activations = predict()
    total = needed + (activations.bytes if activations else 0)
    if activations is not None:
        detail = (f"weights {human_bytes(needed)} + peak activations {human_bytes(activations.bytes)} at "
                  f"{activations.at}")
    else:  # refused only when the weights alone do not fit
        detail = "the weights alone; activations not predicted"
    on_gpu = str(device).startswith("cuda")
    for index, (where, available) in enumerate(found):
        if on_gpu and index == 0:  # host memory holds the weights while they load, not the activations
            if needed > available:
                raise OptionError(f"{what} needs {human_bytes(needed)} (weights, while loading), "
                                  f"{human_bytes(available)} available {where}; pass --force to try anyway")
            continue
        if total > available:
            raise OptionError(f"{what} needs {human_bytes(total)} ({detail}), {human_bytes(available)} available "
                              f"{where}; pass --force to try anyway")


def module_bytes(modules: list[Any], dtype: Any) -> int:
    """Bytes the parameters and buffers of ``modules`` will take in ``dtype`` once materialized."""
    import torch

    size = torch.empty((), dtype=dtype).element_size()
    total = 0
    for module in modules:
        for tensor in [*module.parameters(), *module.buffers()]:
            total += tensor.numel() * (size if tensor.is_floating_point() else tensor.element_size())
    return total


#: safetensors dtype names -> bytes per element
SAFETENSORS_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                     "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "U16": 2, "U32": 4, "U64": 8}
FLOAT_NAMES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E8M0"}


def safetensors_bytes(header: dict[str, Any], dtype_size: int) -> int:
    """Bytes a checked safetensors header's tensors take once loaded with floats in ``dtype_size``."""
    total = 0
    for name, info in header.items():
        if name == "__metadata__" or not isinstance(info, dict):
            continue
        count = 1
        for dim in info.get("shape") or []:
            count *= int(dim)
        kind = info.get("dtype")
        total += count * (dtype_size if kind in FLOAT_NAMES else SAFETENSORS_SIZES.get(kind, 4))
    return total


# --- absurd sizes ----------------------------------------------------------------------

#: config key -> largest value any real pipeline uses, with a wide margin
CONFIG_LIMITS = {
    "model_max_length": 1_000_000,
    "max_position_embeddings": 1_000_000,
    "num_train_timesteps": 1_000_000,
    "vocab_size": 10_000_000,
}


def check_config_values(path: Any, data: Any) -> None:
    """Refuse a config whose sizes would make loading or tokenizing allocate without bound."""
    if not isinstance(data, dict):
        return
    for key, limit in CONFIG_LIMITS.items():
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not (-limit <= value <= limit):  # NaN fails too
            raise SourceError(f"{path}: {key} = {value:g} is beyond any real pipeline (at most {limit:,}); refused "
                              "before allocating")


# --- signals ---------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be, so the same code keeps partial results."""


_received: list[int] = []


_pending: list[int] = []
#: Python functions that C++ calls back into (torch's dispatch and function modes: our FLOP counter).
#: An exception raised there can cross a C++ frame that cannot pass it on, and the process aborts
#: ("terminate called after throwing an instance of 'pybind11::error_already_set'").
NATIVE_CALLBACKS = frozenset({"__torch_dispatch__", "__torch_function__"})
#: Finalizers: Python prints an exception raised inside one ("Exception ignored in ... __del__",
#: with a traceback) and drops it, so the interrupt would be both noisy and lost.
FINALIZERS = frozenset({"__del__"})
HOLD_IN = NATIVE_CALLBACKS | FINALIZERS
RETRY_SECONDS = 0.02


def _must_hold(frame: Any) -> bool:
    """Whether raising at ``frame`` would abort the process or be swallowed by a finalizer."""
    depth = 0
    while frame is not None and depth < 1000:
        if frame.f_code.co_name in HOLD_IN:
            return True
        frame, depth = frame.f_back, depth + 1
    return False


def _deliver(signum: int, frame: Any) -> None:
    """Raise for ``signum`` now, or, inside a callback from C++ or a finalizer, a moment later
    (SIGALRM retries)."""
    if _must_hold(frame) and hasattr(signal, "setitimer"):
        if signum not in _pending:
            _pending.append(signum)
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    _pending.clear()
    _received.append(signum)
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _on_sigterm(signum: int, frame: Any) -> None:
    _deliver(signum, frame)


def _on_sigint(signum: int, frame: Any) -> None:
    _deliver(signum, frame)


def _on_retry(signum: int, frame: Any) -> None:
    if _pending:
        _deliver(_pending[-1], frame)


_previous_unraisablehook: Callable[[Any], Any] | None = None


def _on_unraisable(unraisable: Any) -> None:
    """An interrupt we raised where Python cannot propagate it (a weakref callback, a finalizer
    not named ``__del__``) is not lost and not printed: it is delivered again a moment later."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and _received and hasattr(signal, "setitimer"):
        signum = _received.pop()
        if signum not in _pending:
            _pending.append(signum)
        signal.setitimer(signal.ITIMER_REAL, RETRY_SECONDS)
        return
    (_previous_unraisablehook or sys.__unraisablehook__)(unraisable)


def interrupted() -> bool:
    """Whether SIGINT or SIGTERM arrived. A library that swallows the KeyboardInterrupt (a broad
    ``except`` around an import) fails later in some other way; this is how the CLI still knows
    the run was interrupted, not broken."""
    return bool(_received)


def install_signal_handlers() -> None:
    """SIGTERM behaves like Ctrl-C (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _received.clear()
    _pending.clear()
    signal.signal(signal.SIGINT, _on_sigint)  # KeyboardInterrupt: partial results are kept
    signal.signal(signal.SIGTERM, _on_sigterm)
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_retry)
    global _previous_unraisablehook
    if sys.unraisablehook is not _on_unraisable:
        _previous_unraisablehook = sys.unraisablehook
        sys.unraisablehook = _on_unraisable


def interrupt_exit_code() -> int:
    """128 + the signal that stopped the run: 143 after SIGTERM, else 130 (SIGINT)."""
    return 128 + (signal.SIGTERM if signal.SIGTERM in _received else signal.SIGINT)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM for the duration (a few system calls: renaming finished files),
    then deliver them, so an output is either all old or all new."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    mask = {signal.SIGINT, signal.SIGTERM}
    old = signal.pthread_sigmask(signal.SIG_BLOCK, mask)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def other_threads() -> list[threading.Thread]:
    """Python threads still running besides the main one (a hook cut off by its time limit)."""
    return [t for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]


def hard_exit(code: int) -> None:
    """Leave now, flushing our streams but skipping interpreter and C++ teardown.

    A thread still inside a native call (an abandoned plugin hook, a torch worker) makes
    teardown abort the process ("terminate called without an active exception"): an exit code
    of SIGABRT instead of ours. Everything we write is written and renamed before this point."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


# --- warnings --------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])
MAX_CAPTURED = 1000
#: the newest warnings captured since the process started, shown with LDM_INSPECTOR_DEBUG=1
captured: collections.deque[str] = collections.deque(maxlen=MAX_CAPTURED)


def debug() -> bool:
    return os.environ.get(ENV_DEBUG) == "1"


@contextlib.contextmanager
def library_warnings() -> Iterator[None]:
    """Capture the warnings torch, diffusers and transformers raise while we call them.

    They are about the libraries, not about the user's model or our measurement; kept in
    :data:`captured` and printed to stderr only with ``LDM_INSPECTOR_DEBUG=1``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                line = f"{w.category.__name__}: {' '.join(str(w.message).split())} ({os.path.basename(w.filename)}:{w.lineno})"
                captured.append(line)
                if debug():
                    print(f"warning: {line}", file=sys.stderr)


def quiet(fn: F) -> F:
    """Decorator form of :func:`library_warnings`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with library_warnings():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
