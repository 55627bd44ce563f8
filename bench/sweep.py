"""A sweep's students and evaluations: distill's local executor against the loop users script by hand.

The baseline is what a researcher writes without distill: for every mix, one process to train the
student (``python -m distill.training.launch job.json``, the same trainer, data and settings) and
one ``lm_eval`` CLI process to evaluate it. distill runs the same train and eval steps through its
DAG executor: long-lived workers that import torch, transformers and lm-eval once, independent
steps side by side. Everything upstream (teacher, generation, mixes) is prepared first, untimed,
and shared by both; both are timed in this process, one after the other.

Run: python bench/sweep.py [--recipe recipes/tiny.yaml] [key=value ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from distill.pipeline.context import launch_of
from distill.pipeline.local import run_local
from distill.pipeline.plan import Step
from distill.pipeline.run import prepare_run
from distill.recipe import load_recipe
from distill.training import TrainJob

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = ["mixes.sizes=[100, 200, 400]", "mixes.seeds=[0, 1]", "eval.tasks=[distill_arith]",
            "tracking.wandb.mode=disabled"]


def lm_eval_command() -> list[str]:
    """lm-eval's CLI from this interpreter's environment (its bin folder, else ``python -m lm_eval``),
    never whatever ``lm_eval`` is first on PATH: the bench runs unactivated (.venv/bin/python ...)."""
    script = Path(sys.executable).parent / "lm_eval"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lm_eval"]


def naive_loop(run_dir: Path, steps: list[Step], cache: Path, work: Path, world: dict) -> float:
    """One training process and one lm_eval CLI process per mix, in sequence."""
    from distill.pipeline.configs import ModelRef
    from distill.pipeline.context import StepContext, model_ref
    from distill.pipeline.mixes import materialise_mix

    jobs = []
    for step in (s for s in steps if s.kind == "train"):  # untimed: the user's data files
        ctx = StepContext(run_dir, step, cache, threads=1)
        student = model_ref(ctx, ModelRef(step=ctx.dep_id("student")))
        merge = ctx.deps("merge")
        out = work / step.id
        _, data = materialise_mix(ctx.config.mix, student, ctx.dep("human") / "source",
                                  merge[0] if merge else None, out / "mix")
        job = TrainJob(model=student.model, data=str(data), out_dir=str(out),
                       train=ctx.config.train, seed=ctx.config.mix.seed)
        jobs.append((job.save(out / "job.json"), out))
    start = time.perf_counter()
    for job_json, out in jobs:
        subprocess.run([sys.executable, "-m", "distill.training.launch", str(job_json)], check=True,
                       capture_output=True)
        subprocess.run([*lm_eval_command(), "--model", "hf", "--model_args", f"pretrained={out / 'model'}",
                        "--include_path", str(ROOT / "evals/tasks"), "--tasks", "distill_arith",
                        "--batch_size", "64", "--metadata", json.dumps({"world": world}),
                        "--output_path", str(out / "lm_eval")], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default=str(ROOT / "recipes/tiny.yaml"))
    parser.add_argument("overrides", nargs="*", help="recipe overrides (key.sub=value)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    os.environ.setdefault("DISTILL_CACHE", str(work / "cache"))
    given = {o.split("=", 1)[0] for o in args.overrides}  # the loader refuses a key set twice: yours win
    defaults = [d for d in DEFAULTS if d.split("=", 1)[0] not in given]
    recipe = load_recipe(args.recipe, [*defaults, f"output_dir={work}", *args.overrides])
    run_dir, steps, cache = prepare_run(recipe)
    upstream = {s.id for s in steps if s.kind not in ("train", "eval", "report")}
    print(f"preparing teacher, data and mixes (untimed) in {run_dir} ...", flush=True)
    run_local(run_dir, steps, cache, recipe.launcher.workers, only=upstream, launch=launch_of(recipe))
    timed = [s for s in steps if s.kind in ("train", "eval")]
    baseline = naive_loop(run_dir, timed, cache, work / "naive", recipe.world.model_dump(mode="json"))
    start = time.perf_counter()
    outcome = run_local(run_dir, steps, cache, recipe.launcher.workers, only={s.id for s in timed},
                        launch=launch_of(recipe))
    ours = time.perf_counter() - start
    assert len(outcome) == len(timed) and all(v == "done" for v in outcome.values()), outcome
    runs = sum(s.kind == "train" for s in timed)
    print(f"\n{runs} student runs + {len(timed) - runs} evaluations, {os.cpu_count()} cores\n")
    print("| method | wall s | s per run |\n|---|---|---|")
    print(f"| naive loop (process per train + lm_eval CLI per eval) | {baseline:.1f} | "
          f"{baseline / runs:.2f} |")
    print(f"| distill local executor ({recipe.launcher.workers} workers) | {ours:.1f} | {ours / runs:.2f} |")
    print(f"\nspeedup: {baseline / ours:.2f}x")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
