"""Shared fixtures. Tests never touch the network: hub and datasets are forced offline, and every
cache (HF, W&B, torch extensions are kept) points into a temp folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="session")
def _isolated_caches(tmp_path_factory):
    home = tmp_path_factory.mktemp("hf_home")
    os.environ["HF_HOME"] = str(home)
    os.environ["HF_DATASETS_CACHE"] = str(home / "datasets")
    os.environ["WANDB_DIR"] = str(tmp_path_factory.mktemp("wandb"))
    yield


@pytest.fixture(scope="session")
def world():
    from distill.recipe.schema import ArithmeticWorld

    return ArithmeticWorld(human_pool=200, test_size=100)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, world) -> Path:
    """A tokenizer trained on the world plus a randomly initialised 2-layer Llama, saved as HF files."""
    from distill.models import init_llama, save_pretrained, train_tokenizer
    from distill.recipe.schema import Arch
    from distill.world.arithmetic import tokenizer_corpus

    tok = train_tokenizer(tokenizer_corpus(world, 500))
    model = init_llama(Arch(hidden_size=64, num_layers=2, num_heads=2), tok, seed=0)
    return save_pretrained(model, tok, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def teacher_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model with weights scaled up: a random init at 0.02 repeats one token forever, which
    would make every equality between backends trivial; scaled, its outputs differ from prompt to prompt."""
    import torch

    from distill.models import load_model, load_tokenizer, save_pretrained

    model = load_model(str(tiny_model_dir))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.mul_(6.0)
    return save_pretrained(model, load_tokenizer(str(tiny_model_dir)),
                           tmp_path_factory.mktemp("t") / "teacher")
