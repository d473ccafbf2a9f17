"""The registry: names, errors, registration checks."""

from __future__ import annotations

import pytest

from trendfactory.errors import ParamsError
from trendfactory.models import TrendModel, create, get_model_class, list_models, register, resolve
from trendfactory.params import model_names


def test_every_params_section_has_a_model_and_back():
    assert {n.split(":")[1] for n in list_models()} == set(model_names())


def test_names_resolve_short_and_full():
    assert resolve("xgboost") == "boosting:xgboost"
    assert resolve("boosting:xgboost") == "boosting:xgboost"
    assert get_model_class("momentum").family == "baseline"
    assert list_models("classical") == ["classical:logistic", "classical:random_forest"]


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


def test_registration_checks_the_contract():
    with pytest.raises(TypeError, match="does not implement _fit, _predict, _save_state, _load_state"):
        register("baseline", "majority")(type("Incomplete", (TrendModel,), {}))
    hooks = {h: (lambda self, *a: None) for h in ("_fit", "_predict", "_save_state", "_load_state")}
    with pytest.raises(TypeError, match=r"no params section models\.mystery"):
        register("baseline", "mystery")(type("Mystery", (TrendModel,), hooks))
    with pytest.raises(ValueError, match="family 'exotic'"):
        register("exotic", "majority")
    with pytest.raises(ValueError, match="already registered"):
        register("baseline", "majority")(type("Other", (TrendModel,), hooks))
    assert get_model_class("majority").__name__ == "Majority"


def test_models_command_lists_every_model_with_flags(capsys):
    from trendfactory.cli import main

    main(["models"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["model", "family", "sequences", "gpu", "description"]
    listed = {line.split()[0]: line.split()[1:4] for line in out[1:]}
    assert set(listed) == set(list_models())
    assert listed["boosting:xgboost"] == ["boosting", "no", "yes"]
