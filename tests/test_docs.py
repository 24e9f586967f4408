"""The plugin author's guide documents every hook with its exact signature (datasette's habit)."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

from inspector import hookspecs

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"


def documented() -> dict[str, list[str]]:
    headings = re.findall(r"^### (\w+)\(([^)]*)\)\s*$", GUIDE.read_text(encoding="utf-8"), flags=re.M)
    return {name: [a.strip() for a in args.split(",") if a.strip()] for name, args in headings}


def test_every_hook_is_documented_with_its_signature():
    docs = documented()
    for name in hookspecs.hook_names():
        assert name in docs, f"hook {name} is missing from docs/plugins.md"
        spec = list(inspect.signature(getattr(hookspecs, name)).parameters)
        assert docs[name] == spec, f"docs/plugins.md documents {name}({', '.join(docs[name])}), spec has {spec}"
    assert set(docs) == set(hookspecs.hook_names()), "docs/plugins.md documents hooks that do not exist"


def test_readme_links_the_guide():
    readme = (GUIDE.parent.parent / "README.md").read_text(encoding="utf-8")
    assert "docs/plugins.md" in readme
