"""One name and one colour per score and method, for every figure, table and sentence of the book.

Each key (an importance score such as ``merge_radius``, a method label such as ``layer_removal``, or
``none`` for the unpruned model) has a :class:`Name`: how prose says it (``prose``), how a table
column heads it (``short``), how a figure's legend and the comparison of methods call it
(``method``), and its colour. A key not in :data:`NAMES` reads as itself with underscores as spaces.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..text import join_words

__all__ = ["NAMES", "Name", "SHORT_VERDICTS", "colour", "join_words", "legend", "method_name", "prose_name",
           "short_name"]


@dataclass(frozen=True)
class Name:
    """The names and colour of one score or method."""

    prose: str
    short: str
    method: str
    colour: str


#: Every score and method the book shows. Persistence scores are reds, activation statistics blues,
#: gradient scores greens, data-free scores browns and greys; other methods take the other hues.
NAMES: dict[str, Name] = {
    "merge_radius": Name("r_f", "r_f", "OBCE (r_f)", "#d62728"),
    "total_persistence": Name("total persistence", "total pers.", "FFN pruning by total persistence", "#ff9896"),
    "mean_death": Name("mean death", "mean death", "FFN pruning by mean death", "#c49c94"),
    "activation_variance": Name("activation variance", "variance", "FFN pruning by variance", "#1f77b4"),
    "mean_abs_activation": Name("mean |activation|", "mean |a|", "FFN pruning by mean |activation|", "#aec7e8"),
    "wifv": Name("WIFV (variance x output-weight norm)", "wifv", "FFN pruning by WIFV", "#17becf"),
    "fisher": Name("Fisher importance", "fisher", "FFN pruning by Fisher importance", "#2ca02c"),
    "fisher_text": Name("Fisher importance per text", "fisher/text", "FFN pruning by Fisher importance per text",
                        "#006400"),
    "taylor": Name("Taylor importance", "taylor", "FFN pruning by Taylor importance", "#98df8a"),
    "magnitude": Name("weight magnitude", "magnitude", "FFN pruning by weight magnitude", "#8c564b"),
    "random": Name("random neurons", "random", "FFN pruning of random neurons", "#7f7f7f"),
    "layer_removal": Name("FFN sub-layer removal", "layer removal", "FFN sub-layer removal", "#9467bd"),
    "masks": Name("adapting by pruning", "masks", "adapting by pruning (masks)", "#ff7f0e"),
    "kronecker": Name("KroneckerBERT", "Kronecker", "KroneckerBERT (two-stage distillation)", "#bcbd22"),
    "kronecker_19x": Name("KroneckerBERT at 19x", "Kronecker 19x", "KroneckerBERT at 19x (two-stage distillation)",
                          "#dbdb8d"),
    "kronecker_task_only": Name("KroneckerBERT without general distillation", "Kronecker (task only)",
                                "KroneckerBERT, task distillation only", "#8c8c2d"),
    "kronecker_19x_task_only": Name("KroneckerBERT at 19x without general distillation", "Kronecker 19x (task only)",
                                    "KroneckerBERT at 19x, task distillation only", "#b5b56a"),
    "eelbert": Name("EELBERT", "EELBERT", "EELBERT (no word table)", "#e377c2"),
    "eelbert_3l": Name("EELBERT with 3 blocks", "EELBERT 3 blocks", "EELBERT with 3 of 6 blocks (no word table)",
                       "#ad4a8c"),
    "merge_radius_at_layer_removal": Name("r_f at layer removal's size", "r_f at l.r. size",
                                          "OBCE (r_f) at layer removal's size", "#e7969c"),
    "combined": Name("r_f, a Kronecker table and distillation", "combined",
                     "combined: r_f + Kronecker table + distillation", "#17a768"),
    "combined_eelbert": Name("r_f, EELBERT's embedding and distillation", "combined EELBERT",
                             "combined: r_f + EELBERT embedding + distillation", "#5254a3"),
    "hash_table": Name("a fitted hash table", "hash table", "fitted hash table (not EELBERT)", "#f7b6d2"),
    "hash_table_1k": Name("a fitted hash table of 1,000 rows", "hash table 1k", "fitted hash table, 1,000 rows",
                          "#fbd5e6"),
    "none": Name("unpruned", "unpruned", "unpruned", "#000000"),
}
#: Short verdicts for tables that must fit the page ("n.l.": neither model learned the task).
SHORT_VERDICTS = {"no learning": "n.l."}
_SPARE = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354")


def _default(key: str) -> str:
    return key.replace("_", " ")


def prose_name(key: str) -> str:
    """How a sentence names a score or method (``r_f``, ``random neurons``)."""
    return NAMES[key].prose if key in NAMES else _default(key)


def short_name(key: str) -> str:
    """A table column's name for a score or method (``variance``, ``mean |a|``)."""
    return NAMES[key].short if key in NAMES else key


def method_name(key: str) -> str:
    """The comparison of methods' name of a method label or importance score (``OBCE (r_f)``)."""
    return NAMES[key].method if key in NAMES else _default(key)


def legend(key: str) -> str:
    """A figure legend's name of a score or method: the prose name, with r_f in the book's notation."""
    return prose_name(key).replace("r_f", "$r_f$")


def colour(key: str) -> str:
    """The one colour of a score or method in every figure (a key not in :data:`NAMES` takes a spare
    colour chosen by its name, the same in every figure)."""
    if key in NAMES:
        return NAMES[key].colour
    return _SPARE[sum(map(ord, key)) % len(_SPARE)]
