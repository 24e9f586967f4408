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


#: what must not overlap inside a plotly chart: the legend, the axis titles, the tick labels
OVERLAP_SCRIPT = r"""() => {
  const box = el => { const r = el.getBoundingClientRect(); return r.width && r.height ? r : null; };
  const hit = (a, b) => a && b && a.left < b.right - 1 && b.left < a.right - 1 &&
    a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const problems = [];
  document.querySelectorAll('[data-chart]').forEach(fig => {
    const id = fig.getAttribute('data-chart');
    const parts = {
      legend: [...fig.querySelectorAll('g.legend')].map(box),
      xtitle: [...fig.querySelectorAll('.g-xtitle text, text.xtitle')].map(box),
      ytitle: [...fig.querySelectorAll('.g-ytitle text, text.ytitle, .g-y2title text')].map(box),
      xticks: [...fig.querySelectorAll('g.xtick text')].map(box),
      yticks: [...fig.querySelectorAll('g.ytick text, g.y2tick text')].map(box),
    };
    const pairs = [['legend', 'xtitle'], ['legend', 'ytitle'], ['legend', 'xticks'], ['legend', 'yticks'],
                   ['xtitle', 'xticks'], ['ytitle', 'yticks'], ['xtitle', 'ytitle']];
    for (const [a, b] of pairs) for (const ra of parts[a]) for (const rb of parts[b])
      if (hit(ra, rb)) problems.push(id + ': ' + a + ' overlaps ' + b);
    // rotated labels have overlapping boxes by design; straight ones must not touch
    const straight = [...fig.querySelectorAll('g.xtick text')]
      .filter(t => !/rotate\(-?[1-9]/.test(t.getAttribute('transform') || ''));
    const xs = straight.map(box).filter(Boolean).sort((p, q) => p.left - q.left);
    for (let i = 1; i < xs.length; i++) if (hit(xs[i - 1], xs[i])) problems.push(id + ': x tick labels overlap');
  });
  return problems;
}"""


def open_page(html: Path, screenshot: Path, user_data_dir: Path, script=None, width: int = 1400,
              height: int = 1000, full_page: bool = False) -> PageReport:
    from playwright.sync_api import sync_playwright

    report = PageReport()
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=chromium_path(), headless=True, args=ARGS,
            viewport={"width": width, "height": height}, service_workers="block")
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
            page.screenshot(path=str(screenshot), full_page=full_page)
        finally:
            browser.close()
    return report
