"""Tokenizer and tiny models round-trip offline through the Auto* classes.
Run: pytest tests/smoke/test_models.py -q"""
from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill.models import load_model, load_tokenizer
from distill.recipe.schema import ModelSpec

pytestmark = pytest.mark.smoke


def test_tokenizer_round_trips_and_keeps_digits_single(tiny_model_dir):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "Q:347+589=7+9=16;4+8+1=13;3+5+1=9;A:936"
    ids = tok(text)["input_ids"]
    assert tok.decode(ids) == text
    assert [t for t in tok.convert_ids_to_tokens(ids) if t.isdigit() and len(t) > 1] == []
    # prompt and completion tokenised apart concatenate to the whole: training equals evaluation
    assert tok("Q:347+589=")["input_ids"] + tok("7+9=16")["input_ids"] == tok("Q:347+589=7+9=16")["input_ids"]


def test_model_round_trips_with_safetensors_only(tiny_model_dir):
    files = {p.name for p in tiny_model_dir.iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt")) for f in files)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    ours = load_model(str(tiny_model_dir))
    ids = torch.tensor([[1, 2, 3, 4]])
    assert torch.equal(model(ids).logits, ours(ids).logits)
    assert (json.loads((tiny_model_dir / "config.json").read_text())["vocab_size"]
            == len(load_tokenizer(str(tiny_model_dir))))


def test_missing_local_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(str(tmp_path / "nope"))


def test_remote_code_stays_off_unless_asked():
    assert ModelSpec(model="x").trust_remote_code is False
