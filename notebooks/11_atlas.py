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
# # 11. Appendix: a neuron atlas
#
# ## Overview
#
# For each layer, the neurons with the highest and the lowest merge radius $r_f$ on a labelled
# corpus (the task and its size are in the parameters below). Each row gives:
# - $r_f$, and the neuron's percentile in its layer under every importance score (100: above all);
# - its label information: the oriented AUC of its mean activation as a classifier of the label
#   (one half is chance), or the absolute Spearman correlation for a regression task;
# - the tokens where it fires most, each with eight tokens of context either side (padding is
#   never a candidate), and the sentence its longest minimum-spanning-tree edge isolates
#   (chapter 4), in a second table.
#
# `obce explain --task T --layer K --neuron J` prints the same entry for any neuron.

# %% tags=["parameters"]
model_name = "minilm"
task = "sst2"
glue_dir = None  # default: $OBCE_GLUE_DIR, else the hub
split = "validation"
n_texts = 256
max_length = 48
extremes = 3  # neurons per end of each layer's r_f ranking
top_k = 3  # top-activating tokens shown per neuron
seed = 0

# %% tags=["hide-input"]
import pandas as pd
from IPython.display import HTML, display

import obce
from obce import get_task
from obce.book import setup_notebook, table
from obce.explain import atlas_table, neuron_atlas
from obce.models import encoder_layers

setup_notebook()
model, tokenizer = obce.load_model(model_name)
texts, labels = obce.load_corpus(task, n=n_texts, split=split, glue_dir=glue_dir, seed=seed, return_labels=True)
regression = get_task(task).is_regression
print(f"{len(texts)} {task} {split} texts, max_length {max_length}")

# %% tags=["hide-input"]
formats = {"r_f": "{:.3f}", "label AUC": "{:.3f}"}
for layer in range(len(encoder_layers(model))):
    entries = neuron_atlas(model, tokenizer, texts, labels, layer, max_length=max_length, regression=regression,
                           top_k=top_k, extremes=extremes)
    rows = pd.DataFrame(atlas_table(entries, tokens=top_k))
    rows.insert(0, "r_f rank", ["top"] * extremes + ["bottom"] * (len(rows) - extremes))
    words = ["top tokens", "isolated sentence"]
    pct = {c: "{:.0f}" for c in rows if c.endswith("pct")}
    display(HTML(f"<h3>Layer {layer}</h3>"))
    display(table(rows.drop(columns=words), {**formats, **pct}, index=False))
    display(table(rows[["neuron", *words]], index=False).set_properties(subset=words, **{"font-size": "0.85em"}))
