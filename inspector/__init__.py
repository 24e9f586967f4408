"""ldm-inspector: see what every component of a latent diffusion pipeline does.

From Python or a notebook, on the pipeline already in hand (left exactly as it was)::

    import inspector

    run = inspector.inspect(pipe)                        # parameters, shapes, FLOPs, memory
    run = inspector.profile(pipe, steps=2, height=64, width=64)
    inspector.save_run(run, "run.json")                  # .json, .html, or a folder of CSV tables

Plugin authors import :data:`hookimpl` from here::

    from inspector import hookimpl

    @hookimpl
    def augment_component(context, component, result):
        result.details["my_metric"] = ...
"""
import os as _os
import sys as _sys

if _sys.argv[:1] == ["-m"] or _os.path.basename(_sys.argv[0] if _sys.argv else "") == "ldm-inspector":
    # Started as the command line (``python -m inspector``: Python put the current folder first on
    # sys.path; an empty entry in PYTHONPATH does the same for the console script), so a module lying
    # there (``signal.py``, ``torch.py`` beside a model_index.json) would shadow any library we import.
    # Nothing of ours is found that way once this package is found; drop it before the first import
    # below. Only os and sys are imported before this point: both are loaded before Python reads
    # sys.path, so no file can stand in for them.
    _cwd: "str | None"
    try:
        _cwd = _os.getcwd()
    except OSError:  # the folder was removed under us: only the relative entries can name it
        _cwd = None
    _sys.path[:] = [p for p in _sys.path
                    if p not in ("", ".") and (_cwd is None or _os.path.abspath(p) != _cwd)]

if _sys.argv[:1] == ["-m"] or _os.path.basename(_sys.argv[0] if _sys.argv else "") == "ldm-inspector":
    # Started as the command line: until the CLI installs its own handlers (which keep partial
    # results), Ctrl-C, SIGTERM or SIGHUP while the libraries import has nothing to keep. Leave at once
    # with the documented code instead of a KeyboardInterrupt traceback from inside an import.
    import signal as _signal

    def _leave(signum: int, frame: object) -> None:
        _os.write(2, b"interrupted\n")
        _os._exit(128 + signum)

    _signal.signal(_signal.SIGINT, _leave)
    _signal.signal(_signal.SIGTERM, _leave)
    if hasattr(_signal, "SIGHUP"):
        _signal.signal(_signal.SIGHUP, _leave)

from inspector.plugin.hookspecs import API_VERSION, hookimpl
from inspector.python_api import compare, inspect, load_run, profile, register_notebook_display, save_run
from inspector.version import __version__

__all__ = ["API_VERSION", "__version__", "compare", "hookimpl", "inspect", "load_run", "profile", "save_run"]

register_notebook_display()  # in IPython or Jupyter, runs display as a table; elsewhere nothing
