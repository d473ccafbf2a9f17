"""Write the code dependencies of every dvc.yaml stage from the imports, so they cannot go stale.

    .venv/bin/python scripts/stage_deps.py          # rewrite dvc.yaml's code deps (prints what changed)
    .venv/bin/python scripts/stage_deps.py --check  # exit 1, naming the stages, when they are stale

A stage reruns when a project file its code can import changes, and only then: its code deps are
the files that importing the stage's module (and, for a model's stages, the model's file)
reaches -- every ``import trendfactory...`` / ``from trendfactory...`` statement, those inside
functions too, parent packages' ``__init__`` included -- read from the source, nothing imported.
A package folder whose every file is reached is written as the folder. A model's train stage
lists ``models/zoo/${item.model}.py`` and the union of what the models of its kind reach, never
another model's file, so editing one model reruns only that model.

In dvc.yaml each stage's ``deps`` is one flow list: the data deps first, as written by hand
(every entry outside ``src/``, and the model's own file), then the code deps this script writes.
tests/test_stage_deps.py runs ``--check``.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "trendfactory"
DVC_YAML = ROOT / "dvc.yaml"
MODEL_FILE = "src/trendfactory/models/zoo/${item.model}.py"
WIDTH = 120


@dataclass(frozen=True)
class Entry:
    """What a stage runs: its modules, the kind of model it trains (its models' files are reached
    too), extra deps the imports cannot show, and whether model code is left out (evaluate
    stages: a model's code reaches them through its train stage's outputs)."""

    modules: tuple[str, ...]
    kind: str | None = None
    tunable_only: bool = False
    extra: tuple[str, ...] = ()
    without_models: bool = False


EVALUATE = Entry(("trendfactory.stages.evaluate",), without_models=True)
STAGES = {
    # validates every model's params section: the registry imports each model file by name
    "check_params": Entry(("trendfactory.stages.check_params",), extra=("src/trendfactory/models",)),
    "ingest": Entry(("trendfactory.stages.ingest",)),
    "featurize": Entry(("trendfactory.stages.featurize",)),
    "window": Entry(("trendfactory.stages.window",)),
    "train": Entry(("trendfactory.stages.train",), kind="tabular"),
    "evaluate": EVALUATE,
    "train_neural": Entry(("trendfactory.stages.train",), kind="network"),
    "evaluate_neural": EVALUATE,
    "train_joint": Entry(("trendfactory.stages.train",), kind="joint"),
    "evaluate_joint": EVALUATE,
    "tune": Entry(("trendfactory.stages.tune", "trendfactory.tuning"), kind="any", tunable_only=True),
    "train_tuned": Entry(("trendfactory.stages.train",), kind="any", tunable_only=True),
    "evaluate_tuned": EVALUATE,
    "ensemble": Entry(("trendfactory.stages.ensemble",)),
    "compare": Entry(("trendfactory.stages.compare",)),
}


def _module_file(module: str) -> Path | None:
    path = SRC.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_names(path: Path) -> list[str]:
    """Every trendfactory module name ``path`` imports, at the top or inside a function
    (``from a import b`` gives ``a`` and ``a.b``: b may be a module)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("trendfactory")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("trendfactory"):
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return names


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (top-level and function-level imports alike;
    ``from pkg import name`` points at pkg.name when that is a module, else at pkg)."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {module: {n for n in imported_names(path) if n in files} - {module} for module, path in files.items()}


def project_imports(*modules: str) -> set[str]:
    """Repo-relative paths of every trendfactory file that importing ``modules`` can run
    (transitively; parent packages' ``__init__`` included)."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        path = _module_file(module)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imported_names(path)
    return {p.relative_to(ROOT).as_posix() for p in seen}


def _models(kind: str, tunable_only: bool) -> list[str]:
    sys.path.insert(0, str(SRC))
    import trendfactory  # noqa: F401  (sets the numerical paths before numpy loads)
    from trendfactory.models.registry import get_model_class
    from trendfactory.params import model_names

    out = []
    for name in model_names():
        cls = get_model_class(name)
        if (kind == "any" or cls.kind == kind) and (cls.search_space or not tunable_only):
            out.append(name)
    return out


def _collapse(files: set[str]) -> list[str]:
    """``files`` with every package folder they cover completely written as the folder
    (never models/zoo: a model's stage must not depend on the other models' files)."""
    out = set(files)
    folders = sorted({str(Path(f).parent) for f in files}, key=lambda d: d.count("/"))
    for folder in folders:
        path = ROOT / folder
        if folder.endswith("models/zoo") or path == PACKAGE or not (path / "__init__.py").is_file():
            continue
        inside = {p.relative_to(ROOT).as_posix() for p in path.rglob("*.py")}
        if inside and inside <= files:  # drops its files and any subfolder collapsed before it
            out = {f for f in out if not f.startswith(folder + "/")} | {folder}
    return sorted(out)


def code_deps(stage: str) -> list[str]:
    """The code deps of ``stage``: what its modules (and its models' files) import."""
    entry = STAGES[stage]
    files = project_imports(*entry.modules)
    if entry.kind:
        for name in _models(entry.kind, entry.tunable_only):
            files |= project_imports(f"trendfactory.models.zoo.{name}")
        files = {f for f in files if not (f.startswith("src/trendfactory/models/zoo/") and not f.endswith("__init__.py"))}
    if entry.without_models:
        files = {f for f in files if "/models/" not in f}
    deps = _collapse(files)
    for extra in entry.extra:
        deps = [d for d in deps if not d.startswith(extra + "/")]
        deps.append(extra)
    return sorted(set(deps))


_DEPS = re.compile(r"^(?P<indent> +)deps: \[(?P<body>[^\]]*)\]", re.M)
_STAGE = re.compile(r"^  (?P<name>[a-z_]+):\n", re.M)


def _flow(items: list[str], indent: str) -> str:
    """``deps: [a, b, ...]`` wrapped at WIDTH, continuation lines indented under the stage."""
    lines, line = [], f"{indent}deps: ["
    for i, item in enumerate(items):
        quoted = f'"{item}"' if "${" in item else item  # `{` would open a mapping inside a flow list
        piece = quoted + ("]" if i == len(items) - 1 else ",")
        if len(line) + 1 + len(piece) > WIDTH and not line.endswith("["):
            lines.append(line)
            line = indent + "  " + piece
        else:
            line += ("" if line.endswith("[") else " ") + piece
    lines.append(line)
    return "\n".join(lines)


def render(text: str) -> tuple[str, list[str]]:
    """dvc.yaml ``text`` with every stage's code deps written from the imports; the stages whose
    deps changed."""
    starts = [(m.start(), m["name"]) for m in _STAGE.finditer(text)]
    changed, out, last = [], [], 0
    for match in _DEPS.finditer(text):
        stage = max((s for s in starts if s[0] < match.start()), default=(0, None))[1]
        if stage not in STAGES:
            continue
        current = [d.strip().strip('"') for d in match["body"].replace("\n", " ").split(",") if d.strip()]
        data = [d for d in current if not d.startswith("src/") or d == MODEL_FILE]
        flow = _flow(data + code_deps(stage), match["indent"])
        if flow != match.group(0):
            changed.append(stage)
        out += [text[last:match.start()], flow]
        last = match.end()
    out.append(text[last:])
    return "".join(out), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when dvc.yaml's code deps are stale")
    args = parser.parse_args(argv)
    text = DVC_YAML.read_text()
    new, changed = render(text)
    missing = sorted(set(STAGES) - {m["name"] for m in _STAGE.finditer(text)})
    if missing:
        print(f"dvc.yaml: no stage {', '.join(missing)} (scripts/stage_deps.py STAGES names it); update STAGES", file=sys.stderr)
        return 1
    if args.check:
        if changed:
            print(f"dvc.yaml: code deps stale for {', '.join(changed)}; run `.venv/bin/python scripts/stage_deps.py`",
                  file=sys.stderr)
            return 1
        print("dvc.yaml: code deps up to date")
        return 0
    if changed:
        DVC_YAML.write_text(new)
    print(f"dvc.yaml: code deps rewritten for {', '.join(changed)}" if changed else "dvc.yaml: code deps up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
