"""The seed methods as their papers describe them (issue #35): EELBERT without a table, the shared
general distillation stage, KroneckerBERT's two stages and its initial error."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import obce
from obce.errors import ObceInputError


# EELBERT: no table, the same vector for the same token in any sentence

def test_eelbert_has_no_embedding_table_and_embeds_a_token_alike_in_two_sentences(tiny_bert):
    from obce.methods import eelbert

    model, tok = tiny_bert
    small, info = eelbert.compress(model, 0, tokenizer=tok)
    emb = small.embeddings.word_embeddings
    assert isinstance(emb, eelbert.HashEmbedding) and obce.count_parameters(emb) == 0
    assert not any("word_embeddings" in k for k in small.state_dict())
    assert info["embedding_table_parameters"] == 0
    assert obce.count_parameters(small) == obce.count_parameters(model) - 30522 * 32
    a = tok(["the cat sat", "a cat ran far"], padding=True, return_tensors="pt")["input_ids"]
    cat = tok.convert_tokens_to_ids("cat")
    va, vb = emb(a[:1])[0][a[0] == cat], emb(a[1:])[0][a[1] == cat]
    torch.testing.assert_close(va, vb)
    assert torch.all(emb(torch.tensor([[0]])) == 0)  # padding
    assert emb.embed_strings(["qwxzzyq"]).norm() > 0  # a token the vocabulary never had


def test_eelbert_vectors_are_the_pooled_ngram_vectors_and_special_tokens_have_their_own():
    from obce.methods import eelbert

    emb = eelbert.HashEmbedding(["[PAD]", "[CLS]", "cls", "walking", "##king"], 16, 3, ["[CLS]"], scale=0.5)
    grams = eelbert.token_ngrams("walking", 3)
    assert grams == ["<wa", "wal", "alk", "lki", "kin", "ing", "ng>"]
    seeds = np.array([eelbert.seed_of(g) for g in grams], dtype=np.uint64)
    want = eelbert.hash_vectors(seeds, 16).mean(0) * 0.5
    np.testing.assert_allclose(emb(torch.tensor([3])).numpy()[0], want, rtol=1e-6)
    v = eelbert.hash_vectors(seeds, 4096)
    assert v.min() >= -1 and v.max() < 1 and abs(v.mean()) < 0.02  # uniform in [-1, 1)
    cls = emb.embed_strings(["[CLS]"])[0]
    # [CLS]'s vector is seeded by its name alone, not by the n-grams of the string "[CLS]"
    assert not torch.allclose(cls, eelbert.HashEmbedding(["[CLS]"], 16, 3, [], scale=0.5).embed_strings(["[CLS]"])[0])
    assert not torch.allclose(cls, emb.embed_strings(["cls"])[0])
    assert eelbert.token_ngrams("##king", 3) == ["#ki", "kin", "ing", "ng>"]


def test_eelbert_round_trips_and_keeps_fewer_blocks(tiny_bert, sentences, tmp_path):
    from transformers import BertForSequenceClassification

    from obce.methods import eelbert

    model, tok = tiny_bert
    clf = BertForSequenceClassification(model.config).eval()
    eelbert.truncate_layers(clf, 1)
    eelbert.replace_embeddings(clf, tok)
    assert clf.config.num_hidden_layers == 1 and len(clf.bert.encoder.layer) == 1
    batch = obce.activations.tokenize(tok, sentences, 16)
    with torch.no_grad():
        before = clf(**batch).logits
    eelbert.save(clf, tmp_path / "e", tok)
    back = eelbert.load(tmp_path / "e")
    with torch.no_grad():
        torch.testing.assert_close(back(**batch).logits, before)
    with pytest.raises(ObceInputError, match="obce.methods.eelbert.load"):
        obce.load_model(str(tmp_path / "e"))
    spec = obce.methods.method_spec({"name": "eelbert", "layers": 1})
    assert obce.methods.own_size(spec) and obce.methods.own_size(obce.methods.method_spec({"name": "eelbert"}))
    assert obce.methods.method_budget(spec, model, 2) == obce.count_parameters(model) - 30522 * 32 - 2 * (
        obce.count_parameters(model.encoder.layer[0]))


# the general distillation stage

def _texts(n=24):
    words = "the a cat dog sat ran far near big small red blue".split()
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(words, size=rng.integers(3, 9))) for _ in range(n)]


def _student(tiny_bert):
    """The teacher factored (rank 2) and shaken: a student far from its teacher."""
    from obce.methods import kronecker

    model, _ = tiny_bert
    student = kronecker.factor(model, 2)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return student


def test_general_distillation_moves_the_student_toward_the_teacher_and_uses_both_terms(tiny_bert, tmp_path,
                                                                                      monkeypatch):
    from obce import distill

    teacher, tok = tiny_bert
    student = _student(tiny_bert)
    texts = _texts()
    batch = tok(texts[:8], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = distill.general_loss(student, teacher, dict(batch))[0].item()
    seen = []
    real = distill.general_loss
    monkeypatch.setattr(distill, "general_loss", lambda *a, **k: seen.append(real(*a, **k)[1]) or real(*a, **k))
    info = distill.general_distillation(student, teacher, tok, texts, cache_dir=tmp_path, steps=30, batch_size=8,
                                        lr=3e-3, progress=False, corpus="test")
    assert len(seen) == 30 and all(t["hidden"] > 0 and t["attention"] > 0 for t in seen)
    with torch.no_grad():
        after = real(student.eval(), teacher, dict(batch))[0].item()
    assert after < 0.7 * before
    assert info["steps"] == 30 and info["texts"] == 24 and not info["from_cache"] and info["texts_per_second"] > 0
    # the same student, teacher, corpus and settings: loaded from the cache, not trained again
    again = _student(tiny_bert)
    cached = distill.general_distillation(again, teacher, tok, texts, cache_dir=tmp_path, steps=30, batch_size=8,
                                          lr=3e-3, progress=False, corpus="test")
    assert cached["from_cache"] and cached["key"] == info["key"] and len(seen) == 30
    for a, b in zip(student.state_dict().values(), again.state_dict().values()):
        torch.testing.assert_close(a, b)
    other = distill.general_key(_student(tiny_bert), teacher, texts[:-1], steps=30, batch_size=8, lr=3e-3)
    assert other != info["key"]  # another corpus, another key


def test_general_distillation_resumes_to_the_same_weights(tiny_bert, tmp_path, monkeypatch):
    from obce import distill

    teacher, tok = tiny_bert
    texts = _texts()
    settings = dict(steps=6, batch_size=8, lr=3e-3, checkpoint_every=2, progress=False)
    whole = _student(tiny_bert)
    distill.general_distillation(whole, teacher, tok, texts, cache_dir=tmp_path / "a", **settings)

    real, calls = distill.general_loss, []

    def dies_at_step_5(*a, **k):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(distill, "general_loss", dies_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        distill.general_distillation(_student(tiny_bert), teacher, tok, texts, cache_dir=tmp_path / "b", **settings)
    assert any(p.name.endswith(".partial") for p in (tmp_path / "b").iterdir())
    monkeypatch.setattr(distill, "general_loss", real)
    resumed = _student(tiny_bert)
    distill.general_distillation(resumed, teacher, tok, texts, cache_dir=tmp_path / "b", **settings)
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)
    assert not any(p.name.endswith(".partial") for p in (tmp_path / "b").iterdir())


def test_general_batches_depend_on_the_step_alone_and_layer_maps_are_uniform():
    from obce.distill import general_batches, uniform_layer_map

    b = general_batches(10, 7, 4, seed=3)
    assert b[:3] == general_batches(10, 3, 4, seed=3) and all(len(x) == 4 for x in b)
    assert sorted(b[0] + b[1] + b[2][:2]) == list(range(10))  # one pass covers the corpus once
    assert uniform_layer_map(3, 6) == [(0, 0), (1, 2), (2, 4), (3, 6)]
    with pytest.raises(ObceInputError, match="multiple"):
        uniform_layer_map(4, 6)


def test_the_unlabeled_corpus_drops_dev_sentences_and_duplicates(glue_dir):
    from obce.data import load_glue, unlabeled_corpus

    texts, description = unlabeled_corpus(("rte", "mrpc"), glue_dir=glue_dir)
    dev = {s for t in ("rte", "mrpc") for f in ("sentence1", "sentence2") for s in load_glue(t, "validation", glue_dir)[f]}
    assert len(texts) == len(set(texts)) and not dev & set(texts)
    assert set(load_glue("rte", "train", glue_dir)["sentence2"][:50]) - dev <= set(texts)
    assert "rte, mrpc" in description and "labels dropped" in description
    few, d = unlabeled_corpus(("rte",), glue_dir=glue_dir, max_texts=10)
    assert len(few) == 10 and set(few) <= set(texts) and "10 drawn" in d
    with pytest.raises(ObceInputError, match="max_texts"):
        unlabeled_corpus(("rte",), glue_dir=glue_dir, max_texts=0)


# KroneckerBERT: the initial error, recorded

def test_kronecker_records_its_initial_error(tiny_bert):
    from obce.methods import kronecker, level_budget

    model, _ = tiny_bert
    _, info = kronecker.compress(model, level_budget(model, 2))
    full_ranks = [min(a[0] * a[1], b[0] * b[1]) for a, b in
                  (kronecker.balanced_shapes(getattr(p, n).out_features, getattr(p, n).in_features)
                   for p, n in kronecker.linear_maps(model))]
    assert 0 < info["init_error"] < 1
    assert max(kronecker.init_errors(model, kronecker.factor(model, full_ranks))) < 1e-5  # exact at full rank
    errors = kronecker.init_errors(model, kronecker.factor(model, 1))
    w = model.encoder.layer[0].attention.self.query.weight
    a, b = kronecker.balanced_shapes(w.shape[0], w.shape[1])
    assert errors[0] == pytest.approx(kronecker.kronecker_error_bound(w, a, b, 1) / float(w.detach().norm()), rel=1e-5)


def test_run_records_the_general_stage(tiny_bert, glue_dir, tmp_path, monkeypatch):
    from obce.methods import registry, run

    model, tok = tiny_bert
    calls = []
    real = registry.general_stage

    def small_corpus(student, teacher, tok_, steps, **k):
        calls.append(steps)
        return real(student, teacher, tok_, steps, **k)

    monkeypatch.setattr(registry, "general_stage", small_corpus)
    ft = dict(epochs=1, lr=1e-4, batch_size=8, max_length=32, max_train_samples=16, max_eval_samples=16)
    result = run({"name": "eelbert", "general_steps": 2}, model, tok, "rte", level=2, seed=0, finetune=ft,
                 glue_dir=glue_dir, progress=False, work_parent=tmp_path, general_cache=tmp_path / "g")
    prov = result.provenance
    assert calls == [2] and prov["general_distillation"]["steps"] == 2 and prov["budget"] == "own"
    assert prov["embedding_table_parameters"] == 0 and result.to_dict()["degenerate"] in (True, False)
    assert prov["general_distillation"]["key"] in {p.name for p in (tmp_path / "g").iterdir()}
