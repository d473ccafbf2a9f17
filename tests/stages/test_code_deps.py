"""Stage code deps: each stage reruns when a project file its code can import changes, and only then.

dvc.yaml gives every stage one ``data/code_deps/<kind>.txt`` (written by the code_deps stage from
the imports, read from the source: every ``import trendfactory...`` and ``from trendfactory...``
statement, those inside functions too); a model's stages also depend on their own model file."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest
import yaml

from trendfactory.import_closure import SRC, project_imports
from trendfactory.models.registry import EVALUATE_STAGE, TRAIN_STAGE, get_model_class
from trendfactory.params import model_names
from trendfactory.stages.code_deps import STAGE_CODE, fingerprint, stage_files, write_all

ROOT = Path(__file__).resolve().parents[2]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
MODEL_FILE = "src/trendfactory/models/zoo/${item.model}.py"


def code_kind(stage: str) -> str:
    """The one code file a dvc.yaml stage depends on."""
    kinds = [Path(d).stem for d in STAGES[stage]["deps"] if str(d).startswith("data/code_deps/")]
    assert len(kinds) == 1, f"dvc.yaml: {stage} must depend on one data/code_deps/<kind>.txt, has {kinds}"
    return kinds[0]


def covered(stage: str, model: str | None = None) -> set[Path]:
    """What a stage's deps cover: its kind's files, plus its own model file."""
    files = stage_files(STAGE_CODE[code_kind(stage)])
    if model and MODEL_FILE in STAGES[stage]["deps"]:
        files.add(Path(f"trendfactory/models/zoo/{model}.py"))
    return files


def test_every_stage_depends_on_one_code_file_and_every_code_file_is_used():
    used = {code_kind(s) for s in STAGES if s != "code_deps"}
    assert used == set(STAGE_CODE)
    assert STAGES["code_deps"]["deps"] == ["src/trendfactory"]
    assert not [d for s in STAGES.values() for d in s["deps"] if str(d).startswith("src/") and d not in (MODEL_FILE, "src/trendfactory")]


@pytest.mark.parametrize("name", model_names())
def test_a_models_train_stage_covers_every_file_it_imports_and_no_other_model(name):
    stage = TRAIN_STAGE[get_model_class(name).kind]
    needed = project_imports(f"trendfactory.models.zoo.{name}", "trendfactory.stages.train")
    have = covered(stage, name)
    assert needed <= have, f"{stage}@{name}: not covered {sorted(map(str, needed - have))}"
    others = [f for f in have if f.parent.name == "zoo" and f.name not in (f"{name}.py", "__init__.py")]
    assert not others, f"{name}'s stage depends on other models' files {others}"
    imported_others = [f for f in needed if f.parent.name == "zoo" and f.name not in (f"{name}.py", "__init__.py")]
    assert not imported_others, f"{name} imports other model files {imported_others}; move shared code to models/common/"


@pytest.mark.parametrize("name", [n for n in model_names() if get_model_class(n).search_space])
def test_a_models_tune_and_tuned_stages_cover_every_file_they_import(name):
    for stage, modules in (("tune", ("trendfactory.stages.tune", "trendfactory.tuning")), ("train_tuned", ("trendfactory.stages.train",))):
        needed = project_imports(f"trendfactory.models.zoo.{name}", *modules)
        assert needed <= covered(stage, name), f"{stage}@{name}: not covered {sorted(map(str, needed - covered(stage, name)))}"


@pytest.mark.parametrize("stage", sorted({*EVALUATE_STAGE.values(), "evaluate_tuned"}))
def test_evaluate_stages_cover_their_code_but_no_model_code(stage):
    # a model's own code reaches evaluate through its train stage's outputs (models/, predictions)
    needed = {f for f in project_imports("trendfactory.stages.evaluate") if "models" not in f.parts}
    assert needed <= covered(stage) and not any("models" in f.parts for f in covered(stage))


@pytest.mark.parametrize("stage", ["check_params", "ingest", "featurize", "window", "ensemble", "compare"])
def test_other_stages_cover_their_module(stage):
    needed = project_imports(f"trendfactory.stages.{stage}")
    assert needed <= covered(stage)


def test_a_tabular_model_file_never_imports_torch():
    for name in model_names():
        if get_model_class(name).kind != "tabular":
            continue
        files = project_imports(f"trendfactory.models.zoo.{name}", "trendfactory.stages.train")
        top_level_torch = [f for f in files if any(isinstance(n, (ast.Import, ast.ImportFrom)) and ast.unparse(n).split()[1].split(".")[0] == "torch" for n in ast.parse((SRC / f).read_text()).body)]
        assert not top_level_torch, f"{name}: torch imported at module level by {top_level_torch}"


def test_fingerprint_is_sorted_hashes_of_the_files(tmp_path):
    (tmp_path / "trendfactory").mkdir()
    (tmp_path / "trendfactory" / "b.py").write_text("x = 1\n")
    (tmp_path / "trendfactory" / "a.py").write_text("")
    text = fingerprint("k", {Path("trendfactory/b.py"), Path("trendfactory/a.py")}, src=tmp_path)
    lines = text.splitlines()
    assert lines[0].startswith("#") and [ln.split()[1] for ln in lines[1:]] == ["trendfactory/a.py", "trendfactory/b.py"]
    assert lines[1].split()[0] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"  # sha256 of b""


def test_an_edit_changes_exactly_the_code_files_of_the_stages_that_run_it(tmp_path):
    """Measured on a copy of the package: which kinds' files change when one file is edited."""
    src = tmp_path / "src"
    shutil.copytree(SRC / "trendfactory", src / "trendfactory", ignore=shutil.ignore_patterns("__pycache__"))
    before = tmp_path / "before"
    write_all(before, src=src)

    def changed_by(rel: str) -> set[str]:
        path = src / rel
        original = path.read_text()
        path.write_text(original + "\n# edited\n")
        try:
            after = tmp_path / "after"
            write_all(after, src=src)
            return {p.stem for p in before.glob("*.txt") if p.read_text() != (after / p.name).read_text()}
        finally:
            path.write_text(original)

    # one model's file: only check_params (which validates every model's section); the model's
    # own items depend on the file directly
    assert changed_by("trendfactory/models/zoo/xgboost.py") == {"check_params"}
    # the boosting helpers: the tabular trainers, tuning and the checks, nothing downstream
    assert changed_by("trendfactory/models/common/boosting.py") == {"check_params", "train_tabular", "tune", "train_tuned"}
    # the shared trainer: the networks, the joint model, tuning; never evaluate or the tabular models
    assert changed_by("trendfactory/models/common/trainer.py") == {"check_params", "train_network", "train_joint", "tune", "train_tuned"}
    # the plotting code: the stages that draw
    assert changed_by("trendfactory/evaluation/plots.py") == {"evaluate", "compare"}
    # the bottom layer: every stage
    assert changed_by("trendfactory/errors.py") == set(STAGE_CODE)
