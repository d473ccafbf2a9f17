"""Write params.yaml's model sections from the defaults each model's file declares (one place).

    .venv/bin/python scripts/params_models.py          # add what is missing, fix what differs (prints it)
    .venv/bin/python scripts/params_models.py --check  # change nothing; exit 1 naming each difference

A model's defaults live in its config dataclass (``models/zoo/<name>.py``); params.yaml shows
every one of them, so that a user sees and tunes every key in one file and `dvc exp run -S
models.<m>.<key>=...` finds it. This script keeps the copy generated: a new model gets its
section (its class docstring's first line as the comment), a new field its line (the comment
written after the field in the model file), a changed default its new value. Comments and the
layout DVC's writer keeps (block lists, ``null`` as an empty value) are left alone.
tests/test_params.py runs ``--check``.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PARAMS = ROOT / "params.yaml"
COMMENT_COLUMN = 30  # where params.yaml's comments start


def _scalar(value) -> str:
    if value is None:
        return ""  # how DVC's writer spells null (a `null` would be rewritten by the first -S)
    if isinstance(value, bool):
        return "true" if value else "false"
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def _with_comment(head: str, comment: str) -> str:
    """``head`` with ``# comment`` at params.yaml's comment column (or one space after a long head)."""
    return f"{head.ljust(COMMENT_COLUMN - 1)} # {comment}" if comment else head


def render_key(key: str, value, indent: int, comment: str = "") -> list[str]:
    """``key: value`` lines at ``indent`` as DVC's writer lays them out (block lists)."""
    pad = " " * indent
    if isinstance(value, list):
        head = f"{pad}{key}:" + ("" if value else " []")
    else:
        head = f"{pad}{key}:" + (f" {_scalar(value)}" if _scalar(value) else "")
    head = _with_comment(head, comment)
    lines = [head]
    if isinstance(value, list):
        lines += [f"{pad}- {_scalar(v)}" for v in value]
    return lines


def field_comments(path: Path, class_name: str) -> dict[str, str]:
    """The comment written after each field of dataclass ``class_name`` in ``path``."""
    source = path.read_text().splitlines()
    tree = ast.parse("\n".join(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name == class_name:
            out = {}
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    line = source[item.end_lineno - 1]
                    if "#" in line:
                        out[item.target.id] = line.split("#", 1)[1].strip()
            return out
    return {}


def defaults() -> dict[str, tuple[dict, dict[str, str], str]]:
    """model -> (its defaults, its fields' comments, its class docstring's first line)."""
    sys.path.insert(0, str(ROOT / "src"))
    import trendfactory  # noqa: F401  (sets the numerical paths before numpy loads)
    from trendfactory.models.registry import get_model_class
    from trendfactory.params import config_to_dict, model_names

    out = {}
    for name in model_names():
        cls = get_model_class(name)
        if cls.base_name:  # a tuned variant reads its base model's section
            continue
        module = sys.modules[cls.__module__]
        doc = (cls.__doc__ or "").strip().splitlines()
        out[name] = (config_to_dict(cls.config_class()), field_comments(Path(module.__file__), cls.config_class.__name__), doc[0] if doc else "")
    return out


def _sections(lines: list[str]) -> tuple[int, int, dict[str, tuple[int, int]]]:
    """(first line of ``models:``'s body, its end, model -> (start, end) line ranges)."""
    start = lines.index("models:") + 1
    end = next((i for i in range(start, len(lines)) if lines[i] and not lines[i].startswith((" ", "#"))), len(lines))
    sections, current = {}, None
    for i in range(start, end):
        line = lines[i]
        if line.startswith("  ") and not line.startswith("   ") and not line.lstrip().startswith("#") and ":" in line:
            current = line.split(":", 1)[0].strip()
            sections[current] = [i, i + 1]
        elif current and line.startswith("    "):
            sections[current][1] = i + 1
    return start, end, {k: tuple(v) for k, v in sections.items()}


def _key_ranges(lines: list[str], start: int, end: int) -> dict[str, tuple[int, int]]:
    """key -> (its line, one past its last list item) inside one model's section."""
    out, current = {}, None
    for i in range(start + 1, end):
        line = lines[i]
        if line.startswith("    ") and not line.startswith("     ") and not line.lstrip().startswith(("-", "#")) and ":" in line:
            current = line.split(":", 1)[0].strip()
            out[current] = [i, i + 1]
        elif current and line.lstrip().startswith("- "):
            out[current][1] = i + 1
    return {k: tuple(v) for k, v in out.items()}


def sync(text: str, wanted: dict) -> tuple[str, list[str]]:
    """``text`` with every model's section holding its defaults; what was changed, one line each."""
    lines = text.split("\n")
    changes: list[str] = []
    current = yaml.safe_load(text).get("models") or {}
    # edits bottom-up, so earlier line numbers stay valid
    start, end, sections = _sections(lines)
    edits: list[tuple[int, int, list[str]]] = []
    for name, (values, comments, doc) in wanted.items():
        if name not in sections:
            body = [_with_comment(f"  {name}:" if values else f"  {name}: {{}}", doc)]
            for key, value in values.items():
                body += render_key(key, value, 4, comments.get(key, ""))
            last = max((b for _, b in sections.values()), default=end)  # after the last section, before its trailing comments
            edits.append((last, last, body))
            changes.append(f"models.{name}: section added from its defaults")
            continue
        have = current.get(name) or {}
        keys = _key_ranges(lines, *sections[name])
        for key, value in values.items():
            if key not in have:
                at = sections[name][1]
                edits.append((at, at, render_key(key, value, 4, comments.get(key, ""))))
                changes.append(f"models.{name}.{key}: added ({_scalar(value) or 'null'})")
            elif have[key] != value:
                a, b = keys[key]
                comment = lines[a].split(" # ", 1)[1] if " # " in lines[a] else ""
                edits.append((a, b, render_key(key, value, 4, comment)))
                changes.append(f"models.{name}.{key}: {have[key]!r} -> {value!r} (the model file's default)")
        for key in have:
            if key not in values:
                changes.append(f"models.{name}.{key}: not a field of the model's config; remove it")
    for a, b, new in sorted(edits, key=lambda e: e[0], reverse=True):
        lines[a:b] = new
    return "\n".join(lines), changes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a model section differs from its defaults")
    args = parser.parse_args(argv)
    text = PARAMS.read_text()
    new, changes = sync(text, defaults())
    if args.check:
        if changes:
            print(
                "params.yaml: model sections differ from the models' defaults (run `.venv/bin/python scripts/params_models.py`, or change the default in the model's file):\n  " + "\n  ".join(changes),
                file=sys.stderr,
            )
            return 1
        print("params.yaml: every model section holds its model's defaults")
        return 0
    unresolvable = [c for c in changes if c.endswith("remove it")]
    if new != text:
        PARAMS.write_text(new)
    print("\n".join(changes) if changes else "params.yaml: every model section holds its model's defaults")
    return 1 if unresolvable else 0


if __name__ == "__main__":
    raise SystemExit(main())
