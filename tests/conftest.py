"""Shared fixtures: a tiny random BERT, the embedded MiniLM, the real GLUE files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]

from obce.paths import absolutize_env  # noqa: E402

absolutize_env()  # the README's OBCE_GLUE_DIR=../shared/glue means the caller's, whatever a test chdirs to
SENTENCES = [
    "the movie was a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "a gorgeous , witty , seductive movie .",
    "it 's slow -- very , very slow .",
    "the acting , costumes , music , cinematography and sound are all astounding .",
    "bad .",
    "this is a film well worth seeing , talking and singing heads and all .",
    "what really surprises about wisegirls is its low-key quality and genuine tenderness .",
    "one of the greatest family-oriented , fantasy-adventure movies ever .",
    "ultimately , it ponders the reasons we need stories so much .",
    "an often-deadly boring , strange reading of a classic whose witty dialogue is treated with a baffling casual approach",
    "it 's a cookie-cutter movie , a cut-and-paste job .",
]


def glue_dir_or_skip() -> Path:
    path = Path(os.environ.get("OBCE_GLUE_DIR") or REPO.parent / "shared" / "glue")
    if not (path / "RTE" / "dev.tsv").is_file():
        pytest.skip(f"GLUE files not found at {path} (set OBCE_GLUE_DIR)")
    return path


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    return glue_dir_or_skip()


@pytest.fixture(scope="session")
def minilm():
    import obce

    return obce.load_model("minilm")


@pytest.fixture()
def tiny_bert(minilm):
    """A 3-layer BERT with random weights (hidden 32, FFN 64) and MiniLM's tokenizer."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=128)
    model = BertModel(config).eval()
    return model, minilm[1]


@pytest.fixture()
def sentences() -> list[str]:
    return list(SENTENCES)


@pytest.fixture()
def tiny_dir(tiny_bert, tmp_path):
    """The tiny BERT saved as a checkpoint directory (with MiniLM's tokenizer)."""
    model, tok = tiny_bert
    path = tmp_path / "tiny"
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
