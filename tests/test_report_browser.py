"""The demo's report in a real browser: every image decodes, the page asks for nothing over the network.

Needs Debian's ``chromium`` (``.ci/run`` installs it); skipped with the reason where it is absent. Slow:
it runs the demo (one epoch, one baseline) first.
"""

from __future__ import annotations

import re

import pytest

import browser

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(browser.chromium() is None,
                                 reason="chromium is not installed (Debian: apt-get install chromium)")]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    from seqrnn.demo import run_demo

    folder = tmp_path_factory.mktemp("demo") / "run"
    summary = run_demo(str(folder), epochs=1, baselines=("markov1",), quiet=True)
    return folder, summary


def test_demo_report_renders_with_every_image_and_no_request(demo_report, tmp_path):
    folder, summary = demo_report
    page = folder / "report.html"
    assert summary["report"] == str(page)
    html = page.read_text(encoding="utf-8")
    # Nothing outside the page: every src is a data: URI, every link an anchor of the page itself.
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("data:image/png;base64,", "#")) for s in sources), \
        [s[:40] for s in sources if not s.startswith(("data:", "#"))]
    n_images = html.count("<img ")
    assert n_images >= 6  # lengths, history, ROC/PR, scores, examples, the compare ROC

    result = browser.probe(page, tmp_path / "probed.html", tmp_path / "profile")
    assert len(result["images"]) == n_images
    assert all(w > 0 and h > 0 and done for w, h, done in result["images"]), result["images"]
    assert result["refused"] == [] and result["fetched"] == []

    shot = tmp_path / "report.png"
    browser.screenshot(page, shot, tmp_path / "profile2")
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 50_000  # a page with figures, not a blank one


def test_the_probe_sees_a_request_and_a_broken_image(demo_report, tmp_path):
    # The check above can fail: a page that reaches out, or whose image does not decode, is caught.
    folder, _ = demo_report
    bad = tmp_path / "bad.html"
    html = (folder / "report.html").read_text(encoding="utf-8")
    bad.write_text(html.replace("<main>", '<main><img src="http://example.invalid/x.png">'
                                          '<img src="data:image/png;base64,AAAA">', 1), encoding="utf-8")
    result = browser.probe(bad, tmp_path / "probed.html", tmp_path / "profile")
    assert any("example.invalid" in r for r in result["refused"])
    assert sum(w == 0 for w, _, _ in result["images"]) == 2
