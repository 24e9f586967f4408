"""Tests of optional parts (the browser, the example plugin, the real CLIP vocabulary) skip on a
developer's machine that lacks them, and fail where they are required: under ``CI=true`` or
``LDM_INSPECTOR_REQUIRE_<NAME>=1`` (``.ci/run`` sets both), so CI never passes by skipping them."""
from __future__ import annotations

import os

import pytest


def required(name: str) -> bool:
    """Whether the optional part ``name`` (BROWSER, EXAMPLE_PLUGIN, CLIP_VOCAB) must be present."""
    return (os.environ.get("CI", "").lower() in ("1", "true", "yes")
            or os.environ.get(f"LDM_INSPECTOR_REQUIRE_{name}") == "1")


def needs(name: str, available: bool, reason: str) -> pytest.MarkDecorator:
    """Skip when ``name`` is missing and not required; where it is required, the test runs (and fails)."""
    return pytest.mark.skipif(not available and not required(name),
                              reason=f"{reason} (required under CI=true or LDM_INSPECTOR_REQUIRE_{name}=1)")


def check_required(name: str, available: bool, how: str) -> None:
    """The body of a test that fails with a clear message where ``name`` is required but missing."""
    if not required(name):
        pytest.skip(f"{name.lower()} is optional here (set CI=true or LDM_INSPECTOR_REQUIRE_{name}=1 to require it)")
    assert available, f"{name.lower()} is required here but missing: {how}"
