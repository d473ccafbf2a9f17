"""Every registered model's search space (run.tune): keys name real params, and values sampled
from it give a valid config (and, for a network, a network that builds)."""

from __future__ import annotations

import optuna
import pytest

from trendfactory.models import create
from trendfactory.models.registry import get_model_class, list_models
from trendfactory.models.search import Choice, Float, Int, apply_values, check_space, suggest
from trendfactory.params import TrainConfig

TUNABLE = [m.split(":")[1] for m in list_models() if get_model_class(m).search_space]


def test_the_boosting_models_and_networks_declare_a_space():
    assert {"logistic", "random_forest", "xgboost", "lightgbm", "catboost", "lstm", "mlp", "transformer"} <= set(TUNABLE)


@pytest.mark.parametrize("name", TUNABLE)
def test_sampled_values_give_a_valid_model(name):
    cls = get_model_class(name)
    check_space(cls, cls.search_space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(4):
        trial = study.ask()
        values = suggest(trial, cls.search_space)
        config, train = apply_values(name, cls.config_class(), TrainConfig() if cls.uses_trainer else None, values, "trial")
        model = create(name, config, horizon=5, seed=0, train=train)
        if cls.uses_trainer:
            model.build(12, 30)  # 12 features, windows of 30 bars
            assert train.lr == values["train.lr"]
        study.tell(trial, 0.0)


def test_a_malformed_space_is_refused():
    cls = get_model_class("lightgbm")
    with pytest.raises(TypeError, match="'depth' is not a field of models.lightgbm"):
        check_space(cls, {"depth": Int(1, 3)})
    with pytest.raises(TypeError, match="a log scale needs low > 0"):
        check_space(cls, {"learning_rate": Float(0.0, 1.0, log=True)})
    with pytest.raises(TypeError, match="a choice needs two options"):
        check_space(cls, {"num_leaves": Choice((4,))})
    with pytest.raises(TypeError, match="'train.lr' is not a field of models.lightgbm"):
        check_space(cls, {"train.lr": Float(1e-4, 1e-2)})
