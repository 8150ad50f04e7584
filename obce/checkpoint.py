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
