"""obce: Optimus BERT Compression and Explainability.

Prune the FFN intermediate neurons of BERT-family models by the zero-dimensional persistent
homology of their activations (Balderas, Lastra, Benitez, 2023)::

    import obce
    model, tokenizer = obce.load_model("minilm")
    texts = obce.load_corpus("sst2", n=256, glue_dir="path/to/glue")
    scores = obce.score_neurons(model, tokenizer, texts, max_length=64)   # (n_layers, n_neurons)
    small = obce.prune(model, scores, level=2)
    small.save_pretrained("out/")
"""
from __future__ import annotations

from .paths import absolutize_env

absolutize_env()  # OBCE_GLUE_DIR=../shared/glue means the caller's ../shared/glue, wherever obce runs later

from .activations import collect_ffn_activations, iter_ffn_activations  # noqa: E402
from .data import GLUE_TASKS, get_task, load_corpus, load_glue
from .errors import MissingResourceError, ObceInputError
from .models import build_architecture, embedded_model_path, ffn_layers, load_model
from .persistence import gudhi_diagram, h0_deaths, merge_radii, summarize
from .pruning import (count_parameters, keep_count, parameter_table, prune, prune_ffn_neurons,
                      select_neurons)
from .scoring import IMPORTANCES, score_neurons

from ._version import __version__  # noqa: E402

__all__ = [
    "GLUE_TASKS", "IMPORTANCES", "__version__", "MissingResourceError", "ObceInputError", "build_architecture",
    "collect_ffn_activations", "count_parameters", "embedded_model_path", "ffn_layers",
    "finetune_and_evaluate", "get_task", "gudhi_diagram", "h0_deaths", "iter_ffn_activations",
    "keep_count", "load_corpus", "load_glue", "load_model", "merge_radii", "parameter_table", "prune",
    "prune_ffn_neurons", "score_neurons", "select_neurons", "summarize",
]


def __getattr__(name: str):
    # The GLUE fine-tuning stack (Trainer, accelerate) is heavy to import; load it on first use.
    if name == "finetune_and_evaluate":
        from .glue import finetune_and_evaluate

        return finetune_and_evaluate
    raise AttributeError(f"module 'obce' has no attribute {name!r}")
