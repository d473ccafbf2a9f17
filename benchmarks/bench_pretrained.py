"""Time and memory per 1,000 windows of the pre-trained models, at their default sizes.

Time-LLM's backbone is GPT-2 small's shape (the default ``openai-community/gpt2``: vocabulary
50,257, width 768, 12 heads; ``llm_layers: 6`` of its blocks kept) with random weights, written
locally with ``save_pretrained`` and loaded through the model's own path: the compute is the real
one, and no download is needed (this machine cannot reach Hugging Face). Its tokenizer is a small
byte-level BPE like GPT-2's, so prompts are padded to the same ``prompt_tokens`` (128).

For each model: one training step (forward, backward, AdamW) and one inference pass over batches
of windows of the default shape (seq_len 30, 56 features); reported as seconds per 1,000 windows
(median of ``--repeats``) and the process's peak resident memory.

    .venv/bin/python benchmarks/bench_pretrained.py [--batch 64] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import trendfactory  # noqa: F401  (sets the numerical paths before the models load)
from trendfactory.models import create

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.models.tiny_checkpoints import write_tiny_gpt2  # noqa: E402  (the tests' GPT-2 writer, at GPT-2 small's sizes)


def gpt2_small_shaped(directory: Path) -> Path:
    """GPT-2 small's architecture with random weights and a small GPT-2-style tokenizer."""
    return write_tiny_gpt2(directory, layers=12, width=768, heads=12, vocab_size=50257, n_positions=1024)


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
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        backbone = gpt2_small_shaped(Path(tmp))
        row = measure("time_llm", {"backbone": str(backbone)}, args.batch, args.repeats)
    print(f"{torch.get_num_threads()} threads, batch {args.batch}, CPU")
    print(" | ".join(f"{k}: {v:,.3f}" if isinstance(v, float) else f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
