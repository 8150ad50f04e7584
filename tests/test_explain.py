import numpy as np
import pytest
import torch

import obce
from obce.errors import ObceInputError
from obce.explain import (kept_only, kept_overlap, longest_edge_split, output_drift, rank_agreement,
                          top_activating_tokens, top_edge_ratio)


def test_top_activating_tokens_are_the_largest_outputs(tiny_bert, sentences):
    model, tok = tiny_bert
    clouds = obce.collect_ffn_activations(model, tok, sentences, layers=[1], max_length=16, progress=False)[1]
    rows = top_activating_tokens(model, tok, sentences, layer=1, neuron=7, max_length=16, k=4)
    values = [r["activation"] for r in rows]
    assert values == sorted(values, reverse=True)
    assert values[0] == float(clouds[7].max())
    best = rows[0]
    assert clouds[7, best["text"], best["position"]] == best["activation"]
    assert f"[{best['token']}]" in best["context"]


def test_top_activating_tokens_never_pick_padding_for_a_never_positive_neuron(tiny_bert, sentences):
    model, tok = tiny_bert
    texts = [sentences[0], "bad ."]  # the second text is padded in the clouds
    clouds = obce.collect_ffn_activations(model, tok, texts, layers=[0], max_length=16, progress=False)[0]
    clouds = -clouds.abs() - 1.0  # a neuron that is never positive: padding (0) would be the top output
    lengths = [len(tok(t)["input_ids"]) for t in texts]
    clouds[3, 1, lengths[1]:] = 0.0
    rows = top_activating_tokens(model, tok, texts, layer=0, neuron=3, max_length=16, k=sum(lengths) + 5,
                                 clouds=clouds)
    assert len(rows) == sum(lengths) and all(r["activation"] < 0 for r in rows)
    assert all(r["position"] < lengths[r["text"]] for r in rows)


def test_rank_agreement():
    a = np.random.default_rng(0).random((2, 50))
    np.testing.assert_allclose(rank_agreement(a, a), [1.0, 1.0])
    np.testing.assert_allclose(rank_agreement(a, -a), [-1.0, -1.0])


def test_output_drift_is_zero_only_for_an_unchanged_model(tiny_bert, sentences):
    model, tok = tiny_bert
    assert output_drift(model, model, tok, sentences) == 0.0
    small = obce.prune(model, np.random.default_rng(0).random((3, 64)), level=2)
    assert 0.0 < output_drift(model, small, tok, sentences) < 10.0
    with torch.no_grad():
        assert torch.isfinite(small(**tok(sentences[:2], padding=True, return_tensors="pt")).last_hidden_state).all()


def test_kept_overlap():
    a = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(kept_overlap(a, a, level=2), [1.0, 1.0])
    np.testing.assert_allclose(kept_overlap(a, -a, level=2), [0.0, 0.0])  # keeps the other half
    b = np.array([[4.0, 1.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    np.testing.assert_allclose(kept_overlap(a, b, level=2), [0.5, 1.0])


def test_kept_only():
    a = np.array([[4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    b = np.array([[4.0, 1.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    only = kept_only(a, b, level=2)
    np.testing.assert_array_equal(only[0], [1])  # a keeps 0, 1; b keeps 0, 2
    assert only[1].size == 0
    np.testing.assert_array_equal(kept_only(b, a, level=2)[0], [2])


def _line_and_outlier():
    # 6 points 1 apart on a line, one point 7 beyond the last; a pair of far clusters of 3 and 4
    line = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [12.0]])
    pair = np.array([[0.0], [0.5], [1.0], [20.0], [20.5], [21.0], [21.5]])
    return np.stack([line, pair])


def test_top_edge_ratio_against_gudhi():
    clouds = _line_and_outlier()
    ratio = top_edge_ratio(obce.h0_deaths(clouds, method="gudhi"))
    np.testing.assert_allclose(ratio, [7.0, 19.0 / 0.5])
    rng = np.random.default_rng(0)
    np.testing.assert_allclose(top_edge_ratio(rng.permutation([3.0, 1.0, 2.0])), 1.5)
    assert np.isinf(top_edge_ratio(np.array([0.0, 0.0, 2.0])))
    with pytest.raises(ObceInputError, match="at least 2 finite deaths"):
        top_edge_ratio(np.array([[1.0]]))


def test_longest_edge_split():
    clouds = _line_and_outlier()
    np.testing.assert_array_equal(longest_edge_split(clouds), [1, 3])
    np.testing.assert_array_equal(longest_edge_split(torch.as_tensor(clouds)), [1, 3])
    # coincident points (zero distances) stay connected
    dup = np.array([[[0.0], [0.0], [5.0], [5.0], [5.0]]])
    np.testing.assert_array_equal(longest_edge_split(dup), [2])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 30, 3))
    x[:, 0] += 50.0  # one far point per cloud
    np.testing.assert_array_equal(longest_edge_split(x), [1, 1, 1, 1])
    with pytest.raises(ObceInputError, match="needs at least 2"):
        longest_edge_split(np.zeros((3, 1, 2)))


def test_isolated_sentence_finds_a_planted_outlier():
    from obce.explain import isolated_sentence

    rng = np.random.default_rng(0)
    clouds = rng.normal(size=(3, 20, 4)) * 0.1
    clouds[0, 7] += 10.0          # neuron 0: sentence 7 stands far apart
    clouds[1, :10] += 10.0        # neuron 1: two groups of ten, nothing isolated
    clouds[2, 13] -= 5.0
    assert isolated_sentence(clouds).tolist() == [7, -1, 13]


def test_label_information_is_the_oriented_auc_and_the_spearman_correlation():
    from scipy.stats import spearmanr

    from obce.explain import label_information

    pooled = np.array([[0.1, 0.4, 0.35, 0.8], [4.0, 3.0, 2.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    labels = np.array([0, 0, 1, 1])
    # by hand: neuron 0 ranks positives {0.35, 0.8} against negatives {0.1, 0.4}: pairs won 3 of 4
    np.testing.assert_allclose(label_information(pooled, labels), [0.75, 1.0, 0.5])
    y = np.array([0.5, 1.0, 3.0, 2.0])
    expected = [abs(spearmanr(pooled[0], y)[0]), 0.8, 0.0]
    np.testing.assert_allclose(label_information(pooled, y, regression=True), expected)
    with pytest.raises(ObceInputError, match="3 classes"):
        label_information(pooled, np.array([0, 1, 2, 1]))


def test_stability_of_identical_scores_is_one():
    from obce.explain import stability

    a = np.random.default_rng(0).random((2, 30))
    np.testing.assert_allclose(stability([a, a, a]), [1.0, 1.0])
    b = np.random.default_rng(1).random((2, 30))
    assert np.all(stability([a, b]) < 0.6)
    with pytest.raises(ObceInputError, match="at least 2"):
        stability([a])


def test_pooled_activations_average_real_tokens():
    from obce.explain import pooled_activations

    clouds = np.zeros((1, 2, 3))
    clouds[0, 0, :2] = [1.0, 3.0]
    clouds[0, 1, :3] = [3.0, 3.0, 3.0]
    np.testing.assert_allclose(pooled_activations(clouds, [2, 3]), [[2.0, 3.0]])
