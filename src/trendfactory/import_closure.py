"""Which project files a module can run: its ``trendfactory`` imports, followed transitively.

Read from the source with :mod:`ast`, nothing imported: every ``import trendfactory...`` and
``from trendfactory... import ...`` statement counts, those inside functions too (they run just
the same), and a module pulls in its parent packages' ``__init__``. The pipeline's code
dependencies (``stages/code_deps.py``) and the import-graph test are built on it. It imports
nothing of the project, so any module may use it.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # .../trendfactory
SRC = PACKAGE.parent


def module_file(module: str, src: Path = SRC) -> Path | None:
    """The file that defines ``module`` (a package's ``__init__.py``), or None if none does."""
    path = src.joinpath(*module.split("."))
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else None


def imported_names(path: Path) -> list[str]:
    """Every trendfactory module name ``path`` imports, at the top or inside a function
    (``from a import b`` gives ``a`` and ``a.b``: b may be a module)."""
    stat = path.stat()
    return list(_imported_names(str(path), stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=4096)
def _imported_names(path: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    # parsed once per version of the file (mtime and size key the cache): a closure is asked
    # for every model of a kind, and the tests ask for many
    names: list[str] = []
    for node in ast.walk(ast.parse(Path(path).read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("trendfactory")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("trendfactory"):
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return tuple(names)


def module_name(path: Path, src: Path = SRC) -> str:
    """``src/trendfactory/a/b.py`` -> ``trendfactory.a.b`` (a package's ``__init__`` -> the package)."""
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> the project modules it imports (top-level and function-level imports alike;
    ``from pkg import name`` points at pkg.name when that is a module, else at pkg)."""
    files = {module_name(p, src): p for p in (src / "trendfactory").rglob("*.py")}
    return {module: {n for n in imported_names(path) if n in files} - {module} for module, path in files.items()}


def project_imports(*modules: str, src: Path = SRC) -> set[Path]:
    """Every trendfactory file that importing ``modules`` can run (transitively; parent
    packages' ``__init__`` included), as paths relative to ``src`` (``trendfactory/io.py``)."""
    seen: set[Path] = set()
    todo = list(modules)
    while todo:
        module = todo.pop()
        path = module_file(module, src)
        if path is None or path in seen:
            continue
        seen.add(path)
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imported_names(path)
    return {p.relative_to(src) for p in seen}


def source_hash(*modules: str, src: Path = SRC) -> str:
    """SHA-256 of the content of every project file ``modules`` can run (:func:`project_imports`):
    it changes when any of that code does, and only then."""
    digest = hashlib.sha256()
    for rel in sorted(project_imports(*modules, src=src), key=Path.as_posix):
        digest.update(f"{hashlib.sha256((src / rel).read_bytes()).hexdigest()}  {rel.as_posix()}\n".encode())
    return digest.hexdigest()
