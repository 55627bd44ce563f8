"""Unit tests for distill.mixing (mix planning). Run: pytest tests/unit/test_mixing.py -q"""

import json
import math
import subprocess
import sys
from collections import Counter
from itertools import pairwise

import pytest

from distill.mixing import Arm, MixPlan, Pool, Wall, plan_mix

pytestmark = pytest.mark.unit


def make_pool(name: str, origin: str, size: int, salt: int = 0) -> Pool:
    # token counts vary (1..37) so token budgets hit example boundaries at awkward places
    return Pool(name, origin, tuple(f"{name}-{i}" for i in range(size)),
                tuple(1 + (i * 7 + salt) % 37 for i in range(size)))


POOLS = {
    "human": make_pool("human", "human", 40),
    "synthetic": make_pool("synthetic", "synthetic", 300, salt=3),
    "verified": make_pool("verified", "synthetic", 120, salt=5),
}
STOP = Wall(policy="stop")


def ids(plan: MixPlan, pool: str) -> list[str]:
    return [e.id for e in plan.source_entries(pool)]


# --- nesting -------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit, sizes", [("examples", [1, 7, 30, 64, 100]), ("tokens", [13, 200, 700, 1400])])
@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.9, 1.0])
def test_smaller_mix_is_a_per_source_prefix_of_larger(unit, sizes, fraction):
    arm = Arm(name="a", fraction=fraction)
    plans = [plan_mix(arm, n, 7, POOLS, unit=unit, wall=Wall(policy="repeat", max_epochs=8)) for n in sizes]
    assert all(p.feasible for p in plans)
    for small, big in pairwise(plans):
        for pool in ("human", "synthetic"):
            a, b = small.source_entries(pool), big.source_entries(pool)
            assert len(a) <= len(b)
            assert b[: len(a)] == a
    # the sizes above cross the 40-example human wall, so repeats are covered by the prefix check
    if fraction < 0.5:
        assert plans[-1].epochs["human"] > 1


def test_nesting_holds_across_the_fill_wall():
    arm = Arm(name="a", fraction=0.5)
    plans = [plan_mix(arm, n, 3, POOLS, wall=Wall(policy="fill")) for n in (40, 80, 81, 120)]
    for small, big in pairwise(plans):
        for pool in ("human", "synthetic"):
            assert ids(big, pool)[: len(ids(small, pool))] == ids(small, pool)


def test_arms_sharing_a_pool_and_seed_share_its_prefix():
    raw = plan_mix(Arm(name="raw", fraction=0.5), 60, 1, POOLS, wall=STOP)
    ver = plan_mix(Arm(name="ver", fraction=0.75, synthetic="verified"), 60, 1, POOLS, wall=STOP)
    assert ids(raw, "human")[:15] == ids(ver, "human")
    assert ids(ver, "verified") and all(i.startswith("verified-") for i in ids(ver, "verified"))
    assert ver.counts == {"human": 15, "verified": 45}


# --- realised fractions ---------------------------------------------------------------------------

@pytest.mark.parametrize("fraction, n, human", [
    (0.3, 10, 7), (0.15, 10, 9), (0.45, 10, 6), (0.5, 5, 3), (0.5, 3, 2),
    (0.0, 17, 17), (1.0, 17, 0), (1 / 3, 30, 20),
])
def test_examples_split_is_exact_and_rounds_human_half_up(fraction, n, human):
    plan = plan_mix(Arm(name="a", fraction=fraction), n, 0, POOLS, wall=STOP)
    # no empty parts
    assert plan.counts.get("human", 0) == human and plan.counts.get("synthetic", 0) == n - human
    assert len(plan.entries) == n
    assert plan.realised_fraction_examples == (n - human) / n
    assert abs(plan.realised_fraction_examples - fraction) <= 0.5 / n + 1e-12


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("n", [50, 333, 700])
def test_token_budgets_include_the_boundary_example(fraction, n):
    plan = plan_mix(Arm(name="a", fraction=fraction), n, 11, POOLS, unit="tokens", wall=STOP)
    assert plan.feasible
    budgets = {"human": math.floor((1 - fraction) * n + 0.5)}
    budgets["synthetic"] = n - budgets["human"]
    for pool, budget in budgets.items():
        toks = [POOLS[pool].tokens[POOLS[pool].ids.index(i)] for i in ids(plan, pool)]
        assert sum(toks) == plan.tokens[pool]
        assert sum(toks) >= budget  # reaches the budget ...
        assert sum(toks) - toks[-1] < budget  # ... with the shortest prefix: boundary example included
    # realised token fraction within one example of the request
    total = sum(plan.tokens.values())
    longest = max(max(p.tokens) for p in POOLS.values())
    assert abs(plan.realised_fraction_tokens - fraction) <= longest / total
    assert plan.realised_fraction_examples == plan.counts["synthetic"] / len(plan.entries)


# --- wall policies --------------------------------------------------------------------------------

def test_repeat_reads_fresh_permutations_epoch_by_epoch():
    plan = plan_mix(Arm(name="h", fraction=0.0), 100, 5, POOLS, wall=Wall(policy="repeat", max_epochs=4))
    assert plan.feasible and plan.epochs["human"] == 3 and plan.counts["human"] == 100
    human = plan.source_entries("human")
    assert [e.epoch for e in human] == [0] * 40 + [1] * 40 + [2] * 20
    epoch0 = [e.id for e in human[:40]]
    epoch1 = [e.id for e in human[40:80]]
    assert sorted(epoch0) == sorted(epoch1) == sorted(POOLS["human"].ids)
    assert epoch0 != epoch1  # each epoch is a new permutation
    assert set(Counter(e.id for e in human).values()) == {2, 3}


def test_repeat_caps_at_max_epochs():
    ok = plan_mix(Arm(name="h", fraction=0.0), 160, 5, POOLS, wall=Wall(policy="repeat", max_epochs=4))
    assert ok.feasible and ok.epochs["human"] == 4
    over = plan_mix(Arm(name="h", fraction=0.0), 161, 5, POOLS, wall=Wall(policy="repeat", max_epochs=4))
    assert not over.feasible and "max_epochs=4" in over.reason and "'human'" in over.reason
    tokens = plan_mix(Arm(name="h", fraction=0.0), 4 * POOLS["human"].total_tokens + 1, 5, POOLS,
                      unit="tokens",
                      wall=Wall(policy="repeat", max_epochs=4))
    assert not tokens.feasible


def test_fill_tops_up_with_synthetic_and_records_realised_fraction():
    plan = plan_mix(Arm(name="a", fraction=0.5), 100, 2, POOLS, wall=Wall(policy="fill"))
    assert plan.feasible and plan.counts == {"human": 40, "synthetic": 60}
    assert sorted(ids(plan, "human")) == sorted(POOLS["human"].ids)
    assert plan.fraction == 0.5 and plan.realised_fraction_examples == 0.6
    human_only = plan_mix(Arm(name="h", fraction=0.0), 100, 2, POOLS, wall=Wall(policy="fill"))
    assert human_only.counts == {"human": 40, "synthetic": 60}


def test_fill_in_tokens_takes_the_whole_pool_then_the_rest_of_the_budget():
    h = POOLS["human"].total_tokens
    plan = plan_mix(Arm(name="a", fraction=0.2), 2 * h, 2, POOLS, unit="tokens", wall=Wall(policy="fill"))
    assert plan.feasible and plan.tokens["human"] == h
    assert plan.tokens["synthetic"] >= h and plan.realised_fraction_tokens > 0.2


def test_stop_marks_the_point_infeasible_and_still_returns_it():
    fits = plan_mix(Arm(name="a", fraction=0.5), 80, 0, POOLS, wall=STOP)
    assert fits.feasible and fits.counts["human"] == 40
    plan = plan_mix(Arm(name="a", fraction=0.5), 82, 0, POOLS, wall=STOP)
    assert not plan.feasible and plan.entries == () and plan.realised_fraction_examples is None
    assert "'human'" in plan.reason and "41" in plan.reason and "'stop'" in plan.reason
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["feasible"] is False and d["reason"] == plan.reason and d["n_entries"] == 0


@pytest.mark.parametrize("policy, feasible", [("repeat", True), ("fill", False), ("stop", False)])
def test_synthetic_exhaustion_repeats_or_is_infeasible(policy, feasible):
    plan = plan_mix(Arm(name="s", fraction=1.0, synthetic="verified"), 200, 0, POOLS,
                    wall=Wall(policy=policy))
    assert plan.feasible is feasible
    if feasible:
        assert plan.epochs == {"verified": 2} and plan.counts == {"verified": 200}
    else:
        assert "synthetic pool 'verified'" in plan.reason


# --- weights, order, determinism ------------------------------------------------------------------

def test_weights_are_carried_per_entry():
    plan = plan_mix(Arm(name="a", fraction=0.5), 40, 0, POOLS, wall=STOP, weights={"human": 3.0})
    assert {e.weight for e in plan.source_entries("human")} == {3.0}
    assert {e.weight for e in plan.source_entries("synthetic")} == {1.0}
    assert {s.pool: s.weight for s in plan.sources} == {"human": 3.0, "synthetic": 1.0}
    plain = plan_mix(Arm(name="a", fraction=0.5), 40, 0, POOLS, wall=STOP)
    assert [e.id for e in plain.entries] == [e.id for e in plan.entries]
    assert plain.content_hash != plan.content_hash


def test_training_order_interleaves_parts_proportionally():
    plan = plan_mix(Arm(name="a", fraction=0.25), 40, 4, POOLS, wall=STOP)
    assert plan.feasible and len(plan.entries) == 40
    for start in range(0, 40, 8):  # every fifth of training has the requested mix
        window = plan.entries[start:start + 8]
        assert sum(e.source == "synthetic" for e in window) == 2


def test_plans_are_deterministic_and_seed_dependent():
    a = plan_mix(Arm(name="a", fraction=0.5), 60, 9, POOLS, unit="tokens", wall=STOP)
    b = plan_mix(Arm(name="a", fraction=0.5), 60, 9, POOLS, unit="tokens", wall=STOP)
    assert a == b and a.content_hash == b.content_hash
    c = plan_mix(Arm(name="a", fraction=0.5), 60, 10, POOLS, unit="tokens", wall=STOP)
    assert c.content_hash != a.content_hash and ids(c, "human") != ids(a, "human")


SUBPROCESS_CODE = """
from distill.mixing import Arm, Pool, Wall, plan_mix
pools = {n: Pool(n, o, tuple(f"{n}-{i}" for i in range(k)), tuple(1 + i % 13 for i in range(k)))
         for n, o, k in (("human", "human", 50), ("synthetic", "synthetic", 500))}
plan = plan_mix(Arm(name="a", fraction=0.4), 120, 42, pools, wall=Wall(policy="repeat"),
                weights={"human": 2.0})
print(plan.content_hash)
"""


def test_content_hash_is_identical_across_processes():
    namespace: dict = {}
    # exec on purpose: the same source runs here and in the subprocess below
    exec(SUBPROCESS_CODE.replace("print(plan.content_hash)", ""), namespace)  # noqa: S102
    here = namespace["plan"].content_hash
    out = subprocess.run([sys.executable, "-c", SUBPROCESS_CODE], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
    assert out.stdout.strip() == here and len(here) == 64


def test_to_dict_is_json_ready():
    plan = plan_mix(Arm(name="a", fraction=0.5), 100, 2, POOLS, wall=Wall(policy="fill"),
                    weights={"human": 2.0})
    d = json.loads(json.dumps(plan.to_dict()))
    assert d["realised_fraction"]["examples"] == 0.6 and d["wall"] == {"policy": "fill", "max_epochs": 4}
    assert d["content_hash"] == plan.content_hash and d["n_entries"] == 100
    assert {s["pool"]: s["examples"] for s in d["sources"]} == {"human": 40, "synthetic": 60}


# --- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan")])
def test_fraction_outside_unit_interval_is_rejected(fraction):
    with pytest.raises(ValueError, match="fraction"):  # the recipe's Arm
        plan_mix(Arm(name="bad", fraction=fraction), 10, 0, POOLS, wall=STOP)


@pytest.mark.parametrize("n", [0, -5, 2.5, True])
def test_non_positive_size_is_rejected(n):
    with pytest.raises(ValueError, match="size n="):
        plan_mix(Arm(name="a", fraction=0.5), n, 0, POOLS, wall=STOP)


def test_unknown_pool_names_are_rejected_with_a_suggestion():
    unverified = {k: v for k, v in POOLS.items() if k != "verified"}  # e.g. the merge verified nothing
    with pytest.raises(ValueError, match="unknown pool 'verified' \\(known: human, synthetic\\)"):
        plan_mix(Arm(name="a", fraction=0.5, synthetic="verified"), 10, 0, unverified, wall=STOP)
    with pytest.raises(ValueError, match="weights: unknown pool 'hum'"):
        plan_mix(Arm(name="a", fraction=0.5), 10, 0, POOLS, wall=STOP, weights={"hum": 2.0})


@pytest.mark.parametrize("make, message", [
    (lambda: plan_mix(Arm(name="a", fraction=0.5, human="edited"), 10, 0,
                      {**POOLS, "edited": make_pool("edited", "synthetic", 10)}, wall=STOP),
                      "origin 'synthetic'"),
    (lambda: plan_mix(Arm(name="a", fraction=0.5), 10, 0, POOLS, wall=STOP, weights={"human": 0}),
     "weights\\['human'\\]"),
    (lambda: plan_mix(Arm(name="a", fraction=0.5), 10, 0, POOLS, unit="bytes", wall=STOP), "unit 'bytes'"),
    (lambda: plan_mix(Arm(name="a", fraction=0.5), 10, 0, {"h": POOLS["human"]}, wall=STOP),
     "pools\\['h'\\]"),
    (lambda: Pool("p", "human", ("a", "b"), (1,)), "2 ids but 1 token counts"),
    (lambda: Pool("p", "human", ("a", "a"), (1, 1)), "not unique"),
    (lambda: Pool("p", "human", ("a",), (0,)), "token count 0"),
    (lambda: Pool("p", "robot", (), ()), "origin 'robot'"),
])
def test_bad_inputs_are_rejected_in_one_line(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, field",
                         [({"policy": "forever"}, "policy"), ({"policy": "repeat", "max_epochs": 0},
                                                                             "max_epochs")])
def test_bad_walls_are_rejected(kwargs, field):
    with pytest.raises(ValueError, match=field):  # the recipe's Wall: a recipe names file and key in one line
        Wall(**kwargs)


def test_the_entry_hash_is_sha256_of_json_lines_whatever_the_ids_hold():
    """The fast hash writes the JSON by hand where it can: the same bytes as json.dumps, escapes included."""
    import hashlib

    from distill.mixing import Entry, _hash_entries

    entries = (Entry("human", "h-1", 0, 1.0), Entry("synthetic", 'q"uote\\back', 2, 0.1 + 0.2),
               Entry("first_error", "ünï\ncode\t", 1, 3.0), Entry("h", "", 0, 1e-300))
    digest = hashlib.sha256()
    for e in entries:
        digest.update(json.dumps([e.source, e.id, e.epoch, e.weight]).encode())
        digest.update(b"\n")
    assert _hash_entries(entries) == digest.hexdigest()
