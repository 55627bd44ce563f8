"""The reasoning_gym world kind: seeded unlimited streams, the test split held out (by item or by
template), human solutions only where the dataset ships them, GSM8K's format, and the dataset's own
``score_answer`` as the verifier.
Run: .venv/bin/python -m pytest tests/unit/test_reasoning_gym.py -q"""
from __future__ import annotations

from pathlib import Path

import pytest

from distill.recipe.schema import ReasoningGymWorld
from distill.world import build_task
from distill.world import reasoning_gym as rg
from distill.world.adapters import GSM8K

pytestmark = pytest.mark.unit
RECIPE = Path(__file__).resolve().parents[2] / "recipes/gsm-symbolic.yaml"
GSM = ReasoningGymWorld(dataset="gsm_symbolic", human_pool=60, test_size=80, val_size=20)
CHAIN = ReasoningGymWorld(dataset="chain_sum", config={"min_terms": 2, "max_terms": 3, "max_digits": 2},
                          test_size=50, val_size=10)


def _questions(rows: list[dict]) -> set[str]:
    return {r["prompt"] for r in rows}


@pytest.mark.parametrize("world", [GSM, CHAIN], ids=["gsm_symbolic", "chain_sum"])
def test_streams_are_seeded_unlimited_and_skip_the_test_split(world):
    short, long = rg.rows(world, "prompts", 30), rg.rows(world, "prompts", 300)
    assert long[:30] == short and len(long) == 300  # a longer stream extends a shorter one
    assert rg.rows(world.model_copy(update={"seed": 1}), "prompts", 30) != short
    test = _questions(rg.rows(world, "test", world.test_size))
    for stream in ("human", "prompts", "teacher", "val"):
        assert not test & _questions(rg.rows(world, stream, 200)), stream
    assert len({r["id"] for r in long}) == 300


def test_held_out_by_template_keeps_test_templates_out_of_every_training_stream():
    world = GSM.model_copy(update={"test_templates": 6})
    held = rg.test_templates(world)
    assert len(held) == 6 and held == rg.test_templates(world)  # a seeded choice

    def templates_of(stream: str, count: int) -> set[int]:
        return {rg.template_of(world, stream, i) for i, _ in rg.entries(world, stream, count)}

    assert templates_of("test", world.test_size) <= held
    for stream in ("human", "prompts", "teacher", "val"):
        assert not templates_of(stream, 300) & held, stream


def test_a_template_subset_is_a_smaller_world():
    world = GSM.model_copy(update={"templates": [0, 1, 2, 3, 4], "test_templates": 1})
    seen = {rg.template_of(world, s, i) for s in ("test", "human") for i, _ in rg.entries(world, s, 100)}
    assert seen == {0, 1, 2, 3, 4}
    assert "leaves no template" in rg.check(world.model_copy(update={"test_templates": 5}))
    # 32 needs a fix upstream
    assert "not templates of" in rg.check(world.model_copy(update={"templates": [0, 32]}))
    assert "no numbered templates" in rg.check(CHAIN.model_copy(update={"test_templates": 2}))


def test_rows_are_gsm8k_format_with_the_datasets_own_solution():
    item = rg.entries(GSM, "human", 1)[0][1]
    row = build_task(GSM).human()[0]
    assert (row["prompt"] == GSM8K.prompt({"question": item["question"]})
            == f"Question: {item['question']}\nAnswer:")
    assert row["completion"] == " " + item["metadata"]["answer_cot"].strip()
    assert GSM8K.extract_answer(row["completion"]) == item["answer"] == row["meta"]["answer"]
    assert len(build_task(GSM).human()) == GSM.human_pool


def test_a_dataset_without_solutions_has_no_human_pool():
    assert not rg.has_solutions(CHAIN) and rg.has_solutions(GSM)
    assert build_task(CHAIN).human() == []  # human_pool unset
    with pytest.raises(ValueError, match="has no human solutions"):
        build_task(CHAIN.model_copy(update={"human_pool": 10})).human()
    teacher_row = build_task(CHAIN).corpus(1)[0]  # a built teacher still learns the answer-only format
    assert teacher_row["completion"] == f" #### {teacher_row['meta']['answer']}"


@pytest.mark.parametrize("world", [GSM, CHAIN], ids=["gsm_symbolic", "chain_sum"])
def test_the_verifier_is_the_datasets_own_score_answer(world):
    """Right, wrong (gsm_symbolic's 0.01 partial credit) and missing answers: verify agrees with the
    dataset's score_answer on the original item, and only a full score is correct."""
    import reasoning_gym

    task = build_task(world)
    items = rg.entries(world, "prompts", 20)
    own = reasoning_gym.create_dataset(world.dataset, seed=rg._stream_seed(world.seed, "prompts"), size=64,
                                       **world.config)
    scores = set()
    for (index, item), row in zip(items, task.prompts(20)):
        assert own[index] == item
        answer = item["answer"]
        for completion, stated in ((f" steps\n#### {answer}", answer), (f" steps\n#### {int(answer) + 1}",
                                   str(int(answer) + 1)), (" no final line", None)):
            expected = own.score_answer(stated, item)
            scores.add(expected)
            assert rg.score_of(world, row, task.extract_answer(completion)) == expected
            assert task.verify(row, completion) is (expected == 1.0)
    assert 1.0 in scores and 0.0 in scores
    if world.dataset == "gsm_symbolic":
        assert 0.01 in scores  # a wrong number: partial credit, which is not correct


@pytest.mark.parametrize(("overrides", "says"), [
    (["world.human_pool=null"], "world.human_pool is not set: ['human'] learn from a human pool"),
    (["world.dataset=chain_sum", "world.templates=null"], "'chain_sum' has no human solutions"),
    (["world.dataset=chain_sums"], "no such reasoning-gym dataset (did you mean 'chain_sum'?)"),
    (["world.config={difficulty: 2.0}"],
     "world.config={'difficulty': 2.0}: reasoning-gym 'gsm_symbolic' refuses"),
    (["world.test_templates=8"], "world.test_templates=8: leaves no template to train on"),
])
def test_validate_says_what_is_wrong_in_one_line(overrides, says, tmp_path, capsys):
    from distill.cli import main

    assert main(["validate", str(RECIPE), *overrides, f"output_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err
    assert not (tmp_path / "runs").exists()

