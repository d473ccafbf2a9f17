"""Damaged artefacts: a saved model directory is verified against its manifest.json before any
file is read, and a trainer checkpoint against its seal before it is resumed from.

Saved models: small real fits on the generated data, copied and damaged per test. The damages
that used to kill the process inside a C++ library (LightGBM: segfault / terminate on half or
zeroed ``model.txt``) run through the real ``trendfactory predict`` in a subprocess, so a crash
would show as a negative or 134/139 return code instead of taking pytest down with it.

Checkpoints: the trainer on a tiny network (tests.models.test_trainer), interrupted after
epoch 2; a damaged checkpoint must give one warning and a fresh run whose result is exactly
an uninterrupted run's.
"""

from __future__ import annotations

import copy
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from tests.models.test_conformance import fast_model
from tests.models.test_trainer import Batches, TinyNet, cfg, weights
from trendfactory.errors import ArtifactError
from trendfactory.models import Samples, TrendModel
from trendfactory.models.common.manifest import MANIFEST_FILE, sealed_write, seal_path, write_manifest
from trendfactory.models.common.trainer import LAST, Trainer
from trendfactory.paths import model_dir

H = 5
CPU = torch.device("cpu")
RESTORE = "restore it with `dvc checkout` or retrain with `dvc repro`"


# ---- damages -------------------------------------------------------------------------------------
def truncate(path: Path) -> None:
    """Keep the first half of the file (an interrupted copy)."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def zero64(path: Path) -> None:
    """64 zero bytes in the middle of the file, same size (a bad sector)."""
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)
    path.write_bytes(bytes(data))


def garble(path: Path) -> None:
    """Same size, every byte replaced: not JSON any more."""
    path.write_bytes(b"#" * path.stat().st_size)


# ---- saved models --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from tests.pipeline_helpers import build_stores, tiny_params

    root = build_stores(tmp_path_factory.mktemp("manifest"), tiny_params())
    return {s: Samples.open(root, H, 0, s) for s in ("train", "val")}


@pytest.fixture(scope="module")
def pristine(data, tmp_path_factory) -> Callable[[str], Path]:
    """name -> an untouched saved directory of that model (fitted on first use)."""
    root = tmp_path_factory.mktemp("pristine")
    done: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in done:
            fast_model(name).fit(data["train"], data["val"]).save(root / name)
            done[name] = root / name
        return done[name]

    return get


@pytest.fixture
def copy_of(pristine, tmp_path) -> Callable[[str], Path]:
    """name -> a fresh copy of its saved directory, free to damage."""

    def get(name: str) -> Path:
        target = tmp_path / "saved" / name
        shutil.copytree(pristine(name), target)
        return target

    return get


def refused(directory: Path) -> str:
    """The one-line ArtifactError load gives for ``directory``."""
    with pytest.raises(ArtifactError) as info:
        TrendModel.load(directory)
    message = str(info.value)
    assert "\n" not in message
    return message


def predict_cli(project: Path, name: str, saved: Path) -> subprocess.CompletedProcess:
    """`trendfactory predict` in a subprocess, in a minimal project whose only trained model is
    ``saved`` (the model is loaded before the input is read, so the input only has to exist)."""
    from trendfactory.models import get_model_class

    target = project / model_dir(name, H, get_model_class(name).joint) / "fold_00" / "seed_00"
    shutil.copytree(saved, target)
    (project / "params.yaml").write_text(yaml.safe_dump({"label": {"horizons": [H]}}))
    (project / "data" / "features").mkdir(parents=True)
    (project / "data" / "features" / "folds.json").write_text(json.dumps([{}]))  # one fold
    (project / "bars.csv").write_text("symbol,datetime,close\n")  # never read: the damaged model stops it first
    cmd = [sys.executable, "-m", "trendfactory.cli", "predict", "--model", name, "--horizon", str(H), "--input", "bars.csv"]
    return subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=300)


# The damages that crashed (LightGBM) or could crash a C++ parser: through the real CLI.
CRASHERS = [
    ("lightgbm", "model.txt", truncate),  # was: segfault (exit 139)
    ("lightgbm", "model.txt", zero64),  # was: C++ terminate (exit 134)
    ("xgboost", "xgboost.json", truncate),
    ("catboost", "model.cbm", truncate),
]


@pytest.mark.parametrize("name, file, damage", CRASHERS, ids=[f"{n}-{f}-{d.__name__}" for n, f, d in CRASHERS])
def test_predict_refuses_a_damaged_library_file_with_one_line(copy_of, tmp_path, name, file, damage):
    saved = copy_of(name)
    damage(saved / file)
    run = predict_cli(tmp_path / "project", name, saved)
    assert run.returncode == 1, f"exit {run.returncode}: {run.stderr[-500:]}"  # not -11 / 134 / 139
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in run.stderr and len(lines) == 1, run.stderr[-1000:]
    assert lines[0].startswith("error: ") and f"seed_00/{file}: damaged" in lines[0] and RESTORE in lines[0]


@pytest.mark.parametrize(
    "name, file, damage",
    [
        ("mlp", "weights.pt", zero64),  # was: loaded silently, scored differently
        ("dual_tower", "weights-0.pt", zero64),
        ("logistic", "model.skops", truncate),  # was: a zipfile traceback
        ("lightgbm", "model.json", truncate),  # was: a JSONDecodeError traceback
        ("mlp", "model.json", garble),  # same size: only the hash can tell
    ],
    ids=["mlp-weights-zero64", "dual_tower-weights-zero64", "logistic-skops-half", "model.json-half", "model.json-garbled"],
)
def test_a_damaged_file_is_refused_before_it_is_read(copy_of, name, file, damage):
    saved = copy_of(name)
    damage(saved / file)
    message = refused(saved)
    assert message.startswith(f"{saved / file}: damaged (") and RESTORE in message


def test_a_deleted_file_is_refused(copy_of):
    saved = copy_of("lightgbm")
    (saved / "model.txt").unlink()
    assert refused(saved) == f"{saved / 'model.txt'}: missing (listed in {MANIFEST_FILE}); {RESTORE}"


def test_an_unlisted_file_is_refused(copy_of):
    saved = copy_of("mlp")
    (saved / "weights-old.pt").write_bytes(b"left over")
    message = refused(saved)
    assert message.startswith(f"{saved / 'weights-old.pt'}: not listed in {MANIFEST_FILE}") and "dvc checkout" in message


def test_a_directory_without_a_manifest_is_refused_with_retrain(copy_of):
    saved = copy_of("lightgbm")
    (saved / MANIFEST_FILE).unlink()  # what every older trendfactory saved
    message = refused(saved)
    assert message.startswith(f"{saved / MANIFEST_FILE}: missing") and "older trendfactory" in message
    assert message.endswith("retrain it with `dvc repro`")


@pytest.mark.parametrize(
    "write, expected",
    [
        (lambda p: truncate(p), "unreadable (JSONDecodeError)"),
        (lambda p: p.write_bytes(b"\xff\xfe\x00garbage"), "unreadable (UnicodeDecodeError)"),
        (lambda p: p.write_text(json.dumps({"files": [], "version": 1})), "not a version-1 manifest"),
        (lambda p: p.write_text(json.dumps({"files": {"../model.txt": {"size": 1, "sha256": "0" * 64}}, "version": 1})), "malformed entry '../model.txt'"),
    ],
    ids=["half", "binary", "wrong-shape", "path-outside"],
)
def test_a_garbled_manifest_is_refused(copy_of, write, expected):
    saved = copy_of("lightgbm")
    write(saved / MANIFEST_FILE)
    message = refused(saved)
    assert message.startswith(f"{saved / MANIFEST_FILE}: {expected}")


def test_not_a_saved_model(tmp_path):
    assert refused(tmp_path / "nothing") == f"{tmp_path / 'nothing' / 'model.json'}: not a saved model; run the train stage first"


def test_files_that_match_a_rewritten_manifest_but_do_not_parse_are_one_line(copy_of):
    # only reachable by tampering (the manifest recomputed over damaged files) or by a library
    # that no longer reads what an older one wrote: still one line, never a traceback
    saved = copy_of("logistic")
    truncate(saved / "model.skops")
    write_manifest(saved)
    message = refused(saved)
    assert message.startswith(f"{saved}: its files match {MANIFEST_FILE} but classical:logistic cannot read them (")
    garble(saved / "model.json")
    write_manifest(saved)
    assert refused(saved) == f"{saved / 'model.json'}: unreadable (JSONDecodeError); retrain it with `dvc repro`"


def test_the_manifest_lists_every_file_and_model_json_has_no_timings(pristine):
    saved = pristine("mlp")
    text = (saved / MANIFEST_FILE).read_text()
    manifest = json.loads(text)
    assert sorted(manifest["files"]) == sorted(p.name for p in saved.iterdir() if p.name != MANIFEST_FILE)
    # nothing but sizes and hashes, keys sorted: the same files always give the same bytes
    assert set(manifest) == {"files", "version"} and all(set(e) == {"sha256", "size"} for e in manifest["files"].values())
    assert text == json.dumps(manifest, indent=1, sort_keys=True) + "\n"

    def keys(node):
        if isinstance(node, dict):
            for k, v in node.items():
                yield k
                yield from keys(v)

    volatile = [k for k in keys(json.loads((saved / "model.json").read_text())) if any(w in k.lower() for w in ("time", "second", "date", "host", "throughput"))]
    assert not volatile, f"model.json holds run-dependent facts {volatile}: DVC hashes it"


def test_a_resave_into_the_same_directory_replaces_the_manifest(pristine, tmp_path):
    model = TrendModel.load(pristine("lightgbm"))
    model.save(tmp_path / "m")
    first = (tmp_path / "m" / MANIFEST_FILE).read_bytes()
    (tmp_path / "m" / "model.txt").write_text("stale")  # overwritten by the next save, manifest and all
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / MANIFEST_FILE).read_bytes() == first
    TrendModel.load(tmp_path / "m")


# ---- checkpoints ---------------------------------------------------------------------------------
MAX_EPOCHS = 4


def _trainer(checkpoint_dir: Path | None, run_id: str = "r", on_epoch=None) -> Trainer:
    return Trainer(cfg(max_epochs=MAX_EPOCHS), seed=5, device=CPU, on_epoch=on_epoch, checkpoint_dir=checkpoint_dir, run_id=run_id, progress=False)


@pytest.fixture
def interrupted(tmp_path) -> tuple[Path, TinyNet, list[torch.Tensor]]:
    """(checkpoint dir of a run stopped during epoch 3 -- last.pt holds epoch 2 --, the initial
    network, the weights an uninterrupted run ends with)."""
    net0 = TinyNet(dropout=0.2)
    straight = copy.deepcopy(net0)
    _trainer(None).fit(straight, Batches(), Batches(seed=1))

    def crash(metrics, calls=[]):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path, on_epoch=crash).fit(copy.deepcopy(net0), Batches(), Batches(seed=1))
    assert (tmp_path / LAST).is_file() and seal_path(tmp_path / LAST).is_file()
    return tmp_path, net0, weights(straight)


def _rerun(directory: Path, net0: TinyNet, caplog, run_id: str = "r"):
    """Rerun the interrupted fit; (result, final weights, warning lines)."""
    net = copy.deepcopy(net0)
    with caplog.at_level(logging.INFO, logger="trendfactory"):
        result = _trainer(directory, run_id).fit(net, Batches(), Batches(seed=1))
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return result, weights(net), warnings


def _best_checkpoint(directory: Path) -> Path:
    """The best checkpoint last.pt points at."""
    state = json.loads(torch.load(directory / LAST, weights_only=True)["state"])
    return directory / min(state["best_ckpts"])[1]


def test_an_intact_checkpoint_still_resumes(interrupted, caplog):
    directory, net0, expected = interrupted
    result, got, warnings = _rerun(directory, net0, caplog)
    assert not warnings and "resuming after epoch 2" in caplog.text
    assert result.epochs == MAX_EPOCHS and all(torch.equal(a, b) for a, b in zip(expected, got))


@pytest.mark.parametrize(
    "damage, which, why",
    [
        (lambda d: zero64(d / LAST), "last", "damaged (size or SHA-256 differs from last.pt.json)"),
        (lambda d: truncate(d / LAST), "last", "damaged (size or SHA-256 differs from last.pt.json)"),
        (lambda d: seal_path(d / LAST).unlink(), "last", "no checksum last.pt.json"),
        (lambda d: garble(seal_path(d / LAST)), "last", "its checksum last.pt.json is unreadable"),
        (lambda d: zero64(_best_checkpoint(d)), "best", "damaged (size or SHA-256 differs from best-epoch"),
        (lambda d: _best_checkpoint(d).unlink(), "best", "missing"),
    ],
    ids=["last-zero64", "last-half", "last-unsealed", "last-seal-garbled", "best-zero64", "best-deleted"],
)
def test_a_damaged_checkpoint_starts_fresh_with_one_warning(interrupted, caplog, damage, which, why):
    directory, net0, expected = interrupted
    named = _best_checkpoint(directory) if which == "best" else directory / LAST
    damage(directory)
    result, got, warnings = _rerun(directory, net0, caplog)
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    assert f"{named}: {why}" in warnings[0] and warnings[0].endswith("; starting fresh")
    assert "resuming" not in caplog.text.replace("not resuming", "")
    # fresh means fresh: exactly what an uninterrupted run gives, every epoch run again
    assert result.epochs == MAX_EPOCHS and len(result.history["val/loss"]) == MAX_EPOCHS
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_another_runs_checkpoint_starts_fresh_with_a_warning(interrupted, caplog):
    directory, net0, _ = interrupted
    result, _, warnings = _rerun(directory, net0, caplog, run_id="other data")
    assert len(warnings) == 1 and f"{directory / LAST}: written by another run" in warnings[0]
    assert result.epochs == MAX_EPOCHS


def test_a_sealed_but_unreadable_checkpoint_starts_fresh(interrupted, caplog):
    directory, net0, expected = interrupted
    with sealed_write(directory / LAST, "r") as tmp:  # sealed for this run, yet not a torch file
        tmp.write_bytes(b"not a checkpoint")
    result, got, warnings = _rerun(directory, net0, caplog)
    assert len(warnings) == 1 and f"{directory / LAST}: unreadable (" in warnings[0]
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_a_checkpoint_that_does_not_fit_the_network_starts_fresh(interrupted, caplog):
    directory, net0, expected = interrupted
    blob = torch.load(directory / LAST, weights_only=True)
    blob["model"] = TinyNet(d=6).state_dict()  # the same run id, another architecture (the code changed)
    with sealed_write(directory / LAST, "r") as tmp:
        torch.save(blob, tmp)
    result, got, warnings = _rerun(directory, net0, caplog)
    assert len(warnings) == 1 and "do not fit this network" in warnings[0]
    assert all(torch.equal(a, b) for a, b in zip(expected, got))


def test_a_partly_applied_resume_is_undone(interrupted, caplog):
    # the weights fit but the optimizer state does not: whatever was loaded must be rolled back
    directory, net0, expected = interrupted
    blob = torch.load(directory / LAST, weights_only=True)
    blob["optimizer"]["param_groups"].append(dict(blob["optimizer"]["param_groups"][0]))  # a group this optimizer lacks
    with sealed_write(directory / LAST, "r") as tmp:
        torch.save(blob, tmp)
    result, got, warnings = _rerun(directory, net0, caplog)
    assert len(warnings) == 1 and "does not fit this network or optimizer (ValueError" in warnings[0]
    assert result.epochs == MAX_EPOCHS and all(torch.equal(a, b) for a, b in zip(expected, got))
