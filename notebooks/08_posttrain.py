# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 8. Pruning without retraining
#
# **The question.** Chapter 6 prunes the pretrained model and fine-tunes each pruned model three
# times; the fine-tuning noise is as large as most differences between scores. Modern structured
# pruning is judged another way {cite}`kwon2022fast`: prune a model already fine-tuned on the task and
# evaluate it at once, without retraining, optionally repairing each pruned layer first. Which
# score keeps the most of a fine-tuned model, and does the repair change the order? Each cell costs
# seconds, so every cell is repeated over several draws of the scoring corpus.
#
# **Prerequisites.** Chapter 6.

# %% tags=["parameters"]
# paths are relative to the repository root
results_dirs = ["results/posttrain", "results/posttrain_sst2"]  # tables written by `obce posttrain`
glue_dir = None  # default: $OBCE_GLUE_DIR, else the hub
figure_scores = ["merge_radius", "total_persistence", "activation_variance", "wifv", "fisher", "magnitude", "random"]

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import Markdown
from myst_nb import glue

from obce import plots
from obce.analysis.facts import posttrain_facts
from obce.analysis.posttrain import (
    at_levels,
    curves,
    draw_verdicts,
    keep_fraction_table,
    kept_at_99,
    learned,
    load_table,
    posttrain_protocol_table,
)
from obce.analysis.published import KWON_REPORTED
from obce.analysis.stats import majority_floors
from obce.analysis.tables import verdict_grid
from obce.book import setup_notebook
from obce.paths import in_project
from obce.results import POSTTRAIN_RUNS, read_jsonl

setup_notebook()
tables = [load_table(in_project(d)) for d in results_dirs]
df = pd.concat([t for t in tables if len(t)], ignore_index=True) if any(len(t) for t in tables) else pd.DataFrame()
if not len(df):
    raise FileNotFoundError(f"no retraining-free records under {results_dirs}: run "
                            "`obce posttrain --config params/protocols/cpu_fulltrain/posttrain.yaml`")
floors = majority_floors(set(df["task"]), glue_dir)
learn = learned(df, floors)
facts = posttrain_facts(df, floors)
for name, value in facts.items():
    glue(name, Markdown(value) if isinstance(value, str) else value, display=False)

# %% [markdown]
# ## Protocol
#
# Read from the tables' run records ({glue:text}`pt_cells` cells). Besides chapter 6's scores, two
# that pruning without retraining is judged by: WIFV, FLAP's activation variance weighted by the
# squared norm of the neuron's output weights {cite}`an2024flap`, and the Fisher information of a
# neuron's mask, which reads the task's labels {cite}`kwon2022fast`.

# %% tags=["hide-input"]
runs = {d: read_jsonl(in_project(d) / POSTTRAIN_RUNS) for d in results_dirs}
posttrain_protocol_table({d: r[0]["config"] for d, r in runs.items() if r}).style.hide(axis="index")

# %% [markdown]
# ## The main figures
#
# Dev score against the fraction of FFN neurons kept, one panel per task, without compensation
# and then with the least-squares refit. Lines are means over the corpus draws; bands one standard
# deviation over the draws; the dashed line is the majority class. {glue:md}`pt_curve`

# %% tags=["hide-input"] mystnb={"figure": {"caption": "Without retraining, no compensation: dev score (x 100) against the fraction of FFN neurons kept; mean \u00b1 std over corpus draws.", "name": "fig-posttrain-none"}}
c = curves(df)
fig = plots.plot_posttrain(c, "none", floors, importances=[s for s in figure_scores if s in set(c["importance"])])

# %% tags=["hide-input"] mystnb={"figure": {"caption": "The same with least-squares compensation of every pruned layer.", "name": "fig-posttrain-ls"}}
if "ls" in set(c["compensation"]):
    fig = plots.plot_posttrain(c, "ls", floors, importances=[s for s in figure_scores if s in set(c["importance"])])

# %% [markdown]
# ## Which score keeps the most
#
# The mean over the tasks that learn ({glue:md}`pt_tasks`) of each score's mean over draws, per
# compensation and keep fraction (x 100; the unpruned models' mean is {glue:text}`pt_unpruned:.1f`):

# %% tags=["hide-input"]
keep_fraction_table(df, learn)

# %% [markdown]
# $r_f$ against each other score on the same corpus draws, without compensation: the verdict and the
# mean difference x 100 (a paired t-test over draws, $p < 0.05$):

# %% tags=["hide-input"]
v = draw_verdicts(at_levels(df), floors=floors)
none = v[v["compensation"] == "none"].rename(columns={"keep_fraction": "level"})
verdict_grid(none.assign(level=none["level"].map({0.75: 1, 0.5: 2, 0.25: 3}).fillna(none["level"])), short=True)

# %% [markdown]
# ## The largest pruning that keeps nearly all of the score
#
# Kwon et al. {cite}`kwon2022fast` judge a pruned model by whether it keeps
# {glue:text}`kwon_keep_percent`% of the unpruned accuracy. Per task that learns, the largest fraction of FFN
# neurons each score removes (among the keep fractions run) while the mean over draws keeps that
# share of the unpruned dev metric. Their BERT-base result, *reported, not measured here*: up to a
# {glue:text}`kwon_flops_reduction`x reduction of FLOPs at under {glue:text}`kwon_accuracy_loss`% accuracy
# loss, pruning attention heads and FFN neurons with a Fisher-based mask search, mask rearrangement
# and mask tuning.

# %% tags=["hide-input"]
for name, value in KWON_REPORTED.items():
    glue(f"kwon_{name}", value, display=False)
kept_at_99(df, threshold=KWON_REPORTED["keep_percent"] / 100, tasks=learn)

# %% [markdown]
# ## Discussion
#
# **The answer.** Without retraining, at level 2 (half the FFN neurons) the score that keeps the
# most over the tasks that learn is {glue:md}`pt_best_L2_none` ({glue:text}`pt_best_mean_L2_none:.1f`,
# against {glue:text}`pt_unpruned:.1f` unpruned); $r_f$ keeps {glue:text}`pt_a_L2_none:.1f` and
# activation variance {glue:text}`pt_var_L2_none:.1f`. At level 3 the best is {glue:md}`pt_best_L3_none`
# ({glue:text}`pt_best_mean_L3_none:.1f`; $r_f$ {glue:text}`pt_a_L3_none:.1f`).
#
# **Compensation.** The least-squares refit changes the mean over scores, levels and tasks by
# {glue:text}`pt_comp_gain_ls:+.1f` points, the bias repair by {glue:text}`pt_comp_gain_bias:+.1f`. The
# best score is the same under every compensation at {glue:text}`pt_same_best` of
# {glue:text}`pt_levels` levels. The refit does not act alike on every choice of neurons: at level 2,
# $r_f$ goes from {glue:text}`pt_a_L2_none:.1f` without compensation to {glue:text}`pt_a_L2_ls:.1f`
# with it, activation variance from {glue:text}`pt_var_L2_none:.1f` to {glue:text}`pt_var_L2_ls:.1f`.
# A likely reason, not yet tested: the refit is fitted on the scoring corpus's tokens, and neurons
# kept because one sentence stands apart (chapter 3) may be those whose corpus statistics say least
# about other sentences. Exercise 4 asks.
#
# **Noise.** Repeating a cell over corpus draws is cheap: the median standard deviation over draws is
# {glue:text}`pt_sd_draws:.1f` points. Paired over draws, $r_f$ against activation variance gives
# {glue:text}`pt_wins` wins, {glue:text}`pt_losses` losses and {glue:text}`pt_ties` ties in
# {glue:text}`pt_cells_paired` cells (task, level and compensation). With one fine-tuning seed, the
# spread over seeds is not measured yet; the appendix gives both where they exist.
#
# ## Summary
# - Without retraining, every cell is a few seconds of scoring and evaluation, so each is repeated
#   over corpus draws.
# - The tables above say which score keeps the most at each level, and whether compensation
#   changes the order.
#
# ## Exercises
# 1. Rerun `obce posttrain` with `keep_fractions: [0.1]` and another task in a copy of
#    the second grid of `params/protocols/cpu_fulltrain/posttrain.yaml`: the table grows by those cells only. Where does every score
#    collapse? Expect a sharp drop below a quarter of the neurons.
# 2. Compare `compensation` `bias` and `ls` for random neurons in the table above. Why can a
#    repair help a poor choice of neurons more than a good one?
# 3. Count in `draw_verdicts(df, a="fisher")` how often the Fisher score, which reads the task's
#    labels, beats activation variance, which does not.
# 4. On MRPC at level 2, refit the neurons $r_f$ keeps with `obce.compensation.compensate` at
#    `ridge=1e-6` and `ridge=0.1`, and evaluate both on dev. Then fit the refit's statistics on the dev
#    sentences themselves. Which of the two removes the collapse, and what does that say?
