"""Heads and neurons, Kwon et al.'s search, rearrangement and mask tuning (obce.units, obce.unit_scores,
obce.search, the search protocol and ``obce prune --flops``)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from obce import search, unit_scores, units
from obce.cli import main
from obce.errors import ObceInputError


@pytest.fixture()
def tiny_clf(tiny_bert):
    """The tiny BERT with a two-class head (random weights), in eval mode."""
    from transformers import BertForSequenceClassification

    model, tok = tiny_bert
    torch.manual_seed(1)
    clf = BertForSequenceClassification(model.config.__class__(**{**model.config.to_dict(), "num_labels": 2})).eval()
    clf.bert.load_state_dict(model.state_dict())
    return clf, tok


def _logits(model, tok, texts):
    from obce.activations import tokenize

    with torch.no_grad():
        return model(**tokenize(tok, texts, 32)).logits


def _hidden(model, tok, texts):
    from obce.activations import tokenize

    with torch.no_grad():
        return model.bert(**tokenize(tok, texts, 32)).last_hidden_state


def test_masks_of_one_leave_every_logit_unchanged(tiny_clf, sentences):
    model, tok = tiny_clf
    heads, neurons = units.layer_widths(model)
    before, hidden = _logits(model, tok, sentences), _hidden(model, tok, sentences)
    with units.unit_masks(model, torch.ones(len(heads), heads[0]), torch.ones(len(neurons), neurons[0])):
        during = _logits(model, tok, sentences)
    assert torch.equal(before, during)
    with units.unit_masks(model, torch.zeros(len(heads), heads[0]), None):  # the masks are used
        assert not torch.allclose(hidden, _hidden(model, tok, sentences), atol=1e-3)


def test_removing_a_head_whose_output_projection_is_zero_changes_no_logit(tiny_clf, sentences):
    model, tok = tiny_clf
    d_h = units.head_dim(model)
    layer = model.bert.encoder.layer[1]
    with torch.no_grad():
        layer.attention.output.dense.weight[:, 2 * d_h:3 * d_h] = 0
    before = _logits(model, tok, sentences)
    keep_h = [[0, 1, 2, 3], [0, 1, 3], [0, 1, 2, 3]]
    keep_n = [list(range(64))] * 3
    small = units.prune_units(model, keep_h, keep_n)
    assert units.layer_widths(small) == ([4, 3, 4], [64, 64, 64])
    assert torch.allclose(before, _logits(small, tok, sentences), atol=1e-6)
    assert torch.allclose(_hidden(model, tok, sentences), _hidden(small, tok, sentences), atol=1e-5)
    # removing a head that contributes changes the outputs
    other = units.prune_units(model, [[0, 1, 2, 3], [0, 1, 2], [0, 1, 2, 3]], keep_n)
    assert not torch.allclose(_hidden(model, tok, sentences), _hidden(other, tok, sentences), atol=1e-3)


def test_physical_pruning_computes_what_the_scaled_masks_compute_and_reloads_to_the_bit(tiny_clf, sentences, tmp_path):
    model, tok = tiny_clf
    rng = np.random.default_rng(0)
    hm = rng.random((3, 4)) < 0.6
    hm[:, 0] = True
    nm = rng.random((3, 64)) < 0.5
    nm[:, 0] = True
    hs, ns = hm * rng.uniform(0.5, 1.5, hm.shape), nm * rng.uniform(0.5, 1.5, nm.shape)
    with units.unit_masks(model, torch.tensor(hs, dtype=torch.float32), torch.tensor(ns, dtype=torch.float32)):
        masked = _logits(model, tok, sentences)
    keep_h, keep_n = [np.flatnonzero(m) for m in hm], [np.flatnonzero(m) for m in nm]
    small = units.prune_units(model, keep_h, keep_n, [s[k] for s, k in zip(hs, keep_h)], [s[k] for s, k in zip(ns, keep_n)])
    physical = _logits(small, tok, sentences)
    assert torch.allclose(masked, physical, atol=1e-5)
    assert units.layer_widths(small) == ([len(k) for k in keep_h], [len(k) for k in keep_n])
    path = units.save(small, tmp_path / "pruned", tok)
    again = units.load(path)
    assert torch.equal(physical, _logits(again, tok, sentences))
    assert json.loads((path / units.UNITS_FILE).read_text())["heads"] == [len(k) for k in keep_h]


def test_prune_units_refuses_an_empty_layer(tiny_clf):
    model, _ = tiny_clf
    with pytest.raises(ObceInputError, match="layer 1: keep at least one head"):
        units.prune_units(model, [[0], [], [0]], [[0]] * 3)


@pytest.mark.parametrize("flops", [0.9, 0.6, 0.3])
def test_search_meets_its_flops_budget_within_one_unit(flops):
    rng = np.random.default_rng(3)
    hs, ns = rng.random((6, 12)), rng.random((6, 1536)) * 0.01
    h, n = units.unit_macs(50.0, 384, 32)
    hm, nm = search.search(hs, ns, flops, h, n)
    kept = search.flops_of(hm, nm, 50.0, 384, 32)
    full = 6 * (12 * h + 1536 * n)
    assert kept <= flops + 1e-12
    assert (flops - kept) * full < max(h, n)  # nothing else fits
    assert hm.sum(1).min() >= 1 and nm.sum(1).min() >= 1
    # the neurons kept beside each layer's best are the best of the rest
    forced = np.zeros_like(nm)
    forced[np.arange(6), ns.argmax(1)] = True
    rest = ns[~forced]
    assert rest[nm[~forced]].min() >= rest[~nm[~forced]].max()


def test_search_refuses_budgets_it_cannot_meet():
    h, n = units.unit_macs(50.0, 384, 32)
    for bad in (0, 1.5, float("nan"), True):
        with pytest.raises(ObceInputError, match="expected a fraction"):
            search.search(np.ones((6, 12)), np.ones((6, 1536)), bad, h, n)
    with pytest.raises(ObceInputError, match="one head and one neuron per layer"):
        search.search(np.ones((6, 12)), np.ones((6, 1536)), 0.01, h, n)


def test_uniform_ffn_keeps_every_head_and_one_width():
    h, n = units.unit_macs(50.0, 384, 32)
    ns = np.random.default_rng(0).random((6, 1536))
    hm, nm = search.uniform_ffn(ns, 12, 0.6, h, n)
    assert hm.all() and len(set(nm.sum(1))) == 1
    assert search.flops_of(hm, nm, 50.0, 384, 32) <= 0.6


def test_rearrangement_minimises_the_summed_gradient_of_the_pruned_units():
    # one batch: units 0 and 1 cancel; the greedy prunes the smallest (2), then the one that cancels it best (1)
    grads = np.array([[[1.0, -1.0, 0.6]]])  # (batches, layers, units)
    mask = np.array([[True, False, False]])
    heads, neurons = search.rearrange(mask, mask, grads, grads)
    assert heads.tolist() == [[True, False, False]]
    assert neurons.tolist() == [[True, False, False]]
    mask = np.array([[False, True, False]])  # the search kept unit 1; the rearrangement keeps unit 0 instead
    _, neurons = search.rearrange(mask, mask, grads, grads)
    assert neurons.tolist() == [[True, False, False]] and neurons.sum() == mask.sum()


def test_fisher_is_per_batch_and_fisher_text_per_text(tiny_clf, sentences):
    model, tok = tiny_clf
    labels = [i % 2 for i in range(len(sentences))]
    per_batch = unit_scores.unit_scores("fisher", model, tok, sentences, labels, max_length=32, batch_size=4)
    per_text = unit_scores.unit_scores("fisher_text", model, tok, sentences, labels, max_length=32)
    ones = unit_scores.unit_scores("fisher", model, tok, sentences, labels, max_length=32, batch_size=1)
    assert np.allclose(per_text[1], ones[1]) and np.allclose(per_text[0], ones[0])
    assert not np.allclose(per_batch[1], per_text[1])
    weights = [p.detach().clone() for p in model.parameters()]
    unit_scores.mask_gradients(model, tok, sentences, labels, max_length=32)
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))  # the weights are untouched


def test_head_merge_radius_equals_gudhi(tiny_bert, sentences):
    from obce.persistence import h0_deaths, summarize

    model, tok = tiny_bert
    clouds = unit_scores.head_clouds(model, tok, sentences, max_length=16)
    assert clouds.shape == (12, len(sentences), 16 * 8)
    lengths = [len(tok(s, truncation=True, max_length=16)["input_ids"]) for s in sentences]
    per_token = clouds.view(12, len(sentences), 16, 8)
    assert all(per_token[:, i, lengths[i]:].abs().sum() == 0 for i in range(len(sentences)))  # padding at 0
    hs, _ = unit_scores.unit_scores("merge_radius", model, tok, sentences, max_length=16)
    reference = summarize(h0_deaths(clouds.numpy().astype(np.float64), method="gudhi"), "merge_radius")
    assert np.allclose(hs.ravel(), reference, atol=1e-6)


def test_mask_tuning_lowers_the_held_out_error(minilm, glue_dir):
    import obce

    model, tok = minilm
    texts = obce.load_corpus("sst2", n=96, split="train", glue_dir=glue_dir, seed=0)
    held = obce.load_corpus("sst2", n=96, split="train", glue_dir=glue_dir, seed=1)
    hs, ns = unit_scores.unit_scores("activation_variance", model, tok, texts, max_length=48)
    h, n = units.unit_macs(20.0, 384, 32)
    hm, nm = search.search(*search.commensurate(hs, ns, h, n), 0.6, h, n)
    hsc, nsc, info = search.tune_masks(model, tok, texts, hm, nm, max_length=48)
    assert info["stopped"] is None and info["sublayers_tuned"] == 2 * 6 - 1
    assert not np.allclose(hsc, hm) and not np.allclose(nsc, nm)  # the scales moved
    assert ((hsc != 0) == hm).all() and ((nsc != 0) == nm).all()  # only kept units carry a scale
    binary = search.end_to_end_error(model, tok, held, hm.astype(float), nm.astype(float), 48, cls_only=True)
    tuned = search.end_to_end_error(model, tok, held, hsc, nsc, 48, cls_only=True)
    assert tuned < binary


def test_mask_tuning_stops_at_its_safeguards(tiny_bert, sentences, monkeypatch):
    model, tok = tiny_bert
    hm, nm = np.ones((3, 4), dtype=bool), np.ones((3, 64), dtype=bool)
    hm[:, 3], nm[:, 32:] = False, False
    monkeypatch.setattr(search, "SCALE_LIMIT", 1e-3)  # every fitted scale leaves the interval
    hsc, nsc, info = search.tune_masks(model, tok, sentences, hm, nm, max_length=16)
    assert "left [-0.001, 0.001]" in info["stopped"] and info["sublayers_tuned"] == 0
    assert np.array_equal(hsc, hm.astype(float)) and np.array_equal(nsc, nm.astype(float))
    scales, why = search._solve(np.full((2, 2), np.nan), np.ones(2))
    assert scales is None and "solver failed" in why


def _search_yaml(tmp_path, model, **over):
    cfg = {"model": str(model), "out": str(tmp_path / "out"), "tasks": ["rte"], "draws": [0],
           "scores": ["fisher", "merge_radius"], "flops": [0.6], "corpus": {"samples": 16, "max_length": 32},
           "finetune": {"epochs": 1, "max_train_samples": 32, "max_eval_samples": 24, "max_length": 32}, **over}
    path = tmp_path / "search.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("flops,needle", [([0], "flops [0]"), ([1.5], "flops [1.5]"),
                                          ([0.001], "one head and one neuron per layer")])
def test_bad_flops_constraints_exit_2_before_compute(flops, needle, tiny_dir, tmp_path, glue_dir, capsys, monkeypatch):
    monkeypatch.setenv("OBCE_GLUE_DIR", str(glue_dir))
    path = _search_yaml(tmp_path, tiny_dir, flops=flops, variants=["search"])
    assert main(["posttrain", "--config", str(path)]) == 2
    assert needle in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_search_protocol_runs_and_resumes(tiny_dir, tmp_path, glue_dir, monkeypatch, capsys):
    monkeypatch.setenv("OBCE_GLUE_DIR", str(glue_dir))
    path = _search_yaml(tmp_path, tiny_dir, flops=[0.8])  # the tiny model's heads are 60% of its MACs
    assert main(["posttrain", "--config", str(path)]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "search.jsonl").read_text().splitlines()]
    assert len(rows) == 1 + 2 * 4  # the unpruned model, 2 scores x 4 variants
    from obce.results import SEARCH_TABLE, posttrain_rows

    assert len(posttrain_rows(tmp_path / "out", SEARCH_TABLE)) == len(rows)
    for r in rows[1:]:
        assert r["flops_kept"] <= 0.8 and min(r["heads_kept"]) >= 1 and len(r["neurons_kept"]) == 3
        assert isinstance(r["degenerate"], bool)
    tuned = [r for r in rows if r["variant"] == "tuned"]
    assert all(r["tuning"] == "kwon" and r["rearranged"] and "tuning_info" in r for r in tuned)
    uniform = [r for r in rows if r["variant"] == "uniform_ffn"]
    assert all(r["heads_kept"] == [4, 4, 4] and len(set(r["neurons_kept"])) == 1 for r in uniform)
    capsys.readouterr()
    assert main(["posttrain", "--config", str(path), "--dry-run"]) == 0
    assert "9 planned cells, 9 already done" in capsys.readouterr().out
    assert main(["posttrain", "--config", str(path)]) == 0  # resumes: nothing to add
    assert len((tmp_path / "out" / "search.jsonl").read_text().splitlines()) == len(rows)


def test_prune_flops_writes_a_model_that_reloads_and_runs(tiny_clf, tmp_path, glue_dir, capsys, monkeypatch, tiny_dir):
    monkeypatch.setenv("OBCE_GLUE_DIR", str(glue_dir))
    model, tok = tiny_clf
    model.config.problem_type = None
    src = tmp_path / "finetuned"
    model.save_pretrained(src)
    tok.save_pretrained(src)
    out = tmp_path / "pruned"
    assert main(["prune", "--model", str(src), "--task", "rte", "--flops", "0.6", "--score", "fisher",
                 "--samples", "16", "--max-length", "32", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dev after reloading: accuracy=" in printed
    again = units.load(out)
    meta = json.loads((out / "obce_prune.json").read_text())
    assert units.layer_widths(again) == (meta["heads"], meta["intermediate_sizes"]) and meta["flops_fraction"] <= 0.6
    # a model without a head fine-tuned on the task is refused before any compute
    assert main(["prune", "--model", str(tiny_dir), "--task", "rte", "--flops", "0.6", "--out", str(tmp_path / "x")]) == 2
    assert "no head fine-tuned on rte" in capsys.readouterr().err
    assert main(["prune", "--model", str(src), "--flops", "0.6", "--out", str(tmp_path / "y")]) == 2
    assert "--flops needs --task" in capsys.readouterr().err


def _table(tmp_path):
    """A search table of two tasks written row by row as the protocol writes it (made-up metrics)."""
    from obce.results import SEARCH_TABLE, append_jsonl

    rng = np.random.default_rng(0)
    out = tmp_path / "table"
    out.mkdir()
    append_jsonl(out / "runs.jsonl", {"run": "r", "inputs_key": "k", "model_fingerprint": "f"})
    for task, base in (("mrpc", 0.86), ("stsb", 0.85)):
        append_jsonl(out / SEARCH_TABLE, dict(cell=f"{task}/none", task=task, seed=0, draw=-1, score="none",
                                              flops_fraction=1.0, variant="none", search="none", rearranged=False,
                                              tuning="none", heads_kept=[12] * 6, neurons_kept=[1536] * 6,
                                              metrics={}, main=base, degenerate=False, run="r", inputs_key="k"))
        for draw in range(3):
            for score, loss in (("fisher", 0.02), ("merge_radius", 0.06)):
                for variant, extra in (("tuned", 0.0), ("uniform_ffn", 0.1)):
                    main = base - loss - extra + rng.normal(0, 0.002)
                    append_jsonl(out / SEARCH_TABLE, dict(
                        cell=f"{task}/{draw}/{score}/{variant}", task=task, seed=0, draw=draw, score=score,
                        flops_fraction=0.6, variant=variant, search="kwon", rearranged=variant == "tuned",
                        tuning="kwon" if variant == "tuned" else "none", heads_kept=[6] * 6, neurons_kept=[900] * 6,
                        metrics={}, main=main, degenerate=False, run="r", inputs_key="k"))
    return out


def test_the_search_summaries_read_the_table(tmp_path):
    from obce.analysis.search import best_at, load_search, search_curves, search_facts, search_verdicts, variant_gains

    df = load_search(_table(tmp_path))
    c = search_curves(df)
    row = c[(c["task"] == "mrpc") & (c["score"] == "fisher") & (c["variant"] == "tuned")].iloc[0]
    assert row["draws"] == 3 and abs(row["retained"] - (86 - 2) / 86) < 0.01
    v = search_verdicts(df, b="fisher")
    assert set(v["verdict"]) == {"loss"} and (v["mean_diff"] < -3).all() and (v["wins"] == 0).all()
    g = variant_gains(df)
    assert np.allclose(g["tuned"], 10, atol=0.5)  # the made-up 10 points of the joint search
    b = best_at(df, 0.6)
    assert list(b["score"]) == ["fisher", "fisher"] and list(b["variant"]) == ["tuned", "tuned"]
    facts = search_facts(df, {"mrpc": 0.68, "stsb": 0.0})
    assert facts["srch_losses"] == 2 and facts["srch_wins"] == 0 and facts["srch_gain_fisher"] == pytest.approx(10, abs=0.5)
    assert facts["srch_best_reach"] == 0 and facts["srch_tasks"] == "mrpc, stsb"


def test_a_checkpoint_of_per_layer_widths_is_refused_by_load_model_naming_its_loader(tiny_clf, tmp_path):
    import obce

    model, tok = tiny_clf
    small = units.prune_units(model, [[0, 1], [0], [0, 1, 2]], [list(range(10))] * 3)
    path = units.save(small, tmp_path / "p", tok)
    with pytest.raises(ObceInputError, match=r"obce.units.load"):
        obce.load_model(path)
    assert units.layer_widths(units.load(path)) == ([2, 1, 3], [10, 10, 10])
