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
