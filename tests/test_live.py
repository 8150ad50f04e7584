"""The classroom's live experiment: the same comparison as the protocol, small, on whatever data is at hand."""
from __future__ import annotations

import math

import pytest

from obce.data import SAMPLE_DIR
from obce.errors import ObceInputError
from obce.experiments.live import live_comparison


def test_live_comparison_fine_tunes_the_unpruned_and_each_pruned_model(tiny_dir):
    rows = live_comparison("rte", importances=("random", "activation_variance"), level=2, model_name=str(tiny_dir),
                           n_score=16, n_train=32, max_length=32, glue_dir=SAMPLE_DIR)
    assert [(r["score"], r["level"]) for r in rows] == [("none", 0), ("random", 2), ("activation_variance", 2)]
    assert all(r["metric"] == "accuracy" and 0 <= r["value"] <= 100 and r["train_size"] == 32 for r in rows)
    assert all("embedded GLUE sample RTE" in r["data"] for r in rows)  # the rows say which data they read
    assert not any(math.isnan(r["value"]) for r in rows)


def test_live_comparison_refuses_an_unknown_score_before_any_compute():
    with pytest.raises(ObceInputError, match="importances \\['nope'\\]"):
        live_comparison("rte", importances=("nope",), model_name="/nonexistent")
