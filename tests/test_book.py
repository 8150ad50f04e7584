"""The book: Jupytext pairs in sync, a `parameters` cell first, and a full quick build."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from tests.conftest import REPO

SOURCES = sorted((REPO / "notebooks").glob("*.py"))


def test_every_toc_notebook_has_a_source():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    files = [c["file"] for c in toc["chapters"]]
    notebooks = [f for f in files if f.startswith("notebooks/")]
    assert notebooks == [f"notebooks/{p.stem}" for p in SOURCES] and len(notebooks) == 11


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_pair_is_in_sync(src):
    ipynb = src.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} missing: run `jupytext --sync {src.relative_to(REPO)}`"
    py_nb, ipy_nb = jupytext.read(src), nbformat.read(ipynb, as_version=4)
    assert "py:percent" in ipy_nb.metadata.get("jupytext", {}).get("formats", "")
    strip = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert strip(py_nb) == strip(ipy_nb), f"{src.name} and {ipynb.name} differ: run `jupytext --sync`"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_first_code_cell_is_tagged_parameters(src):
    nb = jupytext.read(src)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", []), f"{src.name}: first code cell lacks the parameters tag"
    assert re.search(r"^seed|^model_name|^results_dir|^model_name", first.source, re.M)


def test_profiles_only_name_declared_parameters():
    import papermill as pm

    declared = {}
    for src in SOURCES:
        nb = jupytext.read(src)
        code = next(c for c in nb.cells if c.cell_type == "code").source
        declared[src.stem] = set(re.findall(r"^(\w+)\s*=", code, re.M))
    for profile in ("quick", "full"):
        data = yaml.safe_load((REPO / "params" / "profiles" / f"{profile}.yaml").read_text())
        for stem, params in data.items():
            if stem != "all":
                assert stem in declared, f"{profile}.yaml names unknown notebook {stem}"
                assert set(params) <= declared[stem], f"{profile}.yaml: {stem} has no parameter {set(params) - declared[stem]}"
    assert pm  # papermill is installed for the build


@pytest.fixture(scope="session")
def built_book():
    """The book built with the quick profile, as the README's first command builds it: reused when
    ``_build/`` holds a build of the same sources, parameters and records (CI runs that command just
    before the tests), else built once for the whole test run."""
    if shutil.which("jupyter-book") is None and not (Path(__import__("sys").executable).with_name("jupyter-book")).exists():
        pytest.skip("jupyter-book not installed")
    from obce.book import build_book, current_build

    return current_build(REPO, profile="quick") or build_book(REPO, profile="quick")


@pytest.mark.slow
def test_built_book_has_every_chapter_its_figures_and_no_errors(built_book):
    html_dir = Path(built_book)
    expected_figures = {"01_theory": 2, "02_activations": 1, "03_scoring": 2, "04_explaining": 3, "05_pruning": 2, "06_glue": 1, "07_methods": 1,
                        "08_posttrain": 2, "09_reproducing": 0, "10_measurements": 2, "11_atlas": 0}
    for src in SOURCES:
        page = html_dir / "notebooks" / f"{src.stem}.html"
        assert page.exists(), f"chapter {src.stem} not rendered"
        html = page.read_text()
        n_img = len(re.findall(r'<img [^>]*src="[^"]*\.png"', html))
        assert n_img >= expected_figures[src.stem], f"{src.stem}: {n_img} figures"
        assert "Traceback" not in html and "output_error" not in html and 'class="output stderr' not in html, \
            f"{src.stem} shows an error or stderr output"
        assert "<td>...</td>" not in html and "rows ×" not in html, f"{src.stem} shows a truncated table"
        assert "object at 0x" not in html and "IPython.core.display" not in html, \
            f"{src.stem} shows an object's repr where a glued value belongs"
        title = nbformat.reads(jupytext.writes(jupytext.read(src), "ipynb"), 4).cells[0].source.splitlines()[0]
        assert title.lstrip("# ").split(":")[0].split(" ", 1)[1] in html
    assert (html_dir / "book" / "intro.html").exists() and (html_dir / "book" / "references.html").exists()
    refs = (html_dir / "book" / "references.html").read_text()
    assert "Balderas" in refs and "Devlin" in refs


SKELETON = ("## Overview", "## Prerequisites", "## Summary", "## Exercises", "## What's next")


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_every_chapter_has_the_skeleton_and_every_exercise_a_hidden_solution(src):
    """Overview with learning goals, Prerequisites with run time and hardware, sections, Summary,
    Exercises (each with a solution behind a toggle), What's next; the appendices an Overview."""
    text = "\n".join(_markdown_cells(src))
    headings = [line.strip() for line in text.splitlines() if line.startswith("## ")]
    if "Appendix" in text.splitlines()[0]:
        assert headings and headings[0] == "## Overview", src.stem
        return
    found = [h for h in headings if h in SKELETON]
    assert found == list(SKELETON), f"{src.stem}: {found}"
    assert "After this chapter you can" in text and "Run time and hardware:" in text, src.stem
    labels = re.findall(r"^:::\{exercise\}\n:label: (\S+)", text, re.M)
    solutions = re.findall(r"^:::\{solution\} (\S+)\n:class: dropdown", text, re.M)
    assert labels and sorted(labels) == sorted(solutions), f"{src.stem}: exercises {labels}, solutions {solutions}"


MACHINE_PATH = re.compile(r"(?<![\w.-])/(?:tmp|home|root|work|usr|opt|var|mnt|private|Users)/[\w.+-]+")


def test_machine_path_detector():
    assert MACHINE_PATH.search("saved /tmp/abc/_build/pruned/minilm-level2")
    assert MACHINE_PATH.search("data: local GLUE TSV /work/shared/glue/RTE")
    assert not MACHINE_PATH.search("see docs/ARCHITECTURE.md and https://example.org/home/x, glue_sample/SOURCES.md")


@pytest.mark.slow
def test_no_rendered_page_shows_a_machine_path(built_book):
    """What a page shows (its text, not its markup's links) names no path of the machine that built it."""
    from html.parser import HTMLParser

    class Text(HTMLParser):
        def __init__(self):
            super().__init__()
            self.parts, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("script", "style")

        def handle_endtag(self, tag):
            self.skip -= tag in ("script", "style") and self.skip > 0

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    found = {}
    for page in sorted(Path(built_book).rglob("*.html")):
        parser = Text()
        parser.feed(page.read_text())
        text = " ".join(parser.parts)
        hits = MACHINE_PATH.findall(text) + ([str(REPO)] if str(REPO) in text else [])
        if hits:
            found[page.relative_to(built_book).as_posix()] = sorted(set(hits))[:3]
    assert found == {}, f"machine paths on rendered pages: {found}"


def test_book_command_rejects_unknown_profile(tmp_path):
    from obce.book import load_profile
    from obce.errors import ObceInputError

    with pytest.raises(ObceInputError, match="profile 'nope'"):
        load_profile(REPO, "nope")


def _markdown_cells(src: Path) -> list[str]:
    return [c.source for c in jupytext.read(src).cells if c.cell_type == "markdown"]


#: a measured number written into prose: a decimal, a percentage, or a "±"
LITERAL_METRIC = re.compile(r"(?<![\w.])[-+]?\d+\.\d+%?|(?<![\w.])\d+(\.\d+)?%|±")


def literal_metrics(markdown: str) -> list[str]:
    """Measured numbers typed into ``markdown``, outside glue roles, code and maths."""
    text = re.sub(r"\{glue(:\w+)?\}`[^`]*`", "", markdown)  # computed values
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", text, flags=re.S)
    return [m.group(0) for m in LITERAL_METRIC.finditer(text)]


def test_literal_metric_detector_catches_typed_numbers():
    assert literal_metrics("r_f keeps 59.2 against 61.3, p = 0.03, 45% kept, 83.6 ± 1.4") == \
        ["59.2", "61.3", "0.03", "45%", "83.6", "±", "1.4"]
    assert literal_metrics("r_f keeps {glue:text}`avg:.1f` at level 2 (`lr 5e-5`, $0.5$)") == []


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_prose_numbers_are_glued_not_typed(src):
    """A number measured by a chapter is inserted at build time, so a rerun with other parameters
    leaves no stale number in its text."""
    typed = {i: found for i, md in enumerate(_markdown_cells(src)) if (found := literal_metrics(md))}
    assert typed == {}, f"{src.name}: typed numbers in markdown cells {typed}; glue them (myst_nb.glue)"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_chapter_prose_is_at_most_about_1500_words(src):
    words = sum(len(re.sub(r"\{glue(:\w+)?\}`[^`]*`", "N", md).split()) for md in _markdown_cells(src))
    assert words <= 1600, f"{src.name}: {words} words of prose"


@pytest.mark.slow
@pytest.mark.parametrize("src", [REPO / "notebooks" / "01_theory.py", REPO / "notebooks" / "06_glue.py"],
                         ids=lambda p: p.stem)
def test_chapter_runs_with_papermill_from_the_repository_root(src, tmp_path, glue_dir, monkeypatch):
    """As chapter 9 shows it: papermill from the root (the book build runs them from notebooks/), with a
    relative OBCE_GLUE_DIR; paths in parameters resolve from the repository, not the working directory.
    Two chapters, one that computes and one that reads records by relative paths: the book build
    executes every chapter once, and :func:`test_no_chapter_writes_to_stderr` reads its outputs."""
    import os

    import papermill as pm

    from obce.book import load_profile

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("OBCE_GLUE_DIR", os.path.relpath(glue_dir, REPO))
    nb = tmp_path / f"{src.stem}.ipynb"
    jupytext.write(jupytext.read(src), nb)
    profile = load_profile(REPO, "quick")
    declared = set(pm.inspect_notebook(str(nb)))
    params = {k: v for k, v in {**profile.get("all", {}), **profile.get(src.stem, {})}.items() if k in declared}
    pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), parameters=params, kernel_name="python3",
                        progress_bar=False)
    assert not (REPO.parent / "results").exists() and not (REPO.parent / "_build").exists()
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    noise = [o["text"][:200] for c in out.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert noise == [], f"{src.stem} writes library chatter to stderr: {noise}"


@pytest.mark.slow
def test_no_chapter_writes_to_stderr(built_book):
    """Library chatter (warnings, progress bars, logs) never reaches a reader's page."""
    noise = {}
    for src in SOURCES:
        nb = nbformat.read(REPO / "_build" / "src" / "notebooks" / f"{src.stem}.ipynb", as_version=4)
        found = [o["text"][:200] for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr"]
        if found:
            noise[src.stem] = found
    assert noise == {}, f"chapters write to stderr: {noise}"


@pytest.mark.slow
def test_glue_chapter_fails_loudly_without_records(tmp_path, glue_dir):
    import papermill as pm

    nb = tmp_path / "05.ipynb"
    jupytext.write(jupytext.read(REPO / "notebooks" / "06_glue.py"), nb)
    with pytest.raises(pm.PapermillExecutionError, match="no GLUE records under"):
        pm.execute_notebook(str(nb), str(tmp_path / "out.ipynb"), parameters={"results_dir": str(tmp_path)},
                            kernel_name="python3", progress_bar=False, cwd=str(REPO))


@pytest.mark.slow
def test_every_quick_chapter_runs_in_at_most_three_minutes(built_book):
    import json

    seconds = json.loads((REPO / "_build" / "timings.json").read_text())["seconds"]
    assert set(seconds) == {p.stem for p in SOURCES}
    slow = {k: v for k, v in seconds.items() if v > 180}
    assert slow == {}, f"chapters over 3 minutes on this machine: {slow}"


@pytest.mark.slow
def test_readers_see_the_parameters_that_ran(built_book):
    """One parameters cell, with the values Papermill injected (not the defaults beside them)."""
    nb = nbformat.read(REPO / "_build" / "src" / "notebooks" / "03_scoring.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert not any("injected-parameters" in t for t in tags)
    params = nb.cells[next(i for i, t in enumerate(tags) if "parameters" in t)].source
    assert "n_texts = 128" in params and "max_length = 48" in params  # the quick profile's values


def test_parameters_cell_takes_the_injected_values(tmp_path):
    from obce.book import show_parameters_that_ran

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('n = 1  # corpus size\nname = "a # b"\nkeep = 3', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell('# Parameters\nn = 5\nname = "c"\n', metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("print(n)")]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    show_parameters_that_ran(path)
    cells = nbformat.read(path, as_version=4).cells
    assert [c.source for c in cells] == ['n = 5  # corpus size\nname = "c"\nkeep = 3', "print(n)"]


@pytest.mark.slow
def test_book_in_a_real_browser(built_book):
    """Every page in headless Chromium: images loaded and not shrunk below half their width, the maths
    rendered (offline), no console errors. Skips only where no Chromium is installed (.ci/run installs
    Debian's)."""
    from tests.browser_check import check_book, find_chromium

    if find_chromium() is None:
        pytest.skip("no chromium on this machine (apt-get install chromium)")
    problems = check_book(Path(built_book))
    assert problems == [], "\n".join(problems)
