"""Every figure of the book: pure functions of result data, returning matplotlib figures."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .analysis.methods import did_not_learn, point_latencies
from .analysis.names import colour, join_words, legend, method_name


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

    fig, ax = plt.subplots(figsize=(7.5, 4))
    layers = np.repeat(np.arange(scores.shape[0]), scores.shape[1])
    sns.violinplot(x=layers, y=scores.ravel(), ax=ax, color="lightsteelblue", inner=None, cut=0, density_norm="width")
    styles = [(0.25, ":", "tab:green", "Q1: level 1 keeps above"), (0.5, "--", "tab:orange", "Q2: level 2 keeps above"),
              (0.75, "-", "tab:red", "Q3: level 3 keeps above")]
    for q, style, color, name in styles:
        qs = np.quantile(scores, q, axis=1)
        ax.hlines(qs, np.arange(len(qs)) - 0.38, np.arange(len(qs)) + 0.38, colors=color, linestyles=style,
                  linewidth=2.2, label=name)
    ax.set_xlabel("layer"), ax.set_ylabel(label)
    ax.legend(loc="upper left", fontsize=9, frameon=True)
    ax.set_title("Importance per layer and the quartile thresholds of levels 1-3")
    fig.tight_layout()
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


#: How the book names each GLUE main metric on an axis (values are shown x 100, as in every table).
METRIC_LABELS = {"matthews_correlation": "MCC", "f1": "F1", "pearson": "Pearson r", "accuracy": "accuracy",
                 "spearman": "Spearman rho"}


def plot_glue(summary: list[dict], floors: dict[str, float] | None = None, x: str = "level",
              ncols: int = 3, dodge: float = 0.06):
    """Main dev metric (x 100, the tables' scale) per level, one panel per task in a grid of at most
    ``ncols`` columns, one line per importance score (same colour in every panel), one legend below.

    Parameters
    ----------
    summary : rows of :func:`obce.analysis.stats.summarize_records`
    floors : dict of task to float, optional
        Majority-class score per task (0-1 scale), drawn as a dashed line.
    x : {"level", "parameters"}
        The horizontal axis: the pruning level (0 = unpruned) or the parameters kept (millions).
    ncols : int
        Panel columns (2-3 keep the panels legible at the book's ~700 px width).
    dodge : float
        Horizontal offset between scores, as a fraction of a level, so that error bars stay apart.
    """
    import matplotlib.pyplot as plt

    tasks = list(dict.fromkeys(r["task"] for r in summary))
    ncols = max(1, min(ncols, len(tasks)))
    nrows = -(-len(tasks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols + 0.6, 2.5 * nrows + 0.9), squeeze=False)
    methods = sorted({r["importance"] for r in summary if r["importance"] != "none"})
    handles = {}

    def where(r: dict, shift: float) -> float:
        if x == "parameters":
            return r["parameters"] / 1e6 + shift * 0.4
        return r["level"] + shift

    for ax, task in zip(axes.flat, tasks):
        base = [r for r in summary if r["task"] == task and r["importance"] == "none"]
        for i, m in enumerate(methods):
            own = [r for r in summary if r["task"] == task and r["importance"] == m]
            if not own:
                continue
            sub = sorted(base + own, key=lambda r: r["level"])
            shift = dodge * (i - (len(methods) - 1) / 2)
            handles[m] = ax.errorbar([where(r, shift if r["importance"] == m else 0.0) for r in sub],
                                     [100 * r["mean"] for r in sub], yerr=[100 * r["std"] for r in sub],
                                     marker="o", ms=3.5, lw=1.2, capsize=2, color=colour(m), label=legend(m))
        if floors and task in floors:
            handles["majority class"] = ax.axhline(100 * floors[task], ls="--", color="gray", lw=1,
                                                   label="majority class")
        metric = (base or [r for r in summary if r["task"] == task])[0]["metric"]
        ax.set_title(_task_title(task), fontsize=10)
        ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} x 100", fontsize=9)
        ax.tick_params(labelsize=8)
        if x == "parameters":
            ax.set_xlabel("parameters (M)", fontsize=9)
            ax.invert_xaxis()
        else:
            ax.set_xlabel("level (0 = unpruned)", fontsize=9)
            ax.set_xticks(sorted({r["level"] for r in summary}))
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.legend(list(handles.values()), [legend(k) for k in handles], loc="lower center", ncol=min(4, len(handles)),
               fontsize=8, frameon=False)
    legend_rows = -(-len(handles) // 4)
    fig.tight_layout(rect=(0, (0.12 + 0.2 * legend_rows) / fig.get_figheight(), 1, 1))
    return fig


def plot_posttrain(curves, compensation: str = "none", floors: dict[str, float] | None = None,
                   importances: Sequence[str] | None = None, ncols: int = 3):
    """Dev metric (x 100) against the fraction of FFN neurons kept, without retraining: one panel per
    task (grid of at most ``ncols`` columns), one line per score (mean over corpus draws, band: one
    standard deviation over draws), for one ``compensation``; one legend below.

    Parameters
    ----------
    curves : DataFrame from :func:`obce.analysis.posttrain.curves` (the first fine-tuning seed is drawn)
    floors : dict of task to the majority-class main metric (0-1 scale), drawn dashed
    importances : the scores drawn (default all), in this order
    """
    import matplotlib.pyplot as plt

    from .data import get_task

    c = curves[(curves["compensation"] == compensation) & (curves["seed"] == curves["seed"].min())]
    tasks = list(dict.fromkeys(c["task"]))
    names = list(importances or sorted(set(c["importance"])))
    ncols = max(1, min(ncols, len(tasks)))
    nrows = -(-len(tasks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols + 0.6, 2.5 * nrows + 1.0), squeeze=False)
    handles = {}
    for ax, task in zip(axes.flat, tasks):
        for m in names:
            line = c[(c["task"] == task) & (c["importance"] == m)].sort_values("keep_fraction")
            if not len(line):
                continue
            x, y, sd = line["keep_fraction"].to_numpy(), line["mean"].to_numpy(), line["std"].fillna(0).to_numpy()
            handles[m], = ax.plot(x, y, marker="o", ms=3, lw=1.2, color=colour(m), label=legend(m))
            ax.fill_between(x, y - sd, y + sd, color=colour(m), alpha=0.15, lw=0)
        if floors and task in floors:
            handles["majority class"] = ax.axhline(100 * floors[task], ls="--", color="gray", lw=1,
                                                   label="majority class")
        metric = get_task(task).main_metric
        ax.set_title(_task_title(task), fontsize=10)
        ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} x 100", fontsize=9)
        ax.set_xlabel("fraction of FFN neurons kept", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.invert_xaxis()
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    fig.legend(list(handles.values()), [legend(k) for k in handles], loc="lower center", ncol=min(4, len(handles)), fontsize=8,
               frameon=False)
    legend_rows = -(-len(handles) // 4)
    fig.tight_layout(rect=(0, (0.12 + 0.2 * legend_rows) / fig.get_figheight(), 1, 1))
    return fig


def plot_search(curves, variant: str = "tuned", floors: dict[str, float] | None = None,
                scores: Sequence[str] | None = None, dashed: str | None = "uniform_ffn", ncols: int = 3):
    """Dev metric (x 100) against the share of FLOPs kept, without retraining, inside Kwon et al.'s
    framework: one panel per task (at most ``ncols`` columns), one line per score for ``variant`` (mean
    over corpus draws; band: one standard deviation over draws), the same score dashed for ``dashed``
    (every head kept, one FFN width), open markers where a draw predicts one class; one legend below.

    Parameters
    ----------
    curves : DataFrame from :func:`obce.analysis.search.search_curves` (the first seed is drawn)
    floors : dict of task to the majority-class main metric (0-1 scale), drawn grey
    scores : the scores drawn (default all), in this order
    """
    import matplotlib.pyplot as plt

    from .data import get_task

    c = curves[curves["seed"] == curves["seed"].min()]
    tasks = list(dict.fromkeys(c["task"]))
    names = list(scores or sorted(set(c["score"])))
    ncols = max(1, min(ncols, len(tasks)))
    nrows = -(-len(tasks) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.9 * ncols + 0.6, 2.7 * nrows + 1.1), squeeze=False)
    handles: dict[str, object] = {}
    for ax, task in zip(axes.flat, tasks):
        for m in names:
            for v, style in ((variant, "-"), (dashed, "--")):
                line = c[(c["task"] == task) & (c["score"] == m) & (c["variant"] == v)].sort_values("flops_fraction")
                if v is None or not len(line):
                    continue
                x, y, sd = line["flops_fraction"].to_numpy(), line["mean"].to_numpy(), line["std"].fillna(0).to_numpy()
                h, = ax.plot(x, y, ls=style, marker="o", ms=3.5, lw=1.3, color=colour(m), label=legend(m))
                degenerate = line["degenerate"].to_numpy() > 0
                if degenerate.any():
                    ax.plot(x[degenerate], y[degenerate], ls="none", marker="o", ms=6, mfc="white", mec=colour(m))
                if style == "-":
                    handles[m] = h
                    ax.fill_between(x, y - sd, y + sd, color=colour(m), alpha=0.15, lw=0)
        if floors and task in floors:
            handles["majority class"] = ax.axhline(100 * floors[task], ls=":", color="gray", lw=1, label="majority class")
        metric = get_task(task).main_metric
        ax.set_title(_task_title(task), fontsize=11)
        ax.set_ylabel(f"{METRIC_LABELS.get(metric, metric)} x 100", fontsize=10)
        ax.set_xlabel("share of FLOPs kept", fontsize=10)
        ax.tick_params(labelsize=10)
        ax.invert_xaxis()
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    labels = [legend(k) for k in handles]
    fig.legend(list(handles.values()), labels, loc="lower center", ncol=min(3, len(handles)), fontsize=10, frameon=False)
    legend_rows = -(-len(handles) // 3)
    fig.tight_layout(rect=(0, (0.15 + 0.25 * legend_rows) / fig.get_figheight(), 1, 1))
    return fig


def _task_title(task: str) -> str:
    """A GLUE task's usual name (``STS-B``), or the name as given."""
    from .data import GLUE_TASKS

    return GLUE_TASKS[task].dir_name if task in GLUE_TASKS else task


def plot_cloud(cloud: np.ndarray, lengths: Sequence[int] | None = None, title: str = ""):
    """One neuron's cloud as an image: sentences (rows) x token positions (columns).

    Parameters
    ----------
    cloud : ndarray of shape (n_sentences, n_positions)
    lengths : sequence of int, optional
        Real tokens per sentence: positions past them are padding (0 in the cloud), drawn in grey
        so that they cannot be mistaken for real outputs near 0.
    """
    import matplotlib.pyplot as plt

    cloud = np.asarray(cloud, dtype=float)
    shown = np.ma.masked_array(cloud, mask=np.zeros_like(cloud, dtype=bool))
    if lengths is not None:
        shown.mask = np.arange(cloud.shape[1])[None, :] >= np.asarray(lengths)[:, None]
    real = cloud[~shown.mask] if shown.mask.any() else cloud.ravel()
    lim = float(np.quantile(np.abs(real), 0.99)) or 1.0  # one extreme output must not wash out the rest
    cmap = plt.get_cmap("RdBu_r").copy()
    cmap.set_bad("0.75")
    fig, ax = plt.subplots(figsize=(7, 3.4))
    im = ax.imshow(shown, aspect="auto", cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
    fig.colorbar(im, ax=ax, label="activation (clipped at the 99th percentile)", extend="both")
    ax.set_xlabel("token position (grey: padding, stored as 0)"), ax.set_ylabel("sentence (point)")
    ax.set_title(title)
    return fig

def plot_depth(scores: dict[str, np.ndarray], labels: dict[str, str] | None = None):
    """One panel per score: its distribution over the neurons of each layer (boxes, no outlier
    dots) and its median per layer (line), to show how the score changes with depth.

    Parameters
    ----------
    scores : dict of name to ndarray of shape (n_layers, n_neurons), at most 3 entries
    labels : dict of name to axis label, optional
    """
    import matplotlib.pyplot as plt

    names = list(scores)
    fig, axes = plt.subplots(1, len(names), figsize=(3.7 * len(names), 3.4), squeeze=False)
    for ax, name in zip(axes[0], names):
        s = np.asarray(scores[name])
        ax.boxplot(list(s), positions=np.arange(len(s)), showfliers=False, widths=0.6)
        ax.plot(np.arange(len(s)), np.median(s, axis=1), color="tab:red", marker="o", ms=3, lw=1.2)
        ax.set_xlabel("layer"), ax.set_ylabel((labels or {}).get(name, name.replace("_", " ")))
    fig.tight_layout()
    return fig


NULL_STYLES = {"real": ("tab:blue", "-"), "shuffled": ("tab:orange", "--"), "random": ("tab:gray", ":")}


def plot_null_deaths(deaths: dict[int, dict[str, np.ndarray]], neurons: dict[int, int]):
    """H0 deaths of one neuron per layer on the real corpus and on null corpora, largest first
    (an H0 diagram's points all have birth 0, so the sorted deaths are the whole diagram).

    Parameters
    ----------
    deaths : dict of layer to dict of corpus kind ("real", "shuffled", "random") to ndarray of
        shape (n_points - 1,)
    neurons : dict of layer to the neuron shown
    """
    import matplotlib.pyplot as plt

    layers = sorted(deaths)
    cols = min(3, len(layers))
    rows = -(-len(layers) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.5, 2.4 * rows + 0.5), squeeze=False, sharex=True)
    for ax, layer in zip(axes.flat, layers):
        for kind, d in deaths[layer].items():
            color, style = NULL_STYLES.get(kind, ("black", "-"))
            ax.plot(np.arange(1, len(d) + 1), np.sort(d)[::-1], color=color, ls=style, lw=1.5, label=kind)
        ax.set_yscale("log")
        ax.set_title(f"layer {layer}, neuron {neurons[layer]}", fontsize=10)
    for ax in axes[:, 0]:
        ax.set_ylabel("H0 death")
    for ax in axes[-1]:
        ax.set_xlabel("rank (largest = $r_f$)")
    for ax in axes.flat[len(layers):]:
        ax.set_visible(False)
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, [f"{n} corpus" for n in names], loc="upper center", ncol=len(names), frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def plot_information(information: np.ndarray, scores: np.ndarray, label: str = "merge radius $r_f$",
                     info_label: str = "label information (AUC)"):
    """Label information of every neuron against its score, one panel per layer (log x).

    Parameters
    ----------
    information, scores : ndarrays of shape (n_layers, n_neurons)
    """
    import matplotlib.pyplot as plt

    n = len(scores)
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.5, 2.4 * rows + 0.3), squeeze=False, sharey=True)
    for layer, ax in enumerate(axes.flat[:n]):
        x = np.asarray(scores[layer])
        ax.scatter(np.clip(x, x[x > 0].min() if (x > 0).any() else 1e-12, None), information[layer], s=3,
                   alpha=0.35, color="tab:blue", rasterized=True)
        ax.set_xscale("log")
        ax.set_title(f"layer {layer}", fontsize=10)
    for ax in axes[:, 0]:
        ax.set_ylabel(info_label)
    for ax in axes[-1]:
        ax.set_xlabel(label)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def plot_methods(points: list[dict], names=None, metric_label: str = "GLUE average x 100",
                 latency: dict[tuple[str, int], float] | None = None, floor: float | None = None):
    """Encoder parameters (left, log scale) and CPU latency (right; run time of a run where no latency
    is given) against the GLUE score averaged over tasks: one line per method through its budgets
    (levels), a diamond for a method with a size of its own, error bars the standard deviation over
    seeds, the unpruned model a star, the majority-class average a dashed line; a point whose runs
    all predict one class is a hollow marker ("did not learn" in the legend); one legend.

    Parameters
    ----------
    points : rows of :func:`obce.analysis.methods.method_points`
    names : callable, method label -> legend name (default :func:`obce.analysis.names.method_name`)
    metric_label : the y axis' label (name the tasks averaged)
    latency : (method, level) -> milliseconds of a forward (:func:`obce.analysis.methods.point_latencies`)
    floor : the majority-class prediction's average over the same tasks (x 100)
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    names = names or method_name
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 4.2), sharey=True)
    methods = [m for m in dict.fromkeys(p["method"] for p in points) if m != "none"]
    sd = [0 if p["seed_std"] != p["seed_std"] else p["seed_std"] for p in points]
    spread = dict(zip(map(id, points), sd))
    right = ("latency", 1.0, "CPU latency (ms, batch 32 x 128 tokens)") if latency else \
        ("train_time_s", 60, "run time (min, 2 CPU cores)")

    def value(p: dict, key: str, scale: float) -> float:
        if key == "latency":
            return latency.get((p["method"], p["level"]), float("nan"))
        return p[key] / scale

    for ax, (key, scale, label) in zip(axes, (("parameters", 1e6, "encoder parameters (M, log scale)"), right)):
        for m in methods:
            own = sorted((p for p in points if p["method"] == m), key=lambda p: p["level"])
            main = m in ("layer_removal", "masks", "kronecker", "merge_radius", "combined", "eelbert")
            single = all(p.get("own") for p in own)  # a size of its own: one point, no line
            xs = [value(p, key, scale) for p in own]
            if all(x != x for x in xs):
                continue
            ax.errorbar(xs, [p["score"] for p in own], yerr=[spread[id(p)] for p in own],
                        marker="D" if single else "o", ms=6 if single else 4, lw=1.6 if main else 1.0,
                        ls="none" if single else "-" if main else ":", capsize=2, color=colour(m), label=names(m))
            for p, x in zip(own, xs):
                if did_not_learn(p):
                    ax.plot([x], [p["score"]], marker="o", ms=11, mfc="none", mec="black", ls="none",
                            label="did not learn (all runs one class)")
        for p in points:
            if p["method"] == "none":
                ax.errorbar([value(p, key, scale)], [p["score"]], yerr=[spread[id(p)]], marker="*", ms=12, color="black", ls="none",
                            capsize=2, label=names("none"))
        if floor is not None and floor == floor:
            ax.axhline(floor, color="0.4", ls="--", lw=1, label="majority class")
        ax.set_xlabel(label)
    axes[0].set_xscale("log")
    from matplotlib.ticker import FuncFormatter

    axes[0].xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    axes[0].xaxis.set_minor_formatter(FuncFormatter(lambda x, _: f"{x:g}" if f"{x:g}"[0] in "25" else ""))
    axes[0].set_ylabel(metric_label)
    found: dict[str, object] = {}
    for ax in axes:  # one entry per name, from whichever panel drew it
        for h, lab in zip(*ax.get_legend_handles_labels()):
            found.setdefault(lab, h)
    if "did not learn (all runs one class)" in found:
        found["did not learn (all runs one class)"] = Line2D([], [], marker="o", ms=9, mfc="none", mec="black", ls="none")
    labels, handles = list(found), list(found.values())
    # as many columns as the longest name leaves room for in the figure's width (at most 3)
    width = fig.get_size_inches()[0]
    ncol = int(max(1, min(3, width // (0.065 * max(map(len, labels), default=1) + 0.45))))
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.03 + 0.05 * (-(-len(labels) // ncol)), 1, 1))
    return fig


def methods_figure(cmp: dict, floors: dict[str, float], latency_rows: list[dict] | None = None):
    """Chapter 7's and the README's figure from :func:`obce.analysis.methods.compare_methods`'s result:
    every point over the comparison's tasks, the y axis naming them, the majority-class average, and
    CPU latency on the right (``latency_rows``: the rows of ``benchmarks/bench_methods.py``'s record;
    run time where none)."""
    from .data import get_task

    tasks = cmp["tasks"]
    floor = 100 * float(np.mean([floors[t] for t in tasks]))
    label = "GLUE average x 100\n(" + ", ".join(get_task(t).dir_name for t in tasks) + ")"
    latency = point_latencies(cmp["points"], latency_rows) if latency_rows else None
    return plot_methods(cmp["points"], metric_label=label, latency=latency, floor=floor)
