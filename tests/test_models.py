import time

import pytest
import torch

import obce
from obce.errors import MissingResourceError, ObceInputError


def test_embedded_minilm_is_a_pretrained_bert(minilm):
    model, tokenizer = minilm
    assert type(model).__name__ == "BertModel"
    assert obce.count_parameters(model) == 22_713_216
    assert [inter.out_features for inter, _ in obce.ffn_layers(model)] == [1536] * 6
    # pretrained, not random: the word embeddings of two related words are closer than of unrelated
    emb = model.get_input_embeddings().weight
    ids = tokenizer.convert_tokens_to_ids(["good", "great", "the"])
    cos = torch.nn.functional.cosine_similarity
    assert cos(emb[ids[0]], emb[ids[1]], dim=0) > cos(emb[ids[0]], emb[ids[2]], dim=0)


def test_unknown_hub_id_fails_fast_and_says_how_to_supply_it():
    start = time.perf_counter()
    with pytest.raises(MissingResourceError) as err:
        obce.load_model("no-such-org/no-such-bert-model")
    assert time.perf_counter() - start < 10
    msg = str(err.value)
    assert "no-such-org/no-such-bert-model" in msg and "--local-dir" in msg and "minilm" in msg


def test_missing_local_directory_is_named(tmp_path):
    with pytest.raises(ObceInputError, match="does not exist"):
        obce.load_model(str(tmp_path / "nope") + "/")


def test_directory_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ObceInputError, match="no config.json"):
        obce.load_model(tmp_path)


def test_non_bert_architecture_is_rejected(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=16, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ObceInputError, match="not a BERT-family|model_type='gpt2'"):
        obce.load_model(tmp_path)


def test_bert_base_architecture_without_weights():
    model = obce.build_architecture("bert-base-uncased")
    assert obce.count_parameters(model) == 109_482_240
    assert next(model.parameters()).device.type == "meta"


def test_unreachable_hub_fails_fast_without_the_offline_flag(monkeypatch):
    """No HF_HUB_OFFLINE and no network: a reachability probe, not minutes of retries."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("OBCE_GLUE_DIR", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")  # never resolves (RFC 2606)
    from obce.models import hub_reachable

    assert not hub_reachable()
    start = time.perf_counter()
    with pytest.raises(MissingResourceError, match="hub unreachable"):
        obce.load_model("some-org/some-bert")
    with pytest.raises(MissingResourceError, match="unreachable"):  # a task the embedded sample lacks
        obce.load_glue("mnli", "validation")
    assert time.perf_counter() - start < 15


def test_a_float16_copy_is_loaded_in_float32(minilm, tmp_path):
    model, tok = minilm
    import copy

    copy.deepcopy(model).half().save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loaded, _ = obce.load_model(tmp_path)
    assert next(loaded.parameters()).dtype == torch.float32
    diff = max((a - b).abs().max().item() for a, b in zip(loaded.parameters(), model.parameters()))
    assert 0 < diff < 1e-2  # the float16 rounding, nothing else


def test_stored_dtype_reads_the_config_without_the_deprecated_alias(caplog):
    from transformers import BertConfig
    from transformers.utils import logging as hf_logging

    from obce.models import stored_dtype

    hf_logging.enable_propagation()
    try:
        with caplog.at_level("WARNING"):
            assert stored_dtype(BertConfig(dtype="float16")) == "float16"
            assert stored_dtype(BertConfig()) is None
    finally:
        hf_logging.disable_propagation()
    assert "deprecated" not in caplog.text
