"""Step references in configs (an eval's ``{"model": {"step": id}}``) follow the ids that content
fingerprints of local inputs give the steps they point to. Run: pytest tests/unit/test_step_refs.py -q"""
from __future__ import annotations

import json

import pytest

from distill.pipeline.run import planned
from tests.pipeline_helpers import tiny_recipe

pytestmark = pytest.mark.unit


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "step" and isinstance(v, str)] + \
               [r for v in node.values() for r in _refs(v)]
    return [r for v in node for r in _refs(v)] if isinstance(node, list) else []


def test_config_step_refs_name_planned_steps(tmp_path):
    model = tmp_path / "student"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama"}))
    steps = planned(tiny_recipe(tmp_path, f"student.model={model}"))
    ids = {s.id for s in steps}
    refs = [r for s in steps for r in _refs(s.config)]
    assert refs and set(refs) <= ids, set(refs) - ids
    assert any(s.inputs for s in steps)  # the local student's fingerprint changed ids
