"""Generations and teachers, pure parts: which rows each generation trains on, diversity measures,
the DAG (teachers share what does not depend on them; adding a generation adds only new steps) and
the generations analysis on simulated records.
Run: pytest tests/unit/test_generations.py -q"""
from __future__ import annotations

import math

import numpy as np
import pytest

from distill.lineage import distinct_ngrams, diversity, policy_rows
from distill.pipeline.plan import plan
from distill.recipe.loading import read_yaml, validate_tree
from tests.pipeline_helpers import ROOT

pytestmark = pytest.mark.unit

SIZES = [4, 3, 3, 3]  # human pool of 4 rows, then 3 synthetic rows per generation


def test_generation_zero_trains_on_the_human_pool_under_every_policy():
    for policy in ("replace", "accumulate", "accumulate-subsample", None):
        assert policy_rows(policy, 0, SIZES, subsample=4) == [(0, 0), (0, 1), (0, 2), (0, 3)]


def test_replace_trains_on_the_newest_synthetic_pool_only():
    assert policy_rows("replace", 1, SIZES) == [(1, 0), (1, 1), (1, 2)]
    assert policy_rows("replace", 3, SIZES) == [(3, 0), (3, 1), (3, 2)]


def test_accumulate_trains_on_everything_so_far():
    rows = policy_rows("accumulate", 2, SIZES)
    assert rows == [(0, i) for i in range(4)] + [(1, i) for i in range(3)] + [(2, i) for i in range(3)]
    assert len(policy_rows("accumulate", 3, SIZES)) == 13


def test_accumulate_subsample_is_a_fixed_size_seeded_sample_of_the_pool():
    rows = policy_rows("accumulate-subsample", 3, SIZES, subsample=4, seed=1)
    everything = set(policy_rows("accumulate", 3, SIZES))
    assert len(rows) == 4 and len(set(rows)) == 4 and set(rows) <= everything
    assert rows == policy_rows("accumulate-subsample", 3, SIZES, subsample=4, seed=1)
    assert rows != policy_rows("accumulate-subsample", 3, SIZES, subsample=4, seed=2)
    # a generation's sample does not move when the chain grows
    assert policy_rows("accumulate-subsample", 2, SIZES[:3], subsample=4, seed=1) == \
        policy_rows("accumulate-subsample", 2, SIZES, subsample=4, seed=1)
    # a sample as large as the pool is the pool
    assert policy_rows("accumulate-subsample", 1, SIZES, subsample=100) == policy_rows("accumulate", 1, SIZES)


def test_bad_policy_inputs_are_named():
    with pytest.raises(ValueError, match="need pools 0..4"):
        policy_rows("replace", 4, SIZES)
    with pytest.raises(ValueError, match="subsample"):
        policy_rows("accumulate-subsample", 1, SIZES)
    with pytest.raises(ValueError, match="policy 'keep'"):
        policy_rows("keep", 1, SIZES)


def test_diversity_counts_distinct_ngrams_and_answers():
    assert distinct_ngrams([[1, 2, 3, 4]], 2) == 1.0
    assert distinct_ngrams([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)
    assert math.isnan(distinct_ngrams([[1]], 3))
    texts = ["1+1=2;A:2", "1+1=2;A:2", "2+2=4;A:4", "no answer"]
    div = diversity(texts, list, lambda t: t.split("A:")[1] if "A:" in t else None, n=3)
    assert div["distinct_answers"] == 0.75 and div["rows"] == 4
    assert diversity(texts, list, lambda t: None, n=3, sample=2)["rows"] == 2


def _generations(count: int, **extra):
    tree = read_yaml(ROOT / "recipes/generations.yaml")
    tree["generations"] = {**tree["generations"], "count": count, "seeds": [0, 1], **extra}
    return validate_tree(tree, "generations")


def test_each_generation_is_taught_by_the_previous_generation_of_its_own_chain():
    steps = plan(_generations(3))
    by_id = {s.id: s for s in steps}
    trains = {(s.labels.get("policy"), s.labels["generation"], s.labels["seed"]): s
              for s in steps if s.kind == "lineage"}
    assert len(trains) == 2 * (1 + 3 * 3) and all(s.id.startswith("train-") for s in trains.values())
    for (policy, k, seed), step in trains.items():
        merges = [by_id[d] for d in step.deps if by_id[d].kind == "merge"]
        assert len(merges) == k, "generation k reads the synthetic pools 1..k"
        if k == 0:
            continue
        teacher = by_id[by_id[merges[-1].deps[0]].config["teacher"]["step"]]
        parent = trains[(policy if k > 1 else None, k - 1, seed)]
        assert teacher.id == parent.id
    # generation 1's data comes from the shared generation 0: made once per seed, not once per policy
    gen1 = {s.id for s in steps if s.kind == "merge" and s.labels["generation"] == 1}
    assert len(gen1) == 2


def test_adding_a_generation_adds_only_the_new_generations_steps():
    old = {s.id: s for s in plan(_generations(3))}
    new = {s.id: s for s in plan(_generations(4))}
    added = [new[i] for i in set(new) - set(old)]
    removed = [old[i] for i in set(old) - set(new)]
    assert [s.kind for s in removed] == ["generations_report"], "only the report is replaced"
    assert all(s.labels.get("generation") == 4 for s in added if s.kind != "generations_report")
    kinds = sorted(s.kind for s in added)
    # per seed (2) and policy (3): one generate shard, one merge, one student, one evaluation
    assert (kinds
            == sorted(["generate"] * 6 + ["merge"] * 6 + ["lineage"] * 6 + ["eval"] * 6
                      + ["generations_report"]))


def test_changing_the_subsample_size_touches_only_the_subsample_chain():
    old = {s.id for s in plan(_generations(2))}
    new = [s for s in plan(_generations(2, subsample=300)) if s.id not in old]
    assert {s.labels.get("policy") for s in new if s.kind != "generations_report"} == {"accumulate-subsample"}


def _teachers():
    tree = read_yaml(ROOT / "recipes/teachers.yaml")
    return validate_tree(tree, "teachers")


def test_teachers_share_the_human_arm_floor_and_student_but_not_their_data():
    recipe = _teachers()
    steps = plan(recipe)
    names = [t.name for t in recipe.teachers]
    m = recipe.mixes
    trains = [s for s in steps if s.kind == "train"]
    human = [s for s in trains if s.labels["fraction"] == 0.0]
    assert len(human) == len(m.sizes) * len(m.seeds) and not any("teacher" in s.labels for s in human)
    others = [s for s in trains if s.labels["fraction"] > 0]
    assert len(others) == len(names) * (len(m.arms) - 1) * len(m.sizes) * len(m.seeds)
    assert {s.labels["teacher"] for s in others} == set(names)
    ceilings = [s for s in steps if s.kind == "eval" and s.labels["role"] == "teacher"]
    assert sorted(s.labels["teacher"] for s in ceilings) == sorted(names)
    assert sum(s.kind == "eval" and s.labels["role"] == "floor" for s in steps) == 1
    assert sum(s.kind == "merge" for s in steps) == len(names)
    reports = [s for s in steps if s.stage == "report"]
    assert len(reports) == len(names) + 1 and reports[-1].config["teachers"] == names
    assert [s.kind for s in reports] == ["report"] * len(names) + ["teachers_report"]


def test_a_recipe_with_teacher_and_teachers_is_refused():
    from distill.recipe.loading import RecipeError

    tree = read_yaml(ROOT / "recipes/teachers.yaml")
    with pytest.raises(RecipeError, match="either teacher or teachers"):
        validate_tree({**tree, "teacher": {}}, "teachers")
    twice = [{**tree["teachers"][0], "name": "a"}, {**tree["teachers"][0], "name": "b"}]
    with pytest.raises(RecipeError, match="repeat an earlier teacher"):
        validate_tree({**tree, "teachers": twice}, "teachers")


def _simulated(slopes: dict[str, float], gens: int = 6, seeds: int = 3, items: int = 400) -> list[dict]:
    """Runs whose item accuracy falls by ``slope`` per generation per policy; items drawn per run."""
    rng = np.random.default_rng(0)
    runs = []
    for policy, slope in slopes.items():
        for g in range(gens):
            for s in range(seeds):
                p = 0.9 + slope * g
                x = (rng.random(items) < p).astype(int)
                runs.append({"policy": policy, "generation": g, "seed": s, "score": float(x.mean()),
                             "items": x.tolist(), "diversity": {"distinct_ngrams": 0.5 - 0.01 * g,
                                                                "distinct_answers": 0.8}})
    return runs


def test_analysis_recovers_a_falling_replace_and_a_flat_accumulate():
    from evals.analysis.generations import analyze_generations, verdict

    curves = analyze_generations(_simulated({"replace": -0.06, "accumulate": 0.0}), n_boot=300)
    rep, acc = curves["replace"], curves["accumulate"]
    assert rep.slope.upper < 0 and rep.slope.contains(-0.06)
    assert acc.slope.contains(0.0) and acc.ratio.contains(1.0)
    assert rep.diversity_slope["distinct_ngrams"].estimate == pytest.approx(-0.01)
    text, facts = verdict(curves)
    assert facts["agrees"] and "replace: the test score falls" in text


def test_analysis_says_when_the_direction_does_not_agree():
    from evals.analysis.generations import analyze_generations, verdict

    text, facts = verdict(analyze_generations(_simulated({"replace": 0.0, "accumulate": -0.05}), n_boot=300))
    assert not facts["agrees"] and "does NOT agree" in text and "flat within noise" in text


def test_a_generation_zero_near_zero_is_flagged_as_a_floor():
    from evals.analysis.generations import analyze_generations, verdict

    runs = _simulated({"replace": 0.0, "accumulate": 0.0})
    low = [{**r, "score": 0.03, "items": [1] * 12 + [0] * 388} for r in runs]
    text, _ = verdict(analyze_generations(low, n_boot=200))
    assert "near zero: the students learned little" in text
    assert "near zero" not in verdict(analyze_generations(runs, n_boot=200))[0]
