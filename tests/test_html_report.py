"""`initbench report RUN_DIR --html [FILE]`: one self-contained page, checked as text and in
a real browser (headless Chromium from Debian's packages; `make test` installs it)."""

import base64
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from initbench import runfolder, summary
from initbench.cli import app
from initbench.commands.report import html_target

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference"
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
NO_CHROMIUM = ("headless Chromium is not installed (Debian: apt-get install chromium; "
               "`make test` installs it when it can)")
_IMAGES = re.compile(r"data:image/png;base64,[A-Za-z0-9+/=]+")


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The reference run's page as `report --html FILE` writes it now (one render, ~10 s)."""
    path = tmp_path_factory.mktemp("html") / "reference.html"
    result = invoke("report", REFERENCE, "--html", path, "--quiet")
    assert result.exit_code == 0, result.output
    return path


def external_references(text: str) -> list[str]:
    """Every src/href/url()/@import of an HTML page that would make a network request
    (anything but a `#fragment` or a `data:` URI)."""
    found = re.findall(r"""(?:src|href|srcset|action|poster)\s*=\s*["']?([^"'\s>]*)""", text, re.I)
    found += re.findall(r"""url\(\s*["']?([^"')]*)""", text, re.I)
    found += re.findall(r"""@import\s+["']?([^"';\s]*)""", text, re.I)
    return [ref for ref in found if not (ref.startswith("#") or ref.startswith("data:"))]


def test_the_url_check_finds_external_references():
    """The check can fail: a CDN script, a web font and a linked stylesheet are all found."""
    assert external_references('<a href="#table">x</a><img src="data:image/png;base64,AA">') == []
    bad = ('<script src="https://cdn.example/x.js"></script><link href="//fonts.example/f.css">'
           '<style>@font-face{src:url(http://f.example/a.woff)} @import "s.css";</style>')
    assert len(external_references(bad)) == 4


def test_page_makes_no_network_request(page):
    text = page.read_text()
    assert external_references(text) == []
    assert "<script" not in text.lower() and "<link" not in text.lower()
    assert "@font-face" not in text


def test_page_holds_the_terminals_table_every_figure_card_settings_and_provenance(page):
    """The verdicts are the terminal's (the same summary rows), every figure is inline and
    decodes to a PNG, the card has a column per initializer, spec.json is there."""
    text = page.read_text()
    result = runfolder.read_run(REFERENCE)
    rows = summary.summarize_saved(result).rows
    for row in rows:
        expected = "—" if row.verdict == "baseline" else (
            f"{100 * row.versus.accuracy.mean_diff:+.2f} [{100 * row.versus.pair.diff_ci_low:+.2f}, "
            f"{100 * row.versus.pair.diff_ci_high:+.2f}]")
        # one table row per initializer: its name, then its Δ and verdict in that row
        within_row = r"(?:(?!</tr>).)*?"
        assert re.search(rf"<td[^>]*>{row.init}</td>{within_row}{re.escape(expected)}"
                         rf"{within_row}<td[^>]*>{row.verdict}</td></tr>", text), row.init
    images = _IMAGES.findall(text)
    assert len(images) == 1  # the reference run has curves.png only (no --pairs all, one lr)
    png = base64.b64decode(images[0].split(",", 1)[1])
    assert png.startswith(b"\x89PNG") and "<figcaption>" in text
    assert "The card of the network" in text and "784×256" in text
    for init in result.inits:
        assert f"<th class=\"right\">{init}</th>" in text
    assert "Holm-corrected over the 4 comparisons with xavier" in text
    assert " ".join(result.meta["command"]) in text
    assert result.spec.training_key() in text and "jax 0.10.2" in text


def test_committed_reference_page_is_what_the_code_writes(page):
    """results/reference/report.html is up to date (`make reference` writes it); figures are
    compared as present, not byte for byte (PNG bytes depend on the platform's fonts)."""
    committed = (REFERENCE / "report.html").read_text()
    assert _IMAGES.sub("IMG", committed) == _IMAGES.sub("IMG", page.read_text())


def test_html_default_file_bad_names_and_nothing_half_written(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(REFERENCE, run)
    (run / "report.html").unlink()
    two = invoke("report", run, REFERENCE, "--html")
    assert two.exit_code == 2 and "needs a file name" in two.output
    folder = invoke("report", run, "--html", tmp_path)  # a folder is not an .html file
    assert folder.exit_code == 2
    without = invoke("report", run, tmp_path / "x.html")
    assert without.exit_code == 2 and "add --html" in without.output
    assert not (tmp_path / "x.html").exists() and not (run / "report.html").exists()
    own = invoke("report", run, "--html", run / "a.html", run / "b.html")
    assert own.exit_code == 2 and "one FILE.html" in own.output
    assert html_target([run], True) == ([run], run / "report.html")  # the default file
    assert html_target([tmp_path / "x.htm", run], True) == ([run], tmp_path / "x.htm")
    assert html_target([run], False) == ([run], None)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "spec.json").write_text("{")
    bad = invoke("report", broken, "--html", tmp_path / "b.html")
    assert bad.exit_code == 2 and bad.output.count("error:") == 1
    assert not (tmp_path / "b.html").exists()


def _chromium(*args, tmp_path) -> subprocess.CompletedProcess:
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start;
    # --disable-dev-shm-usage: a container's small /dev/shm crashes the renderer.
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-dev-shm-usage",
                           "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
                           *args], capture_output=True, text=True, timeout=120)


# Drawn over the page's top-left corner by the probe copy: lime when the layout viewport
# has the window's width and nothing is wider than it, red when something overflows the
# page (a table that does not scroll in its own box), blue when the window is not the width.
_PROBE = ("<div id=probe style='position:fixed;left:0;top:0;width:40px;height:40px;z-index:9'>"
          "</div><script>function paint() {{ var W = {width}; "
          "document.getElementById('probe').style.background = window.innerWidth != W ? "
          "'#0000ff' : document.documentElement.scrollWidth > W ? '#ff0000' : '#00ff00'; }}"
          # headless Chromium loads at >= 500 px, then resizes to the window for the shot
          "paint(); window.addEventListener('resize', paint);"
          "new ResizeObserver(paint).observe(document.documentElement);</script></body>")


@pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
def test_page_in_a_real_browser_at_phone_and_desktop_width(page, tmp_path):
    """Chromium renders the page: its text has the table, the card and the provenance; at
    390 px and 1400 px the layout has the window's width and nothing is wider than the
    window (tables scroll in their own box); the screenshots are not blank."""
    from PIL import Image

    dom = _chromium("--window-size=1400,2000", "--dump-dom", page.as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    for needed in ("Ranked table", "he_normal", "no clear difference", "baseline",
                   "The card of the network", "Provenance", "Settings", "curves.png."):
        assert needed in text
    for width in (390, 1400):
        probe = tmp_path / f"probe{width}.html"
        probe.write_text(page.read_text().replace("</body>", _PROBE.format(width=width)))
        shot = tmp_path / f"shot{width}.png"
        run = _chromium(f"--window-size={width},2000", f"--screenshot={shot}", probe.as_uri(),
                        tmp_path=tmp_path)
        assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
        image = Image.open(shot).convert("RGB")
        assert image.size == (width, 2000)
        corner = image.getpixel((20, 20))
        assert corner == (0, 255, 0), {(255, 0, 0): f"something is wider than {width} px",
                                       (0, 0, 255): f"the window is not {width} px wide"
                                       }.get(corner, corner)
        assert image.convert("L").crop((0, 60, width, 2000)).getextrema()[0] < 100  # drawn


def test_a_card_that_cannot_be_drawn_leaves_a_note_not_a_failure(monkeypatch):
    """A dataset that cannot be loaded here (not downloaded, offline) costs the card only."""
    from initbench import data, html_report
    from initbench.errors import InitbenchError

    def unavailable(name, *args, **kwargs):
        raise InitbenchError(f"{name} is not available offline")

    monkeypatch.setattr(data, "load", unavailable)
    result = runfolder.read_run(REFERENCE)
    cards, note = html_report.network_cards(result)
    assert cards == {} and note == ("the card could not be drawn here: mnist-5k is not "
                                    "available offline")
    html = html_report.card_html(result, cards, note)
    assert "The card of the network" in html and "not available offline" in html
