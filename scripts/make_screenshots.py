"""Make the README's screenshots from the real programs, from one saved profile run.

    ldm-inspector profile --steps 4 --repeats 3 --json tests/data/tiny-profile.json
    python scripts/make_screenshots.py tests/data/tiny-profile.json

Writes ``docs/tui.svg`` (the TUI at 120x40 on the pipeline overview, saved by Textual itself)
and ``docs/html-report.png`` (the HTML report in headless Chromium, 1280 px wide, scrolled to
the component overview and charts).
"""
from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


async def tui_svg(run_path: Path, target: Path) -> None:
    from inspector.reports import json_report
    from inspector.tui.app import InspectorApp

    app = InspectorApp(run=json_report.load(run_path), autoload=False, entrypoints=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(100):
            if app.screen.query("#pipeline-overview"):
                break
            await pilot.pause(0.1)
        await pilot.pause(0.5)
        app.save_screenshot(filename=target.name, path=str(target.parent))


def html_png(run_path: Path, target: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from inspector.reports import html_report, json_report
    from tests.browser import open_page

    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "report.html"
        html_report.write(json_report.load(run_path), page)

        def scroll(p):
            p.evaluate("window.scrollTo(0, document.querySelector('#overview').offsetTop - 40)")

        report = open_page(page, target, Path(tmp) / "profile", script=scroll, width=1280, height=900)
        if report.errors:
            raise SystemExit(f"the report had errors: {report.errors}")


def main() -> None:
    run_path = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "tests" / "data" / "tiny-profile.json")
    asyncio.run(tui_svg(run_path, ROOT / "docs" / "tui.svg"))
    html_png(run_path, ROOT / "docs" / "html-report.png")
    print("wrote docs/tui.svg and docs/html-report.png")


if __name__ == "__main__":
    main()
