"""Signals: SIGTERM takes the path Ctrl-C takes (partial results kept), delivered where raising is safe;
the exit code says which signal it was (130 for SIGINT, 143 for SIGTERM)."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator

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
