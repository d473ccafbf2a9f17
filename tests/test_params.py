"""The params loader: defaults load, and every bad key/type/value fails with its dotted path."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from trendfactory.errors import ParamsError
from trendfactory.models.registry import get_model_class, model_config, validate_all
from trendfactory.params import ModelSections, Params, load_params, model_names, parse_params


def test_repo_params_yaml_loads_and_matches_defaults():
    # params.yaml documents every default; the loader and the file must agree (each model's
    # section against the defaults its own file declares).
    loaded = load_params(Path(__file__).parents[1] / "params.yaml")
    assert dataclasses.replace(loaded, models=ModelSections()) == Params()
    for name in model_names():
        assert model_config(loaded, name) == get_model_class(name).config_class(), name
    validate_all(loaded)


BAD_PARAMS = [
    ({"bogus": 1}, r"^bogus: unknown key; allowed keys here: data, ensemble, evaluate, features"),
    ({"label": {"horizon": [5]}}, r"^label\.horizon: unknown key; allowed keys here: .*horizons"),
    ({"seed": "abc"}, r"^seed: got 'abc', expected an integer"),
    ({"seed": True}, r"^seed: got True, expected an integer"),
    ({"label": {"horizons": [5, 0]}}, r"^label\.horizons: got \[5, 0\], expected a non-empty list of integers >= 1"),
    ({"label": {"horizons": [-3]}}, r"^label\.horizons: got \[-3\], expected"),
    ({"label": {"horizons": []}}, r"^label\.horizons: got \[\], expected a non-empty list"),
    ({"label": {"horizons": [5, 5]}}, r"^label\.horizons: got \[5, 5\], expected distinct values"),
    ({"label": {"horizons": "5"}}, r"^label\.horizons: got '5', expected a list"),
    ({"label": {"entry_lag": -1}}, r"^label\.entry_lag: got -1, expected an integer >= 0"),
    ({"label": {"barrier_k": 0}}, r"^label\.barrier_k: got 0, expected a number > 0"),
    ({"split": {"train_end": "2015-01-01", "val_end": "2014-12-31"}}, r"^split\.train_end: 2015-01-01 is not before split\.val_end"),
    ({"split": {"train_end": "last year"}}, r"^split\.train_end: got 'last year', expected a date"),
    ({"split": {"embargo": 2.5}}, r"^split\.embargo: got 2\.5, expected an integer"),
    ({"split": {"scheme": "kfold"}}, r"^split\.scheme: got 'kfold', expected one of 'walk_forward', 'fixed'"),
    ({"split": {"test_start": "soon"}}, r"^split\.test_start: got 'soon', expected a date"),
    ({"split": {"fold": 0}}, r"^split\.fold: got 0, expected an integer >= 1 \(years per test block\)"),
    ({"split": {"val_years": 0}}, r"^split\.val_years: got 0, expected an integer >= 1"),
    ({"split": {"train_years": 0}}, r"^split\.train_years: got 0, expected null \(expanding\) or an integer >= 1"),
    ({"train": {"monitor": "accuracy"}}, r"^train\.monitor: got 'accuracy', expected one of 'loss', 'rank_ic'"),
    ({"evaluate": {"bootstrap_reps": 10}}, r"^evaluate\.bootstrap_reps: got 10, expected an integer >= 100"),
    ({"ensemble": {"top_k": 0}}, r"^ensemble\.top_k: got 0, expected an integer >= 1"),
    ({"data": {"source": "yahoo"}}, r"^data\.source: got 'yahoo', expected one of 'embedded', 'csv', 'synthetic'"),
    ({"data": {"dataset": "ftse"}}, r"^data\.dataset: got 'ftse', expected one of"),
    ({"data": {"source": "csv"}}, r"^data\.path: missing; data\.source 'csv' needs a path"),
    ({"data": {"source": "csv", "path": "/no/such/dir"}}, r"^data\.path: '/no/such/dir' does not exist"),
    ({"data": {"context_series": ["market", "gold"]}}, r"^data\.context_series\[1\]: got 'gold', expected one of"),
    ({"data": {"release_lag_days": {"core_cpi": -1}}}, r"^data\.release_lag_days\.core_cpi: got -1"),
    ({"data": {"synthetic": {"signal_strength": 2}}}, r"^data\.synthetic\.signal_strength: got 2, expected a number in \[0, 1\]"),
    ({"data": {"start": "2020-01-01", "end": "2019-01-01"}}, r"^data\.start: 2020-01-01 is not before data\.end"),
    ({"features": {"device": "tpu"}}, r"^features\.device: got 'tpu', expected one of 'auto', 'cpu', 'cuda'"),
    ({"features": {"rsi_period": 0}}, r"^features\.rsi_period: got 0, expected an integer >= 1"),
    ({"features": {"macd_fast": 30}}, r"^features\.macd_fast: got 30, expected less than features\.macd_slow"),
    ({"window": {"seq_len": 0}}, r"^window\.seq_len: got 0, expected an integer >= 1"),
    ({"window": {"seq_len": 10}, "models": {"xgboost": {"lags": [10]}}}, r"^models\.xgboost\.lags\[0\]: got 10, expected less than window\.seq_len"),
    ({"window": {"lags": [1]}}, r"^window\.lags: unknown key; allowed keys here: seq_len"),
    ({"run": {"models": ["xgboost", "xgb"]}}, r"^run\.models\[1\]: got 'xgb', expected one of .*catboost, dual_tower, .*, xgboost \(a model is a file in models/zoo/\)"),
    ({"run": {"models": [], "neural_models": [], "joint_models": []}}, r"^run\.models: got \[\] and run\.neural_models and run\.joint_models are empty too"),
    ({"run": {"models": ["lstm"], "neural_models": ["mlp"]}}, r"^run\.models\[0\]: 'lstm' is a network model; it belongs under run\.neural_models"),
    ({"run": {"neural_models": ["dual_tower"], "joint_models": []}}, r"^run\.neural_models\[0\]: 'dual_tower' is a joint model; it belongs under run\.joint_models"),
    ({"models": {"dual_tower": {"heads_see": "stock"}}}, r"^models\.dual_tower\.heads_see: got 'stock', expected one of 'both', 'context'"),
    ({"run": {"models": ["logistic"], "neural_models": ["xgboost"]}}, r"^run\.neural_models\[0\]: 'xgboost' is a tabular model; it belongs under run\.models"),
    ({"run": {"models": ["logistic"], "neural_models": ["logistic"]}}, r"^run\.neural_models\[0\]: 'logistic' is listed twice \(also under run\.models\)"),
    ({"models": {"xgbost": {"max_depth": 3}}}, r"^models\.xgbost: unknown model; expected one of .*catboost, .*xgboost"),
    ({"models": {"xgboost": 3}}, r"^models\.xgboost: got 3, expected a mapping"),
    ({"train": {"scheduler": "step"}}, r"^train\.scheduler: got 'step', expected one of 'cosine', 'plateau'"),
    ({"train": {"lr": 0}}, r"^train\.lr: got 0, expected a number > 0"),
    ({"train": {"precision": "int8"}}, r"^train\.precision: got 'int8', expected one of 'auto', 'fp32', 'tf32', 'bf16', 'fp16'"),
    ({"models": {"lstm": {"dropout": 1.0}}}, r"^models\.lstm\.dropout: got 1\.0, expected a number in \[0, 1\)"),
    ({"models": {"tcn": {"dilations": []}}}, r"^models\.tcn\.dilations: got \[\], expected a non-empty list"),
    ({"window": {"seq_len": 5}, "models": {"mlp": {"lags": [5]}}}, r"^models\.mlp\.lags\[0\]: got 5, expected less than window\.seq_len"),
    ({"run": {"models": ["lightgbm", "lightgbm"]}}, r"^run\.models\[1\]: 'lightgbm' is listed twice \(also under run\.models\)"),
    ({"models": {"xgboost": {"max_depht": 3}}}, r"^models\.xgboost\.max_depht: unknown key; allowed keys here: .*max_depth"),
    ({"models": {"xgboost": {"device": "tpu"}}}, r"^models\.xgboost\.device: got 'tpu', expected one of 'auto', 'cpu', 'cuda'"),
    ({"models": {"lightgbm": {"subsample": 0}}}, r"^models\.lightgbm\.subsample: got 0, expected a number in \(0, 1\]"),
    ({"models": {"catboost": {"class_weight": "auto"}}}, r"^models\.catboost\.class_weight: got 'auto', expected one of 'none', 'balanced'"),
    ({"models": {"momentum": {"band": -0.1}}}, r"^models\.momentum\.band: got -0\.1, expected a number >= 0"),
    ({"evaluate": {"bars_per_year": 0}}, r"^evaluate\.bars_per_year: got 0, expected a number > 0"),
    ({"evaluate": {"cost_bps": "5bp"}}, r"^evaluate\.cost_bps: got '5bp', expected a number"),
    ({"features": 3}, r"^features: got 3, expected a mapping"),
    # non-finite numbers (YAML .nan / .inf) are refused everywhere, models' sections included
    ({"train": {"lr": float("inf")}}, r"^train\.lr: got inf, expected a finite number"),
    ({"train": {"lr": float("nan")}}, r"^train\.lr: got nan, expected a finite number"),
    ({"features": {"bb_k": float("nan")}}, r"^features\.bb_k: got nan, expected a finite number"),
    ({"features": {"clip": float("inf")}}, r"^features\.clip: got inf, expected a finite number"),
    ({"label": {"barrier_k": float("-inf")}}, r"^label\.barrier_k: got -inf, expected a finite number"),
    ({"evaluate": {"cost_bps": float("nan")}}, r"^evaluate\.cost_bps: got nan, expected a finite number"),
    ({"models": {"lightgbm": {"learning_rate": float("inf")}}}, r"^models\.lightgbm\.learning_rate: got inf, expected a finite number"),
    ({"models": {"dual_tower": {"alpha": float("nan")}}}, r"^models\.dual_tower\.alpha: got nan, expected a finite number"),
    # ranges of keys that had none
    ({"features": {"bb_k": -2}}, r"^features\.bb_k: got -2, expected a number > 0"),
    ({"features": {"rsi_oversold": 130}}, r"^features\.rsi_oversold: got 130, expected a number in \[0, 100\]"),
    ({"features": {"rsi_oversold": 80}}, r"^features\.rsi_oversold: got 80, expected below features\.rsi_overbought \(70\)"),
    ({"features": {"wt_oversold": 60}}, r"^features\.wt_oversold: got 60, expected below features\.wt_overbought \(53\)"),
    ({"seed": -1}, r"^seed: got -1, expected an integer in 0 \.\. 4294967295"),
    ({"seed": 2**40}, r"^seed: got 1099511627776, expected an integer in 0 \.\. 4294967295"),
    ({"seed": 2**32 - 1}, r"^seed: got 4294967295; with evaluate\.seeds 2 the fits use seeds up to 4294967296"),
    ({"seed": 1.5}, r"^seed: got 1\.5, expected an integer"),
    # choices checked although only one source reads them
    ({"data": {"synthetic": {"freq": "XYZ"}}}, r"^data\.synthetic\.freq: got 'XYZ', expected a pandas frequency"),
    ({"data": {"timezone": "Mars/Olympus"}}, r"^data\.timezone: got 'Mars/Olympus', expected an IANA time zone name"),
    ({"data": {"min_history": "skip"}}, r"^data\.min_history: got 'skip', expected one of 'drop', 'error'"),
    ({"data": {"on_jump": "ignore"}}, r"^data\.on_jump: got 'ignore', expected one of 'warn', 'error'"),
    ({"data": {"jump_ratio": 1.0}}, r"^data\.jump_ratio: got 1\.0, expected a number > 1"),
    # a window longer than the data: before ingest, not after an empty window store
    ({"window": {"seq_len": 100000}}, r"^window\.seq_len: got 100000, longer than the ~7,309 bars from data\.start 1990-01-01"),
    ({"data": {"source": "synthetic", "synthetic": {"n_bars": 500}}, "window": {"seq_len": 500}}, r"^window\.seq_len: got 500, longer than data\.synthetic\.n_bars \(500\)"),
    ({"window": {"seq_lenn": 30}}, r"^window\.seq_lenn: unknown key; allowed keys here: seq_len"),
    # a fixed split has one fold and fold k is tuned on the blocks before it: refused before ingest, not by the tune stage
    ({"split": {"scheme": "fixed"}, "run": {"tune": ["lightgbm"]}}, r"^run\.tune: got \['lightgbm'\] with split\.scheme fixed \(one fold\).* set run\.tune: \[\] or split\.scheme: walk_forward"),
    ({"parallel": {"cpus": 0}}, r"^parallel\.cpus: got 0, expected null \(every core\) or an integer >= 1"),
]


@pytest.mark.parametrize("raw, match", BAD_PARAMS)
def test_bad_params_fail_with_dotted_path(raw, match):
    # most fail on load; a model's own keys and its run list when its section is read (each
    # stage reads its own; `trendfactory check` and validate_all read them all)
    with pytest.raises(ParamsError, match=match):
        validate_all(parse_params(raw))


def test_yaml_dates_are_accepted(tmp_path):
    # An unquoted YAML date parses to datetime.date; the loader keeps it as ISO text.
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  train_end: 2009-12-31\n  val_end: 2012-12-31\n")
    assert load_params(path).split.train_end == "2009-12-31"


def test_load_errors_name_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"label": {"horizons": [0]}}))
    with pytest.raises(ParamsError, match=r"params\.yaml: label\.horizons"):
        load_params(path)
    with pytest.raises(ParamsError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")
    path.write_text("label: [unclosed")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_valid_edge_values_load():
    # the largest seed whose fits stay in range, a timezone, a frequency, a window just inside the data
    p = parse_params({"seed": 2**32 - 2, "data": {"timezone": "America/New_York", "synthetic": {"freq": "5min"}}})
    assert p.seed == 2**32 - 2 and p.data.timezone == "America/New_York"
    assert parse_params({"data": {"source": "synthetic", "synthetic": {"n_bars": 500}}, "window": {"seq_len": 499}}).window.seq_len == 499


@pytest.mark.parametrize("raw, match", BAD_PARAMS)
def test_the_check_stage_stops_each_bad_params_file_with_one_line(raw, match, tmp_path, monkeypatch, capsys):
    """What `dvc repro` runs first, in-process: exit code 1, one `error:` line naming the file
    and the dotted key, no traceback, no output (so DVC records nothing downstream)."""
    from trendfactory.stages import check_params

    full = yaml.safe_load((Path(__file__).parents[1] / "params.yaml").read_text())  # a whole file, as DVC needs
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(_merged(full, raw)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["check_params"])
    with pytest.raises(SystemExit) as exit_info:
        check_params.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and re.match(r"^error: params\.yaml: " + match.lstrip("^"), errors[0]), errors
    assert not (tmp_path / "data" / "params_checked.txt").exists()


def _merged(base: dict, over: dict) -> dict:
    """``base`` with ``over`` written into it (mappings merged key by key, anything else replaced)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "params.yaml: empty; dvc.yaml builds its stages from run.models, run.neural_models, run.joint_models, label.horizons"),
        ("seed: 1\n", "params.yaml: run.models: missing; dvc.yaml builds"),
        ("run:\n  models: [majority]\n", "params.yaml: run.neural_models: missing; dvc.yaml builds its stages from"),
    ],
)
def test_the_check_stage_names_the_keys_dvc_needs(text, message, tmp_path, monkeypatch, capsys):
    # `trendfactory check` / the check stage: the loader would take defaults, DVC cannot
    from trendfactory.stages import check_params

    (tmp_path / "params.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["check_params"])
    with pytest.raises(SystemExit):
        check_params.main()
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"error: {message}")
