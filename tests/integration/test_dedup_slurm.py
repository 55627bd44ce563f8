"""The streaming merge's stages as Slurm job arrays publish the local executor's bytes.

Run: pytest tests/integration/test_dedup_slurm.py -q      (about a minute; needs the two-node local Slurm:
sudo DISTILL_SLURM_NODES=2 bash slurm/local/start.sh)
A generation of 8 shards (4,000 rows with planted copies) is merged twice: in this process (the local
executor's loop over the same tasks) and as five job arrays chained with afterok (signatures 8 tasks,
candidate pairs, cluster, filter 8 tasks, publish). The Arrow files, content hashes and filter reports
must be equal, and the shard-level arrays must have run as several tasks.

Run: pytest tests/integration/test_dedup_slurm.py -q -k recipe      (about two minutes)
The tiny recipe's generate stage (4 shards, near-dedup, decontamination and the verifier on) run with
``--launcher slurm``: its merge step is submitted as five arrays chained with afterok, and publishes the
local executor's sources byte for byte; with the human pool as a reference index (a fifth
signature task), so no published row copies a human one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from distill import slurm
from distill.generation.dedup_slurm import submit_stages
from distill.generation.pipeline import merge_and_filter, prepare_merge
from distill.generation.workload import rows, write_generation
from distill.pipeline.run import run_recipe
from distill.recipe.schema import Filters
from distill.sources import load_source
from tests.pipeline_helpers import tiny_recipe

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FILTERS = Filters(verify=False, decontaminate_ngram=8, near_dedup_threshold=0.85)


def _published(out: Path) -> dict:
    report = json.loads((out / "report.json").read_text())
    return {"filters": report["filters"],
            "hashes": {k: v["content_hash"] for k, v in report["sources"].items()},
            "arrow": {k: (out / k / "data" / "data-00000-of-00001.arrow").read_bytes()
                      for k in report["sources"]}}


def test_eight_shards_dedup_as_array_tasks_and_match_the_local_executor(tmp_path, two_node_cluster):
    shards = write_generation(tmp_path / "gen", 4000, shards=8, seed=2, chunk_size=200)
    tests = [" ".join(c.split(" ")[-25:-3]) for _, _, c in rows(10, seed=2)]
    merge_and_filter(shards, tmp_path / "local", filters=FILTERS, test_prompts=tests)
    work = prepare_merge(shards, tmp_path / "slurm", FILTERS, False, tests)
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "HF_HOME": os.environ.get("HF_HOME", str(tmp_path / "hf"))}
    jobs = submit_stages(work, {"cpus_per_task": 1, "mem": "1G", "time": 10}, env=env,
                         extra=(f"--chdir={tmp_path}",))
    states = slurm.wait(jobs, poll=0.5, timeout=600)
    assert set(states.values()) == {"COMPLETED"}, states
    assert sum(1 for task in states if task.startswith(f"{jobs[0]}_")) == 8  # one signature task per shard
    assert sum(1 for task in states if task.startswith(f"{jobs[3]}_")) == 8  # one filter task per shard
    assert _published(tmp_path / "slurm") == _published(tmp_path / "local")
    assert (json.loads((tmp_path / "local" / "report.json").read_text())["filters"]["near_dedup"]["removed"]
            > 0)


RECIPE_FILTERS = ["generation.shards=4",  # and the human pool as a reference index: a fifth signature task
                  "generation.filters={near_dedup_threshold: 0.9, decontaminate_ngram: 8}",
                  "generation.filters.dedup_against_human=true"]


def _merge_sources(run_dir: Path) -> dict:
    (folder,) = run_dir.glob("steps/merge-*")
    assert (folder / "DONE").exists()
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.glob("*/data/*.arrow"))}


def test_a_recipes_merge_step_runs_as_five_chained_arrays_and_matches_the_local_executor(
        tmp_path, monkeypatch, two_node_cluster):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))  # the teacher is built once, for both runs
    local = tiny_recipe(tmp_path / "local", f"launcher.workers={os.cpu_count()}", *RECIPE_FILTERS)
    assert run_recipe(local, until="generate") == 0
    assert run_recipe(tiny_recipe(tmp_path / "slurm", *RECIPE_FILTERS), launcher="slurm", until="generate",
                      wait=True) == 0
    run_dir = tmp_path / "slurm" / "tiny"
    jobs = json.loads((run_dir / "slurm" / "jobs.json").read_text())
    by_job = sorted(((int(j["job_id"]), name) for name, j in jobs.items()))
    stages = [name.rsplit("-", 1)[1] for _, name in by_job if "-merge-" in name]  # in submission order
    assert stages == ["signatures", "candidates", "cluster", "filter", "publish"]
    states = slurm.job_states([j["job_id"] for j in jobs.values()])
    merge = {name.rsplit("-", 1)[1]: j["job_id"] for name, j in jobs.items() if "-merge-" in name}
    tasks = {stage: sum(1 for t in states if t.startswith(f"{job}_")) for stage, job in merge.items()}
    assert tasks == {"signatures": 4 + 1, "candidates": 2 + 3, "cluster": 1, "filter": 4, "publish": 1}, tasks
    assert all(s.startswith("COMPLETED") for s in states.values()), states
    filter_job = next(n for n in jobs if n.endswith("-filter"))
    script = (run_dir / "slurm" / "scripts" / f"{filter_job}.sbatch").read_text()
    assert "--array=0-3" in script and "distill.pipeline.task" in script
    ours = _merge_sources(run_dir)
    assert (set(ours)
            == {"synthetic/data/data-00000-of-00001.arrow", "verified/data/data-00000-of-00001.arrow"})
    assert ours == _merge_sources(tmp_path / "local" / "tiny")
    (merge,) = run_dir.glob("steps/merge-*")
    (human,) = run_dir.glob("steps/human-*")
    pool = {(r["prompt"], r["completion"]) for r in load_source(human / "source")}
    refs = json.loads((merge / "report.json").read_text())["filters"]["references"]
    assert refs["rows"] == len(pool) > 0
    assert not pool & {(r["prompt"], r["completion"]) for r in load_source(merge / "synthetic")}
