"""Shared fixtures: a plugin host, the tiny pipeline, and an in-process CLI runner."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
