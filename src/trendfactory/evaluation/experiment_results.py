"""Experiments' results on the documentation pages: saved from their git refs, rendered into
marked sections.

Why: an experiment that is not merged (the full run list, an ablation) leaves its metrics in a
DVC experiment ref, not on main, so its figures used to be typed into the docs by hand and went
stale the first time the pipeline moved. Here an experiment's ``metrics/compare.json`` (and its
baseline's) is copied, with the params it changed and the commits it ran on, into a snapshot file
under ``docs/results/`` that git tracks; every figure between a page's
``<!-- experiment:<name>:begin ... -->`` and ``<!-- experiment:<name>:end -->`` markers is rendered
from ``docs/results/<name>.json``. ``trendfactory results`` rewrites the sections, ``--check``
compares them (a test runs it), ``--save`` writes a snapshot from experiment refs.

Three views: ``added`` (one experiment that adds models to the run lists: the added models' rows,
then the whole race's verdict), ``variants`` (experiments that each change a parameter of some
models: one row per variant and horizon, the baseline first) and ``curves`` (learning curves with
early stopping off, written by ``benchmarks/learning_curves.py``).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import yaml

from trendfactory.errors import TrendfactoryError
from trendfactory.exps import flat_params
from trendfactory.evaluation.results import ALPHA, fmt_ci, fmt_value, run_facts, verdict_lines

RESULTS_DIR = Path("docs/results")
VIEWS = ("added", "variants")
SECTION = re.compile(r"<!-- experiment:(?P<name>[\w-]+):begin[^\n]*?-->\n(?P<body>.*?)<!-- experiment:(?P=name):end -->", re.S)


def _begin(name: str) -> str:
    return f"<!-- experiment:{name}:begin: generated from docs/results/{name}.json by `trendfactory results`; do not edit by hand -->"


def _git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TrendfactoryError(f"git {' '.join(args)}: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
    return proc.stdout


def experiment_ref(name: str, repo: Path) -> str:
    """The commit of the DVC experiment called ``name`` (its ref under refs/exps/)."""
    refs = [r for r in _git("for-each-ref", "refs/exps", "--format=%(refname) %(objectname)", cwd=repo).split("\n") if r]
    found = [sha for ref, sha in (r.split() for r in refs) if ref.rsplit("/", 1)[-1] == name]
    if len(found) != 1:
        where = "no experiment" if not found else f"{len(found)} experiments"
        raise TrendfactoryError(f"{where} named {name!r} in {repo}: `dvc exp list --all-commits` shows the names (`dvc exp pull <remote> {name}` fetches one run elsewhere)")
    return found[0]


def _read_run(rev: str, repo: Path, models: list[str] | None) -> tuple[dict, dict]:
    """(flattened params, compare.json) at ``rev``; with ``models``, only their items (and no verdict)."""
    params = flat_params(yaml.safe_load(_git("show", f"{rev}:params.yaml", cwd=repo)))
    try:
        compare = json.loads(_git("show", f"{rev}:metrics/compare.json", cwd=repo))
    except TrendfactoryError as err:
        raise TrendfactoryError(f"{rev[:12]}: no metrics/compare.json ({err}); was the experiment run to the end?") from None
    if models is not None:
        compare = {"items": {k: r for k, r in compare["items"].items() if r.get("model") in models}}
        if not compare["items"]:
            raise TrendfactoryError(f"{rev[:12]}: metrics/compare.json holds no item of {', '.join(models)}; name models the run lists hold")
    return params, compare


def snapshot(experiments: list[str], view: str, models: list[str] | None = None, repo: Path = Path(".")) -> dict:
    """The snapshot of ``experiments`` and their common baseline (the commit they ran on)."""
    if view not in VIEWS:
        raise TrendfactoryError(f"--view {view!r}: use one of {', '.join(VIEWS)}")
    if view == "variants" and not models:
        raise TrendfactoryError("--view variants needs --models (the models whose rows the variants change)")
    shas = [experiment_ref(name, repo) for name in experiments]
    bases = {_git("rev-parse", f"{sha}^", cwd=repo).strip() for sha in shas}
    if len(bases) != 1:
        raise TrendfactoryError(f"experiments {', '.join(experiments)} ran on {len(bases)} different commits; a snapshot compares experiments of one baseline")
    base = bases.pop()
    base_params, base_compare = _read_run(base, repo, models)
    runs = [{"name": "baseline", "commit": base, "changed": {}, "compare": base_compare}]
    for name, sha in zip(experiments, shas):
        params, compare = _read_run(sha, repo, models)
        changed = {k: [base_params.get(k), v] for k, v in params.items() if base_params.get(k) != v}
        runs.append({"name": name, "commit": sha, "changed": changed, "compare": compare})
    return {"view": view, "models": models, "baseline": base, "runs": runs}


def save_snapshot(path: Path, snap: dict) -> None:
    """Write ``snap`` to ``path`` (whole or not at all)."""
    from trendfactory.io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(snap, indent=1, sort_keys=True) + "\n")


def _horizons(compare: dict) -> list[int]:
    return sorted({int(r["horizon"]) for r in compare["items"].values()})


def _provenance(snap: dict, link: str) -> str:
    runs = snap["runs"][1:]
    names = ", ".join(f"`{r['name']}`" for r in runs)
    return f"Generated from [`docs/results/{Path(link).name}`]({link}): experiment{'s' if len(runs) > 1 else ''} {names}, run on commit `{snap['baseline'][:7]}`"


def _added(snap: dict, link: str) -> list[str]:
    """The models one experiment added to the run lists, then the whole race's verdict."""
    base, run = snap["runs"][0], snap["runs"][1]
    old = {r["model"] for r in base["compare"]["items"].values()}
    added = list(dict.fromkeys(r["model"] for r in run["compare"]["items"].values() if r["model"] not in old and r.get("family") != "ensemble"))
    horizons = _horizons(run["compare"])
    n_folds, span, seeds, n_items = run_facts(run["compare"])
    lines = [
        f"{_provenance(snap, link)}: walk-forward, {n_folds} fold{'s' if n_folds != 1 else ''}, out of sample {span}, the mean of {seeds} seeds; "
        f"*t (p)*: the HAR t-test of the mean daily Rank IC. The models the experiment added:",
        "",
        "| model | " + " | ".join(f"h={h} val Rank IC | h={h} test Rank IC [90 % CI] | t (p) | Sharpe net" for h in horizons) + " |",
        "|---|" + "---|---|---|---|" * len(horizons),
    ]
    for model in added:
        cells = []
        for h in horizons:
            r = run["compare"]["items"].get(f"{model}-h{h}", {})
            cells.append(
                f"{fmt_value(r.get('val_rank_ic'), '{:+.4f}')} | {fmt_value(r.get('test_rank_ic'), '{:+.4f}')}{fmt_ci(r.get('test_rank_ic_lo'), r.get('test_rank_ic_hi'), '{:+.3f}')} "
                f"| {fmt_value(r.get('test_rank_ic_t'), '{:+.2f}')} ({fmt_value(r.get('test_rank_ic_p'), '{:.3f}')}) | {fmt_value(r.get('test_sharpe'), '{:+.2f}')}"
            )
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", f"The comparison of all {n_items} non-baseline items, chosen per fold on validation as in the default run:", "", *verdict_lines(run["compare"])]
    return lines


def _label(run: dict, models: list[str]) -> str:
    if not run["changed"]:
        return "default"
    prefix = f"models.{models[0]}." if len(models) == 1 else ""
    return ", ".join(f"`{k.removeprefix(prefix)}={json.dumps(v[1]) if not isinstance(v[1], str) else v[1]}`" for k, v in run["changed"].items())


def _variants(snap: dict, link: str) -> list[str]:
    """One row per variant, model and horizon (the baseline first), and how far apart they are."""
    # Long on purpose: the table, then one sentence per horizon built from the same rows.
    models, runs = snap["models"], snap["runs"]
    horizons = _horizons(runs[0]["compare"])
    many = len(models) > 1  # a model column only when the variants span several models
    # several models that the default has too (not a model a variant adds): each variant is judged model by model
    paired = many and all(f"{m}-h{h}" in runs[0]["compare"]["items"] for m in models for h in horizons)
    lines = [
        f"{_provenance(snap, link)} (the default: that commit's own run); the mean of each model's seeds over the walk-forward folds' test blocks:",
        "",
        f"| variant |{' model |' if many else ''} h | val Rank IC | test Rank IC [90 % CI] | t (p) | test macro F1 | Sharpe net [90 % CI] |",
        "|---|---|---|---|---|---|---|" + ("---|" if many else ""),
    ]
    rows: dict[int, list[tuple[str, dict]]] = {h: [] for h in horizons}
    for run in runs:
        for model in models:
            for h in horizons:
                r = run["compare"]["items"].get(f"{model}-h{h}")
                if r is None or (run is not runs[0] and r == runs[0]["compare"]["items"].get(f"{model}-h{h}")):
                    continue  # absent, or the default's own row again (a model the variant did not change)
                label = _label(run, models)
                rows[h].append((f"{label} {model}" if many else label, r))
                lines.append(
                    f"| {label} |{f' {model} |' if many else ''} {h} | {fmt_value(r.get('val_rank_ic'), '{:+.4f}')} | {fmt_value(r.get('test_rank_ic'), '{:+.4f}')}"
                    f"{fmt_ci(r.get('test_rank_ic_lo'), r.get('test_rank_ic_hi'), '{:+.4f}')} | {fmt_value(r.get('test_rank_ic_t'), '{:+.2f}')} "
                    f"({fmt_value(r.get('test_rank_ic_p'), '{:.3f}')}) | {fmt_value(r.get('test_macro_f1'), '{:.4f}')} "
                    f"| {fmt_value(r.get('test_sharpe'), '{:+.2f}')}{fmt_ci(r.get('test_sharpe_lo'), r.get('test_sharpe_hi'), '{:+.2f}')} |"
                )
    lines.append("")
    for h in horizons:
        # a model that carries its paired lead over its default (a tuned variant): that, before any yardstick
        lines += [_against_default(label, r, h) for label, r in rows[h] if _finite(r.get("lead_over_default"))]
        if paired:  # the variants against the default model by model: what a variant changed, not which model ranks best
            lines += [_paired(runs[0], run, models, h, _label(run, models)) for run in runs[1:]]
            continue
        ranked = [(label, r) for label, r in rows[h] if _finite(r.get("test_rank_ic")) and _finite(r.get("val_rank_ic"))]
        if len(ranked) < 2:
            continue
        tests = [r["test_rank_ic"] for _, r in ranked]
        widths = [(r["test_rank_ic_hi"] - r["test_rank_ic_lo"]) / 2 for _, r in ranked if _finite(r.get("test_rank_ic_lo")) and _finite(r.get("test_rank_ic_hi"))]
        pick, pr = max(ranked, key=lambda lr: lr[1]["val_rank_ic"])
        spread = max(tests) - min(tests)
        noise = (
            f"less than the narrowest 90 % interval's half-width ({min(widths):.4f}): no variant stands out"
            if widths and spread <= min(widths)
            else f"more than the narrowest 90 % interval's half-width ({min(widths):.4f}) — one data set, one run each"
            if widths
            else "no intervals"
        )
        lines.append(
            f"At h = {h}: the variants' test Rank IC spans {min(tests):+.4f} … {max(tests):+.4f}, a spread of {spread:.4f}, {noise} "
            "(a rough yardstick: the variants share their test dates). "
            f"Chosen on validation, the variant would be {pick} (val {pr['val_rank_ic']:+.4f}, test {pr['test_rank_ic']:+.4f})."
        )
    return lines


def _against_default(label: str, r: dict, h: int) -> str:
    """One sentence: the row's test Rank IC lead over its default model on the dates both have
    (the compare stage's paired HAR test), and whether it is significant at level ``ALPHA``."""
    p = r.get("lead_over_default_p")
    if r["lead_over_default"] == 0 and r.get("lead_over_default_t") is None:  # no variance: the same predictions every date
        return f"At h = {h}, {label} equals {r.get('default_model', 'its default')} on every test date (its studies kept the default's params)."
    level = f"{ALPHA * 100:g} %"
    verdict = f"not significant at {level}" if not _finite(p) or p >= ALPHA else f"significant at {level}: {'better' if r['lead_over_default'] > 0 else 'worse'}"
    return (
        f"At h = {h}, {label} minus {r.get('default_model', 'its default')} on the same test dates (paired): "
        f"{r['lead_over_default']:+.4f}{fmt_ci(r.get('lead_over_default_lo'), r.get('lead_over_default_hi'), '{:+.4f}')}, "
        f"t {fmt_value(r.get('lead_over_default_t'), '{:+.2f}')} (p {fmt_value(p, '{:.3f}')}): {verdict}."
    )


def _paired(base: dict, run: dict, models: list[str], h: int, label: str) -> str:
    """One sentence: ``run`` against the default at horizon ``h``, each model against itself --
    how many models' validation and test Rank IC rose, the mean and range of the test change,
    and which changes exceed the default's own 90 % half-width."""
    pairs = []
    for model in models:
        a, b = base["compare"]["items"].get(f"{model}-h{h}"), run["compare"]["items"].get(f"{model}-h{h}")
        if a and b and all(_finite(x.get(k)) for x in (a, b) for k in ("val_rank_ic", "test_rank_ic")):
            pairs.append((model, a, b))
    if not pairs:
        return f"At h = {h}, {label}: no model has a validation and test Rank IC in both runs."
    d_val = [b["val_rank_ic"] - a["val_rank_ic"] for _, a, b in pairs]
    d_test = [b["test_rank_ic"] - a["test_rank_ic"] for _, a, b in pairs]
    half = [(a["test_rank_ic_hi"] - a["test_rank_ic_lo"]) / 2 if _finite(a.get("test_rank_ic_lo")) and _finite(a.get("test_rank_ic_hi")) else None for _, a, _ in pairs]
    beyond = [f"{m} ({d:+.4f})" for (m, _, _), d, w in zip(pairs, d_test, half) if w is not None and abs(d) > w]
    n = len(pairs)
    return (
        f"At h = {h}, {label} against the default, model by model: the validation Rank IC rose for {sum(d > 0 for d in d_val)} of {n} models "
        f"(mean change {sum(d_val) / n:+.4f}), the test Rank IC for {sum(d > 0 for d in d_test)} of {n} (mean change {sum(d_test) / n:+.4f}, "
        f"from {min(d_test):+.4f} to {max(d_test):+.4f}); "
        + (f"the test change exceeds the default's 90 % half-width for {', '.join(beyond)}." if beyond else "no model's test change exceeds the default's own 90 % half-width.")
    )


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and v == v and abs(v) != float("inf")


def _curves(snap: dict, link: str) -> list[str]:
    """Learning curves with early stopping off (written by benchmarks/learning_curves.py): each
    network's and learning rate's validation loss and Rank IC by epoch, the best loss in bold."""
    runs, uniform = snap["runs"], math.log(3)  # log loss of a uniform guess over 3 classes
    epochs = max(len(r["val_loss"]) for r in runs)
    lines = [
        f"Generated from [`docs/results/{Path(link).name}`]({link}) (`benchmarks/learning_curves.py` on commit "
        f"`{snap['commit'][:7]}`): walk-forward fold {snap['fold']}, train {snap['train'][0]} … {snap['train'][1]}, "
        f"validation {snap['val'][0]} … {snap['val'][1]}, {epochs} epochs with early stopping off, both heads' mean "
        f"(a uniform guess's log loss is {uniform:.4f}):",
        "",
        f"| network | lr | val log loss by epoch 1 … {epochs} | val daily Rank IC by epoch 1 … {epochs} |",
        "|---|---|---|---|",
    ]
    for r in runs:
        best = min(range(len(r["val_loss"])), key=r["val_loss"].__getitem__)
        losses = " ".join(f"**{v:.3f}**" if i == best else f"{v:.3f}" for i, v in enumerate(r["val_loss"]))
        ics = " ".join(fmt_value(v, "{:+.3f}") for v in r["val_rank_ic"])
        lines.append(f"| {r['model']} | {r['lr']:.0e}{' (default)' if r['default'] else ''} | {losses} | {ics} |")
    lines.append("")
    for r in runs:
        best = min(range(len(r["val_loss"])), key=r["val_loss"].__getitem__)
        falls = all(b < a for a, b in zip(r["train_loss"], r["train_loss"][1:]))
        ics = [(v, i) for i, v in enumerate(r["val_rank_ic"]) if _finite(v)]
        top = f"; the validation Rank IC is highest at epoch {max(ics)[1] + 1} ({max(ics)[0]:+.4f})" if ics else ""
        lines.append(
            f"{r['model']} at lr {r['lr']:.0e}: the train loss {'falls at every epoch' if falls else 'does not fall at every epoch'} "
            f"({r['train_loss'][0]:.3f} → {r['train_loss'][-1]:.3f}); the validation loss is lowest at epoch {best + 1} "
            f"({r['val_loss'][best]:.4f}) and ends at {r['val_loss'][-1]:.4f}{top}."
        )
    stop = snap.get("stopped")
    if stop:
        lines.append(
            f"In the default run on that commit (`train.patience: {stop['patience']}`), {stop['first']} of the {stop['fits']} "
            f"network fits ({', '.join(stop['models'])} × folds × seeds) kept their first epoch."
        )
    return lines


def section(name: str, snap: dict, link: str) -> str:
    """The Markdown between ``name``'s markers, rendered from ``snap``."""
    views = {"added": _added, "variants": _variants, "curves": _curves}
    if snap.get("view") not in views:
        raise TrendfactoryError(f"docs/results/{name}.json: view {snap.get('view')!r} is not one of {', '.join(views)}; write it again")
    body = views[snap["view"]](snap, link)
    while body and not body[-1]:
        body.pop()
    return "\n".join([_begin(name), "", *body, "", f"<!-- experiment:{name}:end -->"])


def render_page(text: str, page: Path, results_dir: Path = RESULTS_DIR) -> str:
    """``text`` (the content of ``page``) with every experiment section rendered from its snapshot."""

    def render(m: re.Match) -> str:
        name = m["name"]
        path = results_dir / f"{name}.json"
        if not path.is_file():
            raise TrendfactoryError(f"{page}: section {name!r} needs {path}; write it with `trendfactory results --save {path} --experiments <names> --view <view>`")
        try:
            snap = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise TrendfactoryError(f"{path}: not JSON ({err.msg}, line {err.lineno}); write it again with `trendfactory results --save`") from None
        link = Path(os.path.relpath(path, page.parent)).as_posix()
        return section(name, snap, link)

    return SECTION.sub(render, text)


def update_pages(pages: list[Path], check: bool = False, results_dir: Path = RESULTS_DIR) -> list[Path]:
    """Render every experiment section of ``pages``; the pages that changed (with ``check``:
    nothing is written, and they are the stale ones)."""
    from trendfactory.io import atomic_path

    changed = []
    for page in pages:
        text = page.read_text()
        new = render_page(text, page, results_dir)
        if new != text:
            changed.append(page)
            if not check:
                with atomic_path(page) as tmp:
                    tmp.write_text(new)
    return changed
