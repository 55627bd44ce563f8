"""The vllm generation backend and lm-eval's vLLM path against the hf backend, on CPU.

Runs in its own environment (vLLM's CPU build pins other torch/transformers versions):
    bash .ci/vllm-env.sh && .venv-vllm/bin/python -m pytest -m vllm tests/vllm -q   (about 3 minutes)
Skipped where vllm is not installed (the main environment).

The teacher is the tiny Llama with scaled weights (tests/conftest.py: head_dim 32, vLLM's minimum on
CPU; outputs differ from prompt to prompt), loaded in float32 by both engines, so greedy decoding
must give the same text token for token; the vLLM side's load arguments are recorded at ``vllm.LLM``.
"""
from __future__ import annotations

import json
import os

import pytest

pytest.importorskip("vllm")
os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")

import vllm

from distill.generation import run_generation
from distill.generation.backends import Sampling, make_backend, requests_for
from distill.recipe.schema import Filters, Generation, ModelSpec, VLLMBackend

pytestmark = pytest.mark.vllm
ROWS = [{"id": f"p{i}", "prompt": f"Q:{10 + 7 * i}+{11 + i}="} for i in range(16)]
# on vLLM's CPU build the "GPU" memory fraction is a fraction of RAM, shared here with other processes
MEMORY = 0.1
GEN = Generation(max_new_tokens=12, batch_size=16, chunk_size=8,
                 vllm=VLLMBackend(gpu_memory_utilization=MEMORY),
                 filters=Filters(verify=False, near_dedup_threshold=None, decontaminate_ngram=0))
LLM_CALLS: list[dict] = []


class RecordingLLM(vllm.LLM):
    """The real engine; its constructor's keyword arguments are kept for the spec check."""

    def __init__(self, *args, **kwargs):
        LLM_CALLS.append(dict(kwargs))
        super().__init__(*args, **kwargs)


@pytest.fixture(scope="module")
def spec(teacher_dir) -> ModelSpec:
    return ModelSpec(model=str(teacher_dir), dtype="float32", trust_remote_code=True)


@pytest.fixture(scope="module")
def engines(spec):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(vllm, "LLM", RecordingLLM)
        ours = make_backend("vllm", spec, GEN.model_copy(update={"backend": "vllm"}))
    hf = make_backend("hf", spec, GEN, device="cpu")
    yield ours, hf
    ours.close()


def test_vllm_greedy_equals_hf_greedy(engines):
    ours, hf = engines
    requests = requests_for(ROWS, 1, seed=0)
    a, b = ours.generate(requests, Sampling(12)), hf.generate(requests, Sampling(12))
    assert len({c.text for c in b}) > 4  # the outputs differ by prompt: the comparison means something
    assert [(c.id, c.text, c.n_tokens, c.finish_reason) for c in a] == \
           [(c.id, c.text, c.n_tokens, c.finish_reason) for c in b]
    assert [c.prompt_tokens for c in a] == [c.prompt_tokens for c in b]


def test_the_spec_reaches_vllm(engines, spec):
    (kwargs,) = LLM_CALLS
    assert kwargs["model"] == spec.model and kwargs["revision"] == spec.revision
    assert kwargs["dtype"] == "float32" and kwargs["trust_remote_code"] is True
    assert engines[0].describe()["model"] == engines[1].describe()["model"] == spec.model


def test_generation_runs_give_the_same_rows_schema_and_provenance(spec, tmp_path):
    runs = {}
    for name in ("hf", "vllm"):
        gen = GEN.model_copy(update={"backend": name})
        out = run_generation(ROWS, spec, gen, tmp_path / name, device="cpu" if name == "hf" else None,
                             progress=False)
        folder = out["sources"]["synthetic"]["path"]
        from datasets import load_from_disk

        runs[name] = (load_from_disk(f"{folder}/data"),
                      json.loads((tmp_path / name / "synthetic" / "meta.json")
                                                                    .read_text()))
    (hf_rows, hf_meta), (v_rows, v_meta) = runs["hf"], runs["vllm"]
    assert hf_rows.column_names == v_rows.column_names
    assert hf_rows["completion"] == v_rows["completion"] and hf_rows["id"] == v_rows["id"]
    assert set(hf_meta) == set(v_meta)
    assert hf_meta["teacher"]["model"] == v_meta["teacher"]["model"] == spec.model
    assert (hf_meta["teacher"]["backend"], v_meta["teacher"]["backend"]) == ("hf", "vllm")
    assert hf_meta["content_hash"] == v_meta["content_hash"]  # same rows, same published data


def test_vllm_evaluation_equals_hf_evaluation(spec, world):
    from evals.lmeval import evaluate_model

    kw = {"world": world, "limit": 16, "max_gen_toks": 16}
    hf = evaluate_model(spec, spec, ["distill_arith"], backend="hf", **kw)
    ours = evaluate_model(spec, spec, ["distill_arith"], backend="vllm", vllm_memory=MEMORY, **kw)
    items = lambda r: [(i["doc_id"], i["response"]) for i in r["tasks"]["distill_arith"]["items"]]
    assert items(ours) == items(hf)
    assert ours["tasks"]["distill_arith"]["score"] == hf["tasks"]["distill_arith"]["score"]
    assert ours["settings"]["backend"] == "vllm" and ours["model_spec"] == hf["model_spec"]
