"""Tiny checkpoints of the pre-trained models' architectures, written by the tests themselves in
the official formats (random weights, a few layers), so the models load them through exactly the
path a real checkpoint takes -- and no test downloads anything (tests/conftest.py sets
HF_HUB_OFFLINE)."""

from __future__ import annotations

import functools
import tempfile
from pathlib import Path

# text like the prompts, so the tiny byte-level BPE vocabulary has merges for them
CORPUS = [
    "<|start_prompt|>Dataset description: daily bars of US stocks with their technical indicators and market-wide "
    "context series. Task description: classify the trend of the coming bars as down, flat or up given the previous "
    "24 bars; Input statistics: min value -1.23, max value 2.05, median value 0.0417, the trend of input is upward, "
    "top 5 lags are : 1, 2, 3, 4, 5<|<end_prompt>|> downward 0123456789 e-05 -0.5 .",
]


def write_tiny_gpt2(directory: Path, layers: int = 2, width: int = 32, heads: int = 2, vocab_size: int | None = None, n_positions: int = 256) -> Path:
    """A GPT-2 as ``save_pretrained`` writes it (config.json, model.safetensors) with GPT-2's
    byte-level BPE tokenizer files (vocab.json, merges.txt, tokenizer.json), ~400 tokens.
    ``vocab_size``: the model's embedding rows (default: the tokenizer's; larger for GPT-2's cost)."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2Model, GPT2TokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS * 4, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    bpe.save_model(str(directory))
    merges = [tuple(line.split()) for line in (directory / "merges.txt").read_text().splitlines()[1:] if line.strip()]
    tokenizer = GPT2TokenizerFast(vocab=bpe.get_vocab(), merges=merges)
    tokenizer.save_pretrained(directory)
    torch.manual_seed(0)
    eos = tokenizer.eos_token_id
    config = GPT2Config(vocab_size=vocab_size or len(tokenizer), n_positions=n_positions, n_embd=width, n_layer=layers, n_head=heads, bos_token_id=eos, eos_token_id=eos)
    GPT2Model(config).save_pretrained(directory)
    return directory


@functools.lru_cache(maxsize=None)
def tiny_gpt2() -> Path:
    """One tiny GPT-2 per test process (a fresh temp directory)."""
    return write_tiny_gpt2(Path(tempfile.mkdtemp(prefix="tiny-gpt2-")))


def write_tiny_timesfm(directory: Path, layers: int = 2, width: int = 32, heads: int = 2) -> Path:
    """A TimesFM 2.5 as the official PyTorch release stores it (``model.safetensors``: the
    network's state_dict, as the package's ``save_pretrained`` writes it), with random weights and
    ``layers`` transformer layers of ``width`` (the release: 20 of 1280, 16 heads)."""
    import dataclasses

    import torch
    from safetensors.torch import save_file
    from timesfm.timesfm_2p5.timesfm_2p5_base import TimesFM_2p5_200M_Definition
    from timesfm.timesfm_2p5.timesfm_2p5_torch import TimesFM_2p5_200M_torch_module

    d = TimesFM_2p5_200M_Definition()
    block = dataclasses.replace(d.stacked_transformers.transformer, model_dims=width, hidden_dims=width, num_heads=heads)
    small = dataclasses.replace(
        d,
        tokenizer=dataclasses.replace(d.tokenizer, hidden_dims=width, output_dims=width),
        stacked_transformers=dataclasses.replace(d.stacked_transformers, num_layers=layers, transformer=block),
        output_projection_point=dataclasses.replace(d.output_projection_point, input_dims=width, hidden_dims=width),
        output_projection_quantiles=dataclasses.replace(d.output_projection_quantiles, input_dims=width, hidden_dims=width),
    )
    torch.manual_seed(0)
    module = type("TinyTimesFM", (TimesFM_2p5_200M_torch_module,), {"config": small})()
    for name, p in module.named_parameters():  # the package starts its RMS norms' scales at zero: a trained model's are not
        if p.dim() == 1:
            torch.nn.init.normal_(p, 1.0 if name.endswith(".scale") else 0.0, 0.1)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(module.state_dict(), str(directory / "model.safetensors"))
    return directory


@functools.lru_cache(maxsize=None)
def tiny_timesfm() -> Path:
    """One tiny TimesFM per test process (a fresh temp directory)."""
    return write_tiny_timesfm(Path(tempfile.mkdtemp(prefix="tiny-timesfm-")))
