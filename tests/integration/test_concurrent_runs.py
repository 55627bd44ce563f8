"""Two `distill run` processes at once: sharing one fresh cache they build the shared tokenizer and
teacher once (the second waits on the lock) and both report what a sequential run reports; a third
on a run folder that is in use is refused at once with a clear message. Real processes, started
within a second of each other, from a folder outside any git checkout.
Run: pytest tests/integration/test_concurrent_runs.py -q"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SMALL = ["mixes.sizes=[50]", "mixes.seeds=[0]",
         "mixes.arms=[{name: human, fraction: 0.0}, {name: synthetic, fraction: 1.0}]",
         "eval.tasks=[distill_arith]", "report.bootstrap=50", "generation.num_prompts=60",
         "teacher.build.max_steps=20",
         "launcher.workers=1"]


def _start(name: str, out: Path, env: dict, cwd: Path) -> subprocess.Popen:
    """A `distill run` whose output goes to files (a pipe nobody reads would stall a long run)."""
    argv = [sys.executable, "-m", "distill.cli", "run", str(ROOT / "recipes/tiny.yaml"), f"name={name}",
            f"output_dir={out}", *SMALL]
    logs = cwd / "logs"
    logs.mkdir(exist_ok=True)
    log = logs / f"{len(list(logs.iterdir()))}-{name}.txt"
    with open(log, "w") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    proc.log = log
    return proc


def _finish(proc: subprocess.Popen, timeout: float) -> tuple[str, int]:
    """(what it printed, exit code) of a started run."""
    proc.wait(timeout=timeout)
    return proc.log.read_text(), proc.returncode


def _scores(run_dir: Path) -> dict:
    """The report's records without what legitimately differs between runs (names, times, paths)."""
    records = json.loads(next(run_dir.glob("steps/report-*/records.json")).read_text())
    runs = [{k: v for k, v in r.items() if k != "cost"} for r in records["runs"]]
    return {"runs": sorted(runs, key=json.dumps), "ceiling": records["ceiling"], "floor": records["floor"]}


def test_two_runs_share_one_cache_and_a_busy_run_folder_is_refused(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "runs"
    env = {**os.environ, "DISTILL_CACHE": str(cache), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    a, b = _start("a", out, env, tmp_path), _start("b", out, env, tmp_path)
    deadline = time.time() + 120
    while not (out / "a" / "dag.json").exists() and time.time() < deadline:
        time.sleep(0.2)
    busy = _start("a", out, env, tmp_path)  # the same run folder as `a`, while `a` runs
    busy_err, busy_code = _finish(busy, 300)
    results = {name: _finish(p, 900) for name, p in (("a", a), ("b", b))}

    assert busy_code == 75, busy_err
    assert f"{out / 'a'} is in use by another `distill run` (pid {a.pid})" in busy_err
    assert len(busy_err.strip().splitlines()) == 1
    for name, (output, code) in results.items():
        assert code == 0, f"{name}: {output[-3000:]}"
        assert "fatal: not a git repository" not in output
    for kind in ("tokenizer", "teacher"):
        built = list(cache.glob(f"steps/{kind}-*"))
        assert len([p for p in built if p.is_dir()]) == 1, built
        folder = next(p for p in built if p.is_dir())
        assert (folder / "DONE").exists() and not (folder / "error.txt").exists()
        assert (folder / "log.txt").read_text().count(f"== {kind} ") == 1, f"{kind} built more than once"
    assert _scores(out / "a") == _scores(out / "b")

    sequential = _start("c", out, env, tmp_path)  # alone, after both: reuses the cached teacher
    output, code = _finish(sequential, 900)
    assert code == 0, output[-3000:]
    assert (_scores(out / "c")
            == _scores(out / "a")), "concurrent runs report differently from a sequential one"
