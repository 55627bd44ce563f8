"""Cost ledgers, the cost-vs-score Pareto frontier and the budget recommendation.

Run: pytest tests/unit/test_frontier.py -q
"""

import pytest

from evals.analysis.frontier import CostLedger, Prices, frontier, ledger, recommend, teacher_seconds

pytestmark = pytest.mark.unit

PRICES = Prices(teacher_device_s=0.002, human_example=0.5, train_device_s=0.001, eval_device_s=0.001)


def test_teacher_cost_counts_rejected_samples():
    # 1,000 device-seconds drew 500 samples of which 250 passed the filters: 4 s per accepted example
    assert teacher_seconds(100, 1000.0, 250) == pytest.approx(400.0)
    assert teacher_seconds(0, 1000.0, 0) == 0.0
    with pytest.raises(ValueError, match="n_accepted=0"):
        teacher_seconds(10, 1000.0, 0)


def test_ledger_prices_each_resource():
    book = ledger({"teacher_s": 400, "human": 100, "train_s": 600, "train_devices": 2, "eval_s": 30}, PRICES)
    assert book == CostLedger(teacher=0.8, human=50.0, train=1.2, eval=0.03)
    assert book.total == pytest.approx(52.03)
    assert ledger({}, PRICES).total == 0
    with pytest.raises(ValueError, match=r"unknown keys \['gpu_hours'\]"):
        ledger({"gpu_hours": 3}, PRICES)
    with pytest.raises(ValueError, match=r"human=-1\.0 must be >= 0"):
        ledger({"human": -1}, PRICES)
    with pytest.raises(ValueError, match=r"Prices\.human_example=-1"):
        Prices(human_example=-1)


def run(arm, f, n, seed, score, human, teacher_s, feasible=True):
    return {"arm": arm, "fraction": f, "n": n, "seed": seed, "score": score, "feasible": feasible,
            "cost": {"human": human, "teacher_s": teacher_s, "train_s": n / 10, "eval_s": 10}}


def sweep():
    recs = []
    for seed, noise in enumerate((-0.01, 0.0, 0.01)):
        recs += [run("synthetic", 1.0, 1000, seed, 0.60 + noise, 0, 1000),  # cost 2.11
                 run("synthetic", 1.0, 4000, seed, 0.66 + noise, 0, 4000),  # 8.41
                 run("hybrid-50", 0.5, 1000, seed, 0.68 + noise, 500, 500),  # 251.11
                 run("hybrid-50", 0.5, 4000, seed, 0.69 + noise, 2000, 2000),  # 1004.41
                 run("human", 0.0, 1000, seed, 0.64 + noise, 1000, 0),  # 500.11: dominated by hybrid-50/1000
                 run("human", 0.0, 4000, seed, 0.80 + noise, 4000, 0, feasible=False)]  # past the wall
    return recs


def test_frontier_keeps_only_undominated_mixes():
    front = frontier(sweep(), PRICES)
    pareto = [("synthetic", 1000), ("synthetic", 4000), ("hybrid-50", 1000), ("hybrid-50", 4000)]
    assert [(p.arm, p.n) for p in front.points] == [*pareto[:3], ("human", 1000), pareto[3]]
    assert [(p.arm, p.n) for p in front.pareto] == pareto
    first = front.points[0]
    assert first.cost == pytest.approx(2.11) and first.score == pytest.approx(0.60) and len(first.scores) == 3
    assert first.ledger.teacher == pytest.approx(2.0)
    costs = [p.cost for p in front.pareto]
    scores = [p.score for p in front.pareto]
    assert costs == sorted(costs) and scores == sorted(scores)


def test_recommend_best_affordable_mix_and_a_cheaper_equivalent():
    front = frontier(sweep(), PRICES)
    assert recommend(front, 1.0) is None  # nothing that cheap
    assert recommend(front, 5.0).mix.arm == "synthetic" and recommend(front, 5.0).mix.n == 1000
    rec = recommend(front, 300.0)
    assert (rec.mix.arm, rec.mix.n) == ("hybrid-50", 1000)
    assert rec.cheapest_equivalent is rec.mix and rec.noise is None  # 0.66 is 2 seed SDs below 0.68
    rec = recommend(front, 2000.0)
    assert (rec.mix.arm, rec.mix.n) == ("hybrid-50", 4000)
    # hybrid-50 at N=1,000 scores 0.68 vs 0.69: within seed noise (SD 0.01) and 4x cheaper
    assert (rec.cheapest_equivalent.arm, rec.cheapest_equivalent.n) == ("hybrid-50", 1000)
    assert rec.noise.within and rec.noise.diff == pytest.approx(-0.01)
