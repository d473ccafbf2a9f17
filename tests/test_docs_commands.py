"""The shell commands of the README and docs/ name things that exist: every ``dvc`` line parses
with DVC's own command line, every ``-S key=value`` names a params.yaml key and leaves a params
file that ``trendfactory check`` accepts (the whole experiment's params at once), every
``dvc repro <stage>`` names a stage of dvc.yaml, every ``trendfactory`` and
``python -m trendfactory.report`` line parses with the project's own command line, and every
script a line runs is in the repository. A renamed option, key, model or stage in the code
fails here, in seconds, before a reader meets it. test_docs_commands_run.py then runs every one
of them in a small project (the README's two setup commands run in ``.ci/run``); the Python
snippets run in test_docs_snippets.py."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "benchmarks" / "README.md"]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?:bash|sh|shell)\n(?P<code>.*?)\n(?P=indent)```", re.S | re.M)


class Command(NamedTuple):
    where: str  # page:line
    argv: list[str]
    block: int  # the shell block it is in, numbered over all pages (a reader starts each in the project)


def commands() -> list[Command]:
    """Each command in the pages' shell blocks, in reading order: continuation lines joined,
    comments dropped, ``a && b`` split."""
    found, blocks = [], 0
    for page in PAGES:
        text = page.read_text()
        for m in FENCE.finditer(text):
            block, blocks = blocks, blocks + 1
            first = text[: m.start("code")].count("\n") + 1
            lines = m["code"].splitlines()
            i = 0
            while i < len(lines):
                start, line = i, lines[i]
                while line.rstrip().endswith("\\") and i + 1 < len(lines):
                    i += 1
                    line = line.rstrip()[:-1] + " " + lines[i]
                i += 1
                words = shlex.split(line, comments=True)
                while words:
                    cut = words.index("&&") if "&&" in words else len(words)
                    found.append(Command(f"{page.relative_to(ROOT)}:{first + start}", words[:cut], block))
                    words = words[cut + 1 :]
    return found


COMMANDS = commands()
IDS = [f"{c.where} {' '.join(c.argv)[:60]}" for c in COMMANDS]


class Parsed(Exception):
    """Raised instead of running a command once its arguments parsed."""


@pytest.fixture
def parse_only(monkeypatch):
    parse = argparse.ArgumentParser.parse_args

    def parsed(self, args=None, namespace=None):
        raise Parsed(parse(self, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parsed)


@pytest.fixture(scope="module")
def stage_names() -> set[str]:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {s.addressing for s in repo.index.stages}


def check_overrides(overrides: list[str], tmp_path: Path) -> None:
    """Apply ``key=value`` overrides as DVC does (the value read as YAML) and validate the result."""
    from trendfactory.params import load_params
    from trendfactory.stages.check_params import validate_everything

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    for item in overrides:
        key, _, value = item.partition("=")
        *parents, leaf = key.split(".")
        node = raw
        for part in parents:
            assert isinstance(node, dict) and part in node, f"-S {item}: params.yaml has no {key!r} (no {part!r})"
            node = node[part]
        assert leaf in node, f"-S {item}: params.yaml has no {key!r}"
        node[leaf] = yaml.safe_load(value)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    validate_everything(load_params(path), path)


def test_the_docs_have_commands():
    assert len(COMMANDS) >= 40 and any(c.argv[:2] == ["dvc", "repro"] for c in COMMANDS)


@pytest.mark.parametrize("where,argv", [c[:2] for c in COMMANDS], ids=IDS)
def test_a_docs_command_names_what_exists(where, argv, parse_only, stage_names, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    tool = argv[0]
    if tool == "dvc":
        from dvc.cli import parse_args

        args = parse_args(argv[1:])  # argparse: SystemExit on an unknown command or option
        overrides = [v for values in (getattr(args, "set_param", None) or []) for v in (values if isinstance(values, list) else [values])]
        if overrides:
            overrides = [f"data.path={tmp_path}" if v.startswith("data.path=/path/to/") else v for v in overrides]  # the reader's own bars
            check_overrides(overrides, tmp_path)
        if argv[1] == "repro":
            for target in getattr(args, "targets", []) or []:
                assert target in stage_names, f"{where}: dvc repro {target}: no such stage in dvc.yaml"
    elif tool == "trendfactory" or argv[:3] == ["python", "-m", "trendfactory.report"]:
        from trendfactory import cli, report

        main = cli.main if tool == "trendfactory" else report.main
        with pytest.raises(Parsed):
            main(argv[1:] if tool == "trendfactory" else argv[3:])
    elif tool == "bash":
        assert (ROOT / argv[1]).is_file(), f"{where}: {argv[1]} is not in the repository"
    elif tool == ".venv/bin/python" or tool in (".", "cd", "git"):
        pass  # the README's test command (.ci/run runs it), activating the venv, cloning and entering the clone
    else:
        pytest.fail(f"{where}: no check for {' '.join(argv)!r}; teach tests/test_docs_commands.py what it names")
