"""Build the Jupyter Book: Papermill executes every notebook with a parameter profile, then
``jupyter-book build`` renders the executed notebooks.

Jupyter Book 1 has no notion of Papermill parameters, so the build stages the book sources in
``_build/src`` (the working tree stays clean), converts each Jupytext ``notebooks/*.py`` source to a
notebook, executes it with Papermill and the profile's parameters (``params/<profile>.yaml``: an
``all`` mapping plus one mapping per notebook stem; a notebook receives only the names its
``parameters`` cell defines), checks that no cell errored, and renders ``_build/html`` with warnings
as errors.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ObceInputError
from .files import read_json, write_json

logger = logging.getLogger(__name__)


def build_book(root: str | os.PathLike = ".", profile: str = "quick", only: list[str] | None = None,
               timeout: int = 1800, render: bool = True, execute: bool = True) -> Path:
    """Execute every notebook with a profile and render the book.

    Parameters
    ----------
    root : path
        Repository root (holds ``_config.yml``, ``_toc.yml``, ``notebooks/``, ``params/``).
    profile : str
        Name of ``params/<profile>.yaml`` (``quick`` for CPU in minutes, ``full`` for GPU runs).
    only : list of str, optional
        Notebook stems to execute (default: all).
    timeout : int
        Seconds allowed per cell.
    render : bool
        Run ``jupyter-book build`` after execution.
    execute : bool
        Execute the notebooks; ``False`` re-renders the staged, already executed ones.

    Returns
    -------
    Path
        The HTML directory (``<root>/_build/html``), or the staged sources if ``render`` is False.
    """
    import jupytext
    import papermill as pm

    from .paths import absolutize_env

    absolutize_env()  # the kernels run in notebooks/ and inherit the environment
    root = Path(root).resolve()
    # the kernels inherit this environment: no download progress bars or info logs in the book
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # tqdm.auto (imported by datasets/transformers) warns in kernels without ipywidgets
    os.environ["PYTHONWARNINGS"] = ",".join(filter(None, [os.environ.get("PYTHONWARNINGS"),
                                                          "ignore:IProgress not found"]))
    if not (root / "_toc.yml").is_file() or not (root / "notebooks").is_dir():
        raise ObceInputError(f"{root} is not the obce repository root (no _toc.yml / notebooks/)")
    params = load_profile(root, profile)
    stems = sorted(p.stem for p in (root / "notebooks").glob("*.py"))
    unknown = sorted(set(only or ()) - set(stems))
    if unknown:
        raise ObceInputError(f"--only {unknown}: no such chapter; the chapters are {stems}")
    stage = root / "_build" / "src"
    if not execute:
        if not stage.is_dir():
            raise ObceInputError(f"{stage} does not exist: execute the notebooks first")
        return _render(root, stage) if render else stage
    executed = {p.name: p.read_bytes() for p in (stage / "notebooks").glob("*.ipynb")} if only else {}
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml", "book"):
        src = root / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, stage / name)
    for rel in STATIC_FIGURES:  # figures the static pages show (the intro's), at their paths in the repository
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / rel, stage / rel)
    (stage / "notebooks").mkdir()
    for name, content in executed.items():  # with --only, the other chapters keep their last execution
        (stage / "notebooks" / name).write_bytes(content)
    sources = sorted((root / "notebooks").glob("*.py"))
    timings: dict[str, float] = {}
    for src in sources:
        target = stage / "notebooks" / f"{src.stem}.ipynb"
        if only and src.stem not in only and target.exists():
            continue
        jupytext.write(jupytext.read(src), target)
        if only and src.stem not in only:
            continue
        declared = {p for p in pm.inspect_notebook(str(target))}
        given = {**params.get("all", {}), **params.get(src.stem, {})}
        chosen = {k: v for k, v in given.items() if k in declared}
        logger.info("executing %s with %s", src.name, chosen)
        print(f"[book] executing {src.stem} ({profile}) ...", flush=True)
        start = time.perf_counter()
        pm.execute_notebook(str(target), str(target), parameters=chosen, cwd=str(root / "notebooks"),
                            kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                            report_mode=False)
        timings[src.stem] = round(time.perf_counter() - start, 1)
        print(f"[book] executed {src.stem} in {timings[src.stem]:.0f} s", flush=True)
        check_no_errors(target)
        show_parameters_that_ran(target)
    if timings:
        write_json(root / "_build" / "timings.json", {"profile": profile, "seconds": timings})
    if not render:
        return stage
    html = _render(root, stage)
    if not only:  # a whole build: the tests may reuse it while its inputs stay the same
        write_json(root / "_build" / STAMP, {"profile": profile, "key": build_key(root, profile)})
    return html


#: The file beside a whole build that says what it was built from (:func:`build_key`).
STAMP = "book_inputs.json"
#: Figures committed under ``results/`` that the book's static pages show (``book/intro.md``).
STATIC_FIGURES = ("results/methods_fulltrain/methods.png",)
#: What a build reads: the notebooks, the library, the parameters, the prose and the records.
BUILD_INPUTS = ("_config.yml", "_toc.yml", "notebooks", "obce", "params", "book", "results")


def build_key(root: str | os.PathLike, profile: str = "quick") -> str:
    """A hash of everything a build of the book reads: the contents of :data:`BUILD_INPUTS` (notebook
    outputs and caches aside), the profile and the GLUE directory in the environment."""
    import hashlib

    root = Path(root).resolve()
    h = hashlib.blake2b(digest_size=16)
    from .data import glue_root

    h.update(f"{profile}\0{os.environ.get('OBCE_GLUE_DIR', '')}\0{glue_root()}\0".encode())
    for name in BUILD_INPUTS:
        base = root / name
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in files:
            rel = path.relative_to(root)
            if path.suffix in (".ipynb", ".pyc") or {"cache", "finetuned", ".tmp", "__pycache__"} & set(rel.parts):
                continue
            h.update(f"{rel}\0".encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def current_build(root: str | os.PathLike, profile: str = "quick") -> Path | None:
    """The HTML directory of the last whole build, if it was built with ``profile`` from the inputs
    that are there now (:func:`build_key`); else ``None``."""
    root = Path(root).resolve()
    stamp, html = root / "_build" / STAMP, root / "_build" / "html"
    if not stamp.is_file() or not html.is_dir():
        return None
    try:
        found = read_json(stamp)
    except ObceInputError:
        return None
    if isinstance(found, dict) and found.get("profile") == profile and found.get("key") == build_key(root, profile):
        logger.info("reusing the book built at %s (same inputs)", html)
        return html
    return None


def _render(root: Path, stage: Path) -> Path:
    exe = Path(sys.executable).with_name("jupyter-book")
    exe = str(exe) if exe.exists() else (shutil.which("jupyter-book") or "jupyter-book")
    cmd = [exe, "build", str(stage), "--path-output", str(root), "-W", "-n", "--keep-going"]
    print("[book] " + " ".join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=root)
    if proc.returncode != 0:
        raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode})")
    return root / "_build" / "html"


def load_profile(root: Path, profile: str) -> dict[str, dict[str, Any]]:
    """Read the Papermill profile ``params/profiles/<profile>.yaml``."""
    import yaml

    path = Path(root) / "params" / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (Path(root) / "params" / "profiles").glob("*.yaml"))
        raise ObceInputError(f"parameter profile {profile!r}: {path} does not exist (known: {known})")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ObceInputError(f"{path}: expected a mapping of notebook stem (or 'all') to parameters")
    return data


def check_no_errors(notebook: str | os.PathLike) -> None:
    """Raise if any cell of an executed notebook has an error output."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                raise RuntimeError(f"{notebook}: cell {i} raised {out.get('ename')}: {out.get('evalue')}")


def show_parameters_that_ran(notebook: str | os.PathLike) -> None:
    """Show the reader one set of parameters: the values that ran.

    Papermill keeps the notebook's ``parameters`` cell (its defaults) and adds an
    ``injected-parameters`` cell after it. This writes the injected values into the defaults cell,
    line by line (``name = value  # comment`` keeps its comment), and removes the injected cell.
    """
    import ast

    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    injected = next((i for i, t in enumerate(tags) if "injected-parameters" in t), None)
    defaults = next((i for i, t in enumerate(tags) if "parameters" in t), None)
    if injected is None or defaults is None:
        return
    values = {}
    for node in ast.parse(nb.cells[injected].source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.get_source_segment(nb.cells[injected].source, node.value)
    lines = []
    for line in nb.cells[defaults].source.splitlines():
        name, eq, rest = line.partition("=")
        if eq and name.strip() in values and name.strip().isidentifier():
            comment = _comment(line)
            line = f"{name.strip()} = {values[name.strip()]}" + (f"  {comment}" if comment else "")
        lines.append(line)
    nb.cells[defaults].source = "\n".join(lines)
    del nb.cells[injected]
    nbformat.write(nb, notebook)


def _comment(line: str) -> str:
    """The ``# comment`` of one line of Python, or ''."""
    import io
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(line).readline))
    except (tokenize.TokenError, SyntaxError):
        return ""
    return next((t.string for t in tokens if t.type == tokenize.COMMENT), "")


def setup_notebook() -> None:
    """What every chapter runs first: the book's figure style, tables shown whole (never cut to
    ten rows), and no library chatter in the pages (widget warnings, weight-loading bars); the
    progress bars of long work stay; where the GLUE data come from, when it is the embedded sample, is
    a line of the page's output (stdout), not an error stream."""
    import warnings

    import pandas as pd

    from . import plots

    plots.set_style()
    pd.set_option("display.max_rows", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.width", 0)
    pd.set_option("display.max_colwidth", None)
    warnings.filterwarnings("ignore", message="IProgress not found")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a dependency
        pass
    import logging
    import sys

    data_log = logging.getLogger("obce.data")  # where the data come from (the embedded sample): a line of the page
    if not any(getattr(h, "_obce_page", False) for h in data_log.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler._obce_page = True
        data_log.addHandler(handler)
        data_log.propagate = False


def table(df, formats: dict[str, str] | str | None = None, caption: str | None = None, index: bool = True):
    """A DataFrame as the book shows it: whole, one number format per column, the theme's table style.

    Parameters
    ----------
    formats : one format for every column, or column -> format (e.g. ``"{:.3f}"``); a missing value
        (not run, not measured) shows as the tables' "–"
    """
    from .analysis.tables import NOT_RUN

    style = df.style.format(formats, na_rep=NOT_RUN) if formats is not None else df.style.format(na_rep=NOT_RUN)
    if not index:
        style = style.hide(axis="index")
    if caption:
        style = style.set_caption(caption)
    text = [c for c in df.columns if df[c].dtype == object]
    if text:
        style = style.set_properties(subset=text, **{"text-align": "left", "min-width": "12em"})
    return (style.set_table_attributes('class="dataframe"')
            .set_table_styles([{"selector": "th, td", "props": "padding: 0.15em 0.7em"},
                               {"selector": "caption", "props": "caption-side: top; font-weight: 600"}]))
