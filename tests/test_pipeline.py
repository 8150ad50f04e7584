import json
import re

import numpy as np
import pytest
import yaml

import obce.glue
from obce.cli import main
from obce.errors import ObceInputError
from obce.experiments.config import PipelineConfig, restrict
from obce.experiments.glue_protocol import planned_runs, run_pipeline


@pytest.fixture()
def config(tiny_bert, glue_dir, tmp_path):
    model, tok = tiny_bert
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    return dict(model=str(tmp_path / "tiny"), out=str(tmp_path / "out"), glue_dir=str(glue_dir),
                tasks=["rte"], levels=[0, 2], seeds=[0], importances=["merge_radius", "random"],
                corpus=dict(samples=12, max_length=16),
                finetune=dict(epochs=1, batch_size=8, max_length=32, max_train_samples=16, max_eval_samples=16))


def test_pipeline_runs_and_resumes_after_a_kill(config, tmp_path, monkeypatch):
    cfg = PipelineConfig.from_dict(config)
    assert planned_runs(cfg) == [("rte", "none", 0, 0), ("rte", "merge_radius", 2, 0), ("rte", "random", 2, 0)]
    real = obce.glue.finetune_and_evaluate
    calls = []

    def dies_on_second(*a, **k):
        calls.append(k.get("extra_provenance", {}).get("importance"))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(obce.glue, "finetune_and_evaluate", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg, progress=False)
    records = sorted((tmp_path / "out" / "glue" / "rte").iterdir())
    assert [p.name for p in records] == ["none-L0-s0.json"]

    calls.clear()
    monkeypatch.setattr(obce.glue, "finetune_and_evaluate", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    paths = run_pipeline(cfg, progress=False)
    assert len(calls) == 2 and all(p.exists() for p in paths)
    rec = json.loads(paths[1].read_text())
    assert rec["provenance"]["importance"] == "merge_radius" and rec["provenance"]["intermediate_size"] == 32
    assert rec["provenance"]["parameters"] < rec["provenance"]["parameters_full"]
    calls.clear()
    run_pipeline(cfg, progress=False)
    assert calls == []
    # a changed fine-tuning parameter never replaces records silently: refused before any compute,
    # naming the difference, the records left as they were
    changed = PipelineConfig.from_dict({**config, "finetune": {**config["finetune"], "lr": 1e-4}})
    before = {p: p.read_bytes() for p in paths}
    with pytest.raises(ObceInputError, match=r"(?s)3 record\(s\).*finetune.lr: 5e-05 there, 0.0001 now"):
        run_pipeline(changed, progress=False)
    assert calls == [] and {p: p.read_bytes() for p in paths} == before
    # with force, it reruns what it changes, nothing else
    run_pipeline(changed, progress=False, force=True)
    assert len(calls) == 3
    calls.clear()
    changed.scoring = {**changed.scoring, "representation": "mean"}
    run_pipeline(changed, progress=False, force=True)
    assert len(calls) == 2  # the two pruned runs; the unpruned model does not depend on scoring


def test_pipeline_cli_dry_run(config, tmp_path, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["pipeline", "--config", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "3 planned runs, 0 already done" in out and "todo" in out
    other = tmp_path / "q.yaml"  # several configs: each planned in turn, all checked before any runs
    other.write_text(yaml.safe_dump({**config, "levels": [3], "importances": ["magnitude"]}))
    assert main(["pipeline", "--config", str(path), str(other), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{path}: 3 planned runs" in out and f"{other}: 1 planned runs" in out and "magnitude-L3-s0.json" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**config, "levels": [5]}))
    assert main(["pipeline", "--config", str(path), str(bad)]) == 2
    assert "levels [5]" in capsys.readouterr().err and not (tmp_path / "out" / "glue").exists()


def test_restricting_a_config_plans_a_subset_of_the_same_runs(config, tmp_path, capsys):
    from obce.experiments.config import restrict

    cfg = PipelineConfig.from_dict({**config, "seeds": [0, 1]})
    only = restrict(cfg, importances=["random", "merge_radius"], seeds=[1], tasks=None)
    assert planned_runs(only) == [("rte", "none", 0, 1), ("rte", "merge_radius", 2, 1), ("rte", "random", 2, 1)]
    assert set(planned_runs(restrict(cfg, levels=[2]))) < set(planned_runs(cfg))
    assert (only.finetune, only.corpus, only.scoring) == (cfg.finetune, cfg.corpus, cfg.scoring)
    assert cfg.seeds == [0, 1]  # the original is left alone
    with pytest.raises(ObceInputError, match=r"--tasks \['cola'\]: not in the config's tasks \['rte'\]"):
        restrict(cfg, tasks=["cola"])
    with pytest.raises(ObceInputError, match="cannot restrict 'corpus'"):
        restrict(cfg, corpus=["x"])
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["pipeline", "--config", str(path), "--dry-run", "--importances", "random", "--levels", "2"]) == 0
    out = capsys.readouterr().out
    assert "1 planned runs" in out and "random-L2-s0.json" in out and "merge_radius" not in out
    assert main(["pipeline", "--config", str(path), "--seeds", "3"]) == 2
    assert "--seeds [3]: not in the config's seeds [0]" in capsys.readouterr().err
    assert not (tmp_path / "out" / "glue").exists()


def test_bad_pipeline_configs(config, tmp_path, capsys):
    with pytest.raises(ObceInputError, match="unknown pipeline config key"):
        PipelineConfig.from_dict({**config, "epochs": 3})
    with pytest.raises(ObceInputError, match="levels \\[5\\]"):
        PipelineConfig.from_dict({**config, "levels": [5]})
    with pytest.raises(ObceInputError, match="importance 'size'"):
        PipelineConfig.from_dict({**config, "importances": ["size"]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("tasks: [rte\n")
    assert main(["pipeline", "--config", str(bad)]) == 2


def test_finetune_prune_finetune_with_taylor_scores(config, tiny_bert, tmp_path):
    cfg = PipelineConfig.from_dict({**config, "levels": [2], "importances": ["taylor", "merge_radius"],
                                    "corpus": {**config["corpus"], "score_model": "finetuned"}})
    paths = run_pipeline(cfg, progress=False)
    assert [p.name for p in paths] == ["taylor-L2-s0.json", "merge_radius-L2-s0.json"]
    finetuned = list((tmp_path / "out" / "finetuned").iterdir())
    assert len(finetuned) == 1 and (finetuned[0] / "config.json").exists()  # fine-tuned once, reused
    rec = json.loads(paths[0].read_text())
    assert rec["provenance"]["scoring"]["score_model"] == "finetuned" and rec["provenance"]["intermediate_size"] == 32
    c = tiny_bert[0].config  # parameters count the encoder only, as for prune-then-finetune (not the head)
    removed = c.num_hidden_layers * (c.intermediate_size - 32) * (2 * c.hidden_size + 1)
    assert rec["provenance"]["parameters"] == rec["provenance"]["parameters_full"] - removed
    scores = sorted((tmp_path / "out" / "scores").glob("rte-taylor-*.npz"))
    assert len(scores) == 1
    with pytest.raises(ObceInputError, match="score_model: finetuned"):
        PipelineConfig.from_dict({**config, "importances": ["taylor"]})


def test_old_records_without_score_model_still_count_as_done(config, tmp_path):
    from obce.experiments.glue_protocol import record_done, record_path

    cfg = PipelineConfig.from_dict({**config, "levels": [2], "importances": ["random"]})
    [path] = run_pipeline(cfg, progress=False)
    rec = json.loads(path.read_text())
    del rec["provenance"]["scoring"]["score_model"]
    path.write_text(json.dumps(rec))
    assert record_done(record_path(cfg.out, "rte", "random", 2, 0), cfg)


def test_random_baseline_draws_other_neurons_for_every_seed(config, tmp_path):
    """The random control is a distribution over neuron sets: seed s prunes with draw s."""
    from obce.experiments.cache import task_scores
    from obce.experiments.glue_protocol import record_done, record_path
    from obce.models import load_model

    cfg = PipelineConfig.from_dict({**config, "levels": [2], "seeds": [0, 1], "importances": ["random"]})
    model, tok = load_model(cfg.model)
    s0, s1 = (task_scores(cfg, model, tok, "rte", "random", progress=False, seed=s) for s in (0, 1))
    assert not np.array_equal(s0, s1)
    assert np.array_equal(s1, task_scores(cfg, model, tok, "rte", "random", progress=False, seed=1))  # cached
    paths = run_pipeline(cfg, progress=False)
    assert [json.loads(p.read_text())["provenance"]["scoring"]["random_seed"] for p in paths] == [0, 1]
    # records made when every seed drew with the corpus seed: seed 0's is the same draw, seed 1's is rerun
    for p in paths:
        rec = json.loads(p.read_text())
        del rec["provenance"]["scoring"]["random_seed"]
        p.write_text(json.dumps(rec))
    assert record_done(record_path(cfg.out, "rte", "random", 2, 0), cfg)
    assert not record_done(record_path(cfg.out, "rte", "random", 2, 1), cfg)


def _glue_queue():
    import importlib.util

    from tests.conftest import REPO

    spec = importlib.util.spec_from_file_location("glue_queue", REPO / "benchmarks" / "gpu" / "glue_queue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_queue_default_phases_plan_every_run_once():
    """The GPU runbook's per-task queue runs exactly the config's runs for its task, unpruned first."""
    from tests.conftest import REPO

    q = _glue_queue()
    cfg = PipelineConfig.from_yaml(REPO / "benchmarks" / "gpu" / "glue_gpu_carried.yaml")
    for task in cfg.tasks:
        queued = [run for phase in q.default_phases(cfg)
                  for run in planned_runs(restrict(cfg, tasks=[task], **q.parse_phase(phase, cfg)))]
        assert sorted(queued) == sorted(planned_runs(restrict(cfg, tasks=[task])))
        assert len(set(queued)) == len(queued)
        assert {lv for _, _, lv, _ in queued[:len(cfg.seeds)]} == {0}
        halves = [[run for phase in q.half_phases(cfg, h)
                   for run in planned_runs(restrict(cfg, tasks=[task], **q.parse_phase(phase, cfg)))] for h in (1, 2)]
        assert sorted(halves[0] + halves[1]) == sorted(queued) and not set(halves[0]) & set(halves[1])


def test_gpu_queue_phase_parsing():
    q = _glue_queue()
    cfg = PipelineConfig.from_dict({"model": "minilm", "tasks": ["rte"], "levels": [0, 1, 2, 3], "seeds": [0],
                                    "importances": ["merge_radius", "random"], "out": "x"})
    assert q.parse_phase("2,3:merge_radius,magnitude", cfg) == {"levels": [2, 3], "importances": ["merge_radius"]}
    assert q.parse_phase("0:", cfg) == {"levels": [0]}
    assert q.default_phases(cfg) == ["0:", "2:merge_radius,random,activation_variance",
                                     "3:merge_radius,random,activation_variance",
                                     "1:merge_radius,random,activation_variance"]


def test_corpus_drawn_per_run_seed(config, tmp_path):
    from obce.experiments.glue_protocol import expected_scoring
    from obce.scoring import load_scores

    cfg = PipelineConfig.from_dict({**config, "levels": [2], "seeds": [0, 1], "importances": ["merge_radius"],
                                    "corpus": {**config["corpus"], "seed": "run"}})
    paths = run_pipeline(cfg, progress=False)
    recs = [json.loads(p.read_text()) for p in paths]
    assert [r["provenance"]["scoring"]["corpus_seed"] for r in recs] == [0, 1]
    files = sorted((tmp_path / "out" / "scores").glob("rte-merge_radius-s*.npz"))
    corpora = {load_scores(f)[1]["corpus"] for f in files}
    assert len(files) == 2 and len(corpora) == 2  # one corpus draw per seed
    fixed = PipelineConfig.from_dict({**config, "levels": [2], "importances": ["merge_radius"]})
    assert "corpus_seed" not in expected_scoring(fixed, "merge_radius", 1)  # one draw for every seed
    with pytest.raises(ObceInputError, match="corpus.seed"):
        PipelineConfig.from_dict({**config, "corpus": {**config["corpus"], "seed": "each"}})


def test_pipeline_runs_other_methods_beside_scores_and_resumes_them(config, tmp_path):
    from obce.results import load_records

    config.update(importances=["random"], methods=[{"name": "layer_removal"},
                                                   {"name": "masks", "label": "masks-slow", "mask_lr": 1e-3}])
    cfg = PipelineConfig.from_dict(config)
    assert planned_runs(cfg) == [("rte", "none", 0, 0), ("rte", "random", 2, 0), ("rte", "layer_removal", 2, 0),
                                 ("rte", "masks-slow", 2, 0)]
    only = restrict(cfg, importances=["masks-slow"])
    assert planned_runs(only) == [("rte", "none", 0, 0), ("rte", "masks-slow", 2, 0)]
    run_pipeline(only, progress=False)
    paths = run_pipeline(cfg, progress=False)
    records = {r["provenance"]["importance"]: r for r in load_records(tmp_path / "out")}
    assert sorted(records) == ["layer_removal", "masks-slow", "none", "random"]
    lr, mk = records["layer_removal"]["provenance"], records["masks-slow"]["provenance"]
    assert lr["method"] == "layer_removal" and lr["method_params"] == {"general_steps": 0, "criterion": "residual_change"}
    assert lr["scoring"]["samples"] == 12 and lr["removed_layers"] and lr["config_note"] is None
    assert mk["method_params"] == {"general_steps": 0, "mask_lr": 1e-3, "head_lr": 1e-3} and mk["scoring"] is None
    assert mk["parameters"] < mk["parameters_dense"] == mk["parameters_full"]
    # a rerun finds every record done; another method parameter is another input
    stamp = {p: p.stat().st_mtime_ns for p in paths}
    run_pipeline(cfg, progress=False)
    assert {p: p.stat().st_mtime_ns for p in paths} == stamp
    config["methods"][1]["mask_lr"] = 1e-2
    with pytest.raises(ObceInputError, match="method_params"):
        run_pipeline(PipelineConfig.from_dict(config), progress=False)


def test_cli_refuses_a_bad_method_entry_with_exit_2(config, tmp_path, capsys):
    config["methods"] = [{"name": "masks", "mask_lr": "fast"}]
    bad = tmp_path / "methods.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert main(["pipeline", "--config", str(bad), "--dry-run"]) == 2
    assert "mask_lr='fast'" in capsys.readouterr().err
    config["methods"] = [{"name": "masks"}]
    bad.write_text(yaml.safe_dump(config))
    assert main(["pipeline", "--config", str(bad), "--dry-run", "--importances", "masks"]) == 0
    assert "masks-L2-s0.json" in capsys.readouterr().out


def test_ffn_pruning_as_a_method_equals_the_importance_run_and_matches_layer_removal(config, tmp_path):
    """The registered FFN pruning at a level's budget is the importance's own run (same scores from the
    one cache, same model, same metrics); matched to layer removal it reaches that method's count; the
    combination prunes by the same cached scores with its table compressed, to its own size."""
    from obce.methods import layer_removal, level_budget
    from obce.results import load_records

    config.update(importances=["merge_radius"], levels=[2], methods=[
        {"name": "ffn_pruning", "label": "rf_method"},
        {"name": "ffn_pruning", "label": "merge_radius_at_layer_removal", "match": "layer_removal"},
        {"name": "layer_removal"},
        {"name": "combined", "general_steps": 2, "size": 0.265}])  # the table is most of the tiny model
    run_pipeline(PipelineConfig.from_dict(config), progress=False)
    recs = {r["provenance"]["importance"]: r for r in load_records(tmp_path / "out" / "glue")}
    rf, method = recs["merge_radius"], recs["rf_method"]
    assert method["metrics"] == rf["metrics"] and method["provenance"]["parameters"] == rf["provenance"]["parameters"]
    assert method["provenance"]["scoring"] == rf["provenance"]["scoring"]  # the same scoring inputs, recorded
    assert len(list((tmp_path / "out" / "scores").glob("rte-merge_radius-*.npz"))) == 1  # scored once
    model = obce.load_model(config["model"])[0]
    lr, matched = recs["layer_removal"]["provenance"], recs["merge_radius_at_layer_removal"]["provenance"]
    assert matched["budget_parameters"] == layer_removal.reached(model, level_budget(model, 2)) == lr["parameters"]
    assert abs(matched["parameters"] - lr["parameters"]) <= 3 * (2 * 32 + 1) / 2  # half a neuron in every layer
    comb = recs["combined"]["provenance"]
    full = obce.count_parameters(model)
    assert comb["budget"] == "own" and comb["budget_parameters"] == round(0.265 * full)
    assert abs(comb["parameters"] - comb["budget_parameters"]) <= 3 * (2 * 32 + 1) / 2
    assert comb["embedding_table_parameters"] == 30522 * 32 // 4 + 4 and comb["general_distillation"]["steps"] == 2
    assert "distilled" in comb["training"] and comb["scoring"] == rf["provenance"]["scoring"]
    assert comb["intermediate_size"] < 64  # FFN pruning took the rest of the budget


@pytest.mark.parametrize("entry, match", [({"name": "kronecker", "embedding_factor": 7}, "divisor of the hidden size"),
                                          ({"name": "combined", "size": 0.05}, "out of reach"),
                                          ({"name": "combined", "embedding_factor": 7}, "divisor of the hidden size"),
                                          ({"name": "kronecker", "compression": 500}, "larger embedding_factor"),
                                          ({"name": "hash_table", "buckets": 40000}, "more rows"),
                                          ({"name": "eelbert", "layers": 9}, "has 3 blocks")])
def test_a_budget_a_method_cannot_reach_fails_before_any_compute(config, tmp_path, capsys, entry, match):
    config.update(importances=[], methods=[entry])
    bad = tmp_path / "unreachable.yaml"
    bad.write_text(yaml.safe_dump(config))
    assert main(["pipeline", "--config", str(bad)]) == 2
    assert re.search(match, capsys.readouterr().err)
    out = tmp_path / "out"
    assert not (out / "glue").exists() and not (out / "finetuned").exists()


def test_a_method_with_its_own_size_runs_once_per_task_and_seed(config, tmp_path, capsys):
    config.update(levels=[0, 1, 2], seeds=[0, 1], importances=["random"],
                  methods=[{"name": "kronecker", "label": "kron19", "compression": 19, "embedding_factor": 8},
                           {"name": "hash_table"}, {"name": "eelbert"}])
    runs = planned_runs(PipelineConfig.from_dict(config))
    assert [r for r in runs if r[1] == "kron19"] == [("rte", "kron19", 3, 0), ("rte", "kron19", 3, 1)]
    assert [r[2] for r in runs if r[1] == "hash_table"] == [1, 2, 1, 2]
    assert [r for r in runs if r[1] == "eelbert"] == [("rte", "eelbert", 3, 0), ("rte", "eelbert", 3, 1)]  # always its own
    good = tmp_path / "own.yaml"
    good.write_text(yaml.safe_dump(config))
    assert main(["pipeline", "--config", str(good), "--dry-run", "--levels", "2", "--seeds", "0"]) == 0
    out = capsys.readouterr().out
    assert "kron19-L3-s0.json" in out and "hash_table-L2-s0.json" in out and "eelbert-L3-s0.json" in out
    assert "L1" not in out


@pytest.mark.parametrize("methods, match", [([{"name": "pruning"}], "'pruning'"),
                                            ([{"name": "masks"}, {"name": "masks"}], "give each a `label:`"),
                                            ([{"name": "masks", "label": "random"}], r"\['random'\]"),
                                            ({"name": "masks"}, "expected a list")])
def test_bad_method_entries_are_refused(config, methods, match):
    config["methods"] = methods
    with pytest.raises(ObceInputError, match=match):
        PipelineConfig.from_dict(config)


def test_pipeline_distils_kronecker_from_its_cached_teacher(config, tmp_path):
    from obce.results import load_records

    config.update(importances=[], levels=[2], methods=[{"name": "kronecker", "hidden_weight": 0.5}])
    paths = run_pipeline(PipelineConfig.from_dict(config), progress=False)
    (rec,) = load_records(tmp_path / "out" / "glue")
    prov = rec["provenance"]
    assert paths[0].exists() and prov["method"] == "kronecker" and "distilled" in prov["training"]
    assert prov["method_params"]["hidden_weight"] == 0.5 and len(prov["ranks"]) == 3 * 6
    assert len(list((tmp_path / "out" / "finetuned").glob("rte-*"))) == 1  # the teacher, cached once


def test_prune_then_distil_is_its_own_protocol_and_resumes(config, tmp_path):
    from obce.results import finetune_protocol, load_records

    config.update(importances=["random"], levels=[2])
    plain = run_pipeline(PipelineConfig.from_dict({**config, "out": str(tmp_path / "plain")}), progress=False)
    config["finetune"] = {**config["finetune"], "distill": {"alpha": 0.7}}
    cfg = PipelineConfig.from_dict(config)
    assert cfg.finetune["distill"] == {"alpha": 0.7, "temperature": 2.0, "hidden_weight": 1.0,
                                        "attention_weight": 1.0}
    paths = run_pipeline(cfg, progress=False)
    (rec,) = load_records(tmp_path / "out" / "glue")
    (ref,) = load_records(plain[0].parent)
    assert rec["provenance"]["params"]["distill"]["alpha"] == 0.7
    assert finetune_protocol(rec) != finetune_protocol(ref)  # never pooled with plain fine-tuning
    stamp = paths[0].stat().st_mtime_ns
    run_pipeline(cfg, progress=False)
    assert paths[0].stat().st_mtime_ns == stamp
    with pytest.raises(ObceInputError, match="finetune.distill"):
        PipelineConfig.from_dict({**config, "finetune": {**config["finetune"], "distill": {"beta": 1}}})
