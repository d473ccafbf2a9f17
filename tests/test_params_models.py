"""params.yaml's model sections are generated from the defaults each model file declares
(scripts/params_models.py): the committed file agrees, and the generator adds a missing section
or key and restores a changed default, leaving every comment and the rest of the file alone."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from scripts import params_models

ROOT = Path(__file__).resolve().parents[1]
TEXT = (ROOT / "params.yaml").read_text()


@pytest.fixture(scope="module")
def wanted():
    return params_models.defaults()


def test_params_yaml_holds_every_models_defaults(capsys):
    assert params_models.main(["--check"]) == 0, capsys.readouterr().err


def test_a_changed_default_is_restored_and_named(wanted):
    new, changes = params_models.sync(TEXT.replace("    max_depth: 4\n", "    max_depth: 7\n", 1), wanted)
    assert new == TEXT and changes == ["models.xgboost.max_depth: 7 -> 4 (the model file's default)"]


def test_a_missing_key_and_section_are_written_from_the_model_file(wanted):
    start, end = TEXT.index("  gru:\n"), TEXT.index("  tcn:")
    without = TEXT[:start] + TEXT[end:]
    without = without.replace("    patch_len: 5              # bars per token (1 = one token per bar)\n", "", 1)
    new, changes = params_models.sync(without, wanted)
    assert sorted(changes) == ["models.gru: section added from its defaults", "models.transformer.patch_len: added (5)"]
    assert yaml.safe_load(new)["models"] == yaml.safe_load(TEXT)["models"]
    added = [ln for ln in difflib.ndiff(without.splitlines(), new.splitlines()) if ln.startswith("+ ")]
    assert "+   gru:                        # GRU over the window, head on the last step." in added
    # the comment written after the field in models/zoo/transformer.py
    assert any(ln.startswith("+     patch_len: 5") and "#" in ln for ln in added), added
    # nothing else moved: only additions
    assert not [ln for ln in difflib.ndiff(without.splitlines(), new.splitlines()) if ln.startswith("- ")]


def test_a_key_the_model_does_not_have_is_reported(wanted):
    bad = TEXT.replace("    max_depth: 4\n", "    max_depth: 4\n    max_dept: 5\n", 1)
    _, changes = params_models.sync(bad, wanted)
    assert changes == ["models.xgboost.max_dept: not a field of the model's config; remove it"]
