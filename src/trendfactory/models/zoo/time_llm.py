"""Pre-trained: Time-LLM (Jin et al., ICLR 2024) -- the window reprogrammed into a frozen
language model's embedding space, with a text prompt as prefix.

What is kept from the paper and its reference implementation (KimMeen/Time-LLM, models/TimeLLM.py):

- **Channel independence and RevIN:** each series is normalised by its own mean and standard
  deviation over the window (no affine part, statistics not back-propagated) and goes through the
  language model on its own.
- **Patches:** the series is padded at the end by repeating its last value ``stride`` times and
  cut into patches of ``patch_len`` bars every ``stride`` bars; a circular Conv1d (kernel 3, over
  the patch axis, each patch's values as channels) embeds each patch in ``d_model`` (no position
  embedding: the language model adds its own).
- **Reprogramming:** a linear map from the vocabulary to ``prototypes`` text prototypes
  (``Linear(V, S)`` over the frozen word-embedding matrix), then multi-head cross-attention with
  the patches as queries and the prototypes as keys and values (``d_keys = d_ff`` per head, as in
  the reference), projected to the language model's width.
- **Prompt-as-prefix:** ``<|start_prompt|>Dataset description: ... Task description: ...
  Input statistics: min value, max value, median value, the trend of input is upward|downward,
  top 5 lags are : ...<|<end_prompt>|>``, tokenised by the backbone's own tokenizer and embedded
  by its frozen input embeddings, before the reprogrammed patches.
- **Frozen backbone:** the first ``llm_layers`` blocks of a pre-trained model loaded with
  ``transformers`` (GPT-2 by default, any decoder with ``inputs_embeds`` works); its weights never
  train. Only the reprogramming path and the output projection do.
- **Output:** the language model's last hidden states at the patch positions, cut to ``d_ff``
  channels and flattened, feed the projection -- here the factory's head (three class logits and
  a score per horizon) instead of a forecast of the next values. Where the reference adds the
  normalisation's mean and scale back to its forecast, the head here gets each series' mean and
  log standard deviation beside the hidden states: a trend class depends on the level too.

What differs, and why:

- **A learned mix of the features into ``series`` series.** The window holds 56 features; running
  each through the language model would be 56x the tokens (the reference's multivariate datasets
  have 7). A linear layer mixes them into a few series first; it trains with the reprogramming.
- **The prompt is padded on the left to ``prompt_tokens`` tokens and the padding masked** (the
  reference pads on the right and attends to the padding, between prompt and patches), positions
  counted from the first real token: a window's output does not depend on the rest of its batch.
- **The statistics are written with 3 significant digits** and the lags are the strongest
  autocorrelations at lags 1 .. L-1 (the reference prints full floats and can list lag 0).
- **The task description** states this task: the trend class of the coming bars.
- **The backbone runs in eval mode** (no dropout inside a frozen model) and is kept outside the
  network's ``state_dict``: a saved fit or a checkpoint holds the trained layers only (kilobytes,
  not the backbone's hundreds of MB); loading rebuilds the backbone from ``backbone``.

``backbone`` is a Hugging Face id (``openai-community/gpt2``) or a local directory holding a
``transformers`` checkpoint (``config.json``, weights, tokenizer files). Without a network the id
must be in the Hugging Face cache; otherwise the stage stops with one line naming the key and how
to provide a local copy. Not in the default run lists (the download, and the cost: see
docs/models.md); run it with ``dvc exp run -S 'run.neural_models=[...,time_llm]'``.

Export: the prompt is text built from each window's statistics and tokenised in Python at every
forward pass, which ONNX and TorchScript cannot express.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

from trendfactory import portable_math as pmath
from trendfactory.errors import TrendfactoryError
from trendfactory.models.common.layers import Dropout, TrendHead
from trendfactory.models.common.neural import NeuralModel
from trendfactory.models.registry import register
from trendfactory.params import DROPOUT, pos_field

DESCRIPTION = "daily bars of US stocks with their technical indicators and market-wide context series."


@dataclass(frozen=True)
class TimeLLMConfig:
    backbone: str = "openai-community/gpt2"  # Hugging Face id or local directory of the frozen language model
    llm_layers: int = pos_field(6)  # the backbone's first blocks kept (the reference's default)
    series: int = pos_field(2)  # the features mixed into this many series, each through the model
    patch_len: int = pos_field(8)  # bars per patch
    stride: int = pos_field(4)  # bars between patch starts
    d_model: int = pos_field(16)  # patch embedding width
    heads: int = pos_field(8)  # reprogramming attention heads
    d_ff: int = pos_field(32)  # per-head key width and the hidden channels kept (<= the backbone's width)
    prototypes: int = pos_field(1000)  # text prototypes mapped from the vocabulary
    prompt_tokens: int = pos_field(128)  # the prompt padded or cut to this many tokens
    top_lags: int = pos_field(5)  # autocorrelation lags quoted in the prompt
    dropout: float = field(default=0.1, metadata=DROPOUT)


def load_backbone(ref: str, layers: int) -> tuple[nn.Module, object]:
    """(the frozen language model with its first ``layers`` blocks, its tokenizer) from a
    Hugging Face id or a local directory; one clear line when it cannot be had."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    local = Path(ref).expanduser()
    if (local.is_absolute() or ref.startswith(".") or local.exists()) and not (local / "config.json").is_file():
        raise TrendfactoryError(
            f"models.time_llm.backbone: {ref!r} is not a transformers checkpoint directory (no config.json in it); "
            "give a Hugging Face id such as openai-community/gpt2, or a directory written by save_pretrained"
        )
    try:
        config = AutoConfig.from_pretrained(ref)
        config.num_hidden_layers = min(layers, config.num_hidden_layers)
        model = AutoModel.from_pretrained(ref, config=config)
        tokenizer = AutoTokenizer.from_pretrained(ref)
    except (OSError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TrendfactoryError(
            f"models.time_llm.backbone: cannot load {ref!r} ({reason[:160]}); where there is a network, "
            f"`huggingface-cli download {ref} --local-dir <dir>` and set models.time_llm.backbone to <dir> "
            "(or run once online to fill the Hugging Face cache)"
        ) from None
    if tokenizer.pad_token is None:  # GPT-2 has none: its end-of-text token pads, as in the reference
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    model.requires_grad_(False)
    return model.eval(), tokenizer


class Reprogramming(nn.Module):
    """Cross-attention from the patch embeddings (queries) to the text prototypes (keys, values)."""

    def __init__(self, d_model: int, heads: int, d_keys: int, d_llm: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.d_keys = heads, d_keys
        self.query = nn.Linear(d_model, d_keys * heads)
        self.key = nn.Linear(d_llm, d_keys * heads)
        self.value = nn.Linear(d_llm, d_keys * heads)
        self.out = nn.Linear(d_keys * heads, d_llm)
        self.drop = Dropout(dropout)

    def forward(self, patches: torch.Tensor, prototypes: torch.Tensor) -> torch.Tensor:
        b, n, _ = patches.shape  # [B', N, d_model]
        s = prototypes.shape[0]  # [S, d_llm]
        q = self.query(patches).view(b, n, self.heads, self.d_keys)  # [B', N, H, E]
        k = self.key(prototypes).view(s, self.heads, self.d_keys)  # [S, H, E]
        v = self.value(prototypes).view(s, self.heads, self.d_keys)  # [S, H, E]
        scores = torch.einsum("bnhe,she->bhns", q, k) / math.sqrt(self.d_keys)  # [B', H, N, S]
        attn = self.drop(torch.softmax(scores, dim=-1))
        out = torch.einsum("bhns,she->bnhe", attn, v).reshape(b, n, self.heads * self.d_keys)  # [B', N, H*E]
        return self.out(out)  # [B', N, d_llm]


class TimeLLMNet(nn.Module):
    """Features -> series -> prompt + reprogrammed patches -> frozen language model -> head."""

    def __init__(self, n_features: int, seq_len: int, c: TimeLLMConfig, llm: nn.Module, tokenizer) -> None:
        super().__init__()
        vocab, d_llm = llm.get_input_embeddings().weight.shape
        if c.d_ff > d_llm:
            raise TrendfactoryError(f"models.time_llm.d_ff: got {c.d_ff}, expected at most the backbone's width {d_llm}")
        # the backbone is not a registered submodule: it never trains and is rebuilt from
        # `backbone` on load, so state_dict, checkpoints and saved fits hold the trained layers only
        object.__setattr__(self, "llm", llm)
        object.__setattr__(self, "tokenizer", tokenizer)
        self.seq_len, self.series, self.d_ff = seq_len, c.series, c.d_ff
        self.patch_len = min(c.patch_len, seq_len)
        self.stride = c.stride
        self.n_patches = (seq_len - self.patch_len) // self.stride + 2  # with the end padding of `stride` bars
        self.prompt_tokens, self.top_lags = c.prompt_tokens, min(c.top_lags, seq_len - 1)
        self.mix = nn.Linear(n_features, c.series)
        self.pad = nn.ReplicationPad1d((0, self.stride))
        self.patch_embed = nn.Conv1d(self.patch_len, c.d_model, kernel_size=3, padding=1, padding_mode="circular", bias=False)
        nn.init.kaiming_normal_(self.patch_embed.weight, mode="fan_in", nonlinearity="leaky_relu")
        self.prototypes = nn.Linear(vocab, min(c.prototypes, vocab))
        self.reprogram = Reprogramming(c.d_model, c.heads, c.d_ff, d_llm, c.dropout)
        self.drop = Dropout(c.dropout)
        # the head also sees each series' mean and log standard deviation: the level and scale the
        # normalisation removed, which the reference adds back to its forecast (de-normalisation)
        self.head = TrendHead(c.series * self.n_patches * c.d_ff + 2 * c.series)

    def _apply(self, fn, recurse: bool = True):
        # .to(device) / .float() / .cuda() reach the backbone too
        super()._apply(fn, recurse)
        self.llm._apply(fn)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.llm.eval()  # frozen: no dropout inside it
        return self

    def prompts(self, s: torch.Tensor) -> list[str]:
        """One prompt per normalised series s [B', L] (the paper's template, this task)."""
        lo, hi, med = s.min(dim=1).values, s.max(dim=1).values, s.median(dim=1).values  # [B'] each
        trend = s[:, -1] - s[:, 0]  # the sum of the steps
        spectrum = torch.fft.rfft(s.float(), dim=1)
        autocorr = torch.fft.irfft(spectrum * spectrum.conj(), n=s.shape[1], dim=1)  # [B', L]
        lags = torch.topk(autocorr[:, 1:], self.top_lags, dim=1).indices + 1  # [B', k], lags >= 1
        # one device-to-host copy for all of them ([B', 4 + k]; float64 holds every value exactly)
        stats = torch.cat([torch.stack([lo, hi, med, trend], dim=1).double(), lags.double()], dim=1).tolist()
        rows = ((a, b, m, t, [int(v) for v in lag]) for a, b, m, t, *lag in stats)
        return [
            f"<|start_prompt|>Dataset description: {DESCRIPTION} "
            f"Task description: classify the trend of the coming bars as down, flat or up given the previous {self.seq_len} bars; "
            "Input statistics: "
            f"min value {a:.3g}, max value {b:.3g}, median value {m:.3g}, "
            f"the trend of input is {'upward' if t > 0 else 'downward'}, "
            f"top {self.top_lags} lags are : {', '.join(map(str, lag))}<|<end_prompt>|>"
            for a, b, m, t, lag in rows
        ]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, length, _ = x.shape  # [B, L, F]
        s = self.mix(x)  # [B, L, C]
        mean = s.mean(dim=1, keepdim=True).detach()
        std = pmath.sqrt(s.var(dim=1, keepdim=True, unbiased=False) + 1e-5).detach()
        s = ((s - mean) / std).transpose(1, 2).reshape(b * self.series, length)  # [B*C, L]: one row per series
        tokens = self.tokenizer(self.prompts(s.detach()), padding="max_length", max_length=self.prompt_tokens, truncation=True, return_tensors="pt")
        ids, prompt_mask = tokens["input_ids"].to(x.device), tokens["attention_mask"].to(x.device)  # [B*C, P]
        embed = self.llm.get_input_embeddings()
        prompt = embed(ids)  # [B*C, P, d_llm]
        patches = self.pad(s.unsqueeze(1)).squeeze(1).unfold(-1, self.patch_len, self.stride)  # [B*C, N, patch_len]
        tokens_in = self.patch_embed(patches.transpose(1, 2)).transpose(1, 2)  # conv over patches: [B*C, N, d_model]
        protos = self.prototypes(embed.weight.t()).t()  # [S, d_llm]: the vocabulary mapped to S prototypes
        reprogrammed = self.reprogram(tokens_in, protos).to(prompt.dtype)  # [B*C, N, d_llm]
        inputs = torch.cat([prompt, reprogrammed], dim=1)  # [B*C, P+N, d_llm]
        mask = torch.cat([prompt_mask, prompt_mask.new_ones(b * self.series, self.n_patches)], dim=1)  # [B*C, P+N]
        positions = (mask.cumsum(dim=1) - 1).clamp_min(0)  # left padding: count from the first real token
        hidden = self.llm(inputs_embeds=inputs, attention_mask=mask, position_ids=positions).last_hidden_state  # [B*C, P+N, d_llm]
        z = hidden[:, -self.n_patches :, : self.d_ff].float()  # the patch positions: [B*C, N, d_ff]
        z = z.reshape(b, self.series * self.n_patches * self.d_ff)  # [B, C*N*d_ff]
        stats = torch.cat([mean.squeeze(1), pmath.log(std.squeeze(1))], dim=1)  # [B, 2C]
        return self.head(torch.cat([self.drop(z), stats], dim=1))


@register("pretrained", "time_llm", kind="network", config=TimeLLMConfig, needs_sequences=True, can_use_gpu=True)
class TimeLLM(NeuralModel):
    """Time-LLM: patches reprogrammed into a frozen language model, a text prompt as prefix."""

    export_blocker: ClassVar[str] = "its prompt is text built from each window's statistics and tokenised in Python at every step"
    # bf16 autocast on a GPU: the frozen language model's activations are most of its memory
    gpu_precision: ClassVar[str] = "bf16"

    def host_syncs_per_forward(self) -> int:
        # the prompt is text: each series' statistics come to the host (one copy) to be written
        # and tokenised; and transformers' attention-mask helper checks the padding mask on the host
        return 2

    def build(self, n_features: int, seq_len: int) -> nn.Module:
        c = self.config
        llm, tokenizer = load_backbone(c.backbone, c.llm_layers)
        return TimeLLMNet(n_features, seq_len, c, llm, tokenizer)
