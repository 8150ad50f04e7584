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
    assert notebooks == [f"notebooks/{p.stem}" for p in SOURCES] and len(notebooks) == 6


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
        data = yaml.safe_load((REPO / "params" / f"{profile}.yaml").read_text())
        for stem, params in data.items():
            if stem != "all":
                assert stem in declared, f"{profile}.yaml names unknown notebook {stem}"
                assert set(params) <= declared[stem], f"{profile}.yaml: {stem} has no parameter {set(params) - declared[stem]}"
    assert pm  # papermill is installed for the build


@pytest.fixture(scope="session")
def built_book():
    """Build the book with the quick profile, as the README's main command does."""
    if shutil.which("jupyter-book") is None and not (Path(__import__("sys").executable).with_name("jupyter-book")).exists():
        pytest.skip("jupyter-book not installed")
    from obce.book import build_book

    return build_book(REPO, profile="quick")


@pytest.mark.slow
def test_built_book_has_every_chapter_its_figures_and_no_errors(built_book):
    html_dir = Path(built_book)
    expected_figures = {"01_theory": 2, "02_activations": 1, "03_scoring": 2, "04_pruning": 2, "05_glue": 0,
                        "06_reproducing": 0}
    for src in SOURCES:
        page = html_dir / "notebooks" / f"{src.stem}.html"
        assert page.exists(), f"chapter {src.stem} not rendered"
        html = page.read_text()
        n_img = len(re.findall(r'<img [^>]*src="[^"]*\.png"', html))
        assert n_img >= expected_figures[src.stem], f"{src.stem}: {n_img} figures"
        assert "Traceback" not in html and "output_error" not in html and 'class="output stderr' not in html, \
            f"{src.stem} shows an error or stderr output"
        title = nbformat.reads(jupytext.writes(jupytext.read(src), "ipynb"), 4).cells[0].source.splitlines()[0]
        assert title.lstrip("# ").split(":")[0].split(" ", 1)[1] in html
    assert (html_dir / "book" / "intro.html").exists() and (html_dir / "book" / "references.html").exists()
    refs = (html_dir / "book" / "references.html").read_text()
    assert "Balderas" in refs and "Devlin" in refs


def test_book_command_rejects_unknown_profile(tmp_path):
    from obce.book import load_profile
    from obce.errors import ObceInputError

    with pytest.raises(ObceInputError, match="profile 'nope'"):
        load_profile(REPO, "nope")
