"""The Ray executor for sweeps: the same points, each a Ray task on an existing cluster.

Each task runs the point's process on whatever node Ray places it, in a temporary folder
there, and returns the point's files (``run.json``, ``report.html``) and stderr; the sweep
writes them into its own folder here, so nodes need no shared file system. A task asks for
one GPU when the point will run on CUDA and one CPU otherwise. Tasks are never retried by
Ray: a point that fails (or whose worker dies) is recorded as failed, and ``--retry-failed``
runs it again, as with the local executor.

Every node needs the same ldm-inspector (and torch, diffusers, transformers) installed in
the Python that Ray starts its workers with. Ray is an optional extra:
``pip install 'ldm-inspector[ray]'``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from inspector.errors import OptionError
from inspector.sweep.folder import SweepFolder
from inspector.sweep.grid import Point
from inspector.sweep.points import Outcome, SweepSettings, point_command, run_process


def _point_on_node(point: Point, timeout: float | None, html: bool) -> Outcome:
    """Runs inside a Ray worker: the point's process in a temporary folder, files read back."""
    with tempfile.TemporaryDirectory(prefix="ldm-inspector-point-") as tmp:
        outcome = run_process(point_command(point, tmp, html=html), tmp, timeout)
        for name in ("run.json", "report.html"):
            path = Path(tmp) / name
            if path.is_file():
                outcome.files[name] = path.read_bytes()
    return outcome


def wants_gpu(point: Point) -> bool:
    """A profile point that will run on CUDA (``--device cuda``, or ``auto`` on a GPU node)."""
    if point.argv[0] != "profile":
        return False
    argv = point.argv
    device = "auto"
    for i, arg in enumerate(argv):
        if arg == "--device" and i + 1 < len(argv):
            device = argv[i + 1]
        elif arg.startswith("--device="):
            device = arg.split("=", 1)[1]
    return device == "cuda"


def connect(address: str | None, cpus: int) -> Any:
    try:
        import ray
    except ImportError:
        raise OptionError("--executor ray needs Ray: pip install 'ldm-inspector[ray]'") from None
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                  "configure_logging": False}
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:  # a local instance, started here and stopped at the end
                ray.init(num_cpus=cpus, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise OptionError(f"--executor ray: cannot reach a Ray cluster at {address or 'a new local instance'}: "
                              f"{' '.join(str(exc).split())[:200]}") from None
    return ray


def run_points_ray(points: list[Point], folder: SweepFolder, settings: SweepSettings, jobs: int,
                   record: Callable[[Point, Outcome, str], None]) -> None:
    """Submit at most ``jobs`` points at a time; record each as it comes back."""
    ray = connect(settings.address, cpus=max(jobs, 1))
    started_here = not settings.address
    remote = ray.remote(max_retries=0)(_point_on_node)
    queue = list(points)
    pending: dict[Any, Point] = {}
    try:
        while queue or pending:
            while queue and len(pending) < jobs:
                point = queue.pop(0)
                options = {"num_cpus": 1, "num_gpus": 1 if wants_gpu(point) else 0}
                ref = remote.options(**options).remote(point, settings.timeout, settings.point_reports)
                pending[ref] = point
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                point = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - the worker died, the node went away, the task was cancelled
                    outcome = Outcome(None, "", 0.0, error=f"ray task failed: {type(exc).__name__}: "
                                                         f"{' '.join(str(exc).split())[:300]}")
                record(point, outcome, "ray")
    except BaseException:
        for ref in pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - best effort while stopping
                pass
        raise
    finally:
        if started_here:
            ray.shutdown()
            os.environ.pop("RAY_ADDRESS", None)
