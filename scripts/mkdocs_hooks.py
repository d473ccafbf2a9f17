"""MkDocs hooks: the documentation site is the repository's own Markdown, at its repository paths.

README.md is the home page, docs/*.md, benchmarks/README.md and the generated comparison
(metrics/comparison.md) keep their paths, so a relative link is the same on GitHub and in the
site, and `mkdocs build --strict` checks every one of them (and every ``#anchor``). A page may
link to any other file of the repository (``params.yaml``, ``requirements.lock``, a source
file): each linked file is copied into the site as it is. The API reference is generated from
the docstrings (mkdocstrings) of the modules in REFERENCE, one page each.

A link to a pipeline output that is not there (a file git ignores, e.g. the comparison's PNGs in
a fresh clone before `dvc pull` or `dvc repro`) becomes a line saying so instead of a broken link;
every other missing target still fails the strict build.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/*.md", "docs/*.png", "benchmarks/README.md", "metrics/comparison.md")
# the public surface: what a user extends (models), calls (scoring, export) or reads the
# definitions of (params, metrics, statistics), and how the pipeline's code deps are found
REFERENCE = (
    "trendfactory.params",
    "trendfactory.models.base",
    "trendfactory.models.registry",
    "trendfactory.models.data",
    "trendfactory.models.search",
    "trendfactory.models.common.neural",
    "trendfactory.models.common.joint",
    "trendfactory.models.common.trainer",
    "trendfactory.evaluation.metrics",
    "trendfactory.evaluation.ic",
    "trendfactory.evaluation.significance",
    "trendfactory.evaluation.selection",
    "trendfactory.scoring",
    "trendfactory.export",
    "trendfactory.numerics",
    "trendfactory.import_closure",
    "trendfactory.stages.code_deps",
)
LINK = re.compile(r"\]\(\s*<?([^()\s<>#]+)")
IMAGE_OR_LINK = re.compile(r"(!?)\[([^\]]*)\]\(\s*<?([^()\s<>#]+)>?\s*\)")


def _absent_output(path: Path) -> bool:
    """``path`` is missing and git ignores it: a pipeline output not produced or pulled here."""
    if path.exists() or not path.is_relative_to(ROOT):
        return False
    done = subprocess.run(["git", "check-ignore", "-q", str(path.relative_to(ROOT))], cwd=ROOT, capture_output=True)
    return done.returncode == 0


def _reference_uri(module: str) -> str:
    return f"reference/{module.removeprefix('trendfactory.')}.md"


def on_config(config):
    """The reference pages in the navigation, under 'API reference'."""
    for item in config.nav:
        if isinstance(item, dict) and "API reference" in item:
            item["API reference"] = [{module: _reference_uri(module)} for module in REFERENCE]
    return config


def _linked_files(page: Path) -> set[Path]:
    """Repository files (not folders, not pages) that ``page`` links to."""
    out = set()
    for target in LINK.findall(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
            continue
        path = (page.parent / target).resolve()
        if path.is_file() and path.is_relative_to(ROOT) and path.suffix != ".md":
            out.add(path)
    return out


def on_files(files: Files, config) -> Files:
    """Replace docs_dir's files by the repository's pages at their own paths, the files they
    link to, and the generated reference pages (the theme's files stay)."""
    docs_dir = Path(config["docs_dir"]).resolve()
    kept = [f for f in files if not Path(f.abs_src_path or "").resolve().is_relative_to(docs_dir)]
    out = Files(kept)
    pages = sorted({p for pattern in PAGES for p in ROOT.glob(pattern)})
    linked = set().union(*(_linked_files(p) for p in pages if p.suffix == ".md")) - set(pages)
    for path in [*pages, *sorted(linked)]:
        out.append(File.generated(config, path.relative_to(ROOT).as_posix(), abs_src_path=str(path)))
    for module in REFERENCE:
        out.append(File.generated(config, _reference_uri(module), content=f"# `{module}`\n\n::: {module}\n"))
    return out


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Links to absent pipeline outputs become a note (see the module docstring)."""
    source = ROOT / page.file.src_uri

    def replace(match: re.Match) -> str:
        bang, text, target = match.groups()
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or not _absent_output((source.parent / target).resolve()):
            return match.group(0)
        return f"*{text or target}: a pipeline output, not in this checkout (`dvc pull` or `dvc repro` makes it)*"

    return IMAGE_OR_LINK.sub(replace, markdown)
