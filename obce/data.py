"""GLUE tasks: metadata, loading from a local GLUE directory or the hub, and scoring corpora.

A local GLUE directory has the classic layout written by ``download_glue_data.py``:
``<dir>/<TASK>/train.tsv`` and ``dev.tsv`` (MNLI: ``dev_matched.tsv``, ``dev_mismatched.tsv``),
tab-separated, quote characters being part of the text (read with ``csv.QUOTE_NONE``), CoLA without
a header row. It is given as ``glue_dir=`` or through the ``OBCE_GLUE_DIR`` environment variable;
without either, data come from the hub dataset ``nyu-mll/glue``, and where the hub cannot be reached
(no network, or the offline flags with no copy of it in the local caches) from the small sample that
ships inside the package (:data:`SAMPLE_DIR`: a few hundred rows of each split, byte-exact rows of the
classic TSVs, see its ``SOURCES.md``), said in a log line and in every record's provenance. Every
route returns a ``datasets.Dataset`` with the hub's columns (text fields, ``label``, ``idx``).
"""
from __future__ import annotations

import csv
import functools
import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from .errors import MissingResourceError, ObceInputError

logger = logging.getLogger(__name__)

HUB_DATASET = "nyu-mll/glue"
GLUE_DIR_ENV = "OBCE_GLUE_DIR"
#: The GLUE sample inside the package, in the classic layout (the default offline; see its SOURCES.md).
SAMPLE_DIR = Path(__file__).with_name("glue_sample")
#: Rows per split that :func:`write_glue_sample` draws (a split with fewer rows is taken whole).
SAMPLE_ROWS = {"train": 300, "dev": 200}

#: A corpus item: one sentence, or a sentence pair for pair tasks.
Text = Union[str, tuple[str, str]]


@dataclass(frozen=True)
class GlueTask:
    """What obce needs to know of one GLUE task.

    ``columns`` maps each hub text column to its TSV column (a header name, or a position for
    header-less CoLA); ``tsv_labels`` lists the TSV label strings in the order of the hub's class ids
    (``None`` for the regression task STS-B).
    """

    name: str
    dir_name: str
    columns: dict[str, Union[str, int]]
    label_column: Union[str, int]
    label_names: tuple[str, ...] | None
    tsv_labels: tuple[str, ...] | None
    metrics: tuple[str, ...]
    dev_files: dict[str, str] = field(default_factory=lambda: {"validation": "dev.tsv"})
    header: bool = True
    n_columns: int | None = None

    @property
    def text_fields(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def is_regression(self) -> bool:
        return self.label_names is None

    @property
    def num_labels(self) -> int:
        return 1 if self.label_names is None else len(self.label_names)

    @property
    def main_metric(self) -> str:
        return self.metrics[0]

    def file_for(self, split: str) -> str:
        """TSV file name of a split (``train``, ``validation``; MNLI ``validation_matched`` and
        ``validation_mismatched``)."""
        if split == "train":
            return "train.tsv"
        if split == "validation" and split not in self.dev_files:
            split = next(iter(self.dev_files))
        if split not in self.dev_files:
            raise ObceInputError(f"split {split!r} of task {self.name!r}: expected one of "
                                 f"{['train', *self.dev_files]}")
        return self.dev_files[split]


_BINARY = ("0", "1")
_NLI2 = ("entailment", "not_entailment")
GLUE_TASKS: dict[str, GlueTask] = {t.name: t for t in (
    GlueTask("cola", "CoLA", {"sentence": 3}, 1, ("unacceptable", "acceptable"), _BINARY,
             ("matthews_correlation",), header=False, n_columns=4),
    GlueTask("sst2", "SST-2", {"sentence": "sentence"}, "label", ("negative", "positive"), _BINARY,
             ("accuracy",)),
    GlueTask("mrpc", "MRPC", {"sentence1": "#1 String", "sentence2": "#2 String"}, "Quality",
             ("not_equivalent", "equivalent"), _BINARY, ("f1", "accuracy")),
    GlueTask("stsb", "STS-B", {"sentence1": "sentence1", "sentence2": "sentence2"}, "score",
             None, None, ("pearson", "spearman")),
    GlueTask("qqp", "QQP", {"question1": "question1", "question2": "question2"}, "is_duplicate",
             ("not_duplicate", "duplicate"), _BINARY, ("f1", "accuracy")),
    GlueTask("mnli", "MNLI", {"premise": "sentence1", "hypothesis": "sentence2"}, "gold_label",
             ("entailment", "neutral", "contradiction"), ("entailment", "neutral", "contradiction"),
             ("accuracy",), dev_files={"validation_matched": "dev_matched.tsv",
                                       "validation_mismatched": "dev_mismatched.tsv"}),
    GlueTask("qnli", "QNLI", {"question": "question", "sentence": "sentence"}, "label",
             _NLI2, _NLI2, ("accuracy",)),
    GlueTask("rte", "RTE", {"sentence1": "sentence1", "sentence2": "sentence2"}, "label",
             _NLI2, _NLI2, ("accuracy",)),
    GlueTask("wnli", "WNLI", {"sentence1": "sentence1", "sentence2": "sentence2"}, "label",
             ("not_entailment", "entailment"), _BINARY, ("accuracy",)),
)}
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli_matched": "mnli"}


def get_task(name: str) -> GlueTask:
    """The :class:`GlueTask` of a task name (case-insensitive; ``SST-2`` and ``sst2`` both work)."""
    key = str(name).lower()
    key = _ALIASES.get(key, key)
    if key not in GLUE_TASKS:
        raise ObceInputError(f"unknown GLUE task {name!r}; expected one of {sorted(GLUE_TASKS)}")
    return GLUE_TASKS[key]


def resolve_glue_dir(glue_dir: str | os.PathLike | None = None) -> Path | None:
    """The local GLUE directory: ``glue_dir`` if given, else ``$OBCE_GLUE_DIR``, else ``None``
    (meaning: use the hub)."""
    value = glue_dir if glue_dir is not None else os.environ.get(GLUE_DIR_ENV) or None
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        source = "glue_dir" if glue_dir is not None else GLUE_DIR_ENV
        raise ObceInputError(f"GLUE directory {str(path)!r} (from {source}) does not exist or is not a directory")
    return path


#: Label counts (hub class ids) of the full classic train and dev splits of the classification tasks,
#: for what describes a whole split (the majority-class floors) where only the sample is at hand.
FULL_LABEL_COUNTS: dict[str, tuple[dict[int, int], dict[int, int]]] = {
    "cola": ({1: 6023, 0: 2528}, {1: 721, 0: 322}), "sst2": ({1: 37569, 0: 29780}, {1: 444, 0: 428}),
    "mrpc": ({1: 2474, 0: 1194}, {1: 279, 0: 129}), "rte": ({0: 1249, 1: 1241}, {0: 146, 1: 131}),
    "wnli": ({1: 312, 0: 323}, {1: 31, 0: 40}),
}


def glue_root(glue_dir: str | os.PathLike | None = None) -> Path | None:
    """Where GLUE data come from: the local directory (``glue_dir``, else ``$OBCE_GLUE_DIR``), else
    ``None`` for the hub where it can be reached, else :data:`SAMPLE_DIR`, the package's sample.

    The hub counts as reachable when it answers (and no offline flag is set), or, with
    ``HF_DATASETS_OFFLINE``/``HF_HUB_OFFLINE`` set, when the local Hugging Face caches hold a copy of
    ``nyu-mll/glue``. Falling back to the sample is logged once per process.
    """
    root = resolve_glue_dir(glue_dir)
    if root is not None:
        return root
    from .models import env_flag

    offline = env_flag("HF_DATASETS_OFFLINE") or env_flag("HF_HUB_OFFLINE")
    return _fallback_root(offline, os.environ.get("HF_ENDPOINT", ""), _hub_copy_cached())


def is_sample(root: str | os.PathLike | None) -> bool:
    """Whether a GLUE directory is the package's sample (:data:`SAMPLE_DIR`)."""
    return root is not None and Path(root).resolve() == SAMPLE_DIR.resolve()


def sample_fingerprint() -> str:
    """sha256 (16 hex digits) over the sample's files, for cache keys of anything made from it."""
    h = hashlib.sha256()
    for path in sorted(SAMPLE_DIR.glob("*/*.tsv")):
        h.update(path.relative_to(SAMPLE_DIR).as_posix().encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def _hub_copy_cached() -> bool:
    home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")).expanduser()
    datasets_cache = Path(os.environ.get("HF_DATASETS_CACHE", home / "datasets")).expanduser()
    hub_cache = Path(os.environ.get("HF_HUB_CACHE", home / "hub")).expanduser()
    return (datasets_cache / "nyu-mll___glue").is_dir() or (hub_cache / "datasets--nyu-mll--glue").is_dir()


@functools.lru_cache(maxsize=None)
def _fallback_root(offline: bool, endpoint: str, cached: bool) -> Path | None:
    from .models import hub_reachable

    if cached if offline else hub_reachable():
        return None
    logger.warning("GLUE data: no GLUE directory given (glue_dir=, --glue-dir or $%s) and the hub dataset %s "
                   "is %s, so the embedded sample is used (a few hundred rows per split, see %s/SOURCES.md); "
                   "give a GLUE directory for the full data", GLUE_DIR_ENV, HUB_DATASET,
                   "not in the local caches" if offline else "unreachable", SAMPLE_DIR.name)
    return SAMPLE_DIR


def require_full_data(glue_dir: str | os.PathLike | None, what: str) -> None:
    """Refuse the embedded sample for a grid whose records compare with the full-data protocol: raises
    ``ObceInputError`` naming ``what`` when :func:`glue_root` would read the sample."""
    if is_sample(glue_root(glue_dir)):
        raise ObceInputError(
            f"{what}: no GLUE directory was given (glue_dir, --glue-dir or ${GLUE_DIR_ENV}) and the hub dataset "
            f"{HUB_DATASET} cannot be reached, so only obce's embedded sample (a few hundred rows per split) is "
            "at hand; a grid's records compare with the full-data protocol and do not run on it. Give the "
            "classic GLUE TSVs (download_glue_data.py's layout) or network access to the hub")


def data_description(task: str, glue_dir: str | os.PathLike | None = None) -> str:
    """Where a task's data come from, for a record's provenance (no machine path for the sample)."""
    info = get_task(task)
    root = glue_root(glue_dir)
    if root is None:
        return f"hub {HUB_DATASET}/{info.name}"
    if is_sample(root):
        return f"obce's embedded GLUE sample {info.dir_name} (sha256 {sample_fingerprint()})"
    return f"local GLUE TSV {root / info.dir_name}"


def load_glue(task: str, split: str = "train", glue_dir: str | os.PathLike | None = None):
    """One split of a GLUE task as a ``datasets.Dataset``.

    Parameters
    ----------
    task : str
        GLUE task name (``cola``, ``sst2``, ``mrpc``, ``stsb``, ``qqp``, ``mnli``, ``qnli``, ``rte``, ``wnli``).
    split : str
        ``train`` or ``validation`` (MNLI: ``validation_matched`` / ``validation_mismatched``;
        ``validation`` means matched).
    glue_dir : path, optional
        Local GLUE directory; default ``$OBCE_GLUE_DIR``, else the hub dataset ``nyu-mll/glue``, else
        (the hub unreachable) the package's sample (see :func:`glue_root`).

    Returns
    -------
    datasets.Dataset
        Columns: the task's text fields, ``label`` (ClassLabel; float32 for STS-B) and ``idx``.
    """
    info = get_task(task)
    filename = info.file_for(split)
    root = glue_root(glue_dir)
    if root is None:
        return _load_from_hub(info, split, filename)
    path = root / info.dir_name / filename
    if not path.is_file():
        reason = (f"the embedded sample has no {info.dir_name}/{filename} (the hub is unreachable and no GLUE "
                  "directory was given)" if is_sample(root) else f"{path} does not exist")
        raise MissingResourceError(_missing_data_message(info, filename, reason))
    columns = read_glue_tsv(path, info)
    return _to_dataset(info, columns)


def read_glue_tsv(path: str | os.PathLike, task: str | GlueTask) -> dict[str, list]:
    """Parse one classic GLUE TSV file into hub-style columns.

    Returns
    -------
    dict
        ``{text_field: list[str], ..., "label": list[int] or list[float], "idx": list[int]}``.

    Raises
    ------
    ObceInputError
        A missing column, a row with the wrong number of fields, or a label outside the task's
        label set; the message names the file and line.
    """
    info = task if isinstance(task, GlueTask) else get_task(task)
    path = Path(path)
    text = read_text_utf8(path)
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE))
    if info.header:
        if not rows:
            raise ObceInputError(f"{path}: empty file; expected a header row")
        header, body, first_line = rows[0], rows[1:], 2
        wanted = [*info.columns.values(), info.label_column]
        missing = [c for c in wanted if c not in header]
        if missing:
            raise ObceInputError(f"{path}: missing column(s) {missing} in header {header}; "
                                 f"task {info.name} expects {wanted}")
        position = {c: header.index(c) for c in wanted}
        n_fields = len(header)
    else:
        body, first_line = rows, 1
        position = {c: c for c in [*info.columns.values(), info.label_column]}
        n_fields = info.n_columns
    if not body:
        raise ObceInputError(f"{path}: {'a header and ' if info.header else ''}no data rows; expected the task's "
                             f"{info.name} examples, one per line")
    out: dict[str, list] = {f: [] for f in info.columns}
    labels: list = []
    for line, row in enumerate(body, start=first_line):
        if len(row) != n_fields:
            raise ObceInputError(f"{path}:{line}: expected {n_fields} tab-separated fields, found {len(row)}")
        for name, col in info.columns.items():
            out[name].append(row[position[col]])
        labels.append(_parse_label(info, row[position[info.label_column]], path, line))
    out["label"] = labels
    out["idx"] = list(range(len(labels)))
    return out


def load_corpus(task: str, n: int | None = 256, split: str = "train",
                glue_dir: str | os.PathLike | None = None, seed: int = 0,
                return_labels: bool = False) -> list[Text] | tuple[list[Text], list]:
    """A scoring corpus: ``n`` texts of a GLUE task drawn without replacement (seeded).

    Single-sentence tasks give strings, pair tasks ``(first, second)`` tuples, which the activation
    collector encodes as the model sees them in fine-tuning. ``n=None`` takes the whole split.
    With ``return_labels``, also the texts' labels (for gradient-based importance).
    """
    check_corpus_size(n)
    info = get_task(task)
    ds = load_glue(task, split=split, glue_dir=glue_dir)
    order = np.arange(len(ds))
    if n is not None:
        if n > len(ds):
            logger.warning("corpus size %d > %d rows of %s/%s; taking all", n, len(ds), task, split)
        else:
            order = np.sort(np.random.default_rng(seed).choice(len(ds), size=n, replace=False))
    fields = info.text_fields
    cols = [ds[f] for f in fields]
    if len(fields) == 1:
        texts = [cols[0][i] for i in order]
    else:
        texts = [(cols[0][i], cols[1][i]) for i in order]
    if return_labels:
        labels = ds["label"]
        return texts, [labels[i] for i in order]
    return texts


def read_text_utf8(path: str | os.PathLike) -> str:
    """A text file's content as UTF-8 (a BOM is dropped). Another encoding (UTF-16, latin-1)
    raises ``ObceInputError`` naming the file and the line of the first undecodable byte."""
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ObceInputError(f"{path}:{line}: not UTF-8 text (byte {raw[exc.start]:#04x} at offset {exc.start}); "
                             "save the file as UTF-8") from exc


def check_corpus_size(n) -> None:
    """Raise ``ObceInputError`` unless ``n`` is an integer >= 2 or None (the whole split)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2):
        raise ObceInputError(f"corpus size n={n!r}: expected an integer >= 2 (or None for all)")


def validate_texts(texts: Sequence[Text]) -> list[Text]:
    """Check a corpus: at least 2 items, each a non-empty string or a pair of strings."""
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
        raise ObceInputError(f"corpus must be a sequence of strings or string pairs, got {type(texts).__name__}")
    if len(texts) < 2:
        raise ObceInputError(f"corpus has {len(texts)} text(s); persistence needs at least 2 "
                             "(one point per sentence)")
    kinds = set()
    for i, t in enumerate(texts):
        if isinstance(t, str):
            ok, kind = bool(t.strip()), "single"
        elif isinstance(t, (tuple, list)) and len(t) == 2 and all(isinstance(s, str) for s in t):
            ok, kind = bool(t[0].strip()), "pair"
        else:
            ok, kind = False, "?"
        if not ok:
            raise ObceInputError(f"corpus item {i} ({t!r:.60}) is not a non-empty string or a pair of strings")
        kinds.add(kind)
    if len(kinds) > 1:
        raise ObceInputError("corpus mixes single sentences and sentence pairs; use one kind")
    return list(texts)


def _parse_label(info: GlueTask, value: str, path: Path, line: int):
    if info.is_regression:
        try:
            score = float(value)
        except ValueError:
            score = float("nan")
        if not 0.0 <= score <= 5.0:
            raise ObceInputError(f"{path}:{line}: label {value!r} is not a similarity score in [0, 5]")
        return score
    if value not in info.tsv_labels:
        raise ObceInputError(f"{path}:{line}: label {value!r} is not one of {list(info.tsv_labels)} "
                             f"(task {info.name})")
    return info.tsv_labels.index(value)


def _features(info: GlueTask):
    from datasets import ClassLabel, Features, Value

    label = Value("float32") if info.is_regression else ClassLabel(names=list(info.label_names))
    return Features({**{f: Value("string") for f in info.columns}, "label": label, "idx": Value("int32")})


def _to_dataset(info: GlueTask, columns: dict[str, list]):
    from datasets import Dataset

    return Dataset.from_dict(columns, features=_features(info))


def _load_from_hub(info: GlueTask, split: str, filename: str):
    import datasets

    from .models import env_flag, hub_reachable

    hub_split = split if split == "train" or split in info.dev_files else next(iter(info.dev_files))
    if not env_flag("HF_DATASETS_OFFLINE") and not hub_reachable():
        raise MissingResourceError(_missing_data_message(
            info, filename, f"the hub dataset {HUB_DATASET} is unreachable from this machine (a copy in "
                            "the local datasets cache is used with HF_DATASETS_OFFLINE=1)"))
    try:
        ds = datasets.load_dataset(HUB_DATASET, info.name, split=hub_split)
    except Exception as exc:  # datasets raises many types when offline
        raise MissingResourceError(_missing_data_message(
            info, filename, f"the hub dataset {HUB_DATASET} could not be loaded "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")) from exc
    return ds.cast(_features(info))


def _missing_data_message(info: GlueTask, filename: str, reason: str) -> str:
    return (f"GLUE task {info.name}: file {info.dir_name}/{filename} is not available: {reason}.\n"
            f"Supply it in one of two ways: (1) a local GLUE directory in the classic layout "
            f"(<dir>/{info.dir_name}/{filename}, as written by download_glue_data.py) passed as "
            f"glue_dir= / --glue-dir or through ${GLUE_DIR_ENV}; or (2) network access to the "
            f"Hugging Face hub dataset {HUB_DATASET} (config '{info.name}').")


#: The GLUE tasks whose training sentences the general distillation's corpus pools by default (those
#: with a training split in the classic TSVs beside this project; QNLI has only its dev split there).
UNLABELED_TASKS = ("cola", "sst2", "mrpc", "stsb", "rte", "wnli")


def unlabeled_corpus(tasks: Sequence[str] = UNLABELED_TASKS, glue_dir: str | os.PathLike | None = None,
                     max_texts: int | None = None, seed: int = 0) -> tuple[list[str], str]:
    """Unlabeled text for task-agnostic (general) distillation: every sentence of the tasks' training
    splits (both sentences of a pair, each on its own), labels dropped, duplicates removed, and no
    sentence that any of the tasks' dev splits holds.

    Parameters
    ----------
    tasks : GLUE task names; glue_dir : as :func:`load_glue`
    max_texts : keep a seeded random subset of this many (``None``: all)

    Returns
    -------
    texts : list of str, in a fixed order (first appearance, or the subset's sorted draw)
    description : str, what the corpus is, for a record
    """
    if max_texts is not None and (isinstance(max_texts, bool) or not isinstance(max_texts, int) or max_texts < 1):
        raise ObceInputError(f"max_texts={max_texts!r}: expected a positive whole number or None")
    names = [get_task(t).name for t in tasks]
    if not names:
        raise ObceInputError("unlabeled_corpus: expected at least one task")

    def sentences(task: str, split: str) -> list[str]:
        ds = load_glue(task, split=split, glue_dir=glue_dir)
        return [s for f in get_task(task).text_fields for s in ds[f] if isinstance(s, str) and s.strip()]

    dev = {s for t in names for s in sentences(t, "validation")}
    seen: dict[str, None] = {}
    for t in names:
        for s in sentences(t, "train"):
            if s not in dev:
                seen.setdefault(s, None)
    texts = list(seen)
    total = len(texts)
    if max_texts is not None and max_texts < total:
        keep = np.sort(np.random.default_rng(seed).choice(total, size=max_texts, replace=False))
        texts = [texts[i] for i in keep]
    description = (f"the training sentences of {', '.join(names)} pooled (labels dropped, {total} distinct, none "
                   f"of their dev sentences)" + (f", {len(texts)} drawn with seed {seed}" if len(texts) < total else ""))
    return texts, description


def sample_lines(lines: Sequence[str], n: int, header: bool, seed: int = 0) -> list[str]:
    """The rows a GLUE sample keeps of one TSV file: the header (if any) and ``n`` data rows drawn
    without replacement (seeded), in file order, each line byte for byte (all rows if fewer than ``n``).

    Parameters
    ----------
    lines : the file's lines without their line ends, (n_lines,)
    n : data rows to keep; header : whether the first line is a header; seed : the draw's seed

    Returns
    -------
    list of str, (header + min(n, n_rows),)
    """
    head, body = (list(lines[:1]), list(lines[1:])) if header else ([], list(lines))
    if n >= len(body):
        return head + body
    keep = np.sort(np.random.default_rng(seed).choice(len(body), size=n, replace=False))
    return head + [body[i] for i in keep]


def write_glue_sample(src: str | os.PathLike, dst: str | os.PathLike, rows: dict[str, int] | None = None,
                      seed: int = 0, overwrite: bool = False) -> list[Path]:
    """Write a GLUE sample: for every task file of the classic layout under ``src``, the rows that
    :func:`sample_lines` keeps (``rows["train"]`` for ``train.tsv``, ``rows["dev"]`` for dev files),
    to the same relative path under ``dst``. This is how :data:`SAMPLE_DIR` was made.

    Returns the files written. Refuses to replace an existing file unless ``overwrite``.
    """
    rows = dict(SAMPLE_ROWS if rows is None else rows)
    src, dst = Path(src), Path(dst)
    written = []
    for info in GLUE_TASKS.values():
        for filename in ("train.tsv", *info.dev_files.values()):
            path = src / info.dir_name / filename
            if not path.is_file():
                continue
            text = path.read_bytes().decode("utf-8")
            lines = text.split("\n")
            if lines and lines[-1] == "":
                lines = lines[:-1]
            n = rows["train" if filename == "train.tsv" else "dev"]
            target = dst / info.dir_name / filename
            if target.exists() and not overwrite:
                raise ObceInputError(f"{target} exists; pass overwrite=True to replace it")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(("\n".join(sample_lines(lines, n, info.header, seed)) + "\n").encode("utf-8"))
            written.append(target)
    return written
