"""trendfactory.numerics: portable mode gives the same bytes whatever CPU paths and thread
counts the environment asks for.

The end-to-end test runs the tiny pipeline's stages of every kind (ingest, featurize, window,
a tabular train of each library -- scikit-learn, XGBoost, LightGBM, CatBoost --, a network,
the dual tower, evaluate, the ensembles, compare) with `dvc repro` twice, under the two
instruction sets a team's machines have, forced through the libraries' own switches: the AVX-512
path (numpy's AVX-512 loops, OpenBLAS SkylakeX kernels, torch AVX-512, 4 threads) and the AVX2
path (numpy without AVX-512, OpenBLAS Haswell, torch AVX2, 1 thread). Portable mode must give one
dvc.lock. The first run fits in the stage's process (``parallel.cpus: 1``), the second fans the
fits out to Ray workers, so it also shows that a Ray worker's fit equals the stage process' fit.
On a CPU with AVX-512 the control run shows the emulation bites: in native mode the same two
environments give other bytes from ingest on.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.pipeline_helpers import EVERY_KIND, copy_project
from trendfactory import numerics
from trendfactory.errors import TrendfactoryError

HAS_AVX512 = "avx512f" in ((numerics._cpu_flags() or set()) if numerics.is_x86() else set())

# What an AVX-512 machine's libraries pick by themselves, made explicit (only where the CPU has
# AVX-512: forcing those kernels elsewhere would crash); and an AVX2 machine's, forced.
AVX512_ENV = (
    {
        "NPY_DISABLE_CPU_FEATURES": "",
        "OPENBLAS_CORETYPE": "SkylakeX",
        "ATEN_CPU_CAPABILITY": "avx512",
        "ONEDNN_MAX_CPU_ISA": "ALL",
        "MKL_CBWR": "AUTO",
        "ARROW_USER_SIMD_LEVEL": "AVX512",
    }
    if HAS_AVX512
    else {}
)
AVX2_ENV = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
    "OPENBLAS_CORETYPE": "Haswell",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
    "ARROW_USER_SIMD_LEVEL": "AVX2",
}
EMULATIONS = {
    "avx512": {**AVX512_ENV, "OMP_NUM_THREADS": "4", "OPENBLAS_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"},
    "avx2": {**AVX2_ENV, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}


def _clean_env(overrides: dict[str, str]) -> dict[str, str]:
    """This process' environment without trendfactory's switches (the test process set them on
    import), plus ``overrides``: what a machine of that kind would start a stage with."""
    drop = {numerics.ENV_VAR, *numerics.portable_env(x86=True)}
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **overrides}


def _repro(work: Path, env: dict, *targets: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "dvc", "repro", *targets], cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"dvc repro failed in {work}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return yaml.safe_load((work / "dvc.lock").read_text())["stages"]


def _outs(lock: dict) -> dict[str, dict[str, str]]:
    """stage -> {out path: hash} of a parsed dvc.lock."""
    return {stage: {o["path"]: o.get("md5") for o in entry.get("outs", [])} for stage, entry in lock.items()}


def _differing(a: dict, b: dict) -> list[str]:
    oa, ob = _outs(a), _outs(b)
    return sorted(f"{s}: {p}" for s in oa for p in oa[s] if ob.get(s, {}).get(p) != oa[s][p])


def test_portable_mode_gives_one_dvc_lock_under_both_instruction_sets(tmp_path):
    locks = {}
    for (name, emulation), cpus in zip(EMULATIONS.items(), (1, 2)):
        work = tmp_path / name
        env = copy_project(work, {**EVERY_KIND, "numerics": "portable", "parallel": {"cpus": cpus}}, _clean_env(emulation))
        locks[name] = _repro(work, env)
    stages = set(locks["avx512"])
    assert {
        "ingest",
        "featurize",
        "window",
        "train@logistic-5",
        "train@xgboost-5",
        "train@lightgbm-5",
        "train@catboost-5",
        "train_neural@tcn",
        "train_joint@dual_tower",
        "evaluate_neural@tcn-5",
        "ensemble@5",
        "compare",
    } <= stages
    # every stage's outputs (check_params also records params.yaml, whose `parallel` section differs)
    assert _outs(locks["avx512"]) == _outs(locks["avx2"]), f"outputs differ between the emulations: {_differing(locks['avx512'], locks['avx2'])}"


@pytest.mark.skipif(not HAS_AVX512, reason="needs a CPU with AVX-512: on an AVX2 CPU both emulations are the same path")
def test_native_mode_differs_under_the_two_emulations(tmp_path):
    """The control: without portable mode the emulated AVX-512 and AVX2 paths give other bytes
    (numpy's exp/log/pow from ingest on), so the test above can fail."""
    locks = {}
    for name, emulation in EMULATIONS.items():
        work = tmp_path / name
        env = copy_project(work, {**EVERY_KIND, "numerics": "native"}, _clean_env(emulation))
        locks[name] = _repro(work, env, "ingest")
    assert any(d.startswith("ingest: ") for d in _differing(locks["avx512"], locks["avx2"]))


# ----------------------------------------------------------------------------- configuration


def test_the_test_process_runs_on_the_portable_paths():
    """conftest imports trendfactory before numpy: this process computes as a stage does."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS)
    import torch  # noqa: F401

    numerics.ensure("portable")
    paths = numerics.active_paths()
    if numerics.is_x86():
        assert paths["numpy"] == "X86_V3" and paths["torch"] == "AVX2", paths
        assert {v for k, v in paths.items() if k.startswith("openblas:")} == {"Haswell"}, paths


def test_mode_comes_from_the_environment_then_the_params_file_then_the_default(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text("seed: 1\nnumerics: native   # a comment\n")
    env: dict[str, str] = {}
    assert numerics.configure_process(["x", "--params", str(params)], env).mode == "native"
    assert env == {}  # native leaves the libraries to choose
    assert numerics.configure_process([f"--params={params}"], {numerics.ENV_VAR: "portable"}).source == f"${numerics.ENV_VAR}"
    env = {}
    st = numerics.configure_process(["x", "--params", str(tmp_path / "missing.yaml")], env)
    assert (st.mode, st.source) == ("portable", "default")
    assert env["OMP_NUM_THREADS"] == str(numerics.STAGE_THREADS)
    if numerics.is_x86():
        assert env["OPENBLAS_CORETYPE"] == "Haswell" and env["ATEN_CPU_CAPABILITY"] == "avx2"
    numerics.configure_process()  # back to this process' own configuration


def test_portable_overrides_what_the_environment_asked_for():
    env = {"OPENBLAS_CORETYPE": "SkylakeX", "OMP_NUM_THREADS": "16", "NPY_DISABLE_CPU_FEATURES": ""}
    numerics.configure_process(["x", "--params", "/nonexistent.yaml"], env)
    assert env["OMP_NUM_THREADS"] == "2"
    if numerics.is_x86():
        assert env["OPENBLAS_CORETYPE"] == "Haswell" and "X86_V4" in env["NPY_DISABLE_CPU_FEATURES"]
    numerics.configure_process()


def test_ensure_names_a_mode_mismatch_and_a_cpu_without_avx2(monkeypatch):
    numerics.configure_process(["x"], {numerics.ENV_VAR: "native"})
    try:
        with pytest.raises(TrendfactoryError, match=r"numerics: params say 'portable' but this process was started in 'native' \(from \$TRENDFACTORY_NUMERICS\)"):
            numerics.ensure("portable")
        monkeypatch.setattr(numerics, "_cpu_flags", lambda: {"sse2", "avx"})
        monkeypatch.setattr(numerics, "is_x86", lambda: True)
        numerics.configure_process(["x"], {numerics.ENV_VAR: "portable"})
        with pytest.raises(TrendfactoryError, match="numerics: portable: this CPU lacks AVX2/FMA.*set numerics: native"):
            numerics.ensure("portable")
    finally:
        monkeypatch.undo()
        numerics.configure_process()


def test_a_library_loaded_before_trendfactory_is_named():
    """numpy imported first, with its AVX-512 loops on: the stage refuses in one line."""
    if not HAS_AVX512:
        pytest.skip("needs a CPU with AVX-512 (elsewhere numpy's paths are the portable ones anyway)")
    code = "import numpy, trendfactory\nfrom trendfactory import numerics\ntry:\n    numerics.ensure('portable')\nexcept Exception as e:\n    print(e)\n"
    out = subprocess.run([sys.executable, "-c", code], env=_clean_env({}), capture_output=True, text=True, check=True).stdout
    assert out.startswith("numerics: portable: numpy dispatches to X86_V4") and "import trendfactory first" in out, out


def test_the_key_is_validated():
    from trendfactory.params import ParamsError, parse_params

    assert parse_params(None).numerics == "portable"
    with pytest.raises(ParamsError, match="numerics: got 'fast', expected one of 'portable', 'native'"):
        parse_params({"numerics": "fast"})
