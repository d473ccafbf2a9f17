"""Stage `check_params`: validate the whole params.yaml before any other stage runs.

DVC reruns a stage only when the params it lists change, so a key that no stage reads (a
misspelt ``window.seq_lenn``, an unknown top-level ``foo``) would otherwise never be looked at,
and a bad value in one model's section would surface only when that model's stage runs, after
ingest and the data layer. This stage depends on every key of params.yaml (and on the code that
defines what is valid), so any edit reruns it first: every section, every model's section, every
run list and the cross-field checks, each failure one line naming the dotted key.

Its output holds fixed text: it changes only when validation starts or stops passing, so ingest
(which depends on it, to run after it) does not rerun because a param changed.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from trendfactory.errors import TrendfactoryError
from trendfactory.io import atomic_path
from trendfactory.params import Params
from trendfactory.paths import PARAMS_CHECKED
from trendfactory.stages.common import log, stage_main

CHECKED_TEXT = "params.yaml passed validation (stage check_params)\n"


# keys dvc.yaml interpolates (its stage matrices): the loader would take their defaults, but DVC
# cannot even expand the pipeline without them (it stops with "Could not find 'run.models'")
DVC_EXPANDS = ("run.models", "run.neural_models", "run.joint_models", "label.horizons")


def check_dvc_keys(path: str | Path) -> None:
    """The keys DVC itself reads from the file are there (an empty file has none)."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    for dotted in DVC_EXPANDS:
        section, key = dotted.split(".")
        if not isinstance(raw.get(section), dict) or key not in raw[section]:
            what = "empty" if not raw else f"{dotted}: missing"
            raise TrendfactoryError(
                f"{path}: {what}; dvc.yaml builds its stages from {', '.join(DVC_EXPANDS)}, so they must be "
                f"in the file (restore it with `git checkout {path}`, or copy them from the repository's params.yaml)"
            )


def validate_everything(params: Params, source: str) -> None:
    """The keys DVC expands, every model's section and every run list (``load_params`` did the
    rest); errors name ``source``."""
    from trendfactory.models.registry import validate_all  # imports every model's file: only here

    check_dvc_keys(source)
    try:
        validate_all(params)
    except TrendfactoryError as exc:
        raise TrendfactoryError(f"{source}: {exc}") from None


def main_body(params: Params, args) -> None:
    validate_everything(params, args.params)
    with atomic_path(PARAMS_CHECKED) as tmp:
        tmp.write_text(CHECKED_TEXT)
    log.info("%s: valid", args.params)


def main() -> None:
    stage_main("check_params", main_body)


if __name__ == "__main__":
    main()
