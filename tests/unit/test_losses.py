"""Token losses against brute-force sums written out element by element.

Run: pytest tests/unit/test_losses.py -q
"""
from __future__ import annotations

import math

import pytest
import torch

from distill.training import losses

pytestmark = pytest.mark.unit


def _softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    e = [math.exp(x - top) for x in xs]
    return [v / sum(e) for v in e]


def _kl(p: list[float], q: list[float]) -> float:
    return sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q) if pi > 0)


@pytest.fixture
def logits():
    torch.manual_seed(0)
    return torch.randn(6, 11, dtype=torch.float64) * 2, torch.randn(6, 11, dtype=torch.float64) * 2


def test_cross_entropy(logits):
    student, _ = logits
    targets = torch.tensor([0, 3, 10, 5, 5, 1])
    got = losses.cross_entropy(student, targets)
    for n in range(6):
        want = -math.log(_softmax(student[n].tolist())[targets[n]])
        assert got[n].item() == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("kind", ["forward", "reverse"])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_full_kl(logits, kind, temperature):
    student, teacher = logits
    got = losses.kl_full(student, teacher, kind, temperature)
    for n in range(6):
        p = _softmax([x / temperature for x in teacher[n].tolist()])
        q = _softmax([x / temperature for x in student[n].tolist()])
        want = (_kl(p, q) if kind == "forward" else _kl(q, p)) * temperature**2
        assert got[n].item() == pytest.approx(want, rel=1e-5, abs=1e-7)
    assert losses.kl_full(teacher, teacher, kind).abs().max() < 1e-6


@pytest.mark.parametrize("kind", ["forward", "reverse"])
@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_topk_kl_renormalises_both_sides_over_the_support(logits, kind, temperature):
    student, teacher = logits
    k = 4
    teacher_lp = torch.log_softmax(teacher, -1)
    top_lp, top_ids = teacher_lp.topk(k, dim=-1)
    got = losses.kl_topk(student, top_ids, top_lp, kind, temperature)
    for n in range(6):
        ids = top_ids[n].tolist()
        # teacher at temperature T over the whole vocab, then restricted to S and renormalised
        p_full = _softmax([x / temperature for x in teacher[n].tolist()])
        p = [p_full[i] / sum(p_full[j] for j in ids) for i in ids]
        q_full = _softmax([x / temperature for x in student[n].tolist()])
        q = [q_full[i] / sum(q_full[j] for j in ids) for i in ids]
        want = (_kl(p, q) if kind == "forward" else _kl(q, p)) * temperature**2
        assert got[n].item() == pytest.approx(want, rel=1e-5, abs=1e-7)


def test_topk_with_the_whole_vocabulary_is_the_exact_kl(logits):
    student, teacher = logits
    lp, ids = torch.log_softmax(teacher, -1).topk(11, dim=-1)
    exact = losses.kl_full(student, teacher, "forward")
    assert torch.allclose(losses.kl_topk(student, ids, lp, "forward"), exact, atol=1e-9)


def test_mix_weights_ce_and_kl_and_falls_back_to_ce_without_teacher():
    ce, kl = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0])
    assert losses.mix(ce, kl, 0.25).tolist() == [3.25, 6.5, 9.75]
    assert losses.mix(ce, kl, 0.0).tolist() == ce.tolist()
    has = torch.tensor([True, False, True])
    assert losses.mix(ce, kl, 0.5, has).tolist() == [5.5, 2.0, 16.5]
    assert losses.mix(ce, None, 0.5).tolist() == ce.tolist()


def test_gradients_flow_to_the_student_only(logits):
    student, teacher = (t.clone().requires_grad_(True) for t in logits)
    losses.kl_full(student, teacher.detach(), "reverse").sum().backward()
    assert student.grad is not None and student.grad.abs().sum() > 0


def test_mismatched_vocabularies_are_an_error():
    with pytest.raises(ValueError, match="one vocabulary"):
        losses.kl_full(torch.zeros(2, 5), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="kd.kind"):
        losses.kl_full(torch.zeros(2, 5), torch.zeros(2, 5), "sideways")
