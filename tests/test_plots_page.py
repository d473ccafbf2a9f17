"""`dvc plots show` with the offline template (build/plots_template.html, scripts/vega.sh) gives a
page that renders every plot in headless Chromium with no network: no console errors, a drawn
vega canvas/svg in each vega plot's div, the image plot's file next to the page, and no request
from the page to the network. Skips only when /usr/bin/chromium is missing
(CI: `apt-get install -y chromium`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
TEMPLATE = ROOT / "build" / "plots_template.html"

needs_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="/usr/bin/chromium is not installed (apt-get install -y chromium)",
)

# A top-level `plots:` list (like dvc.yaml's plots/compare) and a stage-level plot.
DVC_YAML = """\
stages:
  train:
    cmd: "true"
    plots:
      - logs/loss.tsv:
          template: linear
          x: step
          y: loss
plots:
  - confusion_counts:
      template: confusion_counts
      x: actual
      y:
        eval/confusion.json: predicted
  - eval/importance.json:
      template: bar_horizontal_sorted
      x: importance
      y: feature
  - metrics/eval/lstm-h5/plots/custom/confusion_test.json:
      template: confusion_counts
      x: actual
      y: predicted
  - plots/compare
"""
ITEM_ID = "metrics_eval_lstm-h5_plots_custom_confusion_test_json"  # an item's chart: folded under its horizon
VEGA_IDS = {"confusion_counts", "eval_importance_json", "logs_loss_tsv", ITEM_ID}
COUNTS_TEMPLATE = ROOT / ".dvc" / "plots" / "confusion_counts.json"  # the project's confusion-as-counts template
IMAGE_IDS = {"plots_compare_equity_h5_png"}

# The .dvc/config entry the project uses: relative paths are taken from .dvc/.
DVC_CONFIG = """\
[core]
    analytics = false
    check_update = false
[plots]
    html_template = ../build/plots_template.html
"""


def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    rows = b"".join(b"\x00" + b"\xc8\x32\x32" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _write_project(root: Path) -> None:
    names = ["down", "flat", "up"]  # what evaluate writes: 9 rows of counts
    confusion = [{"actual": a, "predicted": p, "count": 3 * i + j} for i, a in enumerate(names) for j, p in enumerate(names)]
    importance = [{"feature": f"f{i}", "importance": round(1 / (i + 1), 4)} for i in range(6)]
    loss = "step\tloss\n" + "".join(f"{i}\t{1 / (i + 1):.4f}\n" for i in range(20))
    for rel, content in {
        "eval/confusion.json": json.dumps(confusion, indent=1),
        "metrics/eval/lstm-h5/plots/custom/confusion_test.json": json.dumps(confusion, indent=1),
        "eval/importance.json": json.dumps(importance, indent=1),
        "logs/loss.tsv": loss,
        "dvc.yaml": DVC_YAML,
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(content)
    (root / ".dvc/plots").mkdir(parents=True, exist_ok=True)
    shutil.copy(COUNTS_TEMPLATE, root / ".dvc/plots/confusion_counts.json")
    (root / "plots/compare").mkdir(parents=True)
    (root / "plots/compare/equity_h5.png").write_bytes(_png(8, 6))


def _run(cmd: list[str], cwd: Path, env: dict | None = None, timeout: int = 60):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


class _Marks(HTMLParser):
    """Per plot div id: the drawn vega views (<canvas|svg class="marks">) inside it, with size."""

    def __init__(self, ids: set[str]):
        super().__init__()
        self.ids, self.marks = ids, {i: [] for i in ids}
        self._open: list[tuple[str, int]] = []  # (plot id, div depth when it opened)
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("canvas", "svg") and "marks" in (a.get("class") or "").split() and self._open:
            size = (float(a.get("width") or 0), float(a.get("height") or 0))
            self.marks[self._open[-1][0]].append((tag, size))
        if tag == "div":
            self._depth += 1
            if a.get("id") in self.ids:
                self._open.append((a["id"], self._depth))

    def handle_endtag(self, tag):
        if tag == "div":
            if self._open and self._open[-1][1] == self._depth:
                self._open.pop()
            self._depth -= 1


@pytest.fixture(scope="module")
def template() -> Path:
    """build/plots_template.html from scripts/vega.sh (only checks when already built)."""
    proc = subprocess.run(["bash", str(ROOT / "scripts/vega.sh")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"scripts/vega.sh failed:\n{proc.stdout}\n{proc.stderr}"
    return TEMPLATE


def _dvc_env(tmp_path: Path) -> dict:
    return {
        **os.environ,
        "DVC_NO_ANALYTICS": "1",
        "DVC_STUDIO_OFFLINE": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
        "DVC_GLOBAL_CONFIG_DIR": str(tmp_path / "dvc-global"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp_path / "dvc-system"),
    }


DVC = [sys.executable, "-m", "dvc"]


def _new_project(tmp_path: Path) -> tuple[Path, dict]:
    """An empty git + DVC project under ``tmp_path`` and the environment to run dvc in it."""
    project = tmp_path / "project"
    project.mkdir()
    env = _dvc_env(tmp_path)
    _run(["git", "init", "-q"], project)
    _run([*DVC, "init", "-q"], project, env)
    return project, env


@needs_chromium
def test_plots_page_renders_offline(tmp_path: Path, template: Path):
    project, env = _new_project(tmp_path)
    (project / ".dvc/config").write_text(DVC_CONFIG)
    (project / "build").mkdir()
    shutil.copy(template, project / "build/plots_template.html")
    _write_project(project)

    _run([*DVC, "plots", "show", "-o", "out"], project, env)
    index = project / "out/index.html"
    page = index.read_text(encoding="utf-8")

    # The page is the template (config path taken from .dvc/) with only the plot divs filled in,
    # and the template loads nothing from outside: inline <script>s only.
    before, _, after = template.read_text(encoding="utf-8").partition("{plot_divs}")
    before = before.replace("{refresh_tag}", "")
    assert page.startswith(before) and page.endswith(after), "dvc did not use the template"
    outside_scripts = re.sub(r"<script>.*?</script>", "", before + after, flags=re.S)
    external = re.findall(r"<[^>]*\b(?:src|href)\s*=[^>]*>", outside_scripts, re.I)
    assert not external, f"the template loads: {external}"
    divs = page[len(before) : len(page) - len(after)]
    assert set(re.findall(r"vegaEmbed\('#([^']+)'", divs)) == VEGA_IDS
    images = re.findall(r'<img src="([^"]+)"', divs)
    assert len(images) == len(IMAGE_IDS) and all(f'id="{i}"' in divs for i in IMAGE_IDS)
    assert all((index.parent / src).is_file() for src in images), images

    profile, netlog = tmp_path / "chromium-profile", tmp_path / "netlog.json"
    profile.mkdir()
    cmd = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--proxy-server=127.0.0.1:9",
        "--enable-logging=stderr",
        "--v=0",
        f"--log-net-log={netlog}",
        "--virtual-time-budget=15000",
        "--dump-dom",
        index.as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Console: every message the page logs, bar vega's own "WARN ..." lines, is a failure
    # (uncaught exceptions, vega-embed errors, console.error/log).
    console = re.findall(r':CONSOLE[(:]?\d*\)?\] "(.*)', proc.stderr)
    errors = [m for m in console if not m.startswith("WARN ")]
    assert not errors, "console errors:\n" + "\n".join(errors)

    # Each vega plot's div holds a drawn, non-empty vega view.
    marks = _Marks(VEGA_IDS)
    marks.feed(proc.stdout)
    drawn = {i: m for i, m in marks.marks.items() if any(w > 0 and h > 0 for _, (w, h) in m)}
    assert set(drawn) == VEGA_IDS, f"vega plots not rendered: {sorted(VEGA_IDS - set(drawn))}"

    # The layout script folded the item's chart under its horizon's section, the comparison first.
    dom = proc.stdout
    section = dom.index('<section class="horizon" id="horizon-5">')
    assert dom.index('<details class="item"><summary>lstm, h = 5</summary>', section) < dom.index(f'id="{ITEM_ID}"')
    assert dom.index('id="plots_compare_equity_h5_png"') < section

    # No network request started by the page (file:// top frame); the browser's own background
    # requests (updates, accounts) are not the page's and all went to the dead proxy anyway.
    log = json.loads(netlog.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    page_requests = [
        e["params"]["url"]
        for e in log["events"]
        if e["type"] == start_job and "url" in e.get("params", {}) and ("file://" in str(e["params"].get("network_isolation_key", "")) or e["params"].get("initiator") == "null")
    ]
    assert not page_requests, f"the page fetched from the network: {page_requests}"


def test_the_committed_fallback_page_is_what_plots_page_writes():
    sys.path.insert(0, str(ROOT / "scripts"))
    import plots_page

    assert plots_page.main(["--check"]) == 0, "run python3 scripts/plots_page.py"


def test_a_clone_without_the_built_template_still_gets_a_page(tmp_path: Path):
    """The committed .dvc/config names .dvc/plots_fallback.html (vega from DVC's CDN, with a notice),
    not build/: `dvc plots show` on a fresh clone that skipped scripts/setup.sh writes a page
    instead of failing with DVC's "HTML template has to contain '{plot_divs}'"."""
    project, env = _new_project(tmp_path)
    plots_section = re.search(r"^\[plots\]\n(?:[ \t]+.*\n?)+", (ROOT / ".dvc/config").read_text(), re.M)
    assert plots_section and "html_template = plots_fallback.html" in plots_section.group(0)
    (project / ".dvc/config").write_text("[core]\n    analytics = false\n" + plots_section.group(0))
    shutil.copy(ROOT / ".dvc/plots_fallback.html", project / ".dvc/plots_fallback.html")
    _write_project(project)
    assert not (project / "build").exists()

    _run([*DVC, "plots", "show", "-o", "out"], project, env)
    page = (project / "out/index.html").read_text(encoding="utf-8")
    assert 'id="notice"' in page and "scripts/setup.sh" in page
    assert re.search(r'<script src="https://[^"]*vega', page), "DVC's CDN scripts were not put in"
    assert set(re.findall(r"vegaEmbed\('#([^']+)'", page)) == VEGA_IDS
    assert all(f'id="{i}"' in page for i in IMAGE_IDS)
