"""Shared fixtures (a plugin host, the tiny pipeline, an in-process CLI runner) and the test tiers.

Every test gets exactly one tier marker, decided here at collection (see ``TIERS``), so a new
test lands in a tier without anyone remembering to mark it. The first rule that applies wins:

1. an explicit tier mark on the test (``@pytest.mark.tiny``, or ``pytest.param(..., marks=...)``);
2. its module, for the modules that are a tier of their own (``MODULE_TIERS``);
3. the fixtures it uses that stand for a tier (``FIXTURE_TIERS``), and what the test's code and
   its fixtures' code refer to, followed into the helper functions of the test suite they call
   (``tier_by_code``): Playwright (browser), a Textual ``run_test`` (tui), ``subprocess`` or
   ``sys.executable`` (subprocess), ``run_profile`` (profile), one of the functions that build a
   pipeline (``BUILDERS``: tiny); where several apply, the first tier of ``TIERS`` wins;
4. otherwise ``unit``.

What the code refers to cannot show what the CLI does when a test runs it in-process, nor a
child process started by the code under test: such tests carry an explicit mark.
"""
from __future__ import annotations

import builtins
import dis
import functools
import importlib.util
import inspect
import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
#: the tiers (described in pyproject.toml's markers), the most demanding first: where several
#: things a test refers to point at different tiers, the first of these wins
TIERS = ("corpus", "browser", "tui", "subprocess", "profile", "tiny", "unit")
#: modules that are a tier of their own, whatever each test does
MODULE_TIERS = {"test_corpus.py": "corpus"}
#: fixtures that stand for a tier (the package's own fixtures are not read: ``ldm_run`` can
#: inspect or profile, and only the test's argument says which)
FIXTURE_TIERS = {"snap_compare": "tui", "ldm_tiny_pipeline": "tiny", "ldm_run": "tiny"}
#: the fast loop, ``python -m pytest -m fast``: the tests of these tiers are marked ``fast`` too, but
#: for the property-based ones (hypothesis): what they cost depends on the examples drawn, a few
#: seconds in one run and minutes in the next. Not ``tiny``: one inspection of a tiny model takes
#: 5 to 15 s on a busy 2-core machine, and the tier about 9 minutes
FAST = ("unit",)
#: what times a pipeline: repeated calls, torch.profiler; slow, and slower on a busy machine
PROFILERS = {"inspector.profiling.run_profile", "inspector.profile", "inspector.python_api.profile"}
#: functions that build a pipeline (or a model of one): a test that calls one is at least tiny
BUILDERS = {
    "inspector.sources.loading.load",
    "inspector.sources.loading.build_from_configs",
    "inspector.inspection.run_inspect",
    "inspector.inspection.predict_memory",
    "inspector.inspect",
    "inspector.python_api.inspect",
    "corpus.build",
    "tests.corpus.build",
}


def _dotted(obj) -> str | None:
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    module, name = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    return f"{module}.{name}" if isinstance(module, str) and isinstance(name, str) else None


@functools.cache
def in_suite(filename: str) -> bool:
    """A file of the test suite: under a ``tests`` folder of this repository."""
    path = Path(filename).resolve()
    return path.is_relative_to(ROOT) and "tests" in path.relative_to(ROOT).parts


def _function(obj) -> types.FunctionType | None:
    obj = getattr(getattr(obj, "hypothesis", None), "inner_test", obj)  # a @given test: the test itself
    obj = inspect.unwrap(obj) if callable(obj) else obj
    return obj if isinstance(obj, types.FunctionType) else None


@functools.cache
def _direct(code: types.CodeType, namespace_of: types.FunctionType) -> tuple[frozenset, frozenset, tuple]:
    """What ``code`` (with its nested functions) names: dotted names of the modules, functions and
    classes it loads or imports, the attributes it reads, and the suite's own functions it names."""
    namespace = namespace_of.__globals__
    names: set[str] = set()
    attrs: set[str] = set()
    follow: list[types.FunctionType] = []

    def found(obj, dotted: str | None = None) -> None:
        dotted = dotted or _dotted(obj)
        if dotted:
            names.add(dotted)
        if isinstance(obj, types.FunctionType) and in_suite(obj.__code__.co_filename):
            follow.append(obj)

    for each in _codes(code):
        module = None  # the module the previous instruction loaded, for `module.attribute`
        importing = ""  # the module of the last import, for `from module import name`
        level = 0
        for ins in dis.get_instructions(each):
            if ins.opname == "LOAD_CONST" and isinstance(ins.argval, int):
                level = ins.argval  # an import's level comes just before it
            elif ins.opname == "IMPORT_NAME":
                importing = ins.argval
                if level:
                    importing = importlib.util.resolve_name("." * level + importing, namespace.get("__package__") or "")
                names.add(importing)
            elif ins.opname == "IMPORT_FROM":
                found(_suite_attribute(importing, ins.argval), f"{importing}.{ins.argval}")
            elif ins.opname == "LOAD_GLOBAL":
                obj = namespace.get(ins.argval, getattr(builtins, ins.argval, None))
                found(obj)
                module = obj.__name__ if isinstance(obj, types.ModuleType) else None
                continue
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
                attrs.add(ins.argval)
                if module is not None:
                    found(_suite_attribute(module, ins.argval), f"{module}.{ins.argval}")
            module = None
    return frozenset(names), frozenset(attrs), tuple(follow)


def _suite_attribute(module: str, name: str):
    """``module.name`` where ``module`` is one of the suite's, imported already; None elsewhere (a
    library's lazy module would import on the look-up)."""
    loaded = sys.modules.get(module)
    filename = getattr(loaded, "__file__", None)
    return loaded.__dict__.get(name) if filename and in_suite(filename) else None


def _codes(code: types.CodeType):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def references(functions) -> tuple[set[str], set[str]]:
    """The dotted names and attributes ``functions`` name, following the suite's own helpers."""
    names: set[str] = set()
    attrs: set[str] = set()
    todo = [f for f in map(_function, functions) if f is not None]
    seen: set[types.FunctionType] = set()
    while todo:
        func = todo.pop()
        if func in seen:
            continue
        seen.add(func)
        more_names, more_attrs, follow = _direct(func.__code__, func)
        names |= more_names
        attrs |= more_attrs
        todo.extend(f for f in map(_function, follow) if f is not None)
    return names, attrs


def tier_by_code(item: pytest.Item) -> str:
    fixtures = set(getattr(item, "fixturenames", ()))
    fixtureinfo = getattr(item, "_fixtureinfo", None)
    functions = [getattr(item, "obj", None)]
    for name in fixtures:
        for fixturedef in fixtureinfo.name2fixturedefs.get(name, ()) if fixtureinfo else ():
            code = getattr(fixturedef.func, "__code__", None)
            if code is not None and in_suite(code.co_filename):  # the suite's own fixtures
                functions.append(fixturedef.func)
    names, attrs = references(functions)
    found = {FIXTURE_TIERS[name] for name in fixtures if name in FIXTURE_TIERS}
    if any(n == "playwright" or n.startswith("playwright.") for n in names):
        found.add("browser")
    if "run_test" in attrs:
        found.add("tui")
    if any(n == "subprocess" or n.startswith("subprocess.") for n in names) or "sys.executable" in names:
        found.add("subprocess")
    if names & PROFILERS:
        found.add("profile")
    if names & BUILDERS:
        found.add("tiny")
    return next((tier for tier in TIERS if tier in found), "unit")


def pytest_configure(config):
    registered = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    missing = [name for name in (*TIERS, "fast") if name not in registered]
    if missing:
        raise pytest.UsageError(f"markers {', '.join(missing)} are not registered in pyproject.toml")


def pytest_collection_modifyitems(config, items):
    for item in items:
        explicit = {m.name for m in item.iter_markers() if m.name in TIERS}
        if len(explicit) > 1:
            raise pytest.UsageError(f"{item.nodeid} is marked with several tiers ({', '.join(sorted(explicit))}): "
                                    "give it one")
        if explicit:
            tier = explicit.pop()
        else:
            tier = MODULE_TIERS.get(item.path.name) or tier_by_code(item)
            item.add_marker(tier)
        item.stash[TIER] = tier
        if tier in FAST and not hasattr(getattr(item, "obj", None), "hypothesis"):
            item.add_marker("fast")


TIER = pytest.StashKey[str]()


@pytest.fixture(scope="session", autouse=True)
def library_loggers_on_the_process_stderr():
    """diffusers and transformers give their root logger a handler on whatever ``sys.stderr`` is
    when they first log. Under ``capsys`` that is the test's capture, closed when the test ends:
    every later message becomes "--- Logging error --- ValueError: I/O operation on closed file"
    in some other test's stderr. Make the handlers now, on the process's own stderr."""
    import logging
    import sys

    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    diffusers_logging.get_logger("diffusers")
    transformers_logging.get_logger("transformers")
    for name in ("diffusers", "transformers"):
        for handler in logging.getLogger(name).handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(sys.__stderr__)


@pytest.fixture(scope="session")
def host():
    from inspector.plugin.host import Host

    return Host.default(entrypoints=False)


@pytest.fixture(scope="session")
def presets(host):
    return host.presets()


@pytest.fixture(scope="session")
def tiny_saved(tmp_path_factory, presets) -> Path:
    """The tiny pipeline with random weights, written by ``save_pretrained`` (safetensors)."""
    from inspector.sources.loading import SourceSpec, load

    folder = tmp_path_factory.mktemp("tiny") / "tiny-sd"
    load(SourceSpec(model="tiny-sd"), presets).pipe.save_pretrained(folder, safe_serialization=True)
    return folder


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys):
    """Run ``ldm-inspector ARGS`` in-process; returns exit code, stdout and stderr."""
    from inspector.cli.commands import main

    def run(*args: str) -> CliResult:
        try:
            main(list(args))
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def make_hf_cache(cache: Path, folder: Path, repo_id: str, revision: str = "0" * 40) -> Path:
    """Lay ``folder`` out as ``repo_id`` in a Hugging Face hub cache at ``cache`` (snapshot + refs/main)."""
    import shutil

    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    shutil.copytree(folder, repo_dir / "snapshots" / revision)
    (repo_dir / "refs").mkdir()
    (repo_dir / "refs" / "main").write_text(revision)
    return cache
