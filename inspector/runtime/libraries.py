"""Library noise: warnings torch, diffusers and transformers raise about themselves while we call them
are captured at the call, so stderr carries our one line only (``LDM_INSPECTOR_DEBUG=1`` prints them).

No torch at module level: the CLI imports this before it knows whether it will need torch."""
from __future__ import annotations

import collections
import contextlib
import functools
import os
import sys
import warnings
from typing import Any, Callable, Iterator, TypeVar

ENV_DEBUG = "LDM_INSPECTOR_DEBUG"


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
                line = (f"{w.category.__name__}: {' '.join(str(w.message).split())} "
                        f"({os.path.basename(w.filename)}:{w.lineno})")
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
