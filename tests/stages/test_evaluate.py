"""The evaluate stage's small outputs: headline numbers, confusion counts, and the pruning of
metrics that no run list holds any more."""

from __future__ import annotations

import numpy as np

from trendfactory.stages import compare as compare_stage
from trendfactory.evaluation.items import confusion_counts, headline_metrics


def test_confusion_counts_name_the_classes_and_count_every_pair():
    y = np.array([-1, -1, 0, 1, 1, 1])
    p = np.array([-1, 0, 0, 1, -1, 1])
    rows = confusion_counts(y, p)
    assert len(rows) == 9 and sum(r["count"] for r in rows) == len(y)
    got = {(r["actual"], r["predicted"]): r["count"] for r in rows}
    assert got[("down", "down")] == 1 and got[("down", "flat")] == 1 and got[("up", "up")] == 2 and got[("up", "down")] == 1
    assert got[("flat", "up")] == 0


def test_headline_metrics_are_flat_and_json_safe():
    test = {
        "rank_ic": 0.0123456789,
        "rank_ic_t": 1.5,
        "rank_ic_p": 0.1349,
        "rank_ic_t_newey_west": 1.9,
        "ic": None,
        "sharpe": float("nan"),
        "macro_f1": 0.3,
        "balanced_accuracy": 0.35,
        "log_loss": 1.09,
        "max_drawdown": -0.2,
        "accuracy": 0.4,
    }
    out = headline_metrics(test, {"rank_ic": 0.02, "rank_ic_t": 2.0, "rank_ic_t_newey_west": 2.5})
    assert out == {"rank_ic": 0.012346, "rank_ic_t": 1.5, "rank_ic_p": 0.1349, "ic": None, "sharpe": None, "f1": 0.3, "log_loss": 1.09, "max_dd": -0.2, "val_rank_ic": 0.02, "val_rank_ic_t": 2.0}
    assert "val_rank_ic" not in headline_metrics(test)  # an ensemble has no validation predictions


def test_compare_prunes_the_metrics_of_items_no_longer_run(tmp_path, monkeypatch):
    eval_dir = tmp_path / "metrics" / "eval"
    for item in ("xgboost-h5", "old_model-h5"):
        (eval_dir / item).mkdir(parents=True)
        (eval_dir / item / "detail.json").write_text("{}")
        (eval_dir / f"{item}.json").write_text("{}")
    monkeypatch.setattr(compare_stage, "EVAL_DIR", eval_dir)
    compare_stage._prune_stale_metrics({"xgboost-h5"})
    assert sorted(p.name for p in eval_dir.iterdir()) == ["xgboost-h5", "xgboost-h5.json"]
