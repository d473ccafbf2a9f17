"""params.yaml survives `dvc exp run -S key=value`: DVC rewrites the whole file through its
round-trip YAML writer (dvc.utils.hydra.apply_overrides, what `exp run -S` calls), and the
file is laid out so that the rewrite changes the set key's line(s) and nothing else -- every
comment, every other value and its spelling kept. Flow lists (`[1, 5]`), the word `null`,
double quotes and comments inside a list are what the writer would change or drop.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"

apply_overrides = pytest.importorskip("dvc.utils.hydra").apply_overrides


def _leaves(tree: dict, prefix: str = ""):
    """(dotted key, value) of every settable leaf; empty sections (`majority: {}`) have none."""
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict):
            yield from _leaves(value, dotted + ".")
        else:
            yield dotted, value


def _another(value) -> str:
    """A Hydra override value of the same kind as ``value`` but different."""
    if isinstance(value, bool):
        return str(not value).lower()
    if isinstance(value, int):
        return str(value + 1)
    if isinstance(value, float):
        return repr(value + 0.25)
    if value is None:
        return "7"
    if isinstance(value, list):
        return "[3]"
    return "zz_changed"


def _changed_lines(before: str, after: str) -> list[str]:
    diff = difflib.unified_diff(before.split("\n"), after.split("\n"), lineterm="", n=0)
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def _set(tmp: Path, text: str, overrides: list[str]) -> str:
    tmp.write_text(text)
    apply_overrides(tmp, overrides)
    return tmp.read_text()


def test_dvc_rewrite_without_a_change_keeps_every_byte(tmp_path):
    text = PARAMS.read_text()
    assert _set(tmp_path / "params.yaml", text, []) == text


def test_setting_any_key_changes_only_its_own_lines(tmp_path):
    text = PARAMS.read_text()
    comments = [line for line in text.split("\n") if "#" in line]
    wrong = []
    for key, value in _leaves(yaml.safe_load(text)):
        after = _set(tmp_path / "params.yaml", text, [f"{key}={_another(value)}"])
        changed = _changed_lines(text, after)
        own = key.rsplit(".", 1)[-1] + ":"
        if isinstance(value, list):  # the list's items are rewritten (and `key: []` loses its `[]`), nothing else
            ok = all(line[1:].lstrip().startswith(("- ", own)) for line in changed)
        else:
            ok = len(changed) == 2 and changed[0].startswith("-") and changed[1].startswith("+")
        if not ok:
            wrong.append(f"{key}: {changed[:4]}")
        kept = {line.split("#", 1)[1] for line in after.split("\n") if "#" in line}
        lost = [c for c in comments if c.split("#", 1)[1] not in kept]
        if lost:
            wrong.append(f"{key}: comments lost {lost[:2]}")
    assert not wrong, "dvc exp run -S would rewrite more than the key:\n" + "\n".join(wrong[:10])


def test_the_check_catches_a_flow_list_and_a_null(tmp_path):
    """The layout rules are real: a flow list and the word null are what DVC's writer rewrites."""
    text = "a: [1, 5]          # lookbacks\nb: null           # nothing\nc: 1\n"
    after = _set(tmp_path / "params.yaml", text, ["c=2"])
    assert len(_changed_lines(text, after)) > 2
