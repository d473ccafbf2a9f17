"""Stage `code_deps`: the code each stage runs, as one small file per stage kind.

A stage must rerun when a project file its code can import changes, and only then. Listing
those files in dvc.yaml by hand goes stale at the first new import, and generating the lists
into dvc.yaml made it long (the same thirty paths in ten stages). Instead this stage, which
depends on the whole package, reads the imports from the source (``import_closure``) and writes
``data/code_deps/<kind>.txt``: the SHA-256 and path of every file that kind of stage can run.
Each stage depends on its kind's file, so an edit reruns exactly the stages whose code it
touches, and the lists are computed on every run, so they cannot go stale.

A model's stages depend on their own model file directly in dvc.yaml; their kind's file holds
what the model files of that kind and the stage import, never a model file itself, so editing
one model reruns only that model. Evaluate stages leave model code out: it reaches them through
the train stage's outputs.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from pathlib import Path

from trendfactory.errors import TrendfactoryError
from trendfactory.import_closure import PACKAGE, SRC, project_imports
from trendfactory.io import atomic_dir
from trendfactory.paths import CODE_DEPS_DIR
from trendfactory.runtime import configure_logging
from trendfactory.stages.common import log

ZOO = Path("trendfactory/models/zoo")
MODELS = Path("trendfactory/models")


@dataclass(frozen=True)
class StageCode:
    """What a kind of stage runs: its modules; the kind of model it trains (what those models'
    files import counts, the files themselves do not: each is the item's own dep); whether
    every model file counts (check_params imports them all) or none (evaluate)."""

    modules: tuple[str, ...]
    model_kind: str | None = None
    tunable_only: bool = False
    every_model_file: bool = False
    without_models: bool = False


EVALUATE = StageCode(("trendfactory.stages.evaluate",), without_models=True)
STAGE_CODE = {
    "check_params": StageCode(("trendfactory.stages.check_params",), every_model_file=True),
    "ingest": StageCode(("trendfactory.stages.ingest",)),
    "featurize": StageCode(("trendfactory.stages.featurize",)),
    "window": StageCode(("trendfactory.stages.window",)),
    "train_tabular": StageCode(("trendfactory.stages.train",), model_kind="tabular"),
    "train_network": StageCode(("trendfactory.stages.train",), model_kind="network"),
    "train_joint": StageCode(("trendfactory.stages.train",), model_kind="joint"),
    "tune": StageCode(("trendfactory.stages.tune", "trendfactory.tuning"), model_kind="any", tunable_only=True),
    "train_tuned": StageCode(("trendfactory.stages.train",), model_kind="any", tunable_only=True),
    "evaluate": EVALUATE,
    "ensemble": StageCode(("trendfactory.stages.ensemble",)),
    "compare": StageCode(("trendfactory.stages.compare",)),
}


def models_of(kind: str, tunable_only: bool = False) -> list[str]:
    """The registered models of ``kind`` ("any": all), only those with a search space if asked."""
    from trendfactory.models.registry import get_model_class
    from trendfactory.params import model_names

    classes = [get_model_class(name) for name in model_names()]
    return [c.name for c in classes if kind in ("any", c.kind) and (c.search_space or not tunable_only)]


def stage_files(code: StageCode, src: Path = SRC) -> set[Path]:
    """The files (relative to ``src``) a stage of this kind can run, model files aside."""
    files = project_imports(*code.modules, src=src)
    if code.model_kind:
        for name in models_of(code.model_kind, code.tunable_only):
            files |= project_imports(f"trendfactory.models.zoo.{name}", src=src)
        files = {f for f in files if f.parent != ZOO or f.name == "__init__.py"}
    if code.every_model_file:
        files |= {p.relative_to(src) for p in (src / MODELS).rglob("*.py")}
    if code.without_models:
        files = {f for f in files if not f.is_relative_to(MODELS)}
    return files


def fingerprint(name: str, files: set[Path], src: Path = SRC) -> str:
    """The text of ``data/code_deps/<name>.txt``: one ``sha256  path`` line per file, sorted."""
    lines = [f"# the code that {name} stages run (stage code_deps; a changed line reruns them)"]
    for rel in sorted(files, key=lambda p: p.as_posix()):
        lines.append(f"{hashlib.sha256((src / rel).read_bytes()).hexdigest()}  {rel.as_posix()}")
    return "\n".join(lines) + "\n"


def write_all(target: Path = CODE_DEPS_DIR, src: Path = SRC) -> dict[str, int]:
    """Write every kind's file into ``target`` (replaced whole); the number of files of each."""
    counts = {}
    with atomic_dir(target) as tmp:
        for name, code in STAGE_CODE.items():
            files = stage_files(code, src)
            (tmp / f"{name}.txt").write_text(fingerprint(name, files, src))
            counts[name] = len(files)
    return counts


def main() -> None:
    configure_logging("code_deps")
    try:
        counts = write_all()
    except TrendfactoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info("%s: %s", CODE_DEPS_DIR, ", ".join(f"{k} {n} files" for k, n in counts.items()))
    log.info("read from %s", PACKAGE)


if __name__ == "__main__":
    main()
