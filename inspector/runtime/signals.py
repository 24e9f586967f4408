"""Signals: SIGTERM and SIGHUP take the path Ctrl-C takes (partial results kept), delivered where
raising is safe; the exit code says which signal it was (130 for SIGINT, 143 for SIGTERM, 129 for
SIGHUP).

Where raising is safe: Python runs a signal handler between bytecodes, wherever the main thread
is. Inside a callback from C++ (torch's dispatch and function modes) or a finalizer the handler
holds the interrupt instead of raising. Our own modes (``inspector.measure``) call
:func:`checkpoint` before each operator they run, a point where an exception takes the same path
as an operator's own error, so a held interrupt is raised there: at the latest when the operator
running at the time of the signal returns. One operator is one native call and cannot be cut short
(a VAE attention over 262,144 tokens on a CPU runs for minutes); everything after it can.
A thread that is not the main one (the TUI's worker) is interrupted the same way through
:func:`interrupt_thread`."""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import Any, Callable, Iterator

# --- signals ---------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM (or SIGHUP), raised where Ctrl-C would be, so the same code keeps partial results."""


#: the signals that interrupt a run (partial results kept); the exit code is 128 + the signal
INTERRUPTS = tuple(s for s in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None)


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
    _raise(signum)


def _raise(signum: int) -> None:
    _pending.clear()
    _received.append(signum)
    raise KeyboardInterrupt() if signum == signal.SIGINT else Terminated()


def _on_sigterm(signum: int, frame: Any) -> None:
    _deliver(signum, frame)


def _on_sigint(signum: int, frame: Any) -> None:
    _deliver(signum, frame)


_on_sighup = _on_sigterm

#: thread id -> the exception to raise in that thread at its next checkpoint (the TUI's cancel)
_thread_requests: dict[int, type[BaseException]] = {}
#: threads asked to stop since they last called :func:`forget_thread` (a cancel is a real interrupt)
_threads_asked: set[int] = set()


def checkpoint() -> None:
    """Raise a held interrupt now. Our dispatch and function modes call this before each operator:
    the exception leaves through the same path as an operator's own error, which torch passes on
    to the caller. Costs one truth test when nothing is held."""
    if _pending and threading.current_thread() is threading.main_thread():
        _raise(_pending[-1])
    if _thread_requests:
        exc_type = _thread_requests.pop(threading.get_ident(), None)
        if exc_type is not None:
            raise exc_type()


def interrupt_thread(ident: int, exc_type: type[BaseException] = KeyboardInterrupt) -> None:
    """Ask thread ``ident`` to raise ``exc_type`` at its next checkpoint (between operators run
    under our modes); its own cooperative checks (a progress callback) see it as well."""
    _threads_asked.add(ident)
    _thread_requests[ident] = exc_type


def forget_thread(ident: int) -> None:
    """The thread's job is over: a request it did not reach is dropped."""
    _thread_requests.pop(ident, None)
    _threads_asked.discard(ident)


def real_interrupt() -> bool:
    """Whether a KeyboardInterrupt seen now is a real one: a signal reached our handler, or this
    thread was asked to stop. A plugin raising KeyboardInterrupt itself is neither."""
    return bool(_received or _pending) or threading.get_ident() in _threads_asked


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
    """Whether SIGINT, SIGTERM or SIGHUP arrived. A library that swallows the KeyboardInterrupt (a broad
    ``except`` around an import) fails later in some other way; this is how the CLI still knows
    the run was interrupted, not broken."""
    return bool(_received)


def install_signal_handlers() -> None:
    """SIGTERM and SIGHUP behave like Ctrl-C (main thread only; a no-op elsewhere)."""
    if threading.current_thread() is not threading.main_thread():
        return
    _received.clear()
    _pending.clear()
    signal.signal(signal.SIGINT, _on_sigint)  # KeyboardInterrupt: partial results are kept
    signal.signal(signal.SIGTERM, _on_sigterm)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, _on_sighup)  # the terminal closed: keep what was measured too
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, _on_retry)
    global _previous_unraisablehook
    if sys.unraisablehook is not _on_unraisable:
        _previous_unraisablehook = sys.unraisablehook
        sys.unraisablehook = _on_unraisable


def interrupt_exit_code() -> int:
    """128 + the last signal that interrupted the run: 143 for SIGTERM, 129 for SIGHUP, 130 for
    SIGINT (and for an interrupt no signal caused: the TUI's cancel)."""
    return 128 + (_received[-1] if _received else signal.SIGINT)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT, SIGTERM and SIGHUP for the duration (a few system calls: renaming finished files),
    then deliver them, so an output is either all old or all new."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    mask = set(INTERRUPTS)
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
