import numpy as np
import pytest
import torch

import obce
from obce.errors import ObceInputError
from obce.pruning import keep_count, parameter_table, select_neurons


def _ffn_params_per_neuron(model):
    h = model.config.hidden_size
    return 2 * h + 1  # its row of intermediate.dense (h weights + bias) and its column of output.dense


@pytest.mark.parametrize("level,size", [(0, 1536), (1, 1152), (2, 768), (3, 384)])
def test_minilm_levels_give_expected_sizes_and_exact_parameter_counts(minilm, level, size):
    model, _ = minilm
    scores = np.random.default_rng(level).random((6, 1536))
    small = obce.prune(model, scores, level=level)
    assert small.config.intermediate_size == size
    assert all(i.out_features == size and o.in_features == size for i, o in obce.ffn_layers(small))
    removed = 6 * (1536 - size) * _ffn_params_per_neuron(model)
    assert obce.count_parameters(small) == obce.count_parameters(model) - removed
    assert obce.count_parameters(model) == 22_713_216  # the original is untouched


def test_kept_neurons_are_the_highest_scores_with_deterministic_ties():
    scores = np.array([[0.1, 0.9, 0.5, 0.9, 0.2, 0.7, 0.0, 0.3]])
    np.testing.assert_array_equal(select_neurons(scores, level=2), [[1, 2, 3, 5]])
    ties = np.zeros((2, 8))
    np.testing.assert_array_equal(select_neurons(ties, keep_fraction=0.3), [[0, 1, 2], [0, 1, 2]])
    assert keep_count(1536, keep_fraction=0.5) == 768 and keep_count(10, keep_fraction=0.01) == 1


def _inputs(tok, sentences):
    return tok(sentences, padding=True, return_tensors="pt")


@pytest.mark.parametrize("which", ["tiny", "minilm"])
def test_removing_dead_neurons_leaves_outputs_unchanged(which, tiny_bert, minilm, sentences):
    model, tok = tiny_bert if which == "tiny" else minilm
    import copy

    model = copy.deepcopy(model)
    n_layers, n = len(obce.ffn_layers(model)), obce.ffn_layers(model)[0][0].out_features
    rng = np.random.default_rng(0)
    scores = np.ones((n_layers, n))
    with torch.no_grad():
        for l, (_, out) in enumerate(obce.ffn_layers(model)):
            dead = rng.choice(n, size=n // 4, replace=False)
            out.weight[:, dead] = 0.0  # these neurons cannot influence anything
            scores[l, dead] = -1.0
    enc = _inputs(tok, sentences)
    small = obce.prune(model, scores, level=1)
    with torch.no_grad():
        before = model(**enc).last_hidden_state
        after = small(**enc).last_hidden_state
    torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
    # removing live neurons does change the outputs (the check above can fail)
    with torch.no_grad():
        wrong = obce.prune(model, -scores, level=1)(**enc).last_hidden_state
    assert (wrong - before).abs().max() > 1e-3


def test_pruned_model_saves_and_reloads_as_plain_checkpoint(minilm, sentences, tmp_path):
    from transformers import AutoModel

    model, tok = minilm
    small = obce.prune(model, np.random.default_rng(0).random((6, 1536)), level=3)
    small.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(reloaded).__name__ == "BertModel" and reloaded.config.intermediate_size == 384
    assert obce.count_parameters(reloaded) == obce.count_parameters(small)
    enc = _inputs(tok, sentences)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**enc).last_hidden_state, small(**enc).last_hidden_state)


def test_prune_a_model_with_a_task_head(tiny_bert):
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification(tiny_bert[0].config)
    small = obce.prune(model, np.zeros((3, 64)), level=3)
    assert small.bert.encoder.layer[0].intermediate.dense.out_features == 16


def test_parameter_accounting_for_bert_base_and_large():
    rows = {(r["model"], r["level"]): r for r in parameter_table()}
    for name, h, n_layers, f, total in [("bert-base-uncased", 768, 12, 3072, 109_482_240),
                                         ("bert-large-uncased", 1024, 24, 4096, 335_141_888)]:
        assert rows[name, 0]["parameters"] == total
        for level in (1, 2, 3):
            k = f * (4 - level) // 4
            assert rows[name, level]["intermediate_size"] == k
            assert rows[name, level]["parameters"] == total - n_layers * (f - k) * (2 * h + 1)


@pytest.mark.parametrize("kwargs,match", [
    (dict(level=4), "level=4"), (dict(level=-1), "level=-1"), (dict(level=1.5), "level=1.5"),
    (dict(keep_fraction=0.0), "keep_fraction"), (dict(keep_fraction=1.2), "keep_fraction"),
    (dict(), "exactly one"), (dict(level=1, keep_fraction=0.5), "exactly one"),
])
def test_bad_levels(tiny_bert, kwargs, match):
    with pytest.raises(ObceInputError, match=match):
        obce.prune(tiny_bert[0], np.zeros((3, 64)), **kwargs)


def test_scores_must_match_the_model(tiny_bert):
    with pytest.raises(ObceInputError, match=r"\(3, 64\)"):
        obce.prune(tiny_bert[0], np.zeros((3, 65)), level=1)
    with pytest.raises(ObceInputError, match="NaN"):
        obce.prune(tiny_bert[0], np.full((3, 64), np.nan), level=1)
