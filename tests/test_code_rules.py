"""The code rules run with the tests (so `.ci/run`, which runs the README's test command, runs them):
ruff on the repository, and the import contracts and the type check on the package as it installs.

plugins/ and reports/ land inside inspector/ only when the package is installed (setuptools'
``package-dir``), so the contracts and mypy look at a copy installed into a scratch folder: the
layout users get, not the repository's."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .optional import needs

ROOT = Path(__file__).resolve().parents[1]
TOOLS = all(shutil.which(tool) for tool in ("ruff", "lint-imports", "mypy"))
pytestmark = needs("CODE_RULES", TOOLS, "ruff, import-linter and mypy come with the test extra")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The package as it installs, in a scratch folder of its own."""
    site = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    subprocess.run([sys.executable, "-m", "pip", "install", str(ROOT), "--no-deps", "--no-build-isolation",
                    "--quiet", "--target", str(site)], check=True, timeout=600, cwd=build,
                   env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    shutil.rmtree(ROOT / "build", ignore_errors=True)  # setuptools' build folder, left in the repository
    assert (site / "inspector" / "plugins" / "unet.py").is_file() and (site / "inspector" / "reports").is_dir()
    return site


def _run(command: list[str], cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"PYTHONPATH": str(site)} if site else {})}
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def test_ruff_finds_nothing():
    result = _run(["ruff", "check", "--no-cache", "."], ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_import_contracts_are_kept(installed):
    result = _run(["lint-imports", "--no-cache", str(ROOT / "pyproject.toml")], installed, installed)
    assert result.returncode == 0 and "0 broken" in result.stdout, result.stdout[-4000:] + result.stderr[-2000:]


def test_import_contracts_can_fail(installed, tmp_path):
    """A core module that imports the CLI breaks the contracts (they check something)."""
    copy = tmp_path / "site"
    shutil.copytree(installed, copy)
    with open(copy / "inspector" / "results" / "units.py", "a", encoding="utf-8") as f:
        f.write("\nimport inspector.cli.terminal  # noqa\n")
    result = _run(["lint-imports", "--no-cache", str(ROOT / "pyproject.toml")], copy, copy)
    assert result.returncode != 0 and "BROKEN" in result.stdout


def test_the_package_type_checks(installed):
    result = _run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--no-incremental",
                   "-p", "inspector"], installed, installed)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def _internal_imports(path: Path, module: str) -> set[str]:
    """Every module of ours that ``path`` imports, at any depth (inside functions too), outside
    ``if TYPE_CHECKING:`` blocks."""
    import ast

    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - child.level + 1] + ([base] if base else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in child.names)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def test_no_import_cycle_among_our_modules_counting_imports_inside_functions():
    modules: dict[str, Path] = {}
    for folder, prefix in (("inspector", "inspector"), ("plugins", "inspector.plugins"),
                           ("reports", "inspector.reports")):
        for path in (ROOT / folder).rglob("*.py"):
            parts = [prefix, *path.relative_to(ROOT / folder).with_suffix("").parts]
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {name: {m for m in _internal_imports(path, name) if m in modules and m != name}
             for name, path in modules.items()}
    # Tarjan's strongly connected components: any with two or more modules is a cycle
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            connect(name)
    assert len(modules) > 80 and cycles == []
