"""The plugin author's guide documents every hook with its exact signature (datasette's habit), and every
example in it runs."""
from __future__ import annotations

import inspect
import re
from pathlib import Path

from inspector.plugin import hookspecs

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


def test_readme_model_table_lists_every_corpus_pipeline_class():
    """The README's table of pipeline classes known to work is the corpus the tests run, no more, no less."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    import corpus

    readme = (GUIDE.parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| pipeline class |"):]
    table = table[:table.index("\n\n")]
    listed = set(re.findall(r"`(\w+Pipeline)`", table))
    assert listed == {entry.pipeline_class for entry in corpus.CORPUS.values()}


def examples() -> dict[str, str]:
    """Every ``<!-- file: NAME -->`` code block of the guide: file name -> source."""
    blocks = re.findall(r"^<!-- file: ([\w.]+) -->\n```python\n(.*?)^```$", GUIDE.read_text(encoding="utf-8"),
                        flags=re.M | re.S)
    return dict(blocks)


def test_every_hook_has_a_runnable_example():
    files = examples()
    for name in hookspecs.hook_names():
        assert any(re.search(rf"^def {name}\(", source, flags=re.M) for source in files.values()), \
            f"docs/plugins.md has no example implementing {name}"
    for plugin in (f for f in files if not f.startswith("test_")):
        assert f"test_{plugin}" in files, f"example {plugin} has no test in the guide"


def test_guide_examples_run(tmp_path):
    """Write out every example of the guide, plugin and test, and run the tests with pytest, as a
    plugin author would (the ldm-inspector fixtures come from the installed pytest plugin)."""
    import subprocess
    import sys

    files = examples()
    for name, source in files.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    expected = sum(len(re.findall(r"^def test_", s, flags=re.M)) for n, s in files.items() if n.startswith("test_"))
    assert expected >= 6
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W",
                           "ignore::DeprecationWarning", str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert f"{expected} passed" in proc.stdout


def test_readme_schema_outline_is_the_generated_one():
    from inspector.results.schema import outline

    readme = (GUIDE.parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### JSON output", 1)[1]
    block = section.split("```\n", 2)[1]
    assert block == outline(), "regenerate: python -m inspector.results.schema --outline"
