# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10. Appendix: all measurements
#
# ## Overview
#
# Every GLUE record under `results/`, as tables and small multiples generated from the
# records: each fine-tuning protocol in turn, then the overlap of the neurons the scores keep, the
# ablations, the diagnostics and the published numbers. Chapter 6 states the answer; this page is
# what it rests on. Records of different protocols are never averaged or paired together.
#
# Tables give the main dev metric x 100 as the mean and standard deviation over seeds, "(n=k)" where
# fewer seeds ran, and – where a score was not run. Paired tables: `mean_diff` x 100 (positive when the first score is
# ahead), `wins` the seeds it won, `p_value` the paired t-test. Pooled tables: `p_sign` the sign test
# over the decided paired runs, `p_cells` the same over (task, level) cells.

# %% tags=["parameters"]
results_dir = "results"  # every protocol's records (relative to the repository root)
glue_dir = None  # for the majority-class baselines; default $OBCE_GLUE_DIR, else the hub

# %% tags=["hide-input"]
from pathlib import Path

import pandas as pd
from IPython.display import Markdown, display

from obce import get_task, plots
from obce.analysis.published import REPORTED
from obce.analysis.stats import learned_tasks, majority_floors, summarize_records
from obce.analysis.tables import ablation_table, average_table, levels_table, paired_table, pooled_table, score_table
from obce.book import setup_notebook
from obce.experiments.config import read_manifest
from obce.explain import kept_overlap
from obce.paths import in_project
from obce.results import load_ablations, load_records, random_draw, run_key
from obce.scoring import load_scores

setup_notebook()
root = in_project(results_dir)
#: name, records directory, the config that writes them: the score protocols of params/protocols.yaml
protocols = [(p["title"], Path(p["results"]).relative_to("results") / "glue", p["config"])
             for p in read_manifest(in_project(".")).values() if p["group"] == "scores"]
records = {name: load_records(root / sub) for name, sub, _ in protocols if (root / sub).is_dir()}
if not any(records.values()):
    raise FileNotFoundError(f"no GLUE records under {root}")
tasks_run = sorted({r["task"] for recs in records.values() for r in recs})
floors = majority_floors(tasks_run, glue_dir)

# %% [markdown]
# ## Majority-class baselines
#
# What a model that has learned nothing scores: always the most frequent training label (the mean
# similarity for STS-B).

# %% tags=["hide-input"]
pd.Series({t: 100 * v for t, v in floors.items()}, name="majority class (x 100)").round(1).to_frame().T

# %% [markdown]
# ## Every protocol
#
# For each protocol: its records and config, the scores per level, $r_f$ and activation variance
# paired with every other score, the averages and pooled counts over the tasks that learn, and the
# small multiples.

# %% tags=["hide-input"]
for (name, sub, config), recs in ((p, records.get(p[0], [])) for p in protocols):
    if not recs:
        continue
    display(Markdown(f"### {name}\n\n{len(recs)} records in `results/{sub}`, written by `obce pipeline "
                     f"--config {config}`."))
    display(levels_table(recs))
    display(Markdown("$r_f$ against each other score:"))
    display(paired_table(recs, floors=floors))
    if "activation_variance" in {r["provenance"].get("importance") for r in recs}:
        display(Markdown("Activation variance against each other score:"))
        display(paired_table(recs, a="activation_variance", floors=floors))
    learn = learned_tasks(recs, floors)
    if len(learn) > 1:
        display(Markdown(f"Averages and pooled counts over the tasks that learn ({', '.join(learn)}):"))
        display(average_table(recs, tasks=learn))
        display(pooled_table(recs, tasks=learn))
        if "activation_variance" in {r["provenance"].get("importance") for r in recs}:
            display(pooled_table(recs, a="activation_variance", tasks=learn))

# %% [markdown]
# Small multiples of each protocol with more than one task (dev score x 100 per level):

# %% mystnb={"figure": {"caption": "GPU protocol: dev score (x 100) per level, mean \u00b1 std over seeds; dashed: majority class.", "name": "fig-appendix-gpu"}} tags=["hide-input"]
gpu = records.get("GPU, max_length 128", [])
if gpu:
    fig = plots.plot_glue(summarize_records(gpu), floors=floors)

# %% mystnb={"figure": {"caption": "Short protocol: dev score (x 100) per level; most tasks do not learn in 126 steps.", "name": "fig-appendix-short"}} tags=["hide-input"]
short = records.get("Short: 2,000 training examples (CPU)", [])
if short:
    fig = plots.plot_glue(summarize_records(short), floors=floors)

# %% [markdown]
# Random records of the short protocol made before per-seed draws share one random neuron set
# across seeds; `obce pipeline --config params/protocols/cpu_short/glue.yaml` reruns exactly those:

# %% tags=["hide-input"]
stale = [r for r in short if random_draw(r) not in (None, r["provenance"]["seed"])]
print(f"{len(stale)} such records")

# %% [markdown]
# ## How different are the neurons each score keeps?
#
# Per layer, the fraction of the neurons kept at level 2 by $r_f$ that another score keeps too (full
# training sets' scores, stored beside the records): 1 means the same neurons; what two independent
# random choices share is the keep fraction itself.

# %% tags=["hide-input"]
stored = {}
for path in sorted((root / "glue_fulltrain" / "scores").glob("*.npz")):
    values, meta = load_scores(path)
    stored.setdefault((meta["task"], meta["importance"]), values)  # random: the first draw stored
overlap = pd.DataFrame({f"{t}: r_f vs {other}": kept_overlap(stored[t, "merge_radius"], stored[t, other], level=2)
                        for t, other in sorted(stored) if other != "merge_radius" and (t, "merge_radius") in stored}).T
overlap.columns = [f"layer {i}" for i in overlap.columns]
overlap.round(2)

# %% [markdown]
# The same overlap between $r_f$ and activation variance at each level, mean over layers:

# %% tags=["hide-input"]
pd.DataFrame({f"level {lv}": {t: kept_overlap(stored[t, "merge_radius"], stored[t, imp], level=lv).mean()
                              for t, imp in sorted(stored)
                              if imp == "activation_variance" and (t, "merge_radius") in stored}
              for lv in (1, 2, 3)}).round(2)

# %% [markdown]
# ## Ablations: which reading of OBCE works?
#
# Each set under `results/ablations_cpu/<name>/` changes one choice the paper leaves open, under
# the full-train protocol, in the cells named by its config (`params/ablations_cpu/`): the point
# cloud (`representation_mean`, `representation_cls`), the corpus (`corpus_n128`, `corpus_n2048`,
# `corpus_sst2`, and `corpus_per_seed`, which draws the scoring corpus per seed for $r_f$ and
# activation variance) and the scored model (`score_finetuned`: fine-tune, prune, fine-tune again,
# with its own random control and the Taylor baseline). A set's scores are labelled `<score>[<name>]`;
# each is paired with the default $r_f$, with random neurons and, where trained as the main records,
# with activation variance.

# %% tags=["hide-input"]
full = records.get("Full training sets (CPU)", [])
ablation = load_ablations(root / "ablations_cpu") if (root / "ablations_cpu").is_dir() else []
if ablation:
    cells = {(r["task"], r["provenance"]["level"]) for r in ablation} | {(r["task"], 0) for r in ablation}
    base = [r for r in full if (r["task"], r["provenance"]["level"]) in cells
            and r["provenance"]["importance"] in ("none", "merge_radius", "random", "activation_variance")]
    display(score_table(base + ablation))
    display(ablation_table(full, ablation, floors=floors, also=("activation_variance",)))

# %% [markdown]
# ## Pruning without retraining: every cell
#
# Chapter 8's tables in full: the spread of every cell over corpus draws (`std_draws`) and over
# fine-tuning seeds (`std_seeds`, where more than one seed ran), and $r_f$ paired with every other
# score over draws under each compensation.

# %% tags=["hide-input"]
import obce.analysis.posttrain as rp

posttrain = [rp.load_table(in_project(d)) for d in ("results/posttrain", "results/posttrain_sst2")]
posttrain = pd.concat([t for t in posttrain if len(t)], ignore_index=True) if any(len(t) for t in posttrain) else []
if len(posttrain):
    display(rp.spread(posttrain).round(1))  # x 100, one decimal
    display(rp.draw_verdicts(posttrain, floors=floors))

# %% [markdown]
# ## Diagnostics
#
# Single runs on the *whole* training set under `results/diagnostics/`, beside the short protocol's
# mean for the same model: where the short protocol sits at the majority class, the budget, not the
# pruning, is to blame.

# %% tags=["hide-input"]
diags = load_records(root / "diagnostics") if (root / "diagnostics").is_dir() else []
summary_short = summarize_records(short) if short else []
rows = []
for d in diags:
    metric = get_task(d["task"]).main_metric
    same = [r for r in summary_short if (r["task"], r["importance"], r["level"]) == run_key(d)[:3]]
    rows.append(dict(task=d["task"], model=d["provenance"]["model"], train_size=d["provenance"]["train_size"],
                     epochs=d["provenance"]["params"]["epochs"], metric=metric,
                     diagnostic=round(100 * d["metrics"][metric], 1),
                     short_protocol_mean=round(100 * same[0]["mean"], 1) if same else None))
pd.DataFrame(rows)

# %% [markdown]
# ## Reported numbers (not measured here)
#
# Published GLUE scores x 100, labelled with their source and split (test = GLUE server, dev = dev
# set). They are on other models and protocols than ours and only place our numbers in context.
# Sources: BERT {cite}`devlin2019bert`, TinyBERT {cite}`jiao2020tinybert`; DistilBERT
# {cite}`sanh2019distilbert` and MiniLM {cite}`wang2020minilm` as their authors' model cards list
# them (the cards do not name the metric of each task: see `note`; the MiniLM row is the 12-layer
# MiniLM of the paper, not the all-MiniLM-L6-v2 measured here); BERT-of-Theseus {cite}`xu2020theseus`
# from its authors' repository (dev set). Not transcribed (we keep only numbers we could
# corroborate): PKD {cite}`sun2019pkd`, KroneckerBERT {cite}`tahaei2022kroneckerbert`, OBCE and PBCE
# {cite}`balderas2023obce` {cite}`balderas2025pbce`.

# %% tags=["hide-input"]
pd.DataFrame(REPORTED).set_index("model")
