"""The version of obce (keep it equal to ``version`` in pyproject.toml)."""
__version__ = "0.1.0"
