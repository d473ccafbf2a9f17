"""The registry: names, errors, registration checks."""

from __future__ import annotations

import dataclasses

import pytest

from trendfactory.errors import ParamsError
from trendfactory.models import TrendModel, create, get_model_class, list_models, register, resolve
from trendfactory.params import model_names


def test_every_zoo_file_registers_its_model():
    assert {n.split(":")[1] for n in list_models()} == set(model_names())


def test_names_resolve_short_and_full():
    assert resolve("xgboost") == "boosting:xgboost"
    assert resolve("boosting:xgboost") == "boosting:xgboost"
    assert get_model_class("momentum").family == "baseline"
    assert list_models("classical") == ["classical:logistic", "classical:random_forest", "classical:svm"]


@pytest.mark.parametrize("name", ["xgb", "boosting:majority", "", "neural:xgboost"])
def test_unknown_name_lists_the_available_ones(name):
    with pytest.raises(KeyError, match=r"unknown model .*available: baseline:majority, baseline:momentum, .*boosting:xgboost"):
        resolve(name)


def test_create_validates_overrides_like_params():
    assert create("xgboost", max_depth=2).config.max_depth == 2
    with pytest.raises(ParamsError, match=r"models\.xgboost\.max_depht: unknown key"):
        create("xgboost", max_depht=2)
    with pytest.raises(ParamsError, match=r"models\.lightgbm\.num_leaves: got 1, expected an integer >= 2"):
        create("lightgbm", num_leaves=1)


@dataclasses.dataclass(frozen=True)
class _Config:
    width: int = 4


def test_registration_checks_the_declaration():
    tab = {"kind": "tabular", "config": _Config}
    with pytest.raises(TypeError, match="does not implement _fit, _predict, _save_state, _load_state"):
        register("baseline", "majority", **tab)(type("Incomplete", (TrendModel,), {}))
    hooks = {h: (lambda self, *a: None) for h in ("_fit", "_predict", "_save_state", "_load_state")}
    with pytest.raises(ValueError, match="family 'exotic'"):
        register("exotic", "majority", **tab)
    with pytest.raises(ValueError, match="kind 'sequence' is not one of tabular, network, joint"):
        register("baseline", "mystery", kind="sequence", config=_Config)
    with pytest.raises(TypeError, match="config must be a frozen dataclass"):
        register("baseline", "mystery", kind="tabular", config=dict)
    with pytest.raises(TypeError, match="every field of Bare needs a default"):
        register("baseline", "mystery", kind="tabular", config=dataclasses.dataclass(frozen=True)(type("Bare", (), {"__annotations__": {"x": int}})))
    with pytest.raises(TypeError, match="declared kind 'network' but Mystery does not train through the torch trainer"):
        register("neural", "mystery", kind="network", config=_Config)(type("Mystery", (TrendModel,), hooks))
    with pytest.raises(TypeError, match="declared kind 'tabular' but Mystery trains through the torch trainer"):
        register("neural", "mystery", kind="tabular", config=_Config)(type("Mystery", (TrendModel,), {**hooks, "uses_trainer": True}))
    misplaced = type("Misplaced", (TrendModel,), {**hooks, "__module__": "trendfactory.models.zoo.other"})
    with pytest.raises(TypeError, match=r"a model's file is models/zoo/mystery\.py"):
        register("baseline", "mystery", **tab)(misplaced)
    with pytest.raises(ValueError, match="already registered"):
        register("baseline", "majority", **tab)(type("Other", (TrendModel,), hooks))
    assert get_model_class("majority").__name__ == "Majority"


def test_each_model_declares_its_kind_config_and_run_list():
    from trendfactory.models.registry import RUN_LIST

    for full in list_models():
        cls = get_model_class(full)
        assert cls.kind in RUN_LIST and dataclasses.is_dataclass(cls.config_class), full
        assert (cls.kind == "tabular") == (not cls.uses_trainer), full
    assert get_model_class("xgboost").kind == "tabular" and get_model_class("lstm").kind == "network"
    assert get_model_class("dual_tower").kind == "joint"


def test_models_command_lists_every_model_with_flags(capsys):
    from trendfactory.cli import main

    main(["models"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["model", "family", "run", "list", "sequences", "gpu", "description"]
    listed = {line.split()[0]: line.split()[1:5] for line in out[1:]}
    assert set(listed) == set(list_models())
    assert listed["boosting:xgboost"] == ["boosting", "run.models", "no", "yes"]
