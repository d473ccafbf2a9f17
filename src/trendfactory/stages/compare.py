"""Stage `compare`: every model × horizon in one table, the walk-forward selection on
validation, the verdict on the stitched out-of-sample series.

Reads metrics/eval/<model>-h<h>/detail.json, each item's out-of-sample test predictions
(with several seeds: the seeds' mean daily Rank IC and net return, which the tests use) and its
validation predictions fold by fold (the selection's input) for the items of (``run.models`` +
``run.neural_models`` + ``run.joint_models``) × ``label.horizons``; writes
metrics/summary/h<h>.json (the verdict per horizon: a DVC metric), metrics/compare.json
(``summary`` and ``items``: one row per item with every number the page shows; git-tracked, not a
DVC metric), metrics/comparison.md and plots/compare/ (Rank IC by year, cumulative Rank IC, equity
curves, score correlation). It also deletes the git-tracked metrics of items no longer in the run
lists, and rewrites the results section of ./README.md (between its markers, when it has them)
from metrics/compare.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from trendfactory.errors import TrendfactoryError
from trendfactory.evaluation import plots
from trendfactory.evaluation.ensemble import ENSEMBLES, ensemble_members
from trendfactory.evaluation.compare import SELECTION, Item, comparison_markdown, gate, horizon_verdict, item_row, score_correlations, trial_sharpes, tuned_leads, tuned_lines
from trendfactory.evaluation.metrics import daily_ic, long_short_book, next_bar_returns
from trendfactory.evaluation.seeds import mean_daily, mean_predictions, seed_frames
from trendfactory.evaluation.results import has_section, update_readme
from trendfactory.evaluation.selection import FoldChoice, fold_of_dates, seed_daily_by_fold, stitch
from trendfactory.io import atomic_dir, atomic_path, read_json, write_json
from trendfactory.models import get_model_class
from trendfactory.models.registry import TUNED_SUFFIX
from trendfactory.models.registry import train_stage
from trendfactory.params import Params
from trendfactory.paths import COMPARE_JSON, COMPARE_PLOTS_DIR, COMPARISON_MD, ENSEMBLE_EVAL_DIR, ENSEMBLE_PREDICTIONS_DIR, EVAL_DIR, FEATURES_DIR, RAW_DIR, SUMMARY_DIR, item_id
from trendfactory.stages.common import log, stage_main
from trendfactory.evaluation.items import DETAIL_FILE, read_predictions, seed_books

README = Path("README.md")


def _daily(frame: pd.DataFrame, book: pd.DataFrame) -> pd.DataFrame:
    """[dates] rank_ic, ic (of the prediction dates) and the book's net return."""
    out = pd.DataFrame({"rank_ic": daily_ic(frame, "spearman"), "ic": daily_ic(frame, "pearson")})
    return out.join(book["net"], how="outer")


def _read_item(model: str, horizon: int, next_returns: pd.DataFrame, entry_lag: int, params: Params) -> tuple[Item, pd.DataFrame]:
    """An item's evaluate metrics and out-of-sample daily series (the seeds' mean of each) and
    its test book (the seeds' mean)."""
    name = item_id(model, horizon)
    metrics_path = EVAL_DIR / name / DETAIL_FILE
    if not metrics_path.is_file():
        raise TrendfactoryError(f"{metrics_path}: missing; run `dvc repro {train_stage(model, horizon).replace('train', 'evaluate', 1)}` first")
    cls = get_model_class(model)
    frame = read_predictions(model, horizon, "test")
    seeds = seed_frames(frame)
    books = seed_books(frame, horizon, next_returns, entry_lag, params.evaluate.cost_bps)
    daily = mean_daily([_daily(f, b) for f, b in zip(seeds, books)])
    val = seed_daily_by_fold(read_predictions(model, horizon, "val", per_fold=True), lambda f: daily_ic(f, "spearman"))
    item = Item(model=model, family=cls.family, horizon=horizon, metrics=read_json(metrics_path), daily={"test": daily}, test_predictions=mean_predictions(frame), val_by_fold=val)
    return item, mean_daily(books)


def _read_ensemble(name: str, horizon: int, next_returns: pd.DataFrame, entry_lag: int, params: Params) -> tuple[Item, pd.DataFrame]:
    item = item_id(name, horizon)
    paths = (ENSEMBLE_EVAL_DIR / item / DETAIL_FILE, ENSEMBLE_PREDICTIONS_DIR / item / f"test_h{horizon}.parquet")
    for path in paths:
        if not path.is_file():
            raise TrendfactoryError(f"{path}: missing; run `dvc repro ensemble@{horizon}` first")
    frame = pd.read_parquet(paths[1])
    book = long_short_book(frame, next_returns, horizon, entry_lag, params.evaluate.cost_bps)
    it = Item(model=name, family="ensemble", horizon=horizon, metrics=read_json(paths[0]), daily={"test": _daily(frame, book)}, test_predictions=frame)
    return it, book


def main_body(params: Params, args: argparse.Namespace) -> None:
    # Long on purpose: the stage's steps in order (read, select, test, write page, plots, README); each is a call.
    horizons = list(params.label.horizons)
    tuned = [f"{m}{TUNED_SUFFIX}" for m in params.run.tune]  # beside their defaults (train_tuned / evaluate_tuned)
    models = [*params.run.models, *params.run.neural_models, *params.run.joint_models, *tuned]
    schema = read_json(FEATURES_DIR / "schema.json")
    entry_lag = int(schema["label"]["entry_lag"])
    bars = pd.read_parquet(RAW_DIR / "bars.parquet", columns=["symbol", "datetime", "close"])
    next_returns = next_bar_returns(bars)
    families = {m: get_model_class(m).family for m in models}

    items: dict[int, list[Item]] = {}
    books: dict[int, dict[str, pd.DataFrame]] = {}
    for h in horizons:
        items[h], books[h] = [], {}
        for m in models:
            it, book = _read_item(m, h, next_returns, entry_lag, params)
            items[h].append(it)
            books[h][m] = book
        if ensemble_members(params):  # ensemble@<h> built them
            for name in ENSEMBLES:
                it, book = _read_ensemble(name, h, next_returns, entry_lag, params)
                items[h].append(it)
                books[h][name] = book
                families[name] = "ensemble"
        log.info("h%d: read %d items", h, len(items[h]))
    bpy = params.evaluate.bars_per_year
    rows = {it.key: item_row(it, bpy) for h in horizons for it in items[h]}
    n_trials, sr_var = trial_sharpes(rows, bpy)
    for h in horizons:  # each tuned item's paired lead over its default, in its row of compare.json
        for key, lead in tuned_leads(items[h], {f"{m}{TUNED_SUFFIX}": m for m in params.run.tune}).items():
            rows[key].update(lead)
    folds = schema["split"]["folds"]
    blocks = _test_blocks([pd.Timestamp(f["test_start"]) for f in folds], items[horizons[0]])
    verdicts = {h: horizon_verdict(items[h], rows, n_trials, sr_var, blocks, bpy, params.evaluate.bootstrap_reps, params.seed) for h in horizons}
    gates = gate(list(rows.values()))
    for r in rows.values():
        r["gate"] = gates[r["model"]]
        r["in_mcs"] = r["model"] in verdicts[int(r["horizon"])]["mcs"]

    test_dates = [it.daily["test"].index for it in items[horizons[0]] if len(it.daily["test"])]
    span = f"{min(d.min() for d in test_dates).date()} … {max(d.max() for d in test_dates).date()}" if test_dates else "n/a"
    header = (
        f"Scheme **{schema['split']['scheme']}**: {len(folds)} fold(s); each fold's model is fitted on its train block, "
        f"early-stopped and selected on the validation block before its test block, and predicts only its own test block. "
        f"Test = the folds' test blocks joined: out of sample {span}. Costs {params.evaluate.cost_bps:g} bp per unit of "
        f"turnover; the long/short book holds each day's signal h bars in 1/h tranches."
    )
    n_models = len([m for m in families if families[m] != "baseline"])  # models and ensembles tried
    md = comparison_markdown(rows, verdicts, gates, header, n_models)
    md += "\n".join(tuned_lines(rows, list(params.run.tune), horizons)) + ("\n" if tuned else "")
    summary = {
        f"h{h}": {
            **_summary(v),
            "dsr": v["dsr"],
            "in_mcs": v["checks"].get("in_mcs", False),
            "test_best": v["test_best"],
            "detectable_rank_ic": v["detectable_rank_ic"],
            "selection": v["selection"],
            "folds": v["folds"],
            "baseline": v["baseline"],
            "baseline_folds": v["baseline_folds"],
            "mcs": v["mcs"],
        }
        for h, v in verdicts.items()
    }

    with atomic_dir(COMPARE_PLOTS_DIR) as plot_dir:
        for h in horizons:
            order = sorted(items[h], key=lambda it: -(rows[it.key]["val_rank_ic"] if rows[it.key]["val_rank_ic"] is not None else -np.inf))
            ric = pd.DataFrame({it.model: it.daily["test"]["rank_ic"] for it in order})
            if verdicts[h]["selected"] is not None:  # the stitched series of the folds' choices, drawn thick
                ric[SELECTION] = stitch({it.model: it.daily["test"] for it in order}, _choices(verdicts[h]), [pd.Timestamp(b[0]) for b in blocks])["rank_ic"]
            plots.by_year_heatmap(ric, families, h, plot_dir / f"rank_ic_by_year_h{h}.png")
            plots.cumulative_ic(ric, families, SELECTION, h, plot_dir / f"cumulative_rank_ic_h{h}.png")
            plots.equity_curves(books[h], families, h, plot_dir / f"equity_h{h}.png")
            corr = score_correlations({it.model: it.test_predictions for it in order})
            plots.correlation_heatmap(corr, h, plot_dir / f"score_correlation_h{h}.png")
        write_json({"summary": summary, "items": rows}, COMPARE_JSON)
        with atomic_path(COMPARISON_MD) as tmp:
            tmp.write_text(md)
    with atomic_dir(SUMMARY_DIR) as out:
        for h, v in verdicts.items():
            write_json(_summary(v), out / f"h{h}.json")
    _prune_stale_metrics({it.key for h in horizons for it in items[h]})
    if has_section(README):  # the project's own README: its results section is written from compare.json, never by hand
        if update_readme(README, COMPARE_JSON):
            log.info("rewrote the results section of %s from %s (commit both)", README, COMPARE_JSON)
    log.info("compared %d items; see %s", len(rows), COMPARISON_MD)
    for h, v in verdicts.items():
        s = v["selection"]
        if s is None:
            continue
        log.info(
            "h%d: walk-forward selection %s: test Rank IC %s (t %s, p %s), Sharpe %s; SPA p %s, DSR %s; detectable Rank IC %s: %s",
            h,
            v["selected"],
            _f(s["rank_ic"], 4),
            _f(s["rank_ic_t"]),
            _f(s["rank_ic_p"], 3, ""),
            _f(s["sharpe"]),
            _f(v["spa_p"], 3, ""),
            _f(v["dsr"], 2, ""),
            _f(v["detectable_rank_ic"], 4, ""),
            "SURVIVES" if v["survives"] else "does not survive",
        )


def _f(v, digits: int = 2, sign: str = "+") -> str:
    return "n/a" if v is None else f"{v:{sign}.{digits}f}"


def _test_blocks(starts: list[pd.Timestamp], items: list[Item]) -> list[tuple[str, str]]:
    """Each fold's test block as (first, last) date with a prediction: the fold's boundary is
    where its block may start, the embargo and the data's end say where it really does."""
    dates = pd.DatetimeIndex(sorted(set().union(*(it.daily["test"].index for it in items if "test" in it.daily))))
    fold = fold_of_dates(dates, starts)
    blocks = []
    for k, start in enumerate(starts):
        inside = dates[fold == k]
        blocks.append((str(inside.min().date()), str(inside.max().date())) if len(inside) else (str(start.date()), "no test dates"))
    return blocks


def _choices(v: dict) -> list[FoldChoice]:
    """The verdict's fold choices back as FoldChoice (for stitching the plot's series)."""
    return [FoldChoice(fold=c["fold"], chosen=c["chosen"], val_rank_ic=c["val_rank_ic"]) for c in v["folds"]]


def _summary(v: dict) -> dict:
    """The compact per-horizon metric (metrics/summary/h<h>.json): each fold's choice on
    validation ("gru/gru/lstm"), the stitched series' out-of-sample Rank IC with its calibrated
    t and p, Sharpe, its lead over the walk-forward baseline, the SPA p and whether it survives
    (all checks). Keys shared with metrics/eval/<item>.json mean the same, so `dvc metrics show`
    stays one narrow table."""
    s = v["selection"] or {}
    return {
        "selected": v["selected"],
        "rank_ic": s.get("rank_ic"),
        "rank_ic_t": s.get("rank_ic_t"),
        "rank_ic_p": s.get("rank_ic_p"),
        "sharpe": s.get("sharpe"),
        "lead": v.get("selected_lead"),
        "spa_p": v["spa_p"],
        # the lead's t, p and interval, the deflated Sharpe ratio, the MCS and the power are in compare.json's
        # summary: one more column here would take `dvc metrics show` past 200 characters
        "survives": v["survives"],
    }


def _prune_stale_metrics(current: set[str]) -> None:
    """Delete the git-tracked metrics of items no longer in the run lists (a model taken out of
    run.models, a horizon dropped): metrics/eval/<item>.json and metrics/eval/<item>/ would
    otherwise linger in the repository."""
    import shutil

    if not EVAL_DIR.is_dir():
        return
    for path in sorted(EVAL_DIR.iterdir()):
        item = path.stem if path.is_file() else path.name
        if (path.is_dir() or path.suffix == ".json") and item not in current:
            log.info("removing %s: %s is no longer in the run lists", path, item)
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()


def main() -> None:
    stage_main("compare", main_body)


if __name__ == "__main__":
    main()
