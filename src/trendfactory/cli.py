"""trendfactory: a reproducible model factory for multi-horizon stock-trend prediction.

The pipeline itself runs with DVC (`dvc repro`, `dvc exp run -S key=value`, `dvc metrics diff`);
this command is the tool around it: check your own bar files and params before running the
pipeline on them, list the models it can train, score new bars with a trained model, export a
trained network to ONNX for production inference, put experiments side by side in a terminal, and
write the README's results section from the comparison's file."""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from trendfactory.errors import TrendfactoryError


# ---- the paths a command is given, checked before it works: one line naming the option and the fix


def _input_file(option: str, path: str | Path, fix: str) -> Path:
    """``path``, given as ``option``, when it is a file; else one line naming both and ``fix``."""
    path = Path(path)
    if path.is_dir():
        raise TrendfactoryError(f"{option} {path}: a directory, not a file; {fix}")
    if not path.exists():
        raise TrendfactoryError(f"{option} {path}: no such file; {fix}")
    return path


def _bars_input(args: argparse.Namespace) -> None:
    """A command's ``--input`` (validate, predict) must exist; the data layer's own message for a
    missing path names ``data.path``, the pipeline's key, where here the fix is the option."""
    path = getattr(args, "input", None)
    if isinstance(path, str) and not Path(path).exists():
        raise TrendfactoryError(f"--input {path}: no such file or directory; pass a CSV/Parquet file of bars, or a directory with one file per symbol")


def _writable_folder(folder: Path, what: str) -> None:
    """Prove that a file can be written in ``folder`` (creating it, then removing what was
    created), before any work whose result goes there."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    existing = folder.parents[len(missing) - 1] if missing else folder
    if not existing.is_dir():
        raise TrendfactoryError(f"{what}: {existing} is a file, not a directory; pass a path inside a directory you can write to")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise TrendfactoryError(f"{what}: cannot write in {folder} ({exc.strerror or type(exc).__name__}); pass a path inside a directory you can write to") from None
    finally:
        for made in missing:  # deepest first; the write itself creates them again
            if made.is_dir():
                made.rmdir()


def _output_file(path: str | Path) -> Path:
    """predict's ``--output``: a file whose directory can be written, checked before scoring."""
    path = Path(path)
    if path.is_dir():
        raise TrendfactoryError(f"--output {path}: a directory; name the predictions file, e.g. --output {path / 'predictions.csv'}")
    _writable_folder(path.parent, f"--output {path}")
    return path


@contextlib.contextmanager
def _warnings_to_stderr() -> Iterator[None]:
    """The package's warnings, meanwhile, as one ``warning: ...`` line each on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("warning: %(message)s"))
    handler.setLevel(logging.WARNING)
    logger = logging.getLogger("trendfactory")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def _validate(args: argparse.Namespace) -> None:
    """Check a user's bars as the ingest stage reads them with data.source: csv, through ingest's own
    code (run_ingest) under the params file's data keys (timezone, start/end, min_history, on_jump,
    jump_ratio) and the features' warm-up: what ingest refuses is the error; what it would drop or
    flag, its warning lines, and no ok."""
    import dataclasses

    from trendfactory.data.ingest import date_span, run_ingest
    from trendfactory.data.universe import required_history
    from trendfactory.params import load_params

    params = load_params(_input_file("--params", args.params, "run from the project root or pass --params <your params file>"))
    cfg = dataclasses.replace(params.data, source="csv", path=str(args.input))
    with _warnings_to_stderr():  # ingest's drop and jump warnings, one line each
        m = run_ingest(cfg, params.seed, required_history(params.features, params.label)).manifest
    cols = ", ".join(c for c in m["columns"] if c not in ("symbol", "datetime"))
    kept = f"{m['rows']:,} bars{date_span(cfg)}, {m['n_symbols']} symbols, {m['start']} .. {m['end']}; columns: {cols}"
    flagged = []
    if m["dropped_symbols"]:
        flagged.append(f"drop {len(m['dropped_symbols'])} symbol(s) too short for the features' warm-up (data.min_history: drop)")
    if m["suspect_jumps"]:
        flagged.append(f"warn of {len(m['suspect_jumps'])} suspect jump(s) (data.on_jump: warn)")
    if not flagged:
        print(f"ok: {args.input}: {kept}")
        return
    print(f"warning: {args.input}: ingest would {' and '.join(flagged)}, each named above, and keep {kept}; fix those files, or set data.min_history: error / data.on_jump: error to stop on them")


def _models(args: argparse.Namespace) -> None:
    """List the registered models with their family, kind (which run list) and capability flags."""
    from trendfactory.models import model_info
    from trendfactory.models.registry import RUN_LIST

    infos = model_info()
    width = max(len(i.full_name) for i in infos)
    print(f"{'model':{width}s}  {'family':10s}  {'run list':18s}  {'sequences':9s}  {'gpu':3s}  description")
    for i in infos:
        print(f"{i.full_name:{width}s}  {i.family:10s}  {'run.' + RUN_LIST[i.kind]:18s}  {'yes' if i.needs_sequences else 'no':9s}  {'yes' if i.can_use_gpu else 'no':3s}  {i.doc}")


def _check(args: argparse.Namespace) -> None:
    """Validate the whole params file: every section, every model's section, every run list."""
    from trendfactory.models.registry import RUN_LIST, get_model_class
    from trendfactory.params import load_params
    from trendfactory.stages.check_params import validate_everything

    params = load_params(_input_file("--params", args.params, "pass the params file, e.g. --params params.yaml"))
    validate_everything(params, args.params)
    counts = {key: len(getattr(params.run, key)) for key in RUN_LIST.values()}
    listed = [n for key in RUN_LIST.values() for n in getattr(params.run, key)]
    seqs = sum(get_model_class(n).needs_sequences for n in listed)
    print(f"ok: {args.params}: valid; runs {', '.join(f'{v} under run.{k}' for k, v in counts.items())} ({seqs} reading sequences) at horizons {list(params.label.horizons)}")


def _results(args: argparse.Namespace) -> None:
    """Rewrite (or, with --check, compare) the README's results section from metrics/compare.json and
    every page's experiment sections from docs/results/; with --save, write an experiment snapshot."""
    from trendfactory.evaluation.experiment_results import RESULTS_DIR, save_snapshot, snapshot, update_pages
    from trendfactory.evaluation.results import update_readme

    if args.save:
        if not args.experiments:
            raise TrendfactoryError("--save needs --experiments: the DVC experiments' names (`dvc exp list`)")
        if not re.fullmatch(r"[\w-]+", args.save):
            raise TrendfactoryError(f"--save {args.save!r}: a name of letters, digits, _ and - (it names docs/results/<name>.json and the page's markers)")
        path = RESULTS_DIR / f"{args.save}.json"
        save_snapshot(path, snapshot(args.experiments, args.view, args.models))
        markers = f"<!-- experiment:{args.save}:begin --> and <!-- experiment:{args.save}:end -->"
        print(f"ok: {path}: {', '.join(args.experiments)} and {'their' if len(args.experiments) > 1 else 'its'} baseline; a page shows it between {markers} after `trendfactory results`")
        return
    _input_file("--readme", args.readme, "run from the project root (where README.md is) or pass --readme <the README file>")
    changed = update_readme(args.readme, args.compare, check=args.check)
    pages = [args.readme, *sorted(Path("docs").glob("*.md"))]
    stale = update_pages(pages, check=args.check)
    if args.check and (changed or stale):
        what = ([f"{args.readme}: its results section differs from {args.compare}"] if changed else []) + [f"{p}: its experiment sections differ from {RESULTS_DIR}/" for p in stale]
        raise TrendfactoryError(f"{'; '.join(what)}; run `trendfactory results` and commit")
    if args.check:
        print(f"ok: {args.readme}'s results section equals {args.compare}; the experiment sections of {len(pages)} pages equal {RESULTS_DIR}/")
    else:
        print(f"ok: {args.readme}: results section {'rewritten' if changed else 'already equal to'} {args.compare}; experiment sections rewritten in {len(stale)} of {len(pages)} pages")


def _export(args: argparse.Namespace) -> None:
    """Export a trained network to ONNX (TorchScript where ONNX cannot express it), checked
    against the PyTorch model (the work is in trendfactory.export)."""
    from trendfactory.export import export_trained

    if args.output is not None:  # the default's folder is exported/, in the project
        if args.output.exists() and not args.output.is_dir():
            raise TrendfactoryError(f"--output {args.output}: a file; pass the directory to write the exported network into")
        _writable_folder(args.output.parent, f"--output {args.output}")
    out, meta = export_trained(args.model, args.horizon, args.output)
    parity = meta["parity"]
    print(
        f"ok: {meta['model']} h{meta['horizon']} -> {out / meta['file']} ({meta['format']}; input {meta['input']['shape']}); "
        f"scores equal PyTorch's to {parity['max_abs_diff']:.1e} on {parity['rows']:,} test windows; feature list and scaler in {out / 'export.json'}"
    )


def _predict(args: argparse.Namespace) -> None:
    """Score new bars with a trained model (the work is in trendfactory.scoring)."""
    from pathlib import Path

    from trendfactory.params import load_params
    from trendfactory.scoring import default_output, score_bars, write_predictions

    output = _output_file(args.output or default_output(args.model, args.horizon))  # before the scoring work
    params = load_params(_input_file("--params", args.params, "pass the params file the model was trained with, e.g. --params params.yaml"))
    # scoring's warnings (left-out symbols, in-sample bars, another universe...) as "warning: ..." lines
    with _warnings_to_stderr():
        frame = score_bars(args.input, args.model, args.horizon, params, Path("."), all_rows=args.all_rows, params_path=args.params)
    out = write_predictions(frame, output)
    what = "every scoreable bar" if args.all_rows else "the latest bar of each symbol"
    print(f"ok: {len(frame):,} predictions ({what}, {frame['symbol'].nunique()} symbols, {frame['datetime'].min()} .. {frame['datetime'].max()}) -> {out}")


def _exps(args) -> None:
    from trendfactory.exps import show

    print(show(Path("."), args.width, args.dvc_args))


def main(argv: list[str] | None = None) -> None:
    # Long on purpose: the whole command-line table, one add_parser per command: splitting it scatters the help texts.
    parser = argparse.ArgumentParser(
        prog="trendfactory", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog="Run `trendfactory COMMAND --help` for a command's options."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "validate",
        help="check a CSV/Parquet file (or a folder of per-symbol files) of bars with the rules ingest applies",
        description="Check a CSV/Parquet file, or a directory with one file per symbol, with the same rules the ingest "
        "stage applies to data.source: csv, under the data keys of --params (timezone, start/end, min_history, on_jump, "
        "jump_ratio) and the features' warm-up: ingest's own code runs on the files, nothing is written. Prints ok and "
        "what ingest would keep; a warning line per symbol it would drop or suspect jump it would report; or one line "
        "naming the problem and the fix.",
    )
    p.add_argument("--input", required=True, help="file or directory of bars")
    p.add_argument("--params", default="params.yaml", help="params file whose data keys apply (default: %(default)s)")
    p.set_defaults(func=_validate)
    p = sub.add_parser(
        "check",
        help="validate params.yaml: every section, every model's section and the run lists",
        description="Validate a params file as the stages will read it: unknown keys, types and allowed values of "
        "every section, each models.<name> section against the config its model declares, and that "
        "each listed model sits in the run list of its kind. Prints ok, or one line naming the key and the fix.",
    )
    p.add_argument("--params", default="params.yaml", help="params file (default: %(default)s)")
    p.set_defaults(func=_check)
    p = sub.add_parser(
        "models",
        help="list the registered models: family, run list, whether they read sequences or can use a GPU",
        description="List every registered model (family:name), the run list its kind belongs in, whether it "
        "reads whole windows (sequences) and whether it can train on a CUDA GPU, with its one-line description.",
    )
    p.set_defaults(func=_models)
    p = sub.add_parser(
        "predict",
        help="score new bars with a trained model (writes scored/predictions-<model>-h<h>.csv by default)",
        description=(
            "Score new bars with a trained model through the pipeline's own featurize/window code and the "
            "train-fitted scaler. By default writes one prediction per symbol, for its latest bar (the call a "
            "user scoring new bars acts on); --all-rows writes every bar that has a complete window. Run from "
            "the project root (it reads models/, data/features/, data/windows/meta.json, data/raw/manifest.json)."
        ),
    )
    p.add_argument("--model", required=True, help="registered model name, e.g. xgboost (as trained by train@<model>-<h>)")
    p.add_argument("--horizon", type=int, required=True, help="label horizon in bars the model was trained for")
    p.add_argument("--input", required=True, help="CSV/Parquet file of bars, or a directory with one file per symbol (what data.source: csv accepts)")
    p.add_argument("--output", default=None, help="output file (default: scored/predictions-<model>-h<h>.csv, a git-ignored folder; a .parquet suffix writes Parquet)")
    p.add_argument("--params", default="params.yaml", help="params file the model was trained with (default: %(default)s)")
    p.add_argument(
        "--all-rows",
        action="store_true",
        help="write a prediction for every scoreable bar (default: only each symbol's latest bar)",
    )
    p.set_defaults(func=_predict)
    p = sub.add_parser(
        "export",
        help="write a trained network to ONNX (exported/<model>-h<h>/ by default), checked against PyTorch",
        description=(
            "Write the trained network that `predict` uses (the last fold's first seed) for one horizon to ONNX, or "
            "TorchScript where ONNX cannot express it, with export.json: its feature columns, window length, the "
            "train-fitted scaler and the output layout. Fails unless ONNX Runtime's scores on the fold's test windows "
            "equal the PyTorch model's to 1e-5. Run from the project root."
        ),
    )
    p.add_argument("--model", required=True, help="a network, e.g. lstm (kinds network and joint; `trendfactory models`)")
    p.add_argument("--horizon", type=int, required=True, help="label horizon in bars (one of the trained label.horizons)")
    p.add_argument("--output", type=Path, default=None, help="output folder (default: exported/<model>-h<h>/, git-ignored)")
    p.set_defaults(func=_export)
    p = sub.add_parser(
        "results",
        help="write the README's results section and the docs' experiment sections from their metrics (--check: only compare)",
        description="Render the README's results section, between its two markers, from metrics/compare.json "
        "(the compare stage does this after every run), and every <!-- experiment:NAME:begin/end --> section of "
        "README.md and docs/*.md from docs/results/NAME.json. --check changes nothing and fails when they differ. "
        "--save NAME --experiments E... writes docs/results/NAME.json from DVC experiments (their metrics/compare.json "
        "and their baseline's, from the experiments' git refs).",
    )
    p.add_argument("--readme", type=Path, default=Path("README.md"), help="default: %(default)s")
    p.add_argument("--compare", type=Path, default=Path("metrics/compare.json"), help="default: %(default)s")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when a section is stale")
    p.add_argument("--save", metavar="NAME", default=None, help="write docs/results/NAME.json from --experiments")
    p.add_argument("--experiments", nargs="+", metavar="EXP", default=None, help="with --save: DVC experiment names, run on one commit")
    p.add_argument(
        "--view",
        choices=("added", "variants"),
        default="added",
        help="with --save: added = the models an experiment added to the run lists; variants = one row per experiment for --models (default: %(default)s)",
    )
    p.add_argument("--models", nargs="+", metavar="MODEL", default=None, help="with --save --view variants: the models whose rows the variants change")
    p.set_defaults(func=_results)
    p = sub.add_parser(
        "exps",
        help="experiments side by side in <= 160 columns: changed params first, then each horizon's verdict",
        description="Run `dvc exp show --json` and print one row per commit and experiment: the params that differ "
        "between the rows, each horizon's verdict (chosen model, stitched Rank IC, its p, survives), then "
        "the Rank IC of the items that moved, largest spread first, until --width is full. Options after "
        "`--` go to `dvc exp show` (e.g. -- -A, -- --rev main -n 5).",
    )
    p.add_argument("--width", type=int, default=160, help="widest line, characters (default: %(default)s)")
    p.add_argument("dvc_args", nargs="*", help="options for dvc exp show, after --")
    p.set_defaults(func=_exps)
    args = parser.parse_args(argv)
    try:
        _bars_input(args)
        args.func(args)
    except TrendfactoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
