"""Time-LLM on a tiny GPT-2 the test writes itself (tests/models/tiny_checkpoints.py), loaded
through the same ``transformers`` path as a real checkpoint: the backbone stays frozen and out of
the saved fit, the prompt states the window's statistics, and a backbone that cannot be had
stops the stage with one line (the conformance, canary, network and export tests cover the rest)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.models.test_conformance import data, fast_model, stores  # noqa: F401  (fixtures)
from tests.models.tiny_checkpoints import tiny_gpt2
from trendfactory.errors import TrendfactoryError
from trendfactory.models import TrendModel, create


@pytest.fixture(scope="module")
def fitted(data):  # noqa: F811
    return fast_model("time_llm").fit(data["train"], data["val"])


def test_the_backbone_comes_from_the_checkpoint_and_never_trains(fitted):
    on_disk = load_file(str(tiny_gpt2() / "model.safetensors"))
    llm = fitted.net_.llm.state_dict()
    kept = [k for k in llm if k in on_disk]
    assert kept and all(torch.equal(llm[k], on_disk[k]) for k in kept)  # identical after the fit
    assert not any(p.requires_grad for p in fitted.net_.llm.parameters())
    assert all(p.requires_grad for p in fitted.net_.parameters())  # what trains: reprogramming, projection


def test_the_saved_fit_holds_the_trained_layers_only(fitted, data, tmp_path):  # noqa: F811
    fitted.save(tmp_path / "m")
    weights = torch.load(tmp_path / "m" / "weights.pt", weights_only=True)
    assert not any("llm" in k or "wte" in k for k in weights)
    assert {k.split(".")[0] for k in weights} == {"mix", "patch_embed", "prototypes", "reprogram", "head"}
    loaded = TrendModel.load(tmp_path / "m")  # rebuilds the backbone from models.time_llm.backbone
    np.testing.assert_array_equal(loaded.predict(data["test"]).proba, fitted.predict(data["test"]).proba)


def test_the_prompt_states_the_series_statistics(fitted):
    s = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 2.0]])  # period 2, rising at the end
    net = fitted.net_
    prompt = net.prompts(s)[0]
    assert prompt.startswith("<|start_prompt|>Dataset description: ") and prompt.endswith("<|<end_prompt>|>")
    assert "min value 0, max value 2, median value 0, the trend of input is upward" in prompt
    lags = [int(v) for v in prompt.split("lags are : ")[1].split("<|")[0].split(", ")]
    assert len(lags) == net.top_lags and 0 not in lags and lags[0] % 2 == 0  # the strongest lag is the period's


def test_a_backbone_that_cannot_be_had_stops_with_one_line(data, tmp_path):  # noqa: F811
    missing = create("time_llm", {"backbone": str(tmp_path / "no-such-model")})
    with pytest.raises(TrendfactoryError, match=r"^models\.time_llm\.backbone: '.*no-such-model' is not a transformers checkpoint directory"):
        missing.fit(data["train"], data["val"])
    offline = create("time_llm", {"backbone": "openai-community/gpt2"})  # HF_HUB_OFFLINE (tests/conftest.py): no download
    with pytest.raises(TrendfactoryError, match=r"^models\.time_llm\.backbone: cannot load 'openai-community/gpt2' .*huggingface-cli download") as err:
        offline.fit(data["train"], data["val"])
    assert "\n" not in str(err.value)
