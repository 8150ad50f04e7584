"""Words in messages and records, shared by every layer (a stage's record and the book's prose
list things the same way)."""
from __future__ import annotations

from typing import Sequence

__all__ = ["join_words"]


def join_words(words: Sequence[str]) -> str:
    """Words in prose: ``a``, ``a and b``, ``a, b and c`` (empty for none)."""
    words = list(words)
    return ", ".join(words[:-1]) + " and " + words[-1] if len(words) > 1 else "".join(words)
