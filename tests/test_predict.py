"""`trendfactory predict`: scoring new bars with a trained model (trendfactory.scoring).

A tiny trained project is built in a temp dir with the stages' own functions (ingest,
featurize, window), two small models are fitted and saved, and the bars are written to a CSV.
The proof that scoring reuses the pipeline's featurize/window code and the train-fitted scaler:
scoring the full-history CSV gives, on the test split's rows, exactly the predictions the
evaluate path gives from the window store.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from trendfactory.cli import main
from trendfactory.errors import TrendfactoryError
from trendfactory.models import Samples, TrendModel, create, model_config
from trendfactory.models.base import PREDICTION_COLUMNS
from trendfactory.params import load_params
from trendfactory.paths import model_dir
from trendfactory.scoring import default_output, score_bars, write_predictions
from trendfactory.stages import featurize as featurize_stage
from trendfactory.stages import ingest as ingest_stage
from trendfactory.stages import window as window_stage

H = 5
SEQ_LEN = 8
N_SYMBOLS = 4
N_BARS = 600
TINY = {
    "seed": 3,
    "data": {
        "source": "synthetic",
        "start": None,
        "end": None,
        "synthetic": {"n_symbols": N_SYMBOLS, "n_bars": N_BARS, "start": "2000-01-03", "signal_strength": 0.3},
    },
    "features": {"device": "cpu"},
    "label": {"horizons": [H]},
    "split": {"scheme": "fixed", "train_end": "2001-06-30", "val_end": "2001-11-30", "embargo": 5},
    "window": {"seq_len": SEQ_LEN},
    "run": {"models": ["momentum", "xgboost"], "neural_models": [], "joint_models": ["dual_tower"]},
    "models": {
        "xgboost": {"n_estimators": 20, "early_stopping_rounds": 5, "min_child_weight": 1.0, "device": "cpu"},
        "dual_tower": {"context_hidden": [16], "stock_hidden": [32]},
    },
    "train": {"max_epochs": 2, "batch_size": 256, "device": "cpu"},
}
MODELS = ("momentum", "xgboost", "dual_tower")


def _build_project(root: Path, overrides: dict) -> None:
    """ingest -> featurize -> window with the stage functions, then fit and save the models."""
    (root / "params.yaml").write_text(yaml.safe_dump(overrides, sort_keys=False))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        params = load_params("params.yaml")
        for stage in (ingest_stage, featurize_stage, window_stage):
            stage.main_body(params, None)
        train, val = (Samples.open(root / "data/windows", H, 0, s) for s in ("train", "val"))
        for name in (*params.run.models, *params.run.joint_models):
            model = create(name, model_config(params, name), horizon=H, seed=params.seed, train=params.train)
            model.fit(train, val).save(root / model_dir(name, H, model.joint) / "fold_00" / "seed_00")
        bars = pd.read_parquet(root / "data/raw/bars.parquet")
        bars.to_csv(root / "bars.csv", index=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    _build_project(root, TINY)
    return root


@pytest.fixture
def in_project(project, monkeypatch) -> Path:
    monkeypatch.chdir(project)
    return project


@pytest.fixture
def params(in_project):
    return load_params("params.yaml")


def _bars(project: Path) -> pd.DataFrame:
    return pd.read_csv(project / "bars.csv")


# ---- (a) the same numbers as the evaluate path ---------------------------------------------


@pytest.mark.parametrize("name", MODELS)
def test_full_history_scores_equal_the_evaluate_path_on_test_rows(in_project, params, name):
    scored = score_bars("bars.csv", name, H, params, all_rows=True)
    assert list(scored.columns) == list(PREDICTION_COLUMNS)

    model = TrendModel.load(in_project / model_dir(name, H, name == "dual_tower") / "fold_00" / "seed_00")
    test = Samples.open(in_project / "data/windows", H, 0, "test")
    expected = model.predict(test).to_frame(test.keys(), H)
    assert len(expected) > 50

    merged = expected.merge(scored, on=["symbol", "datetime"], how="left", suffixes=("_eval", "_score"), validate="1:1")
    assert merged["pred_score"].notna().all(), "every evaluated test window must be scored"
    assert (merged["pred_eval"] == merged["pred_score"]).all()
    assert (merged["horizon_score"] == H).all()
    for col in ("p_down", "p_flat", "p_up", "score"):
        np.testing.assert_allclose(merged[f"{col}_score"], merged[f"{col}_eval"], rtol=1e-6, atol=1e-6)


def _assert_features_match_test_store(root: Path, model: str, params) -> None:
    from trendfactory.scoring import _context, _load_input, _scaled_features, load_trained
    from trendfactory.windows.reader import WindowSplit

    trained = load_trained(model, H, Path("."), params)
    bars, _ = _load_input("bars.csv", trained.manifest, params.data.timezone)
    context, _ = _context(bars, trained.manifest)
    X, _ = _scaled_features(bars, context, trained, params)
    test = WindowSplit.open(root / "data/windows", 0, "test")
    keys = test.frame(np.arange(test.n_rows)).astype({"symbol": str})
    pos = pd.MultiIndex.from_frame(bars[["symbol", "datetime"]]).get_indexer(pd.MultiIndex.from_frame(keys))
    assert (pos >= 0).all()
    assert list(X.columns) == test.feature_names
    np.testing.assert_array_equal(X.to_numpy()[pos], np.asarray(test.features))


def test_scored_features_are_the_window_store_features(in_project, params):
    """The scaled features behind the scores are bit-for-bit the pipeline's (same code, same scaler)."""
    _assert_features_match_test_store(in_project, "xgboost", params)


def test_default_is_the_latest_bar_per_symbol(in_project, params):
    scored = score_bars("bars.csv", "xgboost", H, params)
    bars = _bars(in_project)
    last = bars.groupby("symbol")["datetime"].max()
    assert len(scored) == N_SYMBOLS
    assert scored["symbol"].tolist() == sorted(last.index)
    assert (pd.to_datetime(scored["datetime"]).to_numpy() == pd.to_datetime(last.to_numpy())).all()
    every = score_bars("bars.csv", "xgboost", H, params, all_rows=True)
    latest = every.groupby("symbol").tail(1).reset_index(drop=True)
    pd.testing.assert_frame_equal(scored, latest)


def test_recent_bars_only_score_like_the_full_history(in_project, params):
    """A user scores only recent bars (here 320 per symbol): once past the warm-up, the latest
    bar's features (and so its prediction) match the full history's."""
    bars = _bars(in_project)
    recent = bars.groupby("symbol").tail(320)
    recent.to_csv("recent.csv", index=False)
    a = score_bars("recent.csv", "xgboost", H, params)
    b = score_bars("bars.csv", "xgboost", H, params)
    np.testing.assert_allclose(a[["p_down", "p_flat", "p_up"]], b[["p_down", "p_flat", "p_up"]], atol=1e-6)


def test_directory_of_per_symbol_files(in_project, params, tmp_path):
    bars = _bars(in_project)
    for sym, frame in bars.groupby("symbol"):
        frame.drop(columns="symbol").to_csv(tmp_path / f"{sym}.csv", index=False)
    a = score_bars(tmp_path, "momentum", H, params)
    b = score_bars("bars.csv", "momentum", H, params)
    pd.testing.assert_frame_equal(a, b)


# ---- (b) the CLI end to end ------------------------------------------------------------------


def test_cli_predict_writes_the_contract(in_project, capsys):
    out = in_project / "scored" / "predictions-xgboost-h5.csv"
    out.unlink(missing_ok=True)
    main(["predict", "--model", "xgboost", "--horizon", str(H), "--input", "bars.csv"])
    assert "ok: 4 predictions" in capsys.readouterr().out
    assert default_output("xgboost", H) == Path("scored/predictions-xgboost-h5.csv")  # git-ignored: never committed by accident
    frame = pd.read_csv(out)
    assert list(frame.columns) == list(PREDICTION_COLUMNS)
    assert len(frame) == N_SYMBOLS and set(frame["pred"]) <= {-1, 0, 1}
    np.testing.assert_allclose(frame[["p_down", "p_flat", "p_up"]].sum(axis=1), 1.0)
    np.testing.assert_allclose(frame["score"], frame["p_up"] - frame["p_down"], atol=1e-9)


def test_cli_predict_all_rows_parquet(in_project, tmp_path):
    out = tmp_path / "scores.parquet"
    main(["predict", "--model", "momentum", "--horizon", str(H), "--input", "bars.csv", "--all-rows", "--output", str(out)])
    frame = pd.read_parquet(out)
    assert list(frame.columns) == list(PREDICTION_COLUMNS)
    assert len(frame) > 10 * N_SYMBOLS and pd.api.types.is_datetime64_any_dtype(frame["datetime"])
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]  # no temp file left behind


def test_cli_error_is_one_line_and_writes_nothing(in_project, tmp_path, capsys):
    out = tmp_path / "p.csv"
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--model", "logistic", "--horizon", str(H), "--input", "bars.csv", "--output", str(out)])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "dvc repro train@logistic-5" in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_write_predictions_is_atomic(tmp_path):
    frame = pd.DataFrame({c: [1] for c in PREDICTION_COLUMNS})
    target = tmp_path / "p.csv"
    target.write_text("old\n")
    with pytest.raises(KeyError):
        write_predictions(frame.drop(columns="score"), target)
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["p.csv"]


# ---- (c) bad inputs: one clear line each ---------------------------------------------------


def _nonpositive_price(project: Path) -> str:
    bars = _bars(project)
    bars.loc[bars.index[250], "close"] = 0.0
    bars.to_csv("bad_price.csv", index=False)
    return "bad_price.csv"


def _too_short(project: Path) -> str:
    _bars(project).groupby("symbol").tail(50).to_csv("short.csv", index=False)
    return "short.csv"


def _one_symbol(project: Path) -> str:
    bars = _bars(project)
    bars[bars["symbol"] == bars["symbol"].iloc[0]].to_csv("one.csv", index=False)
    return "one.csv"


def _close_only(project: Path) -> str:
    _bars(project)[["symbol", "datetime", "close"]].to_csv("close_only.csv", index=False)
    return "close_only.csv"


def _missing_file(project: Path) -> str:
    return "no_such_bars.csv"


def _no_symbol_column(project: Path) -> str:
    _bars(project).drop(columns="symbol").to_csv("nosym.csv", index=False)
    return "nosym.csv"


BAD = [
    # (id, model, horizon, input maker, error message pattern)
    ("missing-model-dir", "logistic", H, None, r"models/logistic-h5: no trained logistic model .* run `dvc repro train@logistic-5` after adding logistic to run\.models"),
    ("unknown-model", "nosuchmodel", H, None, r"unknown model 'nosuchmodel'; available: .*boosting:xgboost"),
    ("horizon-not-trained", "xgboost", 7, None, r"--horizon 7: no model is trained for this horizon; the pipeline's label\.horizons are \[5\]"),
    # a network's folder serves every trained horizon: the fix is label.horizons, not a rerun of its stage
    ("network-horizon-not-trained", "dual_tower", 7, None, r"^--horizon 7: no model is trained for this horizon; .* add 7 to label\.horizons"),
    ("non-positive-price", "xgboost", H, _nonpositive_price, r"bad_price\.csv: symbol SYN000, column close, data row 251: price 0\.0 is not positive"),
    ("too-short", "xgboost", H, _too_short, r"short\.csv: symbol SYN000 has 50 bars, fewer than the 207 needed to score one bar \(199 warm-up bars .* window length 8"),
    (
        "one-symbol-breadth",
        "xgboost",
        H,
        _one_symbol,
        r"no symbol's latest bar could be scored: cross-sectional context \(ctx_.*\) is undefined on dates with 1 symbol\(s\) \(e\.g\. \d{4}-\d\d-\d\d\): score the same universe, on the same dates, as the model was trained on \(4 symbols\)",
    ),
    ("close-only-for-ohlc-model", "xgboost", H, _close_only, r"close_only\.csv: the model uses \d+ feature\(s\) these bars cannot give \(stk_adx.*needs high/low; source has close only"),
    ("missing-file", "xgboost", H, _missing_file, r"no_such_bars\.csv: no such file or directory"),
    ("no-symbol-column", "xgboost", H, _no_symbol_column, r"nosym\.csv: no symbol column"),
]


@pytest.mark.parametrize("model, horizon, make_input, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_inputs(in_project, params, model, horizon, make_input, match):
    path = make_input(in_project) if make_input else "bars.csv"
    with pytest.raises(TrendfactoryError, match=match):
        score_bars(path, model, horizon, params)


@pytest.fixture
def project_copy(project, tmp_path, monkeypatch) -> Path:
    root = tmp_path / "copy"
    shutil.copytree(project, root)
    monkeypatch.chdir(root)
    return root


@pytest.mark.parametrize(
    "remove, match",
    [
        ("data/features/folds.json", r"data/features/folds\.json: missing; .*train-fitted scalers \(run `dvc repro featurize`"),
        ("data/features/schema.json", r"data/features/schema\.json: missing; .*\(run `dvc repro featurize`"),
        ("data/windows/meta.json", r"data/windows/meta\.json: missing; .*\(run `dvc repro window`"),
        ("data/raw/manifest.json", r"data/raw/manifest\.json: missing; .*\(run `dvc repro ingest`"),
    ],
    ids=["scaler", "schema", "window-meta", "manifest"],
)
def test_missing_pipeline_outputs(project_copy, remove, match):
    target = project_copy / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(TrendfactoryError, match=match):
        score_bars("bars.csv", "xgboost", H, load_params("params.yaml"))


def test_window_length_comes_from_the_trained_store_not_params(project_copy):
    before = score_bars("bars.csv", "xgboost", H, load_params("params.yaml"), all_rows=True)
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["window"]["seq_len"] = 20  # edited after training: must not change the scores
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    after = score_bars("bars.csv", "xgboost", H, load_params("params.yaml"), all_rows=True)
    pd.testing.assert_frame_equal(before, after)


def test_changed_feature_params_are_caught_via_dvc_lock(project_copy):
    lock = {"schema": "2.0", "stages": {"featurize": {"params": {"params.yaml": {"features": {"rsi_period": 14, "device": "cuda"}}}}}}
    Path("dvc.lock").write_text(yaml.safe_dump(lock))
    score_bars("bars.csv", "momentum", H, load_params("params.yaml"))  # same values (device ignored): fine
    raw = yaml.safe_load(Path("params.yaml").read_text())
    raw["features"]["rsi_period"] = 21
    Path("params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(TrendfactoryError, match=r"features\.rsi_period is 21, but the trained features were computed with 14 .*dvc\.lock"):
        score_bars("bars.csv", "momentum", H, load_params("params.yaml"))


def test_latest_bar_that_cannot_be_scored_is_left_out_with_a_warning(in_project, params, caplog):
    frame = _bars(in_project)
    # One symbol's extra bar on a date no other symbol has: the cross-sectional dispersion
    # (a std over symbols) is undefined there, so that symbol's latest bar has no complete window.
    extra = frame[frame["symbol"] == "SYN001"].tail(1).copy()
    extra["datetime"] = "2030-01-01"
    pd.concat([frame, extra]).to_csv("extra.csv", index=False)
    with caplog.at_level("WARNING", logger="trendfactory"):
        scored = score_bars("extra.csv", "xgboost", H, params)
    assert sorted(scored["symbol"]) == ["SYN000", "SYN002", "SYN003"]
    assert "left out 1 symbol(s) whose latest bar cannot be scored (SYN001): cross-sectional context" in caplog.text
    assert "undefined on dates with 1 symbol(s) (e.g. 2030-01-01)" in caplog.text


# ---- embedded context: dates outside the series' coverage ----------------------------------


@pytest.fixture(scope="module")
def embedded_project(tmp_path_factory) -> Path:
    pytest.importorskip("skfolio")
    pytest.importorskip("arch")
    root = tmp_path_factory.mktemp("embedded")
    over = json.loads(json.dumps(TINY))
    over["data"]["context"] = "embedded"
    over["data"]["context_series"] = ["market", "credit_spread"]
    over["run"]["models"] = ["momentum"]
    _build_project(root, over)
    return root


def test_embedded_context_scores_match_and_out_of_range_dates_fail(embedded_project, monkeypatch):
    monkeypatch.chdir(embedded_project)
    params = load_params("params.yaml")
    manifest = json.loads(Path("data/raw/manifest.json").read_text())
    assert manifest["context_mode"] == "embedded"
    model = TrendModel.load(Path("models/momentum-h5/fold_00/seed_00"))
    assert any(c.startswith("ctx_mkt_") for c in model.feature_names_)

    scored = score_bars("bars.csv", "momentum", H, params, all_rows=True)
    test = Samples.open("data/windows", H, 0, "test")
    expected = model.predict(test).to_frame(test.keys(), H)
    merged = expected.merge(scored, on=["symbol", "datetime"], suffixes=("_eval", "_score"), validate="1:1")
    assert len(merged) == len(expected)
    np.testing.assert_allclose(merged["score_score"], merged["score_eval"], atol=1e-6)

    bars = _bars(embedded_project)
    future = bars.assign(datetime=pd.to_datetime(bars["datetime"]) + pd.DateOffset(years=40))  # 2040: no series covers it
    future.to_csv("future.csv", index=False)
    with pytest.raises(
        TrendfactoryError,
        match=r"future\.csv: no bar could be scored: the model's embedded market/macro context is undefined for these dates \(input bars 2040-.*the series cover .*market .*score bars dated inside that range",
    ):
        score_bars("future.csv", "momentum", H, params, all_rows=True)
    # history inside the series' range, then new bars past it: the latest bars fail, earlier ones could be scored
    both = pd.concat([bars.assign(datetime=pd.to_datetime(bars["datetime"])), future]).sort_values(["symbol", "datetime"])
    both.to_csv("both.csv", index=False)
    with pytest.raises(TrendfactoryError, match=r"no symbol's latest bar could be scored \(\d[\d,]* earlier bars, up to 2002-04-19, can be scored with --all-rows\): the model's embedded"):
        score_bars("both.csv", "momentum", H, params)


def test_embedded_context_features_are_the_window_store_features(embedded_project, monkeypatch):
    monkeypatch.chdir(embedded_project)
    _assert_features_match_test_store(embedded_project, "momentum", load_params("params.yaml"))


# ---- warm-up: smoothed indicators remember where the input starts ---------------------------


@pytest.fixture(scope="module")
def short_lookback_project(tmp_path_factory) -> Path:
    """Short SMA/return lookbacks: the longest NaN warm-up (~35 bars) is shorter than the time
    the EMA/Wilder indicators (ADX, MACD, WaveTrend) need to forget their start."""
    root = tmp_path_factory.mktemp("short")
    over = json.loads(json.dumps(TINY))
    over["features"].update({"return_lookbacks": [1, 5, 20], "ma_windows": [10, 20], "vol_windows": [20], "context_lookbacks": [5, 20]})
    over["run"]["models"] = ["momentum"]
    _build_project(root, over)
    return root


def test_short_input_warns_that_features_have_not_settled(short_lookback_project, monkeypatch, caplog):
    monkeypatch.chdir(short_lookback_project)
    params = load_params("params.yaml")
    bars = _bars(short_lookback_project)
    with caplog.at_level("WARNING", logger="trendfactory"):
        score_bars("bars.csv", "momentum", H, params)  # 600 bars: settled
    assert "still depend on where the input starts" not in caplog.text
    bars.groupby("symbol").tail(80).to_csv("recent.csv", index=False)
    with caplog.at_level("WARNING", logger="trendfactory"):
        score_bars("recent.csv", "momentum", H, params)
    assert "features still depend on where the input starts: " in caplog.text and "(e.g. stk_" in caplog.text
    assert "give more history per symbol (this input has 80 bars at most)" in caplog.text


def test_all_rows_warns_about_a_symbol_with_no_scoreable_bar(in_project, params, caplog):
    bars = _bars(in_project)
    lone = bars["symbol"] == "SYN003"  # on dates no other symbol has: its dispersion is never defined
    bars.loc[lone, "datetime"] = (pd.to_datetime(bars.loc[lone, "datetime"]) + pd.Timedelta(weeks=52 * 30)).dt.strftime("%Y-%m-%d")
    bars.to_csv("lone.csv", index=False)
    with caplog.at_level("WARNING", logger="trendfactory"):
        scored = score_bars("lone.csv", "momentum", H, params, all_rows=True)
    assert sorted(scored["symbol"].unique()) == ["SYN000", "SYN001", "SYN002"]
    assert "1 symbol(s) have no bar that can be scored (SYN003): cross-sectional context" in caplog.text


# ---- export: the trained network for production inference ----------------------------------


def test_export_command_writes_a_checked_network_with_its_scaler(in_project, capsys):
    from trendfactory.cli import main

    main(["export", "--model", "dual_tower", "--horizon", str(H)])
    out = capsys.readouterr().out
    assert out.startswith("ok: dual_tower:dual_tower h5 -> exported/dual_tower-h5/model.onnx (onnx;"), out
    meta = json.loads((in_project / "exported/dual_tower-h5/export.json").read_text())
    assert meta["seq_len"] == SEQ_LEN and meta["parity"]["max_abs_diff"] <= 1e-5
    assert set(meta["scaler"]) == set(meta["input"]["feature_names"]) and meta["clip"] > 0  # the order is input.feature_names
    with pytest.raises(SystemExit):
        main(["export", "--model", "xgboost", "--horizon", str(H)])
    assert "error: export: xgboost is a tabular model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["export", "--model", "dual_tower", "--horizon", "7"])
    err = capsys.readouterr().err
    assert err.startswith("error: --horizon 7: no model is trained for this horizon;") and "add 7 to label.horizons" in err and "dvc repro train_joint" not in err
