"""Open a page in headless Chromium (Debian's ``chromium``): a screenshot, and what the page itself reports
about its images and any request it tried. Used by the report's browser tests; no Python dependency."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

# Headless Chromium on a closed network: no sandbox (root in a container), no GPU, none of its own traffic.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")

# Runs before anything else on the page: records every request the Content-Security-Policy refused, and on
# load writes each image's natural size and every resource the page fetched into <pre id="probe">.
PROBE = """<script>
window.__refused = [];
document.addEventListener('securitypolicyviolation', e => window.__refused.push(e.blockedURI + ' ' + e.violatedDirective));
window.addEventListener('load', () => setTimeout(() => {
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({
    images: [...document.images].map(i => [i.naturalWidth, i.naturalHeight, i.complete]),
    refused: window.__refused,
    fetched: performance.getEntriesByType('resource').map(r => r.name)});
  document.body.appendChild(out);
}, 300));
</script>"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run(args: list[str], profile) -> subprocess.CompletedProcess:
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=180)


def screenshot(page, png, profile, width: int = 1200, height: int = 2400) -> None:
    run([f"--window-size={width},{height}", f"--screenshot={png}", f"file://{page}"], profile)


def probe(page, copy, profile) -> dict:
    """Load a copy of ``page`` with :data:`PROBE` at the top of its head (its policy allowing that one
    inline script, nothing else); the probe's JSON."""
    text = page.read_text(encoding="utf-8")
    text = text.replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';", 1)
    text = text.replace("<head>", "<head>" + PROBE, 1)
    copy.write_text(text, encoding="utf-8")
    done = run(["--virtual-time-budget=15000", "--dump-dom", f"file://{copy}"], profile)
    m = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, re.S)
    if not m:
        raise AssertionError(f"the probe did not report (chromium said: {done.stderr[-2000:]})")
    return json.loads(m.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&"))
