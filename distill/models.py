"""Tokenizers and causal LMs: trained or initialised locally, or loaded from a path or a hub id.

Everything saved here reloads with ``AutoTokenizer`` / ``AutoModelForCausalLM.from_pretrained(path)``
under ``HF_HUB_OFFLINE=1``. Weights load from safetensors only; remote code stays off unless the
recipe turns it on.
"""
from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
)

from distill.artifacts import atomic_dir
from distill.recipe.schema import Arch, ModelSpec

EOS, PAD = "<|endoftext|>", "<|pad|>"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def train_tokenizer(lines: list[str], vocab_size: int = 128) -> PreTrainedTokenizerFast:
    """A byte-level BPE whose digits are always single tokens (numbers stay legible to a tiny model)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD, padding_side="left",
        model_max_length=1024,
    )


def init_llama(arch: Arch, tokenizer, seed: int = 0) -> LlamaForCausalLM:
    """A Llama-style model initialised from config; sized from ``len(tokenizer)``, not the asked vocab."""
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size or 4 * arch.hidden_size,
        num_hidden_layers=arch.num_layers,
        num_attention_heads=arch.num_heads,
        num_key_value_heads=arch.num_heads,
        max_position_embeddings=arch.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def save_pretrained(model: PreTrainedModel, tokenizer, path: str | Path) -> Path:
    """Write model (safetensors) and tokenizer to a temp folder, then rename: never half a checkpoint."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return Path(path)


def _check_local(name: str) -> None:
    """A name that looks like a path but is not there is a mistake, not a hub id to try."""
    looks_local = name.startswith((".", "/", "~")) or name.count("/") > 1
    if looks_local and not Path(name).expanduser().exists():
        raise FileNotFoundError(f"model path {name!r} does not exist")


def load_tokenizer(spec: ModelSpec | str):
    spec = ModelSpec(model=spec) if isinstance(spec, str) else spec
    _check_local(spec.model)
    tok = AutoTokenizer.from_pretrained(
        spec.model, revision=spec.revision, trust_remote_code=spec.trust_remote_code
    )
    if tok.pad_token is None:  # many hub tokenizers ship without one; batching needs it
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    return tok


def load_kwargs(spec: ModelSpec) -> dict:
    """``from_pretrained`` keyword arguments for a spec: every load site passes all of them."""
    kwargs = {"revision": spec.revision, "trust_remote_code": spec.trust_remote_code,
              "dtype": _DTYPES[spec.dtype]}
    if spec.attn_implementation:
        kwargs["attn_implementation"] = spec.attn_implementation
    return kwargs


def load_model(spec: ModelSpec | str, device: str | torch.device = "cpu", **extra) -> PreTrainedModel:
    """The model of ``spec`` on ``device``; ``extra`` goes to ``from_pretrained`` (e.g. ``device_map``,
    in which case the model stays where that put it)."""
    spec = ModelSpec(model=spec) if isinstance(spec, str) else spec
    _check_local(spec.model)
    model = AutoModelForCausalLM.from_pretrained(spec.model, use_safetensors=True, **load_kwargs(spec),
                                                 **extra)
    return (model if "device_map" in extra else model.to(device)).eval()
