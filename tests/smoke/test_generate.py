"""Smoke tests for teacher generation on a tiny random Llama, on CPU.

Run: pytest tests/smoke/test_generate.py -q      (about 1 minute on 2 cores)
Covers: shards + merge -> synthetic/verified sources with card, meta and KD columns; outputs that do
not depend on shard count, chunk size or batch size; resume skips committed work and refuses changed
settings; teacher top-k log-probs equal a teacher-forced pass; TRL's SFTTrainer trains on the output;
one-line errors with no dataset published; flat memory when the prompt count grows 10x.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from distill.generation import GenerationError, merge_and_filter, run_generation
from distill.generation.backends import Sampling, make_backend, requests_for
from distill.recipe.schema import Filters, Generation, ModelSpec
from distill.sources import KD_COLUMNS, content_hash
from distill.world import build_task

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from a second thread, and on a shared 2-core machine OpenMP threads
    that wait for each other make them 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def task(world):
    return build_task(world)


def gen(verify: bool = True, **kw) -> Generation:
    base = {"num_prompts": 30, "max_new_tokens": 10, "batch_size": 8, "chunk_size": 6, "temperature": 1.0,
            "top_p": 0.95, "filters": Filters(near_dedup_threshold=0.9, decontaminate_ngram=8, verify=verify)}
    return Generation(**{**base, **kw})


def even_length(row: dict, completion: str) -> bool:  # a verifier that a random teacher can pass
    return len(completion) % 2 == 0


def test_generation_publishes_sources_with_card_meta_and_kd(teacher_dir, task, tmp_path):
    g = gen(shards=2, samples_per_prompt=2, logprobs_topk=3)
    prompts = task.prompts(30)
    out = run_generation(prompts, ModelSpec(model=str(teacher_dir)), g, tmp_path, verify=even_length,
                         test_prompts=[r["prompt"] for r in task.test()], progress=False)
    from datasets import load_from_disk

    synthetic = load_from_disk(str(tmp_path / "synthetic" / "data"))
    verified = load_from_disk(str(tmp_path / "verified" / "data"))
    assert set(KD_COLUMNS) | {"id", "prompt", "completion", "origin", "meta"} == set(synthetic.column_names)
    assert len(set(synthetic["id"])) == len(synthetic) == out["filters"]["synthetic"]
    assert out["filters"]["raw"] == 60
    assert list(verified["id"]) == [r["id"] for r in synthetic if even_length(r, r["completion"])]
    assert out["filters"]["verify"]["passed"] == len(verified) > 0
    row = synthetic[0]
    assert all(len(step) == 3 for step in row["teacher_topk_ids"])
    assert len(row["teacher_topk_ids"]) == len(row["teacher_token_ids"]) == len(row["teacher_topk_logprobs"])
    meta = json.loads((tmp_path / "synthetic" / "meta.json").read_text())
    from distill.artifacts import tree_hash

    assert meta["teacher"]["weights_hash"] == tree_hash(teacher_dir, "*.safetensors")
    assert meta["content_hash"] == content_hash(synthetic) == out["sources"]["synthetic"]["content_hash"]
    assert meta["sampling"]["temperature"] == 1.0 and meta["sampling"]["seed"] == 0
    assert meta["tokens"]["completion_generated"] > 0 and meta["tokens_per_s"] > 0
    assert meta["filters"]["length"]["in"] == 60 and meta["prompts"]["count"] == 30
    card = (tmp_path / "synthetic" / "README.md").read_text()
    assert str(teacher_dir) in card and meta["content_hash"] in card and "| near_dedup |" in card


def test_outputs_do_not_depend_on_shards_chunks_or_batches(teacher_dir, task, tmp_path):
    prompts, teacher = task.prompts(24), ModelSpec(model=str(teacher_dir))
    hashes = [run_generation(prompts, teacher, gen(shards=s, chunk_size=c, batch_size=b, verify=False),
                             tmp_path / f"run{s}", progress=False)["sources"]["synthetic"]["content_hash"]
              for s, c, b in ((1, 24, 24), (3, 5, 3))]
    assert hashes[0] == hashes[1]


def test_rerun_skips_committed_chunks_and_refuses_changed_settings(teacher_dir, task, tmp_path):
    from distill.generation import generate_shard

    prompts, teacher = task.prompts(12), ModelSpec(model=str(teacher_dir))
    first = generate_shard(prompts, teacher, gen(), tmp_path / "s0", progress=False)
    again = generate_shard(prompts, teacher, gen(batch_size=2), tmp_path / "s0", progress=False)
    assert first["chunks_generated_now"] == 2 and again["chunks_generated_now"] == 0 and again["complete"]
    with pytest.raises(GenerationError, match=r"plan.json: this shard was started with sampling="):
        generate_shard(prompts, teacher, gen(temperature=0.5), tmp_path / "s0", progress=False)


def test_sampled_rows_do_not_depend_on_batch_and_logprobs_are_the_teachers(teacher_dir):
    backend = make_backend("hf", ModelSpec(model=str(teacher_dir)), Generation(batch_size=16))
    rows = [{"id": f"p{i}", "prompt": f"Q:{100 + 37 * i}+{10 + i * i}="} for i in range(9)]
    requests = requests_for(rows, 2, seed=3)
    sampling = Sampling(10, temperature=1.0, top_p=0.9, logprobs_topk=4)
    together = backend.generate(requests, sampling)
    alone = [backend.generate([r], sampling)[0] for r in requests[:4]]
    assert [c.text for c in together[:4]] == [c.text for c in alone]
    assert len({c.text for c in together}) > 9  # samples differ between rows and between samples
    tok, model = backend.tokenizer, backend.model
    for request, c in zip(requests, together):
        assert (c.token_ids[:-1 if c.finish_reason == "stop" else None]
                == tok(c.text, add_special_tokens=False)["input_ids"])
        prompt = tok(request.prompt)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([prompt + c.token_ids])).logits[0, len(prompt) - 1:-1]
        logp = torch.log_softmax(logits.float(), -1)
        torch.testing.assert_close(torch.tensor(c.topk_logprobs), logp.topk(4).values, atol=1e-4, rtol=0)
        torch.testing.assert_close(torch.tensor(c.token_logprobs),
                                   logp.gather(1, torch.tensor(c.token_ids)[:, None])[:, 0],
                                   atol=1e-4, rtol=0)


def test_sft_trainer_trains_on_the_synthetic_source(teacher_dir, task, tmp_path):
    from datasets import load_from_disk
    from trl import SFTConfig, SFTTrainer

    from distill.models import load_model, load_tokenizer

    run_generation(task.prompts(16), ModelSpec(model=str(teacher_dir)), gen(verify=False), tmp_path / "g",
                   progress=False)
    data = load_from_disk(str(tmp_path / "g" / "synthetic" / "data"))
    args = SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=4,
                     report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, max_length=64)
    trainer = SFTTrainer(model=load_model(str(teacher_dir)), args=args, train_dataset=data,
                         processing_class=load_tokenizer(str(teacher_dir)))
    result = trainer.train()
    assert result.global_step == 2 and result.training_loss > 0


def test_errors_are_one_line_and_publish_nothing(teacher_dir, task, tmp_path):
    prompts = task.prompts(6)
    cases = [
        (lambda: run_generation(prompts, ModelSpec(model=str(tmp_path / "no-model")), gen(), tmp_path / "o1",
                                progress=False), r"teacher model path '.*no-model' does not exist"),
    ]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    cases.append((lambda: run_generation(prompts, ModelSpec(model=str(teacher_dir)), gen(), blocker / "out",
                                         progress=False), r"output folder '.*a-file/out' is not writable"))
    for call, message in cases:
        with pytest.raises(GenerationError, match=message) as info:
            call()
        assert "\n" not in str(info.value)
    assert not (tmp_path / "o1").exists() and not list(tmp_path.rglob("synthetic"))


def test_merge_refuses_incomplete_or_mismatched_shards(teacher_dir, task, tmp_path):
    from distill.generation import generate_shard

    prompts, teacher = task.prompts(12), ModelSpec(model=str(teacher_dir))
    generate_shard(prompts, teacher, gen(shards=2), tmp_path / "a", 0, progress=False)
    with pytest.raises(GenerationError, match=r"shard folders hold shards \[0\] of 2: missing \[1\]"):
        merge_and_filter([tmp_path / "a"], tmp_path / "m", filters=Filters(verify=False))
    generate_shard(prompts, teacher, gen(shards=2, seed=1), tmp_path / "b", 1, progress=False)
    with pytest.raises(GenerationError, match=r"seed=1 differs from 0"):
        merge_and_filter([tmp_path / "a", tmp_path / "b"], tmp_path / "m", filters=Filters(verify=False))
    with pytest.raises(GenerationError, match=r"not a generation shard \(no plan.json\)"):
        merge_and_filter([tmp_path / "nothing"], tmp_path / "m", filters=Filters(verify=False))
    with pytest.raises(GenerationError, match="no verifier"):
        merge_and_filter([tmp_path / "a"], tmp_path / "m", filters=Filters(verify=True))
    assert not (tmp_path / "m" / "synthetic").exists()


def test_vllm_backend_without_vllm_says_how_to_get_it():
    pytest.importorskip("torch")
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed here")
    except ImportError:
        pass
    with pytest.raises(GenerationError, match=r"needs the vllm package.*pip install 'distill\[vllm\]'"):
        make_backend("vllm", ModelSpec(model="x"), Generation(backend="vllm"))


MEMORY_PROBE = textwrap.dedent("""
    import json, resource, sys, tracemalloc
    from distill.generation import generate_shard
    from distill.generation.backends import make_backend
    from distill.recipe.schema import Filters, Generation, ModelSpec

    model, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    g = Generation(max_new_tokens=8, batch_size=64, chunk_size=64, logprobs_topk=16, temperature=1.0)
    backend = make_backend("hf", ModelSpec(model=model), g, device="cpu")
    peaks, rss = {}, {}
    tracemalloc.start()
    for size in (n // 10, n, 10 * n):  # the first run warms up caches and allocator
        prompts = [{"id": f"p{i}", "prompt": f"Q:{100 + i % 900}+{10 + i % 89}="} for i in range(size)]
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        generate_shard(prompts, ModelSpec(model=model), g, f"{out}/{size}", backend=backend, progress=False)
        peaks[size] = tracemalloc.get_traced_memory()[1] - before
        rss[size] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak": peaks, "maxrss": rss}))
""")


def test_memory_stays_flat_when_prompts_grow_tenfold(teacher_dir, tmp_path):
    n = 100
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(teacher_dir), str(tmp_path), str(n)],
                          capture_output=True, text=True, timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    peak, rss = ({int(k): v for k, v in result["peak"].items()},
                 {int(k): v for k, v in result["maxrss"].items()})
    # Kept in memory, the 10n run's 900 extra rows of top-16 entries per token add ~11 MB of Python
    # objects (peak) and ~45 MB of RSS (measured by keeping them); streamed, the peak is one chunk plus
    # the prompt list (~1 KB per prompt: +1 MB) and RSS grows ~12 MB (allocator).
    assert peak[10 * n] < peak[n] + 2_500_000, peak
    assert rss[10 * n] - rss[n] < 30_000_000, rss
