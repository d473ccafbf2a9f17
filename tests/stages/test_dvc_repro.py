"""End to end with DVC on a tiny synthetic profile, in a temp copy of the project (a git repo):

1. `dvc repro window` builds the data layer (two walk-forward folds); 2. `dvc repro` trains
every fold, evaluates and compares; 3. a second `dvc repro` is a no-op; 4. `dvc push` to a real
SSH remote (Debian's sshd, started on localhost by the test), then in a fresh `git clone`:
`dvc pull`, a clean `dvc status`, and `dvc exp run -S models.xgboost.max_depth=2` rerunning only
XGBoost's stages; 5. in the project, `dvc exp run -S models.xgboost.max_depth=2` reruns only
XGBoost's stages and compare; 6. `dvc metrics diff` shows what it changed; 7. `dvc exp run -S
train.lr=0.0005` reruns only the neural stages and compare; 8. `dvc exp run -S
split.scheme=fixed` runs the single split of old; 9. a new model is one new file in
models/zoo/ plus its params section and its name in a run list: `dvc repro` then trains and
evaluates it and reruns only the ensembles and compare.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.pipeline_helpers import copy_project
from trendfactory.windows.reader import WindowSplit

ROOT = Path(__file__).resolve().parents[2]
MODELS = ["majority", "momentum", "logistic", "xgboost"]
NEURAL = ["mlp"]
HORIZONS = [5, 20]

# A model added the documented way: this one file (declaration, config, the four hooks), its
# params section and its name in run.models; nothing else in the project changes.
ONE_FILE_MODEL = '''"""Tabular: softmax over the negative distances to each class's mean row (a test model)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from trendfactory.models.base import FitContext, Predictions, TrendModel
from trendfactory.models.data import Samples
from trendfactory.models.registry import register
from trendfactory.params import POSITIVE


@dataclass(frozen=True)
class CentroidConfig:
    temperature: float = field(default=1.0, metadata=POSITIVE)


@register("classical", "centroid", kind="tabular", config=CentroidConfig)
class Centroid(TrendModel):
    """Nearest class centroid with softmax probabilities."""

    def _fit(self, train: Samples, val: Samples, context: FitContext) -> None:
        X, y = train.tabular(()), train.classes()
        self.centroids_ = np.stack([X[y == c].mean(axis=0) if (y == c).any() else X.mean(axis=0) for c in range(3)])

    def _predict(self, samples: Samples) -> Predictions:
        d = ((samples.tabular(())[:, None, :] - self.centroids_[None]) ** 2).mean(axis=2)  # [n, 3]
        z = -d / self.config.temperature
        p = np.exp(z - z.max(axis=1, keepdims=True))
        return Predictions.from_proba(p / p.sum(axis=1, keepdims=True))

    def _save_state(self, directory: Path) -> None:
        (directory / "centroids.json").write_text(json.dumps(self.centroids_.tolist()))

    def _load_state(self, directory: Path, state: dict) -> None:
        self.centroids_ = np.asarray(json.loads((directory / "centroids.json").read_text()))
'''

TINY = {
    "data": {
        "source": "synthetic",
        "start": None,
        "end": None,
        "synthetic": {"n_symbols": 5, "n_bars": 900, "start": "2000-01-03", "signal_strength": 0.5},
    },
    "features": {"ma_windows": [10, 50], "return_lookbacks": [1, 5, 20]},
    # two folds: test 2002, test 2003-01..2003-06; validation the year before each
    "split": {"scheme": "walk_forward", "test_start": "2002-01-01", "fold": 1, "val_years": 1, "train_end": "2001-06-30", "val_end": "2002-01-31", "embargo": 5},
    "window": {"seq_len": 8},
    "label": {"horizons": HORIZONS},
    "run": {"models": MODELS, "neural_models": NEURAL, "joint_models": ["dual_tower"]},
    "models": {"xgboost": {"n_estimators": 30}, "mlp": {"hidden": [16]}, "dual_tower": {"context_hidden": [16], "stock_hidden": [32]}},
    "train": {"max_epochs": 2, "batch_size": 256},
    "evaluate": {"bootstrap_reps": 100},
    # fits in the stage's own process: a local Ray per stage would add its start-up (~7 s) to every
    # train stage of these tiny fits; Ray itself is tested by test_parallel, test_numerics and test_tune
    "parallel": {"cpus": 1},
}


def _run(args, cwd, env):
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def _ran(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


SSHD = Path("/usr/sbin/sshd")  # Debian's openssh-server (.ci/run installs it)


@contextlib.contextmanager
def ssh_server(root: Path):
    """A real sshd on 127.0.0.1 (a free port, key login only, SFTP), as DVC's SSH remote talks
    to any storage host; yields (port, client key file). Stopped on exit."""
    root.mkdir(parents=True)
    for key in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / key)], check=True)
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        f"PidFile {root / 'sshd.pid'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        "UsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(root / "sshd_config")], stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            assert proc.poll() is None, f"sshd exited: {proc.stderr.read()}"
            time.sleep(0.1)
        yield port, root / "client_key"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _use_remote(repo: Path, url: str, key: Path, env) -> None:
    """Point the repo's default remote at the test server (config.local: never committed)."""
    _run([sys.executable, "-m", "dvc", "remote", "add", "--local", "-f", "-d", "storage", url], repo, env)
    _run([sys.executable, "-m", "dvc", "remote", "modify", "--local", "storage", "keyfile", str(key)], repo, env)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    work = tmp_path_factory.mktemp("project")
    env = copy_project(work, TINY)
    dvc = [sys.executable, "-m", "dvc"]
    git = ["git", "-c", "commit.gpgsign=false"]
    out = {"window": _run(dvc + ["repro", "window"], work, env)}
    out["all"] = _run(dvc + ["repro"], work, env)
    out["again"] = _run(dvc + ["repro"], work, env)
    _run(["git", "add", "-A"], work, env)
    _run(git + ["commit", "-qm", "baseline"], work, env)
    # a bad value in a key no stage of the run reads: stopped first, nothing recorded
    lock_before, good_params = (work / "dvc.lock").read_bytes(), (work / "params.yaml").read_text()
    (work / "params.yaml").write_text(good_params.replace("bb_k: 2.0", "bb_k: .nan"))
    assert "bb_k: .nan" in (work / "params.yaml").read_text()
    bad = subprocess.run(dvc + ["repro"], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    out["bad_params"] = (bad.returncode, bad.stdout + bad.stderr, (work / "dvc.lock").read_bytes() == lock_before)
    (work / "params.yaml").write_text(good_params)
    out["after_bad"] = _run(dvc + ["repro"], work, env)
    # a new model, the documented way: one file, its params section, its name in the run list
    (work / "src/trendfactory/models/zoo/centroid.py").write_text(ONE_FILE_MODEL)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params["run"]["models"].append("centroid")
    params["models"]["centroid"] = {"temperature": 0.5}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out["one_file_status"] = _run(["git", "status", "--porcelain"], work, env)
    out["one_file"] = _run(dvc + ["repro"], work, env)
    _run(["git", "add", "-A"], work, env)
    _run(git + ["commit", "-qm", "a one-file model"], work, env)
    if SSHD.is_file():  # the remote round trip: push here, pull into a fresh clone, experiment there
        with ssh_server(work.parent / "sshd") as (port, key):
            url = f"ssh://{getpass.getuser()}@127.0.0.1:{port}{work.parent / 'storage'}"
            _use_remote(work, url, key, env)
            out["push"] = _run(dvc + ["push"], work, env)
            clone = work.parent / "clone"
            _run(["git", "clone", "-q", str(work), str(clone)], work.parent, env)
            _use_remote(clone, url, key, env)
            out["pull"] = _run(dvc + ["pull"], clone, env)
            out["clone_status"] = _run(dvc + ["status"], clone, env)
            out["clone_exp"] = _run(dvc + ["exp", "run", "-S", "models.xgboost.max_depth=2"], clone, env)
    out["exp"] = _run(dvc + ["exp", "run", "-S", "models.xgboost.max_depth=2"], work, env)
    out["diff"] = _run(dvc + ["metrics", "diff", "--md"], work, env)
    out["show"] = _run(dvc + ["metrics", "show"], work, env)
    out["exp_show"] = _run(dvc + ["exp", "show", "--only-changed", "--csv"], work, env)
    out["exp_lr"] = _run(dvc + ["exp", "run", "-S", "train.lr=0.0005"], work, env)
    out["exp_ablation"] = _run(dvc + ["exp", "run", "-S", "models.dual_tower.heads_see=context"], work, env)
    out["exp_tune"] = _run(dvc + ["exp", "run", "-S", "run.tune=[xgboost]", "-S", "tune.trials=3"], work, env)
    out["tune_comparison"] = (work / "metrics/comparison.md").read_text()
    out["tune_rows"] = json.loads((work / "metrics/compare.json").read_text())["items"]
    out["tuned_yaml"] = yaml.safe_load((work / "tuned/xgboost-h5.yaml").read_text())
    out["tune_plots"] = sorted(p.name for p in (work / "plots/tune/xgboost-h5").iterdir())
    # one fold: nothing precedes its validation block to tune on, so the tune stage would refuse run.tune
    out["exp_fixed"] = _run(dvc + ["exp", "run", "-S", "split.scheme=fixed", "-S", "run.tune=[]"], work, env)
    out["fixed_schema"] = json.loads((work / "data/features/schema.json").read_text())
    # back to the walk-forward baseline for the tests that read the workspace
    _run(git + ["checkout", "-q", "--", "."], work, env)
    _run(dvc + ["checkout", "--force", "-q"], work, env)
    return work, out


def test_a_new_model_is_one_file_plus_its_params(project):
    work, out = project
    changed = sorted(line[3:] for line in out["one_file_status"].splitlines())
    assert changed == ["params.yaml", "src/trendfactory/models/zoo/centroid.py"], changed
    # code_deps hashes the package again (a new file in it); no kind's code changed, so no other model reruns
    assert sorted(_ran(out["one_file"])) == [
        "check_params",
        "code_deps",
        "compare",
        "ensemble@20",
        "ensemble@5",
        "evaluate@centroid-20",
        "evaluate@centroid-5",
        "train@centroid-20",
        "train@centroid-5",
    ]
    headline = json.loads((work / "metrics/eval/centroid-h5.json").read_text())
    assert -1 <= headline["rank_ic"] <= 1
    assert "centroid-h20" in json.loads((work / "metrics/compare.json").read_text())["items"]


def test_repro_window_builds_the_data_layer(project):
    work, out = project
    assert _ran(out["window"]) == ["code_deps", "check_params", "ingest", "featurize", "window"]
    store = WindowSplit.open(work / "data/windows")
    assert store.n_folds == 2
    assert store.meta["label"] == {"entry_lag": 1, "barrier_k": 0.75, "vol_span": 50}  # how its labels were made (params.yaml's label.*)
    for fold in (0, 1):
        for split in ("train", "val", "test"):
            ws = WindowSplit.open(work / "data/windows", fold, split)
            assert len(ws.index(5)) > 0 and len(ws.index(20)) > 0
            x = ws.windows(ws.index(5)[:3])
            assert x.shape == (3, 8, ws.n_features) and np.isfinite(x).all()


def test_repro_trains_evaluates_and_compares_every_item(project):
    work, out = project
    items = [f"{m}-{h}" for m in MODELS for h in HORIZONS]
    assert sorted(_ran(out["all"])) == sorted(
        [f"train@{i}" for i in items]
        + [f"evaluate@{i}" for i in items]
        + [f"train_neural@{m}" for m in NEURAL]
        + [f"evaluate_neural@{m}-{h}" for m in NEURAL for h in HORIZONS]
        + ["train_joint@dual_tower"]
        + [f"evaluate_joint@dual_tower-{h}" for h in HORIZONS]
        + [f"ensemble@{h}" for h in HORIZONS]
        + ["compare"]
    )
    for fold in ("fold_00", "fold_01"):  # one joint fit per fold and seed serves both horizons
        for seed in ("seed_00", "seed_01"):  # evaluate.seeds: 2 (the default) for the stochastic models
            assert (work / "models/dual_tower" / fold / seed / "model.json").is_file()
            assert (work / "models/mlp" / fold / seed / "model.json").is_file()  # a network: one head per horizon
    assert not (work / "models/logistic-h5/fold_00/seed_01").exists()  # deterministic: one fit per fold
    assert (work / "metrics/eval/dual_tower-h5/plots/images/context_embedding.png").is_file()
    for m in MODELS + NEURAL:
        for h in HORIZONS:
            name = f"{m}-h{h}"
            trained = m if m in NEURAL else name
            metrics = json.loads((work / "metrics/eval" / name / "detail.json").read_text())
            headline = json.loads((work / "metrics/eval" / f"{name}.json").read_text())
            assert set(headline) == {"rank_ic", "rank_ic_t", "rank_ic_p", "ic", "sharpe", "f1", "log_loss", "max_dd", "val_rank_ic", "val_rank_ic_t"}
            assert headline["rank_ic"] == pytest.approx(metrics["test"]["rank_ic"], abs=1e-6)
            assert {"val", "test", "test_by_year", "test_by_fold"} <= set(metrics) and 0 <= metrics["test"]["balanced_accuracy"] <= 1
            assert set(metrics["test_by_fold"]) == {"0", "1"}
            test = pd.read_parquet(work / "data/predictions" / trained / f"test_h{h}.parquet")
            assert sorted(test["fold"].unique()) == [0, 1]  # the out-of-sample series joins both folds
            assert (work / "models" / trained / "fold_01" / "seed_00" / "model.json").is_file()
            seeds = 2 if m in ("xgboost", "mlp") else 1
            assert metrics["seeds"] == seeds and sorted(test["seed"].unique()) == list(range(seeds))
            assert ("test_seed_std" in metrics) == (seeds > 1)
            assert (work / "metrics/train" / trained / "metrics.json").is_file()
            confusion = json.loads((work / "metrics/eval" / name / "plots/custom/confusion_test.json").read_text())
            rows = confusion["confusion_test"] if isinstance(confusion, dict) else confusion
            assert {(r["actual"], r["predicted"]) for r in rows} == {(a, b) for a in ("down", "flat", "up") for b in ("down", "flat", "up")}
            assert sum(r["count"] for r in rows) == (test["seed"] == 0).sum()  # counts, not one row per sample
    for h in HORIZONS:
        summary = json.loads((work / f"metrics/summary/h{h}.json").read_text())
        assert {"selected", "rank_ic", "rank_ic_t", "rank_ic_p", "lead", "spa_p", "survives"} <= set(summary)
        folds = json.loads((work / "metrics/compare.json").read_text())["summary"][f"h{h}"]["folds"]
        assert [c["fold"] for c in folds] == [0, 1] and all(c["chosen"] for c in folds)  # one walk-forward choice per fold
        assert summary["selected"] in ("/".join(c["chosen"] for c in folds), folds[0]["chosen"])
    compare = json.loads((work / "metrics/compare.json").read_text())
    assert set(compare["items"]) == {f"{m}-h{h}" for m in MODELS + NEURAL + ["centroid", "dual_tower", "rank_avg", "stack"] for h in HORIZONS}
    assert set(compare["summary"]) == {f"h{h}" for h in HORIZONS}
    assert compare["items"]["xgboost-h5"]["seeds"] == 2 and compare["items"]["xgboost-h5"]["test_rank_ic_seed_std"] is not None
    epochs = (work / "metrics/train/mlp/plots/metrics/val/loss.tsv").read_text().splitlines()
    assert epochs[0].split("\t") == ["step", "loss"] and len(epochs) == 1 + 2  # one row per epoch of the last fold's first seed
    # every epoch's record, one curve each, throughput aside (the dual tower's heads each log their loss too)
    heads = ["val/log_loss_head0.tsv", "val/log_loss_head1.tsv"]
    for network, extra in (("mlp", []), ("dual_tower", heads)):
        logged = work / "metrics/train" / network / "plots/metrics"
        curves = sorted(str(p.relative_to(logged)) for p in logged.rglob("*.tsv"))
        assert curves == sorted(["lr.tsv", "train/loss.tsv", "val/loss.tsv", "val/macro_f1.tsv", "val/rank_ic.tsv", *extra]), curves
    md = (work / "metrics/comparison.md").read_text()
    assert md.index("## Verdict") < md.index("## Horizon 5 bars") < md.index("## Horizon 20 bars")
    assert "walk-forward selection" in md and "| fold | test block |" in md
    assert sorted(p.name for p in (work / "plots/compare").iterdir()) == sorted(
        f"{kind}_h{h}.png" for kind in ("rank_ic_by_year", "cumulative_rank_ic", "equity", "score_correlation") for h in HORIZONS
    )


def test_a_bad_param_stops_the_run_before_any_stage_and_records_nothing(project):
    _, out = project
    code, text, lock_unchanged = out["bad_params"]
    assert code != 0 and "Traceback" not in text
    assert _ran(text) == ["check_params"]
    assert [line for line in text.splitlines() if line.startswith("error:")] == ["error: params.yaml: features.bb_k: got nan, expected a finite number"]
    assert lock_unchanged
    # params.yaml back as it was: at most the check reruns (DVC may find it up to date), nothing downstream
    assert set(_ran(out["after_bad"])) <= {"check_params"}


def test_second_repro_is_up_to_date(project):
    _, out = project
    assert _ran(out["again"]) == []
    assert "up to date" in out["again"].lower()


def reruns(*items: str) -> list[str]:
    """What an experiment reruns: ``items``, plus the params check, the ensembles and compare."""
    return sorted(["check_params", "compare", "ensemble@20", "ensemble@5", *items])


# what `dvc exp run -S models.xgboost.max_depth=...` reruns: that model's items
XGBOOST_EXP = reruns("evaluate@xgboost-20", "evaluate@xgboost-5", "train@xgboost-20", "train@xgboost-5")


def test_push_and_pull_through_an_ssh_remote(project):
    """A fresh clone gets every output from the remote: nothing to rerun, and an experiment on
    one model reruns only that model's stages (not the 18-minute pipeline)."""
    if not SSHD.is_file():
        pytest.skip("needs Debian's openssh-server (/usr/sbin/sshd); .ci/run installs it")
    _, out = project
    assert re.search(r"\d+ files? pushed", out["push"]), out["push"]
    assert re.search(r"\d+ files? (fetched|added)", out["pull"]), out["pull"]
    assert "up to date" in out["clone_status"].lower(), out["clone_status"]
    assert sorted(_ran(out["clone_exp"])) == XGBOOST_EXP


def test_exp_run_reruns_only_the_changed_model(project):
    _, out = project
    assert sorted(_ran(out["exp"])) == XGBOOST_EXP


def test_exp_run_on_a_trainer_param_reruns_only_neural_stages(project):
    _, out = project
    assert sorted(_ran(out["exp_lr"])) == reruns(
        "evaluate_joint@dual_tower-20", "evaluate_joint@dual_tower-5", "evaluate_neural@mlp-20", "evaluate_neural@mlp-5", "train_joint@dual_tower", "train_neural@mlp"
    )


def test_ablation_param_reruns_only_the_dual_tower(project):
    _, out = project
    assert sorted(_ran(out["exp_ablation"])) == reruns("evaluate_joint@dual_tower-20", "evaluate_joint@dual_tower-5", "train_joint@dual_tower")


def test_tuning_is_opt_in_and_compares_tuned_beside_default(project):
    """run.tune=[xgboost]: a study per horizon and fold after the first (fold 0 keeps params.yaml's),
    xgboost_tuned trained fold by fold and evaluated from its git-tracked params, and a "Tuned vs
    default" table; nothing else retrains."""
    _, out = project
    assert sorted(_ran(out["exp_tune"])) == reruns("evaluate_tuned@xgboost-20", "evaluate_tuned@xgboost-5", "train_tuned@xgboost-20", "train_tuned@xgboost-5", "tune@xgboost-20", "tune@xgboost-5")
    folds = out["tuned_yaml"]["folds"]
    assert [f["fold"] for f in folds] == [0, 1]
    assert folds[0]["params"] == {} and folds[0]["study"] is None
    assert sum(folds[1]["trials"].values()) == 3 and "max_depth" in folds[1]["params"] and folds[1]["scored_folds"] == [0]
    assert {f"fold_01_{kind}.png" for kind in ("history", "intermediate")} <= set(out["tune_plots"])
    page = out["tune_comparison"]
    assert "## Tuned vs default" in page and "| xgboost | 5 |" in page and "xgboost_tuned" in page
    tuned = out["tune_rows"]["xgboost_tuned-h5"]  # its paired lead over the default, in compare.json and on the page
    assert tuned["default_model"] == "xgboost" and f"| {tuned['lead_over_default']:+.4f}" in page
    if tuned["lead_over_default_t"] is None:  # 3 trials may pick trial 0, params.yaml's own: the same fits, identical on every date
        assert tuned["lead_over_default"] == 0 and "| identical fits |" in page
    else:
        assert tuned["lead_over_default_lo"] <= tuned["lead_over_default"] <= tuned["lead_over_default_hi"]
    assert "lead_over_default" not in out["tune_rows"]["xgboost-h5"]


def test_metrics_diff_shows_the_changed_model(project):
    _, out = project
    rows = [line for line in out["diff"].splitlines() if line.startswith("| metrics/")]
    assert rows, out["diff"]
    paths = {line.strip("|").split("|")[0].strip() for line in rows}
    # xgboost's headline files move, and the ensembles' (xgboost is one of their members) and
    # possibly the verdict; no other model's
    assert "metrics/eval/xgboost-h5.json" in paths, paths
    assert all(p.startswith(("metrics/eval/xgboost-", "metrics/eval/rank_avg-", "metrics/eval/stack-", "metrics/summary/")) for p in paths), paths


def test_metrics_fit_in_a_terminal(project):
    """`dvc metrics show` (every item and the verdict) fits in 200 columns; so does `dvc exp
    show --only-changed` after a one-parameter experiment, narrowed to the changed model."""
    _, out = project
    lines = [line for line in out["show"].splitlines() if line.strip()]
    assert any(line.startswith("metrics/eval/xgboost-h5.json") for line in lines)
    assert any(line.startswith("metrics/summary/h5.json") for line in lines)
    assert max(len(line) for line in lines) <= 200, out["show"]
    header = out["exp_show"].splitlines()[0].split(",")
    assert "models.xgboost.max_depth" in header and "train.lr" not in header, header


def test_fixed_scheme_is_the_single_split(project):
    _, out = project
    split = out["fixed_schema"]["split"]
    assert split["scheme"] == "fixed" and len(split["folds"]) == 1
    fold = split["folds"][0]
    assert fold["val_start"] == "2001-07-01" and fold["test_start"] == "2002-02-01" and fold["test_end"] is None
    assert "compare" in _ran(out["exp_fixed"])
