import numpy as np
import torch

import obce
from obce.explain import kept_overlap, output_drift, rank_agreement, top_activating_tokens


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
