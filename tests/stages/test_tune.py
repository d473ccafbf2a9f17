"""Stage tune@<model>-<h> and the tuned variant: one Optuna study per walk-forward fold k >= 1 on
the validation blocks of folds 0..k-1 (never fold k's own, where the selection scores it, nor a
later one), fold 0 on params.yaml's configuration, each fold's params in tuned/<m>-h<h>.yaml,
read back by the train stage of <m>_tuned fold by fold; resumable studies, parallel trials on a
local Ray, one-line errors."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import warnings

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
from trendfactory import tuning
from trendfactory.tuning import _process_tag, quotas, studies_dir, study_spec, trial_worker

LGB = {"n_estimators": 25, "early_stopping_rounds": 5, "n_jobs": 1}


def _params(**tune):
    return tiny_params(
        n_symbols=5,
        n_bars=1550,  # three yearly folds: studies for folds 1 (fits fold 0) and 2 (fits folds 0, 1)
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


def _studied(record: dict) -> list[dict]:
    """The folds a study tuned (all but fold 0)."""
    return [f for f in record["folds"] if f["study"] is not None]


def _study(root, record: dict, fold: int):
    import optuna

    return optuna.load_study(study_name=record["folds"][fold]["study"], storage=JournalStorage(JournalFileBackend(str(root / record["storage"]))))


def test_a_study_per_fold_after_the_first_writes_its_best_params_and_plots(project, monkeypatch):
    root, params = project
    record = _tune(root, monkeypatch, params)
    from trendfactory.models.zoo.lightgbm import LightGBM

    n = _folds(root)
    assert n == 3 and [f["fold"] for f in record["folds"]] == list(range(n))
    assert record["folds"][0] == {"fold": 0, "params": {}, "study": None, "note": tuning.UNTUNED}  # nothing precedes fold 0's validation
    for f in _studied(record):
        assert f["scored_folds"] == list(range(f["fold"]))
        assert set(f["params"]) == set(LightGBM.search_space)
        assert sum(f["trials"].values()) == 6
        assert f["default_value"] is not None  # trial 0 is params.yaml's configuration
        assert f["value"] >= f["default_value"]
    assert len({f["study"] for f in _studied(record)}) == n - 1
    plots = {p.name for p in (root / "plots/tune/lightgbm-h5").iterdir()}
    assert plots >= {f"fold_{k:02d}_{kind}.png" for k in range(1, n) for kind in ("history", "intermediate")}
    assert not any(p.startswith("fold_00") for p in plots)
    text = (root / "tuned/lightgbm-h5.yaml").read_text()
    assert text.startswith("# Written by `dvc repro tune@lightgbm-5`")


def test_fold_ks_objective_is_the_pooled_validation_rank_ic_of_folds_before_k(project, monkeypatch):
    """Refit each fold's best params on folds 0..k-1 and pool their validation days: that study's
    value. Only validation rows of folds before k enter it (test never does, nor fold k's own)."""
    root, params = project
    record = _tune(root, monkeypatch, params)  # resumes the finished studies: nothing reruns
    store = root / "data/windows"
    for f in _studied(record):
        config, _ = apply_values("lightgbm", model_config(params, "lightgbm"), None, f["params"], "test")
        frames = []
        for k in range(f["fold"]):
            train, val = (Samples.open(store, 5, k, r) for r in ("train", "val"))
            model = create("lightgbm", config, horizon=5, seed=params.seed).fit(train, val)
            keys = val.keys()
            frames.append(pd.DataFrame({"datetime": keys["datetime"].to_numpy(), "score": model.predict(val).score, "ret": val.returns()}))
        pooled = daily_ic(pd.concat(frames), method="spearman").mean()
        assert f["value"] == pytest.approx(pooled, abs=1e-6)


@pytest.mark.parametrize("fold", [1, 2])
def test_fold_ks_trials_read_only_the_folds_before_k(project, monkeypatch, tmp_path, fold):
    """A trial of fold k's study reads the train and validation blocks of folds 0..k-1 and nothing
    else: not fold k's validation block, on which the selection scores fold k's tuned fit."""
    root, params = project
    monkeypatch.chdir(root)
    read = []
    real = tuning.load_split
    monkeypatch.setattr(tuning, "load_split", lambda role, h, fold: read.append((role, fold)) or real(role, h, fold))
    spec = dataclasses.replace(study_spec(params, "lightgbm", 5, fold, root), journal=tmp_path / "scratch.journal")
    assert trial_worker((spec, 2)) == 2
    assert sorted(set(read)) == sorted((role, k) for k in range(fold) for role in ("train", "val"))


def test_an_interrupted_or_extended_study_resumes_and_answers_as_a_fresh_one(project, monkeypatch):
    root, params = project
    first = _tune(root, monkeypatch, params)
    more = dataclasses.replace(params, tune=dataclasses.replace(params.tune, trials=8))
    record = _tune(root, monkeypatch, more)
    assert all(sum(f["trials"].values()) == 8 for f in _studied(record))  # the 6 finished trials were kept, 2 added
    journals = list((root / ".tuning").glob("lightgbm-h5*.journal"))
    assert len(journals) == 1
    # back to 6 trials: the best of the first 6, as a fresh 6-trial study gives (not of the 8 run)
    assert _tune(root, monkeypatch, params) == first


def test_every_complete_trial_reports_each_of_its_folds_for_pruning(project, monkeypatch):
    import optuna

    root, params = project
    record = _tune(root, monkeypatch, params)
    for k in range(1, _folds(root)):
        study = _study(root, record, k)
        for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
            assert sorted(t.intermediate_values) == list(range(k))
        for t in study.get_trials(states=(optuna.trial.TrialState.PRUNED,)):
            assert len(t.intermediate_values) < k


def test_the_tuned_variant_trains_each_fold_with_its_studys_params(project, monkeypatch):
    root, params = project
    record = _tune(root, monkeypatch, params)
    train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))
    for f in record["folds"]:
        fitted = TrendModel.load(root / f"models/lightgbm_tuned-h5/fold_{f['fold']:02d}/seed_00")
        assert fitted.name == "lightgbm_tuned"
        for key, value in f["params"].items():
            assert getattr(fitted.config, key) == pytest.approx(value)
    preds = pd.read_parquet(root / "data/predictions/lightgbm_tuned-h5/test_h5.parquet")
    assert set(preds["fold"]) == set(range(_folds(root)))
    assert read_tuned("lightgbm", 5, _folds(root)) == [f["params"] for f in record["folds"]]
    # fold 0 is params.yaml's configuration: the same fit, the same predictions as the default model's
    train_stage.main_body(params, argparse.Namespace(model="lightgbm", horizon=5))
    for role in ("val", "test"):
        tuned, plain = (pd.read_parquet(root / f"data/predictions/{m}-h5/{role}_h5.parquet") for m in ("lightgbm_tuned", "lightgbm"))
        pd.testing.assert_frame_equal(tuned[tuned["fold"] == 0].reset_index(drop=True), plain[plain["fold"] == 0].reset_index(drop=True))


def test_trials_run_in_parallel_on_a_local_ray(tmp_path, monkeypatch):
    params = _params(trials=4)
    write_stores(tmp_path, params)
    params = dataclasses.replace(params, parallel=dataclasses.replace(params.parallel, cpus=2))
    record = _tune(tmp_path, monkeypatch, params)
    assert all(sum(f["trials"].values()) == 4 == f["counted"] for f in _studied(record))  # each worker runs its share, not one too many


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
    study = _study(root, record, 1)
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    tag = _process_tag(victim.pid)
    victim.kill()
    victim.wait()
    orphan = study.ask()  # what a SIGTERM mid-trial leaves: RUNNING for ever
    orphan.set_user_attr("process", tag)
    before = len(study.get_trials())
    wanted = tuning.counted(study.get_trials()) + 1  # other tests may have extended the study past the record's tune.trials
    more = dataclasses.replace(params, tune=dataclasses.replace(params.tune, trials=wanted))
    record = _tune(root, monkeypatch, more)
    trials = study.get_trials()
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    retry = [t for t in trials if t.user_attrs.get("retry_of") == orphan.number]
    assert len(retry) == 1 and retry[0].state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert len(trials) == before + 1  # the retry was the one trial added; the killed one does not count
    assert record["folds"][1]["counted"] == wanted
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
    (root / "tuned/lightgbm-h5.yaml").write_text("params: {num_leaves: 8}\n")  # one set for every fold: the old layout
    with pytest.raises(TrendfactoryError, match=r"^tuned/lightgbm-h5.yaml: no `folds` list .*rerun `dvc repro -f tune@lightgbm-5`"):
        train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))
    (root / "tuned/lightgbm-h5.yaml").write_text("folds: [{fold: 0, params: {num_leaves: 8}}]\n")
    with pytest.raises(TrendfactoryError, match=r"^tuned/lightgbm-h5.yaml: params for folds \[0\], the window store has folds 0..2; rerun"):
        train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))
    (root / "tuned/lightgbm-h5.yaml").write_text("folds: [{fold: 0, params: {}}, {fold: 1, params: {num_leaves: 1}}, {fold: 2, params: {}}]\n")
    with pytest.raises(TrendfactoryError, match=r"^tuned/lightgbm-h5.yaml fold 1: models.lightgbm.num_leaves: got 1"):
        train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))
    (root / "tuned/lightgbm-h5.yaml").unlink()
    with pytest.raises(TrendfactoryError, match=r"^tune@lightgbm-5: the window store has 1 fold; .* none precedes fold 0's -- remove it from run.tune, or use split.scheme: walk_forward"):
        tuning.run_studies(params, "lightgbm", 5, 1, None)
    with pytest.raises(TrendfactoryError, match=r"^tuned/lightgbm-h5.yaml: missing; run `dvc repro tune@lightgbm-5`"):
        train_stage.main_body(params, argparse.Namespace(model="lightgbm_tuned", horizon=5))


def test_a_storage_url_holds_the_study(tmp_path, monkeypatch):
    """tune.storage: any Optuna RDB URL (SQLite here; PostgreSQL/MySQL for many machines)."""
    params = _params(trials=3, storage=f"sqlite:///{tmp_path / 'studies.db'}")
    write_stores(tmp_path, params)
    record = _tune(tmp_path, monkeypatch, params)
    assert all(sum(f["trials"].values()) == 3 for f in _studied(record)) and record["storage"].startswith("sqlite:///")
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

    monkeypatch.setattr(tuning, "HEARTBEAT_S", 1)
    monkeypatch.setattr(tuning, "GRACE_S", 2)
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    params = _params(trials=2, storage=url)
    write_stores(tmp_path, params)
    record = _tune(tmp_path, monkeypatch, params)
    with warnings.catch_warnings():  # Optuna calls heartbeats experimental, and expects them inside optimize
        warnings.simplefilter("ignore")
        storage = RDBStorage(url, heartbeat_interval=1, grace_period=2)
        study = optuna.load_study(study_name=record["folds"][1]["study"], storage=storage)
        orphan = study.ask()  # what a kill mid-trial leaves: RUNNING, and its heartbeat stops
    storage.record_heartbeat(orphan._trial_id)
    time.sleep(3)  # past the grace period
    more = dataclasses.replace(params, tune=dataclasses.replace(params.tune, trials=3))
    record = _tune(tmp_path, monkeypatch, more)
    trials = study.get_trials()
    assert trials[orphan.number].state == optuna.trial.TrialState.FAIL
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == orphan.number]
    assert len(retry) == 1 and retry[0].state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert record["folds"][1]["counted"] == 3 and not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def test_experiments_sharing_a_study_stop_at_tune_trials(project, monkeypatch):
    """Two queued experiments run the same study at once, each having counted it before the
    other's trials finished: a worker stops when the study holds tune.trials, whoever ran them."""
    root, params = project
    record = _tune(root, monkeypatch, params)
    wanted = max(tuning.counted(_study(root, record, f["fold"]).get_trials()) for f in _studied(record)) + 2
    monkeypatch.setattr(tuning, "quotas", lambda remaining, workers: [remaining + 3])  # as if 3 trials were unseen at the start
    more = dataclasses.replace(params, tune=dataclasses.replace(params.tune, trials=wanted))
    assert all(f["counted"] == wanted for f in _studied(_tune(root, monkeypatch, more)))


def test_pruning_curves_of_many_trials_fit_their_figure(tmp_path, monkeypatch):
    """50 trials' legend overflowed the intermediate-values figure (matplotlib: "Tight layout not
    applied"): past a handful of trials the plot keeps the curves, with integer fold steps."""
    import matplotlib.axes
    import optuna

    study = optuna.create_study(direction="maximize")
    for i in range(2 * tune_stage.MAX_LEGEND):
        trial = study.ask()
        value = trial.suggest_float("learning_rate", 0.01, 0.3) * i
        for step in range(3):
            trial.report(value + step, step)
        study.tell(trial, value + 2)
    seen = {}
    original = matplotlib.axes.Axes.set_xlabel
    monkeypatch.setattr(matplotlib.axes.Axes, "set_xlabel", lambda ax, label, *a, **k: (seen.setdefault(label, ax), original(ax, label, *a, **k))[1])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        written = tune_stage.save_plots(study, tmp_path, "lightgbm-h5 fold 2", prefix="fold_02_")
    assert written == ["fold_02_history.png", "fold_02_intermediate.png", "fold_02_importance.png"]
    ax = seen["step j: pooled validation after folds 0..j"]
    assert ax.get_legend() is None and len(ax.get_lines()) == 2 * tune_stage.MAX_LEGEND
    assert all(float(t).is_integer() for t in ax.get_xticks())
