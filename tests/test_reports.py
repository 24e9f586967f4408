"""Reports: self-contained HTML (checked in Chromium), tidy CSV, JSON Schema, compare, atomic writes."""
from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

from inspector import hookimpl
from inspector.plugin.context import ProfileOptions
from inspector.plugin.host import Host
from inspector.profiling import run_profile
from inspector.reports import csv_report, html_report, json_report
from inspector.reports.compare import compare
from inspector.results.schema import build_schema
from inspector.sources.loading import SourceSpec

from .browser import chromium_path, open_page
from .optional import check_required, needs

HOSTILE_PROMPT = "</script><script>window.__pwned=1</script><img src=x onerror=\"window.__pwned=2\"> & \"quotes\""
FORMULA = "=HYPERLINK(\"http://evil.invalid\",\"click\")"
PLUGIN_NAME = "<b onmouseover=\"window.__pwned=3\">evil</b>"

needs_browser = needs("BROWSER", chromium_path() is not None,
                      "Chromium is not installed (apt-get install chromium; .ci/run installs it)")


def test_browser_is_installed_where_required():
    check_required("BROWSER", chromium_path() is not None, "apt-get install chromium (see README)")


class Hostile:
    """A plugin whose strings try every trick: markup, script end tags, spreadsheet formulas."""

    @hookimpl
    def augment_component(self, component, result):
        from inspector.results.records import View

        if component.name == "unet":
            result.views.append(View(title="<i>hostile</i> view", columns=["label", "value"],
                                     rows=[[FORMULA, 1.5], ["+SUM(A1:A9)", -2], ["@cmd", 3], ["-1+2", 4],
                                           ["\tTAB", 5], ["</script><script>window.__pwned=4</script>", 6]]))
            result.metrics["hostile_metric"] = 0.25
        if component.name == "vae":
            raise RuntimeError("<img src=x onerror=\"window.__pwned=5\"> =1+1")


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    host = Host.default(entrypoints=False)
    host.register(Hostile(), name=PLUGIN_NAME)
    image = tmp_path_factory.mktemp("img") / "run.png"
    return run_profile(host, SourceSpec(model="tiny-sd"),
                       ProfileOptions(steps=3, warmup=0, repeats=2, e2e_repeats=1, prompt=HOSTILE_PROMPT,
                                      image_out=str(image)))


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if tag == "script":
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)


def test_html_shows_hostile_strings_as_text(hostile_run, tmp_path):
    path = tmp_path / "report.html"
    html_report.write(hostile_run, path)
    parsed = Collector()
    parsed.feed(path.read_text(encoding="utf-8"))
    # exactly our three script blocks: data, plotly, report.js; nothing injected
    assert [attrs.get("type") for tag, attrs in parsed.tags if tag == "script"] == ["application/json", None, None]
    assert not any(tag in ("img", "b", "i") and attrs for tag, attrs in parsed.tags if tag != "img" or
                   attrs.get("src", "").startswith("x"))
    assert not any(tag == "img" and attrs.get("src") == "x" for tag, attrs in parsed.tags)
    assert not any("onerror" in attrs or "onmouseover" in attrs for _, attrs in parsed.tags)
    text = "".join(parsed.text)
    assert HOSTILE_PROMPT in text and PLUGIN_NAME in text and "<i>hostile</i> view" in text
    blob = json.loads(parsed.scripts[0])  # the embedded data parses, and held the strings escaped
    assert "</script" not in parsed.scripts[0]
    assert any(c["name"] == "unet" for c in blob["components"])
    # every image is inline: the generated one as a data URI
    assert all(attrs["src"].startswith("data:image/png;base64,") for tag, attrs in parsed.tags if tag == "img")


def test_csv_is_tidy_numeric_and_neutralized(hostile_run, tmp_path):
    written = {p.name for p in csv_report.write(hostile_run, tmp_path / "csv")}
    assert {"components.csv", "layers.csv", "steps.csv", "measurements.csv", "plugins.csv", "errors.csv"} <= written
    components = pd.read_csv(tmp_path / "csv" / "components.csv")
    assert components["parameters_total"].dtype.kind in "if" and components["time_ms_median"].dtype.kind == "f"
    assert {"time_ms_median", "memory_bytes_peak", "metric_hostile_metric"} <= set(components.columns)
    steps = pd.read_csv(tmp_path / "csv" / "steps.csv")
    assert list(steps["step"]) == list(range(len(steps))) and steps["denoiser_ms"].dtype.kind == "f"
    layers = pd.read_csv(tmp_path / "csv" / "layers.csv")
    assert layers["flops"].dtype.kind in "if"
    assert layers.loc[layers["layer"] == "conv_in", "input_shapes"].iloc[0] == "2x4x16x16"
    hostile = pd.read_csv(tmp_path / "csv" / "view_unet_i_hostile_i_view.csv", keep_default_na=False)
    assert list(hostile["label"]) == ["'" + FORMULA, "'+SUM(A1:A9)", "'@cmd", "'-1+2", "'\tTAB",
                                      "</script><script>window.__pwned=4</script>"]
    # numbers stay numbers
    assert hostile["value"].dtype.kind in "if" and list(hostile["value"]) == [1.5, -2, 3, 4, 5, 6]
    errors = pd.read_csv(tmp_path / "csv" / "errors.csv")
    assert errors["plugin"].iloc[0] == PLUGIN_NAME
    plugins = pd.read_csv(tmp_path / "csv" / "plugins.csv", keep_default_na=False)
    assert PLUGIN_NAME in set(plugins["plugin"])
    raw = (tmp_path / "csv" / "components.csv").read_text()
    assert "\n=" not in raw and ",=" not in raw


def test_report_from_saved_json_gives_byte_identical_csv(hostile_run, tmp_path, cli):
    live = tmp_path / "live"
    csv_report.write(hostile_run, live)
    saved = tmp_path / "run.json"
    json_report.write(hostile_run, saved)
    result = cli("report", str(saved), "--csv", str(tmp_path / "again"), "--html", str(tmp_path / "again.html"))
    assert result.code == 0, result.err
    for path in live.iterdir():
        assert (tmp_path / "again" / path.name).read_bytes() == path.read_bytes(), path.name
    assert sorted(p.name for p in (tmp_path / "again").iterdir()) == sorted(p.name for p in live.iterdir())


def test_json_schema_is_committed_and_validates_runs(hostile_run, host):
    import jsonschema

    schema = build_schema()
    schema_file = Path(__file__).resolve().parents[1] / "reports" / "schema" / "run.schema.json"
    committed = json.loads(schema_file.read_text(encoding="utf-8"))
    assert committed == schema, "regenerate: python -m inspector.results.schema > reports/schema/run.schema.json"
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(hostile_run.to_dict(), schema)
    from inspector.inspection import run_inspect
    from inspector.plugin.context import InspectOptions

    jsonschema.validate(run_inspect(host, SourceSpec(model="sd15"), InspectOptions(steps=2)).to_dict(), schema)
    broken = hostile_run.to_dict()
    broken["components"][0]["parameters"]["total"] = "many"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


@pytest.mark.profile  # the CLI, run in-process, profiles
def test_compare_float32_and_bfloat16(tmp_path, cli):
    for name, dtype in (("f32", "float32"), ("bf16", "bfloat16")):
        result = cli("profile", "--dtype", dtype, "--steps", "2", "--repeats", "1", "--warmup", "0",
                     "--e2e-repeats", "1", "--no-end-to-end", "--json", str(tmp_path / f"{name}.json"))
        assert result.code == 0, result.err
    a, b = json_report.load(tmp_path / "f32.json"), json_report.load(tmp_path / "bf16.json")
    comparison = compare(a, b)
    assert comparison.comparable and "dtype: float32 vs bfloat16" in comparison.differences
    rows = {r["component"]: r for r in comparison.components}
    for name in ("unet", "vae", "text_encoder"):
        assert rows[name]["parameters_a"] == rows[name]["parameters_b"] and rows[name]["parameters_ratio"] == 1.0
        assert rows[name]["bytes_b"] < rows[name]["bytes_a"]
    assert rows["unet"]["bytes_ratio"] == pytest.approx(0.5)
    assert comparison.blocks and all(b["parameters_a"] == b["parameters_b"] for b in comparison.blocks)
    result = cli("compare", str(tmp_path / "f32.json"), str(tmp_path / "bf16.json"), "--html",
                 str(tmp_path / "compare.html"))
    assert result.code == 0 and "NOT COMPARABLE" not in result.out
    assert (tmp_path / "compare.html").exists()


def test_compare_says_when_runs_are_not_comparable(tmp_path, cli, host):
    from inspector.inspection import run_inspect
    from inspector.plugin.context import InspectOptions

    for name, size in (("small", 64), ("large", 128)):
        json_report.write(run_inspect(host, SourceSpec(model="tiny-sd"), InspectOptions(height=size, width=size)),
                          tmp_path / f"{name}.json")
    result = cli("compare", str(tmp_path / "small.json"), str(tmp_path / "large.json"))
    assert result.code == 0
    assert "NOT COMPARABLE" in result.out and "height 64 vs 128" in result.out
    assert "not comparable" in result.err


def test_interrupted_write_keeps_the_old_file(hostile_run, tmp_path, monkeypatch):
    target = tmp_path / "report.html"
    target.write_text("old report")
    original = Path.write_text

    def half_then_interrupt(self, text, *args, **kwargs):
        original(self, text[: len(text) // 2], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        html_report.write(hostile_run, target)
    monkeypatch.undo()
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


@pytest.mark.parametrize("args, message", [
    (["report", "/no/such/run.json"], "no such file"),
    (["compare", "/no/a.json", "/no/b.json"], "no such file"),
])
def test_bad_report_input(cli, args, message):
    result = cli(*args)
    assert result.code == 2 and message in result.err and len(result.err.strip().splitlines()) == 1


def test_csv_target_that_is_a_file_is_refused(cli, tmp_path):
    target = tmp_path / "file.txt"
    target.write_text("keep me")
    result = cli("inspect", "--csv", str(target))
    assert result.code == 2 and "is a file" in result.err and target.read_text() == "keep me"


@needs_browser
def test_report_in_a_real_browser(hostile_run, tmp_path):
    path = tmp_path / "report.html"
    html_report.write(hostile_run, path)
    size = path.stat().st_size

    def interact(page):
        page.select_option("#layer-component", label="unet")
        page.fill("#layer-filter", "attn")
        page.select_option("#layer-depth", "7")
        filtered = page.locator("#layer-table tbody tr").count()
        page.locator("#layer-table th[data-key=flops]").click()
        page.locator("#layer-table th[data-key=flops]").click()
        first = page.locator("#layer-table tbody tr td").nth(6).inner_text()
        page.select_option("#layer-depth", "1")
        return {"filtered": filtered, "first_flops": first, "depth1": page.locator("#layer-table tbody tr").count(),
                "pwned": page.evaluate("window.__pwned === undefined")}

    screenshot = tmp_path / "report.png"
    report = open_page(path, screenshot, tmp_path / "profile", script=interact)
    assert report.errors == []
    assert report.requests == [path.resolve().as_uri()]  # nothing else was fetched
    expected_charts = len(html_report.charts(hostile_run.to_dict()))
    assert report.charts == report.charts_rendered == expected_charts >= 8
    assert report.chart_svgs >= expected_charts
    assert report.extra["pwned"] is True  # no hostile string ran
    assert report.extra["filtered"] > 0 and report.extra["depth1"] == 0  # no attn module at depth 1
    assert screenshot.stat().st_size > 10_000
    assert size < 1_500_000  # plotly's basic bundle, not the 4.8 MB full one


@needs_browser
def test_comparison_page_in_a_real_browser(hostile_run, tmp_path):
    comparison = compare(hostile_run, hostile_run, "<b>A</b>", "B")
    path = tmp_path / "compare.html"
    html_report.write_comparison(comparison, path)
    report = open_page(path, tmp_path / "compare.png", tmp_path / "profile")
    assert report.errors == [] and report.requests == [path.resolve().as_uri()]
    assert report.charts == report.charts_rendered >= 3


def visible_text(html: str) -> str:
    parser = Collector()
    parser.feed(html)
    return " ".join(" ".join(parser.text).split())


def test_html_numbers_are_formatted_and_unstable_figures_flagged(hostile_run):
    import re

    html = html_report.render(hostile_run)
    text = visible_text(html)
    # counts with separators, FLOPs with SI units, no raw 5+ digit integers anywhere a person reads
    assert re.findall(r"(?<![\d,.])\d{5,}(?![\d,])", text) == []
    assert f"{hostile_run.component('unet').parameters.total:,}" in text
    assert "MFLOP" in text and ("MiB" in text or "KiB" in text)
    # repeats=2 is too few to know the spread: every timing is flagged, with the legend
    assert all(c.timing.unstable for c in hostile_run.components if c.timing)
    assert html.count('class="unstable"') >= 5 and "not a fact" in text
    assert "Machine during the run" in text and "other processes" in text
    # the end-to-end sentences are separate items, not run together
    assert re.search(r"overhead x\d\.\d{3} \(\d\.\d{3}-\d\.\d{3}\)", text) or "overhead x" in text
    assert not re.search(r"\.[A-Z]", text.split("End to end", 1)[1][:600])


def test_chart_values_use_one_unit_per_chart(hostile_run):
    specs = {c["id"]: c for c in html_report.charts(hostile_run.to_dict())}
    flops = specs["flops-by-component"]
    assert flops["y_label"] in ("MFLOP", "GFLOP")
    unet_flops = hostile_run.component("unet").flops
    scale = {"MFLOP": 1e6, "GFLOP": 1e9}[flops["y_label"]]
    assert unet_flops / scale in flops["series"]["FLOPs"]
    assert flops["text"]["FLOPs"][flops["x"].index("unet")].endswith("FLOP")
    assert specs["memory-by-component"]["y_label"] in ("KiB", "MiB", "GiB")  # binary units for bytes
    assert specs["time-by-component"]["y_label"] in ("µs", "ms", "s")


@needs_browser
@pytest.mark.parametrize("width", [1400, 760])
def test_charts_do_not_overlap_at_two_widths(hostile_run, tmp_path, width):
    from .browser import OVERLAP_SCRIPT

    path = tmp_path / "report.html"
    html_report.write(hostile_run, path)

    def check(page):
        page.evaluate("window.scrollTo(0, document.querySelector('#charts').offsetTop - 40)")
        return {"problems": page.evaluate(OVERLAP_SCRIPT)}

    shot = tmp_path / f"charts-{width}.png"
    report = open_page(path, shot, tmp_path / "profile", script=check, width=width, height=1100)
    assert report.errors == [] and report.charts == report.charts_rendered >= 8
    assert report.extra["problems"] == []
    assert shot.stat().st_size > 10_000


#: every element wider than the window, for the failure message
WIDE_SCRIPT = r"""() => {
  const w = window.innerWidth;
  const wide = [...document.querySelectorAll('body *')].filter(el => el.getBoundingClientRect().right > w + 1)
    .filter(el => !el.closest('.scroll'))
    .map(el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
      (el.className && el.className.baseVal === undefined ? '.' + el.className : '') +
      ' ' + Math.round(el.getBoundingClientRect().right));
  return {scroll: document.scrollingElement.scrollWidth, window: w, wide: wide.slice(0, 10)};
}"""


@needs_browser
@pytest.mark.parametrize("width", [1280, 800])
def test_the_page_never_scrolls_sideways(hostile_run, tmp_path, width):
    """Wide tables scroll inside their own box; the page itself fits the window."""
    path = tmp_path / "report.html"
    html_report.write(hostile_run, path)
    shot = tmp_path / f"page-{width}.png"
    report = open_page(path, shot, tmp_path / "profile", script=lambda page: page.evaluate(WIDE_SCRIPT),
                       width=width, height=900)
    assert report.errors == []
    assert report.extra["scroll"] <= width, report.extra["wide"]
    assert report.extra["wide"] == []


class ViewTables(HTMLParser):
    """Each plugin view table of a page: its header cells and rows as (text, right-aligned) pairs."""

    def __init__(self):
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append({"head": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = [tag, "", "num" in (attrs.get("class") or "").split()]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            kind, text, right = self._cell
            if kind == "th":
                self.tables[-1]["head"].append((text.strip(), right))
            else:
                self.tables[-1]["rows"][-1].append((text.strip(), right))
            self._cell = None


def test_view_tables_format_numbers_as_the_terminal_does(hostile_run):
    """The operator table: times in ms/µs/s, the share as a percentage, FLOPs with SI units, counts
    with separators, every number right-aligned: the same text the terminal prints."""
    from inspector.cli.terminal import view_block

    parser = ViewTables()
    parser.feed(html_report.render(hostile_run))
    view = next(v for c in hostile_run.components for v in c.views
                if v.title.startswith("Top operators") and any(r[4] for r in v.rows))
    table = next(t for t in parser.tables if [h for h, _ in t["head"]] == view.columns
                 and [c for c, _ in t["rows"][1]][0] == view.rows[0][0])
    rows = [r for r in table["rows"] if r]
    terminal = view_block(view)
    assert [[c for c, _ in r] for r in rows[:len(terminal.rows)]] == terminal.rows
    ms, share, flops = (view.columns.index(n) for n in ("self_cpu_ms", "share", "flops"))
    first = rows[0]
    assert re.fullmatch(r"[\d.,]+ (ms|µs|s)", first[ms][0]) and first[share][0].endswith("%")
    assert any(re.fullmatch(r"[\d.]+ [kMGT]?FLOP", r[flops][0]) for r in rows)
    for i, (name, right) in enumerate(table["head"]):
        assert right == (name != "operator") and all(r[i][1] == right for r in rows), name
    assert [a for _, a in terminal.columns] == ["left"] + ["right"] * 4
