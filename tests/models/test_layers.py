"""Shared network layers."""

from __future__ import annotations

import pytest
import torch

from trendfactory.models.common.layers import Dropout


def test_dropout_keeps_the_expected_share_and_the_mean():
    d = Dropout(0.3).train()
    x = torch.ones(1000, 1000)
    y = d(x)
    kept = (y != 0).float().mean().item()
    assert kept == pytest.approx(1 - 77 / 256, abs=2e-3)  # p rounded to 77/256
    assert y.mean().item() == pytest.approx(1.0, abs=5e-3)  # inverted dropout keeps the expectation
    values = torch.unique(y).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(256 / 179)


def test_dropout_is_identity_in_eval_and_reproducible_with_a_seed():
    d = Dropout(0.5)
    x = torch.randn(64, 32)
    assert torch.equal(d.eval()(x), x)
    d.train()
    torch.manual_seed(0)
    a = d(x)
    torch.manual_seed(0)
    assert torch.equal(a, d(x))
    assert torch.equal(Dropout(0.0).train()(x), x)
    with pytest.raises(ValueError, match="dropout p"):
        Dropout(1.0)


def test_dropout_gradient_flows_through_kept_units_only():
    d = Dropout(0.4).train()
    x = torch.randn(50, 20, requires_grad=True)
    y = d(x)
    y.sum().backward()
    assert torch.equal(x.grad != 0, y.detach() != 0)
