"""The Ray executor (issue #37): a real local Ray on a tiny grid gives the sequential run's records,
survives a killed driver, joins a head started by `ray start`, and refuses bad input before any compute."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from obce.cli import main
from obce.experiments.config import PipelineConfig
from obce.experiments.executor import RaySettings
from obce.experiments.glue_protocol import planned_runs, record_path, run_pipeline
from obce.results import load_records

pytest.importorskip("ray")

#: Provenance that differs between two runs of the same cell by design: when and where it ran (the
#: device names the threads a process was given).
VOLATILE = {"created", "wall_time_s", "host", "device", "git_commit", "git_commit_at_save", "versions"}


@pytest.fixture()
def grid(tiny_dir, glue_dir, tmp_path):
    """2 tasks x 2 scores at level 2, and the unpruned model: 6 cells, 64 training texts each."""
    return dict(model=str(tiny_dir), out=str(tmp_path / "seq"), glue_dir=str(glue_dir),
                tasks=["rte", "mrpc"], levels=[0, 2], seeds=[0], importances=["merge_radius", "random"],
                corpus=dict(samples=12, max_length=16),
                finetune=dict(epochs=1, batch_size=16, max_length=32, max_train_samples=64, max_eval_samples=32))


def _by_run(out: str | Path) -> dict:
    recs = load_records(Path(out) / "glue")
    return {(r["task"], r["provenance"]["importance"], r["provenance"]["level"]): r for r in recs}


def _same_apart_from_time_and_host(a: dict, b: dict) -> None:
    assert a["metrics"] == b["metrics"]
    pa = {k: v for k, v in a["provenance"].items() if k not in VOLATILE}
    pb = {k: v for k, v in b["provenance"].items() if k not in VOLATILE}
    assert pa == pb


def test_a_local_ray_gives_the_sequential_records(grid, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray cell runs (--cpus-per-cell 1)
    try:
        run_pipeline(PipelineConfig.from_dict(grid), progress=False)
    finally:
        torch.set_num_threads(threads)
    ray_cfg = PipelineConfig.from_dict({**grid, "out": str(tmp_path / "ray")})
    paths = run_pipeline(ray_cfg, progress=False, executor="ray", ray=RaySettings(num_cpus=2, cpus_per_cell=1))
    assert all(p.exists() for p in paths) and len(paths) == 6
    seq, ray = _by_run(grid["out"]), _by_run(tmp_path / "ray")
    assert sorted(seq) == sorted(ray) and len(ray) == 6
    for key in seq:
        _same_apart_from_time_and_host(seq[key], ray[key])
    # the scores were computed once per (task, score), upstream of the cells
    assert len(list((tmp_path / "ray" / "scores").glob("*.npz"))) == 4
    stamp = {p: p.stat().st_mtime_ns for p in paths}
    run_pipeline(ray_cfg, progress=False, executor="ray", ray=RaySettings(num_cpus=2))  # nothing left to do
    assert {p: p.stat().st_mtime_ns for p in paths} == stamp


def _obce(*args: str) -> list[str]:
    return [sys.executable, "-m", "obce.cli", *args]


def test_a_killed_driver_loses_only_the_cells_in_flight_and_the_same_command_completes(grid, tmp_path):
    grid.update(out=str(tmp_path / "killed"), seeds=[0, 1])
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(grid))
    cmd = _obce("-q", "pipeline", "--config", str(config), "--executor", "ray", "--num-cpus", "2")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    glue = tmp_path / "killed" / "glue"
    deadline = time.time() + 240
    while time.time() < deadline and len(list(glue.glob("*/*.json"))) < 2 and driver.poll() is None:
        time.sleep(0.5)
    assert driver.poll() is None, driver.stderr.read().decode()[-2000:]  # still running: some cells left
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(2)  # Ray's own processes go with their driver
    before = {p: p.stat().st_mtime_ns for p in glue.glob("*/*.json")}
    assert 2 <= len(before) < 12
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    cfg = PipelineConfig.from_dict(grid)
    expected = {record_path(cfg.out, *r) for r in planned_runs(cfg)}
    assert set(glue.glob("*/*.json")) == expected and len(expected) == 12  # none lost, none twice
    assert not list(glue.glob("*/*.bad*"))
    assert {p: p.stat().st_mtime_ns for p in before} == before  # finished records were kept, not redone
    for rec in load_records(glue):
        assert rec["metrics"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_head_started_by_ray_start_on_the_loopback_address_runs_the_grid(grid, tmp_path):
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    # on the loopback address only: Ray keeps 127.0.0.1 with this variable set for the head and the driver
    # (and without token authentication, which Ray turns on for a head started where a token exists)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_AUTH_MODE": "disabled"}
    start = subprocess.run([str(ray_bin), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                            "--num-cpus", "2", "--include-dashboard", "False", "--disable-usage-stats"],
                           env=env, capture_output=True, text=True, timeout=120)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        grid.update(out=str(tmp_path / "cluster"), tasks=["rte"])
        config = tmp_path / "grid.yaml"
        config.write_text(yaml.safe_dump(grid))
        # a process of its own: Ray reads the variable when it is imported
        done = subprocess.run(_obce("-q", "pipeline", "--config", str(config), "--executor", "ray", "--address",
                                    f"127.0.0.1:{port}"), env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        assert len(_by_run(tmp_path / "cluster")) == 3
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.mark.parametrize("extra, needle", [
    (["--executor", "ray", "--address", "127.0.0.1:1"], "no Ray head answers"),
    (["--executor", "ray", "--cpus-per-cell", "0"], "--cpus-per-cell 0"),
    (["--executor", "ray", "--address", "nowhere"], "expected host:port"),
    (["--executor", "ray", "--num-cpus", "2", "--gpus-per-cell", "0.5"], "has 0 GPUs"),
    (["--cpus-per-cell", "2"], "add --executor ray"),
])
def test_bad_executor_input_exits_2_before_any_compute(grid, tmp_path, capsys, extra, needle):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(grid))
    assert main(["pipeline", "--config", str(config), *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not (Path(grid["out"]) / "glue").exists() and not (Path(grid["out"]) / "scores").exists()


def test_without_ray_installed_the_ray_executor_says_how_to_install_it(grid, tmp_path, capsys, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(grid))
    assert main(["pipeline", "--config", str(config), "--executor", "ray"]) == 2
    assert 'pip install "obce[ray]"' in capsys.readouterr().err
    assert main(["pipeline", "--config", str(config), "--dry-run"]) == 0  # the sequential path needs no Ray


def test_posttrain_on_ray_gives_the_sequential_rows(tiny_dir, glue_dir, tmp_path):
    from obce.experiments.config import PostTrainConfig
    from obce.experiments.posttrain import run_posttrain
    from obce.results import POSTTRAIN_TABLE, read_jsonl

    cfg = dict(model=str(tiny_dir), glue_dir=str(glue_dir), tasks=["rte"], seeds=[0], draws=[0, 1],
               importances=["merge_radius", "random"], keep_fractions=[0.5], compensations=["none", "bias"],
               corpus=dict(samples=12, max_length=16),
               finetune=dict(epochs=1, batch_size=16, max_length=32, max_train_samples=32, max_eval_samples=32))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seq = run_posttrain(PostTrainConfig.from_dict({**cfg, "out": str(tmp_path / "seq")}), progress=False)
    finally:
        torch.set_num_threads(threads)
    ray = run_posttrain(PostTrainConfig.from_dict({**cfg, "out": str(tmp_path / "ray")}), progress=False,
                        executor="ray", ray=RaySettings(num_cpus=2))
    drop = {"run", "eval_s", "score_s"}

    def rows(path):
        return sorted((json.dumps({k: v for k, v in r.items() if k not in drop}, sort_keys=True)
                       for r in read_jsonl(path)))

    assert rows(seq) == rows(ray) and len(rows(ray)) == 1 + 2 * 2 * 2
    assert ray.name == POSTTRAIN_TABLE
