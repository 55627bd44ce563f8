"""No side channels: what a step does comes from its typed, hashed config, never from the run's
recipe.yaml; the ceiling scored with vLLM and the one scored with HF are different steps.
Run: pytest tests/unit/test_no_side_channels.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest

from distill.pipeline.context import StepContext
from distill.pipeline.plan import plan
from distill.recipe import load_recipe

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
RUNNERS = ["distill/pipeline/stages.py", "distill/pipeline/axes.py", "distill/human/stage.py"]


def _ceiling(*overrides):
    steps = plan(load_recipe(ROOT / "recipes/tiny.yaml", list(overrides)))
    return next(s for s in steps if s.kind == "eval" and s.labels.get("role") == "teacher"), steps


def test_the_ceilings_engine_is_in_its_id():
    hf, _ = _ceiling()
    vllm, _ = _ceiling("generation.backend=vllm")
    assert hf.id != vllm.id and vllm.config["vllm"] == {"parallel": 1, "memory": 0.9}
    assert "vllm" not in hf.config  # an hf ceiling keeps the id it had
    wider, _ = _ceiling("generation.backend=vllm", "generation.vllm.tensor_parallel_size=2")
    assert wider.id != vllm.id


def test_the_eval_runner_knows_its_engine_without_the_recipe(tmp_path):
    vllm, _ = _ceiling("generation.backend=vllm")
    ctx = StepContext(tmp_path, vllm, tmp_path / "cache", 1)  # no recipe.yaml in tmp_path
    assert ctx.config.ceiling and ctx.ceiling_engine(ctx.config.vllm)["backend"] == "vllm"
    floor = next(s for s in _ceiling()[1] if s.kind == "eval" and s.labels.get("role") == "floor")
    assert not StepContext(tmp_path, floor, tmp_path / "cache", 1).config.ceiling


def test_no_runner_reads_the_recipe_file_for_what_it_computes():
    for rel in RUNNERS:
        assert "recipe.yaml" not in (ROOT / rel).read_text(), rel
    context = (ROOT / "distill/pipeline/context.py").read_text()
    assert '_recipe("generation")' not in context


# Modules that own the run folder's recipe.yaml: the launcher writes it (run.py; `distill report`
# reads its tracking settings to relaunch a report), ownership.py compares it, state.py names it.
RECIPE_OWNERS = {"distill/pipeline/run.py", "distill/pipeline/ownership.py", "distill/pipeline/state.py"}


def test_no_step_module_names_the_recipe_file():
    """Static half of the rule (the smoke test `test_pipeline.py` runs a sweep with recipe.yaml gone)."""
    found = [str(p.relative_to(ROOT)) for p in sorted((ROOT / "distill").rglob("*.py"))
             if "RECIPE_FILE" in (text := p.read_text()) or "recipe.yaml" in text]
    assert found and set(found) <= RECIPE_OWNERS, sorted(set(found) - RECIPE_OWNERS)


def test_a_slurm_task_gets_its_launch_settings_on_its_command_line(tmp_path, capsys):
    import shlex

    from distill.pipeline.context import Launch, launch_of
    from distill.pipeline.run import dry_run_recipe
    from distill.recipe.schema import Tracking

    recipe = load_recipe(ROOT / "recipes/tiny.yaml", [f"output_dir={tmp_path}", "mixes.sizes=[50]",
                                                       "launcher.slurm.train.processes_per_node=3"])
    assert dry_run_recipe(recipe, "slurm", None, tmp_path / "scripts") == 0
    script = next((tmp_path / "scripts").glob("*-train.sbatch")).read_text()
    argv = shlex.split(next(line for line in script.splitlines() if line.startswith("set -- "))[7:])
    assert argv[1:4] == ["-m", "distill.pipeline.task", str(tmp_path / "tiny")]
    launch = Launch.model_validate_json(argv[5])
    assert launch.processes == 3 and launch.sweep == "tiny"
    assert launch.wandb.mode == "disabled"  # tiny.yaml's
    unset = launch_of(recipe.model_copy(update={"tracking": Tracking()}), "train")
    back = Launch.model_validate_json(unset.model_dump_json(exclude_unset=True))  # as the executor writes it
    assert "mode" not in back.wandb.model_fields_set  # an unset mode still yields to WANDB_API_KEY
    generate = next((tmp_path / "scripts").glob("*-generate.sbatch")).read_text()
    assert '"processes":null' in generate  # another section's processes: not the training ones
