"""Size of the `dvc plots show` page of the current outputs: the HTML and every file it links.

Target (issue 10): <= 5 MB in all for the full default run, rendering offline.
Run in the repository after `dvc repro` (or `dvc pull`):

    .venv/bin/python benchmarks/bench_plots_page.py
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MB = 5.0


def main() -> None:
    dvc = Path(sys.executable).with_name("dvc")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "page"
        t0 = time.perf_counter()
        subprocess.run([str(dvc), "plots", "show", "-o", str(out)], check=True, stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - t0
        files = [f for f in out.rglob("*") if f.is_file()]
        html = sum(f.stat().st_size for f in files if f.suffix == ".html")
        images = [f for f in files if f.suffix != ".html"]
        linked = sum(f.stat().st_size for f in images)
        total = (html + linked) / 1e6
        largest = sorted(((f.stat().st_size, f.name) for f in images), reverse=True)[:3]
    print(f"dvc plots show: {seconds:.1f} s")
    print(f"HTML {html / 1e6:.2f} MB + {len(images)} linked files {linked / 1e6:.2f} MB = {total:.2f} MB (target <= {TARGET_MB} MB: {'met' if total <= TARGET_MB else 'MISSED'})")
    for size, name in largest:
        print(f"  largest: {name} {size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
