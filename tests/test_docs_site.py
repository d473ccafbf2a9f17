"""The documentation site builds with every warning an error (mkdocs.yml: strict), and the
strict build really fails on a broken link or anchor (what CI relies on)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SITE_FILES = (
    "mkdocs.yml",
    "scripts/mkdocs_hooks.py",
    "README.md",
    "LICENSE",
    "params.yaml",
    "requirements.lock",
    ".gitignore",
    "benchmarks/README.md",
    "metrics/comparison.md",
    "metrics/compare.json",
)


def _build(root: Path, site: Path) -> subprocess.CompletedProcess:
    # not --quiet: it drops the warnings below the level strict mode counts, and the build passes
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=root, capture_output=True, text=True, timeout=300)


def _copy_project(tmp: Path) -> Path:
    root = tmp / "repo"
    for rel in SITE_FILES:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, root / rel)
    for folder in ("docs", "src/trendfactory"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)  # the hook asks git which files are pipeline outputs
    return root  # like a fresh clone: no pipeline outputs (plots/compare/*.png)


def test_the_site_builds_strict_with_the_reference_pages(tmp_path):
    done = _build(ROOT, tmp_path / "site")
    assert done.returncode == 0, done.stderr[-3000:]
    reference = (tmp_path / "site" / "reference" / "models.base.html").read_text()
    assert "TrendModel" in reference and "Fit on" in reference  # a class and its docstring, rendered
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "docs" / "pipeline.html").is_file()


def test_a_fresh_clone_builds_and_says_where_the_pipeline_outputs_are(tmp_path):
    root = _copy_project(tmp_path)
    assert not (root / "plots").exists() and "../plots/compare/" in (root / "metrics" / "comparison.md").read_text()
    done = _build(root, tmp_path / "site")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "a pipeline output, not in this checkout" in (tmp_path / "site" / "metrics" / "comparison.html").read_text()


def test_a_broken_anchor_or_link_fails_the_build(tmp_path):
    root = _copy_project(tmp_path)
    page = root / "docs" / "team.md"
    original = page.read_text()
    page.write_text(original + "\nSee [the pipeline](pipeline.md#no-such-heading).\n")
    done = _build(root, tmp_path / "site1")
    assert done.returncode != 0 and "no-such-heading" in done.stderr
    page.write_text(original + "\nSee [a page](no_such_page.md).\n")
    done = _build(root, tmp_path / "site2")
    assert done.returncode != 0 and "no_such_page.md" in done.stderr
