"""No side channels: what a step does comes from its typed, hashed config, never from the run's
recipe.yaml; the ceiling scored with vLLM and the one scored with HF are different steps.
Run: pytest tests/unit/test_no_side_channels.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest

from distill.pipeline.context import StepContext
from distill.pipeline.plan import plan
from distill.recipe import load_recipe

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
RUNNERS = ["distill/pipeline/stages.py", "distill/pipeline/axes.py", "distill/human/stage.py"]


def _ceiling(*overrides):
    steps = plan(load_recipe(ROOT / "recipes/tiny.yaml", list(overrides)))
    return next(s for s in steps if s.kind == "eval" and s.labels.get("role") == "teacher"), steps


def test_the_ceilings_engine_is_in_its_id():
    hf, _ = _ceiling()
    vllm, _ = _ceiling("generation.backend=vllm")
    assert hf.id != vllm.id and vllm.config["vllm"] == {"parallel": 1, "memory": 0.9}
    assert "vllm" not in hf.config  # an hf ceiling keeps the id it had
    wider, _ = _ceiling("generation.backend=vllm", "generation.vllm.tensor_parallel_size=2")
    assert wider.id != vllm.id


def test_the_eval_runner_knows_its_engine_without_the_recipe(tmp_path):
    vllm, _ = _ceiling("generation.backend=vllm")
    ctx = StepContext(tmp_path, vllm, tmp_path / "cache", 1)  # no recipe.yaml in tmp_path
    assert ctx.config.ceiling and ctx.ceiling_engine(ctx.config.vllm)["backend"] == "vllm"
    floor = next(s for s in _ceiling()[1] if s.kind == "eval" and s.labels.get("role") == "floor")
    assert not StepContext(tmp_path, floor, tmp_path / "cache", 1).config.ceiling


def test_no_runner_reads_the_recipe_file_for_what_it_computes():
    for rel in RUNNERS:
        assert "recipe.yaml" not in (ROOT / rel).read_text(), rel
    context = (ROOT / "distill/pipeline/context.py").read_text()
    assert '_recipe("generation")' not in context
