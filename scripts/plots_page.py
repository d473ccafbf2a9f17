"""The page around `dvc plots show`'s charts, one source for its two forms:

- the offline page, build/plots_template.html: scripts/vega.sh passes the vega, vega-lite and
  vega-embed it inlines (``offline_page``);
- the committed fallback, .dvc/plots_fallback.html, for a clone that skipped setup: DVC puts its
  CDN script tags in ``{scripts}``, and a notice says the page needs network
  (``python scripts/plots_page.py`` rewrites it; ``--check`` fails when it is stale).

Both lay the page out for reading: DVC renders every chart in one column (about 130 on the
default run, 40,000 px); here the comparison plots come first, then one section per horizon in
which each item's charts fold under its name.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FALLBACK = ROOT / ".dvc" / "plots_fallback.html"

STYLE = """\
<style>
  table { border-spacing: 15px; }
  body { font: 14px sans-serif; }
  #notice { background: #fff3cd; border: 1px solid #e0c36c; padding: 6px 10px; }
  /* DVC renders every vega plot first and the images after them, sorted by path, which puts the
     comparison plots (plots/compare/) last: lay the page out as a flex box and move them first. */
  #plots { display: flex; flex-wrap: wrap; align-items: flex-start; }
  #plots > div:not(.vega-embed) { flex-basis: 100%; }
  #plots > [id^="plots_compare_"] { order: -1; }
  section.horizon { flex-basis: 100%; }
  section.horizon h2 { font-size: 16px; margin: 18px 0 6px; }
  details.item { margin: 2px 0; }
  details.item > summary { cursor: pointer; }
  details.item > div { display: inline-block; vertical-align: top; }
</style>"""

# Moves each item's charts (div ids metrics_eval_<item>-h<h>_plots_...) into a closed <details>
# under its horizon's section once the page has parsed: vega-embed has been called for every
# chart by then, and moving a div keeps what it drew (the charts have fixed sizes).
LAYOUT = """\
<script>
document.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("plots");
  if (!root) return;
  var byHorizon = {};
  Array.prototype.slice.call(root.children).forEach(function (div) {
    var m = /^metrics_eval_(.+)-h(\\d+)_plots_/.exec(div.id || "");
    if (!m) return;
    var items = byHorizon[m[2]] = byHorizon[m[2]] || {};
    (items[m[1]] = items[m[1]] || []).push(div);
  });
  Object.keys(byHorizon).sort(function (a, b) { return a - b; }).forEach(function (h) {
    var section = document.createElement("section");
    section.className = "horizon";
    section.id = "horizon-" + h;
    var title = document.createElement("h2");
    title.textContent = "h = " + h + ": each item's charts (click a name)";
    section.appendChild(title);
    Object.keys(byHorizon[h]).sort().forEach(function (name) {
      var box = document.createElement("details");
      box.className = "item";
      var summary = document.createElement("summary");
      summary.textContent = name + ", h = " + h;
      box.appendChild(summary);
      byHorizon[h][name].forEach(function (div) { box.appendChild(div); });
      section.appendChild(box);
    });
    root.appendChild(section);
  });
});
</script>"""

NOTICE = '<p id="notice">This page loads its charts\' library (vega) from a CDN and stays blank without network:\nrun <code>bash scripts/setup.sh</code> once for the offline page.</p>'


def _page(head_comment: str, scripts: str, notice: str = "") -> str:
    return f"""<!DOCTYPE html>
{head_comment}
<html>
<head>
<meta charset="utf-8">
{{refresh_tag}}
<title>DVC Plot</title>
{scripts}
{STYLE}
{LAYOUT}
</head>
<body>
{notice}<div id="plots">
{{plot_divs}}
</div>
</body>
</html>
"""


def offline_page(key: str, names: str, inlined_scripts: str) -> str:
    """build/plots_template.html: vega inlined (no ``{scripts}`` placeholder on purpose: DVC
    would put its CDN <script src=...> tags there)."""
    return _page(f"<!-- trendfactory plots template, build-key {key}; written by scripts/vega.sh: {names} inlined -->", inlined_scripts)


def fallback_page() -> str:
    """.dvc/plots_fallback.html: DVC's CDN scripts, and the notice."""
    comment = (
        "<!-- trendfactory plots page without the offline template, written by scripts/plots_page.py: .dvc/config\n"
        "     names it, so that `dvc plots show` works on a fresh clone. DVC puts its CDN script tags in\n"
        "     {scripts}, so it needs network; `bash scripts/setup.sh` builds build/plots_template.html, with\n"
        "     vega inlined, and names it in .dvc/config.local, which takes precedence. -->"
    )
    return _page(comment, "{scripts}", NOTICE + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write (or --check) .dvc/plots_fallback.html")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    want = fallback_page()
    if args.check:
        if FALLBACK.read_text() != want:
            print(f"{FALLBACK.relative_to(ROOT)} is stale; run `python3 scripts/plots_page.py`", file=sys.stderr)
            return 1
        return 0
    FALLBACK.write_text(want)
    print(f"wrote {FALLBACK.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
