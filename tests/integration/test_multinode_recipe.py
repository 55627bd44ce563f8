"""The gsm8k/multinode recipe on the two-node local cluster, as far as 2 CPU cores allow: the real
recipe file with tiny local stand-ins for its models and data (tests/smoke/test_gsm8k_recipe.py), the
hf backend instead of vLLM (which has no CPU build in this environment), no GPUs, and a smaller
grid; its students train on two nodes under ZeRO-3 through the rendered sbatch scripts.

Needs: sudo DISTILL_SLURM_NODES=2 bash slurm/local/start.sh
Run: pytest tests/integration/test_multinode_recipe.py -q      (about 4-6 minutes on 2 cores)
"""
from __future__ import annotations

import json

import pytest

from distill.pipeline.run import run_recipe
from distill.recipe import load_recipe
from tests.pipeline_helpers import later_wins
from tests.smoke.test_gsm8k_recipe import ROOT, gsm8k_files, local_overrides  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration
STAGES = ("generate", "train", "eval", "report")


def cluster_overrides(partition: str) -> list[str]:
    """What this CPU cluster can give: no GPUs, one core and 1 GB per task; training keeps its two
    nodes (one process each) and the recipe's ZeRO-3 config."""
    fit = [f"launcher.slurm.{s}.{k}={v}" for s in STAGES
           for k, v in (("gpus_per_node", 0), ("cpus_per_task", 1), ("mem", "1G"), ("partition", partition))]
    return [*fit, "launcher.slurm.train.processes_per_node=1", "generation.vllm.tensor_parallel_size=1",
            "train.accelerate_config=recipes/accelerate/zero3.yaml", "mixes.sizes=[20]", "mixes.seeds=[0]",
            "train.global_batch_size=4", "train.micro_batch_size=2"]


def test_multinode_recipe_runs_on_two_nodes(gsm8k_files, tmp_path, two_node_cluster, monkeypatch):  # noqa: F811
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path / "cache"))
    local = [o for o in local_overrides(gsm8k_files, tmp_path) if not o.startswith("train.accelerate_config")]
    recipe = load_recipe(ROOT / "recipes/gsm8k/multinode.yaml",
                         later_wins(local, cluster_overrides(two_node_cluster.partition)))
    assert recipe.launcher.slurm.train.nodes == 2 and len(recipe.mixes.arms) == 3
    assert run_recipe(recipe, launcher="slurm", wait=True) == 0
    run_dir = tmp_path / recipe.name
    scripts = sorted((run_dir / "slurm" / "scripts").glob("*-train.sbatch"))
    assert scripts and "#SBATCH --nodes=2" in scripts[0].read_text()
    trains = sorted(run_dir.glob("steps/train-*"))
    assert len(trains) == 3
    for folder in trains:
        if (folder / "infeasible.json").exists():
            continue
        result = json.loads((folder / "result.json").read_text())
        assert result["world_size"] == 2 and result["extra"]["backend"] == "deepspeed-zero3"
        assert "srun --nodes=2" in (folder / "launch.log").read_text()
        assert len(list(folder.rglob("DONE"))) == 1 and len(list(folder.rglob("meta.json"))) == 1
    report = next(run_dir.glob("steps/report-*/report.md")).read_text()
    assert all(arm.name in report for arm in recipe.mixes.arms)
