"""Running a sweep: which points to run, the manifest, and the local executor (a pool of point
processes); the Ray executor lives in :mod:`inspector.sweep.ray`."""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

from inspector.errors import InspectorError, OptionError
from inspector.files import atomic_path, write_text
from inspector.reports import json_report
from inspector.sources.precheck import check_source
from inspector.sweep.folder import PointStatus, SweepFolder, check_own_dir, machine, versions
from inspector.sweep.grid import MANIFEST_VERSION, Grid, Point, check_points, expand, normalize
from inspector.sweep.points import Outcome, SweepSettings, failure_reason, kill_all_points, point_command, run_process
from inspector.sweep.ray import run_points_ray
from inspector.sweep.tables import write_table


def default_jobs(mode: str, jobs: int | None) -> int:
    """Static points run in parallel (one per CPU, at most 8); timed points one at a time, since
    two timed points on one device measure each other."""
    if jobs is not None:
        return jobs
    if mode == "profile":
        return 1
    return max(1, min(os.cpu_count() or 1, 8))


def pending_points(folder: SweepFolder, points: list[Point],
                   retry_failed: bool) -> tuple[list[Point], dict[str, PointStatus]]:
    """Which points to run now, and the statuses of those kept from an earlier run."""
    current = versions()
    todo: list[Point] = []
    kept: dict[str, PointStatus] = {}
    for point in points:
        status = folder.read_status(point.key)
        done_before = (status is not None and status.versions == current and status.params == point.params
                       and (status.status == "failed" or folder.run_path(point.key).is_file()))
        if done_before and status is not None and not (retry_failed and status.status == "failed"):
            status.skipped = True
            kept[point.key] = status
        else:
            todo.append(point)
    return todo, kept


def manifest(grid: Grid, settings: SweepSettings, jobs: int, points: list[Point],
             previous: dict[str, Any] | None) -> dict[str, Any]:
    history = list((previous or {}).get("history") or [])[-99:]
    history.append({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv[1:],
                    "executor": settings.executor, "jobs": jobs})
    return {
        "manifest_version": MANIFEST_VERSION,
        "grid": grid.to_dict(),
        "points": [{"key": p.key, "params": p.params} for p in points],
        "versions": versions(),
        "machine": machine(),
        "execution": {
            "executor": settings.executor, "address": settings.address, "jobs": jobs,
            "timeout_s": settings.timeout,
            "how": (f"{jobs} point(s) at a time"
                    + (" on a Ray cluster" if settings.executor == "ray" else " on this machine")
                    + ("; timed points one at a time unless --jobs says otherwise" if grid.mode == "profile" else "")),
        },
        "history": history,
    }


ProgressFn = Callable[[PointStatus], None]


def run_sweep(grid: Grid, settings: SweepSettings, *, check_argv: Callable[[list[str]], None],
              on_start: Callable[[int, int], None] | None = None,
              on_point: ProgressFn | None = None) -> tuple[list[Point], dict[str, PointStatus]]:
    """Run every point not already measured; return all points and every point's status.
    ``check_argv`` parses one point's command line (``[mode, *options]``) as the CLI would, raising
    :class:`OptionError` (see :func:`inspector.sweep.grid.check_points`)."""
    grid = normalize(grid)
    points = expand(grid)

    for model in grid.model:  # every point of an unknown model would fail: say so now, with suggestions
        check_source(model, allow_download="--allow-download" in grid.args)
    check_points(points, check_argv)
    folder = SweepFolder(settings.out)
    folder.prepare()
    jobs = default_jobs(grid.mode, settings.jobs)
    for point in points:  # a point folder that leads out of the sweep folder: refused before any work
        if os.path.lexists(folder.point_dir(point.key)):
            try:
                check_own_dir(folder.point_dir(point.key))
            except InspectorError as exc:
                raise OptionError(str(exc)) from None
    todo, statuses = pending_points(folder, points, settings.retry_failed)
    folder.write_manifest(manifest(grid, settings, jobs, points, folder.read_manifest()))
    if on_start is not None:
        on_start(len(points), len(todo))
    if todo:
        if settings.executor == "ray":
            runner = run_points_ray
        elif settings.executor == "local":
            runner = run_points_local
        else:
            raise OptionError(f"--executor {settings.executor!r}: choose local or ray")

        def record(point: Point, outcome: Outcome, executor: str) -> None:
            status = finish_point(folder, point, outcome, settings.timeout, executor)
            statuses[point.key] = status
            if on_point is not None:
                on_point(status)

        try:
            runner(todo, folder, settings, jobs, record)
        finally:  # interrupted or not, the table holds every point finished so far
            write_table(folder, points, statuses)
    else:
        write_table(folder, points, statuses)
    return points, statuses


def finish_point(folder: SweepFolder, point: Point, outcome: Outcome, timeout: float | None,
                 executor: str) -> PointStatus:
    """Write what one point gave (its files, when they came back from elsewhere) and its status."""
    pdir = folder.own_point_dir(point.key)
    for name, content in outcome.files.items():
        if name in ("run.json", "report.html"):  # names we chose; anything else is not ours to write
            with _atomic_bytes(pdir / name) as fh:
                fh.write(content)
    write_text(pdir / "stderr.txt", outcome.stderr)
    reason = failure_reason(outcome, timeout)
    run_path = folder.run_path(point.key)
    if reason is None and not run_path.is_file():
        reason = "the point exited 0 but wrote no run.json"
    if reason is None:
        reason = _check_run(run_path)
    status = PointStatus(key=point.key, params=point.params, status="failed" if reason else "ok", reason=reason,
                         exit_code=outcome.exit_code, seconds=round(outcome.seconds, 3), versions=versions(),
                         argv=point.argv, executor=executor, finished=time.time())
    folder.write_status(status)
    return status


@contextlib.contextmanager
def _atomic_bytes(target: Path) -> Iterator[BinaryIO]:
    with atomic_path(target) as tmp:
        with tmp.open("wb") as fh:
            yield fh


def _check_run(path: Path) -> str | None:
    try:
        json_report.load(path)
    except InspectorError as exc:
        return f"its run.json does not load: {exc}"
    return None


def run_points_local(points: list[Point], folder: SweepFolder, settings: SweepSettings, jobs: int,
                     record: Callable[[Point, Outcome, str], None]) -> None:
    """Each point in its own process on this machine, ``jobs`` at a time."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    def one(point: Point) -> tuple[Point, Outcome]:
        pdir = folder.own_point_dir(point.key)
        for stale in ("run.json", "report.html"):  # a rerun must not keep the last attempt's files
            with contextlib.suppress(FileNotFoundError):
                (pdir / stale).unlink()
        command = point_command(point, pdir.resolve(), html=settings.point_reports)
        return point, run_process(command, pdir, settings.timeout)

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="sweep-point")
    pending: set[Future[tuple[Point, Outcome]]] = set()
    queue = list(points)
    try:
        while queue or pending:
            while queue and len(pending) < jobs:
                pending.add(pool.submit(one, queue.pop(0)))
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                point, outcome = future.result()
                record(point, outcome, "local")
    except BaseException:
        queue.clear()
        kill_all_points()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
