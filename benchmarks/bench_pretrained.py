"""Time and memory per 1,000 windows of the pre-trained models, at their default sizes.

Each model is measured in its own process (peak memory is per process). The backbones have the
released checkpoints' shapes with random weights, written locally in the official formats and
loaded through the models' own paths: the compute is the real one, and no download is needed
(this machine cannot reach Hugging Face).

Time-LLM's backbone is GPT-2 small's shape (the default ``openai-community/gpt2``: vocabulary
50,257, width 768, 12 heads; ``llm_layers: 6`` of its blocks kept) with random weights, written
locally with ``save_pretrained`` and loaded through the model's own path: the compute is the real
one, and no download is needed (this machine cannot reach Hugging Face). Its tokenizer is a small
byte-level BPE like GPT-2's, so prompts are padded to the same ``prompt_tokens`` (128).

TimesFM's checkpoint is TimesFM 2.5 200M's shape (20 layers of width 1280, 16 heads; the
default ``google/timesfm-2.5-200m-pytorch``), written as the release's ``model.safetensors``.
Its training step trains the fine-tune head only (the backbone is frozen and runs without
gradients), so its cost is the forecast's.

For each model: one training step (forward, backward, AdamW) and one inference pass over batches
of windows of the default shape (seq_len 30, 56 features); reported as seconds per 1,000 windows
(median of ``--repeats``) and the process's peak resident memory.

    .venv/bin/python benchmarks/bench_pretrained.py [--model time_llm|timesfm] [--batch 64] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import trendfactory  # noqa: F401  (sets the numerical paths before the models load)
from trendfactory.models import create

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.models.tiny_checkpoints import write_tiny_gpt2, write_tiny_timesfm  # noqa: E402  (the tests' writers, at the releases' sizes)


def gpt2_small_shaped(directory: Path) -> Path:
    """GPT-2 small's architecture with random weights and a small GPT-2-style tokenizer."""
    return write_tiny_gpt2(directory, layers=12, width=768, heads=12, vocab_size=50257, n_positions=1024)


def timesfm_200m_shaped(directory: Path) -> Path:
    """TimesFM 2.5 200M's architecture with random weights, as the release's model.safetensors."""
    return write_tiny_timesfm(directory, layers=20, width=1280, heads=16)


CHECKPOINTS = {"time_llm": ("backbone", gpt2_small_shaped), "timesfm": ("checkpoint", timesfm_200m_shaped)}


def measure(name: str, config: dict, batch: int, repeats: int) -> dict:
    model = create(name, config, horizon=5, seed=0)
    model.shape_, model.horizons_ = (56, 30), [5, 20]
    net = model.network(2)
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    x, y = torch.randn(batch, 30, 56), torch.randint(0, 3, (batch, 2))
    train, infer = [], []
    for _ in range(repeats):
        net.train()
        t0 = time.perf_counter()
        logits, _ = net(x)
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        train.append(time.perf_counter() - t0)
        net.eval()
        t0 = time.perf_counter()
        with torch.no_grad():
            net(x)
        infer.append(time.perf_counter() - t0)
    trainable = sum(p.numel() for p in net.parameters())
    return {
        "model": name,
        "train s/1k": 1000 * np.median(train) / batch,
        "predict s/1k": 1000 * np.median(infer) / batch,
        "trainable params": trainable,
        "peak RSS GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(CHECKPOINTS), help="one model (default: each in its own process)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.model is None:
        for name in CHECKPOINTS:
            subprocess.run([sys.executable, __file__, "--model", name, *sys.argv[1:]], check=True)
        return
    torch.set_num_threads(args.threads)
    key, write = CHECKPOINTS[args.model]
    with tempfile.TemporaryDirectory() as tmp:
        row = measure(args.model, {key: str(write(Path(tmp)))}, args.batch, args.repeats)
    print(f"{torch.get_num_threads()} threads, batch {args.batch}, CPU")
    print(" | ".join(f"{k}: {v:,.3f}" if isinstance(v, float) else f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
