"""The README's tables and findings pasted from `obce report`: each follows a marker comment that names
its command, ``<!-- obce report ARGS -->``; its lines are those starting with "|" (a table) or ">"
(the findings, a quotation). ``python tests/readme_tables.py`` reprints every one of them from the
committed records (run from anywhere); ``tests/test_report.py`` fails while one is stale."""
from __future__ import annotations

import contextlib
import io
import itertools
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- obce report (.*?) -->\n")


def commands(text: str) -> list[str]:
    """The `obce report` arguments of every marker in ``text``, in order."""
    return MARKER.findall(text)


def pasted_table(text: str, command: str) -> list[str]:
    """The table lines that follow the marker of ``command`` in ``text``."""
    after = text.split(f"<!-- obce report {command} -->\n", 1)[1]
    return list(itertools.takewhile(lambda line: line.startswith(("|", ">")), after.splitlines()))


def printed_table(command: str) -> list[str]:
    """The table lines `obce report <command>` prints, run from the repository root."""
    from obce.cli import main

    out, here = io.StringIO(), os.getcwd()
    try:
        os.chdir(REPO)
        with contextlib.redirect_stdout(out):
            code = main(["report", *command.split()])
    finally:
        os.chdir(here)
    if code != 0:
        raise RuntimeError(f"`obce report {command}` exited with {code}")
    return [line for line in out.getvalue().splitlines() if line.startswith(("|", ">"))]


def refresh(text: str) -> str:
    """``text`` with every marked table replaced by what its command prints now."""
    for command in commands(text):
        old = "\n".join(pasted_table(text, command))
        head = f"<!-- obce report {command} -->\n"
        text = text.replace(head + old, head + "\n".join(printed_table(command)), 1)
    return text


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    readme = REPO / "README.md"
    before = readme.read_text()
    after = refresh(before)
    readme.write_text(after)
    print(f"{len(commands(before))} tables, {'updated' if after != before else 'already current'}")
