"""Stage tune@<model>-<h> and the tuned variant: an Optuna study on the walk-forward folds'
validation blocks, its best params in tuned/<m>-h<h>.yaml, read back by the train stage of
<m>_tuned; resumable studies, parallel trials on a local Ray, one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from tests.pipeline_helpers import tiny_params, write_stores
from trendfactory.errors import ParamsError, TrendfactoryError
from trendfactory.evaluation.metrics import daily_ic
from trendfactory.models import Samples, TrendModel, create, model_config
from trendfactory.models.registry import check_tunable
from trendfactory.models.search import apply_values, read_tuned
from trendfactory.stages import train as train_stage
from trendfactory.stages import tune as tune_stage
from trendfactory.tuning import _process_tag, quotas, studies_dir

LGB = {"n_estimators": 25, "early_stopping_rounds": 5, "n_jobs": 1}


def _params(**tune):
    return tiny_params(
        n_symbols=5,
        n_bars=1300,
        horizons=(5,),
        split={"scheme": "walk_forward", "test_start": "2003-01-01", "fold": 1, "val_years": 1, "embargo": 5},
        run={"models": ["majority", "lightgbm"], "neural_models": [], "joint_models": [], "tune": ["lightgbm"]},
        models={"lightgbm": LGB},
        tune={"trials": 6, "startup_trials": 2, **tune},
        parallel={"cpus": 1},
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("tune_stage")
    params = _params()
    write_stores(root, params)
    return root, params


def _folds(root) -> int:
    from trendfactory.windows.reader import WindowSplit

    return WindowSplit.open(root / "data/windows").n_folds


def _tune(root, monkeypatch, params, horizon=5):
    monkeypatch.chdir(root)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    tune_stage.main_body(params, argparse.Namespace(model="lightgbm", horizon=horizon))
    return yaml.safe_load((root / "tuned/lightgbm-h5.yaml").read_text())


def test_a_study_writes_its_best_params_and_plots(project, monkeypatch):
    root, params = project
    record = _tune(root, monkeypatch, params)
    from trendfactory.models.zoo.lightgbm import LightGBM

    assert set(record["params"]) == set(LightGBM.search_space)
    assert sum(record["trials"].values()) == 6
    assert record["default_value"] is not None  # trial 0 is params.yaml's configuration
    assert record["value"] >= record["default_value"]
    assert {p.name for p in (root / "plots/tune/lightgbm-h5").iterdir()} >= {"history.png", "intermediate.png"}
    text = (root / "tuned/lightgbm-h5.yaml").read_text()
    assert text.startswith("# Written by `dvc repro tune@lightgbm-5`")


def test_the_objective_is_the_pooled_validation_rank_ic_of_the_folds(project, monkeypatch):
    """Refit the best params fold by fold here and pool the validation days: the study's value.
    Only validation rows enter it (test never does)."""
    root, params = project
    record = _tune(root, monkeypatch, params)  # resumes the finished study: nothing reruns
    config, _ = apply_values("lightgbm", model_config(params, "lightgbm"), None, record["params"], "test")
    store = root / "data/windows"
    frames = []
    for k in range(_folds(root)):
        train, val = (Samples.open(store, 5, k, r) for r in ("train", "val"))
        model = create("lightgbm", config, horizon=5, seed=params.seed).fit(train, val)
        keys = val.keys()
        frames.append(pd.DataFrame({"datetime": keys["datetime"].to_numpy(), "score": model.predict(val).score, "ret": val.returns()}))
    pooled = daily_ic(pd.concat(frames), method="spearman").mean()
    assert record["value"] == pytest.approx(pooled, abs=1e-6)


def test_an_interrupted_or_extended_study_resumes(project, monkeypatch):
    root, params = project
    _tune(root, monkeypatch, params)
    more = dataclasses.replace(params, tune=dataclasses.replace(params.tune, trials=8))
    record = _tune(root, monkeypatch, more)
    assert sum(record["trials"].values()) == 8  # the 6 finished trials were kept, 2 added
    journals = list((root / ".tuning").glob("lightgbm-h5*.journal"))
    assert len(journals) == 1


def test_every_complete_trial_reports_each_fold_for_pruning(project, monkeypatch):
    import optuna

    root, params = project
    assert _folds(root) >= 2
    record = _tune(root, monkeypatch, params)

    study = optuna.load_study(study_name=record["study"], storage=JournalStorage(JournalFileBackend(str(root / record["storage"]))))
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        assert sorted(t.intermediate_values) == list(range(_folds(root)))
    for t in study.get_trials(states=(optuna.trial.TrialState.PRUNED,)):
        assert len(t.intermediate_values) < _folds(root)


def test_the_tuned_variant_trains_with_the_study_params(project, monkeypatch):
    root, params = project
    record = _tune(root, monkeypatch, params)
    train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))
    last = _folds(root) - 1
    fitted = TrendModel.load(root / f"models/lightgbm_tuned-h5/fold_{last:02d}/seed_00")
    assert fitted.name == "lightgbm_tuned"
    for key, value in record["params"].items():
        assert getattr(fitted.config, key) == pytest.approx(value)
    preds = pd.read_parquet(root / "data/predictions/lightgbm_tuned-h5/test_h5.parquet")
    assert set(preds["fold"]) == set(range(_folds(root)))
    assert read_tuned("lightgbm", 5) == record["params"]


def test_trials_run_in_parallel_on_a_local_ray(tmp_path, monkeypatch):
    params = _params(trials=4)
    write_stores(tmp_path, params)
    params = dataclasses.replace(params, parallel=dataclasses.replace(params.parallel, cpus=2))
    record = _tune(tmp_path, monkeypatch, params)
    assert sum(record["trials"].values()) == 4 == record["counted"]  # each worker runs its share, not one too many


def test_trials_are_shared_exactly():
    assert quotas(7, 2) == [4, 3] and quotas(2, 8) == [1, 1] and quotas(0, 3) == [] and sum(quotas(30, 4)) == 30


def test_temporary_and_queued_experiments_use_the_projects_studies(tmp_path):
    """dvc exp run --temp and dvc queue run the stage in <project>/.dvc/tmp/exps/<run>/: the study
    journal is the project's own, so they resume and share studies with the workspace."""
    assert studies_dir(tmp_path / "proj") == tmp_path / "proj/.tuning"
    assert studies_dir(tmp_path / "proj/.dvc/tmp/exps/tmpab12cd") == tmp_path / "proj/.tuning"
    assert studies_dir(tmp_path / "proj/.dvc/tmp/exps/run/tmpab12cd") == tmp_path / "proj/.tuning"


def test_a_trial_left_running_by_a_killed_process_is_failed_and_retried(project, monkeypatch):
    import optuna

    root, params = project
    record = _tune(root, monkeypatch, params)
    study = optuna.load_study(study_name=record["study"], storage=JournalStorage(JournalFileBackend(str(root / record["storage"]))))
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    tag = _process_tag(victim.pid)
    victim.kill()
    victim.wait()
    orphan = study.ask()  # what a SIGTERM mid-trial leaves: RUNNING for ever
    orphan.set_user_attr("process", tag)
    before = len(study.get_trials())
    wanted = record["counted"] + 1  # other tests may have extended the study
    more = dataclasses.replace(params, tune=dataclasses.replace(params.tune, trials=wanted))
    record = _tune(root, monkeypatch, more)
    trials = study.get_trials()
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == orphan.number]
    assert len(retry) == 1 and retry[0].state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert len(trials) == before + 1  # the retry was the one trial added; the killed one does not count
    assert record["counted"] == wanted
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def test_refusals_are_one_line(project, monkeypatch):
    root, params = project
    with pytest.raises(ParamsError, match=r"dual_tower is trained for every horizon jointly"):
        check_tunable(params.run, "dual_tower")
    with pytest.raises(ParamsError, match=r"majority declares no search space"):
        check_tunable(params.run, "majority")
    with pytest.raises(ParamsError, match=r"xgboost is not in run.models; add it there"):
        check_tunable(params.run, "xgboost")
    monkeypatch.chdir(root)
    (root / "tuned/lightgbm-h5.yaml").write_text("params: [1, 2\n")
    with pytest.raises(TrendfactoryError, match=r"^tuned/lightgbm-h5.yaml: not valid YAML .*rerun `dvc repro -f tune@lightgbm-5`"):
        train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))
    (root / "tuned/lightgbm-h5.yaml").write_text("params: {num_leaves: 1}\n")
    with pytest.raises(TrendfactoryError, match=r"^tuned/lightgbm-h5.yaml: models.lightgbm.num_leaves: got 1"):
        train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))
    (root / "tuned/lightgbm-h5.yaml").unlink()
    with pytest.raises(TrendfactoryError, match=r"^tuned/lightgbm-h5.yaml: missing; run `dvc repro tune@lightgbm-5`"):
        train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))


def test_a_storage_url_holds_the_study(tmp_path, monkeypatch):
    """tune.storage: any Optuna RDB URL (SQLite here; PostgreSQL/MySQL for many machines)."""
    params = _params(trials=3, storage=f"sqlite:///{tmp_path / 'studies.db'}")
    write_stores(tmp_path, params)
    record = _tune(tmp_path, monkeypatch, params)
    assert sum(record["trials"].values()) == 3 and record["storage"].startswith("sqlite:///")
    assert (tmp_path / "studies.db").is_file() and not (tmp_path / ".tuning").exists()
    bad = dataclasses.replace(params, tune=dataclasses.replace(params.tune, storage="nosuchdb://x"))
    with pytest.raises(TrendfactoryError, match=r"^tune.storage 'nosuchdb://x': cannot open an Optuna study there"):
        _tune(tmp_path, monkeypatch, bad)


def test_a_killed_trial_in_an_rdb_study_is_failed_by_its_heartbeat_and_retried(tmp_path, monkeypatch):
    """RDB storage: a trial whose process died stops beating; after the grace period the next run
    of the study marks it failed, retries it once, and still ends with exactly tune.trials trials."""
    import time
    import warnings

    import optuna
    from optuna.storages import RDBStorage

    from trendfactory import tuning

    monkeypatch.setattr(tuning, "HEARTBEAT_S", 1)
    monkeypatch.setattr(tuning, "GRACE_S", 2)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    params = _params(trials=2, storage=url)
    write_stores(tmp_path, params)
    record = _tune(tmp_path, monkeypatch, params)
    with warnings.catch_warnings():  # Optuna calls heartbeats experimental, and expects them inside optimize
        warnings.simplefilter("ignore")
        storage = RDBStorage(url, heartbeat_interval=1, grace_period=2)
        study = optuna.load_study(study_name=record["study"], storage=storage)
        orphan = study.ask()  # what a kill mid-trial leaves: RUNNING, and its heartbeat stops
    storage.record_heartbeat(orphan._trial_id)
    time.sleep(3)  # past the grace period
    more = dataclasses.replace(params, tune=dataclasses.replace(params.tune, trials=3))
    record = _tune(tmp_path, monkeypatch, more)
    trials = study.get_trials()
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retry) == 1 and retry[0].state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert record["counted"] == 3 and not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def test_experiments_sharing_a_study_stop_at_tune_trials(project, monkeypatch):
    """Two queued experiments run the same study at once, each having counted it before the
    other's trials finished: a worker stops when the study holds tune.trials, whoever ran them."""
    from trendfactory import tuning

    root, params = project
    record = _tune(root, monkeypatch, params)
    wanted = record["counted"] + 2
    monkeypatch.setattr(tuning, "quotas", lambda remaining, workers: [remaining + 3])  # as if 3 trials were unseen at the start
    more = dataclasses.replace(params, tune=dataclasses.replace(params.tune, trials=wanted))
    assert _tune(root, monkeypatch, more)["counted"] == wanted
