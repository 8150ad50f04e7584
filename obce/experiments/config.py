"""The configs of obce's protocols: one validated model for the GLUE pipeline and the retraining-free
protocol, read from YAML files that compose.

A config file is a mapping of keys (:class:`PipelineConfig`, :class:`PostTrainConfig`). It composes:

* ``extends: base.yaml`` (or a list of files, relative to the file that names them) starts from the
  named files, merged in order, mappings key by key, every other value replaced;
* ``grids:`` is a list of sub-grids, each overriding some of the grid keys (``tasks``, ``levels``,
  ``seeds``, ``importances``; for the retraining-free protocol also ``draws``, ``keep_fractions``,
  ``compensations``): one protocol that runs STS-B at level 2 and CoLA at level 3 is one file.

Every value is checked before any compute (:func:`expect` names the key and says what was expected).
A config path that an older layout used (``params/glue_cpu_fulltrain.yaml``) resolves through the
manifest ``params/protocols.yaml`` (:func:`find_config`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable

from ..data import check_corpus_size, get_task
from ..errors import ObceInputError
from ..files import cache_key, to_jsonable

logger = logging.getLogger(__name__)

__all__ = ["ConfigFile", "PipelineConfig", "PostTrainConfig", "SCORE_MODELS", "SEARCH_VARIANTS", "SearchConfig",
           "posttrain_config", "check_finetune", "expect",
           "find_config", "load_yaml", "read_manifest", "restrict"]

#: Which model the scores are computed on: the pretrained encoder (prune, then fine-tune), or the
#: encoder fine-tuned on the task first (fine-tune, prune, fine-tune again; needed for "taylor").
SCORE_MODELS = ("pretrained", "finetuned")
#: The fine-tuning keys every protocol takes, with the pipeline's defaults (``weight_decay``,
#: ``warmup_ratio``, ``bf16``, ``precision`` (``fp32`` or ``bf16``, :data:`obce.glue.PRECISIONS`) and
#: ``distill`` may be added).
FINETUNE_DEFAULTS = dict(epochs=3, lr=5e-5, batch_size=32, max_length=128, max_train_samples=None,
                         max_eval_samples=None)
FINETUNE_EXTRA = dict(weight_decay=0, warmup_ratio=0, bf16=None, precision=None, distill=None)


def expect(value, kind, name: str, minimum: float | None = None, strict: bool = False,
           what: str = "pipeline config") -> None:
    """Raise ``ObceInputError`` unless ``value`` is of ``kind`` (never a bool) and at least ``minimum``
    (above it, with ``strict``); the message names ``what`` and the key ``name``."""
    if isinstance(value, bool) or not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise ObceInputError(f"{what} {name}: {value!r} is not {' or '.join(k.__name__ for k in kinds)}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ObceInputError(f"{what} {name}: {value!r}: expected a value "
                             f"{'above' if strict else 'of at least'} {minimum}")


def load_yaml(path: str | os.PathLike, kind: str = "config", _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's keys with its ``extends:`` files merged in (see the module's docstring).

    Raises
    ------
    ObceInputError
        The file (or a file it extends) is missing, not YAML, not a mapping, or extends itself.
    """
    import yaml

    path = Path(path)
    if path.resolve() in _seen:
        raise ObceInputError(f"{kind} {str(path)!r} extends itself (through {' -> '.join(map(str, _seen))})")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ObceInputError(f"{kind} {str(path)!r}: {exc}") from exc
    if not isinstance(values, dict):
        raise ObceInputError(f"{kind} {str(path)!r}: expected a mapping of keys")
    bases = values.pop("extends", None)
    if bases is None:
        return values
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ObceInputError(f"{kind} {str(path)!r}: extends: {bases!r}: expected a file name or a list of them")
    merged: dict[str, Any] = {}
    for base in bases:
        merged = _merge(merged, load_yaml(path.parent / base, kind, (*_seen, path.resolve())))
    return _merge(merged, values)


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: mappings merged key by key, every other value replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(out.get(key), dict) and isinstance(value, dict) else value
    return out


def find_config(path: str | os.PathLike) -> Path:
    """``path`` itself when it exists, else the config that replaced it in the manifest
    (``params/protocols.yaml``, each protocol's ``replaces``), with a log line; else ``path``."""
    p = Path(path)
    if p.exists():
        return p
    from ..paths import project_root

    try:
        root = project_root()
    except ObceInputError:
        return p
    for protocol in read_manifest(root).values():
        old = [str(x) for x in protocol.get("replaces", [])]
        try:
            rel = str(p.resolve().relative_to(root)) if p.is_absolute() else str(p)
        except ValueError:
            rel = str(p)
        if rel in old:
            new = root / protocol["config"]
            logger.info("%s is now %s (params/protocols.yaml)", path, protocol["config"])
            return new if p.is_absolute() else Path(os.path.relpath(new))
    return p


def read_manifest(root: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The protocols of ``params/protocols.yaml`` (of the repository at ``root``, default the one obce
    finds): name -> ``group``, ``kind``, ``config``, ``results``, ``chapter``, ``title``, ``replaces``.
    Empty when the repository has no manifest."""
    import yaml

    from ..paths import project_root

    path = Path(root or project_root()) / "params" / "protocols.yaml"
    return (yaml.safe_load(path.read_text()) or {}) if path.is_file() else {}


class ConfigFile:
    """Reading and writing of a dataclass config: ``from_dict`` (unknown keys refused, mappings merged
    into their defaults, then ``validate``), ``from_yaml`` (with ``extends``) and ``to_dict``.
    ``KIND`` names it in errors; ``GRID_KEYS`` are the keys a ``grids`` entry may override."""

    KIND = "config"
    GRID_KEYS: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        known = set(cls.__dataclass_fields__)
        unknown = set(values) - known
        if unknown:
            raise ObceInputError(f"unknown {cls.KIND} key(s) {sorted(unknown)}; expected {sorted(known)}")
        cfg = cls()
        for key, value in values.items():
            default = getattr(cfg, key)
            setattr(cfg, key, {**default, **value} if isinstance(default, dict) and isinstance(value, dict) else value)
        cfg.validate()
        return cfg

    @classmethod
    def from_yaml(cls, path: str | os.PathLike):
        return cls.from_dict(load_yaml(find_config(path), cls.KIND))

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))

    def validate(self) -> None:  # pragma: no cover - every config defines its own
        raise NotImplementedError

    def grid_list(self) -> list[dict[str, Any]]:
        """The config's sub-grids, each with every grid key (those a ``grids`` entry leaves out are the
        config's own): one grid when ``grids`` is empty."""
        own = {k: getattr(self, k) for k in self.GRID_KEYS}
        return [{**own, **g} for g in self.grids] or [own]

    def all_of(self, key: str) -> list:
        """Every value of a grid key over the sub-grids, in first-seen order."""
        return list(dict.fromkeys(v for g in self.grid_list() for v in g[key]))

    def _check_grids(self, check) -> None:
        """Check ``grids`` (a list of mappings of :attr:`GRID_KEYS`), each completed grid with ``check``."""
        if not isinstance(self.grids, list) or not all(isinstance(g, dict) for g in self.grids):
            raise ObceInputError(f"{self.KIND} grids: {self.grids!r}: expected a list of mappings of "
                                 f"{list(self.GRID_KEYS)}")
        for i, g in enumerate(self.grids):
            unknown = set(g) - set(self.GRID_KEYS)
            if unknown:
                raise ObceInputError(f"{self.KIND} grids[{i}]: unknown key(s) {sorted(unknown)}; a grid sets some of "
                                     f"{list(self.GRID_KEYS)}")
        for grid in self.grid_list():
            check(grid)


def check_finetune(ft: dict[str, Any], what: str = "pipeline config") -> dict[str, Any]:
    """Check a protocol's ``finetune`` mapping (keys, types, ranges; ``distill`` completed with its
    defaults) and return it."""
    allowed = {**FINETUNE_DEFAULTS, **FINETUNE_EXTRA}
    if not isinstance(ft, dict):
        raise ObceInputError(f"{what} finetune: expected a mapping of keys")
    unknown = set(ft) - set(allowed)
    if unknown:
        raise ObceInputError(f"{what} finetune: unknown key(s) {sorted(unknown)}; expected {sorted(allowed)}")
    for key in ("epochs", "lr"):
        expect(ft.get(key), (int, float), f"finetune.{key}", minimum=0, strict=True, what=what)
    for key in ("batch_size", "max_length"):
        expect(ft.get(key), int, f"finetune.{key}", minimum=1, what=what)
    for key in ("max_train_samples", "max_eval_samples"):
        if ft.get(key) is not None:
            expect(ft[key], int, f"finetune.{key}", minimum=1, what=what)
    if ft.get("precision") is not None and ft["precision"] not in ("fp32", "bf16"):
        raise ObceInputError(f"{what} finetune.precision: {ft['precision']!r}: expected fp32 or bf16")
    if "distill" in ft and ft["distill"] is None:
        del ft["distill"]
    elif "distill" in ft:  # prune, then distil from the unpruned model fine-tuned on the task
        from ..distill import DISTILL_DEFAULTS

        if not isinstance(ft["distill"], dict) or set(ft["distill"]) - set(DISTILL_DEFAULTS):
            raise ObceInputError(f"{what} finetune.distill: {ft['distill']!r}: expected a mapping of "
                                 f"{sorted(DISTILL_DEFAULTS)}")
        ft["distill"] = {**DISTILL_DEFAULTS, **ft["distill"]}
        for key, v in ft["distill"].items():
            expect(v, (int, float), f"finetune.distill.{key}", minimum=0, what=what)
    return ft


def _check_lists(grid: dict[str, Any], kinds: Iterable[tuple[str, Any]], what: str) -> None:
    for key, kind in kinds:
        values = grid[key]
        if not isinstance(values, list) or not values:
            raise ObceInputError(f"{what} {key}: {values!r}: expected a non-empty list "
                                 f"(e.g. {key}: [{'2' if kind is int else 'rte'}])")
        for v in values:
            expect(v, kind, f"{key} item", what=what, minimum=0 if key in ("seeds", "draws") else None)
        twice = sorted({repr(v) for v in values if values.count(v) > 1})
        if twice:
            raise ObceInputError(f"{what} {key}: {values!r} names {', '.join(twice)} more than once: each item is "
                                 "one set of runs, so list it once")


@dataclass
class PipelineConfig(ConfigFile):
    """Parameters of a comparison run (``obce pipeline --config FILE.yaml`` reads these keys)."""

    model: str = "minilm"
    out: str = "results/pipeline"
    glue_dir: str | None = None
    tasks: list[str] = field(default_factory=lambda: ["rte"])
    levels: list[int] = field(default_factory=lambda: [0, 1, 2, 3])
    seeds: list[int] = field(default_factory=lambda: [0])
    importances: list[str] = field(default_factory=lambda: ["merge_radius", "random"])
    grids: list[dict[str, Any]] = field(default_factory=list)
    corpus: dict[str, Any] = field(default_factory=lambda: dict(samples=512, max_length=128, split="train",
                                                                seed=0, source_task=None,
                                                                score_model="pretrained"))
    scoring: dict[str, Any] = field(default_factory=lambda: dict(representation="tokens", method="fast",
                                                                 device=None, batch_size=32))
    finetune: dict[str, Any] = field(default_factory=lambda: dict(FINETUNE_DEFAULTS))
    methods: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    KIND = "pipeline config"
    GRID_KEYS = ("tasks", "levels", "seeds", "importances")

    def validate(self) -> None:
        """Check every key, types included, so that a bad config fails before any compute."""
        from ..activations import REPRESENTATIONS
        from ..data import resolve_glue_dir
        from ..methods import method_spec
        from ..persistence import H0_BACKENDS
        from ..pruning import LEVELS
        from ..scoring import GRADIENT_SCORES, IMPORTANCES

        expect(self.model, str, "model")
        expect(self.out, str, "out")
        if self.glue_dir is not None:
            expect(self.glue_dir, str, "glue_dir")
            resolve_glue_dir(self.glue_dir)
        for key in ("corpus", "scoring"):
            if not isinstance(getattr(self, key), dict):
                raise ObceInputError(f"pipeline config {key}: expected a mapping of keys")
        for key, allowed in (("corpus", PipelineConfig().corpus), ("scoring", PipelineConfig().scoring)):
            unknown = set(getattr(self, key)) - set(allowed)
            if unknown:
                raise ObceInputError(f"pipeline config {key}: unknown key(s) {sorted(unknown)}; "
                                     f"expected {sorted(allowed)}")
        check_finetune(self.finetune)
        c, sc = self.corpus, self.scoring
        check_corpus_size(c.get("samples"))
        expect(c.get("max_length"), int, "corpus.max_length", minimum=1)
        if c.get("seed", 0) != "run":
            expect(c.get("seed", 0), int, "corpus.seed (an integer, or 'run': a draw per run seed)")
        if c.get("split", "train") not in ("train", "validation"):
            raise ObceInputError(f"corpus.split {c.get('split')!r}: expected train or validation")
        if c.get("source_task") is not None:
            get_task(c["source_task"])
        if sc.get("representation", "tokens") not in REPRESENTATIONS:
            raise ObceInputError(f"scoring.representation {sc.get('representation')!r}: expected one of "
                                 f"{REPRESENTATIONS}")
        if sc.get("method", "fast") not in H0_BACKENDS:
            raise ObceInputError(f"scoring.method {sc.get('method')!r}: expected one of {H0_BACKENDS}")
        expect(sc.get("batch_size", 32), int, "scoring.batch_size", minimum=1)
        from ..models import check_device

        check_device(sc.get("device"), available=False)  # a GPU config is valid on a CPU machine
        mode = self.corpus.get("score_model", "pretrained")
        if mode not in SCORE_MODELS:
            raise ObceInputError(f"corpus.score_model {mode!r}: expected one of {SCORE_MODELS}")

        def check(grid: dict[str, Any]) -> None:
            kinds = [("tasks", str), ("levels", int), ("seeds", int)]
            if not (grid["importances"] == [] and self.methods):  # [] : a config of other methods only
                kinds.append(("importances", str))
            _check_lists(grid, kinds, self.KIND)
            for t in grid["tasks"]:
                get_task(t)
            for imp in grid["importances"]:
                if imp not in (*IMPORTANCES, *GRADIENT_SCORES):
                    raise ObceInputError(f"importance {imp!r}: expected one of {(*IMPORTANCES, *GRADIENT_SCORES)}")
            bad = [lv for lv in grid["levels"] if lv not in LEVELS]
            if bad:
                raise ObceInputError(f"levels {bad}: expected values in {LEVELS}")
            for imp in set(grid["importances"]) & set(GRADIENT_SCORES):
                if mode != "finetuned":
                    raise ObceInputError(f"importance {imp!r} needs a task loss: set corpus.score_model: finetuned")

        self._check_grids(check)
        if not isinstance(self.methods, list):
            raise ObceInputError("pipeline config methods: expected a list of mappings (e.g. - name: layer_removal)")
        labels = [method_spec(m)["label"] for m in self.methods]
        importances = self.all_of("importances")
        clash = sorted({x for x in labels if labels.count(x) > 1 or x in importances or x == "none"})
        if clash:
            raise ObceInputError(f"pipeline config methods: label(s) {clash} name two runs; give each a `label:`")


@dataclass
class PostTrainConfig(ConfigFile):
    """Parameters of a retraining-free pruning run (``obce posttrain --config FILE.yaml`` reads these)."""

    model: str = "minilm"
    out: str = "results/posttrain"
    glue_dir: str | None = None
    tasks: list[str] = field(default_factory=lambda: ["rte"])
    seeds: list[int] = field(default_factory=lambda: [0])
    draws: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    importances: list[str] = field(default_factory=lambda: ["merge_radius", "activation_variance", "random"])
    keep_fractions: list[float] = field(default_factory=lambda: [0.75, 0.5, 0.25])
    compensations: list[str] = field(default_factory=lambda: ["none", "bias", "ls"])
    grids: list[dict[str, Any]] = field(default_factory=list)
    corpus: dict[str, Any] = field(default_factory=lambda: dict(samples=512, max_length=64))
    finetune: dict[str, Any] = field(default_factory=lambda: {**FINETUNE_DEFAULTS, "max_length": 64})
    eval: dict[str, Any] = field(default_factory=lambda: dict(batch_size=64))
    note: str | None = None

    KIND = "posttrain config"
    GRID_KEYS = ("tasks", "seeds", "draws", "importances", "keep_fractions", "compensations")

    def validate(self) -> None:
        """Check every key, types included, before any compute."""
        from ..compensation import COMPENSATIONS
        from ..data import resolve_glue_dir
        from ..scoring import GRADIENT_SCORES, IMPORTANCES

        what = self.KIND
        expect(self.model, str, "model", what=what)
        expect(self.out, str, "out", what=what)
        if self.glue_dir is not None:
            resolve_glue_dir(self.glue_dir)

        def check(grid: dict[str, Any]) -> None:
            _check_lists(grid, (("tasks", str), ("seeds", int), ("draws", int), ("importances", str),
                                ("keep_fractions", (int, float)), ("compensations", str)), what)
            for t in grid["tasks"]:
                get_task(t)
            known = (*IMPORTANCES, *GRADIENT_SCORES)
            bad = [i for i in grid["importances"] if i not in known]
            if bad:
                raise ObceInputError(f"importances {bad}: expected some of {known}")
            bad = [c for c in grid["compensations"] if c not in COMPENSATIONS]
            if bad:
                raise ObceInputError(f"compensations {bad}: expected some of {COMPENSATIONS}")
            bad = [f for f in grid["keep_fractions"] if not 0 < f < 1]
            if bad:
                raise ObceInputError(f"keep_fractions {bad}: expected values in (0, 1)")

        self._check_grids(check)
        check_corpus_size(self.corpus.get("samples"))
        expect(self.corpus.get("max_length"), int, "corpus.max_length", minimum=1, what=what)
        expect(self.eval.get("batch_size", 64), int, "eval.batch_size", minimum=1, what=what)
        # the fine-tuning keys are the pipeline's, checked the same way (on a copy: a table's
        # inputs key reads the mapping as written)
        check_finetune(dict(self.finetune), what=what)

    def inputs_key(self) -> str:
        """A key of the inputs every cell of the table shares (not the grid of cells)."""
        return cache_key(model=self.model, finetune=self.finetune, corpus=self.corpus, eval=self.eval)


#: The variants of the search protocol: Kwon's search alone, with mask rearrangement, with
#: rearrangement and mask tuning (Kwon's whole pipeline), and obce's former protocol at equal FLOPs
#: (every head kept, the same FFN width in every layer).
SEARCH_VARIANTS = {"search": ("kwon", False, "none"), "rearranged": ("kwon", True, "none"),
                   "tuned": ("kwon", True, "kwon"), "uniform_ffn": ("uniform_ffn", False, "none")}


@dataclass
class SearchConfig(ConfigFile):
    """Parameters of the retraining-free search protocol (``obce posttrain --config FILE.yaml`` reads a
    file with a ``flops:`` key as one): a model fine-tuned on each task, then for every corpus draw,
    unit score, FLOPs constraint and variant (:data:`SEARCH_VARIANTS`), heads and neurons pruned
    without retraining (:mod:`obce.search`) and the model evaluated on dev."""

    model: str = "minilm"
    out: str = "results/posttrain_search"
    #: the directory whose ``finetuned/`` holds the fine-tuned models (default: ``out``); another
    #: protocol's ``out`` shares its fine-tunes
    finetune_cache: str | None = None
    glue_dir: str | None = None
    tasks: list[str] = field(default_factory=lambda: ["mrpc"])
    seeds: list[int] = field(default_factory=lambda: [0])
    draws: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    scores: list[str] = field(default_factory=lambda: ["fisher", "merge_radius", "activation_variance", "random"])
    flops: list[float] = field(default_factory=lambda: [0.9, 0.8, 0.7, 0.6, 0.5])
    variants: list[str] = field(default_factory=lambda: list(SEARCH_VARIANTS))
    grids: list[dict[str, Any]] = field(default_factory=list)
    corpus: dict[str, Any] = field(default_factory=lambda: dict(samples=512, max_length=64, batch_size=32))
    tuning: dict[str, Any] = field(default_factory=lambda: dict(teacher="sqrt", samples=None))
    finetune: dict[str, Any] = field(default_factory=lambda: {**FINETUNE_DEFAULTS, "max_length": 64})
    eval: dict[str, Any] = field(default_factory=lambda: dict(batch_size=64))
    note: str | None = None

    KIND = "search config"
    GRID_KEYS = ("tasks", "seeds", "draws", "scores", "flops", "variants")

    def validate(self) -> None:
        """Check every key, types included, before any compute (a FLOPs fraction that one head and one
        neuron per layer exceed is refused when the protocol starts, where the model's sizes are known)."""
        from ..data import resolve_glue_dir
        from ..search import TEACHERS
        from ..unit_scores import UNIT_SCORES

        what = self.KIND
        expect(self.model, str, "model", what=what)
        expect(self.out, str, "out", what=what)
        if self.finetune_cache is not None:
            expect(self.finetune_cache, str, "finetune_cache", what=what)
        if self.glue_dir is not None:
            resolve_glue_dir(self.glue_dir)

        def check(grid: dict[str, Any]) -> None:
            _check_lists(grid, (("tasks", str), ("seeds", int), ("draws", int), ("scores", str),
                                ("flops", (int, float)), ("variants", str)), what)
            for t in grid["tasks"]:
                get_task(t)
            bad = [x for x in grid["scores"] if x not in UNIT_SCORES]
            if bad:
                raise ObceInputError(f"{what} scores {bad}: expected some of {sorted(UNIT_SCORES)}")
            bad = [v for v in grid["variants"] if v not in SEARCH_VARIANTS]
            if bad:
                raise ObceInputError(f"{what} variants {bad}: expected some of {list(SEARCH_VARIANTS)}")
            bad = [f for f in grid["flops"] if not 0 < f < 1]
            if bad:
                raise ObceInputError(f"{what} flops {bad}: expected fractions of the unpruned model's FLOPs in (0, 1)")

        self._check_grids(check)
        unknown = set(self.corpus) - {"samples", "max_length", "batch_size"}
        if unknown:
            raise ObceInputError(f"{what} corpus: unknown key(s) {sorted(unknown)}; expected samples, max_length, "
                                 "batch_size")
        check_corpus_size(self.corpus.get("samples"))
        expect(self.corpus.get("max_length"), int, "corpus.max_length", minimum=1, what=what)
        expect(self.corpus.get("batch_size", 32), int, "corpus.batch_size", minimum=1, what=what)
        unknown = set(self.tuning) - {"teacher", "samples"}
        if unknown:
            raise ObceInputError(f"{what} tuning: unknown key(s) {sorted(unknown)}; expected teacher, samples")
        if self.tuning.get("teacher") not in TEACHERS:
            raise ObceInputError(f"{what} tuning.teacher: {self.tuning.get('teacher')!r}: expected one of {TEACHERS}")
        if self.tuning.get("samples") is not None:
            expect(self.tuning["samples"], int, "tuning.samples", minimum=1, what=what)
        expect(self.eval.get("batch_size", 64), int, "eval.batch_size", minimum=1, what=what)
        check_finetune(dict(self.finetune), what=what)

    def inputs_key(self) -> str:
        """A key of the inputs every cell of the table shares (not the grid of cells)."""
        return cache_key(model=self.model, finetune=self.finetune, corpus=self.corpus, tuning=self.tuning,
                         eval=self.eval)


def posttrain_config(path: str | os.PathLike) -> "PostTrainConfig | SearchConfig":
    """The config of a retraining-free protocol file: a :class:`SearchConfig` when it has a ``flops:``
    key (at the top or in a grid), else a :class:`PostTrainConfig`."""
    values = load_yaml(find_config(path), "posttrain config")
    searching = "flops" in values or any(isinstance(g, dict) and "flops" in g for g in values.get("grids") or [])
    return (SearchConfig if searching else PostTrainConfig).from_dict(values)


def restrict(cfg: ConfigFile, **only: list | None) -> ConfigFile:
    """A copy of ``cfg`` that plans a subset of its runs or cells.

    ``only`` maps grid keys (``tasks``, ``importances``, ``levels``, ``seeds``, ...) to the values to
    keep (``None``: keep all); each value must be one the config plans. Every other parameter, and so
    every record's provenance, stays that of ``cfg``: a restricted run resumes and completes the same
    records. For a pipeline config, method labels select methods among ``importances``.
    """
    methods = _method_labels(cfg)
    grids = cfg.grid_list()
    for key, values in only.items():
        if key not in cfg.GRID_KEYS:
            raise ObceInputError(f"cannot restrict {key!r}: expected one of {', '.join(cfg.GRID_KEYS)}")
        if values is None:
            continue
        planned = cfg.all_of(key) + (methods if key == "importances" else [])
        missing = [v for v in values if v not in planned]
        if missing:
            raise ObceInputError(f"--{key} {missing}: not in the config's {key} {planned}")
        grids = [{**g, key: [v for v in g[key] if v in values]} for g in grids]
    changes: dict[str, Any] = {}
    if only.get("importances") is not None and methods:
        changes["methods"] = [m for m in cfg.methods if _label(m) in only["importances"]]
        keep_empty = bool(changes["methods"])
    else:
        keep_empty = bool(methods)
    grids = [g for g in grids if all(g[k] or (k == "importances" and keep_empty) for k in cfg.GRID_KEYS)]
    if not grids:
        raise ObceInputError(f"the restriction {only} leaves no run of the config")
    first = grids[0]
    return replace(cfg, **{k: first[k] for k in cfg.GRID_KEYS}, grids=grids if len(grids) > 1 or cfg.grids else [],
                   **changes)


def _method_labels(cfg: ConfigFile) -> list[str]:
    return [_label(m) for m in getattr(cfg, "methods", [])]


def _label(spec: dict[str, Any]) -> str:
    from ..methods import method_spec

    return method_spec(spec)["label"]
