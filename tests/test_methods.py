"""Compression methods: FFN sub-layer removal."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import obce
from obce.errors import ObceInputError
from obce.methods import layer_removal


def _hidden(model, tok, texts):
    batch = obce.activations.tokenize(tok, texts, 16)
    with torch.no_grad():
        return model(**batch).last_hidden_state


def test_removing_a_block_whose_ffn_output_is_zero_changes_no_output(tiny_bert, sentences):
    model, tok = tiny_bert
    with torch.no_grad():
        out = model.encoder.layer[1].output.dense
        out.weight.zero_()
        out.bias.zero_()
    small = layer_removal.remove_blocks(model, layers=[1])
    torch.testing.assert_close(_hidden(small, tok, sentences), _hidden(model, tok, sentences))
    assert layer_removal.layer_sizes(small) == [64, 0, 64]


def test_parameter_count_is_exact(minilm):
    model, _ = minilm
    small = layer_removal.remove_blocks(model, n_remove=3, criterion="last")
    block = 2 * 384 * 1536 + 1536 + 384  # both maps and both biases: 1,181,568
    assert obce.count_parameters(model) - obce.count_parameters(small) == 3 * block == 3_544_704
    # OBCE level 2 removes 1,152 fewer: neuron pruning keeps each layer's output bias
    level2 = obce.prune(model, np.random.default_rng(0).random((6, 1536)), level=2)
    assert obce.count_parameters(model) - obce.count_parameters(level2) == 3_543_552


def test_save_and_load_round_trip(tiny_bert, sentences, tmp_path):
    model, tok = tiny_bert
    small = layer_removal.remove_blocks(model, n_remove=2, criterion="every_other")
    layer_removal.save(small, tmp_path / "m", tok)
    again = layer_removal.load(tmp_path / "m")
    assert layer_removal.layer_sizes(again) == layer_removal.layer_sizes(small) == [0, 0, 64]
    torch.testing.assert_close(_hidden(again, tok, sentences), _hidden(small, tok, sentences))
    with pytest.raises(ObceInputError, match="obce_layers.json"):
        layer_removal.load(tmp_path)


def test_criteria_choose_blocks(tiny_bert, sentences):
    model, tok = tiny_bert
    assert layer_removal.choose_layers(model, 1, "last") == [2]
    assert layer_removal.choose_layers(model, 2, "first") == [0, 1]
    assert layer_removal.choose_layers(model, 1, "every_other") == [1]
    with torch.no_grad():
        model.encoder.layer[0].output.dense.weight.mul_(1e-3)  # layer 0's FFN barely changes the stream
        model.encoder.layer[0].output.dense.bias.zero_()
    change = layer_removal.residual_change(model, tok, sentences)
    assert change.shape == (3,) and np.argmin(change) == 0
    assert layer_removal.choose_layers(model, 1, "residual_change", tok, sentences) == [0]
    with pytest.raises(ObceInputError, match="criterion 'deepest'"):
        layer_removal.choose_layers(model, 1, "deepest")
    with pytest.raises(ObceInputError, match="n_remove=4"):
        layer_removal.remove_blocks(model, n_remove=4)


# adapting by pruning: learned masks over frozen weights

def test_masked_linear_keeps_exactly_its_share_and_passes_gradients_straight_through():
    from obce.methods.masks import MaskedLinear

    torch.manual_seed(0)
    lin = torch.nn.Linear(20, 10)
    m = MaskedLinear(lin, sparsity=0.3)
    mask = m.mask()
    assert int(mask.sum()) == 140 == m.keep and set(mask.unique().tolist()) == {0.0, 1.0}
    # the initial mask keeps the largest weights (magnitude init)
    assert lin.weight.abs()[mask.bool()].min() >= lin.weight.abs()[~mask.bool()].max()
    x = torch.randn(4, 20)
    torch.testing.assert_close(m(x), torch.nn.functional.linear(x, lin.weight * mask, lin.bias))
    m(x).sum().backward()
    assert m.weight.grad is None and m.scores.grad is not None
    # straight through: d loss / d scores = d loss / d mask = (d loss / d masked weight) * weight
    expected = (torch.ones(4, 10).T @ x) * lin.weight
    torch.testing.assert_close(m.scores.grad, expected)


def test_masks_train_only_scores_and_head_and_apply_to_a_plain_checkpoint(tiny_bert, sentences, tmp_path):
    from transformers import AutoModelForSequenceClassification, BertForSequenceClassification

    from obce.methods import masks

    model, tok = tiny_bert
    clf = BertForSequenceClassification(model.config).eval()
    clf.bert.load_state_dict(model.state_dict(), strict=False)
    batch = obce.activations.tokenize(tok, sentences, 16)
    with torch.no_grad():
        before = clf(**batch).logits
    masks.add_masks(clf, 0.0)  # nothing masked: the same outputs
    with torch.no_grad():
        torch.testing.assert_close(clf(**batch).logits, before)
    trainable = {n.split(".")[0] if n.startswith("classifier") else n for n, p in clf.named_parameters()
                 if p.requires_grad}
    assert all(n.endswith(".scores") or n == "classifier" for n in trainable)  # the pooler stays frozen
    assert sum(n.endswith(".scores") for n in trainable) == 6 * 3

    clf2 = BertForSequenceClassification(model.config).eval()
    clf2.bert.load_state_dict(model.state_dict(), strict=False)
    masks.add_masks(clf2, 0.4)
    with torch.no_grad():
        masked = clf2(**batch).logits
    masks.apply_masks(clf2)
    assert not any(isinstance(m, masks.MaskedLinear) for m in clf2.modules())
    with torch.no_grad():
        torch.testing.assert_close(clf2(**batch).logits, masked)
    total = 3 * (4 * 32 * 32 + 2 * 32 * 64)
    removed = sum(round(0.4 * getattr(p, n).weight.numel()) for p, n in masks.masked_linears(clf2))
    assert obce.count_parameters(clf2.bert) - masks.remaining_parameters(clf2.bert) == removed
    assert masks.mask_storage_bytes(clf2) == total // 8
    assert masks.sparsity_for(clf2, removed) == pytest.approx(0.4, abs=1e-3)
    clf2.save_pretrained(tmp_path / "m")  # a vanilla checkpoint with exact zeros
    back = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    with torch.no_grad():
        torch.testing.assert_close(back(**batch).logits, masked)


def test_mask_learning_lowers_the_loss_on_a_tiny_batch(tiny_bert, sentences):
    from transformers import BertForSequenceClassification

    from obce.methods import masks

    model, tok = tiny_bert
    torch.manual_seed(0)
    clf = BertForSequenceClassification(model.config)
    clf.bert.load_state_dict(model.state_dict(), strict=False)
    clf.config.hidden_dropout_prob = clf.config.attention_probs_dropout_prob = 0.0
    masks.add_masks(clf, 0.5)
    clf.eval()
    opt = masks.optimizer(clf, mask_lr=0.05, head_lr=0.01)
    batch = obce.activations.tokenize(tok, sentences, 16)
    labels = torch.tensor([i % 2 for i in range(len(sentences))])
    frozen = clf.bert.encoder.layer[0].attention.self.query.weight.clone()
    pooler = clf.bert.pooler.dense.weight.clone()
    assert masks.mask_changed(clf) == 0.0  # the initial masks are the magnitude masks
    losses = []
    for _ in range(200):  # the pooler is frozen (and random here): the masks and classifier learn slowly
        loss = clf(**batch, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]
    torch.testing.assert_close(clf.bert.encoder.layer[0].attention.self.query.weight, frozen)
    torch.testing.assert_close(clf.bert.pooler.dense.weight, pooler)  # pre-trained, kept intact
    moved = masks.mask_changed(clf)  # training moved the masks away from magnitude pruning
    m = clf.bert.encoder.layer[0].attention.self.query
    assert 0 < moved < 1 and int((m.mask() != masks.initial_mask(m)).sum()) > 0
    info = masks.finish(clf)
    assert info["mask_changed"] == moved and info["pooler_trained"] is False
    assert info["size_with_masks_bytes"] == 4 * info["parameters"] + info["mask_storage_bytes"]


def test_level_budgets_are_obce_levels_parameter_counts(minilm):
    from obce.methods import level_budget

    model, _ = minilm
    full = obce.count_parameters(model)
    assert level_budget(model, 0) == full == 22_713_216
    for level in (1, 2, 3):  # each level removes a quarter of every layer's neurons: (2 x 384 + 1) weights each
        assert level_budget(model, level) == full - level * 6 * 384 * (2 * 384 + 1)
    with pytest.raises(ObceInputError, match="level 4"):
        level_budget(model, 4)


def test_method_specs_are_checked():
    from obce.methods import method_spec

    assert method_spec({"name": "layer_removal"}) == dict(name="layer_removal", label="layer_removal",
                                                          params=dict(general_steps=0, criterion="residual_change"))
    assert method_spec({"name": "masks", "mask_lr": 0.1, "label": "masks-fast"})["params"]["mask_lr"] == 0.1
    for bad, match in (({"name": "tucker"}, "'tucker'"), ({"name": "hash_table", "ngram_sizes": [0]}, "ngram_sizes"),
                       ({"name": "kronecker", "distill": True}, r"\['distill'\]"), ({"name": "masks", "lr": 1}, r"\['lr'\]"),
                       ({"name": "layer_removal", "criterion": "middle"}, "'middle'"),
                       ({"name": "masks", "mask_lr": -1}, "mask_lr"), ("masks", "mapping"),
                       ({"name": "kronecker", "compression": 0.5}, "factor > 1"),
                       ({"name": "hash_table", "buckets": 10.5}, "whole number"),
                       ({"name": "hash_table", "buckets": -3}, "buckets=-3")):
        with pytest.raises(ObceInputError, match=match):
            method_spec(bad)


@pytest.mark.parametrize("spec", [{"name": "layer_removal", "criterion": "last"}, {"name": "masks"}])
def test_run_compresses_to_the_budget_trains_and_records_exact_sizes(spec, tiny_bert, glue_dir, tmp_path):
    from obce.methods import level_budget, run

    model, tok = tiny_bert
    ft = dict(epochs=1, lr=1e-4, batch_size=8, max_length=32, max_train_samples=16, max_eval_samples=16)
    result = run(spec, model, tok, "rte", level=2, seed=0, finetune=ft, glue_dir=glue_dir, progress=False,
                 work_parent=tmp_path)
    prov = result.provenance
    full = obce.count_parameters(model)
    assert prov["method"] == spec["name"] == prov["importance"] and prov["level"] == 2
    assert prov["budget_parameters"] == level_budget(model, 2) and prov["parameters_full"] == full
    assert set(result.metrics) == {"accuracy"} and prov["size_on_disk_bytes"] > 0
    if spec["name"] == "layer_removal":
        # level 2 removes 3 x 32 neurons x 65 weights = 6,240; a block holds 4,192: 1 block is nearest
        block = 2 * 32 * 64 + 64 + 32
        assert prov["removed_layers"] == [2] and prov["parameters"] == full - block
        assert prov["parameters"] == prov["parameters_dense"]
    else:
        assert prov["parameters_dense"] == full
        assert abs(prov["parameters"] - prov["budget_parameters"]) <= 18  # rounding per masked matrix
        assert prov["mask_storage_bytes"] == 3 * (4 * 32 * 32 + 2 * 32 * 64) // 8
        assert 0 <= prov["mask_changed"] <= 1 and prov["pooler_trained"] is False
        assert prov["size_with_masks_bytes"] == 4 * prov["parameters"] + prov["mask_storage_bytes"]
    assert list(tmp_path.iterdir()) == [] or all(p.name.startswith(".") for p in tmp_path.iterdir())


# Kronecker factors (KroneckerBERT, issue #23: the factorisation and its layer)

def test_nearest_kronecker_recovers_an_exact_kronecker_product():
    from obce.methods.kronecker import kronecker_error_bound, nearest_kronecker

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64)
    w = torch.kron(a, b)
    fa, fb = nearest_kronecker(w, (3, 4), (5, 2))
    torch.testing.assert_close(torch.kron(fa[0], fb[0]), w)
    assert kronecker_error_bound(w, (3, 4), (5, 2)) < 1e-12
    # two terms: a sum of two products is recovered exactly with rank 2
    w2 = w + torch.kron(torch.randn(3, 4, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g,
                                                                                         dtype=torch.float64))
    fa, fb = nearest_kronecker(w2, (3, 4), (5, 2), rank=2)
    torch.testing.assert_close(sum(torch.kron(x, y) for x, y in zip(fa, fb)), w2)


@pytest.mark.parametrize("rank", [1, 3])
def test_nearest_kronecker_meets_the_truncated_svd_bound_on_a_random_matrix(rank):
    from obce.methods.kronecker import kronecker_error_bound, nearest_kronecker

    w = torch.randn(12, 20, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    fa, fb = nearest_kronecker(w, (4, 5), (3, 4), rank=rank)
    err = float((w - sum(torch.kron(x, y) for x, y in zip(fa, fb))).norm())
    bound = kronecker_error_bound(w, (4, 5), (3, 4), rank=rank)
    assert err == pytest.approx(bound, rel=1e-10) and 0 < bound < float(w.norm())
    # no other single Kronecker product does better: a perturbed one is worse
    worse = torch.kron(fa[0] + 0.01, fb[0])
    if rank == 1:
        assert float((w - worse).norm()) > err
    with pytest.raises(ObceInputError, match="do not tile it"):
        nearest_kronecker(w, (4, 4), (3, 4))


def test_kronecker_linear_equals_its_dense_weight_and_counts_exactly():
    from obce.methods.kronecker import KroneckerLinear

    torch.manual_seed(0)
    lin = torch.nn.Linear(384, 1536)
    k = KroneckerLinear.from_linear(lin, (48, 24), (32, 16), rank=2)
    for x in (torch.randn(2, 7, 384), torch.randn(1, 384)):  # a batch forms W; one token applies A X B^T
        torch.testing.assert_close(k(x), torch.nn.functional.linear(x, k.weight(), lin.bias), rtol=1e-4, atol=1e-5)
    dense = sum(torch.kron(a, b) for a, b in zip(k.a, k.b))
    torch.testing.assert_close(k.weight(), dense)
    assert obce.count_parameters(k) == 2 * (48 * 24 + 32 * 16) + 1536


# The fitted hash table (issue #23's stand-in for EELBERT: the embedding, its fit and its checkpoint)

def test_ngram_buckets_are_stable_and_mark_word_pieces():
    from obce.methods.hash_table import ngram_buckets, token_ngrams

    assert token_ngrams("cat", (2,)) == ["<c", "ca", "at", "t>"]
    assert token_ngrams("##at", (3,)) == ["#at", "at>"]
    assert token_ngrams("a", (4,)) == ["<a>"]
    b = ngram_buckets("unfathomable", (2, 3), 97)
    assert b == ngram_buckets("unfathomable", (2, 3), 97) and all(0 <= x < 97 for x in b)
    assert ngram_buckets("##able", (3,), 10**6) != ngram_buckets("able", (3,), 10**6)


def test_dynamic_embedding_is_deterministic_handles_unseen_tokens_and_counts_exactly(minilm):
    from obce.methods.hash_table import DynamicEmbedding

    _, tok = minilm
    vocab = tok.convert_ids_to_tokens(list(range(tok.vocab_size)))
    dyn = DynamicEmbedding(vocab, 16, buckets=512)
    assert obce.count_parameters(dyn) == 512 * 16  # the table alone; the n-gram index is not a parameter
    assert set(dyn.state_dict()) == {"table.weight"}
    ids = torch.tensor([[101, 2204, 3185, 102, 0]])
    out = dyn(ids)
    torch.testing.assert_close(out, dyn(ids))
    torch.testing.assert_close(out[0, 1], dyn.embed_strings(["good"])[0])  # id 2204 is "good"
    assert torch.all(out[0, 4] == 0)  # padding
    unseen = dyn.embed_strings(["qwxzzyq", "##qwx"])
    assert unseen.shape == (2, 16) and torch.all(unseen.norm(dim=1) > 0)
    assert "qwxzzyq" not in tok.vocab


def test_fitted_dynamic_embedding_approaches_the_table_and_round_trips(tiny_bert, sentences, tmp_path):
    from transformers import BertForSequenceClassification

    from obce.methods import hash_table

    model, tok = tiny_bert
    vocab = tok.convert_ids_to_tokens(list(range(tok.vocab_size)))
    torch.manual_seed(1)  # a target the n-gram table can express: another table's embeddings
    target = hash_table.DynamicEmbedding(vocab, 32, buckets=1024, ngram_sizes=(2, 3)).vocabulary_embeddings().detach()
    torch.manual_seed(2)
    dyn = hash_table.DynamicEmbedding(vocab, 32, buckets=1024, ngram_sizes=(2, 3))
    history = hash_table.fit_to_embeddings(dyn, target, epochs=150, lr=0.01)
    assert history[-1] < 0.05 * history[0]

    clf = BertForSequenceClassification(model.config).eval()
    table = clf.bert.embeddings.word_embeddings.weight.detach().clone()
    hash_table.replace_embeddings(clf, tok, buckets=2048, ngram_sizes=(2, 3), epochs=5)
    n_table = table.numel()
    full = obce.count_parameters(BertForSequenceClassification(model.config))
    assert obce.count_parameters(clf) == full - n_table + 2048 * 32
    batch = obce.activations.tokenize(tok, sentences, 16)
    with torch.no_grad():
        before = clf(**batch).logits
    hash_table.save(clf, tmp_path / "e", tok)
    back = hash_table.load(tmp_path / "e")
    with torch.no_grad():
        torch.testing.assert_close(back(**batch).logits, before)
    with pytest.raises(ObceInputError, match="hash_table.save"):
        hash_table.load(tmp_path)


def test_kronecker_compress_meets_a_budget_and_is_exact_with_full_rank(tiny_bert, sentences):
    from obce.methods import kronecker, level_budget

    model, tok = tiny_bert
    assert kronecker.balanced_shapes(1536, 384) == ((32, 16), (48, 24))
    assert kronecker.balanced_shapes(7, 384) == ((1, 16), (7, 24))  # a prime keeps one side whole
    full_ranks = [min(a[0] * a[1], b[0] * b[1]) for a, b in
                  (kronecker.balanced_shapes(getattr(p, n).out_features, getattr(p, n).in_features)
                   for p, n in kronecker.linear_maps(model))]
    exact = kronecker.factor(model, full_ranks)  # full rank: the same weights, the same outputs
    batch = obce.activations.tokenize(tok, sentences, 16)
    with torch.no_grad():
        torch.testing.assert_close(exact(**batch).last_hidden_state, model(**batch).last_hidden_state,
                                   rtol=1e-4, atol=1e-4)
    full = obce.count_parameters(model)
    budget = level_budget(model, 2)
    small = kronecker.factor(model, kronecker.ranks_for_budget(model, full - budget))
    maps = [getattr(p, n) for p, n in kronecker.linear_maps(small)]
    expected = full - sum(32 * 32 * 4 + 2 * 32 * 64 for _ in range(3)) + sum(
        m.a.numel() + m.b.numel() for m in maps)
    assert obce.count_parameters(small) == expected
    assert abs(expected - budget) < 0.05 * full
    tiny = kronecker.factor(model, 1, embedding_factor=8)
    assert obce.count_parameters(tiny.embeddings.word_embeddings) == 30522 * 4 + 8
    with torch.no_grad():
        assert tiny(**batch).last_hidden_state.shape == model(**batch).last_hidden_state.shape


@pytest.mark.parametrize("spec", [{"name": "kronecker"}, {"name": "hash_table", "fit_epochs": 5, "distill": True}])
def test_run_distils_factored_and_dynamic_models_to_the_budget(spec, tiny_bert, glue_dir, tmp_path):
    from transformers import BertForSequenceClassification

    from obce.methods import level_budget, run

    model, tok = tiny_bert
    teacher = BertForSequenceClassification(model.config).eval()
    ft = dict(epochs=1, lr=1e-4, batch_size=8, max_length=32, max_train_samples=16, max_eval_samples=16)
    result = run(spec, model, tok, "rte", level=2, seed=0, finetune=ft, glue_dir=glue_dir, progress=False,
                 work_parent=tmp_path, teacher=teacher)
    prov = result.provenance
    assert prov["method"] == spec["name"] and "distilled" in prov["training"]
    assert set(result.metrics) == {"accuracy"} and prov["size_on_disk_bytes"] > 0
    budget = level_budget(model, 2)
    if spec["name"] == "hash_table":  # whole table rows: within one row of hidden size of the budget
        assert prov["buckets"] * 32 == 30522 * 32 - (obce.count_parameters(model) - budget)
        assert abs(prov["parameters"] - budget) < 32
    else:
        assert abs(prov["parameters"] - budget) < 0.05 * obce.count_parameters(model)
    with pytest.raises(ObceInputError, match="give the teacher"):
        run(spec, model, tok, "rte", level=2, finetune=ft, glue_dir=glue_dir, progress=False)


def test_budgets_in_whole_blocks_and_table_rows(minilm):
    from obce.methods import hash_table, level_budget

    model, _ = minilm
    full = obce.count_parameters(model)
    # one block holds 1,181,568 parameters; levels 1-3 remove 1,771,776 x level: nearest 1, 3 and 4 blocks
    assert [layer_removal.blocks_for(model, full - level_budget(model, k)) for k in (1, 2, 3)] == [1, 3, 4]
    assert hash_table.buckets_for(model, 384 * 1000 + 5) == 30522 - 1001
    with pytest.raises(ObceInputError, match="word-embedding table"):
        hash_table.buckets_for(model, 30522 * 384)


def test_own_sizes_kronecker_19x_and_a_small_hash_table(minilm):
    """A size of its own: KroneckerBERT at 19x of MiniLM's encoder (with the word table factored), and
    EELBERT with a table of 1,000 hash rows; a 19x that the factors cannot reach is refused."""
    from obce.methods import kronecker, method_spec, own_size

    model, _ = minilm
    full = obce.count_parameters(model)
    assert not own_size(method_spec({"name": "kronecker"})) and own_size(method_spec({"name": "hash_table", "buckets": 8}))
    assert kronecker.DEFAULTS["attention_weight"] > 0  # KroneckerBERT distils attention outputs too
    saved = kronecker.embedding_saving(model, 24)
    assert saved == 30522 * 384 - (30522 * 16 + 24)
    small = kronecker.factor(model, kronecker.ranks_for_budget(model, full - full // 19 - saved), embedding_factor=24)
    assert abs(obce.count_parameters(small) - full / 19) < 0.01 * full / 19  # within 1% of its own target
    with pytest.raises(ObceInputError, match="larger embedding_factor"):
        kronecker.ranks_for_budget(model, full - full // 19 - kronecker.embedding_saving(model, 2))
    from obce.methods import hash_table

    dyn = hash_table.DynamicEmbedding(["[PAD]", "hello", "##lo"], 384, buckets=1000, padding_idx=0)
    assert obce.count_parameters(dyn) == 1000 * 384


def test_kronecker_save_and_load_round_trip_with_identical_outputs(tiny_bert, sentences, tmp_path):
    from transformers import BertForSequenceClassification

    from obce.methods import kronecker

    model, tok = tiny_bert
    clf = BertForSequenceClassification(model.config).eval()
    small = kronecker.factor(clf, [1, 2, 3] * 6, embedding_factor=8)  # ranks differ map by map
    kronecker.save(small, tmp_path / "k", tok)
    back = kronecker.load(tmp_path / "k")
    batch = obce.activations.tokenize(tok, sentences, 16)
    with torch.no_grad():
        torch.testing.assert_close(back(**batch).logits, small(**batch).logits, rtol=0, atol=0)
    assert obce.count_parameters(back) == obce.count_parameters(small) < obce.count_parameters(clf)
    assert isinstance(back.bert.embeddings.word_embeddings, kronecker.KroneckerEmbedding)
    with pytest.raises(ObceInputError, match="not a checkpoint written by kronecker.save"):
        kronecker.load(tmp_path)


def test_kronecker_run_trains_on_the_teachers_logits_hidden_states_and_attention_outputs(tiny_bert, glue_dir,
                                                                                         tmp_path, monkeypatch):
    """A spy on obce.distill's loss terms: every training step of KroneckerBERT's task stage computes the
    prediction-layer loss against the very logits the teacher produced, and the hidden-state and
    attention-output terms against the teacher's tensors. Fails if the run trains on the labels alone or
    the terms are dropped from the loss."""
    from transformers import BertForSequenceClassification

    import obce.distill as distill
    from obce.methods import run

    model, tok = tiny_bert
    teacher = BertForSequenceClassification(model.config).eval()
    produced, calls = [], {"logits": [], "hidden": []}
    forward = teacher.forward

    def spy_forward(*args, **kwargs):
        out = forward(*args, **kwargs)
        produced.append(out)
        return out

    monkeypatch.setattr(teacher, "forward", spy_forward)
    real_dl, real_hl = distill.distillation_loss, distill.hidden_loss

    def spy_dl(student_logits, teacher_logits, *args, **kwargs):
        calls["logits"].append(teacher_logits)
        return real_dl(student_logits, teacher_logits, *args, **kwargs)

    def spy_hl(student, teacher_side, *args, **kwargs):
        calls["hidden"].append(teacher_side)
        return real_hl(student, teacher_side, *args, **kwargs)

    monkeypatch.setattr(distill, "distillation_loss", spy_dl)
    monkeypatch.setattr(distill, "hidden_loss", spy_hl)
    ft = dict(epochs=1, lr=1e-4, batch_size=8, max_length=32, max_train_samples=16, max_eval_samples=16)
    run({"name": "kronecker", "general_steps": 0}, model, tok, "rte", level=2, seed=0, finetune=ft,
        glue_dir=glue_dir, progress=False, work_parent=tmp_path, teacher=teacher)
    steps = len(calls["logits"])
    assert steps >= 2  # 16 training texts, batch 8, one epoch (and the evaluation's batches, if it computes the loss)
    teacher_logits = [o.logits for o in produced]
    assert all(any(t is s for s in teacher_logits) for t in calls["logits"])
    assert len(calls["hidden"]) == 2 * steps  # hidden states and attention outputs at every step
    teacher_hidden = [o.hidden_states for o in produced]
    hidden_terms = [h for h in calls["hidden"] if any(h is t for t in teacher_hidden)]
    assert len(hidden_terms) == steps  # the other half: the teacher's attention outputs


# The combination (issue #35): FFN pruning by a score + a compressed word table + distillation

def test_combined_reaches_half_of_minilm_keeping_the_best_neurons_and_refuses_what_it_cannot(minilm):
    from obce.methods import combined, method_budget, method_spec

    model, tok = minilm
    full = obce.count_parameters(model)
    scores = np.random.default_rng(0).random((6, 1536))
    spec = method_spec({"name": "combined"})
    budget = method_budget(spec, model, 2)
    assert budget == round(full / 2) == 11_356_608  # half of MiniLM, whatever the level
    small, info = combined.compress(model, budget, scores=scores, tokenizer=tok, **spec["params"])
    per_neuron = 6 * (2 * 384 + 1)
    assert abs(obce.count_parameters(small) - budget) <= per_neuron / 2  # to the nearest neuron per layer
    assert info["embedding_table_parameters"] == 30522 * 384 // 4 + 4 == obce.count_parameters(
        small.embeddings.word_embeddings)
    k = info["intermediate_size"]
    assert k < 1536 and np.array_equal(  # the kept neurons of layer 0 are its k best-scoring ones
        small.encoder.layer[0].intermediate.dense.weight.detach().numpy(),
        model.encoder.layer[0].intermediate.dense.weight.detach().numpy()[np.sort(np.argsort(-scores[0])[:k])])
    assert 0 < info["init_error_embeddings"] < 1
    eel = method_spec({"name": "combined", "embedding": "eelbert", "size": 0.3})
    small, info = combined.compress(model, method_budget(eel, model, 1), scores=scores, tokenizer=tok, **eel["params"])
    assert info["embedding_table_parameters"] == 0 and obce.count_parameters(small.embeddings.word_embeddings) == 0
    assert abs(obce.count_parameters(small) - round(0.3 * full)) <= per_neuron / 2
    for bad in ({"name": "combined", "size": 0.15}, {"name": "combined", "embedding": "none", "size": 0.5}):
        spec = method_spec(bad)
        with pytest.raises(ObceInputError, match="out of reach"):
            combined.check_fits(model, method_budget(spec, model, 2), spec["params"])
    with pytest.raises(ObceInputError, match="scores"):
        combined.compress(model, budget, **method_spec({"name": "combined"})["params"])
