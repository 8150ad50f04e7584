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
# # 6. Reproducing
#
# **Overview.** How to rerun every chapter with other models, corpora and levels, on CPU or GPU,
# and where results go.
#
# **Prerequisites.** The install of the README.
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
# ## Rebuild the whole book
# ```bash
# obce book --profile quick     # CPU, minutes: params/quick.yaml
# obce book --profile full      # GPU runs: params/full.yaml
# ```
#
# ## The GLUE comparison
# ```bash
# obce pipeline --config params/glue_cpu_fulltrain*.yaml   # CPU, whole training sets (committed records):
#                                                          #   all tasks at levels 0/2 (glue_cpu_fulltrain),
#                                                          #   all tasks at levels 1/3, six scores (_levels),
#                                                          #   activation statistics, total persistence at level 2 (_scores),
#                                                          #   activation variance on the other tasks (_variance)
# obce pipeline --config params/glue_cpu_sst2_subset*.yaml # CPU, SST-2 on a 20,000-sentence subset, 1 epoch,
#                                                          #   levels 0-3 (committed records); _scores: mean
#                                                          #   |activation|, total persistence at levels 1-3
# obce pipeline --config params/ablations_cpu/*.yaml       # CPU ablations, same protocol (committed records)
# obce pipeline --config params/glue_cpu.yaml              # CPU, train subsets (committed records)
# obce pipeline --config params/glue_gpu.yaml              # the GPU protocol (whole training sets, max_length 128,
#                                                          #   levels 0-3, 6 scores, 3 seeds; SST-2 in
# obce pipeline --config params/glue_gpu_sst2.yaml         #   its own config, 1 epoch; records in part)
# ```
# Records go to `<out>/glue/<task>/<importance>-L<level>-s<seed>.json` (`out` is set in the config:
# `results/glue_fulltrain`, `results/glue_sst2_subset`, `results/glue_gpu`, ...), scores to `<out>/scores/`; a
# rerun skips finished records made with the same inputs, so a killed run resumes and a changed
# config reruns what it changes.
# Several configs run one after the other; all are checked before the first run starts.
# `--tasks`, `--importances`, `--levels` and `--seeds` restrict every config to some of its runs
# (e.g. one task per GPU call); the records are the same ones the whole config writes.
# `obce report results` prints the summary and the paired verdicts as markdown, one section per
# fine-tuning protocol (records of different protocols are never averaged together); with `--by-level`
# it prints one row per task and level and one column per score instead (the README's table).
#
# ## Ablations
# `params/ablations/` holds one config per open choice of the method: point-cloud representation
# (`representation_mean.yaml`, `representation_cls.yaml`), corpus size (`corpus_n128.yaml`,
# `corpus_n2048.yaml`) and source (`corpus_other_task.yaml`), and scoring the fine-tuned instead of
# the pretrained model (`score_finetuned.yaml`, which also runs the first-order Taylor baseline).
# Each writes to its own `results/ablations/<name>/`. Their CPU counterparts under the full-train
# protocol (STS-B at level 2, and RTE for `score_finetuned`; committed records in
# `results/ablations_cpu/<name>/`) are in
# `params/ablations_cpu/` (`representation_mean.yaml`, `representation_cls.yaml`, `corpus_n128.yaml`,
# `corpus_n2048.yaml`, `corpus_sst2.yaml`, `score_finetuned.yaml`); each has a `<name>_cola.yaml` twin
# that runs the same ablation on CoLA at level 3 (where $r_f$ does worst) into the same set. Chapter 5
# reads every set found there.
#
# ## On a lent GPU
# `benchmarks/README.md` describes the device runbook: `benchmarks/gpu/prepare_carry.sh` packs the
# wheels the GPU image lacks, a float16 copy of MiniLM (upcast to float32 on load, recorded in each
# record's provenance) and the GLUE files; `benchmarks/gpu/run_on_gpu.sh` runs the GPU protocol there
# (`benchmarks/gpu/glue_gpu*_carried.yaml`, the same configs on the carried model) as parallel per-task
# queues until a deadline, then the GPU benchmarks, and returns one tarball; the next call resumes.

# %% tags=["parameters"]
model_name = "bert-base-uncased"
config = "../params/glue_gpu.yaml"

# %% tags=["hide-input"]
import pandas as pd

import obce
from obce.pipeline import PipelineConfig, planned_runs

# %% [markdown]
# ## What a run would do
# Parameter accounting of the chosen architecture needs no weights:

# %%
pd.DataFrame(obce.parameter_table([model_name]))[["model", "level", "intermediate_size", "parameters", "reduction_percent"]]

# %% [markdown]
# The runs the full GLUE protocol plans (tasks x levels x scores x seeds):

# %%
cfg = PipelineConfig.from_yaml(config)
runs = planned_runs(cfg)
print(f"{len(runs)} runs over {len(cfg.tasks)} tasks; first ones:")
pd.DataFrame(runs[:8], columns=["task", "importance", "level", "seed"])

# %% [markdown]
# ## Summary
# - Notebooks: change parameters with `papermill -p`; the book: `obce book --profile quick|full`.
# - Library and CLI: see the README; every result file carries provenance.
