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
# # 2. Activation collection
#
# ## Overview
#
# The point cloud of a neuron is made of its outputs over a corpus. This chapter
# collects them with forward hooks on the embedded MiniLM, shows one neuron's cloud, the role of
# padding, and the memory the clouds take.
#
# After this chapter you can
# - collect the FFN activations of every layer with forward hooks;
# - explain why padding is masked to zero and what a sentence's point is;
# - estimate the memory the clouds take before collecting them.
#
# ## Prerequisites
#
# Chapter 1; a BERT encoder's FFN: `intermediate.dense` (hidden -> FFN size),
# the activation function, `output.dense` (FFN size -> hidden).
#
# Run time and hardware: well under the quick profile's 3 minutes on 2 CPU cores; the full profile's corpus too runs on a CPU; no GPU.

# %% tags=["parameters"]
model_name = "minilm"
task = "sst2"
glue_dir = None  # default: $OBCE_GLUE_DIR, else the hub
n_texts = 32
max_length = 32
layer = 0
seed = 0

# %% tags=["hide-input"]
import pandas as pd
import torch

import obce
from obce import plots
from obce.activations import activation_bytes, token_lengths
from obce.book import setup_notebook

setup_notebook()

# %% [markdown]
# ## The model and the corpus

# %%
model, tokenizer = obce.load_model(model_name)
texts = obce.load_corpus(task, n=n_texts, split="train", glue_dir=glue_dir, seed=seed)
print(type(model).__name__, f"{obce.count_parameters(model):,} parameters;",
      len(obce.ffn_layers(model)), "layers of", obce.ffn_layers(model)[0][0].out_features, "FFN neurons")
print(texts[:3])

# %% [markdown]
# ## Hooks
#
# A forward hook on each block's `intermediate` module receives the FFN activations after the
# activation function, shape (batch, tokens, neurons). obce writes them, transposed, into one array
# per layer of shape (neurons, sentences, token positions): neuron $j$'s point for sentence $i$ is
# its output at positions $0..L-1$. Padding positions are set to 0, so a short sentence is a point
# whose trailing coordinates are 0. Positions that are padding for every sentence are not stored:
# they would add 0 to every distance.

# %%
clouds = obce.collect_ffn_activations(model, tokenizer, texts, max_length=max_length, progress=False)
lengths = token_lengths(tokenizer, texts, max_length)
cl = clouds[layer]
print("cloud array of layer", layer, tuple(cl.shape), "(neurons, sentences, positions)")
assert all(torch.all(cl[:, i, n:] == 0) for i, n in enumerate(lengths.tolist()))
print("padding positions are 0 for every sentence; lengths:", lengths.tolist()[:10], "...")

# %% [markdown]
# A representative neuron: the one whose output spread over real tokens is the layer's median
# (a neuron chosen for its largest output would show one bright token and little else).

# %% mystnb={"figure": {"caption": "The point cloud of one neuron: each row is a sentence (a point), each column a token position. Padding positions (grey) are stored as 0.", "name": "fig-cloud"}}
real = torch.arange(cl.shape[2])[None, :] < lengths[:, None]  # (sentences, positions)
spread = torch.stack([cl[j][real].std() for j in range(cl.shape[0])])
neuron = int(spread.argsort()[len(spread) // 2])
fig = plots.plot_cloud(cl[neuron].numpy(), lengths=lengths.tolist(),
                       title=f"layer {layer}, neuron {neuron} (median spread over real tokens)")

# %% [markdown]
# ## Memory bound
#
# A layer's clouds take `neurons x sentences x L x 4` bytes (float32). `obce` collects layers in
# groups that fit a memory budget (`memory_budget`, default 4 GiB), one forward pass per group, and
# scores each layer as soon as its clouds are complete, so at most one group's clouds are held.

# %%
rows = []
for name, neurons, n_layers in [("MiniLM-L6", 1536, 6), ("BERT-Base", 3072, 12), ("BERT-Large", 4096, 24)]:
    for n, L in [(256, 64), (512, 128)]:
        per_layer = activation_bytes(neurons, n, L)
        rows.append(dict(model=name, sentences=n, L=L, MiB_per_layer=round(per_layer / 2**20),
                         GiB_all_layers=round(n_layers * per_layer / 2**30, 2)))
pd.DataFrame(rows)

# %% [markdown]
# ## Summary
# - Hooks on `intermediate` give every FFN neuron's outputs; the cloud of a neuron has one point per
#   sentence, coordinates = token positions, padding = 0 (tested in `tests/test_activations.py`
#   against a manual recomputation from the layer's input).
# - Alternatives: `representation="mean"` (mean over real tokens) and `"cls"` (position 0).
# - Memory is bounded per group of layers (the table above gives BERT-Large's per layer).
#
# ## Exercises
#
# :::{exercise}
# :label: ex-02-1
# Each sentence's point has one coordinate per token position (padding set to 0). Mean-pool a neuron's cloud over the tokens yourself, `cloud.mean(axis=-1, keepdims=True)` for the cloud shown above. What is its shape now, and what does a sentence's point lose?
# :::
#
# :::{solution} ex-02-1
# :class: dropdown
# `(sentences, 1)`: one number per sentence. Word order and the sentence's length are gone, and the padding zeros now pull short sentences towards 0 unless you divide by the true lengths.
# :::
#
# :::{exercise}
# :label: ex-02-2
# Rerun with `-p task mrpc`: pair tasks encode both sentences as one input. How do the lengths and the memory per layer change?
# :::
#
# :::{solution} ex-02-2
# :class: dropdown
# The inputs are longer (two sentences and a separator), so more of them reach `max_length` and fewer positions are padding; the memory per layer depends on `max_length` and the corpus size, not on the task.
# :::
#
# :::{exercise}
# :label: ex-02-3
# Pick the neuron with the largest spread instead of the median one. Is its cloud dominated by one position?
# :::
#
# :::{solution} ex-02-3
# :class: dropdown
# Often by the first position ([CLS]) or the separator, which every sentence has: such a neuron's points differ mostly in one coordinate.
# :::
#
# ## What's next
# Chapter 3 scores every neuron of these clouds by $r_f$.
