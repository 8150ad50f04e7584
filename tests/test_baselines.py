import numpy as np
import pytest
import torch

import obce
from obce.baselines import activation_scores, magnitude_scores, random_scores, taylor_scores
from obce.errors import ObceInputError


def test_random_scores_are_seeded(tiny_bert):
    model = tiny_bert[0]
    assert np.array_equal(random_scores(model, 1), random_scores(model, 1))
    assert not np.array_equal(random_scores(model, 1), random_scores(model, 2))


def test_magnitude_is_the_norm_of_a_neurons_weights(tiny_bert):
    model = tiny_bert[0]
    s = magnitude_scores(model)
    inter, out = obce.ffn_layers(model)[1]
    j = 5
    with torch.no_grad():
        expected = torch.sqrt((inter.weight[j] ** 2).sum() + inter.bias[j] ** 2 + (out.weight[:, j] ** 2).sum())
    assert s.shape == (3, 64) and s[1, j] == pytest.approx(float(expected), rel=1e-6)


def test_activation_statistics_count_real_tokens_only():
    clouds = torch.zeros(2, 3, 4)
    clouds[0, :, :2] = 2.0  # two real tokens per text, value 2
    clouds[1, :, :2] = torch.tensor([1.0, -1.0])
    lengths = torch.tensor([2, 2, 2])
    np.testing.assert_allclose(activation_scores(clouds, "mean_abs", lengths), [2.0, 1.0])
    np.testing.assert_allclose(activation_scores(clouds, "variance", lengths), [0.0, 1.0])


def test_taylor_scores_are_zero_for_neurons_that_cannot_affect_the_loss(tiny_bert, sentences):
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_bert[0].config)
    dead = [3, 17, 40]
    with torch.no_grad():
        model.bert.encoder.layer[2].output.dense.weight[:, dead] = 0.0
    labels = [i % 2 for i in range(len(sentences))]
    s = taylor_scores(model, tiny_bert[1], sentences, labels, max_length=16, batch_size=5)
    assert s.shape == (3, 64) and np.all(s >= 0)
    assert np.all(s[2, dead] == 0) and np.all(np.delete(s[2], dead) > 0)
    with pytest.raises(ObceInputError, match="task head"):
        taylor_scores(tiny_bert[0], tiny_bert[1], sentences, labels)
    with pytest.raises(ObceInputError, match="labels for"):
        taylor_scores(model, tiny_bert[1], sentences, labels[:3])


def test_any_score_prunes_through_one_interface(tiny_bert, sentences):
    model, tok = tiny_bert
    for imp in obce.IMPORTANCES:
        s = obce.score_neurons(model, tok, sentences, importance=imp, max_length=16, progress=False)
        assert s.shape == (3, 64) and np.isfinite(s).all()
        assert obce.prune(model, s, level=2).config.intermediate_size == 32
