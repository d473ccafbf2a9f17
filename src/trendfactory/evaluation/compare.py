"""The comparison: every model × horizon side by side, each fold's model chosen walk-forward on
validation, and a verdict on the stitched out-of-sample series that says whether it survives
the number of models tried.

Inputs per item (``Item``): evaluate's metrics.json, the item's daily test series -- the
cross-sectional Rank IC and IC of each date, and the long/short book's net return -- and its
daily validation Rank IC per fold and seed (``evaluation.selection``).

- **Selection never touches test, and never uses later data.** Per horizon and fold, the
  model is the non-baseline with the highest mean daily validation Rank IC over the validation
  blocks of that fold and the earlier ones (``selection.walk_forward_choices``); the selected
  item is the stitched series of the folds' choices. The baseline is chosen the same way. The
  best model on test is shown too, labelled as such, never chosen.
- **Beats the baselines** means a positive test Rank IC *and* a lead over the walk-forward
  baseline's (per item: over that stitched baseline series).
- **Significance** that survives snooping (``evaluation.significance``): a calibrated HAR t
  (EWC) with its interval per series; per horizon, Hansen's SPA test of the models against the
  walk-forward baseline, a 90 % model confidence set, the deflated Sharpe ratio of the selection
  for every item tried, and the smallest Rank IC the t-test would have detected (power).
- **Phase 2 gate**: validation macro F1 > 0.35 and validation net Sharpe > 0.3 on at least one
  horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trendfactory.evaluation import significance as sig
from trendfactory.evaluation.selection import FoldChoice, stitch, walk_forward_choices

BASELINE_FAMILY = "baseline"
SELECTION = "walk-forward selection"  # the stitched series' name in the model confidence set and plots
ALPHA = 0.05  # significance level of every test the verdict uses
POWER = 0.80  # the power of the "smallest detectable Rank IC"
CI_LEVEL = 0.90  # interval level
MCS_SIZE = 0.10  # 90 % model confidence set
DSR_LEVEL = 0.95  # a deflated Sharpe ratio at or above this counts
GATE_F1, GATE_SHARPE = 0.35, 0.3  # Phase 2 gate on validation

# metrics copied from evaluate's metrics.json per split into the row (as <split>_<metric>)
ROW_METRICS = {
    "val": ("rank_ic", "ic", "sharpe", "macro_f1", "balanced_accuracy", "log_loss"),
    "test": ("rank_ic", "ic", "ic_t", "sharpe", "annual_return", "max_drawdown", "turnover", "macro_f1", "balanced_accuracy", "log_loss"),
}


@dataclass
class Item:
    """One model at one horizon: what evaluate measured, its daily series per split
    (``daily[split]``: DataFrame indexed by date with ``rank_ic``, ``ic``, ``net``) and its daily
    validation Rank IC per fold (``val_by_fold``: {fold: [dates x seeds]}; None for ensembles,
    which have no validation predictions of their own and are never selected)."""

    model: str
    family: str
    horizon: int
    metrics: dict
    daily: dict[str, pd.DataFrame] = field(default_factory=dict)
    test_predictions: pd.DataFrame | None = None  # symbol, datetime, score of the test series
    val_by_fold: dict[int, pd.DataFrame] | None = None

    @property
    def key(self) -> str:
        return f"{self.model}-h{self.horizon}"

    @property
    def is_baseline(self) -> bool:
        return self.family == BASELINE_FAMILY


def _num(v, digits: int = 6) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if not math.isfinite(v) else round(v, digits)


def series_stats(daily: pd.DataFrame | None, horizon: int, bars_per_year: float) -> dict:
    """Mean daily Rank IC with its HAR t, p and 90 % interval, mean IC, net Sharpe with its
    90 % interval, and the number of dates, of one daily series (``rank_ic``, ``ic``, ``net``)."""
    if daily is None or daily.empty:
        daily = pd.DataFrame({"rank_ic": [], "ic": [], "net": []}, dtype=float)
    ric, net = daily["rank_ic"].to_numpy(dtype=float), daily["net"].to_numpy(dtype=float)
    t = sig.mean_test(ric, horizon)
    lo, hi = sig.mean_ci(ric, horizon, level=CI_LEVEL)
    slo, shi = sig.sharpe_ci(net, horizon, bars_per_year, level=CI_LEVEL)
    ic = daily["ic"].to_numpy(dtype=float)
    return {
        "rank_ic": _num(t.mean),
        "rank_ic_t": _num(t.t, 4),
        "rank_ic_p": _num(t.p, 4),
        "rank_ic_lo": _num(lo),
        "rank_ic_hi": _num(hi),
        "ic": _num(float(np.nanmean(ic))) if np.isfinite(ic).any() else None,
        "sharpe": _num(sig.annualised_sharpe(net, bars_per_year)),
        "sharpe_lo": _num(slo, 4),
        "sharpe_hi": _num(shi, 4),
        "dates": int(np.isfinite(ric).sum()),
    }


def lead_stats(daily: pd.DataFrame, base: pd.DataFrame | None, horizon: int) -> dict:
    """The mean daily Rank IC lead of ``daily`` over ``base`` (over zero when no baseline ran), on
    the dates both have, with its HAR t, p and 90 % interval: a lead is a claim of skill like any other."""
    ric = daily["rank_ic"]
    diff = ric - base["rank_ic"].reindex(ric.index) if base is not None else ric
    x = diff.to_numpy(dtype=float)  # NaN where either has no IC that day: the test drops them
    t = sig.mean_test(x, horizon)
    lo, hi = sig.mean_ci(x, horizon, level=CI_LEVEL)
    return {"lead": _num(t.mean), "lead_t": _num(t.t, 4), "lead_p": _num(t.p, 4), "lead_lo": _num(lo), "lead_hi": _num(hi)}


def tuned_leads(items: list[Item], pairs: dict[str, str]) -> dict[str, dict]:
    """Each tuned item's test Rank IC lead over its default, keyed by the tuned item's key:
    ``lead_stats`` of the two daily series on the dates both have, as ``lead_over_default*``, and
    ``default_model``. ``pairs``: tuned model -> its default. Paired by date, the market noise the
    two share cancels, which neither model's own interval can show."""
    tests = {it.model: it for it in items if "test" in it.daily}
    out = {}
    for tuned, default in pairs.items():
        if tuned in tests and default in tests:
            stats = lead_stats(tests[tuned].daily["test"], tests[default].daily["test"], tests[tuned].horizon)
            out[tests[tuned].key] = {"default_model": default, **{k.replace("lead", "lead_over_default"): v for k, v in stats.items()}}
    return out


def _leads_significantly(stats: dict) -> bool:
    return stats["lead"] is not None and stats["lead"] > 0 and stats["lead_p"] is not None and stats["lead_p"] < ALPHA


def item_row(it: Item, bars_per_year: float) -> dict:
    """The item's row of metrics/compare.json: headline metrics, calibrated t and 90 % intervals."""
    row: dict = {"model": it.model, "family": it.family, "horizon": it.horizon}
    for split, keys in ROW_METRICS.items():
        m = it.metrics.get(split, {})
        for k in keys:
            row[f"{split}_{k}"] = _num(m.get(k))
    stats = series_stats(it.daily.get("test"), it.horizon, bars_per_year)
    for k in ("rank_ic_t", "rank_ic_p", "rank_ic_lo", "rank_ic_hi", "sharpe_lo", "sharpe_hi"):
        row[f"test_{k}"] = stats[k]
    row["test_dates"] = stats["dates"]
    # qlib-style spread: the metric's std across the seeds each stochastic model was fitted with
    row["seeds"] = int(it.metrics.get("seeds", 1))
    for split, key in (("val", "rank_ic"), ("test", "rank_ic"), ("test", "sharpe")):
        row[f"{split}_{key}_seed_std"] = _num(it.metrics.get(f"{split}_seed_std", {}).get(key))
    return row


def gate(rows: list[dict]) -> dict[str, bool]:
    """Phase 2 gate per model: val macro F1 > 0.35 and val Sharpe > 0.3 on at least one horizon."""
    out: dict[str, bool] = {}
    for r in rows:
        ok = (r.get("val_macro_f1") or 0.0) > GATE_F1 and (r.get("val_sharpe") or -math.inf) > GATE_SHARPE
        out[r["model"]] = out.get(r["model"], False) or ok
    return out


def _losses(items: list[Item]) -> pd.DataFrame:
    """[dates x models] loss = -daily test Rank IC, on the dates every model has one; models
    without any Rank IC (constant scores) are left out."""
    cols = {it.model: -it.daily["test"]["rank_ic"] for it in items if "test" in it.daily and it.daily["test"]["rank_ic"].notna().any()}
    return pd.DataFrame(cols).dropna(how="any")


def _choice_json(choices: list[FoldChoice], blocks: list[tuple[str, str]]) -> list[dict]:
    return [
        {
            **c.to_json(),
            "val_rank_ic": _num(c.val_rank_ic),
            "runner_up_val_rank_ic": _num(c.runner_up_val_rank_ic),
            "seed_spread": _num(c.seed_spread),
            "test": list(blocks[c.fold]) if c.fold < len(blocks) else None,
        }
        for c in choices
    ]


def _per_fold_name(choices: list[FoldChoice]) -> str:
    """ "gru" when every fold chose gru, else each fold's choice in order: "gru/lstm/gru"."""
    names = [c.chosen or "-" for c in choices]
    return names[0] if len(set(names)) == 1 else "/".join(names)


def horizon_verdict(items: list[Item], rows: dict[str, dict], n_trials: int, trial_sharpes_var: float, test_blocks: list[tuple[str, str]], bars_per_year: float, reps: int, seed: int) -> dict:
    """Walk-forward selection, the stitched series' verdict, the leads, SPA, MCS, the deflated
    Sharpe ratio and the power at one horizon. ``test_blocks``: each fold's test block (first,
    last date), in fold order."""
    # Long on purpose: one horizon's verdict, read top to bottom as the page presents it; each statistic is its own function already.
    h = items[0].horizon
    r = {it.model: rows[it.key] for it in items}
    folds = list(range(len(test_blocks)))
    starts = [pd.Timestamp(b[0]) for b in test_blocks]
    # selection sees validation only: the {model: {fold: [dates x seeds]}} val Rank IC
    choices = walk_forward_choices({it.model: it.val_by_fold for it in items if not it.is_baseline and it.val_by_fold}, folds)
    base_choices = walk_forward_choices({it.model: it.val_by_fold for it in items if it.is_baseline and it.val_by_fold}, folds)
    out: dict = {
        "horizon": h,
        "selected": None,
        "folds": _choice_json(choices, test_blocks),
        "selection": None,
        "baseline": None,
        "baseline_folds": _choice_json(base_choices, test_blocks),
        "test_best": None,
        "beats_baselines": [],
        "selected_lead": None,
        "lead": None,
        "deltas": {},
        "spa_p": None,
        "spa_benchmark": None,
        "mcs": [],
        "mcs_p": {},
        "dsr": None,
        "detectable_rank_ic": None,
        "survives": False,
        "checks": {},
    }
    if not any(c.chosen for c in choices):
        return out
    tests = {it.model: it.daily["test"] for it in items if "test" in it.daily}
    sel_daily = stitch(tests, choices, starts)
    sel = series_stats(sel_daily, h, bars_per_year)
    out["selected"] = _per_fold_name(choices)
    out["selection"] = sel
    base_daily = stitch(tests, base_choices, starts) if any(c.chosen for c in base_choices) else None
    base = series_stats(base_daily, h, bars_per_year) if base_daily is not None else None
    out["baseline"] = None if base is None else {"selected": _per_fold_name(base_choices), **base}
    contenders = [m for m, it in zip(r, items) if not it.is_baseline and it.val_by_fold and r[m]["test_rank_ic"] is not None]
    out["test_best"] = max(contenders, key=lambda m: r[m]["test_rank_ic"]) if contenders else None
    # each lead over the baseline with its uncertainty: the difference of the daily series, HAR-tested
    out["deltas"] = {m: lead_stats(tests[m], base_daily, h) for m, it in zip(r, items) if not it.is_baseline and m in tests}
    out["beats_baselines"] = [m for m, d in out["deltas"].items() if r[m]["test_rank_ic"] is not None and r[m]["test_rank_ic"] > 0 and _leads_significantly(d)]
    out["lead"] = lead_stats(sel_daily, base_daily, h)
    out["selected_lead"] = out["lead"]["lead"]
    out["detectable_rank_ic"] = _num(sig.detectable_mean(sel_daily["rank_ic"].to_numpy(dtype=float), h, alpha=ALPHA, power=POWER))

    losses = _losses(items)
    losses[SELECTION] = -sel_daily["rank_ic"].reindex(losses.index)
    losses = losses.dropna(how="any")
    if base_daily is not None and len(losses.columns) > 1:
        others = [m for m, it in zip(r, items) if not it.is_baseline and m in losses] + [SELECTION]
        bench = -base_daily["rank_ic"].reindex(losses.index).to_numpy(dtype=float)
        spa = sig.spa_test(bench, losses[others].to_numpy(), h, reps=reps, seed=seed)
        out["spa_p"], out["spa_benchmark"] = _num(spa["consistent"], 4), out["baseline"]["selected"]
    mcs = sig.model_confidence_set(losses, h, size=MCS_SIZE, reps=reps, seed=seed) if len(losses.columns) > 1 else {}
    ranked = {**{m: r[m]["test_rank_ic"] for m in r}, SELECTION: sel["rank_ic"]}
    out["mcs"] = sorted((m for m, p in mcs.items() if p >= MCS_SIZE), key=lambda m: -(ranked.get(m) or 0.0))
    out["mcs_p"] = {m: _num(p, 4) for m, p in mcs.items()}
    out["dsr"] = _num(sig.deflated_sharpe_ratio(sel_daily["net"].to_numpy(dtype=float), n_trials, trial_sharpes_var), 4)

    checks = {
        "rank_ic_positive_and_significant": bool(sel["rank_ic"] is not None and sel["rank_ic"] > 0 and sel["rank_ic_p"] is not None and sel["rank_ic_p"] < ALPHA),
        "beats_baselines": bool(sel["rank_ic"] is not None and sel["rank_ic"] > 0 and _leads_significantly(out["lead"])),
        "spa": out["spa_p"] is not None and out["spa_p"] < ALPHA,
        "in_mcs": SELECTION in out["mcs"],
        "deflated_sharpe": out["dsr"] is not None and out["dsr"] >= DSR_LEVEL,
    }
    out["checks"] = checks
    out["survives"] = all(checks.values())
    return out


def trial_sharpes(rows: dict[str, dict], bars_per_year: float) -> tuple[int, float]:
    """(number of non-baseline items tried, variance of their per-period test Sharpe ratios):
    the deflated Sharpe ratio's correction for the search over models and horizons."""
    srs = [r["test_sharpe"] / math.sqrt(bars_per_year) for r in rows.values() if r["family"] != BASELINE_FAMILY and r.get("test_sharpe") is not None]
    return max(len(srs), 1), float(np.var(srs, ddof=1)) if len(srs) > 1 else 0.0


# ----------------------------------------------------------------------------- the page


def _fmt(v, fmt: str) -> str:
    return "n/a" if v is None else fmt.format(v)


def _sd(v, fmt: str) -> str:
    return "" if v is None else " ± " + fmt.format(v)


def _ci(lo, hi, fmt: str) -> str:
    return "" if lo is None or hi is None else f" [{fmt.format(lo)}, {fmt.format(hi)}]"


def fold_lines(v: dict) -> list[str]:
    """The per-fold choices of one horizon: a small table, with near ties said plainly."""
    lines = ["| fold | test block | chosen on validation | its val Rank IC | validation window | runner-up | seed sd | baseline chosen |", "|---|---|---|---|---|---|---|---|"]
    for c, b in zip(v["folds"], v["baseline_folds"] or [{}] * len(v["folds"])):
        block = " … ".join(c["test"]) if c.get("test") else "n/a"
        window = " … ".join(c["window"]) if c.get("window") else "n/a"
        runner = "—" if c["runner_up"] is None else f"{c['runner_up']} ({_fmt(c['runner_up_val_rank_ic'], '{:+.4f}')})"
        chosen = c["chosen"] or "none"
        if c.get("coin_flip"):
            chosen += " (coin flip)"
        lines.append(f"| {c['fold']} | {block} | {chosen} | {_fmt(c['val_rank_ic'], '{:+.4f}')} | {window} | {runner} | {_fmt(c['seed_spread'], '{:.4f}')} | {b.get('chosen') or 'n/a'} |")
    flips = [c for c in v["folds"] if c.get("coin_flip")]
    if flips:
        lines += [
            "",
            "Coin flips: "
            + "; ".join(
                f"in fold {c['fold']} {c['chosen']} leads {c['runner_up']} by {c['val_rank_ic'] - c['runner_up_val_rank_ic']:.4f} in validation "
                f"Rank IC, less than their seed spread ({c['seed_spread']:.4f}) — a refit with other seeds could have chosen either"
                for c in flips
            )
            + ".",
        ]
    return lines


def _lead_txt(lead: dict | None) -> str:
    """+0.0193 [-0.0012, +0.0398], t +1.55 (p 0.121): a lead with its uncertainty."""
    if not lead or lead["lead"] is None:
        return "n/a"
    return f"{lead['lead']:+.4f}{_ci(lead['lead_lo'], lead['lead_hi'], '{:+.4f}')}, t {_fmt(lead['lead_t'], '{:+.2f}')} (p {_fmt(lead['lead_p'], '{:.3f}')})"


def _not_beating(v: dict) -> str:
    """Why the selection does not beat the walk-forward baseline, in words."""
    lead = v.get("lead") or {}
    if lead.get("lead") is None or lead["lead"] <= 0:
        return "it does not beat the walk-forward baseline"
    if not _leads_significantly(lead):
        return f"its lead over the walk-forward baseline is not significant (p ≥ {ALPHA:g})"
    return "it leads the walk-forward baseline only with a Rank IC at or below zero"


def verdict_lines(v: dict, rows: dict[str, dict], n_models: int) -> list[str]:
    """Plain sentences for one horizon's verdict."""
    h = v["horizon"]
    if v["selected"] is None:
        return [f"- **h = {h}:** no trained model has a validation Rank IC; nothing to select."]
    s = v["selection"]
    base = v["baseline"]
    base_txt = f"the baseline chosen the same way ({base['selected']}, {_fmt(base['rank_ic'], '{:+.4f}')})" if base else "zero (no baseline ran)"
    parts = [
        f"- **h = {h}: walk-forward selection — {v['selected']}** (fold by fold). "
        f"Out of sample: Rank IC {_fmt(s['rank_ic'], '{:+.4f}')}{_ci(s['rank_ic_lo'], s['rank_ic_hi'], '{:+.4f}')}, "
        f"t {_fmt(s['rank_ic_t'], '{:+.2f}')} (p {_fmt(s['rank_ic_p'], '{:.3f}')}), "
        f"Sharpe {_fmt(s['sharpe'], '{:+.2f}')}{_ci(s['sharpe_lo'], s['sharpe_hi'], '{:+.2f}')} net; "
        f"lead over {base_txt}: {_lead_txt(v.get('lead'))}.",
        f"  Over the {n_models} models tried: SPA p = {_fmt(v['spa_p'], '{:.3f}')} (does any model beat the walk-forward "
        f"baseline?); 90 % model confidence set: {', '.join(v['mcs']) if v['mcs'] else 'n/a'}; deflated Sharpe ratio "
        f"{_fmt(v['dsr'], '{:.2f}')}.",
    ]
    if v.get("detectable_rank_ic") is not None:
        parts.append(f"  Power: on this data only a mean Rank IC above {v['detectable_rank_ic']:.4f} would have shown with {POWER * 100:.0f} % probability at the {ALPHA:g} level.")
    failed = [k for k, ok in v["checks"].items() if not ok]
    names = {
        "rank_ic_positive_and_significant": f"its Rank IC is not significantly above zero (p ≥ {ALPHA:g})",
        "beats_baselines": _not_beating(v),
        "spa": f"the SPA test does not reject (p ≥ {ALPHA:g})",
        "in_mcs": "it is not in the 90 % model confidence set",
        "deflated_sharpe": f"its deflated Sharpe ratio is below {DSR_LEVEL:g}",
    }
    if v["survives"]:
        parts.append(f"  **Survives** every check: a signal that holds up after {n_models} models were tried.")
    else:
        parts.append("  **Does not survive:** " + "; ".join(names[k] for k in failed) + ".")
    if v["test_best"]:
        t = rows[f"{v['test_best']}-h{h}"]
        parts.append(
            f"  The best single model on test was {v['test_best']} (Rank IC {_fmt(t['test_rank_ic'], '{:+.4f}')}, pooled val "
            f"{_fmt(t['val_rank_ic'], '{:+.4f}')}): shown for reference, not a choice — picking it would be selection on test."
        )
    return parts


TABLE = (  # (title, cell) of the per-horizon table: at most 10 columns
    ("model", None),
    ("val Rank IC", lambda r: _fmt(r["val_rank_ic"], "{:+.4f}")),
    ("test Rank IC ± seed sd [90 % CI]", lambda r: _fmt(r["test_rank_ic"], "{:+.4f}") + _sd(r.get("test_rank_ic_seed_std"), "{:.4f}") + _ci(r["test_rank_ic_lo"], r["test_rank_ic_hi"], "{:+.3f}")),
    ("t (p)", lambda r: f"{_fmt(r['test_rank_ic_t'], '{:+.2f}')} ({_fmt(r['test_rank_ic_p'], '{:.3f}')})"),
    ("Sharpe net ± seed sd [90 % CI]", lambda r: _fmt(r["test_sharpe"], "{:+.2f}") + _sd(r.get("test_sharpe_seed_std"), "{:.2f}") + _ci(r["test_sharpe_lo"], r["test_sharpe_hi"], "{:+.2f}")),
    ("Δ vs baseline [90 % CI]", None),
    ("val macro F1", lambda r: _fmt(r["val_macro_f1"], "{:.3f}")),
    ("in MCS", None),
    ("gate", None),
)

DETAILS = (
    ("IC", "test_ic", "{:+.4f}"),
    ("IC t", "test_ic_t", "{:+.2f}"),
    ("ann. return", "test_annual_return", "{:+.2%}"),
    ("max DD", "test_max_drawdown", "{:.1%}"),
    ("turnover/day", "test_turnover", "{:.3f}"),
    ("bal. acc", "test_balanced_accuracy", "{:.4f}"),
    ("log loss", "test_log_loss", "{:.4f}"),
    ("seeds", "seeds", "{:d}"),
    ("val Rank IC seed sd", "val_rank_ic_seed_std", "{:.4f}"),
)


def comparison_markdown(rows: dict[str, dict], verdicts: dict[int, dict], gates: dict[str, bool], header: str, n_models: int) -> str:
    """metrics/comparison.md: the verdict first, then one short table per horizon, details folded."""
    # Long on purpose: the page, section by section, in reading order.
    lines = ["# Model comparison", "", header, "", "## Verdict", ""]
    for h in sorted(verdicts):
        lines += verdict_lines(verdicts[h], rows, n_models)
    survivors = [h for h, v in verdicts.items() if v["survives"]]
    lines += [
        "",
        "**Plainly:** "
        + (
            f"the walk-forward selection survives every check at h = {', '.join(map(str, survivors))}."
            if survivors
            else "the walk-forward selection survives the checks at no horizon: on this data nothing shown here is a "
            "reliable, tradeable edge over the baselines once the number of models tried is accounted for — which is not "
            "proof that there is none: the power line of each horizon says how large an edge could have shown."
        ),
    ]
    lines += [
        "",
        "Each fold's model is the non-baseline with the highest mean daily Rank IC on the validation blocks of "
        "that fold and the earlier ones (all end before the fold's test block); the selection's figures are those of "
        "the stitched out-of-sample series of the folds' choices. *Coin flip*: the lead over the runner-up is smaller "
        "than the larger of the two models' seed spread in that window.",
        "",
        "Rows: models sorted by pooled validation Rank IC (shown for reference; the choices use the walk-forward "
        "windows). ✓ chosen in some fold; † best on test (for reference only). *t (p)*: calibrated HAR t-test "
        "(equal-weighted cosine long-run variance, Student-t reference) of the mean daily Rank IC; intervals: "
        f"{CI_LEVEL:.0%}, from the same long-run variance (Sharpe: delta method). *Δ vs baseline*: the mean daily test Rank "
        f"IC lead over the walk-forward baseline on the dates both have, with its {CI_LEVEL:.0%} interval (same HAR "
        "long-run variance). *in MCS*: in the {1 - MCS_SIZE:.0%} model confidence set (p-value). *gate*: val "
        f"macro F1 > {GATE_F1:g} and val Sharpe > {GATE_SHARPE:g} at some horizon. Baselines in *italics*. A stochastic "
        "model (networks, dual tower, subsampling trees) is fitted with several seeds in every fold: its metrics are the "
        "mean over seeds, *± seed sd* their standard deviation across seeds, and its t, intervals and tests use the "
        "seeds' mean daily series.",
    ]
    for h in sorted(verdicts):
        v = verdicts[h]
        hr = sorted((r for r in rows.values() if int(r["horizon"]) == h), key=lambda r: -(r["val_rank_ic"] if r["val_rank_ic"] is not None else -math.inf))
        base_ric = (v.get("baseline") or {}).get("rank_ic")
        chosen = {c["chosen"] for c in v.get("folds", []) if c["chosen"]}
        lines += ["", f"## Horizon {h} bars", ""]
        if v.get("folds"):
            lines += fold_lines(v) + [""]
        lines += ["| " + " | ".join(t for t, _ in TABLE) + " |", "|" + "---|" * len(TABLE)]
        for r in hr:
            name = f"*{r['model']}*" if r["family"] == BASELINE_FAMILY else r["model"]
            name += " ✓" if r["model"] in chosen else ""
            name += " †" if r["model"] == v["test_best"] else ""
            cells = []
            for title, cell in TABLE:
                if title == "model":
                    cells.append(name)
                elif title == "Δ vs baseline [90 % CI]":
                    d = v.get("deltas", {}).get(r["model"]) if base_ric is not None else None
                    cells.append("n/a" if d is None or d["lead"] is None else _fmt(d["lead"], "{:+.4f}") + _ci(d["lead_lo"], d["lead_hi"], "{:+.3f}"))
                elif title == "in MCS":
                    p = v.get("mcs_p", {}).get(r["model"])
                    cells.append("n/a" if p is None else f"{'yes' if p >= MCS_SIZE else 'no'} ({p:.2f})")
                elif title == "gate":
                    cells.append("pass" if gates.get(r["model"]) else "—")
                else:
                    cells.append(cell(r))
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"<details><summary>More metrics, h = {h} (test)</summary>", "", "| model | " + " | ".join(t for t, _, _ in DETAILS) + " |", "|" + "---|" * (len(DETAILS) + 1)]
        for r in hr:
            lines.append(f"| {r['model']} | " + " | ".join(_fmt(r.get(k), f) for _, k, f in DETAILS) + " |")
        lines += [
            "",
            "</details>",
            "",
            f"Plots: [Rank IC by year](../plots/compare/rank_ic_by_year_h{h}.png) · "
            f"[cumulative Rank IC](../plots/compare/cumulative_rank_ic_h{h}.png) · "
            f"[equity curves](../plots/compare/equity_h{h}.png) · [score correlation](../plots/compare/score_correlation_h{h}.png)",
        ]
    return "\n".join(lines) + "\n"


def tuned_lines(rows: dict[str, dict], tuned: list[str], horizons: list[int]) -> list[str]:
    """The "Tuned vs default" section: each tuned model beside its params.yaml configuration, with
    the paired test Rank IC difference (``tuned_leads``) and its uncertainty."""
    if not tuned:
        return []
    lines = [
        "",
        "## Tuned vs default",
        "",
        "Each model of run.tune was given an Optuna study per horizon and walk-forward fold after the first (fold k's "
        "objective: the pooled validation Rank IC of folds 0..k-1; test never read) and refitted fold by fold with "
        "that fold's best params as `<model>_tuned` (tuned/<model>-h<h>.yaml; fold 0 keeps params.yaml's, as no "
        "validation block precedes it). No fold's params were tuned on the validation block its fit is scored and "
        "selected on, so the validation columns compare like with like. *Δ tuned − default*: the mean daily test Rank IC "
        f"difference on the dates both have, with its {CI_LEVEL:.0%} interval and HAR t-test (p); fold 0's days differ by "
        "zero, as its fit is the default's.",
        "",
        "| model | h | val Rank IC default → tuned | test Rank IC default → tuned | Δ tuned − default [90 % CI] | t (p) | Sharpe net default → tuned |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in tuned:
        for h in horizons:
            d, t = rows.get(f"{m}-h{h}"), rows.get(f"{m}_tuned-h{h}")
            if d is None or t is None:
                continue
            same = t.get("lead_over_default") == 0 and t.get("lead_over_default_t") is None  # no variance: equal on every date
            lines.append(
                f"| {m} | {h} | {_fmt(d['val_rank_ic'], '{:+.4f}')} → {_fmt(t['val_rank_ic'], '{:+.4f}')} "
                f"| {_fmt(d['test_rank_ic'], '{:+.4f}')} → {_fmt(t['test_rank_ic'], '{:+.4f}')} "
                f"| {_fmt(t.get('lead_over_default'), '{:+.4f}')}{_ci(t.get('lead_over_default_lo'), t.get('lead_over_default_hi'), '{:+.4f}')} "
                f"| {'identical fits' if same else _fmt(t.get('lead_over_default_t'), '{:+.2f}') + ' (' + _fmt(t.get('lead_over_default_p'), '{:.3f}') + ')'} "
                f"| {_fmt(d['test_sharpe'], '{:+.2f}')} → {_fmt(t['test_sharpe'], '{:+.2f}')} |"
            )
    return lines


def score_correlations(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Spearman correlation of the models' scores on the (symbol, datetime) rows they share.

    ``predictions``: model -> frame with symbol, datetime, score. Constant scores give NaN."""
    keyed = {m: f.set_index(["symbol", "datetime"])["score"] for m, f in predictions.items()}
    wide = pd.DataFrame(keyed).dropna()
    return wide.rank().corr(method="pearson")  # Spearman = Pearson on ranks
