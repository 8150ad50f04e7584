"""The README is a contract: CI runs its Install block and its two commands exactly as written."""
from __future__ import annotations

import re

from tests.conftest import REPO


def readme_blocks(text: str) -> list[str]:
    """The lines of every ```bash block under a heading containing "Install" or "The two commands"
    (the blocks ../shared/tools/readme-check runs)."""
    lines, section, in_block = [], False, False
    for line in text.splitlines():
        fence = line.strip().startswith("```")
        if not in_block and re.match(r"^#{1,6}\s", line):
            section = bool(re.search(r"install|two commands", line, re.I))
        elif fence and in_block:
            in_block = False
        elif fence and section and line.strip() in ("```bash", "```sh", "```shell"):
            in_block = True
        elif in_block:
            lines.append(line)
    return lines


def test_ci_runs_the_readme_commands_as_written():
    steps = readme_blocks((REPO / "README.md").read_text())
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert len(steps) == 5 and any("obce book --profile quick" in s for s in steps)
    missing = [s for s in steps if s not in ci]
    assert missing == [], f".ci/run lacks the README's lines {missing}"
    assert [line for line in ci if line in steps] == steps  # in the README's order


def test_readme_commands_need_no_environment():
    """A fresh clone anywhere runs the two commands as they are: no variable, no path of this machine."""
    steps = readme_blocks((REPO / "README.md").read_text())
    assert "obce book --profile quick" in steps and "python -m pytest -q tests" in steps
    assert not [s for s in steps if "=" in s.split()[0] or "../shared" in s]
