import pytest
import torch

import obce
from obce.activations import collect_ffn_activations, iter_ffn_activations, token_lengths
from obce.errors import ObceInputError


def _manual_intermediate(model, tokenizer, texts, layer, max_length):
    """Recompute act(dense(x)) from the captured input of the layer's intermediate module."""
    captured = {}
    block = model.encoder.layer[layer]
    h = block.intermediate.register_forward_pre_hook(lambda m, inp: captured.__setitem__("x", inp[0].detach()))
    enc = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        model(**enc)
        out = block.intermediate.intermediate_act_fn(block.intermediate.dense(captured["x"]))
    h.remove()
    return out, enc["attention_mask"]


@pytest.mark.parametrize("which", ["tiny", "minilm"])
def test_hooked_activations_equal_manual_recomputation(which, tiny_bert, minilm, sentences):
    model, tok = tiny_bert if which == "tiny" else minilm
    L = 24
    clouds = collect_ffn_activations(model, tok, sentences, max_length=L, batch_size=5, progress=False)
    for layer in (0, len(model.encoder.layer) - 1):
        manual, mask = _manual_intermediate(model, tok, sentences, layer, L)  # [N, T, F], [N, T]
        got = clouds[layer]  # [F, N, L]
        assert got.shape == (manual.shape[2], len(sentences), min(L, int(mask.sum(1).max())))
        for i in range(len(sentences)):
            n = int(mask[i].sum())
            torch.testing.assert_close(got[:, i, :n], manual[i, :n].T, atol=1e-5, rtol=1e-4)


def test_padding_positions_are_zero(tiny_bert, sentences):
    model, tok = tiny_bert
    L = 20
    clouds = collect_ffn_activations(model, tok, sentences, max_length=L, batch_size=4, progress=False)
    lengths = token_lengths(tok, sentences, L)
    assert lengths.min() < L  # some sentences are padded
    assert all(cl.shape[2] == int(lengths.max()) <= L for cl in clouds.values())
    for cl in clouds.values():
        for i, n in enumerate(lengths.tolist()):
            assert torch.all(cl[:, i, n:] == 0)
            assert torch.any(cl[:, i, :n] != 0)


def test_mean_and_cls_representations(tiny_bert, sentences):
    model, tok = tiny_bert
    L = 16
    tokens = collect_ffn_activations(model, tok, sentences, max_length=L, progress=False)
    mean = collect_ffn_activations(model, tok, sentences, max_length=L, representation="mean", progress=False)
    cls = collect_ffn_activations(model, tok, sentences, max_length=L, representation="cls", progress=False)
    lengths = token_lengths(tok, sentences, L).float()
    for l in tokens:
        assert mean[l].shape == cls[l].shape == (64, len(sentences), 1)
        torch.testing.assert_close(mean[l][..., 0], tokens[l].sum(-1) / lengths, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(cls[l][..., 0], tokens[l][..., 0])


def test_batching_does_not_change_activations(tiny_bert, sentences):
    model, tok = tiny_bert
    a = collect_ffn_activations(model, tok, sentences, max_length=16, batch_size=1, progress=False)
    b = collect_ffn_activations(model, tok, sentences, max_length=16, batch_size=12, progress=False)
    for l in a:
        torch.testing.assert_close(a[l], b[l], atol=1e-5, rtol=1e-4)


def test_streaming_under_a_memory_budget_matches_one_pass(tiny_bert, sentences):
    model, tok = tiny_bert
    full = collect_ffn_activations(model, tok, sentences, max_length=16, progress=False)
    one_layer = 64 * len(sentences) * 16 * 4
    streamed = list(iter_ffn_activations(model, tok, sentences, max_length=16, memory_budget=one_layer,
                                         progress=False))
    assert [l for l, _ in streamed] == [0, 1, 2]
    for l, cl in streamed:
        torch.testing.assert_close(cl, full[l])


def test_sentence_pairs_are_encoded_as_pairs(tiny_bert, sentences):
    model, tok = tiny_bert
    pairs = list(zip(sentences[:4], sentences[4:8]))
    clouds = collect_ffn_activations(model, tok, pairs, max_length=64, progress=False)
    lengths = token_lengths(tok, pairs, 64)
    single = token_lengths(tok, [p[0] for p in pairs], 64)
    assert torch.all(lengths > single)  # both sentences are in the input
    assert clouds[0].shape == (64, 4, int(lengths.max()))
    long = collect_ffn_activations(model, tok, [" ".join(sentences)] * 2, max_length=40, progress=False)
    assert long[0].shape == (64, 2, 40)  # truncated to max_length


def test_bad_corpora_and_parameters(tiny_bert, sentences):
    model, tok = tiny_bert
    with pytest.raises(ObceInputError, match="at least 2"):
        collect_ffn_activations(model, tok, sentences[:1], progress=False)
    with pytest.raises(ObceInputError, match="at least 2"):
        collect_ffn_activations(model, tok, [], progress=False)
    with pytest.raises(ObceInputError, match="corpus item 1"):
        collect_ffn_activations(model, tok, ["fine", "  "], progress=False)
    with pytest.raises(ObceInputError, match="max_length"):
        collect_ffn_activations(model, tok, sentences, max_length=0, progress=False)
    with pytest.raises(ObceInputError, match="representation"):
        collect_ffn_activations(model, tok, sentences, representation="max", progress=False)
    with pytest.raises(ObceInputError, match="layers"):
        collect_ffn_activations(model, tok, sentences, layers=[5], progress=False)


def test_non_finite_activations_name_layer_and_neuron(tiny_bert, sentences):
    model, tok = tiny_bert
    with torch.no_grad():
        model.encoder.layer[1].intermediate.dense.weight[7] = float("nan")
    with pytest.raises(ObceInputError, match="layer 1, neuron 7"):
        obce.score_neurons(model, tok, sentences, max_length=16, progress=False)


def test_huge_but_finite_activations_are_kept(tiny_bert, sentences):
    """The fast finiteness check (a sum) overflows here; the exact check must then let them pass."""
    model, tok = tiny_bert
    with torch.no_grad():
        model.encoder.layer[0].intermediate.dense.weight.zero_()
        model.encoder.layer[0].intermediate.dense.bias.fill_(1e38)  # GELU(1e38) = 1e38, finite
    clouds = collect_ffn_activations(model, tok, sentences, layers=[0], max_length=16, progress=False)[0]
    lengths = token_lengths(tok, sentences, 16)
    assert torch.isinf(clouds.sum())  # the sum does overflow
    assert torch.isfinite(clouds).all()
    assert bool((clouds[:, 0, : lengths[0]] == 1e38).all())


def test_compiled_cpu_copy_equals_the_torch_copy():
    """The numba hook copy (CPU) and the torch one (other devices) write the same clouds."""
    from obce._transpose import masked_transpose_into

    g = torch.Generator().manual_seed(0)
    out = torch.randn(5, 7, 37, generator=g)  # 37 neurons: a partial block of 16
    mask = (torch.arange(7)[None, :] < torch.tensor([7, 3, 1, 5, 6])[:, None]).float()
    ref = torch.full((37, 9, 10), 5.0)
    ref[:, 2:7, :7] = out.permute(2, 0, 1) * mask
    ref[:, 2:7, 7:] = 0
    got = torch.full((37, 9, 10), 5.0)
    masked_transpose_into(out.numpy(), mask.numpy(), got.numpy(), 2)
    assert torch.equal(got, ref)
