import logging
import os

import numpy as np
import pytest

import obce
import obce.scoring as scoring
from obce.files import atomic_path, load_arrays, save_arrays, write_json


def _score(model, tok, texts, cache_dir=None, **kw):
    return obce.score_neurons(model, tok, texts, max_length=16, cache_dir=cache_dir, progress=False, **kw)


def test_same_inputs_give_bitwise_identical_scores(tiny_bert, sentences):
    model, tok = tiny_bert
    a, b = _score(model, tok, sentences), _score(model, tok, sentences)
    assert a.tobytes() == b.tobytes()


class _Counter:
    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, *a, **k):
        self.calls += 1
        return self.fn(*a, **k)


def test_cache_is_reused_and_any_summary_reads_the_deaths(tiny_bert, sentences, tmp_path, monkeypatch):
    model, tok = tiny_bert
    first = _score(model, tok, sentences, tmp_path)
    counter = _Counter(scoring.h0_deaths)
    monkeypatch.setattr(scoring, "h0_deaths", counter)
    assert _score(model, tok, sentences, tmp_path).tobytes() == first.tobytes()
    total = _score(model, tok, sentences, tmp_path, importance="total_persistence")
    assert counter.calls == 0
    assert np.all(total >= first)
    _score(model, tok, sentences, tmp_path, recompute=True)
    assert counter.calls == 3


def test_changed_inputs_miss_the_cache(tiny_bert, sentences, tmp_path, monkeypatch):
    model, tok = tiny_bert
    _score(model, tok, sentences, tmp_path)
    counter = _Counter(scoring.h0_deaths)
    monkeypatch.setattr(scoring, "h0_deaths", counter)
    _score(model, tok, sentences[:-1], tmp_path)  # another corpus
    _score(model, tok, sentences, tmp_path, representation="mean")
    import torch
    with torch.no_grad():
        model.encoder.layer[0].intermediate.dense.bias += 0.1  # other weights
    _score(model, tok, sentences, tmp_path)
    assert counter.calls == 9


def test_interrupted_scoring_resumes_missing_layers_only(tiny_bert, sentences, tmp_path, monkeypatch):
    model, tok = tiny_bert
    full = _score(model, tok, sentences, tmp_path)
    files = sorted(tmp_path.glob("h0_deaths-*-layer*.npz"))
    assert len(files) == 3
    files[1].unlink()  # as if killed while layer 1 was being computed
    counter = _Counter(scoring.h0_deaths)
    monkeypatch.setattr(scoring, "h0_deaths", counter)
    assert _score(model, tok, sentences, tmp_path).tobytes() == full.tobytes()
    assert counter.calls == 1 and files[1].exists()


def test_corrupt_cache_file_is_detected_recomputed_and_reported(tiny_bert, sentences, tmp_path, caplog):
    model, tok = tiny_bert
    full = _score(model, tok, sentences, tmp_path)
    victim = sorted(tmp_path.glob("*.npz"))[2]
    victim.write_bytes(victim.read_bytes()[:100])  # truncated
    with caplog.at_level(logging.WARNING, logger="obce.scoring"):
        again = _score(model, tok, sentences, tmp_path)
    assert again.tobytes() == full.tobytes()
    assert any("corrupt cache file" in r.message and victim.name in r.message for r in caplog.records)
    load_arrays(victim)  # repaired


def test_atomic_write_leaves_old_file_or_none(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"a": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert target.read_text().strip().startswith('{\n  "a": 1')
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]
    umask = os.umask(0o022)
    try:  # the same permissions as a plain open() would give, not mkstemp's owner-only ones
        write_json(target, {"a": 3})
        assert target.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(umask)
    save_arrays(tmp_path / "x.npz", {"k": 1}, values=np.arange(3))
    meta, arrays = load_arrays(tmp_path / "x.npz")
    assert meta == {"k": 1} and arrays["values"].tolist() == [0, 1, 2]


def test_atomic_directory_replaces_whole_or_not_at_all(tmp_path):
    from obce.files import atomic_dir

    target = tmp_path / "model"
    with atomic_dir(target) as tmp:
        (tmp / "a.txt").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "a.txt").write_text("2, half")
            raise KeyboardInterrupt
    assert (target / "a.txt").read_text() == "1"
    umask = os.umask(0o022)
    try:  # the same permissions as a plain mkdir() would give, not mkdtemp's owner-only ones
        with atomic_dir(target) as tmp:
            (tmp / "b.txt").write_text("new")
    finally:
        os.umask(umask)
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert target.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_provenance_names_the_commit_of_the_running_code(monkeypatch):
    """A long run whose checkout moves on records the commit it was started from, and the new one."""
    import obce.results as results

    monkeypatch.setattr(results, "git_commit", lambda path=None: results.LOADED_COMMIT)
    assert "git_commit_at_save" not in results.provenance(params={})
    monkeypatch.setattr(results, "git_commit", lambda path=None: "0123abcd-dirty")
    prov = results.provenance(params={})
    assert prov["git_commit"] == results.LOADED_COMMIT and prov["git_commit_at_save"] == "0123abcd-dirty"
