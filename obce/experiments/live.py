"""A live experiment for a class: one task, a few scores at one level, fine-tuned in minutes on a CPU.

The committed protocols (:mod:`obce.experiments.glue_protocol`) take hours; a chapter read in class
runs this small version of the same comparison instead and shows it beside the committed records.
It uses whatever GLUE data is at hand (the full TSVs, the hub, or the package's sample), which its
rows name.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..data import data_description, get_task, load_corpus
from ..errors import ObceInputError
from ..glue import finetune_and_evaluate
from ..models import load_model
from ..pruning import prune
from ..scoring import IMPORTANCES, score_neurons

__all__ = ["live_comparison"]


def live_comparison(task: str = "sst2", importances: Sequence[str] = ("merge_radius", "activation_variance", "random"),
                    level: int = 2, model_name: str = "minilm", n_score: int = 256, n_train: int = 2000,
                    epochs: float = 1, max_length: int = 64, seed: int = 0, glue_dir=None,
                    progress: bool = False) -> list[dict[str, Any]]:
    """The unpruned model and the model pruned by each score at ``level``, each fine-tuned on
    ``n_train`` training sentences of ``task`` for ``epochs`` and evaluated on its dev split.

    Returns
    -------
    list of dict, one per model: ``score`` ("none" for the unpruned model), ``level``, ``metric``,
    ``value`` (x 100), ``degenerate`` (one predicted class), ``train_size``, ``data``, ``seconds``
    """
    bad = [s for s in importances if s not in IMPORTANCES]
    if bad:
        raise ObceInputError(f"live_comparison importances {bad}: expected some of {list(IMPORTANCES)}")
    info = get_task(task)
    model, tokenizer = load_model(model_name)
    texts = load_corpus(info.name, n=n_score, split="train", glue_dir=glue_dir, seed=seed)
    ft = dict(tokenizer=tokenizer, glue_dir=glue_dir, epochs=epochs, max_train_samples=n_train,
              max_length=max_length, seed=seed, progress=progress, lr=5e-5)
    runs = [("none", 0, model)]
    for imp in importances:
        scores = score_neurons(model, tokenizer, texts, importance=imp, max_length=max_length, seed=seed,
                               progress=progress)
        runs.append((imp, level, prune(model, scores, level=level)))
    rows = []
    for imp, lv, m in runs:
        res = finetune_and_evaluate(m, info.name, **ft)
        value = res.metrics.get(info.main_metric)
        rows.append(dict(score=imp, level=lv, metric=info.main_metric, value=float("nan") if value is None else 100 * value,
                         degenerate=res.degenerate, train_size=res.provenance["train_size"],
                         data=data_description(info.name, glue_dir), seconds=res.provenance["wall_time_s"]))
    return rows
