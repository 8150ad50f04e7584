"""Retraining-free pruning: compensation of the pruned FFN, and the Fisher and WIFV scores."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import obce
from obce.baselines import fisher_scores, wifv_scores
from obce.compensation import compensate, ffn_statistics, least_squares_refit
from obce.errors import ObceInputError


def _ffn_outputs(model, tokenizer, texts, max_length=16):
    """Per layer: the FFN output W a + b of every real token, from the model's own activations
    (tokens, hidden), and the activations themselves (tokens, n_neurons)."""
    acts = {}
    mods = obce.models.intermediate_modules(model)
    hooks = [m.register_forward_hook(lambda _m, _i, out, k=k: acts.__setitem__(k, out)) for k, m in enumerate(mods)]
    batch = obce.activations.tokenize(tokenizer, texts, max_length)
    with torch.no_grad():
        model(**batch)
    for h in hooks:
        h.remove()
    mask = batch["attention_mask"].bool()
    return {k: a[mask].double() for k, a in acts.items()}


def _layer_output(model, layer: int, a: torch.Tensor) -> np.ndarray:
    out = obce.ffn_layers(model)[layer][1]
    return (a @ out.weight.detach().double().T + out.bias.detach().double()).numpy()


@pytest.fixture()
def pruned_setup(tiny_bert, sentences):
    model, tok = tiny_bert
    stats = ffn_statistics(model, tok, sentences, max_length=16)
    keep = obce.select_neurons(np.random.default_rng(0).random((3, 64)), keep_fraction=0.5)
    acts = _ffn_outputs(model, tok, sentences)
    return model, tok, stats, keep, acts


def test_statistics_are_the_moments_over_real_tokens(pruned_setup):
    model, tok, stats, keep, acts = pruned_setup
    a = acts[1].numpy()
    np.testing.assert_allclose(stats[1].mean, a.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats[1].second, a.T @ a / len(a), rtol=1e-4, atol=1e-6)
    assert stats[1].count == len(a)


def test_bias_compensation_keeps_the_layers_mean_output(pruned_setup):
    model, tok, stats, keep, acts = pruned_setup
    plain = obce.prune_ffn_neurons(model, keep)
    fixed = compensate(obce.prune_ffn_neurons(model, keep), model, keep, stats, method="bias")
    for layer in range(3):
        full = _layer_output(model, layer, acts[layer]).mean(0)
        kept = acts[layer][:, torch.as_tensor(keep[layer])]
        np.testing.assert_allclose(_layer_output(fixed, layer, kept).mean(0), full, rtol=1e-5, atol=1e-6)
        assert not np.allclose(_layer_output(plain, layer, kept).mean(0), full, atol=1e-3)


def test_least_squares_is_exact_when_removed_neurons_are_combinations_of_kept_ones():
    rng = np.random.default_rng(0)
    kept_acts = rng.normal(size=(500, 6))
    removed_acts = kept_acts @ rng.normal(size=(6, 3)) + 0.5  # affine in the kept ones
    a = np.concatenate([kept_acts, removed_acts], axis=1)[:, [0, 6, 1, 2, 7, 3, 4, 8, 5]]
    keep = np.array([0, 2, 3, 5, 6, 8])
    w, b = rng.normal(size=(4, 9)), rng.normal(size=4)
    mean, cov = a.mean(0), np.cov(a.T, bias=True)
    new_w, new_b = least_squares_refit(w, b, keep, mean, cov, ridge=0.0)
    np.testing.assert_allclose(a[:, keep] @ new_w.T + new_b, a @ w.T + b, atol=1e-9)


def test_least_squares_reconstructs_better_than_bias_and_none(pruned_setup):
    model, tok, stats, keep, acts = pruned_setup
    errors = {}
    for method in ("none", "bias", "ls"):
        small = compensate(obce.prune_ffn_neurons(model, keep), model, keep, stats, method=method, ridge=0.0)
        errors[method] = sum(((_layer_output(small, k, acts[k][:, torch.as_tensor(keep[k])])
                               - _layer_output(model, k, acts[k])) ** 2).mean() for k in range(3))
    assert errors["ls"] < errors["bias"] < errors["none"]
    assert obce.count_parameters(small) == obce.count_parameters(obce.prune_ffn_neurons(model, keep))
    with pytest.raises(ObceInputError, match="compensation 'lsq'"):
        compensate(small, model, keep, stats, method="lsq")


def test_fisher_score_equals_finite_differences(tiny_bert, sentences):
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(tiny_bert[0].config).double().eval()
    tok, texts = tiny_bert[1], sentences[:5]
    labels = [0, 1, 1, 0, 1]
    scores = fisher_scores(model, tok, texts, labels, max_length=16, batch_size=2)
    assert scores.shape == (3, 64) and np.all(scores >= 0)
    batch = obce.activations.tokenize(tok, texts, 16)
    y = torch.tensor(labels)

    def losses(layer: int, neuron: int, m: float) -> torch.Tensor:
        def hook(_mod, _inp, out):
            out = out.clone()
            out[..., neuron] *= m
            return out

        h = model.bert.encoder.layer[layer].intermediate.register_forward_hook(hook)
        with torch.no_grad():
            logits = model(**batch).logits
        h.remove()
        return torch.nn.functional.cross_entropy(logits, y, reduction="none")

    eps = 1e-5
    for layer, neuron in [(0, 3), (1, 40), (2, 63)]:
        grad = (losses(layer, neuron, 1 + eps) - losses(layer, neuron, 1 - eps)) / (2 * eps)  # per text
        assert scores[layer, neuron] == pytest.approx(float((grad ** 2).sum()), rel=1e-4)


def test_wifv_is_variance_times_squared_output_weight_norm(tiny_bert):
    model = tiny_bert[0]
    variance = np.random.default_rng(0).random((3, 64))
    s = wifv_scores(model, variance)
    col = obce.ffn_layers(model)[2][1].weight[:, 7].detach().double()
    assert s[2, 7] == pytest.approx(variance[2, 7] * float((col ** 2).sum()))


def test_the_checked_refit_keeps_the_refit_only_where_it_lowers_the_held_out_error(pruned_setup, sentences):
    import copy

    from obce.compensation import checked_refit, end_to_end_error

    model, tok, stats, keep, _ = pruned_setup
    plain = obce.prune_ffn_neurons(model, keep)
    fitted = compensate(obce.prune_ffn_neurons(model, keep), model, keep, stats, method="ls")
    worse = copy.deepcopy(plain)
    torch.manual_seed(0)
    with torch.no_grad():
        for _, out in obce.ffn_layers(worse):
            out.weight.add_(torch.randn_like(out.weight))  # a "refit" that moves every output away
    chosen, info = checked_refit(plain, worse, model, tok, sentences, 16)
    assert chosen is plain and not info["refit_applied"] and info["error_refit"] > info["error_none"]
    assert end_to_end_error(model, model, tok, sentences, 16) == 0
    chosen, info = checked_refit(plain, fitted, model, tok, sentences, 16)
    assert (chosen is fitted) == info["refit_applied"] == (info["error_refit"] < info["error_none"])
    with pytest.raises(ObceInputError, match="call checked_refit"):
        compensate(obce.prune_ffn_neurons(model, keep), model, keep, stats, method="refit")
