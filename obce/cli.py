"""The ``obce`` command: score, prune, glue, pipeline, params.

Exit codes: 0 success; 2 usage or input error (the message on stderr names the bad input);
1 any other failure.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from .errors import ObceInputError

logger = logging.getLogger("obce")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``obce`` console script."""
    from .paths import absolutize_env

    absolutize_env()  # before anything changes directory (notebook kernels run in notebooks/)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # obce's own progress messages (cache reuse, skipped runs) are shown unless --quiet
    logging.getLogger("obce").setLevel(logging.WARNING if args.quiet else logging.DEBUG if args.verbose
                                       else logging.INFO)
    try:
        check_numbers(args)
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit (stdout to a pipe is block-buffered)
    except ObceInputError as exc:
        print(f"obce {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"obce {args.command}: interrupted; finished results are kept, rerun to resume", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the reader stopped early (`obce ... | head`): nothing went wrong here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception as exc:  # noqa: BLE001 - reported, exit 1
        logger.debug("failure", exc_info=True)
        print(f"obce {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


#: Numeric options and what they must be: (integer?, smallest allowed, strictly above it?).
NUMBERS = {"seed": (True, 0, False), "samples": (True, 2, False), "max_length": (True, 1, False),
           "batch_size": (True, 1, False), "max_train_samples": (True, 1, False), "max_eval_samples": (True, 1, False),
           "epochs": (False, 0, True), "lr": (False, 0, True), "keep_fraction": (False, 0, True), "layer": (True, 0, False)}


def check_numbers(args) -> None:
    """Refuse a numeric option that is NaN, infinite, negative or otherwise out of range, naming it,
    before any command runs (argparse's ``float`` takes ``inf`` and ``nan``)."""
    import math

    for name, (integer, low, strict) in NUMBERS.items():
        value = getattr(args, name, None)
        if value is None:
            continue
        option = "--" + name.replace("_", "-")
        if not math.isfinite(value) or (value <= low if strict else value < low):
            raise ObceInputError(f"{option} {value!r}: expected a finite {'integer' if integer else 'number'} "
                                 f"{'above' if strict else 'of at least'} {low}")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every ``obce`` command."""
    p = argparse.ArgumentParser(prog="obce", description="Prune BERT FFN neurons by persistent homology "
                                "(OBCE) and compare on GLUE.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging of obce and its libraries")
    p.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("score", help="score every FFN neuron of a model on a GLUE corpus")
    _model_arg(s)
    s.add_argument("--task", required=True, help="GLUE task whose sentences form the corpus")
    _glue_arg(s)
    s.add_argument("--split", default="train")
    s.add_argument("--samples", type=int, default=256, help="corpus size N (default 256)")
    s.add_argument("--max-length", type=int, default=64, help="tokens per sentence L (default 64)")
    s.add_argument("--units", choices=["ffn"], default="ffn", help="which neurons (FFN intermediate)")
    s.add_argument("--importance", default="merge_radius",
                   help="merge_radius (default), total_persistence, mean_death, mean_abs_activation, "
                        "activation_variance, magnitude, random")
    s.add_argument("--representation", choices=["tokens", "mean", "cls"], default="tokens")
    s.add_argument("--method", choices=["fast", "gudhi"], default="fast")
    s.add_argument("--device", default=None, help="cpu or cuda (default: cpu)")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--seed", type=int, default=0, help="corpus sampling seed (and random scores)")
    s.add_argument("--cache-dir", default=None, help="per-layer cache (default: OUT/cache)")
    s.add_argument("--recompute", action="store_true", help="ignore cached layers")
    s.add_argument("--out", required=True, help="output directory (scores.npz, scores.json)")
    s.add_argument("--overwrite", action="store_true",
                   help="replace scores in --out that were made with other inputs")
    s.set_defaults(func=cmd_score)

    r = sub.add_parser("prune", help="prune a model with saved scores")
    _model_arg(r)
    r.add_argument("--scores", help="directory or .npz written by `obce score` (with --level or --keep-fraction)")
    g = r.add_mutually_exclusive_group(required=True)
    g.add_argument("--level", type=int, help="0-3: keep neurons above the level-th quartile per layer")
    g.add_argument("--keep-fraction", type=float, help="fraction of neurons kept per layer, in (0, 1]")
    g.add_argument("--flops", type=float, help="retraining-free: heads and neurons of a model fine-tuned on --task, "
                   "searched under this fraction of its FLOPs (Kwon et al.), in (0, 1]")
    kw = r.add_argument_group("with --flops (a model fine-tuned on the task, e.g. by `obce glue --save-model`)")
    kw.add_argument("--task", help="the GLUE task the model was fine-tuned on")
    kw.add_argument("--score", default="fisher", help="unit score: fisher (default), fisher_text, merge_radius, "
                    "activation_variance, random")
    kw.add_argument("--variant", choices=["search", "rearranged", "tuned"], default="tuned",
                    help="the search alone, with mask rearrangement, or with rearrangement and mask tuning (default)")
    kw.add_argument("--samples", type=int, default=512, help="training texts the scores and tuning read (default 512)")
    kw.add_argument("--max-length", type=int, default=64)
    kw.add_argument("--seed", type=int, default=0, help="the draw of the texts")
    _glue_arg(r)
    r.add_argument("--out", required=True, help="directory of the pruned checkpoint")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out directory that is not a pruned checkpoint")
    r.set_defaults(func=cmd_prune)

    f = sub.add_parser("glue", help="fine-tune and evaluate a model on a GLUE task")
    _model_arg(f)
    f.add_argument("--task", required=True)
    _glue_arg(f)
    f.add_argument("--epochs", type=float, default=3)
    f.add_argument("--lr", type=float, default=2e-5)
    f.add_argument("--batch-size", type=int, default=32)
    f.add_argument("--max-length", type=int, default=128)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--max-train-samples", type=int, default=None)
    f.add_argument("--max-eval-samples", type=int, default=None)
    f.add_argument("--device", default=None)
    f.add_argument("--precision", choices=("fp32", "bf16"), default=None,
                   help="bf16 autocast or fp32 (default: bf16 where the CPU or GPU computes it natively)")
    f.add_argument("--out", required=True, help="JSON record to write")
    f.add_argument("--save-model", metavar="DIR", help="also save the fine-tuned model with its head (a new directory)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing --out record of other inputs")
    f.set_defaults(func=cmd_glue)

    pl = sub.add_parser("pipeline", help="score -> prune -> glue for tasks x levels x seeds (resumable)")
    pl.add_argument("--config", required=True, nargs="+", metavar="CONFIG",
                    help="YAML file(s) with PipelineConfig keys; several run one after the other")
    pl.add_argument("--dry-run", action="store_true", help="list the planned runs and which are done")
    pl.add_argument("--force", action="store_true",
                    help="rerun and replace records that were made with other inputs (default: refuse)")
    only = pl.add_argument_group("restrict every config to some of its runs (same records, same provenance)")
    only.add_argument("--tasks", nargs="+", metavar="TASK")
    only.add_argument("--importances", nargs="+", metavar="IMPORTANCE")
    only.add_argument("--levels", nargs="+", type=int, metavar="LEVEL")
    only.add_argument("--seeds", nargs="+", type=int, metavar="SEED")
    _executor_args(pl)
    pl.set_defaults(func=cmd_pipeline)

    pt = sub.add_parser("posttrain", help="retraining-free pruning: prune a fine-tuned model, compensate, "
                        "evaluate on dev; one JSONL table per protocol (resumable)")
    pt.add_argument("--config", required=True, nargs="+", metavar="CONFIG", help="YAML file(s) with PostTrainConfig keys")
    pt.add_argument("--dry-run", action="store_true", help="count the planned cells and those done")
    pt.add_argument("--force", action="store_true", help="add rows to a table written with other inputs")
    pt.add_argument("--tasks", nargs="+", metavar="TASK", help="only these of each config's tasks")
    pt.add_argument("--draws", nargs="+", type=int, metavar="DRAW", help="only these corpus draws")
    pt.add_argument("--scores", nargs="+", metavar="SCORE", help="only these scores (a search config's)")
    _executor_args(pt)
    pt.set_defaults(func=cmd_posttrain)

    ex = sub.add_parser("explain", help="the atlas entry of a neuron (or a layer's top and bottom neurons by r_f): "
                        "its scores, the sentence r_f isolates, its top tokens and its label information")
    _model_arg(ex)
    ex.add_argument("--task", required=True, help="GLUE task whose training sentences (and labels) are the corpus")
    _glue_arg(ex)
    ex.add_argument("--layer", type=int, required=True)
    ex.add_argument("--neuron", type=int, nargs="*", help="neuron indices (default: the 3 highest and lowest by r_f)")
    ex.add_argument("--samples", type=int, default=256)
    ex.add_argument("--max-length", type=int, default=64)
    ex.add_argument("--seed", type=int, default=0)
    ex.set_defaults(func=cmd_explain)

    b = sub.add_parser("book", help="execute every notebook with a Papermill profile and build the book")
    b.add_argument("--profile", default="quick", help="params/<profile>.yaml (quick: CPU in minutes; full: GPU)")
    b.add_argument("--root", default=".", help="repository root")
    b.add_argument("--only", nargs="*", help="notebook stems to execute (default all)")
    b.add_argument("--no-render", action="store_true", help="execute only, skip jupyter-book build")
    b.add_argument("--render-only", action="store_true", help="re-render the last executed notebooks")
    b.set_defaults(func=cmd_book)

    rp = sub.add_parser("report", help="summarize GLUE records: mean ± std per task/level/score, paired verdicts")
    rp.add_argument("results", nargs="?", default="results", help="directory of GLUE records (searched recursively)")
    view = rp.add_mutually_exclusive_group()  # default: the score table and r_f's paired verdicts
    view.add_argument("--by-level", action="store_true",
                      help="one row per task and level, one column per score, instead of the summary and verdicts")
    view.add_argument("--averages", action="store_true",
                      help="one row per level, one column per score: the mean over the tasks (GLUE-style average)")
    view.add_argument("--pooled", action="store_true",
                      help="r_f (or --score) against each other score, pooled over tasks, levels and seeds: "
                           "paired runs and (task, level) cells won, sign tests")
    view.add_argument("--findings", action="store_true",
                      help="the README's two sentences of findings, computed from the records (needs the GLUE "
                           "data for the majority-class baselines)")
    rp.add_argument("--figure", metavar="PNG", help="also write the levels figure (dev score per level, one panel "
                    "per task) of a directory holding one protocol's records")
    rp.add_argument("--overwrite", action="store_true", help="replace an existing --figure file")
    rp.add_argument("--glue-dir", default=None, help="local GLUE directory for --findings and --figure "
                    "(default $OBCE_GLUE_DIR, else the hub)")
    rp.add_argument("--methods", metavar="SCORES_DIR",
                    help="RESULTS holds other compression methods' records: compare them with the importance "
                         "scores and the unpruned model of SCORES_DIR (same fine-tuning) at equal budgets; with "
                         "--findings the README's two sentences, with --figure parameters and run time against the "
                         "GLUE average")
    rp.add_argument("--tables", nargs="+", metavar="DIR", default=[],
                    help="with --findings on a retraining-free table (RESULTS/posttrain.jsonl): more such tables "
                         "read with it, e.g. another task's protocol (results/posttrain_sst2)")
    rp.add_argument("--score", default="merge_radius", help="the score --pooled compares with the others")
    rp.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks (and, with --averages, "
                    "the average over exactly these)")
    rp.set_defaults(func=cmd_report)

    pa = sub.add_parser("params", help="parameter accounting of pruned architectures (no weights needed)")
    pa.add_argument("--model", nargs="+", default=["bert-base-uncased", "bert-large-uncased"])
    pa.add_argument("--levels", type=int, nargs="+", default=[0, 1, 2, 3])
    pa.set_defaults(func=cmd_params)
    return p


def _model_arg(p):
    p.add_argument("--model", default="minilm", help="'minilm' (embedded), a checkpoint directory or a hub id")


def _glue_arg(p):
    p.add_argument("--glue-dir", default=None, help="local GLUE directory (default $OBCE_GLUE_DIR, else the hub)")


def cmd_score(args) -> None:
    """``obce score``: score every FFN neuron of a model on a GLUE corpus; write ``scores.npz`` and ``scores.json``."""
    from .data import check_corpus_size, get_task, resolve_glue_dir
    from .paths import output_lock
    from .scoring import IMPORTANCES

    out = Path(args.out)
    # every input is checked before any compute, also those random/magnitude scores do not read
    get_task(args.task)
    check_corpus_size(args.samples)
    resolve_glue_dir(args.glue_dir)
    if args.importance not in IMPORTANCES:
        hint = (" (it reads the task's loss: score a fine-tuned model through `obce pipeline` with corpus.score_model: "
                "finetuned, or `obce posttrain`)" if args.importance in ("fisher", "taylor") else "")
        raise ObceInputError(f"--importance {args.importance!r}: expected one of {', '.join(IMPORTANCES)}{hint}")
    if out.exists() and not out.is_dir():
        raise ObceInputError(f"--out {args.out!r} is an existing file; expected a directory")
    with output_lock(out):  # one writer: a second `obce score` into this --out is refused while this one runs
        _score_into(args, out)


def _score_into(args, out: Path) -> None:
    """``obce score``'s work, under the lock of ``out``."""
    from .data import load_corpus
    from .experiments.resume import refuse_other_inputs
    from .files import Timer, corpus_hash, write_json
    from .models import check_device, load_config, load_model, source_fingerprint
    from .results import provenance
    from .scoring import save_scores, score_neurons, summarize_scores

    check_device(args.device)
    load_config(args.model)  # a BERT-family encoder, before its files are read for the fingerprint
    params = {k: v for k, v in vars(args).items() if k not in ("func", "verbose", "quiet", "command", "overwrite")}
    params["model_fingerprint"] = source_fingerprint(args.model)
    if (out / "scores.npz").exists() and not (out / "scores.json").exists() and not args.overwrite:
        raise ObceInputError(f"{out / 'scores.npz'} exists without the scores.json that `obce score` writes beside "
                             "it: it is not an output of this command; pass --overwrite to replace it, or name "
                             "another --out")
    refuse_other_inputs(out / "scores.json", params, SCORE_RUN_KEYS, args.overwrite)
    model, tok = load_model(args.model)
    needs_corpus = args.importance not in ("random", "magnitude")
    texts = load_corpus(args.task, n=args.samples, split=args.split, glue_dir=args.glue_dir,
                        seed=args.seed) if needs_corpus else None
    with Timer() as t:
        scores = score_neurons(model, tok, texts, importance=args.importance, max_length=args.max_length,
                               representation=args.representation, method=args.method,
                               batch_size=args.batch_size, device=args.device, seed=args.seed,
                               cache_dir=args.cache_dir or out / "cache", recompute=args.recompute)
    prov = provenance(params=params, seed=args.seed, device=args.device, wall_time_s=t.seconds,
                      model=args.model, importance=args.importance, corpus=corpus_hash(texts) if texts else None,
                      n_texts=len(texts) if texts else 0)
    save_scores(out / "scores.npz", scores, prov)
    summary = summarize_scores(scores)
    write_json(out / "scores.json", {"kind": "scores", "shape": list(scores.shape), "importance": args.importance,
                                     "per_layer": summary, "provenance": prov})
    print(f"{args.importance} of {scores.shape[0]} layers x {scores.shape[1]} neurons "
          f"({t.seconds:.1f} s) -> {out / 'scores.npz'}")
    print(f"{'layer':>5} {'min':>10} {'Q1':>10} {'median':>10} {'Q3':>10} {'max':>10}")
    for row in summary:
        print(f"{row['layer']:>5} " + " ".join(f"{row[k]:>10.4g}" for k in ("min", "q1", "median", "q3", "max")))


#: The parameters that make two outputs "of the same inputs" (not the device, batch size or cache).
SCORE_RUN_KEYS = ("model", "model_fingerprint", "task", "split", "samples", "max_length", "units", "importance",
                  "representation", "method", "seed", "glue_dir")
GLUE_RUN_KEYS = ("task", "epochs", "lr", "batch_size", "max_length", "max_train_samples", "max_eval_samples")


def cmd_prune(args) -> None:
    """``obce prune``: prune a model with saved scores into a checkpoint directory."""
    from .models import resolve_model_source
    from .paths import check_output_dir, output_lock

    source = resolve_model_source(args.model)
    if args.flops is None and args.scores is None:
        raise ObceInputError("--scores: required with --level or --keep-fraction (a directory or .npz written by "
                             "`obce score`)")
    if args.flops is not None:
        _check_flops_args(args)
    out = check_output_dir(args.out, "obce_prune.json", inputs=[p for p in (args.scores, source) if p],
                           overwrite=args.overwrite)
    with output_lock(out):
        (_search_into if args.flops is not None else _prune_into)(args, out)


def _check_flops_args(args) -> None:
    """``obce prune --flops``'s inputs, before any compute."""
    from .data import check_corpus_size, get_task, resolve_glue_dir
    from .unit_scores import UNIT_SCORES

    if args.task is None:
        raise ObceInputError("--flops needs --task, the GLUE task the model was fine-tuned on")
    get_task(args.task)
    if args.score not in UNIT_SCORES:
        raise ObceInputError(f"--score {args.score!r}: expected one of {sorted(UNIT_SCORES)}")
    if args.scores is not None:
        raise ObceInputError("--scores: not read with --flops (the scores of heads and neurons are computed on the "
                             "fine-tuned model; choose them with --score)")
    if not 0 < args.flops <= 1:
        raise ObceInputError(f"--flops {args.flops}: expected a fraction of the model's FLOPs in (0, 1]")
    check_corpus_size(args.samples)
    resolve_glue_dir(args.glue_dir)


def _search_into(args, out: Path) -> None:
    """``obce prune --flops``: Kwon's search (and rearrangement, tuning) by a score, the model pruned
    physically, saved with its per-layer widths, reloaded and evaluated on dev."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from .data import get_task, load_corpus
    from .experiments.search_protocol import masks_of
    from .files import atomic_dir, write_json
    from .glue import encode_dev, evaluate
    from .models import load_model, resolve_model_source
    from .pruning import count_parameters
    from .results import provenance
    from .search import average_length, check_flops, flops_of, search, tune_masks
    import numpy as np

    from . import units
    from .unit_scores import mask_gradients, unit_scores

    info = get_task(args.task)
    _, tok = load_model(args.model)  # a BERT-family checkpoint, readable
    source = resolve_model_source(args.model)
    model, loading = AutoModelForSequenceClassification.from_pretrained(source, output_loading_info=True)
    if loading.get("missing_keys") or model.config.num_labels != info.num_labels:
        raise ObceInputError(f"--model {args.model}: no head fine-tuned on {info.name} ({info.num_labels} output(s)); "
                             "fine-tune it first, e.g. `obce glue --task ... --save-model DIR`")
    model.eval()
    dev = encode_dev(args.task, tok, args.max_length, args.glue_dir)
    seq_len = average_length([r["input_ids"] for r in next(iter(dev.values()))[0]])
    heads, neurons = units.layer_widths(model)
    h, n = units.unit_macs(seq_len, model.config.hidden_size, units.head_dim(model))
    check_flops(args.flops, len(heads), heads[0], neurons[0], h, n, what="--flops")
    texts, labels = load_corpus(args.task, n=args.samples, split="train", glue_dir=args.glue_dir, seed=args.seed,
                                return_labels=True)
    grads = mask_gradients(model, tok, texts, labels, args.max_length)
    scores = unit_scores(args.score, model, tok, texts, labels, max_length=args.max_length, seed=args.seed, grads=grads)
    (hm, nm), searched = masks_of(args.variant, args.score, scores, grads, args.flops, seq_len, model)
    hsc, nsc, tuning = hm.astype(float), nm.astype(float), None
    if args.variant == "tuned":
        teacher = search(*searched, args.flops ** 0.5, h, n)
        hsc, nsc, tuning = tune_masks(model, tok, texts, hm, nm, *teacher, max_length=args.max_length)
    keep_h, keep_n = [np.flatnonzero(m) for m in hm], [np.flatnonzero(m) for m in nm]
    small = units.prune_units(model, keep_h, keep_n, [s[k] for s, k in zip(hsc, keep_h)],
                              [s[k] for s, k in zip(nsc, keep_n)])
    before, after = count_parameters(model.base_model), count_parameters(small.base_model)
    fraction = flops_of(hm, nm, seq_len, model.config.hidden_size, units.head_dim(model))
    hf_logging.disable_progress_bar()
    with atomic_dir(out, "the pruned checkpoint") as tmp:
        units.save(small, tmp, tok)
        write_json(tmp / "obce_prune.json", {
            "kind": "pruned_model", "parameters_before": before, "parameters_after": after,
            "flops_fraction": fraction, "heads": [len(k) for k in keep_h], "intermediate_sizes": [len(k) for k in keep_n],
            "tuning": tuning,
            "provenance": provenance(params=dict(flops=args.flops, score=args.score, variant=args.variant, task=info.name,
                                                 samples=args.samples, max_length=args.max_length, seed=args.seed),
                                     model=args.model)})
    reloaded = units.load(out)
    metrics = evaluate(reloaded, tok, args.task, dev)
    print(f"FLOPs (heads and neurons, at the dev set's mean length {seq_len:.1f}): {fraction:.4f} of the model's; "
          f"heads per layer {[len(k) for k in keep_h]}, FFN widths {[len(k) for k in keep_n]}; encoder parameters "
          f"{before:,} -> {after:,}; saved to {out} (reload: obce.units.load)")
    print(f"{info.name} dev after reloading: " + ", ".join(f"{k}={v:.4f}" if v is not None else f"{k}=undefined"
                                                         for k, v in metrics.items()))


def _prune_into(args, out: Path) -> None:
    """``obce prune``'s work, under the lock of ``out``."""
    from .files import atomic_dir, write_json
    from .models import load_model
    from .pruning import count_parameters, prune
    from .results import provenance
    from .scoring import load_scores

    scores, meta = load_scores(args.scores)
    model, tok = load_model(args.model)
    small = prune(model, scores, level=args.level, keep_fraction=args.keep_fraction)
    before, after = count_parameters(model), count_parameters(small)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a second's "Writing model shards" bar
    with atomic_dir(out, "the pruned checkpoint") as tmp:  # a killed run leaves the old one or none, never half
        small.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json(tmp / "obce_prune.json", {
            "kind": "pruned_model", "parameters_before": before, "parameters_after": after,
            "intermediate_size": small.config.intermediate_size,
            "provenance": provenance(params=dict(level=args.level, keep_fraction=args.keep_fraction,
                                                 scores=str(args.scores)), model=args.model, scores_meta=meta)})
    print(f"parameters: {before:,} -> {after:,} ({100 * (1 - after / before):.2f}% fewer); "
          f"intermediate_size {model.config.intermediate_size} -> {small.config.intermediate_size}; saved to {out}")


def cmd_glue(args) -> None:
    """``obce glue``: fine-tune and evaluate a model on a GLUE task; write its record."""
    from .data import get_task, resolve_glue_dir
    from .experiments.resume import refuse_other_inputs
    from .models import check_device, load_config, source_fingerprint
    from .paths import check_output_file, output_lock

    out = check_output_file(args.out)  # every check before the fine-tuning, which takes minutes
    if args.save_model is not None:
        from .paths import check_output_dir
        from .results import CHECKPOINT_RECORD

        check_output_dir(args.save_model, CHECKPOINT_RECORD, inputs=[args.model], overwrite=args.overwrite,
                         option="--save-model")
    resolve_glue_dir(args.glue_dir)
    check_device(args.device)
    load_config(args.model)  # a BERT-family encoder, as score and prune require
    params = {**vars(args), "task": get_task(args.task).name, "model_fingerprint": source_fingerprint(args.model)}
    with output_lock(out):
        refuse_other_inputs(out, params, ("model", "model_fingerprint", *GLUE_RUN_KEYS, "seed"), args.overwrite)
        _glue_into(args, out)


def _glue_into(args, out: Path) -> None:
    """``obce glue``'s work, under the lock of ``out``."""
    from .glue import finetune_and_evaluate
    from .results import CHECKPOINT_RECORD

    res = finetune_and_evaluate(args.model, args.task, glue_dir=args.glue_dir, epochs=args.epochs, lr=args.lr,
                                batch_size=args.batch_size, max_length=args.max_length, seed=args.seed,
                                max_train_samples=args.max_train_samples, max_eval_samples=args.max_eval_samples,
                                device=args.device, precision=args.precision, work_parent=out.parent,
                                keep_model=args.save_model is not None)
    if args.save_model is not None:
        from .files import atomic_dir

        from .models import load_model

        _, tok = load_model(args.model)
        with atomic_dir(Path(args.save_model), "the fine-tuned model") as tmp:
            res.model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            res.save(tmp / CHECKPOINT_RECORD)
    res.save(out)
    print(f"{res.task}: " + ", ".join(f"{k}={v:.4f}" if v is not None else f"{k}=undefined"
                                      for k, v in res.metrics.items()) + f" -> {out}")


def _executor_args(p) -> None:
    """The options of a grid command's executor (:mod:`obce.experiments.executor`)."""
    ex = p.add_argument_group("where the cells run (default: one after another in this process)")
    ex.add_argument("--executor", choices=["sequential", "ray"], default="sequential",
                    help="ray: the cells still to do as Ray tasks, on a local Ray or a cluster (pip install \"obce[ray]\")")
    ex.add_argument("--address", default=None,
                    help="a Ray cluster's head (host:port, ray://host:port or auto; default $RAY_ADDRESS, else a local Ray)")
    ex.add_argument("--cpus-per-cell", type=float, default=1.0, help="CPUs (torch threads) per cell (default 1)")
    ex.add_argument("--gpus-per-cell", type=float, default=0.0,
                    help="GPUs per cell, fractional (0.125: eight cells share a GPU; default 0)")
    ex.add_argument("--num-cpus", type=int, default=None, help="CPUs of a local Ray (default: the machine's)")


def _ray_settings(args):
    """The Ray settings of a grid command's options, or ``None`` for the sequential executor (whose
    Ray options are refused rather than ignored)."""
    from .experiments.executor import RaySettings, check_settings

    if args.executor != "ray":
        given = [f"--{k.replace('_', '-')}" for k in ("address", "num_cpus") if getattr(args, k) is not None]
        given += [f"--{k.replace('_', '-')}" for k, d in (("cpus_per_cell", 1.0), ("gpus_per_cell", 0.0))
                  if getattr(args, k) != d]
        if given:
            raise ObceInputError(f"{', '.join(given)}: options of the Ray executor; add --executor ray")
        return None
    settings = RaySettings(address=args.address, cpus_per_cell=args.cpus_per_cell, gpus_per_cell=args.gpus_per_cell,
                           num_cpus=args.num_cpus)
    check_settings(settings)
    return settings


def _require_full_data(configs: dict, dry_run: bool) -> None:
    """Every config of a grid command reads the full GLUE data, checked before any of them runs (a dry
    run only plans, so the embedded sample does for it)."""
    from .data import require_full_data

    if not dry_run:
        for path, cfg in configs.items():
            require_full_data(cfg.glue_dir, f"{path}: glue_dir")


def cmd_pipeline(args) -> None:
    """``obce pipeline``: plan, run or resume the GLUE protocol of one or more configs."""
    from .experiments.config import PipelineConfig, restrict
    from .experiments.glue_protocol import check_records, planned_runs, record_path, run_pipeline

    only = dict(tasks=args.tasks, importances=args.importances, levels=args.levels, seeds=args.seeds)
    configs = {path: restrict(PipelineConfig.from_yaml(path), **only)  # all checked before any run
               for path in args.config}
    ray = _ray_settings(args)
    _require_full_data(configs, args.dry_run)
    states = {path: check_records(cfg, force=args.force or args.dry_run) for path, cfg in configs.items()}
    for path, cfg in configs.items():
        runs = planned_runs(cfg)
        state = states[path]
        done = [r for r in runs if state[r] == "done"]
        print(f"{path}: {len(runs)} planned runs, {len(done)} already done")
        if args.dry_run:
            for r in runs:
                print(f"{state[r]:<5} " + str(record_path(cfg.out, *r)))
            continue
        paths = run_pipeline(cfg, force=args.force, executor=args.executor, ray=ray)
        print(f"{path}: {len(paths)} records under {Path(cfg.out) / 'glue'}")


def cmd_posttrain(args) -> None:
    """``obce posttrain``: plan, run or resume the retraining-free protocols of one or more configs (a
    config with a ``flops:`` key is the search protocol over heads and neurons)."""
    from .experiments import posttrain, search_protocol
    from .experiments.config import SearchConfig, posttrain_config, restrict
    from .results import POSTTRAIN_TABLE, SEARCH_TABLE

    # all checked before any run
    only = {k: v for k, v in dict(tasks=args.tasks, draws=args.draws, scores=args.scores).items() if v is not None}
    configs = {path: restrict(posttrain_config(path), **only) for path in args.config}
    kinds = {path: search_protocol if isinstance(cfg, SearchConfig) else posttrain for path, cfg in configs.items()}
    ray = _ray_settings(args)
    _require_full_data(configs, args.dry_run)
    for path, cfg in configs.items():
        if isinstance(cfg, SearchConfig):
            if ray is not None:
                raise ObceInputError(f"{path}: the search protocol (a config with flops:) runs with the sequential "
                                     "executor only; leave --executor ray out")
            search_protocol.check_budgets(cfg, *_budget_inputs(cfg))
    done = {path: kinds[path].check_table(cfg, force=args.force or args.dry_run) for path, cfg in configs.items()}
    for path, cfg in configs.items():
        kind = kinds[path]
        planned = [kind.cell_key(c) for c in kind.cells(cfg)]
        table = SEARCH_TABLE if kind is search_protocol else POSTTRAIN_TABLE
        print(f"{path}: {len(planned)} planned cells, {sum(c in done[path] for c in planned)} already done "
              f"-> {Path(cfg.out) / table}")
        if not args.dry_run:
            if kind is search_protocol:
                search_protocol.run_search_protocol(cfg, force=args.force)
            else:
                posttrain.run_posttrain(cfg, force=args.force, executor=args.executor, ray=ray)
            print(f"{path}: done")


def _budget_inputs(cfg) -> tuple:
    """The model (its sizes) and each task's mean dev length, which a search config's budgets need."""
    from .glue import encode_dev
    from .models import load_model
    from .search import average_length

    model, tok = load_model(cfg.model)
    lengths = {}
    for task in cfg.all_of("tasks"):
        dev = encode_dev(task, tok, cfg.finetune["max_length"], cfg.glue_dir, max_samples=cfg.finetune.get("max_eval_samples"))
        lengths[task] = average_length([r["input_ids"] for r in next(iter(dev.values()))[0]])
    return model, lengths


def cmd_explain(args) -> None:
    """``obce explain``: the atlas entries of neurons of one layer."""
    from .data import get_task, load_corpus
    from .explain import neuron_atlas
    from .models import encoder_layers, load_model

    info = get_task(args.task)
    model, tok = load_model(args.model)
    n_layers = len(encoder_layers(model))
    if not 0 <= args.layer < n_layers:
        raise ObceInputError(f"--layer {args.layer}: the model has layers 0..{n_layers - 1}")
    texts, labels = load_corpus(args.task, n=args.samples, split="train", glue_dir=args.glue_dir, seed=args.seed,
                                return_labels=True)
    entries = neuron_atlas(model, tok, texts, labels, args.layer, args.neuron, max_length=args.max_length,
                           regression=info.is_regression)
    measure = "|Spearman| with the score" if info.is_regression else "AUC (oriented)"
    for e in entries:
        print(f"\n## layer {e['layer']}, neuron {e['neuron']}")
        for name, value in e["scores"].items():
            print(f"  {name:<20} {value:>10.4g}   (percentile {e['percentiles'][name]:5.1f} in the layer)")
        print(f"  label information   {e['label_information']:>10.3f}   ({measure}, {len(texts)} {info.name} "
              "training texts)")
        iso = e["isolated_sentence"]
        if not e["scores"].get("merge_radius"):  # every point of the cloud is the same: nothing stands apart
            print("  r_f isolates        nothing (r_f is 0: the neuron gives every sentence the same output)")
        else:
            print(f"  r_f isolates        {iso if iso is not None else '(a group of sentences, not one)'}"[:200])
        print("  top tokens:")
        for r in e["top_tokens"]:
            print(f"    {r['activation']:8.3f}  {r['snippet']}")


def cmd_book(args) -> None:
    """``obce book``: execute the notebooks with a profile and build the book."""
    from .book import build_book

    out = build_book(args.root, profile=args.profile, only=args.only, render=not args.no_render,
                     execute=not args.render_only)
    print(f"book built: {out}")


def cmd_report(args) -> None:
    """``obce report``: summaries, verdicts, findings and figures of a directory of records or tables."""
    from .analysis.tables import average_table, levels_table, markdown_summary, markdown_table, pooled_table
    from .data import get_task
    from .results import POSTTRAIN_TABLE, finetune_protocol, load_records, record_dir

    if not Path(args.results).is_dir():
        raise ObceInputError(f"results directory {args.results!r} does not exist")
    if args.figure:
        from .paths import check_output_file

        check_output_file(args.figure, "--figure")
        if Path(args.figure).exists() and not args.overwrite:
            raise ObceInputError(f"--figure {args.figure!r} exists; pass --overwrite to replace it")
    if args.methods:
        _report_methods(args)
        return
    table = (Path(args.results) / POSTTRAIN_TABLE).is_file()
    if args.tables and not (args.findings and table):
        raise ObceInputError(f"--tables needs --findings and a retraining-free table {args.results}/{POSTTRAIN_TABLE}")
    if args.findings and table:
        _report_posttrain(args)
        return
    records = load_records(args.results)
    if args.tasks:
        for task in args.tasks:
            get_task(task)  # an unknown name fails here, not as an empty selection
        records = [r for r in records if r["task"] in args.tasks]
    if not records:
        raise ObceInputError(f"no GLUE records under {args.results!r}"
                             + (f" of tasks {args.tasks}" if args.tasks else ""))
    sections: dict[tuple[str, str], list] = {}  # one per results directory and fine-tuning protocol
    for rec in records:
        sections.setdefault((record_dir(rec), finetune_protocol(rec)), []).append(rec)
    if args.findings or args.figure:
        _report_one_protocol(args, records, sections)
        return
    print(f"{len(records)} records under {args.results}, {len({p for _, p in sections})} fine-tuning "
          f"protocol(s), {len(sections)} section(s)")
    for (where, proto), recs in sorted(sections.items()):
        print(f"\n## {where}: {len(recs)} records, {proto}\n")
        if args.pooled:
            if args.score not in {r["provenance"].get("importance", "none") for r in recs}:
                print(f"no {args.score} records here")
                continue
            pooled = pooled_table(recs, a=args.score)
            print(markdown_table(pooled) if len(pooled) else f"nothing to pair {args.score} with")
        elif args.averages:
            tasks = sorted({r["task"] for r in recs})
            if args.tasks and set(tasks) != set(args.tasks):
                print(f"only tasks {tasks} here: no average over {sorted(args.tasks)}")
                continue
            averages = average_table(recs)
            print(f"average over {', '.join(tasks)}\n")
            print(markdown_table(averages.reset_index()) if len(averages) else "no pruned models")
        elif args.by_level:
            by_level = levels_table(recs)
            print(markdown_table(by_level.reset_index()) if len(by_level) else "no pruned models")
        else:
            print(markdown_summary(recs))


def _report_methods(args) -> None:
    """``obce report METHODS_DIR --methods SCORES_DIR``: the comparison of compression methods."""
    from .analysis.methods import compare_methods, method_table, methods_findings
    from .analysis.stats import majority_floors
    from .analysis.tables import markdown_table
    from .results import load_records

    if not Path(args.methods).is_dir():
        raise ObceInputError(f"--methods {args.methods!r}: the scores' records directory does not exist")
    found = {d: load_records(d) for d in (args.methods, args.results)}
    for d, recs in found.items():
        if not recs:
            raise ObceInputError(f"no GLUE records under {d!r}")
    floors = majority_floors({r["task"] for recs in found.values() for r in recs}, args.glue_dir)
    cmp = compare_methods(found[args.methods], found[args.results], floors)
    if args.findings:
        print("> " + methods_findings(cmp["facts"]))
    elif not args.figure:
        print(markdown_table(method_table(cmp["points"], cmp["records"]).round(
            {"parameters (M)": 2, "GLUE average": 1, "sd over seeds": 1, "disk (MB)": 1, "run time (min)": 1})))
    if args.figure:
        from . import plots
        from .analysis.methods import measured_latencies
        from .files import atomic_path

        plots.set_style()
        fig = plots.methods_figure(cmp, floors, measured_latencies())
        with atomic_path(args.figure) as tmp:
            fig.savefig(tmp, format="png", dpi=96)
        print(f"figure -> {args.figure}")


def _report_one_protocol(args, records: list, sections: dict) -> None:
    """``obce report --findings`` / ``--figure``: of a directory that holds one protocol's records."""
    from .analysis.stats import majority_floors, summarize_records

    if len(sections) != 1:
        raise ObceInputError(f"{args.results!r} holds {len(sections)} protocols or record sets; --findings and "
                             "--figure need one (e.g. results/glue_fulltrain/glue)")
    floors = majority_floors({r["task"] for r in records}, args.glue_dir)
    if args.findings:
        from .analysis.facts import findings_text

        print("> " + findings_text(records, floors))
    if args.figure:
        from . import plots
        from .files import atomic_path

        plots.set_style()
        fig = plots.plot_glue(summarize_records(records), floors=floors)
        with atomic_path(args.figure) as tmp:
            fig.savefig(tmp, format="png", dpi=96)
        print(f"figure -> {args.figure}")


def _report_posttrain(args) -> None:
    """``obce report DIR --findings [--tables DIR ...]`` of retraining-free tables (``DIR/posttrain.jsonl``)."""
    import pandas as pd

    from .analysis.facts import posttrain_text
    from .analysis.posttrain import load_table
    from .analysis.stats import majority_floors
    from .results import POSTTRAIN_TABLE

    for extra in args.tables:
        if not (Path(extra) / POSTTRAIN_TABLE).is_file():
            raise ObceInputError(f"--tables {extra!r}: no retraining-free table {extra}/{POSTTRAIN_TABLE}")
    df = pd.concat([load_table(d) for d in (args.results, *args.tables)], ignore_index=True)
    floors = majority_floors(set(df["task"]), args.glue_dir)
    print("> " + posttrain_text(df, floors))


def cmd_params(args) -> None:
    """``obce params``: exact parameter counts of pruned architectures, without weights."""
    from .pruning import parameter_table

    rows = parameter_table(args.model, args.levels)
    print(f"{'model':<22} {'level':>5} {'FFN size':>8} {'parameters':>13} {'reduction':>9}")
    for r in rows:
        print(f"{r['model']:<22} {r['level']:>5} {r['intermediate_size']:>8} {r['parameters']:>13,} "
              f"{r['reduction_percent']:>8.2f}%")


if __name__ == "__main__":
    sys.exit(main())
