"""The comparison: walk-forward selection on validation, the baseline bar, the gate, the
verdict on the stitched series, the page."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trendfactory.evaluation.compare import SELECTION, Item, comparison_markdown, gate, horizon_verdict, item_row, score_correlations, trial_sharpes, tuned_leads, tuned_lines

DATES = pd.bdate_range("2010-01-01", periods=900)  # three test blocks of 300 dates
BLOCKS = [(str(DATES[i].date()), str(DATES[i + 299].date())) for i in (0, 300, 600)]
VAL_DATES = [pd.bdate_range(end=DATES[i] - pd.Timedelta(days=20), periods=120) for i in (0, 300, 600)]
REPS = 200  # Monte-Carlo draws of SPA and the MCS: enough for these clear-cut cases, fast


def _item(model, family, h, val_ric, test_ric, seed, val_f1=0.36, val_sharpe=0.5, noise=0.15, val_noise=0.02, seeds=2):
    """An item whose daily test Rank IC is test_ric + iid noise (None: constant scores, no IC)
    and whose fold k validation Rank IC is val_ric (or val_ric[k]) + noise per seed and date."""
    rng = np.random.default_rng(seed)
    if test_ric is None:
        daily = pd.DataFrame({"rank_ic": np.nan, "ic": np.nan, "net": 0.0}, index=DATES)
    else:
        ric = test_ric + noise * rng.standard_normal(len(DATES))
        daily = pd.DataFrame({"rank_ic": ric, "ic": ric, "net": 0.002 * ric + 0.004 * rng.standard_normal(len(DATES))}, index=DATES)
    val = None
    if val_ric is not None:
        per_fold = val_ric if isinstance(val_ric, (list, tuple)) else [val_ric] * 3
        val = {k: pd.DataFrame({s: per_fold[k] + val_noise * rng.standard_normal(len(d)) for s in range(seeds)}, index=d) for k, d in enumerate(VAL_DATES)}
    pooled = None if val is None else float(np.mean([v.mean(axis=1).mean() for v in val.values()]))
    metrics = {
        "val": {"rank_ic": pooled, "macro_f1": val_f1, "sharpe": val_sharpe},
        "test": {"rank_ic": None if test_ric is None else float(daily["rank_ic"].mean()), "sharpe": None if test_ric is None else float(daily["net"].mean() / daily["net"].std() * np.sqrt(252))},
    }
    return Item(model=model, family=family, horizon=h, metrics=metrics, daily={"test": daily}, val_by_fold=val)


def _rows(items):
    return {it.key: item_row(it, 252) for it in items}


def _verdict(items, rows=None):
    rows = rows or _rows(items)
    return horizon_verdict(items, rows, *trial_sharpes(rows, 252), BLOCKS, 252, REPS, 0), rows


def test_selection_uses_validation_and_test_best_is_only_labelled():
    items = [
        _item("majority", "baseline", 5, None, None, 0),
        _item("momentum", "baseline", 5, 0.005, 0.0, 1),
        _item("steady", "boosting", 5, 0.030, 0.03, 2),  # best on validation in every fold
        _item("lucky", "neural", 5, -0.010, 0.06, 3),  # worst on validation, best on test
        _item("noise", "classical", 5, 0.010, 0.0, 4),
    ]
    v, rows = _verdict(items)
    assert v["selected"] == "steady" and v["test_best"] == "lucky"
    assert v["spa_benchmark"] == "momentum"  # the baseline chosen the same way
    # one model every fold: the stitched series is that model's
    assert v["selection"]["rank_ic"] == pytest.approx(rows["steady-h5"]["test_rank_ic"], abs=1e-6)
    md = comparison_markdown(rows, {5: v}, gate(list(rows.values())), "header", 3)
    assert "walk-forward selection — steady" in md
    assert "The best single model on test was lucky" in md and "not a choice" in md
    assert "| steady ✓ |" in md and "| lucky † |" in md
    assert f"| 1 | {BLOCKS[1][0]} … {BLOCKS[1][1]} | steady |" in md  # the fold table


def test_each_fold_chooses_from_validation_blocks_that_end_before_its_test_block():
    # "late" is poor on fold 0's validation block and strong from fold 1's: the expanding
    # window (blocks 0..k) lets it win from fold 2 only, when its mean over blocks passes "early"'s
    items = [
        _item("momentum", "baseline", 20, 0.0, 0.0, 1),
        _item("early", "boosting", 20, [0.03, 0.01, 0.01], 0.01, 2),
        _item("late", "neural", 20, [-0.02, 0.05, 0.05], 0.03, 3),
    ]
    v, _ = _verdict(items)
    assert [c["chosen"] for c in v["folds"]] == ["early", "early", "late"]
    assert v["folds"][1]["window"][1] == str(VAL_DATES[1][-1].date())  # blocks 0 and 1, nothing later
    # the stitched series: early's daily values on blocks 0 and 1, late's on block 2
    tests = {it.model: it.daily["test"]["rank_ic"] for it in items}
    expected = pd.concat([tests["early"].iloc[:600], tests["late"].iloc[600:]]).mean()
    assert v["selection"]["rank_ic"] == pytest.approx(expected, abs=1e-6)


def test_test_returns_never_move_a_choice():
    items = [
        _item("momentum", "baseline", 5, 0.002, 0.0, 1),
        _item("majority", "baseline", 5, 0.001, 0.0, 5),
        _item("a", "boosting", 5, [0.02, 0.0, 0.01], 0.0, 2),
        _item("b", "neural", 5, [0.01, 0.03, 0.0], 0.0, 3),
        _item("c", "classical", 5, [0.0, 0.0, 0.04], 0.0, 4),
    ]
    before, _ = _verdict(items)
    rng = np.random.default_rng(99)
    for it in items:  # entirely different test returns, e.g. c and the majority baseline now shine
        bonus = 0.2 if it.model in ("c", "majority") else -0.1
        it.daily["test"] = it.daily["test"].assign(rank_ic=bonus + rng.standard_normal(len(DATES)), net=rng.standard_normal(len(DATES)))
        it.metrics["test"]["rank_ic"] = float(it.daily["test"]["rank_ic"].mean())
    after, _ = _verdict(items)
    assert [c["chosen"] for c in after["folds"]] == [c["chosen"] for c in before["folds"]]
    assert [c["chosen"] for c in after["baseline_folds"]] == [c["chosen"] for c in before["baseline_folds"]]
    assert after["selection"]["rank_ic"] != before["selection"]["rank_ic"]


def test_a_lead_inside_the_seed_spread_is_called_a_coin_flip():
    items = [
        _item("momentum", "baseline", 5, 0.0, 0.0, 1),
        _item("a", "boosting", 5, 0.0102, 0.0, 2, val_noise=0.3, seeds=3),
        _item("b", "neural", 5, 0.0100, 0.0, 3, val_noise=0.3, seeds=3),
        _item("far", "classical", 5, -0.5, 0.0, 4),
    ]
    v, rows = _verdict(items)
    assert all(c["coin_flip"] for c in v["folds"])
    assert {v["folds"][0]["chosen"], v["folds"][0]["runner_up"]} == {"a", "b"}
    md = comparison_markdown(rows, {5: v}, gate(list(rows.values())), "header", 3)
    assert "(coin flip)" in md and "Coin flips: in fold 0" in md
    clear = [_item("momentum", "baseline", 5, 0.0, 0.0, 1), _item("a", "boosting", 5, 0.05, 0.0, 2), _item("b", "neural", 5, 0.0, 0.0, 3)]
    v, _ = _verdict(clear)
    assert not any(c["coin_flip"] for c in v["folds"])


def test_beating_the_baselines_needs_a_positive_rank_ic_and_a_lead():
    items = [
        _item("momentum", "baseline", 20, 0.0, -0.04, 1, noise=0.01),
        _item("negative", "boosting", 20, 0.02, -0.02, 2, noise=0.01),  # above momentum, still negative
        _item("positive", "neural", 20, 0.01, 0.02, 3, noise=0.01),
    ]
    v, _ = _verdict(items)
    assert v["beats_baselines"] == ["positive"]
    assert v["selected"] == "negative" and not v["survives"] and not v["checks"]["beats_baselines"]


def test_a_lead_over_the_baseline_carries_its_uncertainty():
    """A small lead buried in daily noise is a point estimate, not a win: it needs its HAR test."""
    items = [
        _item("momentum", "baseline", 5, 0.0, 0.0, 1, noise=0.15),
        _item("slight", "boosting", 5, 0.02, 0.004, 2, noise=0.15),
        _item("other", "classical", 5, 0.0, 0.0, 3),
    ]
    v, rows = _verdict(items)
    lead = v["lead"]
    assert v["selected"] == "slight" and lead["lead"] == v["selected_lead"]
    diff = items[1].daily["test"]["rank_ic"] - items[0].daily["test"]["rank_ic"]
    assert lead["lead"] == pytest.approx(diff.mean(), abs=1e-6)  # the mean of the daily differences
    assert lead["lead_lo"] < 0 < lead["lead_hi"] and lead["lead_p"] > 0.05
    assert "slight" not in v["beats_baselines"] and not v["checks"]["beats_baselines"]
    md = comparison_markdown(rows, {5: v}, gate(list(rows.values())), "header", 2)
    assert f"{lead['lead']:+.4f} [{lead['lead_lo']:+.4f}, {lead['lead_hi']:+.4f}], t {lead['lead_t']:+.2f}" in md
    assert "its lead over the walk-forward baseline is not significant" in md
    d = v["deltas"]["slight"]
    assert f"| {d['lead']:+.4f} [{d['lead_lo']:+.3f}, {d['lead_hi']:+.3f}] |" in md  # the table's Δ column


def test_a_strong_signal_survives_and_noise_does_not():
    strong = [
        _item("momentum", "baseline", 5, 0.0, 0.0, 1),
        _item("real", "boosting", 5, 0.05, 0.06, 2, noise=0.1),
        _item("other", "classical", 5, 0.01, 0.0, 3),
    ]
    v, rows = _verdict(strong)
    assert v["selected"] == "real"
    assert v["checks"]["rank_ic_positive_and_significant"] and v["checks"]["spa"] and v["checks"]["in_mcs"]
    assert SELECTION in v["mcs"]
    assert rows["real-h5"]["test_rank_ic_lo"] > 0 and v["selection"]["rank_ic_lo"] > 0  # the 90 % intervals exclude zero
    assert 0 < v["detectable_rank_ic"] < 0.06  # the power: a smaller edge than the planted one would have shown
    noise = [
        _item("momentum", "baseline", 5, 0.0, 0.0, 11),
        _item("a", "boosting", 5, 0.02, 0.0, 12),
        _item("b", "classical", 5, 0.01, 0.0, 13),
    ]
    v, rows = _verdict(noise)
    assert not v["survives"]
    md = comparison_markdown(rows, {5: v}, gate(list(rows.values())), "header", 2)
    assert md.index("## Verdict") < md.index("## Horizon 5 bars")
    assert "**Does not survive:**" in md and "survives the checks at no horizon" in md
    assert f"only a mean Rank IC above {v['detectable_rank_ic']:.4f} would have shown" in md


def test_ensembles_are_never_chosen():
    items = [
        _item("momentum", "baseline", 5, 0.0, 0.0, 1),
        _item("a", "boosting", 5, 0.01, 0.0, 2),
        _item("b", "neural", 5, 0.005, 0.0, 3),
        _item("stack", "ensemble", 5, None, 0.08, 4),  # no validation series of its own
    ]
    v, _ = _verdict(items)
    assert v["selected"] == "a" and "stack" in v["beats_baselines"]


def test_gate_needs_both_validation_f1_and_sharpe_at_some_horizon():
    rows = {
        "a-h5": {"model": "a", "val_macro_f1": 0.36, "val_sharpe": 0.2},
        "a-h20": {"model": "a", "val_macro_f1": 0.40, "val_sharpe": 0.31},
        "b-h5": {"model": "b", "val_macro_f1": 0.34, "val_sharpe": 1.0},
        "c-h5": {"model": "c", "val_macro_f1": None, "val_sharpe": None},
    }
    assert gate(list(rows.values())) == {"a": True, "b": False, "c": False}


def _tuned_copy(it, shift, seed):
    """``it``'s tuned variant: the same daily test series on the first block (fold 0 keeps the
    default's fit), ``shift`` + a little noise added on the other two."""
    rng = np.random.default_rng(seed)
    daily = it.daily["test"].copy()
    later = np.arange(len(DATES)) >= 300
    daily.loc[later, "rank_ic"] += shift + 0.01 * rng.standard_normal(int(later.sum()))
    metrics = {"val": dict(it.metrics["val"]), "test": {**it.metrics["test"], "rank_ic": float(daily["rank_ic"].mean())}}
    return Item(model=f"{it.model}_tuned", family=it.family, horizon=it.horizon, metrics=metrics, daily={"test": daily}, val_by_fold=it.val_by_fold)


def test_a_tuned_model_is_compared_with_its_default_date_by_date():
    """A small, steady gain is invisible in the two models' own intervals (the market noise they
    share is wide) and plain in the paired difference, which the table quotes with its test."""
    default = _item("lgb", "boosting", 5, 0.0, 0.0, 4, noise=0.15)
    tuned = _tuned_copy(default, 0.004, 5)
    items = [default, tuned]
    rows = _rows(items)
    assert rows["lgb_tuned-h5"]["test_rank_ic_lo"] < rows["lgb-h5"]["test_rank_ic"]  # own intervals overlap
    leads = tuned_leads(items, {"lgb_tuned": "lgb", "absent_tuned": "absent"})
    assert set(leads) == {"lgb_tuned-h5"}
    lead = leads["lgb_tuned-h5"]
    diff = tuned.daily["test"]["rank_ic"] - default.daily["test"]["rank_ic"]
    assert lead["default_model"] == "lgb" and lead["lead_over_default"] == pytest.approx(diff.mean(), abs=1e-6)
    assert 0 < lead["lead_over_default_lo"] < lead["lead_over_default"] < lead["lead_over_default_hi"] and lead["lead_over_default_p"] < 0.05
    rows["lgb_tuned-h5"].update(lead)
    md = "\n".join(tuned_lines(rows, ["lgb"], [5]))
    cell = f"{lead['lead_over_default']:+.4f} [{lead['lead_over_default_lo']:+.4f}, {lead['lead_over_default_hi']:+.4f}]"
    assert f"| {cell} | {lead['lead_over_default_t']:+.2f} ({lead['lead_over_default_p']:.3f}) |" in md
    noise = tuned_leads([default, _tuned_copy(default, 0.0, 6)], {"lgb_tuned": "lgb"})["lgb_tuned-h5"]
    assert noise["lead_over_default_lo"] < 0 < noise["lead_over_default_hi"] and noise["lead_over_default_p"] > 0.05
    # every study kept params.yaml's configuration: the same series, said so rather than "n/a"
    twin = Item(model="lgb_tuned", family="boosting", horizon=5, metrics=default.metrics, daily=default.daily, val_by_fold=default.val_by_fold)
    same = tuned_leads([default, twin], {"lgb_tuned": "lgb"})["lgb_tuned-h5"]
    assert same["lead_over_default"] == 0 and same["lead_over_default_t"] is None
    rows = _rows([default, twin])
    rows["lgb_tuned-h5"].update(same)
    assert "| +0.0000 | identical fits |" in "\n".join(tuned_lines(rows, ["lgb"], [5]))


def test_tables_have_at_most_ten_columns():
    items = [_item("momentum", "baseline", 5, 0.0, 0.0, 1), _item("x", "boosting", 5, 0.01, 0.01, 2)]
    v, rows = _verdict(items)
    md = comparison_markdown(rows, {5: v}, gate(list(rows.values())), "header", 1)
    headers = [line for line in md.splitlines() if line.startswith("| model |")]
    assert headers and all(line.count("|") - 1 <= 10 for line in headers)


def test_score_correlations_on_shared_rows():
    keys = pd.DataFrame({"symbol": list("ABCD") * 5, "datetime": np.repeat(pd.date_range("2020-01-01", periods=5), 4)})
    rng = np.random.default_rng(0)
    a = rng.normal(size=20)
    preds = {
        "a": keys.assign(score=a),
        "same_rank": keys.assign(score=np.exp(a)),  # monotone transform: Spearman 1
        "reversed": keys.assign(score=-a),
        "constant": keys.assign(score=0.2),
    }
    c = score_correlations(preds)
    assert c.loc["a", "same_rank"] == pytest.approx(1.0) and c.loc["a", "reversed"] == pytest.approx(-1.0)
    assert np.isnan(c.loc["a", "constant"])
