"""dvc.yaml's code dependencies are complete and generated: a stage reruns when any project file its code
imports changes (a model's stage: every file its model file and the train script import, and
no other model's file).

Imports are read from the source (every ``import trendfactory...`` and ``from trendfactory...``
statement, also the ones inside functions, which run just the same), so nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from scripts import stage_deps as generator
from scripts.stage_deps import project_imports
from trendfactory.models.registry import EVALUATE_STAGE, TRAIN_STAGE, get_model_class
from trendfactory.params import model_names

ROOT = Path(__file__).resolve().parents[1]


def stage_deps(stage: str, model: str) -> list[str]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    deps = stages[stage]["deps"]
    return [d.replace("${item.model}", model) for d in deps if isinstance(d, str)]


def uncovered(files: set[str], deps: list[str]) -> list[str]:
    return sorted(f for f in files if not any(f == d or f.startswith(d.rstrip("/") + "/") for d in deps))


@pytest.mark.parametrize("name", model_names())
def test_a_models_train_stage_depends_on_every_file_it_imports(name):
    cls = get_model_class(name)
    needed = project_imports(f"trendfactory.models.zoo.{name}", "trendfactory.stages.train")
    deps = stage_deps(TRAIN_STAGE[cls.kind], name)
    assert not uncovered(needed, deps), f"{TRAIN_STAGE[cls.kind]}@{name}: add to its deps in dvc.yaml: {uncovered(needed, deps)}"
    others = [d for d in deps if "/models/zoo/" in d and d != f"src/trendfactory/models/zoo/{name}.py" and not d.endswith("__init__.py")]
    assert not others, f"{name}'s stage depends on other models' files {others}"
    imported_others = sorted(f for f in needed if "/models/zoo/" in f and not f.endswith((f"/{name}.py", "__init__.py")))
    assert not imported_others, f"{name} imports other model files {imported_others}; move shared code to models/common/"


@pytest.mark.parametrize("stage", sorted(set(EVALUATE_STAGE.values())))
def test_evaluate_stages_depend_on_their_code(stage):
    # the model's own code reaches evaluate through the train stage's outputs (models/, predictions)
    needed = {f for f in project_imports("trendfactory.stages.evaluate") if "/models/" not in f}
    assert not uncovered(needed, stage_deps(stage, "x")), f"{stage}: add to its deps in dvc.yaml: {uncovered(needed, stage_deps(stage, 'x'))}"


def test_a_tabular_model_file_never_imports_torch():
    for name in model_names():
        if get_model_class(name).kind != "tabular":
            continue
        files = project_imports(f"trendfactory.models.zoo.{name}", "trendfactory.stages.train")
        top_level_torch = [f for f in files if any(
            isinstance(n, (ast.Import, ast.ImportFrom)) and ast.unparse(n).split()[1].split(".")[0] == "torch"
            for n in ast.parse((ROOT / f).read_text()).body)]
        assert not top_level_torch, f"{name}: torch imported at module level by {top_level_torch}"


@pytest.mark.parametrize("name", [n for n in model_names() if get_model_class(n).search_space])
def test_a_models_tune_and_tuned_stages_depend_on_every_file_they_import(name):
    for stage, modules in (("tune", ("trendfactory.stages.tune", "trendfactory.tuning")), ("train_tuned", ("trendfactory.stages.train",))):
        needed = project_imports(f"trendfactory.models.zoo.{name}", *modules)
        deps = stage_deps(stage, name)
        assert not uncovered(needed, deps), f"{stage}@{name}: add to its deps in dvc.yaml: {uncovered(needed, deps)}"
    needed = {f for f in project_imports("trendfactory.stages.evaluate") if "/models/" not in f}
    assert not uncovered(needed, stage_deps("evaluate_tuned", name))


def test_dvc_yaml_code_deps_are_what_the_generator_writes(capsys):
    """scripts/stage_deps.py writes every stage's code deps from the imports; a new import
    anywhere fails here until `.venv/bin/python scripts/stage_deps.py` rewrites dvc.yaml."""
    assert generator.main(["--check"]) == 0, capsys.readouterr().err


def test_the_generator_notices_a_stale_list():
    text = (ROOT / "dvc.yaml").read_text()
    stale = text.replace("src/trendfactory/stages/ingest.py", "src/trendfactory/stages/ingest_old.py", 1)
    fixed, changed = generator.render(stale)
    assert changed == ["ingest"] and fixed == text
