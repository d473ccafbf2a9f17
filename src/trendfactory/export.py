"""`trendfactory export --model lstm --horizon 5`: a trained network for production inference.

Writes ``exported/<model>-h<h>/`` (git-ignored; ``--output`` to choose):

- ``model.onnx`` -- the last walk-forward fold's first-seed network (the model `predict` uses),
  reduced to one horizon: input ``x`` (windows ``[batch, seq_len, n_features]``, or rows
  ``[batch, n_inputs]`` for networks that read the last row), outputs ``proba`` ``[batch, 3]``
  (down, flat, up) and ``score`` ``[batch]`` in [-1, 1]; the batch size is free.
  ``model.pt`` (TorchScript) instead where the ONNX exporter cannot express the network; the
  reason is in ``export.json``.
- ``export.json`` -- what scoring needs beside the network: the feature columns in input order,
  the window length (and lags), the train-fitted scaler of that fold per feature (``kind``
  zscore: ``(x - mean) / std``, else as is; then clipped to +/- ``clip``), the class order, and
  the parity check below.

Parity: the exported file is scored through ONNX Runtime (or TorchScript) on the fold's test
windows and compared with the PyTorch model's own ``predict`` run on the CPU, where the file
runs (on a GPU machine too: the GPU's rounding is not the file's); the export fails unless
every probability and score agrees to ``TOLERANCE``.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import torch

from trendfactory.errors import TrendfactoryError
from trendfactory.io import atomic_dir, write_json
from trendfactory.models import Samples, TrendModel
from trendfactory.paths import item_id

log = logging.getLogger("trendfactory")

EXPORT_DIR = Path("exported")
TOLERANCE = 1e-5
CHECK_ROWS = 4096  # test windows scored both ways
OPSET = 17


def default_output(model: str, horizon: int) -> Path:
    return EXPORT_DIR / item_id(model, horizon)


def _run_onnx(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # deterministic and cheap for a parity check
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    proba, score = session.run(["proba", "score"], {"x": x})
    return proba, score


def _run_torchscript(path: Path, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    module = torch.jit.load(str(path))
    with torch.no_grad():
        proba, score = module(torch.from_numpy(x))
    return proba.numpy(), score.numpy()


def export_fitted(model: TrendModel, samples: Samples, out_dir: Path, extra: dict | None = None) -> dict:
    """Export ``model`` for ``samples.horizon`` into ``out_dir`` and check it against
    ``model.predict`` on the first ``CHECK_ROWS`` of ``samples``; returns the export.json content."""
    # Long on purpose: one export: trace, write, reload, compare to PyTorch; the steps share the model and its inputs.
    if not hasattr(model, "scoring_module"):
        raise TrendfactoryError(f"export: {model.name} is a {model.kind} model, saved in its library's own format under models/; export writes networks (kinds network and joint)")
    blocker = getattr(model, "export_blocker", None)  # declared by a network that cannot be exported
    if blocker:
        raise TrendfactoryError(f"export: {model.name} cannot be exported: {blocker}; score it with `trendfactory predict`")
    if len(samples) == 0:
        raise TrendfactoryError(f"export: no {samples} windows to check the exported {model.name} against")
    module = model.scoring_module(samples.horizon).eval()
    n = min(len(samples), CHECK_ROWS)
    x = np.ascontiguousarray(model.scoring_inputs(samples, slice(0, n)), dtype=np.float32)
    # the network on the CPU, where the exported file runs (onnxruntime's CPU provider): on a
    # GPU, predict would add the GPU's own rounding to the comparison
    with model.predicting_on("cpu"):
        expected = model.predict(samples.subset(np.arange(n)))  # only the rows the check compares
    want_proba, want_score = expected.proba, expected.score
    example = torch.from_numpy(x[:2])  # traced with 2 rows, checked with n: the batch size stays free

    out_dir = Path(out_dir)
    meta: dict = {}
    with atomic_dir(out_dir) as tmp:
        try:
            with torch.no_grad():
                torch.onnx.export(
                    module,
                    (example,),
                    str(tmp / "model.onnx"),
                    dynamo=False,
                    opset_version=OPSET,
                    input_names=["x"],
                    output_names=["proba", "score"],
                    dynamic_axes={"x": {0: "batch"}, "proba": {0: "batch"}, "score": {0: "batch"}},
                )
            proba, score = _run_onnx(tmp / "model.onnx", x)
            fmt, reason = "onnx", None
        except Exception as exc:  # an operator ONNX lacks: fall back to TorchScript, and say why
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
            log.warning("export: %s does not export to ONNX (%s); writing TorchScript", model.name, reason)
            (tmp / "model.onnx").unlink(missing_ok=True)
            with torch.no_grad():
                traced = torch.jit.trace(module, (example,), check_trace=False)
            traced.save(str(tmp / "model.pt"))
            proba, score = _run_torchscript(tmp / "model.pt", x)
            fmt = "torchscript"
        diff = float(max(np.abs(proba - want_proba).max(), np.abs(score - want_score).max()))
        if not np.isfinite(diff) or diff > TOLERANCE:
            raise TrendfactoryError(f"export: {model.name} h{samples.horizon} as {fmt} differs from the PyTorch model by {diff:.2e} (> {TOLERANCE:g}) on {n} test windows; not written")
        meta = {
            "model": f"{model.family}:{model.name}",
            "horizon": samples.horizon,
            "format": fmt,
            "file": "model.onnx" if fmt == "onnx" else "model.pt",
            "onnx_opset": OPSET if fmt == "onnx" else None,
            "onnx_error": reason,
            "input": {
                "name": "x",
                "shape": ["batch", *x.shape[1:]],
                "kind": "window" if x.ndim == 3 else "rows",
                "feature_names": list(model.feature_names_),
                "lags": list(getattr(model, "lags", None) or []),
            },
            "outputs": {"proba": ["batch", 3], "score": ["batch"]},
            "classes": ["down", "flat", "up"],
            "parity": {"rows": n, "max_abs_diff": diff, "tolerance": TOLERANCE, "against": "TrendModel.predict (PyTorch, CPU)"},
            "torch": torch.__version__,
            **(extra or {}),
        }
        write_json(meta, tmp / "export.json")
    return meta


__all__ = ["default_output", "export_fitted", "export_trained"]


def export_trained(model: str, horizon: int, output: Path | None = None, project_root: Path = Path(".")) -> tuple[Path, dict]:
    """Export the pipeline's trained ``model`` (its last fold's first seed, as `predict` scores)
    with that fold's scaler, checked on that fold's test windows."""
    from trendfactory.scoring import load_trained
    from trendfactory.models.data import load_split
    from trendfactory.windows.reader import open_store

    trained = load_trained(model, horizon, project_root)
    fitted = trained.model
    out = Path(output) if output is not None else default_output(fitted.name, trained.horizon)
    with contextlib.chdir(project_root):  # the window-store readers use project-relative paths
        samples = load_split("test", trained.horizon, open_store().n_folds - 1)
    from trendfactory.params import load_params

    params_path = Path(project_root) / "params.yaml"
    clip = load_params(params_path).features.clip if params_path.is_file() else None
    extra = {
        "seq_len": trained.seq_len,
        "scaler": {c: trained.scaler[c] for c in fitted.feature_names_},
        "clip": clip,
        "trained_on": "the last walk-forward fold, first seed",
    }
    return out, export_fitted(fitted, samples, out, extra)
