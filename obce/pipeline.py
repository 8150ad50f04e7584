"""The comparison protocol: score -> prune -> fine-tune/evaluate, for tasks x importances x levels
x seeds, resumable.

Every finished GLUE run is one JSON record under ``<out>/glue/<task>/``; scores are cached under
``<out>/scores/`` in files named by a key of their inputs. A rerun skips records that exist, are valid
and were made with the same model, scoring and fine-tuning parameters (their provenance says so), so
a killed run continues where it stopped and a changed config reruns what it changes. Level 0 (the unpruned model) is run once per task and seed, as importance "none".
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


from .data import check_corpus_size, get_task, load_corpus
from .errors import ObceInputError
from .methods import METHODS, NEEDS_TEACHER, method_spec
from .models import check_device, check_max_length, ffn_layers, load_config, load_model, stored_dtype
from .pruning import LEVELS, count_parameters, prune
from .results import CHECKPOINT_RECORD, Timer, cache_key, corpus_hash, provenance, read_json, to_jsonable
from .scoring import GRADIENT_SCORES, IMPORTANCES, gradient_scores, load_scores, save_scores, score_neurons

logger = logging.getLogger(__name__)

#: Which model the scores are computed on: the pretrained encoder (prune, then fine-tune), or the
#: encoder fine-tuned on the task first (fine-tune, prune, fine-tune again; needed for "taylor").
SCORE_MODELS = ("pretrained", "finetuned")


class ConfigFile:
    """Reading and writing of a dataclass config: ``from_dict`` (unknown keys refused, mappings merged
    into their defaults, then ``validate``), ``from_yaml`` and ``to_dict``. ``KIND`` names it in errors."""

    KIND = "config"

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
        import yaml

        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ObceInputError(f"{cls.KIND} {str(path)!r}: {exc}") from exc
        if not isinstance(values, dict):
            raise ObceInputError(f"{cls.KIND} {str(path)!r}: expected a mapping of keys")
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(asdict(self))

    def validate(self) -> None:  # pragma: no cover - every config defines its own
        raise NotImplementedError


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
    corpus: dict[str, Any] = field(default_factory=lambda: dict(samples=512, max_length=128, split="train",
                                                                seed=0, source_task=None,
                                                                score_model="pretrained"))
    scoring: dict[str, Any] = field(default_factory=lambda: dict(representation="tokens", method="fast",
                                                                 device=None, batch_size=32))
    finetune: dict[str, Any] = field(default_factory=lambda: dict(epochs=3, lr=5e-5, batch_size=32,
                                                                  max_length=128, max_train_samples=None,
                                                                  max_eval_samples=None))
    methods: list[dict[str, Any]] = field(default_factory=list)
    note: str | None = None

    KIND = "pipeline config"

    def validate(self) -> None:
        """Check every key, types included, so that a bad config fails before any compute."""
        from .activations import REPRESENTATIONS
        from .data import resolve_glue_dir
        from .persistence import METHODS

        _expect(self.model, str, "model")
        _expect(self.out, str, "out")
        if self.glue_dir is not None:
            _expect(self.glue_dir, str, "glue_dir")
            resolve_glue_dir(self.glue_dir)
        for key, kind in (("tasks", str), ("levels", int), ("seeds", int), ("importances", str)):
            values = getattr(self, key)
            if key == "importances" and values == [] and self.methods:
                continue  # a config of other compression methods only
            if not isinstance(values, list) or not values:
                raise ObceInputError(f"pipeline config {key}: {values!r}: expected a non-empty list "
                                     f"(e.g. {key}: [{'2' if kind is int else 'rte'}])")
            for v in values:
                _expect(v, kind, f"{key} item")
        for key in ("corpus", "scoring", "finetune"):
            if not isinstance(getattr(self, key), dict):
                raise ObceInputError(f"pipeline config {key}: expected a mapping of keys")
        for key, allowed in (("corpus", PipelineConfig().corpus), ("scoring", PipelineConfig().scoring),
                             ("finetune", {**PipelineConfig().finetune, "weight_decay": 0, "warmup_ratio": 0,
                                           "bf16": None, "distill": None})):
            unknown = set(getattr(self, key)) - set(allowed)
            if unknown:
                raise ObceInputError(f"pipeline config {key}: unknown key(s) {sorted(unknown)}; "
                                     f"expected {sorted(allowed)}")
        c, sc, ft = self.corpus, self.scoring, self.finetune
        check_corpus_size(c.get("samples"))
        _expect(c.get("max_length"), int, "corpus.max_length", minimum=1)
        if c.get("seed", 0) != "run":
            _expect(c.get("seed", 0), int, "corpus.seed (an integer, or 'run': a draw per run seed)")
        if c.get("split", "train") not in ("train", "validation"):
            raise ObceInputError(f"corpus.split {c.get('split')!r}: expected train or validation")
        if c.get("source_task") is not None:
            get_task(c["source_task"])
        if sc.get("representation", "tokens") not in REPRESENTATIONS:
            raise ObceInputError(f"scoring.representation {sc.get('representation')!r}: expected one of "
                                 f"{REPRESENTATIONS}")
        if sc.get("method", "fast") not in METHODS:
            raise ObceInputError(f"scoring.method {sc.get('method')!r}: expected one of {METHODS}")
        _expect(sc.get("batch_size", 32), int, "scoring.batch_size", minimum=1)
        check_device(sc.get("device"), available=False)  # a GPU config is valid on a CPU machine
        for key in ("epochs", "lr"):
            _expect(ft.get(key), (int, float), f"finetune.{key}", minimum=0, strict=True)
        for key in ("batch_size", "max_length"):
            _expect(ft.get(key), int, f"finetune.{key}", minimum=1)
        for key in ("max_train_samples", "max_eval_samples"):
            if ft.get(key) is not None:
                _expect(ft[key], int, f"finetune.{key}", minimum=1)
        if "distill" in ft and ft["distill"] is None:
            del ft["distill"]
        elif "distill" in ft:  # prune, then distil from the unpruned model fine-tuned on the task
            from .glue import DISTILL_DEFAULTS

            if not isinstance(ft["distill"], dict) or set(ft["distill"]) - set(DISTILL_DEFAULTS):
                raise ObceInputError(f"pipeline config finetune.distill: {ft['distill']!r}: expected a mapping of "
                                     f"{sorted(DISTILL_DEFAULTS)}")
            ft["distill"] = {**DISTILL_DEFAULTS, **ft["distill"]}
            for key, v in ft["distill"].items():
                _expect(v, (int, float), f"finetune.distill.{key}", minimum=0)
        for t in self.tasks:
            get_task(t)
        for imp in self.importances:
            if imp not in (*IMPORTANCES, *GRADIENT_SCORES):
                raise ObceInputError(f"importance {imp!r}: expected one of {(*IMPORTANCES, *GRADIENT_SCORES)}")
        bad = [lv for lv in self.levels if lv not in LEVELS]
        if bad:
            raise ObceInputError(f"levels {bad}: expected values in {LEVELS}")
        mode = self.corpus.get("score_model", "pretrained")
        if mode not in SCORE_MODELS:
            raise ObceInputError(f"corpus.score_model {mode!r}: expected one of {SCORE_MODELS}")
        for imp in set(self.importances) & set(GRADIENT_SCORES):
            if mode != "finetuned":
                raise ObceInputError(f"importance {imp!r} needs a task loss: set corpus.score_model: finetuned")
        if not isinstance(self.methods, list):
            raise ObceInputError("pipeline config methods: expected a list of mappings (e.g. - name: layer_removal)")
        labels = [method_spec(m)["label"] for m in self.methods]
        clash = sorted({x for x in labels if labels.count(x) > 1 or x in self.importances or x == "none"})
        if clash:
            raise ObceInputError(f"pipeline config methods: label(s) {clash} name two runs; give each a `label:`")


def _expect(value, kind, name: str, minimum: float | None = None, strict: bool = False) -> None:
    """Raise ``ObceInputError`` unless ``value`` is of ``kind`` (never a bool) and at least ``minimum``
    (above it, with ``strict``)."""
    if isinstance(value, bool) or not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        raise ObceInputError(f"pipeline config {name}: {value!r} is not {' or '.join(k.__name__ for k in kinds)}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ObceInputError(f"pipeline config {name}: {value!r}: expected a value "
                             f"{'above' if strict else 'of at least'} {minimum}")


def record_path(out: str | os.PathLike, task: str, importance: str, level: int, seed: int) -> Path:
    """Where the GLUE record of one run lives."""
    name = "none" if level == 0 else importance
    return Path(out) / "glue" / task / f"{name}-L{level}-s{seed}.json"


def restrict(cfg: PipelineConfig, **only: list | None) -> PipelineConfig:
    """A copy of ``cfg`` that plans a subset of its runs.

    ``only`` maps ``tasks``, ``importances``, ``levels`` or ``seeds`` to the values to keep (``None``:
    keep all); each value must be one the config plans. Every other parameter, and so every record's
    provenance, stays that of ``cfg``: a restricted run resumes and completes the same records.
    """
    changes = {}
    for key, values in only.items():
        if key not in ("tasks", "importances", "levels", "seeds"):
            raise ObceInputError(f"cannot restrict {key!r}: expected tasks, importances, levels or seeds")
        if values is None:
            continue
        planned = getattr(cfg, key) + (list(method_specs(cfg)) if key == "importances" else [])
        missing = [v for v in values if v not in planned]
        if missing:
            raise ObceInputError(f"--{key} {missing}: not in the config's {key} {planned}")
        changes[key] = [v for v in getattr(cfg, key) if v in values]  # the config's order
        if key == "importances":  # method labels select methods
            changes["methods"] = [m for m in cfg.methods if method_spec(m)["label"] in values]
    return replace(cfg, **changes)


def planned_runs(cfg: PipelineConfig) -> list[tuple[str, str, int, int]]:
    """(task, importance or method label, level, seed) of every run, level 0 once per task and seed;
    seed-major. A method with a size of its own (:func:`obce.methods.own_size`, e.g. KroneckerBERT at
    19x) runs once per task and seed whenever a level is planned, filed under the last level of
    :data:`obce.pruning.LEVELS` (its record says ``budget: "own"``), so that restricting the levels
    neither drops nor duplicates it."""
    from .methods import own_size
    from .pruning import LEVELS

    specs = method_specs(cfg)
    levels = [lv for lv in cfg.levels if lv != 0]
    runs = []  # seed-major, so that an interrupted run leaves whole seeds of every task
    for seed in cfg.seeds:
        for task in cfg.tasks:
            if 0 in cfg.levels:
                runs.append((task, "none", 0, seed))
            for imp in [*cfg.importances, *specs]:
                own = imp in specs and own_size(specs[imp])
                runs.extend((task, imp, lv, seed) for lv in ([LEVELS[-1]] if own and levels else levels))
    return runs


def method_specs(cfg: PipelineConfig) -> dict[str, dict[str, Any]]:
    """The config's other compression methods by label, completed with their defaults."""
    specs = [method_spec(m) for m in cfg.methods]
    return {s["label"]: s for s in specs}


def run_pipeline(cfg: PipelineConfig, progress: bool = True, force: bool = False) -> list[Path]:
    """Run (or resume) every planned run; return the record paths.

    A record made with this config's inputs is kept and skipped; one made with other inputs stops
    the run before any compute unless ``force`` (then it is replaced); an unreadable one is set aside
    (renamed ``*.bad``) and rerun. Temporaries live under ``<out>/.tmp`` and those of a killed run are
    removed by the next one.
    """
    from .glue import finetune_and_evaluate

    cfg.validate()
    check_device(cfg.scoring.get("device"))
    states = check_records(cfg, force=force)
    out = Path(cfg.out)
    work = out / ".tmp"
    model, tokenizer = load_model(cfg.model, device=cfg.scoring.get("device"))
    for task in cfg.tasks:  # lengths the model cannot take fail here, before the first fine-tune
        source = get_task(cfg.corpus.get("source_task") or task)
        check_max_length(cfg.corpus["max_length"], model.config, tokenizer, pair=len(source.text_fields) == 2)
        check_max_length(cfg.finetune["max_length"], model.config, tokenizer,
                         pair=len(get_task(task).text_fields) == 2)
    from .methods import check_fits

    specs = method_specs(cfg)
    for spec in specs.values():  # budgets a method cannot reach fail here, before any compute
        check_fits(spec, model, [lv for lv in cfg.levels if lv != 0] or [1])
    n_full = count_parameters(model.base_model)
    stored = stored_dtype(load_config(cfg.model))
    weights = f"stored as {stored}, upcast to float32" if stored and stored != "float32" else "float32"
    paths = []
    for task, imp, level, seed in planned_runs(cfg):
        path = record_path(out, task, imp, level, seed)
        paths.append(path)
        state = states[task, imp, level, seed]
        if state == "done":
            logger.info("skip %s (done)", path)
            continue
        if state == "bad":
            set_aside(path, record_state(path, cfg)[1])
        elif state == "other":
            logger.warning("%s was made with other inputs: replacing it (--force)", path)
        if imp in specs:
            result = run_method(cfg, specs[imp], model, tokenizer, task, level, seed, progress, work)
            result.provenance.update(model=cfg.model, config_note=cfg.note, model_weights=weights)
            result.save(path)
            logger.info("wrote %s: %s", path, result.metrics)
            continue
        base = model
        if level and cfg.corpus.get("score_model", "pretrained") == "finetuned":
            base = finetuned_model(cfg, model, tokenizer, task, progress, seed=corpus_seed(cfg, seed))
        scores = None if level == 0 else task_scores(cfg, base, tokenizer, task, imp, progress, seed=seed)
        small = model if level == 0 else prune(base, scores, level=level)
        extra = dict(importance=imp, level=level, intermediate_size=small.config.intermediate_size,
                     parameters=count_parameters(small.base_model), parameters_full=n_full,  # encoder only
                     scoring=expected_scoring(cfg, imp, seed) if level else None, config_note=cfg.note,
                     model_weights=weights)
        ft = {k: v for k, v in cfg.finetune.items()}
        if ft.get("distill"):  # the teacher: the unpruned model fine-tuned on the task, cached
            ft["teacher"] = finetuned_model(cfg, model, tokenizer, task, progress, seed=seed)
        result = finetune_and_evaluate(small, task, tokenizer=tokenizer, glue_dir=cfg.glue_dir, seed=seed,
                                       progress=progress, extra_provenance=extra, work_parent=work, **ft)
        result.provenance["model"] = cfg.model
        result.save(path)
        logger.info("wrote %s: %s", path, result.metrics)
    return paths


def run_method(cfg: PipelineConfig, spec: dict[str, Any], model, tokenizer, task: str, level: int, seed: int,
               progress: bool, work: Path):
    """One run of another compression method (:func:`obce.methods.run`); a data-driven choice reads
    the run's scoring corpus, which the record names."""
    from .methods import run

    c = cfg.corpus
    data_driven = spec["params"].get("criterion") == "residual_change"
    texts = None
    if data_driven:
        texts = load_corpus(c.get("source_task") or task, n=c["samples"], split=c.get("split", "train"),
                            glue_dir=cfg.glue_dir, seed=corpus_seed(cfg, seed))
    extra = dict(scoring=expected_method_corpus(cfg, spec, seed))
    teacher = None
    if spec["name"] in NEEDS_TEACHER or spec["params"].get("distill") or cfg.finetune.get("distill"):
        teacher = finetuned_model(cfg, model, tokenizer, task, progress, seed=seed)
    return run(spec, model, tokenizer, task, level, seed=seed, finetune=cfg.finetune, texts=texts,
               glue_dir=cfg.glue_dir, progress=progress, work_parent=work, extra_provenance=extra, teacher=teacher)


def expected_method_corpus(cfg: PipelineConfig, spec: dict[str, Any], seed: int) -> dict[str, Any] | None:
    """The corpus a method's run reads (``None``: the method reads none), as its record states it."""
    if spec["params"].get("criterion") != "residual_change":
        return None
    c = cfg.corpus
    return to_jsonable(dict(samples=c["samples"], max_length=cfg.finetune.get("max_length", 64),
                            split=c.get("split", "train"), source_task=c.get("source_task"),
                            corpus_seed=corpus_seed(cfg, seed)))


def expected_scoring(cfg: PipelineConfig, importance: str, seed: int) -> dict[str, Any]:
    """The scoring inputs a pruned run records: corpus and scoring parameters, and its draws: for
    ``random`` the seed of the neurons drawn (the run's seed, so that every seed prunes a different
    random set); with ``corpus.seed: run`` the seed of the corpus drawn (the run's seed too). A record
    whose ``scoring.seed`` is an integer scored every seed on that one corpus draw."""
    return to_jsonable({**cfg.corpus, **cfg.scoring, **_draws(cfg, importance, seed)})


def corpus_seed(cfg: PipelineConfig, seed: int) -> int:
    """The seed of the scoring corpus of a run: ``corpus.seed``, or the run's seed when it is ``run``."""
    value = cfg.corpus.get("seed", 0)
    return seed if value == "run" else value


def _draws(cfg: PipelineConfig, importance: str, seed: int) -> dict[str, int]:
    """What a run's scores draw per seed: ``random_seed`` for random neurons, ``corpus_seed`` for a
    score that reads a corpus drawn per run; empty when the scores do not depend on the run's seed."""
    if importance == "random":
        return {"random_seed": seed}
    if cfg.corpus.get("seed", 0) == "run" and importance != "magnitude":
        return {"corpus_seed": seed}
    return {}


def task_scores(cfg: PipelineConfig, model, tokenizer, task: str, importance: str, progress: bool = True,
                seed: int = 0):
    """Scores of one importance for one task's corpus, cached under ``<out>/scores``; ``seed`` is the
    draw of ``random`` (other scores do not depend on it)."""
    c = cfg.corpus
    source = c.get("source_task") or task
    draw = _draws(cfg, importance, seed)
    score_seed = seed if "random_seed" in draw else corpus_seed(cfg, seed)
    key = cache_key(model=cfg.model, source=source, importance=importance, corpus=c, scoring=_scoring_inputs(cfg),
                    finetune=cfg.finetune if c.get("score_model") == "finetuned" else None, **draw)
    suffix = f"-s{seed}" if draw else ""
    path = Path(cfg.out) / "scores" / f"{source}-{importance}{suffix}-n{c['samples']}-L{c['max_length']}-{key[:8]}.npz"
    if path.exists():
        try:
            cached = load_scores(path)[0]
            expected = (len(ffn_layers(model)), ffn_layers(model)[0][0].out_features)
            if cached.shape != expected:
                raise ObceInputError(f"{path}: cached scores of shape {cached.shape}, expected {expected}")
            return cached
        except ObceInputError as exc:
            logger.warning("%s; recomputing", exc)
    texts, labels = load_corpus(source, n=c["samples"], split=c.get("split", "train"), glue_dir=cfg.glue_dir,
                                seed=corpus_seed(cfg, seed), return_labels=True)
    s = cfg.scoring
    with Timer() as t:
        if importance in GRADIENT_SCORES:
            scores = gradient_scores(importance, model, tokenizer, texts, labels, max_length=c["max_length"],
                                     batch_size=s.get("batch_size", 32), device=s.get("device"))
        else:
            scores = score_neurons(model, tokenizer, texts, importance=importance, max_length=c["max_length"],
                                   representation=s.get("representation", "tokens"),
                                   method=s.get("method", "fast"), batch_size=s.get("batch_size", 32),
                                   device=s.get("device"), seed=score_seed,
                                   cache_dir=Path(cfg.out) / "cache", progress=progress)
    save_scores(path, scores, provenance(params={**c, **s, **draw}, seed=score_seed,
                                         device=s.get("device"),
                                         wall_time_s=t.seconds, model=cfg.model, task=source, importance=importance,
                                         corpus=corpus_hash(texts), n_texts=len(texts), key=key))
    return scores


def finetuned_model(cfg: PipelineConfig, model, tokenizer, task: str, progress: bool = True, seed: int = 0):
    """The pretrained model fine-tuned on the task (with ``seed``, the run's corpus seed), with its head;
    cached as a checkpoint under ``<out>/finetuned/`` keyed by the fine-tuning inputs."""
    return cached_finetune(cfg.model, model, tokenizer, task, cfg.finetune, seed, cfg.glue_dir, Path(cfg.out),
                           progress)


def cached_finetune(model_name: str, model, tokenizer, task: str, finetune: dict[str, Any], seed: int,
                    glue_dir: str | None, out: Path, progress: bool = True):
    """``model`` fine-tuned on ``task`` with ``finetune`` parameters and ``seed``, with its head, in
    eval mode; cached as a checkpoint under ``<out>/finetuned/<task>-<key>`` (its record beside it) and
    reused while the inputs are the same."""
    from transformers import AutoModelForSequenceClassification

    from .glue import finetune_and_evaluate
    from .results import atomic_dir

    finetune = {k: v for k, v in finetune.items() if k != "distill"}  # the teacher itself trains plainly
    key = cache_key(model=model_name, task=task, finetune=finetune, seed=seed)
    path = Path(out) / "finetuned" / f"{task}-{key[:8]}"
    if (path / "config.json").is_file():
        logger.info("reusing fine-tuned %s", path)
        return AutoModelForSequenceClassification.from_pretrained(path).eval()
    result = finetune_and_evaluate(model, task, tokenizer=tokenizer, glue_dir=glue_dir, seed=seed,
                                   progress=progress, keep_model=True, work_parent=Path(out) / ".tmp", **finetune)
    with atomic_dir(path) as tmp:
        result.model.save_pretrained(tmp)
        result.save(tmp / CHECKPOINT_RECORD)
    return result.model.cpu()


#: States of a planned run's record: absent, made with this config's inputs, with other inputs, unreadable.
RECORD_STATES = ("todo", "done", "other", "bad")


def record_state(path: Path, cfg: PipelineConfig) -> tuple[str, str]:
    """The state of one planned run's record (one of :data:`RECORD_STATES`) and why."""
    from .report import validate_record

    if not path.exists():
        return "todo", ""
    try:
        rec = read_json(path)
        validate_record(rec, str(path))
    except ObceInputError as exc:
        return "bad", str(exc)
    diff = record_differences(rec, cfg)
    return ("other", "; ".join(diff)) if diff else ("done", "")


def record_done(path: Path, cfg: PipelineConfig) -> bool:
    """Whether a record exists, is valid, and was made with this config's model, scoring and
    fine-tuning parameters."""
    return record_state(path, cfg)[0] == "done"


def record_differences(rec: dict, cfg: PipelineConfig) -> list[str]:
    """How a valid record's inputs differ from ``cfg``'s (empty: the same run)."""
    from .report import random_draw

    prov = rec["provenance"]
    diff = []
    if prov.get("model") != cfg.model:
        diff.append(f"model: {prov.get('model')!r} in the record, {cfg.model!r} in the config")
    ft = {k: v for k, v in prov.get("params", {}).items() if k in cfg.finetune}
    expected_ft = to_jsonable(cfg.finetune)
    for key in sorted(set(ft) | set(expected_ft)):
        if ft.get(key, "(absent)") != expected_ft.get(key, "(absent)"):
            diff.append(f"finetune.{key}: {ft.get(key, '(absent)')!r} in the record, "
                        f"{expected_ft.get(key, '(absent)')!r} in the config")
    specs = method_specs(cfg)
    if prov.get("method") in METHODS and prov.get("level") != 0:
        spec = specs.get(prov.get("importance"))
        if spec is None:
            return diff + [f"method label {prov.get('importance')!r}: not among the config's methods"]
        for key, want in (("method", spec["name"]), ("method_params", to_jsonable(spec["params"])),
                          ("scoring", expected_method_corpus(cfg, spec, prov.get("seed")))):
            if prov.get(key) != want:
                diff.append(f"{key}: {prov.get(key)!r} in the record, {want!r} in the config")
        return diff
    if prov.get("level") != 0:
        scoring = prov.get("scoring")
        if isinstance(scoring, dict):  # records made before score_model existed all scored the pretrained model
            scoring = {"score_model": "pretrained", **scoring}
            if prov.get("importance") == "random" and "random_seed" not in scoring:
                scoring["random_seed"] = random_draw(rec)  # made before draws followed the run's seed
        expected = expected_scoring(cfg, prov.get("importance"), prov.get("seed"))
        if not isinstance(scoring, dict):
            diff.append("scoring: absent in the record")
        else:
            for key in sorted(set(scoring) | set(expected)):
                if scoring.get(key, "(absent)") != expected.get(key, "(absent)"):
                    diff.append(f"scoring.{key}: {scoring.get(key, '(absent)')!r} in the record, "
                                f"{expected.get(key, '(absent)')!r} in the config")
    return diff


def check_records(cfg: PipelineConfig, force: bool = False) -> dict[tuple[str, str, int, int], str]:
    """The state of every planned run's record, checked before any compute.

    Raises
    ------
    ObceInputError
        Some records were made with other inputs and ``force`` is not set: they are never replaced
        silently (the message names them and the differences).
    """
    states, other = {}, []
    for run in planned_runs(cfg):
        path = record_path(cfg.out, *run)
        state, why = record_state(path, cfg)
        states[run] = state
        if state == "other":
            other.append(f"{path} ({why})")
    if other and not force:
        shown = "\n  ".join(other[:5]) + (f"\n  ... and {len(other) - 5} more" if len(other) > 5 else "")
        raise ObceInputError(f"{len(other)} record(s) under {cfg.out} were made with other inputs than this "
                             f"config; they are kept. Write to another `out:`, or pass --force to replace them:"
                             f"\n  {shown}")
    return states


def set_aside(path: Path, why: str) -> Path:
    """Rename an unreadable record to ``<name>.bad[-N]`` beside it (kept for inspection), with a warning."""
    target = path.with_name(path.name + ".bad")
    n = 1
    while target.exists():
        target = path.with_name(f"{path.name}.bad-{n}")
        n += 1
    os.replace(path, target)
    logger.warning("%s; set aside as %s, rerunning", why, target.name)
    return target


def _scoring_inputs(cfg: PipelineConfig) -> dict[str, Any]:
    """The scoring parameters that change scores (not the device or batch size)."""
    return {k: v for k, v in cfg.scoring.items() if k not in ("device", "batch_size")}
