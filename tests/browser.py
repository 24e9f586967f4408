"""Open an HTML file in headless Chromium (Debian's package, driven by Playwright) and report
what happened: console messages, page errors, every request the page made, and a screenshot."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic", "--disable-default-apps", "--mute-audio"]


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        if os.path.exists(candidate):
            return candidate
    return shutil.which("chromium")


@dataclass
class PageReport:
    console: list[tuple[str, str]] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    charts: int = 0
    charts_rendered: int = 0
    chart_svgs: int = 0
    layer_rows: int = 0
    title: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.page_errors


def open_page(html: Path, screenshot: Path, user_data_dir: Path, script=None) -> PageReport:
    from playwright.sync_api import sync_playwright

    report = PageReport()
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=chromium_path(), headless=True, args=ARGS,
            viewport={"width": 1400, "height": 1000}, service_workers="block")
        try:
            page = browser.new_page()
            page.on("console", lambda msg: report.console.append((msg.type, msg.text)))
            page.on("pageerror", lambda exc: report.page_errors.append(str(exc)))
            page.on("request", lambda req: report.requests.append(req.url))
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.wait_for_function(
                "document.querySelectorAll('[data-chart]').length === "
                "document.querySelectorAll('[data-chart][data-rendered=\"true\"]').length", timeout=20000)
            report.title = page.title()
            report.charts = page.locator("[data-chart]").count()
            report.charts_rendered = page.locator("[data-chart][data-rendered='true']").count()
            report.chart_svgs = page.locator("[data-chart] svg.main-svg").count()
            report.layer_rows = page.locator("#layer-table tbody tr").count()
            if script is not None:
                report.extra = script(page) or {}
            page.screenshot(path=str(screenshot), full_page=False)
        finally:
            browser.close()
    return report
