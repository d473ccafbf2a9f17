"""The Python snippets of the README and docs/ run: each ```python block is executed, as written,
in a small project (a synthetic universe featurized and windowed into data/windows, with the
3 walk-forward folds the default run has), so a renamed function or a wrong argument in the docs
fails here. A block preceded by a line ``<!-- snippet: not run (why) -->`` is a sketch and is
skipped; there must be a reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.pipeline_helpers import tiny_params, write_stores

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)
SKIP = re.compile(r"<!-- snippet: not run \(.+\) -->")


def snippets() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            if SKIP.search(m["before"]):
                continue
            line = text[: m.start("code")].count("\n") + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", m["code"]))
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("snippets")
    params = tiny_params(n_symbols=5, n_bars=1500, horizons=(5,), split={"scheme": "walk_forward", "test_start": "2003-01-01", "fold": 1, "val_years": 1, "embargo": 5})
    store = write_stores(root, params)
    from trendfactory.windows.reader import WindowSplit

    assert WindowSplit.open(store).n_folds == 3  # as many as the default run, which the snippets name
    return root


def test_there_are_snippets_to_run():
    assert len(snippets()) >= 2


@pytest.mark.parametrize("where,code", snippets(), ids=[w for w, _ in snippets()])
def test_a_docs_snippet_runs(where, code, project, monkeypatch):
    monkeypatch.chdir(project)
    exec(compile(code, where, "exec"), {"__name__": "__snippet__"})  # noqa: S102 -- the docs' own code
