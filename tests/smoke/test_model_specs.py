"""The recipe's model spec (revision, dtype, trust_remote_code, attention) reaches every place a model
is loaded: training (student and online-KD teacher), hf generation (one device and device_map), the
server, and lm-eval evaluation (one device and sharded).

Run: pytest tests/smoke/test_model_specs.py -q      (about 1 minute on 2 cores)

The keyword arguments are recorded at transformers' own ``from_pretrained`` (the real loader runs
underneath, on a local tiny model), so a load site that drops a field fails here. The vLLM load
sites are checked the same way at ``vllm.LLM`` in tests/vllm/.
"""
from __future__ import annotations

import json

import pytest
import torch

from distill.recipe.schema import KD, Generation, ModelSpec, Train
from distill.world.arithmetic import problems, record

pytestmark = pytest.mark.smoke
FIELDS = {"revision": "main", "trust_remote_code": True, "attn_implementation": "eager"}


@pytest.fixture
def loads(monkeypatch):
    """Every model / tokenizer ``from_pretrained`` call in this process: (kind, name, kwargs)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    calls: list[tuple[str, str, dict]] = []
    for kind, cls in (("model", AutoModelForCausalLM), ("tokenizer", AutoTokenizer)):
        real = cls.from_pretrained.__func__

        def spy(klass, name, *args, _real=real, _kind=kind, **kwargs):
            calls.append((_kind, str(name), dict(kwargs)))
            return _real(klass, name, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    return calls


@pytest.fixture
def spec(tiny_model_dir) -> ModelSpec:
    return ModelSpec(model=str(tiny_model_dir), dtype="bfloat16", **FIELDS)


def _assert_spec_reached(calls, spec: ModelSpec, models: int) -> None:
    model_calls = [kw for kind, name, kw in calls if kind == "model" and name == spec.model]
    assert len(model_calls) == models, calls
    for kw in model_calls:
        assert kw["revision"] == spec.revision and kw["trust_remote_code"] is True
        assert kw["dtype"] == torch.bfloat16 and kw["attn_implementation"] == "eager"
    tokenizer_calls = [kw for kind, name, kw in calls if kind == "tokenizer" and name == spec.model]
    assert tokenizer_calls and all(kw["revision"] == spec.revision and kw["trust_remote_code"] is True
                                   for kw in tokenizer_calls)


def test_training_loads_student_and_online_teacher_with_their_specs(loads, spec, world, tmp_path):
    from datasets import Dataset

    from distill.training import TrainJob, train

    rows = [{"prompt": r["prompt"], "completion": r["completion"]}
            for r in map(record, problems(world, "human", 40))]
    Dataset.from_list(rows).save_to_disk(str(tmp_path / "data"))
    cfg = Train(tokens=2 * 8 * 128, seq_len=128, global_batch_size=8, micro_batch_size=8,
                kd=KD(weight=0.5, source="online"))
    job = TrainJob(model=spec, data=str(tmp_path / "data"), out_dir=str(tmp_path / "run"), train=cfg,
                   teacher=spec)
    assert TrainJob.load(job.save(tmp_path / "job.json")) == job  # the spec survives the trip to other ranks
    train(job)
    _assert_spec_reached(loads, spec, models=2)
    assert json.loads((tmp_path / "run" / "job.json").read_text())["model"]["dtype"] == "bfloat16"


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_hf_generation_and_the_server_load_with_the_spec(loads, spec, device):
    from distill.generation.backends import make_backend
    from distill.generation.backends.serve import start_server

    backend = make_backend("hf", spec, Generation(), device=device)
    assert backend.model.dtype == torch.bfloat16 and backend.model.config._attn_implementation == "eager"
    with start_server(spec, device=device) as server:
        assert server.url
    _assert_spec_reached(loads, spec, models=2)


@pytest.mark.parametrize("parallel", [1, 2])
def test_evaluation_loads_with_the_spec(loads, spec, world, parallel):
    from evals.lmeval import evaluate_model

    out = evaluate_model(spec, spec, ["distill_arith"], world=world, limit=4, max_gen_toks=8,
                         parallel=parallel)
    _assert_spec_reached(loads, spec, models=1)
    assert out["model_spec"]["dtype"] == "bfloat16" and out["settings"]["parallel"] == parallel
