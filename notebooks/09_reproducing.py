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
# # 9. Reproducing
#
# ## Overview
#
# How to rerun every chapter with other models, corpora and levels, on CPU or GPU,
# and where results go.
#
# After this chapter you can
# - rerun any chapter with other parameters, and rebuild the book;
# - rely on the guarantees: records refused rather than overwritten, caches keyed by content, resumable grids;
# - run a protocol's grid on a cluster or a lent GPU.
#
# ## Prerequisites
#
# The install of the README.
#
# Run time and hardware: seconds in the quick profile; the protocols it shows take hours on 2 CPU cores.
#
# ## Rerun a chapter with other parameters
# Every notebook's first code cell is tagged `parameters`; Papermill overrides any of them:
#
# ```bash
# papermill notebooks/03_scoring.ipynb out.ipynb -p model_name bert-base-uncased -p n_texts 512 -p max_length 128
# ```
# (`jupytext --to ipynb notebooks/03_scoring.py` makes the `.ipynb` if needed.) `bert-base-uncased`
# needs its weights: on a machine with network they are fetched from the hub; offline, download them
# elsewhere (`huggingface-cli download bert-base-uncased --local-dir DIR`) and pass `DIR`.
#
# Paths in the parameters (`results_dir`, `config`, `out_dir`) are relative to the repository
# root, so the command works from the root and from `notebooks/` alike; `OBCE_GLUE_DIR` and the
# CLI's paths are relative to the directory the command is typed in.
#
# ## Rebuild the whole book
# ```bash
# obce book --profile quick     # CPU, minutes: params/profiles/quick.yaml
# obce book --profile full      # GPU runs: params/profiles/full.yaml
# ```
# The build log prints each chapter's execution time (`[book] executed 03_scoring in ... s`) and
# `_build/timings.json` keeps them; the test suite fails when a chapter of the quick profile takes
# more than three minutes.
#
# ## Guarantees
# What `obce` promises, each case tested (`tests/test_guarantees.py`, `tests/test_reliability.py`):
# - **Atomic writes.** Records, scores, caches and pruned checkpoints are written to a temporary
#   name beside the target and renamed into place: a killed run leaves the old file or none, never
#   half of one. A run's temporary model copy lives in a directory named by its process id (under
#   `<out>/.tmp` for the pipeline) and is removed by the next run if the process was killed.
# - **Resume.** `obce score` and `obce pipeline` reuse every finished layer and record; after a
#   SIGKILL the rerun writes the same records an uninterrupted run writes.
# - **Nothing overwritten without a flag.** An output made with other inputs is kept: `obce score`
#   and `obce glue` refuse it unless `--overwrite`, the pipeline refuses before any compute and names
#   the difference unless `--force`. `obce prune --out` replaces only an earlier pruned checkpoint
#   (else `--overwrite`), never the working directory or a directory holding its own input, and never
#   a file it did not write (a user's `scores.npz`, a `.<out>.old` beside it). An
#   unreadable record is renamed `*.bad` and rerun; a cache file whose contents do not match its
#   stage is recomputed.
# - **Caches keyed by content.** Scores, fine-tuned models, records and retraining-free tables are
#   keyed by the model's fingerprint (`obce.models.source_fingerprint`: the embedded model by its
#   package version, a checkpoint by a hash of its tensors, config and vocabulary), never by its path
#   alone: replace a checkpoint at the same path and obce scores and fine-tunes it anew. A damaged
#   cached fine-tune is set aside and recomputed.
# - **One writer per output.** `obce score`, `prune`, `glue`, `pipeline` and `posttrain` lock their
#   output while they write it; a second command on the same output is refused at once (exit 2,
#   naming the process that holds it). A table's readers keep the rows of its latest inputs, one
#   per cell.
# - **Undefined is undefined.** A correlation of constant predictions is recorded as `null` with its
#   reason, never as a number; every record says whether its model is `degenerate` (every dev
#   prediction one class). A model with NaN weights is refused before training; a non-finite training
#   loss or score stops the command (exit 2), naming the layer and neuron of a NaN score.
# - **Strict records.** Every record and table row is validated when read: a missing level, an
#   importance that is not a name, `accuracy: true` are errors naming the file and the field.
# - **Exit codes.** 0 success; 2 bad input, with a message that names it (a file, a line, a
#   parameter and its allowed values), also a full disk or a read-only output; 1 any other failure.
#   Every input is validated before compute.
#
# ## The protocols
# Every protocol is one config under `params/protocols/`, listed with its results directory and
# chapter in the manifest `params/protocols.yaml` (the appendix reads it). A config may start from
# another (`extends: base.yaml`) and hold several sub-grids (`grids:`), so one file says one protocol:
#
# ```bash
# obce pipeline --config params/protocols/cpu_fulltrain/glue.yaml      # chapter 6: whole training sets,
#                                                                      #   levels 0-3, 6 scores, 3 seeds
# obce pipeline --config params/protocols/cpu_fulltrain/methods.yaml   # chapter 7: other methods at equal budgets
# obce pipeline --config params/protocols/cpu_fulltrain/ablations/*.yaml   # the ablations of chapter 6
# obce pipeline --config params/protocols/cpu_sst2/glue.yaml           # SST-2 on a 20,000-sentence subset
# obce pipeline --config params/protocols/gpu/glue.yaml                # the GPU protocol (max_length 128)
# obce posttrain --config params/protocols/cpu_fulltrain/posttrain.yaml    # chapter 8, without retraining
# obce posttrain --config params/protocols/cpu_sst2/posttrain.yaml
# ```
# Records go to `<out>/glue/<task>/<importance>-L<level>-s<seed>.json` (`out` is set in the config),
# scores to `<out>/scores/`; a rerun skips finished records made with the same inputs, so a killed run
# resumes and a changed config reruns what it changes. Several configs run one after the other; all
# are checked before the first run starts. `--tasks`, `--importances`, `--levels` and `--seeds`
# restrict every config to some of its runs; the records are the same ones the whole config writes.
# A config path of the older flat layout (`params/glue_cpu_fulltrain.yaml`) still resolves through
# the manifest.
#
# ## Other compression methods
# A config's `methods:` list runs other compression methods through the same protocol beside (or
# instead of) its `importances` (`obce.methods.run`): each entry names a method of the registry
# (`ffn_pruning`, `layer_removal`, `masks`, `kronecker`, `eelbert`, `combined`), optionally a
# `label:` (the name of its records) and the method's parameters; levels 1-3 are parameter budgets.
# `obce pipeline --config params/protocols/cpu_fulltrain/methods.yaml --importances masks --tasks rte`
# runs one method on one task (`--importances` selects method labels too). A wrong entry, or a budget
# the method cannot reach, fails before any compute with exit code 2. An entry with a size of its own
# (`compression: 19` for KroneckerBERT, `buckets: 1000` for EELBERT) runs once per task and seed,
# filed under level 3. `obce report results/methods_fulltrain/glue --methods results/glue_fulltrain/glue`
# prints chapter 7's table (`--findings`: the README's sentences; `--figure PNG`: its figure).
#
# `obce report results` prints the summary and the paired verdicts as markdown, one section per
# fine-tuning protocol (records of different protocols are never averaged together); `--by-level`
# prints one row per task and level and one column per score instead.
#
# ## Pruning without retraining
# One fine-tune per task and seed is cached under `<out>/finetuned/`; every cell is then a row of one
# JSONL table (`runs.jsonl` holds each run's config and provenance once). A killed run resumes at the
# next missing cell; a config with other inputs (model, fine-tuning, corpus, evaluation) is refused
# for that table unless `--force`.
#
# ## A cluster or a lent GPU
# `obce pipeline` and `obce posttrain` take `--executor ray` to spread a grid's cells over a machine,
# a cluster (a Ray head, workers, `--address`; a SLURM example) or a GPU shared by fractions of it:
# see `docs/RUNNING.md` in the repository. In short:
#
# ```
# ray start --head --port 6379                     # on the head node
# ray start --address HEAD:6379                    # on each worker node
# obce pipeline --config CONFIG --executor ray --address HEAD:6379 --cpus-per-cell 4
# ```

# %% tags=["parameters"]
model_name = "bert-base-uncased"
config = "params/protocols/gpu/glue.yaml"  # relative to the repository root

# %% tags=["hide-input"]
import pandas as pd

import obce
from obce.book import setup_notebook
from obce.experiments.config import PipelineConfig
from obce.experiments.glue_protocol import planned_runs
from obce.paths import in_project

setup_notebook()

# %% [markdown]
# ## What a run would do
# Parameter accounting of the chosen architecture needs no weights:

# %%
pd.DataFrame(obce.parameter_table([model_name]))[["model", "level", "intermediate_size", "parameters", "reduction_percent"]]

# %% [markdown]
# The runs the full GLUE protocol plans (tasks x levels x scores x seeds):

# %%
cfg = PipelineConfig.from_yaml(in_project(config))
runs = planned_runs(cfg)
print(f"{len(runs)} runs over {len(cfg.all_of('tasks'))} tasks; first ones:")
pd.DataFrame(runs[:8], columns=["task", "importance", "level", "seed"])

# %% [markdown]
# ## Summary
# - Notebooks: change parameters with `papermill -p`; the book: `obce book --profile quick|full`.
# - Library and CLI: see the README; every result file carries provenance.
#
# ## Exercises
#
# :::{exercise}
# :label: ex-09-1
# Run `obce pipeline --config params/protocols/cpu_fulltrain/glue.yaml --dry-run`: how many runs are done? Then change `lr` in a copy of the config and dry-run it again.
# :::
#
# :::{solution} ex-09-1
# :class: dropdown
# The first lists every committed record as `done`; the copy lists them as made with other inputs: a real run refuses to replace them unless `--force` is given.
# :::
#
# :::{exercise}
# :label: ex-09-2
# Rerun this chapter with `-p model_name bert-large-uncased`. How many parameters does level 3 remove?
# :::
#
# :::{solution} ex-09-2
# :class: dropdown
# The table above changes to BERT Large's counts, computed from its architecture with no download.
# :::
#
# ## What's next
# The appendices: every measurement (chapter 10) and a neuron atlas (chapter 11).
