"""House rules read from the source: a function over 60 lines says at its top why it is one
function (a comment starting ``# Long on purpose:``), or is split into named steps."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "trendfactory"
MAX_LINES = 60
MARK = "# Long on purpose:"


def long_functions_without_a_reason(root: Path = PACKAGE) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        lines = path.read_text().split("\n")
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > MAX_LINES:
                body = node.body[1:] if isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None), ast.Constant) else node.body
                head = lines[(body[0].lineno - 2) if body else node.lineno : (body[0].lineno if body else node.lineno)]
                if not any(line.strip().startswith(MARK) for line in head):
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)")
    return found


def test_long_functions_say_why():
    missing = long_functions_without_a_reason()
    assert not missing, f"functions over {MAX_LINES} lines without a `{MARK} ...` line at the top (split them, or say why): {missing}"


def test_the_rule_sees_a_long_function(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(65))
    (tmp_path / "m.py").write_text(f'def f():\n    """Doc."""\n{body}\n')
    assert long_functions_without_a_reason(tmp_path) == ["m.py:1 f (67 lines)"]
    (tmp_path / "m.py").write_text(f'def f():\n    """Doc."""\n    {MARK} a reason.\n{body}\n')
    assert long_functions_without_a_reason(tmp_path) == []
