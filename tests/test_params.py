"""The configs under params/: one file per protocol, composed with `extends` and `grids`, each on the
manifest with its results directory, and the old flat paths still resolving."""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

import pytest
import yaml

from obce.errors import ObceInputError
from obce.experiments import search_protocol
from obce.experiments.config import (PipelineConfig, PostTrainConfig, SearchConfig, find_config, load_yaml, posttrain_config,
                                     read_manifest)
from obce.experiments.glue_protocol import planned_runs
from obce.experiments.posttrain import cells
from tests.conftest import REPO

MANIFEST = read_manifest(REPO)
KINDS = {"pipeline": PipelineConfig, "posttrain": PostTrainConfig, "search": SearchConfig}
CONFIGS = sorted((REPO / "params" / "protocols").rglob("*.yaml"))


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_every_protocol_of_the_manifest_loads_plans_and_writes_where_the_manifest_says(name):
    entry = MANIFEST[name]
    cfg = KINDS[entry["kind"]].from_yaml(REPO / entry["config"])
    assert cfg.out == entry["results"], f"{entry['config']}: out {cfg.out!r}, the manifest says {entry['results']!r}"
    assert (REPO / "notebooks" / f"{entry['chapter']}.py").is_file()
    planned = {"pipeline": planned_runs, "posttrain": cells, "search": search_protocol.cells}[entry["kind"]](cfg)
    planned = list(planned)
    if entry["kind"] != "pipeline":  # what `obce posttrain` reads the file as
        assert isinstance(posttrain_config(REPO / entry["config"]), KINDS[entry["kind"]])
    assert planned and entry["group"] in ("scores", "methods", "retraining-free", "ablations")


def test_every_config_is_a_protocol_of_the_manifest_or_a_base():
    listed = {REPO / e["config"] for e in MANIFEST.values()}
    for path in CONFIGS:
        assert path in listed or path.name == "base.yaml", f"{path.relative_to(REPO)} is not in params/protocols.yaml"
    outs = [e["results"] for e in MANIFEST.values()]
    assert len(outs) == len(set(outs)), "two protocols write into one results directory"


def test_no_two_configs_differ_only_in_tasks_or_levels():
    grid_free = {}
    for path in CONFIGS:
        values = load_yaml(path)
        grid_free[path] = {k: v for k, v in values.items() if k not in ("tasks", "levels", "grids", "note")}
    for a, b in itertools.combinations(CONFIGS, 2):
        if grid_free[a] == grid_free[b] and a.name != "base.yaml" and b.name != "base.yaml":
            pytest.fail(f"{a.relative_to(REPO)} and {b.relative_to(REPO)} differ only in tasks or levels: "
                        "make them one config with grids:")


def test_the_old_flat_paths_resolve_to_their_protocol(monkeypatch, caplog):
    monkeypatch.chdir(REPO)
    caplog.set_level(logging.INFO, logger="obce")
    for entry in MANIFEST.values():
        for old in entry["replaces"]:
            assert not (REPO / old).exists()
            assert find_config(old).resolve() == (REPO / entry["config"]).resolve()
    assert "params/glue_cpu_fulltrain.yaml is now params/protocols/cpu_fulltrain/glue.yaml" in caplog.text
    assert find_config("params/never_was.yaml") == Path("params/never_was.yaml")


@pytest.mark.parametrize("path", sorted((REPO / "benchmarks" / "gpu").glob("*.yaml")), ids=lambda p: p.stem)
def test_the_gpu_runbook_configs_are_the_gpu_protocol_on_the_carried_model(path):
    cfg = PipelineConfig.from_yaml(path)
    base = PipelineConfig.from_yaml(REPO / "params" / "protocols" / "gpu" / ("sst2.yaml" if "sst2" in path.stem
                                                                          else "glue.yaml"))
    assert cfg.model == ".carry/minilm-fp16" and planned_runs(cfg) == planned_runs(base)
    assert (cfg.finetune, cfg.scoring, cfg.corpus, cfg.out) == (base.finetune, base.scoring, base.corpus, base.out)


def test_extends_merges_mappings_and_replaces_lists(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"out": str(tmp_path / "o"), "tasks": ["rte", "mrpc"],
                                                        "finetune": {"epochs": 1, "max_length": 32}}))
    (tmp_path / "child.yaml").write_text("extends: base.yaml\ntasks: [cola]\nfinetune: {lr: 1.0e-4}\n")
    cfg = PipelineConfig.from_yaml(tmp_path / "child.yaml")
    assert cfg.tasks == ["cola"]
    assert (cfg.finetune["epochs"], cfg.finetune["max_length"], cfg.finetune["lr"]) == (1, 32, 1e-4)


def test_extends_refuses_a_loop_and_names_a_missing_base(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: b.yaml\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\n")
    with pytest.raises(ObceInputError, match="extends itself"):
        PipelineConfig.from_yaml(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("extends: nowhere.yaml\n")
    with pytest.raises(ObceInputError, match="nowhere.yaml"):
        PipelineConfig.from_yaml(tmp_path / "c.yaml")
    (tmp_path / "d.yaml").write_text("extends: 3\n")
    with pytest.raises(ObceInputError, match="extends: 3"):
        PipelineConfig.from_yaml(tmp_path / "d.yaml")


def test_grids_plan_the_union_of_their_runs_once(tmp_path):
    cfg = PipelineConfig.from_dict({"out": str(tmp_path), "seeds": [0], "importances": ["merge_radius"],
                                    "grids": [{"tasks": ["stsb"], "levels": [0, 2]},
                                              {"tasks": ["cola", "stsb"], "levels": [2, 3]}]})
    assert planned_runs(cfg) == [("stsb", "none", 0, 0), ("stsb", "merge_radius", 2, 0),
                                 ("cola", "merge_radius", 2, 0), ("cola", "merge_radius", 3, 0),
                                 ("stsb", "merge_radius", 3, 0)]
    with pytest.raises(ObceInputError, match=r"grids\[0\]: unknown key\(s\) \['corpus'\]"):
        PipelineConfig.from_dict({"out": str(tmp_path), "grids": [{"corpus": {}}]})
    with pytest.raises(ObceInputError, match="levels \\[7\\]"):
        PipelineConfig.from_dict({"out": str(tmp_path), "grids": [{"levels": [7]}]})


def test_a_posttrain_grid_adds_cells_to_the_same_table(tmp_path):
    base = {"out": str(tmp_path), "tasks": ["mrpc"], "draws": [0], "importances": ["random"]}
    one = PostTrainConfig.from_dict(base)
    two = PostTrainConfig.from_dict({**base, "grids": [{}, {"keep_fractions": [0.9], "compensations": ["none"]}]})
    assert one.inputs_key() == two.inputs_key()
    assert set(cells(one)) < set(cells(two)) and len(list(cells(two))) == len(list(cells(one))) + 1
