"""Resuming a network's fit: only from a checkpoint of the same run -- the same model, params
and the same data CONTENT, not just the same row counts.

The stale-resume bug this guards against: stop `train_neural@mlp-5` mid-training, change
``label.barrier_k`` (the labels change, the row counts do not), rerun: it used to log
"resuming after epoch k" and finish from weights trained on the old labels.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.models.test_conformance import FAST_TRAIN, fast_config
from trendfactory.models import Samples, create
from trendfactory.models.base import FitContext
from trendfactory.import_closure import project_imports
from trendfactory.models.common.neural import code_hash, resume_key
from trendfactory.models.common.trainer import LAST
from trendfactory.models.registry import get_model_class

H = 5
HORIZONS = (5, 20)  # a network trains one head per horizon of the store: both must be covered
TRAIN = dataclasses.replace(FAST_TRAIN, max_epochs=4, patience=10)
STOP_DURING = 3  # the epoch whose bookkeeping is interrupted: last.pt holds epoch 2


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    """Two window stores of the same bars: the default labels and labels with another barrier_k."""
    from tests.pipeline_helpers import build_stores, tiny_params

    return {
        "old": build_stores(tmp_path_factory.mktemp("labels-old"), tiny_params(horizons=HORIZONS)),
        "new": build_stores(tmp_path_factory.mktemp("labels-new"), tiny_params(label={"horizons": list(HORIZONS), "barrier_k": 1.25})),
    }


def samples(store: Path) -> tuple[Samples, Samples]:
    return Samples.open(store, H, 0, "train"), Samples.open(store, H, 0, "val")


def test_relabelled_data_keeps_the_row_counts_but_not_the_content_hash(stores):
    (tr_old, va_old), (tr_new, va_new) = samples(stores["old"]), samples(stores["new"])
    assert len(tr_old) == len(tr_new) and len(va_old) == len(va_new)  # what the old resume key checked
    np.testing.assert_array_equal(tr_old.tabular(), tr_new.tabular())  # the same features
    assert not np.array_equal(tr_old.labels(), tr_new.labels())
    assert tr_old.content_hash() != tr_new.content_hash()
    assert tr_old.content_hash() == samples(stores["old"])[0].content_hash()  # a reopened store: the same


def test_the_content_hash_follows_what_a_fit_reads(stores):
    tr, _ = samples(stores["old"])
    base = tr.content_hash()
    assert tr.content_hash(horizons=[H], ends=tr.ends) == base  # the defaults spelled out
    assert tr.content_hash(horizons=list(HORIZONS)) != base  # the other head's targets too
    assert tr.content_hash(ends=tr.ends[:-1]) != base  # one window fewer
    assert Samples(tr.split, H, tr.ends, labelled=False).content_hash() != base  # no targets read
    perm = np.arange(len(tr))[::-1].copy()
    assert tr.permuted([tr.feature_names[0]], perm).content_hash() != base  # other inputs
    # a changed score at one window end (what the auxiliary loss and the dual tower regress on);
    # this split object is this test's own (every Samples.open maps the store afresh)
    scores = np.array(tr.split.scores(H))
    scores[tr.ends[0]] += 0.5
    tr.split._scores[H] = scores
    assert tr.content_hash() != base


def test_the_resume_key_covers_every_param_the_fit_reads(stores):
    tr, va = samples(stores["old"])
    ends = (tr, tr.ends), (va, va.ends)
    mlp, lstm = get_model_class("mlp"), get_model_class("lstm")
    config = create("mlp", fast_config("mlp")).config
    key = resume_key(mlp, [H], 3, config, TRAIN, *ends)
    assert key == resume_key(mlp, [H], 3, config, TRAIN, *ends)
    changed = [
        resume_key(mlp, [H], 4, config, TRAIN, *ends),  # seed
        resume_key(mlp, [H, 20], 3, config, TRAIN, *ends),  # the horizons the heads train
        resume_key(mlp, [H], 3, dataclasses.replace(config, hidden=(8,)), TRAIN, *ends),  # model params
        resume_key(mlp, [H], 3, config, dataclasses.replace(TRAIN, lr=1e-4), *ends),  # train params
        resume_key(lstm, [H], 3, config, TRAIN, *ends),  # the model (and its code)
    ]
    assert key not in changed and len(set(changed)) == len(changed)
    # where and how it runs does not change the result: it may resume across them
    same = dataclasses.replace(TRAIN, device="auto", resume=False, eval_batch_size=7)
    assert resume_key(mlp, [H], 3, config, same, *ends) == key


def test_the_resume_key_follows_the_code_the_fit_runs(monkeypatch):
    """An edit to a network's own file, or to code it runs (the shared trainer), between the
    interrupted run and the rerun makes another key: the rerun starts afresh. An edit elsewhere
    does not."""
    mlp, lstm = get_model_class("mlp"), get_model_class("lstm")
    files = project_imports(mlp.__module__)
    assert {Path("trendfactory/models/zoo/mlp.py"), Path("trendfactory/models/common/trainer.py"), Path("trendfactory/models/common/neural.py")} <= files
    assert Path("trendfactory/stages/compare.py") not in files
    before = {m: code_hash(m) for m in (mlp, lstm, get_model_class("mlp_tuned"))}
    assert before[get_model_class("mlp_tuned")] == before[mlp]  # a tuned variant runs its base model's code
    edited = {}
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: real_read(self) + edited.get(self.name, b""))
    edited["mlp.py"] = b"# an edit"
    assert code_hash(mlp) != before[mlp] and code_hash(lstm) == before[lstm]
    edited.clear()
    edited["trainer.py"] = b"# an edit"
    assert code_hash(mlp) != before[mlp] and code_hash(lstm) != before[lstm]
    edited.clear()
    edited["compare.py"] = b"# an edit"
    assert code_hash(mlp) == before[mlp]


def _fit(name: str, store: Path, checkpoint_dir: Path | None, stop: bool = False):
    """A fit of ``name`` on ``store``, interrupted during epoch STOP_DURING when ``stop``."""
    calls = []

    def on_epoch(metrics):
        calls.append(metrics)
        if stop and len(calls) == STOP_DURING:
            raise KeyboardInterrupt

    model = create(name, fast_config(name), horizon=H, seed=3, train=TRAIN)
    return model.fit(*samples(store), FitContext(on_epoch=on_epoch, checkpoint_dir=checkpoint_dir))


def _saved_bytes(model, directory: Path) -> dict[str, bytes]:
    model.save(directory)
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


@pytest.mark.parametrize("name", ["mlp", "dual_tower"])
def test_same_data_resumes_exactly_changed_labels_start_fresh(stores, tmp_path, caplog, name):
    ckpt = tmp_path / "ckpt"
    last = ckpt / LAST if name == "mlp" else ckpt / "h5-h20" / LAST  # the dual tower: one folder per network
    with pytest.raises(KeyboardInterrupt):
        _fit(name, stores["old"], ckpt, stop=True)
    assert last.is_file()

    # the same data: resumes after epoch 2 and ends byte-identical to an uninterrupted fit
    with caplog.at_level(logging.INFO, logger="trendfactory"):
        resumed = _fit(name, stores["old"], ckpt)
    assert "resuming after epoch 2" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert _saved_bytes(resumed, tmp_path / "resumed") == _saved_bytes(_fit(name, stores["old"], None), tmp_path / "straight")

    # interrupted again (after a finished fit the stage deletes the checkpoints), then the
    # labels change (same rows): one warning, a fresh fit
    shutil.rmtree(ckpt)
    caplog.clear()
    with pytest.raises(KeyboardInterrupt):
        _fit(name, stores["old"], ckpt, stop=True)
    with caplog.at_level(logging.INFO, logger="trendfactory"):
        relabelled = _fit(name, stores["new"], ckpt)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and f"{last}: written by another run" in warnings[0] and warnings[0].endswith("starting fresh")
    assert "resuming after" not in caplog.text
    fresh = _fit(name, stores["new"], None)
    assert _saved_bytes(relabelled, tmp_path / "relabelled") == _saved_bytes(fresh, tmp_path / "fresh")


def test_a_finished_fit_whose_checkpoints_were_left_resumes_to_the_same_fit(stores, tmp_path, caplog):
    """The stage deletes the checkpoints only after every fit of the stage: a kill in between
    leaves a finished, early-stopped fit's last.pt. Rerunning it must not train another epoch
    (it did: the history gained an epoch, so DVCLive's curves changed while the weights did not)."""
    early = dataclasses.replace(TRAIN, max_epochs=6, patience=1, min_delta=1.0)  # no epoch improves by 1.0: stops after epoch 2
    model = create("mlp", fast_config("mlp"), horizon=H, seed=3, train=early)
    straight = model.fit(*samples(stores["old"]), FitContext(checkpoint_dir=tmp_path / "ckpt"))
    assert len(straight.history_["val_loss"]) == 2 and (tmp_path / "ckpt" / LAST).is_file()
    with caplog.at_level(logging.INFO, logger="trendfactory"):
        again = create("mlp", fast_config("mlp"), horizon=H, seed=3, train=early).fit(*samples(stores["old"]), FitContext(checkpoint_dir=tmp_path / "ckpt"))
    assert "resuming after epoch 2" in caplog.text
    assert again.history_ == straight.history_
    assert _saved_bytes(again, tmp_path / "again") == _saved_bytes(straight, tmp_path / "straight")
