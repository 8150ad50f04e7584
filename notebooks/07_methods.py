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
# # 7. Other compression methods
#
# ## Overview
#
# Chapter 6 compares OBCE with other ways of choosing FFN neurons. A reader who
# wants a smaller BERT has other options altogether: remove whole FFN sub-layers
# {cite}`sridhar2020undivided`, keep the pre-trained weights frozen and learn which connections to
# drop for the task {cite}`gao2021adapting`, factor every weight matrix into Kronecker products
# {cite}`tahaei2022kroneckerbert`, or compute the token embeddings instead of storing them
# {cite}`cohn2023eelbert`, or combine neuron pruning with a smaller word table. At the same parameter
# budget, which keeps the most of the GLUE score? Every method here runs through one entry point,
# `obce.methods.run`: compress the pretrained model to the parameter count of OBCE level 1, 2 or 3
# (or to a size of its own), train on the task with the fine-tuning protocol of chapter 6, and
# evaluate on dev. Each method is implemented as its paper describes it, and every difference from
# the paper is named below.
#
# After this chapter you can
# - describe each compared method as its paper does, and how obce's run differs;
# - compare methods at equal parameter budgets with paired verdicts;
# - read parameters and CPU latency against the GLUE average, and which task carries a ranking.
#
# ## Prerequisites
#
# Chapters 5 and 6.
#
# Run time and hardware: seconds in the quick profile (it reads the committed records); each run of the grid is minutes of fine-tuning on 2 CPU cores (chapter 9).

# %% tags=["parameters"]
# paths are relative to the repository root
results_dir = "results/glue_fulltrain/glue"  # FFN neuron pruning by each score, and the unpruned model
methods_dir = "results/methods_fulltrain/glue"  # the other methods (`obce pipeline --config` below)
config = "params/protocols/cpu_fulltrain/methods.yaml"
glue_dir = None  # default: $OBCE_GLUE_DIR, else the hub
scores = ["merge_radius", "activation_variance", "random"]  # the importance scores drawn beside the methods
methods = ["layer_removal", "merge_radius_at_layer_removal", "masks", "kronecker", "eelbert", "kronecker_19x",
           "eelbert_3l", "combined", "combined_eelbert", "kronecker_task_only", "kronecker_19x_task_only",
           "hash_table", "hash_table_1k"]

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from obce import plots
from obce.analysis.methods import (budget_offsets, compare_methods, general_distillation_cost, measured_latencies,
                                   method_table, removed_blocks)
from obce.analysis.names import method_name
from obce.analysis.published import REPORTED_METHODS
from obce.analysis.stats import majority_floors
from obce.book import setup_notebook, table
from obce.experiments.config import PipelineConfig
from obce.experiments.glue_protocol import planned_runs
from obce.paths import in_project
from obce.results import load_records

setup_notebook()
latency_rows = measured_latencies()
found = {d: load_records(in_project(d)) if in_project(d).is_dir() else [] for d in (results_dir, methods_dir)}
if not found[results_dir] or not found[methods_dir]:
    missing = [d for d, recs in found.items() if not recs]
    raise FileNotFoundError(f"no GLUE records under {missing}: run `obce pipeline --config {config}` "
                            "(and params/protocols/cpu_fulltrain/glue.yaml for the scores)")
floors = majority_floors({r["task"] for recs in found.values() for r in recs}, glue_dir)
cmp = compare_methods(found[results_dir], found[methods_dir], floors, scores=tuple(scores), methods=tuple(methods))
records, tasks, points, verdicts, facts = (cmp[k] for k in ("records", "tasks", "points", "verdicts", "facts"))
formats = {"parameters (M)": "{:.2f}", "GLUE average": "{:.1f}", "sd over seeds": "{:.1f}", "disk (MB)": "{:.1f}",
           "run time (min)": "{:.1f}"}
facts.update(mt_n_tasks=len(tasks),
             mt_runs=sum(r["provenance"].get("importance") in methods for r in records),
             mt_planned=sum(lv != 0 for _, _, lv, _ in planned_runs(PipelineConfig.from_yaml(in_project(config)))),
             mt_blocks=removed_blocks(records), mt_lr_offsets=budget_offsets(records), mt_alpha=0.05,
             **general_distillation_cost(found[methods_dir]))
for name, value in facts.items():
    glue(name, Markdown(value) if isinstance(value, str) else value, display=False)

# %% [markdown]
# ## The methods and their budgets
#
# - **OBCE and the importance scores** remove a quarter, half or three quarters of every layer's FFN
#   neurons (levels 1-3); the model stays a vanilla BERT with a smaller FFN.
# - **FFN sub-layer removal** deletes whole FFN blocks and keeps each block's attention, residual
#   connection and LayerNorm. It removes the blocks whose FFN changes the residual stream least
#   over the scoring corpus, as many as come nearest the level's budget: in the records,
#   {glue:md}`mt_blocks`. Whole blocks miss the budget ({glue:md}`mt_lr_offsets`), so its verdicts
#   compare it with $r_f$ pruning to exactly the count it reaches (*OBCE (r_f) at layer removal's
#   size*, the same neurons in every layer), not with the level's $r_f$; every table shows the count.
# - **Adapting by pruning** {cite}`gao2021adapting` keeps the pre-trained weights intact and learns,
#   for the task, which of them to drop: a binary mask over the weights of every linear map of the
#   encoder. Each weight has a real-valued score; the forward pass keeps the top share of each matrix
#   by score, and the gradient passes straight through the threshold to the scores. The scores start
#   at the weights' magnitudes, so training starts from magnitude pruning; the record keeps
#   `mask_changed`, the share of mask entries that differ from that start. The scores and the task
#   head train for the fine-tuning's epochs; the pooler stays frozen. It removes as many weights as the
#   level's neuron pruning. Its zeros shrink no matrix: the table charges it the weights left plus the
#   mask's storage, one bit per weight. *Differences from the paper:* only its abstract was available
#   offline, so the score initialisation and the per-matrix threshold follow the common
#   movement-pruning recipe {cite}`sanh2020movement` rather than a detail of the paper; the share kept is set by the level's
#   budget rather than tuned.
# - **KroneckerBERT** replaces every linear map of the encoder by a sum of Kronecker products,
#   initialised from the pre-trained weight by the nearest Kronecker product, with as many terms as
#   the budget allows (the record keeps the initial relative error, `init_error`). As in the paper,
#   it learns in two stages: general distillation (the pretrained model's hidden states and
#   attention outputs, on unlabeled text), then distillation from the unpruned model fine-tuned on
#   the task (outputs, hidden states and attention outputs, mixed with the task loss). *Differences
#   from the paper:* the unlabeled text is the pooled GLUE training sentences (labels dropped, no dev
#   sentence), not Wikipedia and books, and the first stage is a few hundred steps on 2 CPU cores,
#   not a pre-training run; MiniLM has no masked-language-model head, so no token distributions are
#   distilled.
# - **EELBERT** stores no word-embedding table: each token's embedding is the mean, over its
#   character trigrams, of a pseudo-random vector seeded by the trigram's hash, computed on the fly;
#   special tokens get vectors of their own. Its word-embedding parameters are 0 and its size is its
#   own (the encoder without its table). *Differences from the paper:* EELBERT pre-trains with these
#   embeddings; obce adapts MiniLM's pre-trained encoder to them by the same general distillation,
#   then fine-tunes. A smaller EELBERT keeps 3 of the 6 blocks (the paper's smallest model is a
#   smaller BERT too).
# - **The combination** is how a user would compress MiniLM for real: the word table (half of its
#   parameters) is factored as a Kronecker product with factor 4 (or replaced by EELBERT's
#   embedding), then every layer keeps the FFN neurons with the highest $r_f$ that the rest of the
#   budget allows, then both distillation stages run. No FFN pruning alone gets below about two
#   thirds of the encoder; together they reach half of it with the Kronecker table, and less with
#   EELBERT's embedding (the table gives the counts). A budget out of reach is refused before any
#   compute. It is not from a paper.
#
# The general distillation is one shared stage, `obce.distill.general_distillation`, cached under
# the student's architecture and initial weights, the corpus and the steps, so one student distils
# once for every task and seed (the combination's student depends on the task's $r_f$, so it distils
# once per task). On {glue:md}`mt_gd_host` it ran at {glue:text}`mt_gd_rate:.0f` texts per second
# ({glue:md}`mt_gd_steps` steps of {glue:md}`mt_gd_batch` texts: {glue:text}`mt_gd_minutes:.1f`
# minutes, over {glue:text}`mt_gd_students` distinct students); one pass over the
# {glue:text}`mt_gd_texts` texts of the corpus would take {glue:text}`mt_gd_epoch_minutes:.0f`
# minutes. No GPU was lent to this work, so what one would take is not measured here.
#
# Runs that take a size of their own instead of a level's budget are diamonds in the figure and
# never enter the equal-budget verdicts: EELBERT, EELBERT with 3 blocks, and KroneckerBERT at the
# paper's compression factor of 19 (its word table factored too). Records of the earlier protocol
# are kept under their own names: KroneckerBERT without its first stage (*task only*), and a table
# of hashed n-gram rows fitted to MiniLM's word table (*fitted hash table*), which is not EELBERT.
#
# The records ({glue:text}`mt_runs` runs of the other methods, out of a full grid of
# {glue:text}`mt_planned`) are averaged over the tasks that learn and that every method has run:
# {glue:md}`mt_tasks`.

# %% [markdown]
# ## Parameters against the GLUE score

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Left: encoder parameters (log scale); right: CPU latency of one forward of 32 sequences of 128 tokens (benchmarks/bench_methods.py, the models as the protocol builds them); both against the dev score averaged over the tasks on the y axis (x 100). Error bars: standard deviation over seeds; the star is the unpruned model, diamonds the sizes of their own, the dashed line the majority class's average; a ringed point did not learn (every run predicts one class).", "name": "fig-methods"}}
fig = plots.methods_figure(cmp, floors, latency_rows)

# %% tags=["hide-input"]
table(method_table(points, records), formats, index=False)

# %% [markdown]
# At level 2's budget the best method is {glue:md}`mt_best_L2` ({glue:text}`mt_best_score_L2:.1f`,
# against {glue:text}`mt_unpruned:.1f` unpruned); in order: {glue:md}`mt_level2`. At level 1 the best
# is {glue:md}`mt_best_L1`, at level 3 {glue:md}`mt_best_L3`. The right panel shows what a model
# costs to run: only the methods that shrink matrices are faster; masks keep the dense shapes, and
# Kronecker factors trade parameters for more, smaller products. {glue:md}`mt_moon`
#
# ## Level 2 and the smallest models on more tasks
#
# The grid runs level 2's budget and the sizes of their own first, so they cover more tasks. Level
# 2 over {glue:md}`mt2_tasks` (unpruned {glue:text}`mt2_unpruned:.1f`, majority class
# {glue:text}`mt2_floor:.1f`) ranks {glue:md}`mt2_order`. That order is pooled over tasks; by
# task, the best is {glue:md}`mt2_by_task`, and {glue:md}`mt2_carrier`.

# %% tags=["hide-input"]
table(method_table(cmp["points_l2"], records), formats, index=False)

# %% [markdown]
# The smallest models, over {glue:md}`mt_own_tasks` (unpruned {glue:text}`mt_own_unpruned:.1f`,
# predicting the majority class {glue:text}`mt_own_floor:.1f`): {glue:md}`mt_own`. A score at the
# majority class means the model learned nothing of the task. {glue:md}`mt_partial`

# %% tags=["hide-input"]
table(method_table(cmp["points_own"], records), formats, index=False)

# %% [markdown]
# ## Verdicts at equal budget
#
# Each method against OBCE's $r_f$ at the same level (FFN sub-layer removal against $r_f$ at the
# count it reaches, where that ran), task by task, seeds paired: a win or a loss
# needs a paired t-test over the seeds both ran below {glue:text}`mt_alpha`, so a cell with one seed
# is always a tie.

# %% tags=["hide-input"]
rows = pd.DataFrame(verdicts)
for column in ("method", "against"):
    rows[column] = rows[column].map(method_name)
table(rows.rename(columns={"mean_diff": "mean difference x 100"}), {"mean difference x 100": "{:+.1f}"}, index=False)

# %% [markdown]
# {glue:md}`mt_records`
#
# ## What the papers report
#
# Their numbers are on BERT-Base, with their own protocols; they are not measured here. The OBCE
# paper's own GLUE table for BERT Base and Large is not transcribed: only its abstract could be
# read offline (chapter 5 compares its parameter shares with obce's count).

# %% tags=["hide-input"]
table(pd.DataFrame(REPORTED_METHODS), index=False)

# %% [markdown]
# ## Completing the grid
#
# The full grid is five tasks, three seeds and levels 1-3 for each method, and the own sizes. On
# 2 CPU cores a run takes minutes (STS-B the longest, WNLI the shortest); the records so far ran the
# clearest comparison first. The same command resumes and completes the grid, leaving every finished
# record as it is; the second runs the level-2 and own-size cells of STS-B, MRPC and RTE first:
#
# ```
# obce -v pipeline --config params/protocols/cpu_fulltrain/methods.yaml
# obce -v pipeline --config params/protocols/cpu_fulltrain/methods.yaml --levels 2 --seeds 0 --tasks stsb mrpc rte
# ```
#
# ## Summary
# - Every method runs at OBCE's budgets as its paper describes it, each difference named.
# - At level 2 the best is {glue:md}`mt_best_L2`; a pooled order is read with who leads on each task.
# - Only methods that remove rows, columns or blocks make the CPU forward faster.
#
# ## Exercises
#
# :::{exercise}
# :label: ex-07-1
# At level 2, which method leads on each task, and does the pooled order rest on one task?
# :::
#
# :::{solution} ex-07-1
# :class: dropdown
# The chapter's per-task sentence names the leader of each task and whether the pooled leader's place survives leaving any one task out.
# :::
#
# :::{exercise}
# :label: ex-07-2
# Why do the masks not make the model faster, although they remove as many weights as level-2 pruning?
# :::
#
# :::{solution} ex-07-2
# :class: dropdown
# Their zeros sit inside dense matrices: the checkpoint and the forward pass have the unpruned shapes (the latency panel and `benchmarks/README.md`). Only removing rows, columns or blocks shrinks the matrix products.
# :::
#
# ## What's next
# Chapter 8 prunes a fine-tuned model without retraining, with Kwon et al.'s framework.
