"""Every relative link and image in the Markdown documentation points at something that exists.

Checked pages: README.md, docs/*.md and benchmarks/README.md. A link's target (a file or folder,
relative to the page, or to the repository root when it starts with "/") must exist inside the
repository; a ``#anchor`` into a Markdown page must name one of its headings, slugged as GitHub
does (lower case, punctuation dropped, spaces to hyphens, repeats numbered -1, -2, ...). http(s)
and mailto links are not fetched. Links inside fenced code blocks and code spans are not links.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)  # never across a blank line
# `](target)` or `](target "title")`: the tail of an inline link or image, whatever its text holds
INLINE = re.compile(r"\]\(\s*(<[^>\n]*>|[^()\s]+(?:\([^()\s]*\)[^()\s]*)*)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFERENCE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)", re.MULTILINE)
HTML_TARGET = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
HTML_ID = re.compile(r"<[a-z][^>]*?\b(?:id|name)\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE)
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)  # http:, https:, mailto:, ...


def pages() -> list[Path]:
    found = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
    return [p for p in found if p.is_file()]


def _blank_fences(text: str) -> str:
    """The text with every fenced code block's lines emptied (line numbers kept)."""
    out, fence = [], None
    for line in text.split("\n"):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            out.append("")
        elif fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) and not line.strip().strip(fence[0]):
                fence = None
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


def _prose(text: str) -> str:
    """Fenced blocks and code spans blanked out, newlines kept so offsets map to line numbers."""
    text = _blank_fences(text)
    return CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def github_slug(heading: str) -> str:
    """GitHub's anchor for a heading's text (before de-duplication)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # [text](url) -> text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML tags
    text = text.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)  # keep letters, digits, _, -, spaces (Unicode-aware)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown page defines: its headings' slugs (repeats numbered) and HTML ids."""
    seen: dict[str, int] = {}
    out: set[str] = set()
    lines = _blank_fences(path.read_text(encoding="utf-8")).split("\n")
    for i, line in enumerate(lines):
        heading = None
        m = ATX.match(line)
        if m:
            heading = m.group(2) or ""
        elif i + 1 < len(lines) and line.strip() and not line.lstrip().startswith(("|", "-", "*", ">")) and re.fullmatch(r" {0,3}(=+|-+)[ \t]*", lines[i + 1]):
            heading = line.strip()  # a setext heading
        if heading is None:
            continue
        slug = github_slug(heading)
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    out.update(HTML_ID.findall(path.read_text(encoding="utf-8")))
    return out


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of every link and image of a page, code excluded."""
    text = _prose(path.read_text(encoding="utf-8"))
    found = []
    for pattern in (INLINE, REFERENCE, HTML_TARGET):
        for m in pattern.finditer(text):
            target = m.group(1).strip()
            if target.startswith("<") and target.endswith(">"):
                target = target[1:-1].strip()
            found.append((m.start(1), text.count("\n", 0, m.start(1)) + 1, target))
    return [(line, target) for _, line, target in sorted(found)]


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """One line per broken relative link of ``path``: 'file:line: target: why'."""
    problems = []
    cache: dict[Path, set[str]] = {}
    name = path.relative_to(root).as_posix()
    for line, target in links(path):
        if not target or EXTERNAL.match(target):
            continue
        file_part, _, anchor = target.partition("#")
        file_part = unquote(file_part.split("?", 1)[0])
        if file_part:
            base = root if file_part.startswith("/") else path.parent
            dest = (base / file_part.lstrip("/")).resolve()
            if dest != root.resolve() and root.resolve() not in dest.parents:
                problems.append(f"{name}:{line}: {target}: points outside the repository")
                continue
            if not dest.exists():
                problems.append(f"{name}:{line}: {target}: {dest.relative_to(root.resolve()).as_posix()} does not exist")
                continue
        else:
            dest = path
        if anchor and dest.is_file() and dest.suffix.lower() == ".md":
            if dest not in cache:
                cache[dest] = anchors(dest)
            if unquote(anchor).lower() not in cache[dest]:
                problems.append(f"{name}:{line}: {target}: no heading with the anchor #{anchor} in {dest.relative_to(root.resolve()).as_posix()}")
    return problems


@pytest.mark.parametrize("page", pages(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    problems = broken_links(page)
    assert not problems, "broken links:\n" + "\n".join(problems)


def test_the_checked_pages_are_there():
    names = {p.relative_to(ROOT).as_posix() for p in pages()}
    assert {"README.md", "benchmarks/README.md"} <= names and any(n.startswith("docs/") for n in names)


def test_every_docs_page_and_image_is_linked():
    """The README is the door: every docs page is linked from it, every file under docs/ from some page."""
    readme_targets = {(ROOT / t.split("#")[0]).resolve() for _, t in links(ROOT / "README.md") if not EXTERNAL.match(t)}
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert page.resolve() in readme_targets, f"docs/{page.name} is not linked from README.md"
    targets = {(p.parent / unquote(t.split("#")[0])).resolve() for p in pages() for _, t in links(p) if t.split("#")[0] and not EXTERNAL.match(t)}
    for asset in sorted((ROOT / "docs").rglob("*")):
        if asset.is_file() and asset.suffix != ".md":
            assert asset.resolve() in targets, f"{asset.relative_to(ROOT).as_posix()} is referenced by no page"


def test_the_checker_finds_what_it_should(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "img.png").write_bytes(b"")
    (tmp_path / "docs" / "a.md").write_text(
        "# Page A\n\n## The neural trainer (`train.*`)\n\n## Data sources (`data.source`)\n\n## Repeat\n\n## Repeat\n\n"
        'Fine: [b](b.md), [up](../img.png "title"), ![img](<../img.png>), [self](#repeat-1), [ext](https://example.com/x),\n'
        "[b's section](b.md#héllo-wörld), [trainer](#the-neural-trainer-train), [sources](#data-sources-datasource).\n"
        "Broken: [gone](missing.md), ![gone image](../nope.png), [bad anchor](b.md#nowhere), [self](#repeat-2),\n"
        "[outside](../../etc/passwd).\n\n"
        "```\n[not a link](in-a-fence.md)\n```\n\nNot a link either: `[x](in-a-span.md)`.\n\n[ref]: also-missing.md\n"
    )
    (tmp_path / "docs" / "b.md").write_text("Héllo, Wörld!\n=============\n\ntext\n")
    problems = broken_links(tmp_path / "docs" / "a.md", root=tmp_path)
    assert [p.split(": ", 2)[1] for p in problems] == ["missing.md", "../nope.png", "b.md#nowhere", "#repeat-2", "../../etc/passwd", "also-missing.md"], problems
    assert all(p.startswith("docs/a.md:") for p in problems)
    assert github_slug("Exporting a network for production inference") == "exporting-a-network-for-production-inference"
    assert github_slug("Scaling: fits on Ray, tuning, large universes") == "scaling-fits-on-ray-tuning-large-universes"
    assert github_slug("The locked environment (`scripts/setup.sh`)") == "the-locked-environment-scriptssetupsh"
