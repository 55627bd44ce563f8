"""Validate parity: every failure a step raises for a reason the recipe alone decides is also raised
by ``distill validate`` (one line, exit 2), before the first GPU-hour.

Each refusal in the step code below is listed once: either as decided by the recipe (with the recipe
settings that reach it, which validate must refuse) or as decided by data or upstream results (with
why validate cannot know). A new refusal in a step fails the first test until it is listed here.
Run: pytest tests/unit/test_validate_parity.py -q"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from distill.cli import main

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
STEP_CODE = ["distill/pipeline/stages.py", "distill/pipeline/axes.py", "distill/pipeline/mixes.py",
             "distill/pipeline/plan.py", "distill/human/stage.py", "distill/world/datasets.py",
             "distill/world/teacher.py", "distill/world/adapters.py", "distill/pipeline/preference.py",
             "distill/world/reasoning_gym.py"]

# message snippet (as written in the raise) -> the validate case that reaches it
RECIPE_DECIDED = {
    "imports first_error marks only": "prm800k_edited",
    "needs the embedded world's solver": "simulated_dataset_world",
    "unknown task adapter": "misspelt_adapter",
    "leaves no validation split to stop the build on": "built_teacher_no_val",
    "generations.prompts is required": "generations_no_prompts",
    "has no numbered templates": "templates_on_untemplated_dataset",
    "no_human_solutions(world)": "human_arm_without_solutions",
    "expert step: {problem}": "work_elsewhere_missing",
}
DATA_DECIDED = {
    "no rows to train on": "the parent generation's generated rows all filtered out: known after it ran",
    "cannot stop after stage": "a CLI argument (--until), not a recipe setting",
    "(data_files={ref.data_files!r}):": "the dataset's files: read only when a step loads them",
    "reading it with adapter": "a dataset row lacks a field the adapter reads",
    "the human data (": "the dataset's human split is smaller than world.human_pool",
    "leaves no human rows": "the dataset's human split has no more rows than val_size",
    "gives no human solution": "the dataset's rows have no solutions for the adapter",
    "rows its SFT student saw has": ("the expert's work: every item its SFT student saw left the "
                                     "draft as it was"),
    "the test data (": "the dataset's test split is empty or smaller than world.test_size",
    "unknown stream": "a caller's stream name (code), not a recipe setting",
    "has no {SOLUTION}": "one item of a dataset whose first item has a solution lacks one",
    "found {len(out)} of {count} items": "a template subset the test split exhausts: known once drawn",
}


def _raise_messages() -> list[tuple[str, str]]:
    found = []
    for rel in STEP_CODE:
        # a message split over lines ("... "\n f"...") reads as the one string it is
        text = re.sub(r'"\n\s*f?"', "", (ROOT / rel).read_text())
        for match in re.finditer(r"raise (\w*Error)\((.{0,160})", text):
            found.append((rel, match.group(2)))
    return found


def test_every_step_refusal_is_classified():
    raises = _raise_messages()
    assert len(raises) >= len(RECIPE_DECIDED) + len(DATA_DECIDED) - 1, raises  # the scan found them
    for rel, message in raises:
        hits = [s for s in (*RECIPE_DECIDED, *DATA_DECIDED) if s in message]
        assert len(hits) == 1, f"{rel}: raise {message!r} is listed {len(hits)} times in this test"


def _recipe(tmp_path: Path, name: str, edit) -> str:
    data = yaml.safe_load((ROOT / "recipes" / name).read_text())
    edit(data)
    data["output_dir"] = str(tmp_path / "runs")
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _simulated_on_gsm8k(data):  # the same recipe on GSM8K
    gsm8k = yaml.safe_load((ROOT / "recipes/gsm8k/hybrid.yaml").read_text())
    data["world"], data["teacher"], data["student"] = gsm8k["world"], gsm8k["teacher"], gsm8k["student"]


def _no_prompt_count(data):  # a dataset world whose whole human split is the pool
    _simulated_on_gsm8k(data)
    data["generations"].pop("prompts")


CASES = {  # case -> (recipe, edit or overrides, the key the one-line error must name)
    "prm800k_edited": ("human-effort.yaml", ["experts.kind=prm800k"], "experts.kind='prm800k'"),
    "simulated_dataset_world": ("human-effort.yaml", _simulated_on_gsm8k, "experts.kind='simulated'"),
    "misspelt_adapter": ("gsm8k/hybrid.yaml", ["world.adapter=gsm8x"], "did you mean 'gsm8k'"),
    "built_teacher_no_val": ("tiny.yaml", ["world.val_size=0"], "world.val_size=0"),
    "generations_no_prompts": ("generations.yaml", _no_prompt_count, "generations.prompts"),
    "templates_on_untemplated_dataset": ("gsm-symbolic.yaml",
                                         ["world.dataset=chain_sum", "world.templates=null",
                                                               "world.test_templates=2"],
                                                               "no numbered templates"),
    "human_arm_without_solutions": ("gsm-symbolic.yaml", ["world.dataset=chain_sum", "world.templates=null"],
                                    "has no human solutions"),
    "work_elsewhere_missing": ("tiny.yaml", ["experts={kind: source, source: no/such/folder}",
                                             "mixes.arms=[{name: marks, fraction: 0.0, human: first_error}]"],
                               "experts.source='no/such/folder'"),
    "online_kd_lineage": ("generations.yaml", ["train.kd.weight=0.5", "train.kd.source=online"],
                          "train.kd.source='online'"),
}


def test_every_recipe_decided_refusal_has_a_case():
    assert set(RECIPE_DECIDED.values()) <= set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_refuses_it_in_one_line(case, tmp_path, capsys):
    name, edit, key = CASES[case]
    if callable(edit):
        path, overrides = _recipe(tmp_path, name, edit), []
    else:
        path, overrides = str(ROOT / "recipes" / name), [*edit, f"output_dir={tmp_path / 'runs'}"]
    assert main(["validate", path, *overrides]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert key in err, err
    assert not (tmp_path / "runs").exists()  # nothing written
