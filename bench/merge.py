"""Rows/s per core and peak RSS per task of the streaming merge, beside today's in-memory merge.

For each size N the script writes N GSM8K-like generated rows (about 600 characters, planted exact and
near copies and number variants; ``distill.generation.workload``) as 8 shards, then runs the streaming
merge with the default filters (exact + MinHash near-dedup at 0.9 + decontamination against 1,319 eval
prompts; no verifier) as separate processes, one per array task, exactly as a Slurm array would:
signatures (per shard), candidate pairs (per hash partition / band range), cluster, filter (per shard),
publish. Each task's CPU seconds and peak RSS come from ``os.wait4``. Rows/s per core = N / the CPU
seconds of all tasks. Up to ``--old-max`` rows, the in-memory merge (``pipeline.merge_in_memory`` +
publish; datasketch near-dedup) runs on the same shards in its own process, for comparison.

Run: python bench/merge.py [--sizes 100000 1000000] [--old-max 100000] [--workdir DIR] [--keep]
The last line is one JSON object: {"sizes": [{"rows": N, "rows_per_s_per_core": x, "peak_rss_mib": y}, ...]}.
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

ROOT = Path(__file__).resolve().parents[1]
SHARDS = 8
OLD = """
import json, sys
from distill.generation.pipeline import merge_in_memory
from distill.generation.provenance import publish
from distill.recipe.schema import Filters
shards, out, tests = json.loads(open(sys.argv[1]).read())
synthetic, _, report = merge_in_memory(shards, Filters(verify=False), None, tests)
publish(synthetic, out, {"name": "synthetic", "rows": len(synthetic), "description": "bench",
        "filters": report, "teacher": {"model": "workload", "backend": "hf"}, "sampling": {},
        "wall_time_s": {"generation": 0.0},
        "tokens": {"prompt": 0, "completion_generated": 0, "completion_published": 0}, "tokens_per_s": 0.0})
print(json.dumps(report["near_dedup"]))
print(next(line for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""


def run_process(argv: list[str]) -> dict:
    """Run one task; its CPU seconds and peak RSS (MiB) from the kernel's accounting of that child."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:  # files: a full pipe would block
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"task {argv[2:]} failed ({proc.returncode}): {stderr[-2000:]}")
    # the child's own high-water mark (ru_maxrss of a child also counts the parent's RSS at fork)
    peak = [line for line in stdout.splitlines() if line.startswith("VmHWM:")]
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": int(peak[-1].split()[1]) / 1024,
            "wall_s": time.perf_counter() - started, "stdout": stdout}


def task_argv(*args: str) -> list[str]:
    """A dedup array task, printing its peak RSS as it exits."""
    return [sys.executable, __file__, "--task", *args]


def _report_peak() -> None:
    print(next(line
               for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:")))


def streaming(shards: list[Path], out: Path, tests: list[str]) -> dict:
    """Every task of every stage as its own process; CPU and peak RSS per stage."""
    from distill.generation import dedup
    from distill.generation.dedup_task import STAGES, task_count
    from distill.generation.pipeline import prepare_merge
    from distill.recipe.schema import Filters

    work = prepare_merge(shards, out, Filters(verify=False), False, tests)
    settings = dedup.read_settings(work)
    stages = {}
    for stage in STAGES:
        runs = [run_process(task_argv(str(work), stage, str(t))) for t in range(task_count(settings, stage))]
        stages[stage] = {"tasks": len(runs), "cpu_s": sum(r["cpu_s"] for r in runs),
                         "peak_rss_mib": max(r["rss_mib"] for r in runs),
                         "wall_s": sum(r["wall_s"] for r in runs)}
    report = json.loads((out / "report.json").read_text())
    return {"stages": stages, "near_removed": report["filters"]["near_dedup"]["removed"],
            "kept": report["sources"]["synthetic"]["rows"]}


def eval_prompts(n: int = 1319) -> list[str]:
    """GSM8K-test-sized eval prompts of 40-60 words that share no template with the rows, plus 20 that
    quote the row-specific tail of a generated completion (so decontamination has rows to find)."""
    import random

    from distill.generation.workload import FILLER, rows

    rng = random.Random(10_000)
    quoted = [" ".join(c.split(" ")[-25:-3]) for _, _, c in rows(20, seed=0)]
    return [" ".join(rng.choice(FILLER) for _ in range(rng.randint(40, 60))) for _ in range(n - 20)] + quoted


def generation(folder: Path, n: int) -> tuple[list[Path], float]:
    """The N-row generation's shard folders and the CPU seconds writing them took; a folder a previous
    run (with --keep) wrote completely is reused (10M rows take ~30 CPU-minutes to write)."""
    from distill.generation.shards import shard_folder
    from distill.generation.workload import write_generation

    done = folder / "written.json"
    if done.exists() and json.loads(done.read_text())["rows"] == n:
        return [shard_folder(folder, s, SHARDS) for s in range(SHARDS)], json.loads(done.read_text())["cpu_s"]
    started = time.process_time()
    shards = write_generation(folder, n, shards=SHARDS, seed=0)
    written_s = time.process_time() - started
    done.write_text(json.dumps({"rows": n, "cpu_s": written_s}))
    return shards, written_s


def measure(n: int, root: Path, old_max: int, tests: list[str]) -> dict:
    shards, written_s = generation(root / f"gen-{n}", n)
    new = streaming(shards, root / f"new-{n}", tests)
    cpu = sum(s["cpu_s"] for s in new["stages"].values())
    dedup_cpu = sum(new["stages"][s]["cpu_s"] for s in ("signatures", "candidates", "cluster", "filter"))
    result = {"rows": n, "rows_per_s_per_core": round(n / cpu, 1), "peak_rss_mib": round(
        max(s["peak_rss_mib"] for s in new["stages"].values()), 1),
        "dedup_rows_per_s_per_core": round(n / dedup_cpu, 1), "stages": new["stages"],
        "write_cpu_s": written_s,
        "near_removed": new["near_removed"], "kept": new["kept"]}
    if n <= old_max:
        args = root / f"old-{n}.json"
        args.write_text(json.dumps([[str(s) for s in shards], str(root / f"old-{n}" / "synthetic"), tests]))
        old = run_process([sys.executable, "-c", OLD, str(args)])
        result["in_memory"] = {"rows_per_s_per_core": round(n / old["cpu_s"], 1),
                               "peak_rss_mib": round(old["rss_mib"], 1),
                               "near_removed": json.loads(next(
                                   ln for ln in old["stdout"].splitlines() if ln.startswith("{")))["removed"]}
    return result


def table(results: list[dict]) -> str:
    stages = list(results[0]["stages"]) if results else []
    header = ("| rows | wall s (tasks in turn) | cpu-s | rows/s/core, all tasks | dedup + decontamination "
              "rows/s/core "
              "| µs/row (all tasks) | peak RSS MiB: " + " / ".join(stages) + " | in-memory rows/s/core |")
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    for r in results:
        wall = sum(s["wall_s"] for s in r["stages"].values())
        cpu = sum(s["cpu_s"] for s in r["stages"].values())
        rss = " / ".join(f"{r['stages'][k]['peak_rss_mib']:.0f}" for k in stages)
        old = r.get("in_memory", {}).get("rows_per_s_per_core", "-")
        lines.append(f"| {r['rows']:,} | {wall:,.0f} | {cpu:,.1f} | {r['rows_per_s_per_core']:,.0f} "
                     f"| {r['dedup_rows_per_s_per_core']:,.0f} | {1e6 * cpu / r['rows']:.1f} | "
                     f"{rss} | {old} |")
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--task"]:  # one array task (run by this script in a child process)
        from distill.generation.dedup_task import run_task

        run_task(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
        _report_peak()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="row counts to measure (the issue's sizes: 100000 1000000 10000000)")
    parser.add_argument("--old-max", type=int, default=100_000,
                        help="run the in-memory merge too up to this many rows (it holds every row "
                             "in memory)")
    parser.add_argument("--workdir", default=None,
                        help="where shards and outputs go (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    root = Path(args.workdir or tempfile.mkdtemp(prefix="bench-merge-"))
    tests, results = eval_prompts(), []
    try:
        for n in args.sizes:
            results.append(measure(n, root / str(n), args.old_max, tests))
            per_stage = ", ".join(f"{k} {v['tasks']}x {v['cpu_s']:.1f} cpu-s {v['wall_s']:.1f} s "
                                  f"{v['peak_rss_mib']:.0f} MiB" for k, v in results[-1]["stages"].items())
            print(f"{n:,} rows: {per_stage}", flush=True)
            if not args.keep:
                shutil.rmtree(root / str(n), ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(table(results))
    print(json.dumps({"sizes": [{k: r[k] for k in ("rows", "rows_per_s_per_core", "peak_rss_mib")}
                                for r in results]}))


if __name__ == "__main__":
    main()
