"""README's "What to try next", run as written against a real server: the CLI walkthrough,
then the Python snippet in the same shell (the same email tokenized twice, for different
purposes, so the snippet reads a deterministic token two subjects share)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support.stack import Stack

README = Path(__file__).resolve().parents[1] / "README.md"
PDV = [sys.executable, "-m", "vault.cli.main"]


def _section() -> str:
    text = README.read_text()
    start = text.index("## What to try next")
    return text[start:text.index("\n## ", start + 1)]


def _block(lang: str) -> str:
    """The section's first block in `lang` (the walkthrough; the TypeScript part's install is a later sh block)."""
    blocks = re.findall(rf"```{lang}\n(.*?)```", _section(), re.S)
    assert blocks, f"README's walkthrough has no {lang} block"
    return blocks[0]


def _pdv_commands() -> list[list[str]]:
    """The walkthrough's `pdv` commands (continuations joined, comments dropped), bench left out."""
    lines = _block("sh").replace("\\\n", " ").splitlines()
    commands = [shlex.split(line, comments=True) for line in lines if line.startswith(".venv/bin/pdv ")]
    return [c[1:] for c in commands if c[1] != "bench"]


def test_the_readme_walkthrough_and_python_snippet_run_as_written(stack: Stack, tmp_path: Path) -> None:
    env = {**os.environ, "PDV_TARGET": stack.target, "PDV_API_KEY": stack.api_key}

    def pdv(args: list[str]) -> str:
        done = subprocess.run([*PDV, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    tokenize, *reads = _pdv_commands()
    assert tokenize[0] == "tokenize"
    ada = json.loads(pdv(tokenize))
    placeholders = {"pdv_…": ada["tokens"]["email"], "0265…": ada["tokens"]["ssn"]}
    values = {ada["tokens"]["email"]: "ada@example.org", ada["tokens"]["ssn"]: "123456789"}
    for args in reads:
        args = [placeholders.get(a, a) for a in args]
        out = json.loads(pdv(args))
        if args[0] == "lookup":
            assert out == [{"subject_id": ada["subject_id"], "token": ada["tokens"]["email"]}]
        else:
            assert [item["value"] for item in out] == [values[args[-1]]]

    snippet = _block("python")
    assert '"127.0.0.1:50051"' in snippet
    run = subprocess.run([sys.executable, "-c", snippet.replace('"127.0.0.1:50051"', f'"{stack.target}"')],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    value, matches = run.stdout.splitlines()
    assert value == "ada@example.org"
    # The billing read finds the snippet's own subject only: Ada's row was collected for benefits_eligibility.
    (match,) = re.findall(r"Match\(subject_id='(sub_[^']+)', token='([^']+)'\)", matches)
    assert match[0] != ada["subject_id"] and match[1] == ada["tokens"]["email"]
