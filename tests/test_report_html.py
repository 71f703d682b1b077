"""report.html: one self-contained page beside report.md (same content, plots embedded, no URL outside
the file), opened in a real headless Chromium: it renders without console errors and a screenshot is
written. Without chromium the browser tests skip, unless STKD_REQUIRE_BROWSER=1 (CI) makes them fail."""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import pytest

from stkd.report import format_table, write_report
from stkd.report_html import markdown_to_html

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _make_run():
    spec = spec_from_file_location("report_fixture", Path(__file__).with_name("test_report.py"))
    mod = module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.make_run


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("html") / "run"
    metrics = _make_run()(root)
    write_report(root)
    return root, metrics, (root / "report.html").read_text()


def _browser() -> str:
    found = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    if found is None:
        if os.environ.get("STKD_REQUIRE_BROWSER") == "1":
            pytest.fail("STKD_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install -y chromium)")
        pytest.skip("no headless browser (chromium) on PATH: apt-get install -y chromium to run this test")
    return found


def _open(html_file: Path, tmp: Path) -> tuple[Path, list[str], str]:
    """Render ``html_file`` in headless Chromium: (screenshot path, console messages, rendered DOM)."""
    exe = _browser()
    flags = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
             "--enable-logging=stderr", "--v=0", "--window-size=1280,2400"]
    shot = tmp / "shot.png"
    r = subprocess.run([*flags, f"--screenshot={shot}", html_file.as_uri()], capture_output=True, text=True,
                       timeout=120, check=False)
    console = [ln for ln in r.stderr.splitlines() if ":CONSOLE" in ln]
    dom = subprocess.run([*flags, "--dump-dom", html_file.as_uri()], capture_output=True, text=True, timeout=120,
                         check=False)
    console += [ln for ln in dom.stderr.splitlines() if ":CONSOLE" in ln]
    return shot, console, dom.stdout


def test_html_has_the_report_and_nothing_outside_the_file(page):
    root, metrics, text = page
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>stkd report: fake-loop</title>" in text
    for name in metrics["models"]:
        assert f"<code>{name}</code>" in text or f">{name}<" in text, name
    assert text.count("<table>") >= 2  # the model table and the per-horizon table
    assert "<h3>Sensor map</h3>" in text and "<h3>Training curves</h3>" in text
    assert "<h3>Forecast vs truth</h3>" in text and "<h3>Error by horizon</h3>" in text
    imgs = re.findall(r'<img alt="([^"]*)" src="([^"]*)"', text)
    assert len(imgs) == len(list((root / "plots").glob("*.png"))) >= 4
    for _alt, src in imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG_MAGIC
    assert not re.search(r"""(src|href)=["']?(https?:|//)|url\(|@import|<script|<link""", text)
    # every table row of report.md became a row of the page
    n_md_rows = format_table(metrics).count("\n") - 1
    first = text.split("<table>")[1]
    assert first.count("<tr>") == n_md_rows + 1


def test_markdown_subset_is_escaped_and_formatted(tmp_path):
    out = markdown_to_html("# T <x>\n\n- **b** `a_b` and _it_ stid_kd\n\n| m | v |\n| --- | ---: |\n| a\\|b | 1 |\n"
                           "\n![gone](plots/none.png)\n", tmp_path)
    assert "<h1>T &lt;x&gt;</h1>" in out
    assert "<li><strong>b</strong> <code>a_b</code> and <em>it</em> stid_kd</li>" in out
    assert "<td>a|b</td><td class='r'>1</td>" in out
    assert "plots/none.png is missing" in out


def test_console_errors_are_caught(tmp_path):
    """The browser check below would see a failing page: a console error is reported."""
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><script>console.error("boom")</script></body></html>')
    _, console, _ = _open(bad, tmp_path)
    assert any("boom" in ln for ln in console)


def test_renders_in_headless_chromium_without_console_errors(page, tmp_path):
    root, _, _ = page
    shot, console, dom = _open(root / "report.html", tmp_path)
    assert console == []
    assert shot.is_file() and shot.read_bytes()[:8] == PNG_MAGIC and shot.stat().st_size > 20_000
    assert "stid_kd" in dom and dom.count("<img") >= 4  # the browser parsed the whole page
