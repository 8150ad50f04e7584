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
# # 6. GLUE comparisons
#
# ## Overview
#
# OBCE keeps, in every layer, the FFN neurons whose point clouds have the largest
# merge radius $r_f$. Does that choice keep more of a fine-tuned model's GLUE score than simpler
# choices that remove the same number of neurons: random neurons, the smallest weights, or plain
# statistics of the same activations? This chapter answers it from the GLUE records under
# `results/`, each with its provenance. Every other protocol, ablation and per-cell reading is in
# the appendix, {doc}`10_measurements`.
#
# After this chapter you can
# - read the fine-tuning protocol and the paired verdicts over seeds;
# - compare $r_f$ with random neurons, weight magnitude and activation statistics at equal sparsity;
# - tell a pooled claim from the task that carries it, and the conservative test from the lenient one.
#
# ## Prerequisites
#
# Chapters 3 and 5.
#
# Run time and hardware: seconds in the quick profile (it reads the committed records); the full protocol fine-tunes every cell, hours on 2 CPU cores or a GPU (chapter 9).

# %% tags=["parameters"]
# paths are relative to the repository root
results_dir = "results/glue_fulltrain/glue"  # the main protocol's records
gpu_dir = "results/glue_gpu/glue"  # the GPU protocol (max_length 128)
ablations_dir = "results/ablations_cpu"
glue_dir = None  # default: $OBCE_GLUE_DIR, else the hub
run_experiments = False  # True: run or resume `config` first
config = "params/protocols/cpu_fulltrain/glue.yaml"
live_task = None  # a task (e.g. "sst2"): also run a small live comparison in class (the classroom profile)
live_train = 2000  # its training sentences (the package's sample has 300 per task)
seed = 0  # the live run's seed

# %% tags=["hide-input"]
from IPython.display import Markdown
from myst_nb import glue

import pandas as pd

from obce import plots
from obce.analysis.facts import ablation_facts, draw_facts, glue_facts
from obce.analysis.stats import learned_tasks, majority_floors, summarize_records
from obce.analysis.tables import average_table, glue_protocol_table, paired_table, short_columns, verdict_grid
from obce.book import setup_notebook
from obce.data import get_task
from obce.paths import in_project
from obce.results import load_ablations, load_records

setup_notebook()
if run_experiments:
    from obce.experiments.config import PipelineConfig
    from obce.experiments.glue_protocol import run_pipeline

    cfg = PipelineConfig.from_yaml(in_project(config))
    cfg.out = str(in_project(cfg.out))
    run_pipeline(cfg)
records_path = in_project(results_dir)
if not records_path.is_dir() or not (full := load_records(records_path)):
    raise FileNotFoundError(f"no GLUE records under {records_path}: run `obce pipeline --config {config}` "
                            "or set results_dir to a directory of records")
gpu = load_records(in_project(gpu_dir)) if in_project(gpu_dir).is_dir() else []
ablation = load_ablations(in_project(ablations_dir)) if in_project(ablations_dir).is_dir() else []
floors = majority_floors({r["task"] for r in full + gpu}, glue_dir)
learn = learned_tasks(full, floors)
facts = glue_facts(full, floors)
facts.update({f"gpu_{k}": v for k, v in (glue_facts(gpu, floors) if gpu else {}).items()})
facts.update(ablation_facts(full, ablation, floors))
facts.update(draw_facts(full, ablation))
facts["n_records"] = len(full)
for name, value in facts.items():  # words as Markdown ({glue:md}), numbers as numbers ({glue:text})
    glue(name, Markdown(value) if isinstance(value, str) else value, display=False)

# %% [markdown]
# ## Protocol
#
# One protocol, read from the records' provenance ({glue:text}`n_records` runs):

# %% tags=["hide-input"]
glue_protocol_table(full).style.hide(axis="index")

# %% [markdown]
# ## The main figure
#
# Each panel is one task; each line one importance score, from the unpruned model (level 0) to
# level 3, where a quarter of the FFN neurons remain. Points are means over the seeds, bars one
# standard deviation; the dashed line is what always predicting the majority class scores.

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Dev score (x 100) per pruning level, one panel per task, one line per importance score; mean \u00b1 std over seeds. Dashed: majority-class baseline.", "name": "fig-glue"}}
fig = plots.plot_glue(summarize_records(full), floors=floors)

# %% [markdown]
# ## Verdicts
#
# $r_f$ against each other score on the same seeds (same head initialisation and data order). A
# cell gives the verdict and the mean difference x 100, positive when $r_f$ is ahead: *win* or
# *loss* when the paired t-test gives $p < 0.05$, *tie* otherwise, *n.l.* (no learning) when neither
# model is more than a point above the majority class. Columns: `variance` is activation variance,
# `mean |a|` the mean absolute activation, `total pers.` OBCE's total persistence.

# %% tags=["hide-input"]
verdict_grid(paired_table(full, floors=floors), short=True)

# %% [markdown]
# The GLUE-style average over the tasks that learn ({glue:md}`tasks_learn`), x 100:

# %% tags=["hide-input"]
short_columns(average_table(full, tasks=learn))

# %% [markdown]
# ## Discussion
#
# **The answer.** Over the {glue:text}`n_learn` tasks where the unpruned model learns something,
# the scores split in two. Those that read the corpus's activations keep most of the model: at
# level 2 ({glue:text}`kept_L2` of {glue:text}`full_neurons` neurons per layer) $r_f$ averages
# {glue:text}`avg_merge_radius_L2:.1f` and activation variance
# {glue:text}`avg_activation_variance_L2:.1f`, against {glue:text}`avg_unpruned:.1f` unpruned. Those
# that do not read them lose more: random neurons {glue:text}`avg_random_L2:.1f`, weight magnitude
# {glue:text}`avg_magnitude_L2:.1f`. At level 3 the gap widens: $r_f$
# {glue:text}`avg_merge_radius_L3:.1f`, variance {glue:text}`avg_activation_variance_L3:.1f`, random
# neurons {glue:text}`avg_random_L3:.1f`.
#
# **What $r_f$ does.** Pooled over the tasks that learn and levels {glue:md}`levels`, $r_f$ is
# ahead of random neurons in {glue:text}`ahead_random` of {glue:text}`cells_random` cells and wins
# {glue:text}`wins_random` of the {glue:text}`decided_random` paired runs that differ (sign test
# p = {glue:text}`p_sign_random:.2g`; over cells, the conservative test, p =
# {glue:text}`p_cells_random:.2g`). Its largest lead is on {glue:md}`best_task` at level
# {glue:text}`best_level`: {glue:text}`best_a:.1f` against {glue:text}`best_b:.1f` for random neurons,
# ahead on {glue:text}`best_wins` of {glue:text}`best_n` seeds (p = {glue:text}`best_p:.2g`, a
# {glue:md}`best_verdict`). {glue:md}`claim_random`
#
# **What it does not do.** It does not beat the plain statistic. Activation variance is ahead of
# $r_f$ in {glue:text}`behind_activation_variance` of {glue:text}`cells_activation_variance` cells
# (p = {glue:text}`p_cells_activation_variance:.2g`) and in {glue:text}`losses_activation_variance`
# of {glue:text}`decided_activation_variance` paired runs. The largest gap is on
# {glue:md}`worst_task` at level {glue:text}`worst_level`: {glue:text}`worst_a:.1f` for $r_f$ against
# {glue:text}`worst_b:.1f` (p = {glue:text}`worst_p:.2g`, a {glue:md}`worst_verdict`). Mean
# |activation| is ahead of $r_f$ in {glue:text}`behind_mean_abs_activation` of
# {glue:text}`cells_mean_abs_activation` cells, and OBCE's other persistence summary, total
# persistence, in {glue:text}`behind_total_persistence` of {glue:text}`cells_total_persistence`.
#
# **Why.** $r_f$ is the longest edge of the neuron's minimum spanning tree, and chapter 3 measures
# that this edge nearly always cuts off a single sentence: $r_f$ is the distance from the most
# isolated sentence to its nearest neighbour. A neuron is kept because one sentence stands apart.
# Variance, and total persistence, sum over every sentence instead.
#
# **What the answer rests on.** Three fine-tuning seeds per cell leave most single cells as ties
# (the verdict grid), so the claims above are the pooled counts, and the test over cells is
# conservative, since the runs of one cell share the neurons kept. The order does not depend on the
# hardware or the sequence length: under the GPU protocol (max_length 128) variance is ahead of $r_f$
# in {glue:text}`gpu_behind_activation_variance` of {glue:text}`gpu_cells_activation_variance` cells,
# with level-3 averages of {glue:text}`gpu_avg_activation_variance_L3:.1f` against
# {glue:text}`gpu_avg_merge_radius_L3:.1f`. Nor does it depend on the choices the paper leaves open:
# in {glue:text}`abl_behind` of {glue:text}`abl_pairs` pairings across {glue:text}`abl_sets` ablation
# sets (the point cloud, the corpus, the scored model), the ablated $r_f$ stays behind activation
# variance. {glue:md}`drw_text` The appendix holds every table behind these sentences.
#
# ## A live experiment
#
# With `live_task` set (the classroom profile sets it), this page also fine-tunes, in minutes, the
# unpruned model and the models pruned at level 2 by $r_f$, activation variance and random neurons on
# a few thousand training sentences of one task, one epoch, and shows them beside the committed
# records of the same task and level. One seed and a short training decide nothing; they show the
# protocol at work.

# %% tags=["hide-input"]
if live_task:
    from obce.analysis.names import method_name
    from obce.book import table
    from obce.experiments.live import live_comparison

    live = pd.DataFrame(live_comparison(live_task, n_train=live_train, seed=seed))
    committed = {(r["importance"], r["level"]): 100 * r["mean"] for r in summarize_records(full)
                 if r["task"] == get_task(live_task).name}
    live["committed records (x 100)"] = [committed.get((s, lv), float("nan")) for s, lv in zip(live["score"], live["level"])]
    live["score"] = live["score"].map(method_name)
    table(live[["score", "level", "metric", "value", "committed records (x 100)", "degenerate", "train_size", "seconds"]]
          .rename(columns={"value": "live run (x 100)"}),
          {"live run (x 100)": "{:.1f}", "committed records (x 100)": "{:.1f}", "seconds": "{:.0f}"}, index=False)
else:
    print("No live run in this profile (live_task is None); the classroom profile runs one.")

# %% [markdown]
# ## Summary
# - Scores that read the activations keep more of the model than data-free ones, and $r_f$ is one
#   of them.
# - Plain activation variance keeps more than $r_f$ at every level, pooled over the tasks that
#   learn; the topology adds nothing measurable on this evidence.
# - The records, their provenance and every per-cell reading: {doc}`10_measurements`.
#
# ## Exercises
#
# :::{exercise}
# :label: ex-06-1
# Rerun this chapter with `-p results_dir results/glue_gpu/glue` (Papermill). Which cells of the verdict grid change, and does the pooled answer change?
# :::
#
# :::{solution} ex-06-1
# :class: dropdown
# The GPU protocol has other hyper-parameters and fewer seeds in some cells, so more verdicts are ties; read the pooled sentence's test over cells in both runs before saying the answer is the same.
# :::
#
# :::{exercise}
# :label: ex-06-2
# Call `paired_table(full, a="total_persistence", floors=floors)` in a new cell. In how many cells does OBCE's other summary beat random neurons, compared with $r_f$?
# :::
#
# :::{solution} ex-06-2
# :class: dropdown
# Count the wins in its table against the verdict grid above; with three seeds a cell is rarely significant, so compare the cells ahead as well.
# :::
#
# :::{exercise}
# :label: ex-06-3
# The verdict uses $p < 0.05$. Recount the wins of $r_f$ over random neurons with `obce.analysis.stats.paired_comparison(full, "merge_radius", "random", alpha=0.1)`. Why are the new wins not evidence by themselves?
# :::
#
# :::{solution} ex-06-3
# :class: dropdown
# Ties at $0.05$ with $p$ between $0.05$ and $0.1$ become wins; choosing the threshold after seeing the data, over many cells, makes some wins by chance: the pooled sign test over cells is the check.
# :::
#
# ## What's next
# Chapter 7 compares OBCE with the other compression methods; chapter 8 prunes without retraining.
