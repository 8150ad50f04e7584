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
# # 1. Theory: zero-dimensional persistent homology
#
# ## Overview
#
# OBCE scores a neuron by the shape of its outputs over a corpus. This chapter builds
# the one topological tool it uses, zero-dimensional persistent homology (H0) of a Vietoris-Rips
# filtration {cite}`edelsbrunner2010computational`, on small point clouds we can draw, and checks
# every claim numerically against gudhi {cite}`gudhi`.
#
# After this chapter you can
# - build a Vietoris-Rips filtration of a small point cloud and read its H0 barcode and diagram;
# - show that the finite H0 deaths are the edge lengths of a minimum spanning tree;
# - compute a neuron's merge radius $r_f$, OBCE's score, and check it against gudhi.
#
# ## Prerequisites
#
# Distances between points; a minimum spanning tree.
#
# Run time and hardware: seconds in every profile, on any CPU; no GPU.

# %% tags=["parameters"]
seed = 0
n_per_cluster = 5
radii = [0.3, 0.9, 1.6, 3.2]

# %% tags=["hide-input"]
import numpy as np
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

import obce
from obce import plots
from obce.book import setup_notebook

setup_notebook()

# %% [markdown]
# ## A point cloud and its filtration
#
# Three small clusters in the plane. The Vietoris-Rips complex at radius $r$ joins every two points
# at distance at most $r$ (gudhi's convention: the filtration value of an edge is its length).
# Growing $r$ gives a nested sequence of graphs, the *filtration*. Drawn below with balls of
# diameter $r$: two balls touch exactly when their centres are joined.

# %% mystnb={"figure": {"caption": "Vietoris-Rips complexes of three clusters at growing radii.", "name": "fig-filtration"}}
rng = np.random.default_rng(seed)
centres = np.array([[0.0, 0.0], [2.5, 0.5], [1.0, 2.6]])
points = np.concatenate([c + 0.25 * rng.normal(size=(n_per_cluster, 2)) for c in centres])
fig = plots.plot_filtration(points, radii)

# %% [markdown]
# ## Barcode and diagram
#
# H0 counts connected components. At $r=0$ every point is its own component (all *born* at 0);
# when an edge joins two components, one of them *dies* at that edge's length. One component never
# dies (the infinite bar). The barcode draws each component's life as a bar; the diagram plots
# (birth, death) pairs.

# %% mystnb={"figure": {"caption": "H0 barcode and diagram of the cloud (gudhi). The dashed line is the merge radius r_f.", "name": "fig-barcode"}}
import matplotlib.pyplot as plt

diagram = obce.gudhi_diagram(points)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
plots.plot_barcode(diagram, ax=ax1)
plots.plot_diagram(diagram, ax=ax2)
fig.tight_layout()

# %% [markdown]
# The two long finite bars are the clusters merging; the short ones are points joining their own
# cluster. There are exactly $N$ points in the diagram: $N-1$ finite deaths and one infinite one.

# %%
print(f"{len(points)} points -> {len(diagram)} diagram points, "
      f"{int(np.isfinite(diagram[:, 1]).sum())} finite")

# %% [markdown]
# ## Why H0 deaths are the edges of a minimum spanning tree
#
# Process the edges by increasing length and keep those that join two different components: this
# is exactly Kruskal's algorithm, and the kept edges form a minimum spanning tree (MST). Each kept
# edge kills one component at its length. So the finite H0 deaths are the $N-1$ MST edge lengths,
# which is what obce's fast path computes (Prim's algorithm, many neurons at once). Checked here
# three ways: gudhi, scipy's MST, and `obce.h0_deaths`.

# %%
dist = squareform(pdist(points))
mst_edges = np.sort(minimum_spanning_tree(dist).data)
gudhi_deaths = np.sort(diagram[np.isfinite(diagram[:, 1]), 1])
fast_deaths = obce.h0_deaths(points[None])[0]
assert np.allclose(mst_edges, gudhi_deaths, rtol=1e-12) and np.allclose(fast_deaths, gudhi_deaths, rtol=1e-6)
print("largest deaths (gudhi, MST, obce):", gudhi_deaths[-3:].round(4), mst_edges[-3:].round(4),
      fast_deaths[-3:].round(4))

# %% [markdown]
# ## The merge radius of a neuron
#
# The importance OBCE gives a neuron is its **merge radius** $r_f$: the largest finite death, the
# radius at which the whole cloud has become one component. A neuron whose outputs hardly change
# from sentence to sentence has a cloud that connects at a small radius (a constant neuron has
# $r_f = 0$); a neuron whose outputs separate sentences has a large $r_f$. Below: at $r_f$ the
# complex is connected, just below it is not.

# %%
r_f = obce.merge_radii(points[None], method="gudhi")[0]  # exact, float64
n_at = connected_components(dist <= r_f, directed=False)[0]
n_below = connected_components(dist <= r_f * (1 - 1e-9), directed=False)[0]
assert n_at == 1 and n_below == 2
print(f"r_f = {r_f:.4f}: {n_at} component at r_f, {n_below} just below")
assert obce.merge_radii(np.ones((1, 10, 3)))[0] == 0.0  # a constant neuron

# %% [markdown]
# Other summaries of the same deaths are available as importance scores: total persistence (their
# sum) and mean death.
#
# ## Summary
# - H0 of a Vietoris-Rips filtration tracks how the points merge into one component.
# - Its $N-1$ finite deaths are the MST edge lengths (checked against gudhi and scipy).
# - The merge radius $r_f$ is the largest of them: OBCE's score of a neuron.
#
# ## Exercises
#
# :::{exercise}
# :label: ex-01-1
# Rerun with `-p n_per_cluster 20`. How many finite deaths are there now, and how many of them are large?
# :::
#
# :::{solution} ex-01-1
# :class: dropdown
# With $N$ points there are $N-1$ finite deaths (one component never dies). Two of them are large: the two merges of one cluster with another; the rest are the short edges inside the clusters.
# :::
#
# :::{exercise}
# :label: ex-01-2
# Move one point far from all clusters (edit the cloud in a new cell). Which death changes, and by how much?
# :::
#
# :::{solution} ex-01-2
# :class: dropdown
# The point joins last, through the shortest edge from it to any other point, so the largest death becomes that distance: $r_f$ is that point's distance to its nearest neighbour. One outlier can set a neuron's score.
# :::
#
# :::{exercise}
# :label: ex-01-3
# Scale the cloud by 10. What happens to every death?
# :::
#
# :::{solution} ex-01-3
# :class: dropdown
# Every distance, hence every death, is multiplied by 10: $r_f$ is in the units of the activations, so neurons are compared within a layer, where the levels' quartiles are taken.
# :::
#
# ## What's next
# Chapter 2 builds the point clouds of real neurons: the outputs of MiniLM's FFN neurons over a corpus.
