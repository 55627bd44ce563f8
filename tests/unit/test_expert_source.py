"""``experts.kind: source``: work people did elsewhere (CHAMP's first-error marks, written by
``python -m distill.human.champ OUT``) as an arm's data. ``distill validate`` accepts a folder that holds
the primitive the recipe's arms do and refuses, in one line naming the folder or the arm, one that holds
another primitive, a folder that is not an expert step's layout, and arms that need the drafts the expert
saw (preference objectives, allocators).

Run: pytest tests/unit/test_expert_source.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from distill.cli import main
from distill.human.stage import work_elsewhere
from distill.recipe.schema import Experts

pytestmark = pytest.mark.unit
pytest.importorskip("champ_dataset", reason="champ-dataset is not installed (pip install -e '.[champ]')")
TINY = str(Path(__file__).resolve().parents[2] / "recipes" / "tiny.yaml")
MARKS = "mixes.arms=[{name: marks, fraction: 0.0, human: first_error}]"


@pytest.fixture(scope="module")
def champ_folder(tmp_path_factory) -> Path:
    from distill.human import champ

    out = tmp_path_factory.mktemp("champ") / "champ"
    assert champ.main([str(out)]) == 0
    return out


def test_source_is_required_with_kind_source_and_only_then():
    with pytest.raises(ValidationError, match="experts.source is required with kind=source"):
        Experts(kind="source")
    with pytest.raises(ValidationError, match="experts.source is only used with kind=source"):
        Experts(kind="simulated", source="runs/champ")


def test_a_first_error_arm_on_champ_marks_validates(champ_folder, tmp_path, capsys):
    assert main(["validate", TINY, f"experts={{kind: source, source: {champ_folder}}}", MARKS,
                 f"output_dir={tmp_path / 'runs'}"]) == 0
    work = work_elsewhere(str(champ_folder), "first_error")
    assert len(work.rows) == 540 and {r["origin"] for r in work.rows} == {"first_error"}
    assert all(r["meta"]["simulated"] is False for r in work.rows)


@pytest.mark.parametrize("arms, said", [
    ("mixes.arms=[{name: edits, fraction: 0.0, human: edited}]", "holds 'first_error' work, but"),
    ("mixes.arms=[{name: marks, fraction: 0.0, human: first_error, allocator: random}]", "arm 'marks' needs"),
])
def test_work_the_folder_cannot_give_is_refused_in_one_line(champ_folder, tmp_path, capsys, arms, said):
    code = main(["validate", TINY, f"experts={{kind: source, source: {champ_folder}, hours: 1.0}}", arms,
                 f"output_dir={tmp_path / 'runs'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and said in err, err
    assert not (tmp_path / "runs").exists()


def test_a_folder_without_an_expert_steps_layout_is_refused(tmp_path, capsys):
    (tmp_path / "rows").mkdir()
    code = main(["validate", TINY, f"experts={{kind: source, source: {tmp_path / 'rows'}}}", MARKS,
                 f"output_dir={tmp_path / 'runs'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"experts.source='{tmp_path / 'rows'}'" in err, err
    with pytest.raises(ValueError, match="^expert step: experts.source="):
        work_elsewhere(str(tmp_path / "rows"), "first_error")


def test_expert_steps_without_a_source_keep_their_ids():
    """``experts.source`` enters an expert step's config (and id) only when set: adding the field left
    every shipped recipe's expert steps as they were."""
    from distill.pipeline.plan import plan
    from distill.recipe import load_recipe

    recipe = str(Path(TINY).with_name("human-effort.yaml"))
    experts = [s.config["experts"] for s in plan(load_recipe(recipe, [])) if s.kind == "expert"]
    assert experts and all("source" not in e and "hours" not in e for e in experts)
