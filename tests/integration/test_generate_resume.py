"""Generation survives SIGKILL at random moments: rerun it, get the same dataset, nothing twice.

Run: pytest tests/integration/test_generate_resume.py -q      (about 1 minute on 2 cores)
A few hundred prompts in small chunks over two shards; generation (then merge) runs in a fresh
Python process that is SIGKILLed at a random moment after its model is loaded, five times; a last
rerun finishes it. The
published dataset's content hash must equal an uninterrupted run's, every (prompt, sample) must be
stored exactly once, and committed chunks must never be lost between kills.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
import torch

from distill.generation import run_generation
from distill.recipe.schema import Filters, Generation, ModelSpec
from distill.world import build_task

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
PROMPTS, KILLS = 240, 5
GEN = {"max_new_tokens": 8, "batch_size": 8, "chunk_size": 6, "shards": 2, "temperature": 1.0,
       "logprobs_topk": 2, "filters": Filters(decontaminate_ngram=8)}

RUN = textwrap.dedent("""
    import sys
    from distill.generation import generate_shard, merge_and_filter
    from distill.generation.pipeline import build_backend
    from distill.generation.shards import shard_folder
    from distill.recipe.schema import ArithmeticWorld, Generation, ModelSpec
    from distill.world import build_task

    model, out, world = sys.argv[1], sys.argv[2], ArithmeticWorld.model_validate_json(sys.argv[3])
    task, gen = build_task(world), Generation.model_validate_json(sys.argv[4])
    teacher = ModelSpec(model=model)
    prompts = task.prompts(int(sys.argv[5]))
    backend = build_backend(teacher, gen, "cpu")  # imports and model load are not what is tested
    print("ready", flush=True)
    folders = [shard_folder(out, s, gen.shards) for s in range(gen.shards)]
    for shard, folder in enumerate(folders):
        generate_shard(prompts, teacher, gen, folder, shard, backend=backend, progress=False)
    merge_and_filter(folders, out, filters=gen.filters, verify=task.verify,
                     test_prompts=[r["prompt"] for r in task.test()])
    print("done", flush=True)
""")


def committed(out: Path) -> set[tuple[str, int]]:
    return {(p.parent.name, int(p.stem.split("-")[1])) for p in out.glob("shards/*/chunk-*.jsonl")}


def test_sigkill_at_random_moments_then_rerun_equals_uninterrupted(tiny_model_dir, world, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count as the killed processes: same floating point
    try:
        _check(tiny_model_dir, world, tmp_path)
    finally:
        torch.set_num_threads(threads)


def _check(model_dir: Path, world, tmp_path: Path) -> None:
    task, gen, teacher = build_task(world), Generation(**GEN), ModelSpec(model=str(model_dir))
    prompts, tests = task.prompts(PROMPTS), [r["prompt"] for r in task.test()]
    started = time.perf_counter()
    base = run_generation(prompts, teacher, gen, tmp_path / "base", verify=task.verify, test_prompts=tests,
                          progress=False)
    uninterrupted_s = time.perf_counter() - started

    out, rng = tmp_path / "killed", random.Random()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    moments, progress, before = [], [], set()
    for _ in range(KILLS):
        proc = subprocess.Popen([sys.executable, "-c", RUN, str(model_dir), str(out), world.model_dump_json(),
                                 gen.model_dump_json(), str(PROMPTS)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE,
                                text=True, env=env)
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()[-2000:]
        moments.append(round(rng.uniform(0.0, 0.18 * uninterrupted_s), 3))  # 5 kills < the whole run
        time.sleep(moments[-1])
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, f"run finished before its kill at {moments[-1]} s"
        now = committed(out)
        assert before <= now, f"committed chunks were lost by a kill at {moments[-1]} s"
        progress.append(len(now))
        before = now
    assert not (out / "synthetic").exists()  # nothing published before the end

    final = run_generation(prompts, teacher, gen, out, verify=task.verify, test_prompts=tests, progress=False)
    for name in ("synthetic", "verified"):
        assert (final["sources"][name]["content_hash"] == base["sources"][name]["content_hash"]), (name,
                                                                                                   moments)
    stored = Counter((r["id"], r["sample"]) for path in out.glob("shards/*/chunk-*.jsonl")
                     for r in map(json.loads, path.read_text().splitlines()[1:]))
    assert len(stored) == PROMPTS and max(stored.values()) == 1, f"rows stored twice (kills at {moments})"
    from datasets import load_from_disk

    ids = load_from_disk(str(out / "synthetic" / "data"))["id"]
    assert len(ids) == len(set(ids)) == final["filters"]["synthetic"]
    assert progress[-1] > 0, f"no kill let a chunk commit (kills at {moments} s): the test would be vacuous"
    print(f"kills at {moments} s (uninterrupted run {uninterrupted_s:.1f} s); chunks committed after each "
          f"kill: {progress} of {len(committed(out))}")
