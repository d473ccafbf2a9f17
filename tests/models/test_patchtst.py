"""PatchTST: channel independence (a feature's encoding ignores the other features) and patching
that always puts the window's last bar in a patch."""

from __future__ import annotations

import pytest
import torch

from trendfactory.models import create
from trendfactory.models.zoo.patchtst import patch_layout


@pytest.mark.parametrize("L", [8, 24, 30, 31, 60])
@pytest.mark.parametrize("P,S", [(6, 3), (4, 4), (5, 2), (16, 8), (1, 1), (6, 9)])
def test_the_last_bar_is_in_the_last_patch(L, P, S):
    p, s, n = patch_layout(L, P, S)
    assert 1 <= s <= p <= L
    padded = torch.arange(L + s, dtype=torch.float32)  # positions 0..L+s-1 after the end padding
    patches = padded.unfold(0, p, s)
    assert len(patches) == n == (L - p) // s + 2  # the paper's patch count, +1 for the end padding
    assert patches[-1, -1] >= L - 1  # the last patch reaches the last bar (and s <= p: no bar between patches)
    assert any(int(a) <= L - 1 <= int(b) for a, b in zip(patches[:, 0], patches[:, -1]))


def test_a_features_encoding_ignores_the_other_features():
    model = create("patchtst", {"d_model": 16, "heads": 2, "layers": 2, "ff": 32, "patch_len": 6, "stride": 3})
    B, L, F, k = 5, 24, 6, 2
    model.shape_ = (F, L)
    torch.manual_seed(0)
    net = model.network(1).eval()
    x = torch.randn(B, L, F)
    other = x.clone()
    other[:, :, k] = torch.randn(B, L) * 4 + 1  # change feature k only
    with torch.no_grad():
        h, mean, std = net.encode(x)
        h2, mean2, std2 = net.encode(other)
    assert h.shape == (B, F, net.n_patches, 16)
    keep = [j for j in range(F) if j != k]
    torch.testing.assert_close(h2[:, keep], h[:, keep], atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(mean2[:, keep], mean[:, keep])
    torch.testing.assert_close(std2[:, keep], std[:, keep])
    assert not torch.allclose(h2[:, k], h[:, k], atol=1e-4)


def test_revin_makes_the_encoding_shift_and_scale_free():
    model = create("patchtst", {"d_model": 16, "heads": 2, "ff": 32})
    model.shape_ = (3, 30)
    torch.manual_seed(0)
    net = model.network(1).eval()
    x = torch.randn(4, 30, 3)
    with torch.no_grad():
        h = net.encode(x)[0]
        h2 = net.encode(x * 3.0 + 2.0)[0]
    torch.testing.assert_close(h2, h, atol=1e-4, rtol=1e-4)
