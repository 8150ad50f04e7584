"""Every figure of the book: pure functions of result data, returning matplotlib figures."""
from __future__ import annotations

from typing import Sequence

import numpy as np


def set_style() -> None:
    """The book's one matplotlib/seaborn style."""
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    mpl.rcParams.update({"figure.dpi": 96, "savefig.dpi": 96, "figure.figsize": (7.5, 4.0),
                         "axes.titlesize": 11, "axes.labelsize": 10})


def plot_filtration(points: np.ndarray, radii: Sequence[float]):
    """Vietoris-Rips complexes of 2-D points at several radii: edges of length <= r, balls of
    diameter r (two balls touch exactly when their centres are r apart).

    Parameters
    ----------
    points : ndarray of shape (n_points, 2)
    radii : sequence of float
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    fig, axes = plt.subplots(1, len(radii), figsize=(3.2 * len(radii), 3.2), squeeze=False)
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    for ax, r in zip(axes[0], radii):
        for p in points:
            ax.add_patch(Circle(p, r / 2, alpha=0.12, color="tab:blue", lw=0))
        i, j = np.nonzero(np.triu(d <= r, 1))
        for a, b in zip(i, j):
            ax.plot(*points[[a, b]].T, color="tab:gray", lw=0.8)
        ax.scatter(*points.T, s=14, color="tab:blue", zorder=3)
        ax.set_title(f"r = {r:.2f}")
        ax.set_aspect("equal")
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_barcode(diagram: np.ndarray, ax=None, title: str = "H0 barcode"):
    """Bars [birth, death) of an H0 diagram of shape (n, 2); the infinite bar drawn to the edge."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5, 3.2))[1]
    dgm = diagram[np.argsort(diagram[:, 1])]
    finite = dgm[np.isfinite(dgm[:, 1]), 1]
    top = (finite.max() if len(finite) else 1.0) * 1.15
    for k, (b, dth) in enumerate(dgm):
        ax.plot([b, dth if np.isfinite(dth) else top], [k, k], color="tab:red" if not np.isfinite(dth) else "tab:blue",
                lw=1.6)
    if len(finite):
        ax.axvline(finite.max(), ls="--", color="k", lw=0.8, label=f"$r_f$ = {finite.max():.3g}")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("filtration value (edge length)")
    ax.set_yticks([])
    ax.set_title(title)
    return ax.figure


def plot_diagram(diagram: np.ndarray, ax=None, title: str = "H0 diagram"):
    """Persistence diagram (birth, death); the infinite point drawn on a dashed line at the top."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(3.6, 3.4))[1]
    finite = diagram[np.isfinite(diagram[:, 1])]
    top = (finite[:, 1].max() if len(finite) else 1.0) * 1.15
    ax.scatter(finite[:, 0], finite[:, 1], s=14, color="tab:blue", label="finite")
    n_inf = int((~np.isfinite(diagram[:, 1])).sum())
    ax.scatter([0] * n_inf, [top] * n_inf, s=30, marker="^", color="tab:red", label="infinite")
    ax.axhline(top, ls=":", color="tab:red", lw=0.8)
    ax.plot([0, top], [0, top], color="k", lw=0.6)
    ax.set_xlim(-0.05 * top, top * 1.05), ax.set_ylim(-0.05 * top, top * 1.08)
    ax.set_xlabel("birth"), ax.set_ylabel("death")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title)
    return ax.figure


def plot_scores_by_layer(scores: np.ndarray, label: str = "merge radius $r_f$"):
    """Distribution of scores per layer (violins) with each layer's Q1/Q2/Q3 marked.

    Parameters
    ----------
    scores : ndarray of shape (n_layers, n_neurons)
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(8, 4))
    layers = np.repeat(np.arange(scores.shape[0]), scores.shape[1])
    sns.violinplot(x=layers, y=scores.ravel(), ax=ax, color="lightsteelblue", inner=None, cut=0, density_norm="width")
    for q, style, name in [(0.25, ":", "Q1 (level 1)"), (0.5, "--", "Q2 (level 2)"), (0.75, "-", "Q3 (level 3)")]:
        qs = np.quantile(scores, q, axis=1)
        ax.scatter(np.arange(len(qs)), qs, marker="_", s=700, color="k", linestyle=style, label=name,
                   linewidths=1.0 + 2 * q)
    ax.set_xlabel("layer"), ax.set_ylabel(label)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("Neuron importance per layer; each level keeps the neurons above its quartile")
    return fig


def plot_parameters(rows: list[dict]):
    """Parameters kept versus level for each architecture (rows of ``parameter_table``)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in dict.fromkeys(r["model"] for r in rows):
        sub = [r for r in rows if r["model"] == name]
        ax.plot([r["level"] for r in sub], [r["parameters"] / 1e6 for r in sub], marker="o", label=name)
    ax.set_xlabel("level (0 = unpruned)"), ax.set_ylabel("parameters (millions)")
    ax.set_xticks([0, 1, 2, 3])
    ax.legend()
    return fig


def plot_drift(rows: list[dict]):
    """Output drift of pruned models versus level, one line per importance score.

    Parameters
    ----------
    rows : list of dict with keys ``importance``, ``level``, ``relative_error``
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in dict.fromkeys(r["importance"] for r in rows):
        sub = sorted((r for r in rows if r["importance"] == name), key=lambda r: r["level"])
        ax.plot([r["level"] for r in sub], [r["relative_error"] for r in sub], marker="o", label=name)
    ax.set_xlabel("level"), ax.set_ylabel("relative L2 change of the last hidden state")
    ax.set_xticks(sorted({r["level"] for r in rows}))
    ax.legend()
    return fig


def plot_glue(summary: list[dict], baselines: dict[str, float] | None = None, dodge: float = 0.08):
    """Main dev metric versus parameters kept, one panel per task, one line per importance (same
    colour in every panel, one legend for the figure).

    Parameters
    ----------
    summary : rows of :func:`obce.report.summarize_records`
    baselines : dict of task to float, optional
        Majority-class score per task, drawn as a dashed line.
    dodge : float
        Horizontal offset between methods, in millions of parameters, so that error bars at the
        same level stay apart (0 to draw them at the exact count).
    """
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in summary))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.4 * len(tasks) + 2.2, 3.4), squeeze=False)
    methods = sorted({r["importance"] for r in summary if r["importance"] != "none"})
    colors = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    handles = {}
    for ax, task in zip(axes[0], tasks):
        base = [r for r in summary if r["task"] == task and r["importance"] == "none"]
        for i, m in enumerate(methods):
            own = [r for r in summary if r["task"] == task and r["importance"] == m]
            if not own:
                continue
            sub = sorted(base + own, key=lambda r: -r["parameters"])
            shift = dodge * (i - (len(methods) - 1) / 2)
            handles[m] = ax.errorbar([r["parameters"] / 1e6 + (shift if r["importance"] == m else 0) for r in sub],
                                     [r["mean"] for r in sub], yerr=[r["std"] for r in sub], marker="o",
                                     capsize=3, color=colors[m], label=m)
        if baselines and task in baselines:
            handles["majority class"] = ax.axhline(baselines[task], ls="--", color="gray", lw=1,
                                                   label="majority class")
        ax.set_title(task)
        ax.set_xlabel("parameters (M)")
        ax.set_ylabel(base[0]["metric"] if base else "")
        ax.invert_xaxis()
    fig.legend(list(handles.values()), list(handles), loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1 - 2.2 / fig.get_figwidth(), 1))
    return fig


def plot_cloud(cloud: np.ndarray, title: str = ""):
    """One neuron's cloud as an image: sentences (rows) x token positions (columns)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    lim = np.abs(cloud).max() or 1.0
    im = ax.imshow(cloud, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="activation")
    ax.set_xlabel("token position"), ax.set_ylabel("sentence (point)")
    ax.set_title(title)
    return fig
