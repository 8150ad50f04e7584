import numpy as np
import pytest
import torch

import obce
from obce.errors import ObceInputError
from obce.explain import (
    kept_only,
    kept_overlap,
    longest_edge_split,
    output_drift,
    rank_agreement,
    top_activating_tokens,
    top_edge_ratio,
)


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


def test_null_corpus_keeps_each_texts_words_or_length():
    from obce.explain import null_corpus

    texts = ["the cat sat on the mat", ("a b c", "d e"), "one"]
    shuffled = null_corpus(texts, "shuffled", seed=3)
    assert sorted(shuffled[0].split()) == sorted(texts[0].split())
    assert isinstance(shuffled[1], tuple) and sorted(shuffled[1][0].split()) == ["a", "b", "c"]
    assert shuffled == null_corpus(texts, "shuffled", seed=3)
    pool = set(" ".join([texts[0], *texts[1], texts[2]]).split())
    rand = null_corpus(texts, "random", seed=0)
    assert [len(t.split()) for t in (rand[0], *rand[1], rand[2])] == [6, 3, 2, 1]
    assert set(" ".join([rand[0], *rand[1], rand[2]]).split()) <= pool
    with pytest.raises(ObceInputError, match="'reversed'"):
        null_corpus(texts, "reversed")


def test_depth_trend():
    from obce.explain import depth_trend

    rng = np.random.default_rng(0)
    rising = rng.random((4, 100)) + np.arange(4)[:, None]
    medians, rho = depth_trend(rising)
    np.testing.assert_allclose(medians, np.median(rising, axis=1))
    assert rho > 0.9 and depth_trend(-rising)[1] < -0.9
    assert abs(depth_trend(rng.random((4, 100)))[1]) < 0.1


def test_sentence_features_count_tokens_pieces_and_unknowns(minilm):
    from obce.explain import sentence_features

    _, tok = minilm
    texts = ["a good film .", "an unfathomably xylophonic film", "snow \u2603 \U0001f9ca"]
    f = sentence_features(tok, texts, max_length=32)
    assert f["tokens"].tolist() == [len(tok(t)["input_ids"]) for t in texts]
    assert f["subword_share"][0] == 0.0 and f["subword_share"][1] > 0.3
    pieces = tok.tokenize(texts[2])
    assert f["unknown"].tolist() == [0, 0, pieces.count(tok.unk_token)] and pieces.count(tok.unk_token) > 0


def test_isolation_profile_counts_a_planted_sentence():
    from obce.explain import isolation_profile

    isolated = np.array([3, 3, 3, -1, 1, 3])
    features = {"tokens": np.array([5, 6, 7, 40, 8]), "flat": np.ones(5)}
    p = isolation_profile(isolated, features, sources=["a", "a", "b", "b", "b"], top=1)
    assert p["single_share"] == 5 / 6 and p["counts"].tolist() == [0, 1, 0, 4, 0]
    assert p["isolating_sentences"] == 2 and p["top_share"] == 4 / 5
    from scipy.stats import spearmanr

    assert p["rho_tokens"] == pytest.approx(spearmanr([5, 6, 7, 40, 8], [0, 1, 0, 4, 0])[0]) and p["rho_tokens"] > 0
    assert p["rho_flat"] == 0.0
    assert p["by_source"] == {"a": dict(corpus_share=0.4, isolation_share=0.2),
                              "b": dict(corpus_share=0.6, isolation_share=0.8)}
    with pytest.raises(ObceInputError, match="5 texts"):
        isolation_profile(np.array([7]), features)


def test_information_by_score_by_hand():
    from obce.explain import information_by_score

    info = np.array([[0.5, 0.6, 0.7, 0.9]])
    rows = information_by_score(info, {"up": np.array([[1, 2, 3, 4]]), "down": np.array([[4, 3, 2, 1]])})
    assert rows == [dict(layer=0, score="up", top_quarter=0.9, bottom_quarter=0.5, rho=1.0),
                    dict(layer=0, score="down", top_quarter=0.5, bottom_quarter=0.9, rho=-1.0)]
    with pytest.raises(ObceInputError, match="'up'"):
        information_by_score(info, {"up": np.ones((2, 4))})


def test_layer_scores_equal_score_neurons(tiny_bert, sentences):
    from obce.activations import token_lengths
    from obce.explain import layer_scores

    model, tok = tiny_bert
    clouds = obce.collect_ffn_activations(model, tok, sentences, max_length=16, progress=False)
    got = layer_scores(clouds, token_lengths(tok, sentences, 16))
    for name, values in got.items():
        expected = obce.score_neurons(model, tok, sentences, importance=name, max_length=16, progress=False)
        np.testing.assert_allclose(values, expected, rtol=1e-6, err_msg=name)


def test_explain_facts_state_the_computed_values_and_follow_the_data():
    from obce.analysis.facts import explain_facts

    profile = dict(single_share=0.9, isolating_sentences=40, top_share=0.5, rho_tokens=0.8,
                   by_source={"sst2": dict(corpus_share=0.5, isolation_share=0.7)})
    info = [dict(layer=0, score="merge_radius", top_quarter=0.56, bottom_quarter=0.54, rho=0.1),
            dict(layer=0, score="activation_variance", top_quarter=0.58, bottom_quarter=0.53, rho=0.2)]
    stable = {"draws": {"merge_radius": 0.7, "activation_variance": 0.9}}
    f = explain_facts({"merge_radius": 0.3, "total_persistence": -0.02}, {"shuffled": 0.93}, profile, info, stable,
                      n_texts=64)
    assert "grows with depth" in f["ex_where"] and "+0.30" in f["ex_where"] and "0.93 times" in f["ex_where"]
    assert "90%" in f["ex_outliers"] and "most unusual sentence" in f["ex_outliers"] and "long ones" in f["ex_outliers"]
    assert "more informative" in f["ex_information"] and "below the top quarter" in f["ex_information"]
    assert "1 of 1" in f["ex_stability"] and "depends more on the corpus" in f["ex_meaning"]
    g = explain_facts({"merge_radius": -0.3, "total_persistence": 0.0}, {"shuffled": 0.93},
                      {**profile, "single_share": 0.2, "rho_tokens": 0.1}, info[::-1],
                      {"draws": {"merge_radius": 0.95, "activation_variance": 0.9}}, n_texts=64)
    assert "shrinks" in g["ex_where"] and "groups of sentences" in g["ex_outliers"] and "long ones" not in g["ex_outliers"]
    assert "at least as steady" in g["ex_meaning"]


def test_mixed_corpus_and_subset_scores(glue_dir, tiny_bert):
    from obce.activations import token_lengths
    from obce.explain import corpus_scores, mixed_corpus, subset_scores

    texts, sources = mixed_corpus(["sst2", "cola"], 10, seed=1, glue_dir=glue_dir)
    assert sources == ["sst2"] * 5 + ["cola"] * 5
    assert texts[:5] == obce.load_corpus("sst2", n=5, seed=1, glue_dir=glue_dir)
    model, tok = tiny_bert
    clouds, scores = corpus_scores(model, tok, texts, 16)
    lengths = token_lengths(tok, texts, 16)
    every = subset_scores(clouds, lengths, np.arange(10))
    for name in scores:
        np.testing.assert_allclose(every[name], scores[name])
    first = subset_scores(clouds, lengths, np.arange(5))  # the sst2 texts alone, as if collected alone
    alone = corpus_scores(model, tok, texts[:5], 16)[1]
    for name in scores:
        np.testing.assert_allclose(first[name], alone[name], rtol=1e-5, err_msg=name)


def test_chance_level_of_the_oriented_auc_is_above_one_half_and_measured_by_permutation():
    """max(AUC, 1 - AUC) of a neuron that knows nothing is above 0.5 (the more so on few texts); the
    permutation null measures it, and a neuron that does know the label stands above it."""
    import numpy as np

    from obce.explain import label_information, label_information_null

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 20)
    noise = rng.normal(size=(200, 40))
    null = label_information_null(noise, labels, seed=1)
    assert null.shape == (20, 200) and 0.55 < null.mean() < 0.65  # not one half on 40 texts
    informed = label_information(np.vstack([labels + 0.1 * rng.normal(size=40)]), labels)
    assert informed[0] > np.quantile(null, 0.99)
