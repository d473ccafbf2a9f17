"""The comparison: every model × horizon side by side, the winner chosen on validation, and a
verdict that says whether it survives the number of models tried.

Inputs per item (``Item``): evaluate's metrics.json and the item's daily series -- the
cross-sectional Rank IC and IC of each date, and the long/short book's net return -- of the
pooled validation blocks and of the joined out-of-sample test series.

- **Selection never touches test.** Per horizon the selected model is the non-baseline with
  the highest validation Rank IC (the folds' validation blocks pooled); only then is it
  reported on test. The best model on test is shown too, labelled as such, never chosen.
- **Beats the baselines** means a positive test Rank IC *and* a lead over the best baseline's.
- **Significance** that survives snooping (``evaluation.significance``): a calibrated HAR t
  (EWC) and a stationary-bootstrap 90 % interval per model; per horizon, Hansen's SPA test of
  the models against the baseline chosen on validation, a 90 % model confidence set, and the
  deflated Sharpe ratio of the selected model for every item tried.
- **Phase 2 gate**: validation macro F1 > 0.35 and validation net Sharpe > 0.3 on at least one
  horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from trendfactory.evaluation import significance as sig

BASELINE_FAMILY = "baseline"
ALPHA = 0.05  # significance level of every test the verdict uses
CI_LEVEL = 0.90  # bootstrap interval level
MCS_SIZE = 0.10  # 90 % model confidence set
DSR_LEVEL = 0.95  # a deflated Sharpe ratio at or above this counts
GATE_F1, GATE_SHARPE = 0.35, 0.3  # Phase 2 gate on validation

# metrics copied from evaluate's metrics.json per split into the row (as <split>_<metric>)
ROW_METRICS = {
    "val": ("rank_ic", "ic", "sharpe", "macro_f1", "balanced_accuracy", "log_loss"),
    "test": ("rank_ic", "ic", "rank_ic_tstat_nw", "ic_tstat_nw", "sharpe", "annual_return", "max_drawdown", "turnover",
             "macro_f1", "balanced_accuracy", "log_loss"),
}


@dataclass
class Item:
    """One model at one horizon: what evaluate measured, and its daily series per split
    (``daily[split]``: DataFrame indexed by date with ``rank_ic``, ``ic``, ``net``)."""

    model: str
    family: str
    horizon: int
    metrics: dict
    daily: dict[str, pd.DataFrame] = field(default_factory=dict)
    test_predictions: pd.DataFrame | None = None  # symbol, datetime, score of the test series

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


def item_row(it: Item, bars_per_year: float, reps: int, seed: int) -> dict:
    """The item's row of metrics/compare.json: headline metrics, calibrated t and 90 % intervals."""
    row: dict = {"model": it.model, "family": it.family, "horizon": it.horizon}
    for split, keys in ROW_METRICS.items():
        m = it.metrics.get(split, {})
        for k in keys:
            row[f"{split}_{k}"] = _num(m.get(k))
    daily = it.daily.get("test")
    ric = daily["rank_ic"].to_numpy() if daily is not None else np.zeros(0)
    net = daily["net"].to_numpy() if daily is not None else np.zeros(0)
    t = sig.mean_test(ric, it.horizon)
    row["test_rank_ic_t"], row["test_rank_ic_p"] = _num(t.t, 4), _num(t.p, 4)
    lo, hi = sig.bootstrap_ci(ric, lambda x: float(x.mean()), it.horizon, level=CI_LEVEL, reps=reps, seed=seed)
    row["test_rank_ic_lo"], row["test_rank_ic_hi"] = _num(lo), _num(hi)
    lo, hi = sig.bootstrap_ci(net, lambda x: sig.annualised_sharpe(x, bars_per_year), it.horizon, level=CI_LEVEL, reps=reps, seed=seed)
    row["test_sharpe_lo"], row["test_sharpe_hi"] = _num(lo, 4), _num(hi, 4)
    row["test_dates"] = int(np.isfinite(ric).sum())
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


def horizon_verdict(items: list[Item], rows: dict[str, dict], n_trials: int, trial_sharpes_var: float, reps: int, seed: int) -> dict:
    """Selection on validation, the leads, SPA, MCS and the deflated Sharpe ratio at one horizon."""
    h = items[0].horizon
    r = {it.model: rows[it.key] for it in items}
    contenders = [m for m, it in zip(r, items) if not it.is_baseline and r[m]["val_rank_ic"] is not None]
    baselines = [m for m, it in zip(r, items) if it.is_baseline and r[m]["test_rank_ic"] is not None]
    out: dict = {"horizon": h, "selected": None, "test_best": None, "best_baseline": None, "beats_baselines": [],
                 "spa_p": None, "spa_benchmark": None, "mcs": [], "dsr": None, "survives": False, "checks": {}}
    if not contenders:
        return out
    selected = max(contenders, key=lambda m: r[m]["val_rank_ic"])
    with_test = [m for m in contenders if r[m]["test_rank_ic"] is not None]
    out["selected"] = selected
    out["test_best"] = max(with_test, key=lambda m: r[m]["test_rank_ic"]) if with_test else None
    # The benchmark is fixed before looking at test: the baseline best on validation. The lead
    # "over the baselines" is measured against the best of them on test (the harder bar).
    val_base = [m for m in baselines if r[m]["val_rank_ic"] is not None]
    bench = max(val_base, key=lambda m: r[m]["val_rank_ic"]) if val_base else None
    best_base = max(baselines, key=lambda m: r[m]["test_rank_ic"]) if baselines else None
    out["best_baseline"] = best_base
    base_ric = r[best_base]["test_rank_ic"] if best_base else 0.0
    out["beats_baselines"] = [m for m in with_test if r[m]["test_rank_ic"] > 0 and r[m]["test_rank_ic"] > base_ric]
    sel = r[selected]
    out["selected_lead"] = _num(sel["test_rank_ic"] - base_ric) if sel["test_rank_ic"] is not None else None

    losses = _losses(items)
    if bench is not None and bench in losses and len(losses.columns) > 1:
        others = [m for m, it in zip(r, items) if not it.is_baseline and m in losses]  # models and ensembles
        spa = sig.spa_test(losses[bench].to_numpy(), losses[others].to_numpy(), h, reps=reps, seed=seed)
        out["spa_p"], out["spa_benchmark"] = _num(spa["consistent"], 4), bench
    mcs = sig.model_confidence_set(losses, h, size=MCS_SIZE, reps=reps, seed=seed) if len(losses.columns) > 1 else {}
    out["mcs"] = sorted((m for m, p in mcs.items() if p >= MCS_SIZE), key=lambda m: -(r[m]["test_rank_ic"] or 0.0))
    out["mcs_p"] = {m: _num(p, 4) for m, p in mcs.items()}
    sel_item = next(it for it in items if it.model == selected)
    out["dsr"] = _num(sig.deflated_sharpe_ratio(sel_item.daily["test"]["net"].to_numpy(), n_trials, trial_sharpes_var), 4) if "test" in sel_item.daily else None

    checks = {
        "rank_ic_positive_and_significant": bool(sel["test_rank_ic"] is not None and sel["test_rank_ic"] > 0
                                                 and sel["test_rank_ic_p"] is not None and sel["test_rank_ic_p"] < ALPHA),
        "beats_baselines": selected in out["beats_baselines"],
        "spa": out["spa_p"] is not None and out["spa_p"] < ALPHA,
        "in_mcs": selected in out["mcs"],
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


def verdict_lines(v: dict, rows: dict[str, dict], n_models: int) -> list[str]:
    """Plain sentences for one horizon's verdict."""
    h = v["horizon"]
    if v["selected"] is None:
        return [f"- **h = {h}:** no trained model has a validation Rank IC; nothing to select."]
    s = rows[f"{v['selected']}-h{h}"]
    base = v["best_baseline"]
    base_txt = f"the best baseline ({base}, {_fmt(rows[f'{base}-h{h}']['test_rank_ic'], '{:+.4f}')})" if base else "zero (no baseline ran)"
    parts = [
        f"- **h = {h}: selected on validation — {v['selected']}** (val Rank IC {_fmt(s['val_rank_ic'], '{:+.4f}')}). "
        f"Out of sample: Rank IC {_fmt(s['test_rank_ic'], '{:+.4f}')}{_ci(s['test_rank_ic_lo'], s['test_rank_ic_hi'], '{:+.4f}')}, "
        f"t {_fmt(s['test_rank_ic_t'], '{:+.2f}')} (p {_fmt(s['test_rank_ic_p'], '{:.3f}')}), "
        f"Sharpe {_fmt(s['test_sharpe'], '{:+.2f}')}{_ci(s['test_sharpe_lo'], s['test_sharpe_hi'], '{:+.2f}')} net; "
        f"lead over {base_txt}: {_fmt(v.get('selected_lead'), '{:+.4f}')}.",
        f"  Over the {n_models} models tried: SPA p = {_fmt(v['spa_p'], '{:.3f}')} (does any model beat the baseline "
        f"{v['spa_benchmark'] or 'n/a'}, chosen on validation?); 90 % model confidence set: "
        f"{', '.join(v['mcs']) if v['mcs'] else 'n/a'}; deflated Sharpe ratio {_fmt(v['dsr'], '{:.2f}')}.",
    ]
    failed = [k for k, ok in v["checks"].items() if not ok]
    names = {"rank_ic_positive_and_significant": f"its Rank IC is not significantly above zero (p ≥ {ALPHA:g})",
             "beats_baselines": "it does not beat the best baseline", "spa": f"the SPA test does not reject (p ≥ {ALPHA:g})",
             "in_mcs": "it is not in the 90 % model confidence set", "deflated_sharpe": f"its deflated Sharpe ratio is below {DSR_LEVEL:g}"}
    if v["survives"]:
        parts.append(f"  **Survives** every check: a signal that holds up after {n_models} models were tried.")
    else:
        parts.append("  **Does not survive:** " + "; ".join(names[k] for k in failed) + ".")
    if v["test_best"] and v["test_best"] != v["selected"]:
        t = rows[f"{v['test_best']}-h{h}"]
        parts.append(f"  The best on test was {v['test_best']} (Rank IC {_fmt(t['test_rank_ic'], '{:+.4f}')}, val "
                     f"{_fmt(t['val_rank_ic'], '{:+.4f}')}): shown for reference, not a choice — picking it would be selection on test.")
    return parts


TABLE = (  # (title, cell) of the per-horizon table: at most 10 columns
    ("model", None),
    ("val Rank IC", lambda r: _fmt(r["val_rank_ic"], "{:+.4f}")),
    ("test Rank IC ± seed sd [90 % CI]", lambda r: _fmt(r["test_rank_ic"], "{:+.4f}") + _sd(r.get("test_rank_ic_seed_std"), "{:.4f}")
     + _ci(r["test_rank_ic_lo"], r["test_rank_ic_hi"], "{:+.3f}")),
    ("t (p)", lambda r: f"{_fmt(r['test_rank_ic_t'], '{:+.2f}')} ({_fmt(r['test_rank_ic_p'], '{:.3f}')})"),
    ("Sharpe net ± seed sd [90 % CI]", lambda r: _fmt(r["test_sharpe"], "{:+.2f}") + _sd(r.get("test_sharpe_seed_std"), "{:.2f}")
     + _ci(r["test_sharpe_lo"], r["test_sharpe_hi"], "{:+.2f}")),
    ("Δ vs best baseline", None),
    ("val macro F1", lambda r: _fmt(r["val_macro_f1"], "{:.3f}")),
    ("in MCS", None),
    ("gate", None),
)

DETAILS = (
    ("IC", "test_ic", "{:+.4f}"), ("Rank IC t (NW)", "test_rank_ic_tstat_nw", "{:+.2f}"),
    ("ann. return", "test_annual_return", "{:+.2%}"), ("max DD", "test_max_drawdown", "{:.1%}"), ("turnover/day", "test_turnover", "{:.3f}"),
    ("bal. acc", "test_balanced_accuracy", "{:.4f}"), ("log loss", "test_log_loss", "{:.4f}"), ("seeds", "seeds", "{:d}"),
    ("val Rank IC seed sd", "val_rank_ic_seed_std", "{:.4f}"),
)


def comparison_markdown(rows: dict[str, dict], verdicts: dict[int, dict], gates: dict[str, bool], header: str, n_models: int) -> str:
    """metrics/comparison.md: the verdict first, then one short table per horizon, details folded."""
    lines = ["# Model comparison", "", header, "", "## Verdict", ""]
    for h in sorted(verdicts):
        lines += verdict_lines(verdicts[h], rows, n_models)
    survivors = [h for h, v in verdicts.items() if v["survives"]]
    lines += ["", "**Plainly:** " + (
        f"a model selected on validation survives every check at h = {', '.join(map(str, survivors))}."
        if survivors else
        "no model selected on validation survives the checks at any horizon: on this data nothing shown here is a "
        "reliable, tradeable edge over the baselines once the number of models tried is accounted for."
    )]
    lines += ["", "Rows: models sorted by validation Rank IC (the selection metric). ✓ selected on validation; † best on "
              "test (for reference only). *t (p)*: calibrated HAR t-test (equal-weighted cosine long-run variance, Student-t "
              f"reference) of the mean daily Rank IC; intervals: {CI_LEVEL:.0%} stationary block bootstrap. *in MCS*: in the "
              f"{1 - MCS_SIZE:.0%} model confidence set (p-value). *gate*: val macro F1 > {GATE_F1:g} and val Sharpe > "
              f"{GATE_SHARPE:g} at some horizon. Baselines in *italics*. A stochastic model (networks, dual tower, "
              "subsampling trees) is fitted with several seeds in every fold: its metrics are the mean over seeds, *± seed sd* "
              "their standard deviation across seeds, and its t, intervals and tests use the seeds' mean daily series."]
    for h in sorted(verdicts):
        v = verdicts[h]
        hr = sorted((r for r in rows.values() if int(r["horizon"]) == h), key=lambda r: -(r["val_rank_ic"] if r["val_rank_ic"] is not None else -math.inf))
        base = v["best_baseline"]
        base_ric = rows[f"{base}-h{h}"]["test_rank_ic"] if base else None
        lines += ["", f"## Horizon {h} bars", "", "| " + " | ".join(t for t, _ in TABLE) + " |", "|" + "---|" * len(TABLE)]
        for r in hr:
            name = f"*{r['model']}*" if r["family"] == BASELINE_FAMILY else r["model"]
            name += " ✓" if r["model"] == v["selected"] else ""
            name += " †" if r["model"] == v["test_best"] else ""
            cells = []
            for title, cell in TABLE:
                if title == "model":
                    cells.append(name)
                elif title == "Δ vs best baseline":
                    d = None if base_ric is None or r["test_rank_ic"] is None or r["family"] == BASELINE_FAMILY else r["test_rank_ic"] - base_ric
                    cells.append(_fmt(d, "{:+.4f}"))
                elif title == "in MCS":
                    p = v.get("mcs_p", {}).get(r["model"])
                    cells.append("n/a" if p is None else f"{'yes' if p >= MCS_SIZE else 'no'} ({p:.2f})")
                elif title == "gate":
                    cells.append("pass" if gates.get(r["model"]) else "—")
                else:
                    cells.append(cell(r))
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", f"<details><summary>More metrics, h = {h} (test)</summary>", "",
                  "| model | " + " | ".join(t for t, _, _ in DETAILS) + " |", "|" + "---|" * (len(DETAILS) + 1)]
        for r in hr:
            lines.append(f"| {r['model']} | " + " | ".join(_fmt(r.get(k), f) for _, k, f in DETAILS) + " |")
        lines += ["", "</details>", "",
                  f"Plots: [Rank IC by year](../plots/compare/rank_ic_by_year_h{h}.png) · "
                  f"[cumulative Rank IC](../plots/compare/cumulative_rank_ic_h{h}.png) · "
                  f"[equity curves](../plots/compare/equity_h{h}.png) · [score correlation](../plots/compare/score_correlation_h{h}.png)"]
    return "\n".join(lines) + "\n"


def tuned_lines(rows: dict[str, dict], tuned: list[str], horizons: list[int]) -> list[str]:
    """The "Tuned vs default" section: each tuned model beside its params.yaml configuration."""
    if not tuned:
        return []
    lines = ["", "## Tuned vs default", "",
             "Each model of run.tune was given an Optuna study per horizon (objective: the pooled validation Rank IC "
             "of the walk-forward folds; test never read) and refitted with the best params as `<model>_tuned` "
             "(tuned/<model>-h<h>.yaml). Its validation Rank IC is the maximum over the study's trials, so it flatters "
             "the tuned model; the test columns are the fair comparison.", "",
             "| model | h | val Rank IC default → tuned | test Rank IC default → tuned | test Rank IC Δ [90 % CI of tuned] | Sharpe net default → tuned |",
             "|---|---|---|---|---|---|"]
    for m in tuned:
        for h in horizons:
            d, t = rows.get(f"{m}-h{h}"), rows.get(f"{m}_tuned-h{h}")
            if d is None or t is None:
                continue
            delta = None if d["test_rank_ic"] is None or t["test_rank_ic"] is None else t["test_rank_ic"] - d["test_rank_ic"]
            lines.append(
                f"| {m} | {h} | {_fmt(d['val_rank_ic'], '{:+.4f}')} → {_fmt(t['val_rank_ic'], '{:+.4f}')} "
                f"| {_fmt(d['test_rank_ic'], '{:+.4f}')} → {_fmt(t['test_rank_ic'], '{:+.4f}')} "
                f"| {_fmt(delta, '{:+.4f}')}{_ci(t.get('test_rank_ic_lo'), t.get('test_rank_ic_hi'), '{:+.4f}')} "
                f"| {_fmt(d['test_sharpe'], '{:+.2f}')} → {_fmt(t['test_sharpe'], '{:+.2f}')} |")
    return lines


def score_correlations(predictions: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Spearman correlation of the models' scores on the (symbol, datetime) rows they share.

    ``predictions``: model -> frame with symbol, datetime, score. Constant scores give NaN."""
    keyed = {m: f.set_index(["symbol", "datetime"])["score"] for m, f in predictions.items()}
    wide = pd.DataFrame(keyed).dropna()
    return wide.rank().corr(method="pearson")  # Spearman = Pearson on ranks
