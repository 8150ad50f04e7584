import json
import math

import pytest

import obce
from obce.errors import ObceInputError
from obce.glue import compute_metrics


def test_metrics_agree_with_hand_computed_values():
    y = [1, 1, 0, 0, 1, 0]
    p = [1, 0, 0, 1, 1, 0]
    # tp=2 fp=1 fn=1 tn=2
    assert compute_metrics("rte", p, y) == {"accuracy": pytest.approx(4 / 6)}
    m = compute_metrics("mrpc", p, y)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 1)) and m["accuracy"] == pytest.approx(4 / 6)
    mcc = (2 * 2 - 1 * 1) / math.sqrt(3 * 3 * 3 * 3)
    assert compute_metrics("cola", p, y)["matthews_correlation"] == pytest.approx(mcc)
    s = compute_metrics("stsb", [1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0])
    # pearson of (1,2,3,4) and (1,3,2,4): cov 1.0/..., both variances 1.25 -> 1.0/1.25
    assert s["pearson"] == pytest.approx(0.8) and s["spearman"] == pytest.approx(0.8)
    # constant predictions: a correlation is undefined, recorded as None (never as a number)
    assert compute_metrics("stsb", [2.0, 2.0, 2.0], [1.0, 2.0, 3.0])["pearson"] is None
    with pytest.raises(ObceInputError, match="equal 1-D"):
        compute_metrics("rte", [1, 0], [1])


@pytest.mark.parametrize("task,metric,low", [("rte", "accuracy", 0.0), ("stsb", "pearson", -1.0)])
def test_short_finetune_of_minilm_runs_end_to_end(glue_dir, task, metric, low, tmp_path):
    res = obce.finetune_and_evaluate("minilm", task, glue_dir=glue_dir, epochs=1, lr=5e-5, batch_size=16,
                                     max_length=64, max_train_samples=96, max_eval_samples=48, seed=0,
                                     progress=False)
    assert set(res.metrics) == set(obce.get_task(task).metrics)
    assert low <= res.metrics[metric] <= 1.0
    prov = res.provenance
    for key in ("model", "data", "params", "seed", "device", "versions", "git_commit", "wall_time_s",
                "train_size", "eval_size"):
        assert key in prov
    assert prov["train_size"] == 96 and prov["eval_size"] == {"validation": 48}
    assert prov["versions"]["torch"] and prov["device"].startswith("cpu")
    path = res.save(tmp_path / "r.json")
    assert json.loads(path.read_text())["metrics"] == res.metrics
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_finetuning_is_deterministic_for_a_seed(glue_dir, tiny_bert):
    model, tok = tiny_bert
    kw = dict(glue_dir=glue_dir, tokenizer=tok, epochs=1, batch_size=8, max_length=32,
              max_train_samples=32, max_eval_samples=32, progress=False)
    a = obce.finetune_and_evaluate(model, "mrpc", seed=1, **kw)
    b = obce.finetune_and_evaluate(model, "mrpc", seed=1, **kw)
    assert a.metrics == b.metrics
    assert a.provenance["train_loss"] == b.provenance["train_loss"]
    assert "intermediate_size=64" in a.provenance["model"]


def test_bad_hyper_parameters(glue_dir):
    with pytest.raises(ObceInputError, match="epochs"):
        obce.finetune_and_evaluate("minilm", "rte", glue_dir=glue_dir, epochs=0)
    with pytest.raises(ObceInputError, match="unknown GLUE task"):
        obce.finetune_and_evaluate("minilm", "squad", glue_dir=glue_dir)


def test_precision_default_is_the_hardware_s_and_autocast_is_used(tiny_bert):
    """No precision given: bf16 where the CPU computes it natively, recorded; bf16 really changes the
    arithmetic (another training loss than fp32), and fp32 stays reachable by name."""
    import torch

    from obce.data import SAMPLE_DIR
    from obce.glue import default_precision

    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert default_precision("cpu") == ("bf16" if native else "fp32")
    model, tok = tiny_bert
    kw = dict(glue_dir=SAMPLE_DIR, tokenizer=tok, epochs=1, batch_size=8, max_length=32, max_train_samples=32,
              max_eval_samples=32, progress=False, device="cpu", seed=0)
    auto = obce.finetune_and_evaluate(model, "rte", **kw)
    fp32 = obce.finetune_and_evaluate(model, "rte", precision="fp32", **kw)
    assert auto.provenance["precision"] == default_precision("cpu") and fp32.provenance["precision"] == "fp32"
    assert fp32.provenance["params"]["bf16"] is False
    if native:
        assert auto.provenance["train_loss"] != fp32.provenance["train_loss"]


def test_protocols_keep_the_precision_their_records_were_made_with():
    import torch

    from obce.glue import protocol_finetune

    same = "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "fp32"
    assert protocol_finetune({"max_length": 64}) == {"max_length": 64, "precision": same}
    assert protocol_finetune({"max_length": 64, "precision": "bf16"})["precision"] == "bf16"
    assert protocol_finetune({"bf16": True}) == {"bf16": True}
