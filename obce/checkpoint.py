"""What the loaders of the methods' checkpoints share: the obce file beside ``save_pretrained``'s, and
weights that must fit the rebuilt architecture exactly."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from .errors import ObceInputError


def read_meta(path: Path, filename: str, writer: str) -> tuple[dict[str, Any], Any]:
    """The JSON ``filename`` that ``writer`` (e.g. ``"kronecker.save"``) wrote into ``path``, and the
    checkpoint's ``transformers`` config."""
    import transformers

    if not (path / filename).is_file():
        raise ObceInputError(f"{path}: no {filename}; not a checkpoint written by {writer}")
    return json.loads((path / filename).read_text()), transformers.AutoConfig.from_pretrained(path)


def load_weights(model: nn.Module, path: Path) -> nn.Module:
    """``model`` (in eval mode) with the weights of ``path/model.safetensors``, which must name exactly
    its parameters (``position_ids`` buffers aside)."""
    from safetensors.torch import load_file

    missing, unexpected = model.load_state_dict(load_file(str(path / "model.safetensors")), strict=False)
    if unexpected or [k for k in missing if "position_ids" not in k]:
        raise ObceInputError(f"{path}: weights do not match the architecture (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    return model.eval()


def save_with_embedding(model: nn.Module, path: Path, tokenizer, filename: str, meta: dict[str, Any]) -> Path:
    """Write a model whose word embedding a plain config cannot express: its config, the tokenizer
    (the embedding is rebuilt from its vocabulary), the weights and ``filename`` holding ``meta`` and
    the model class."""
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(path)
    tokenizer.save_pretrained(path)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path / "model.safetensors"))
    (path / filename).write_text(json.dumps({**meta, "model_class": type(model).__name__}))
    return path


def load_with_embedding(path: Path, filename: str, writer: str, make_embedding) -> nn.Module:
    """Load a model written by :func:`save_with_embedding`: rebuild its class from the config, its word
    embedding by ``make_embedding(vocabulary, config, meta)`` (``vocabulary`` the tokenizer's token of
    every id), then its weights (:func:`load_weights`)."""
    import transformers

    path = Path(path)
    meta, config = read_meta(path, filename, writer)
    model = getattr(transformers, meta["model_class"])(config)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    vocab = tokenizer.convert_ids_to_tokens(list(range(config.vocab_size)))
    model.base_model.embeddings.word_embeddings = make_embedding(vocab, config, meta)
    return load_weights(model, path)
